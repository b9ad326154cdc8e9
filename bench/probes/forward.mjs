// What forwarding costs: the round trip of an SSE page's event POST (sent → 204, which comes
// only once the session took it) answered by the process that holds the stream, against the
// same POST sent to another process of the cluster, which carries it there through the broker.
// Two demo processes (release build) on one broker; one stream on the first; POSTs one at a
// time, interleaved local / forwarded, so both see the same machine.
//
//   node bench/probes/forward.mjs [redis://127.0.0.1:6379 | nats://127.0.0.1:4222] [events]
//
// Loopback only; bounded by the number of events. Node's own fetch is the client.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { startDemo } from "./demo.mjs";

const broker = process.argv[2] || "redis://127.0.0.1:6379";
const events = Number(process.argv[3] || 2000);
const data = mkdtempSync(path.join(tmpdir(), "lh-forward-"));
const namespace = `lhfwd-${process.pid}-${Date.now()}`;
const start = () => startDemo(["--pubsub", broker, "--pubsub-namespace", namespace, "--message-rate", "0"], data);

const [a, b] = [await start(), await start()];
try {
  const stream = await fetch(`${a.url}/ws/echo`, { headers: { Accept: "text/event-stream" } });
  const reader = stream.body.getReader();
  let seen = "";
  let id;
  while (!id) {
    seen += new TextDecoder().decode((await reader.read()).value);
    id = seen.match(/event: lh-stream\ndata: (\S+)\n/)?.[1];
  }
  // The stream is read (and dropped) as it comes, so its queue never fills.
  (async () => { while (!(await reader.read()).done); })().catch(() => {}); // ends when the processes are stopped
  const post = async (url) => {
    const started = process.hrtime.bigint();
    const r = await fetch(`${url}/ws/echo`, { method: "POST", headers: { "LH-Stream": id, "Content-Type": "application/json" },
      body: JSON.stringify({ message: "x", HEADERS: { "HX-Request": "true" } }) });
    await r.arrayBuffer();
    if (r.status !== 204) throw new Error(`POST answered ${r.status}`);
    return Number(process.hrtime.bigint() - started) / 1e3;
  };
  for (let i = 0; i < 200; i++) await post(i % 2 ? a.url : b.url); // warm-up
  const local = [];
  const forwarded = [];
  for (let i = 0; i < events; i++) {
    local.push(await post(a.url));
    forwarded.push(await post(b.url));
  }
  const pct = (xs, p) => xs.slice().sort((x, y) => x - y)[Math.min(xs.length - 1, Math.floor(xs.length * p))];
  const row = (name, xs) => `| ${name} | ${pct(xs, 0.5).toFixed(0)} | ${pct(xs, 0.9).toFixed(0)} | ${pct(xs, 0.99).toFixed(0)} |`;
  console.log(`${broker}, ${events} events each, µs from POST sent to 204 read`);
  console.log("| POST reaches | p50 | p90 | p99 |\n|---|---|---|---|");
  console.log(row("the stream's process", local));
  console.log(row("another process (forwarded)", forwarded));
} finally {
  a.proc.kill("SIGKILL");
  b.proc.kill("SIGKILL");
}
