// The release demo as the probes start it: on 127.0.0.1:0, its data in `data` (a new temporary
// directory unless given: processes of one cluster share one), with `flags`; `DEMO` names
// another build to measure (an older one, say).
import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** Resolves once the demo prints its address: `{url, proc}`.
 * @param {string[]} flags @param {string} [data] */
export function startDemo(flags, data = mkdtempSync(path.join(tmpdir(), "lh-probe-"))) {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.env.DEMO || path.join(root, "target/release/livehtml-demo"),
      ["--addr", "127.0.0.1:0", "--data-dir", data, ...flags],
      { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, RUST_LOG: "error" } });
    let out = "";
    proc.stdout.on("data", (chunk) => {
      out += chunk;
      const m = out.match(/listening on (http:\/\/[\d.:]+)/);
      if (m) resolve({ url: m[1], proc });
    });
    proc.on("exit", (code) => reject(new Error(`exited ${code}`)));
  });
}
