// What keeping a live view's state in the broker costs (issue 26): the round trip of a click on
// the demo's counter (an `inc` event over the view's WebSocket, until the page gets the new
// count), alone and in a cluster on Redis or NATS, where the counter opts in to outliving its
// process and each click waits for the broker to take its state before the page is told.
//
//   node --experimental-websocket bench/probes/views.mjs [events]
//
// Loopback only; bounded by the number of events. Node's own WebSocket is the client.
import { startDemo } from "./demo.mjs";

const events = Number(process.argv[2] || 2000);
const start = (flags) => startDemo(["--message-rate", "0", ...flags]);

async function run(name, flags) {
  const server = await start(flags);
  try {
    const page = await (await fetch(`${server.url}/counter`)).text();
    const connect = page.match(/lh-connect="([^"]+)"/)[1].replaceAll("&amp;", "&");
    const ws = new WebSocket(`${server.url.replace("http", "ws")}${connect}&client=lh`);
    let waiting = null;
    ws.onmessage = (e) => { if (waiting && String(e.data).includes(waiting.text)) waiting.done(); };
    await new Promise((resolve) => { ws.onopen = resolve; });
    const click = (n) => new Promise((resolve) => {
      const started = process.hrtime.bigint();
      waiting = { text: `id="mine">${n}<`, done: () => resolve(Number(process.hrtime.bigint() - started) / 1e3) };
      ws.send(JSON.stringify({ HEADERS: { "HX-Request": "true", "LH-Client": "1", "LH-Event": "inc" } }));
    });
    for (let n = 1; n <= 200; n++) await click(n); // warm-up
    const took = [];
    for (let n = 201; n <= 200 + events; n++) took.push(await click(n));
    ws.close();
    took.sort((a, b) => a - b);
    const at = (p) => took[Math.min(took.length - 1, Math.floor(took.length * p))].toFixed(0);
    console.log(`| ${name} | ${at(0.5)} | ${at(0.9)} | ${at(0.99)} |`);
  } finally {
    server.proc.kill("SIGKILL");
  }
}

const ns = `lhviews-${process.pid}-${Date.now()}`;
console.log(`${events} clicks each, µs from the event sent to the new count received`);
console.log("| counter view | p50 | p90 | p99 |\n|---|---|---|---|");
await run("alone (kept in its process)", []);
await run("on Redis (kept in Redis)", ["--pubsub", "redis://127.0.0.1:6379", "--pubsub-namespace", `${ns}-r`]);
await run("on NATS (kept in JetStream)", ["--pubsub", "nats://127.0.0.1:4222", "--pubsub-namespace", `${ns}-n`]);
