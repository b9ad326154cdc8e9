// Shared set-up of the browser tests: start a server binary on port 0, launch Debian's Chromium.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const targetDir = process.env.CARGO_TARGET_DIR || path.join(root, "target");

/** Path of a workspace binary built by `cargo build` (the test script builds them first). */
export function binary(name) {
  return path.join(targetDir, "debug", name);
}

export function tempDir(prefix) {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

/**
 * Starts `bin` with `args`, resolves once it prints "listening on http://…".
 * @returns {Promise<{url: string, addr: string, proc: import("node:child_process").ChildProcess, stop: (signal?: string) => Promise<number|null>}>}
 */
export function startServer(bin, args = []) {
  return new Promise((resolve, reject) => {
    const proc = spawn(bin, args, { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, RUST_LOG: "warn" } });
    let out = "";
    let started = false;
    const timer = setTimeout(() => reject(new Error(`${bin} did not start: ${out}`)), 30_000);
    proc.on("error", reject);
    proc.on("exit", (code) => reject(new Error(`${bin} exited early with ${code}: ${out}`)));
    proc.stdout.on("data", (chunk) => {
      // Once started, stdout is still read (a full pipe would block the server) but not
      // matched again: a second match replaced the exit listener that `stop` awaits, and a
      // server that printed anything after its first line never seemed to stop (node ended the
      // test with "Promise resolution is still pending but the event loop has already resolved").
      if (started) return;
      out += chunk;
      const m = out.match(/listening on (http:\/\/([\d.:]+))/);
      if (m) {
        started = true;
        clearTimeout(timer);
        proc.removeAllListeners("exit");
        const exited = new Promise((r) => proc.once("exit", (code) => r(code)));
        resolve({
          url: m[1],
          addr: m[2],
          proc,
          stop: async (signal = "SIGTERM") => {
            if (proc.exitCode === null) proc.kill(signal);
            return exited;
          },
        });
      }
    });
  });
}

const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

/**
 * Launches headless Chromium, or returns null (test skipped) when it is missing, unless
 * LIVEHTML_REQUIRE_ALL=1 makes a missing browser a failure. @param {string[]} [extraArgs]  more flags
 */
export async function launch(t, extraArgs = []) {
  if (!existsSync(CHROMIUM)) {
    if (process.env.LIVEHTML_REQUIRE_ALL === "1") throw new Error(`Chromium not found at ${CHROMIUM}`);
    t.skip(`Chromium not found at ${CHROMIUM} (apt-get install chromium)`);
    return null;
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", ...extraArgs],
  });
}

/** A new page that fails the test on any uncaught page error, and records WebSocket frames;
 * in a browser context of its own, or in `browser` when it is a context (its tabs share
 * cookies). @param {import("playwright-core").Browser | import("playwright-core").BrowserContext} browser */
export async function newPage(browser) {
  const page = await browser.newPage();
  page.errors = [];
  page.frames = [];
  page.sentFrames = [];
  page.on("pageerror", (e) => page.errors.push(e));
  // The demo serves a strict Content-Security-Policy: anything it blocks fails the test too.
  page.on("console", (m) => {
    if (m.type() === "error" && m.text().includes("Content Security Policy")) page.errors.push(new Error(m.text()));
  });
  page.on("websocket", (ws) => {
    ws.on("framereceived", (f) => page.frames.push(String(f.payload)));
    ws.on("framesent", (f) => page.sentFrames.push(String(f.payload)));
  });
  return page;
}

/**
 * Chromium and a fresh demo server (its own data directory), both stopped after the test;
 * `{}` when the browser is missing and the test is skipped.
 * @param {import("node:test").TestContext} t @param {string} name  names the data directory
 * @param {string[]} [args]  more flags for the demo
 */
export async function demo(t, name, args = []) {
  const browser = await launch(t);
  if (!browser) return {};
  t.after(() => browser.close());
  const server = await startServer(binary("livehtml-demo"), ["--addr", "127.0.0.1:0", "--data-dir", tempDir(`livehtml-${name}-`), ...args]);
  t.after(() => server.stop("SIGKILL"));
  return { browser, server };
}

/**
 * A fault-injection proxy (crates/faultproxy) in front of `upstream` ("host:port"), stopped
 * after the test: pages load through `url`, and `cut()` resets every connection through it.
 * @param {import("node:test").TestContext} t @param {string} upstream
 */
