// A second generator for the SSE tables, written apart from lhbench: its streams are the
// `eventsource` npm client (what a Node program uses to read Server-Sent Events, on undici's
// fetch), its sender is fetch. One Node process, one thread.
//
//   node bench/peers/sse-client/generator.mjs --mode burst --clients 1000 --messages 200 -- <server command>
//   node bench/peers/sse-client/generator.mjs --mode idle --clients 5000 -- <server command>
//   node bench/peers/sse-client/generator.mjs --mode idle --ws --clients 5000 -- <server command>
//
// --ws: the idle connections are WebSockets to /ws instead (the `ws` npm client), for the
// WebSocket peers' memory per connection under a client that is not lhbench.
//
// The server is started with PORT set (every peer in bench/peers reads it) and must serve
// GET /sse (a stream) and POST /post ({"name", "message"}: one event to every stream).
// burst: all posts are sent at once (16 in flight); deliveries/s is every stream's events over
// the time from the first post to the last event; server CPU is read from /proc.
// idle: the server's RSS before and after the streams opened, per stream.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import net from "node:net";
import { EventSource } from "eventsource";
import WebSocket from "ws";

const args = process.argv.slice(2);
const split = args.indexOf("--");
const opts = Object.fromEntries(
  args.slice(0, split).reduce((pairs, a, i, all) => (a.startsWith("--") ? [...pairs, [a.slice(2), all[i + 1]]] : pairs), []),
);
const command = args.slice(split + 1);
const mode = opts.mode ?? "burst";
const overWebSocket = args.slice(0, split).includes("--ws");
const clients = Number(opts.clients ?? 1000);
const messages = Number(opts.messages ?? 200);

const port = await freePort();
const server = spawn(command[0], command.slice(1), { env: { ...process.env, PORT: String(port) }, stdio: "ignore" });
const base = `http://127.0.0.1:${port}`;
try {
  await until(() => connectable(port), 20_000);
  const result = mode === "idle" ? await idle() : await burst();
  console.log(JSON.stringify({ mode, clients, messages: mode === "idle" ? 0 : messages, ...result }));
} finally {
  server.kill("SIGKILL");
}
process.exit(0);

async function burst() {
  let delivered = 0;
  let last = 0;
  const total = clients * messages;
  let done;
  const finished = new Promise((resolve) => (done = resolve));
  const streams = await openStreams((source) => {
    source.onmessage = () => {
      delivered += 1;
      if (delivered === total) {
        last = performance.now();
        done();
      }
    };
  });
  const cpu0 = cpuTicks(server.pid);
  const start = performance.now();
  let next = 0;
  const sender = async () => {
    while (next < messages) {
      const i = next++;
      const body = JSON.stringify({ name: "bench", message: `hello ${i}` });
      const res = await fetch(`${base}/post`, { method: "POST", headers: { "content-type": "application/json" }, body });
      await res.arrayBuffer();
    }
  };
  await Promise.all(Array.from({ length: 16 }, sender));
  const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error(`${delivered}/${total} delivered`)), 120_000));
  await Promise.race([finished, timeout]);
  const cpu = cpuTicks(server.pid) - cpu0;
  for (const s of streams) s.close();
  const seconds = (last - start) / 1000;
  return {
    deliveries_per_s: Math.round(total / seconds),
    seconds: Number(seconds.toFixed(3)),
    server_cpu_us_per_delivery: Number(((cpu * 10_000) / total).toFixed(2)),
  };
}

async function idle() {
  await sleep(1000);
  const before = rssKb(server.pid);
  const streams = overWebSocket ? await openSockets() : await openStreams(() => {});
  await sleep(3000);
  const after = rssKb(server.pid);
  for (const s of streams) s.close();
  const perConnection = Number(((after - before) / clients).toFixed(2));
  return overWebSocket ? { rss_kb_per_socket: perConnection } : { rss_kb_per_stream: perConnection };
}

/// Opens every stream and resolves once each has opened and received its first event (or,
/// for a server that sends none, a moment after it opened).
async function openStreams(setup) {
  const streams = [];
  const opened = [];
  for (let i = 0; i < clients; i++) {
    const source = new EventSource(`${base}/sse`);
    setup(source);
    opened.push(new Promise((resolve, reject) => {
      source.addEventListener("open", () => resolve());
      source.addEventListener("error", (e) => reject(new Error(`stream ${i}: ${e.message ?? "error"}`)), { once: true });
    }));
    streams.push(source);
    if (i % 100 === 99) await Promise.all(opened.slice(i - 99));
  }
  await Promise.all(opened);
  // A stream is subscribed on the server a moment after its head went out.
  await sleep(500);
  return streams;
}

/// Opens every WebSocket (100 at a time) and resolves once each has opened.
async function openSockets() {
  const sockets = [];
  const opened = [];
  for (let i = 0; i < clients; i++) {
    const socket = new WebSocket(`${base.replace("http", "ws")}/ws`);
    opened.push(new Promise((resolve, reject) => {
      socket.once("open", resolve);
      socket.once("error", (e) => reject(new Error(`socket ${i}: ${e.message}`)));
    }));
    sockets.push(socket);
    if (i % 100 === 99) await Promise.all(opened.slice(i - 99));
  }
  await Promise.all(opened);
  // A socket joins its room a moment after the upgrade's answer.
  await sleep(500);
  return sockets;
}

function cpuTicks(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]);
}

function rssKb(pid) {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(status.match(/VmRSS:\s+(\d+)/)[1]);
}

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function connectable(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1", () => {
      socket.destroy();
      resolve(true);
    });
    socket.on("error", () => resolve(false));
  });
}

async function until(check, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await sleep(50);
  }
  throw new Error("the server did not start");
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}