export function startProxy(t, upstream) {
  return new Promise((resolve, reject) => {
    const proc = spawn(binary("faultproxy"), ["--upstream", upstream], { stdio: ["ignore", "pipe", "inherit"] });
    t.after(() => proc.kill("SIGKILL"));
    let out = "";
    proc.on("error", reject);
    proc.stdout.on("data", (chunk) => {
      out += chunk;
      const listening = out.match(/listening on ([\d.:]+)/);
      const control = out.match(/control on ([\d.:]+)/);
      if (!listening || !control) return;
      const call = async (method, path) => (await fetch(`http://${control[1]}${path}`, { method })).text();
      resolve({
        url: `http://${listening[1]}`,
        cut: async () => Number(await call("POST", "/cut")),
        refuse: () => call("POST", "/refuse"),
        accept: () => call("POST", "/accept"),
        connections: async () => JSON.parse(await call("GET", "/connections")),
      });
    });
  });
}

const CDN = {
  "https://unpkg.com/htmx.org@2.0.11/dist/htmx.min.js": "htmx2/dist/htmx.min.js",
  "https://unpkg.com/htmx-ext-sse@2.2.4/dist/sse.min.js": "htmx-ext-sse/dist/sse.min.js",
};

/** A page whose CDN scripts (the demo's plain-htmx pages load htmx 2 and htmx-ext-sse from unpkg,
 * pinned with SRI) come from e2e/node_modules (the machine has no internet). */
export async function htmxPage(browser) {
  const page = await newPage(browser);
  await page.route("https://unpkg.com/**", async (route) => {
    const file = CDN[route.request().url()];
    if (!file) return route.abort();
    const body = readFileSync(path.join(root, "e2e", "node_modules", file));
    await route.fulfill({ body, contentType: "text/javascript", headers: { "Access-Control-Allow-Origin": "*" } });
  });
  return page;
}

/** From now on, `window.lhBack` resolves with the page's lh:recovered detail or "resynced".
 * @param {import("playwright-core").Page} page */
export async function watchBack(page) {
  await page.evaluate(() => {
    const root = document.querySelector("[lh-connect]");
    window.lhBack = new Promise((resolve) => {
      root.addEventListener("lh:recovered", (e) => resolve(e.detail), { once: true });
      root.addEventListener("lh:resynced", () => resolve("resynced"), { once: true });
      setTimeout(() => resolve("neither lh:recovered nor lh:resynced within 20 s"), 20_000);
    });
  });
}


/** A port nobody listens on now (the kernel's pick). */
export function freePort() {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts on `port`. */
export async function accepting(port) {
  for (let i = 0; i < 200; i++) {
    const open = await new Promise((resolve) => {
      const socket = net.connect(port, "127.0.0.1", () => { socket.end(); resolve(true); });
      socket.on("error", () => resolve(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`nothing listens on ${port}`);
}

/**
 * nginx (one process, stopped after the test) running `deploy/<conf>` with its @PREFIX@ and
 * @PORT@ filled in (a temporary prefix, a free port) and `values` ({"@NAME@": text}) for the
 * rest. `prefix` is made first, for files the values name (a certificate). Resolves to the port
 * once nginx accepts on it.
 * @param {import("node:test").TestContext} t @param {string} nginx @param {string} conf
 * @param {(prefix: string) => Record<string, string>} values
 */
export async function runNginx(t, nginx, conf, values) {
  const prefix = tempDir("livehtml-nginx-");
  mkdirSync(path.join(prefix, "body"));
  const port = await freePort();
  let text = readFileSync(path.join(root, "deploy", conf), "utf8").replaceAll("@PREFIX@", prefix)
    .replaceAll("@PORT@", String(port));
  for (const [name, value] of Object.entries(values(prefix))) text = text.replaceAll(name, value);
  const file = path.join(prefix, "nginx.conf");
  writeFileSync(file, text);
  // One process (no workers a killed master would leave behind, holding the test's output
  // open); its errors go to error.log in the prefix.
  const proc = spawn(nginx, ["-p", prefix, "-c", file, "-g", "daemon off; master_process off;"], { stdio: "ignore" });
  const exited = new Promise((resolve) => proc.once("exit", resolve));
  t.after(async () => {
    proc.kill("SIGTERM");
    await exited;
  });
  await accepting(port);
  return port;
}

/** Whether something answers on 127.0.0.1:`port` (a broker the tests need). */
export function listening(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.once("connect", () => { socket.destroy(); resolve(true); });
    socket.once("error", () => resolve(false));
  });
}

/** `true` when every need of a test is met; otherwise the test is skipped (and `false`), or,
 * under LIVEHTML_REQUIRE_ALL=1, fails. @param {import("node:test").TestContext} t
 * @param {Array<[boolean, string]>} list  each: whether it is met, and what is missing if not */
export function needs(t, list) {
  for (const [met, missing] of list) {
    if (met) continue;
    if (process.env.LIVEHTML_REQUIRE_ALL === "1") throw new Error(missing);
    t.skip(missing);
    return false;
  }
  return true;
}
