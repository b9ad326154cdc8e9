// What opening long-poll sessions costs (issue 26, point 5): one client on four kept-alive
// connections opens N sessions on the demo's `/ws/chat` with plain GETs (each runs the chat's
// join: presence, and the online count to every session), as fast as the server answers.
// Prints how long the opens took, how many were refused (429: the per-address connection
// rate), the server's CPU time, and how many sessions were closed as slow consumers.
//
//   node bench/probes/polls.mjs [sessions] [demo flags...]
//   node bench/probes/polls.mjs 20000 --connection-rate 0   # no per-address limit
//   DEMO=/path/to/livehtml-demo node bench/probes/polls.mjs ...  # another build
//
// Loopback only; bounded by the number of sessions. Node's own http client is the client.
import { readFileSync } from "node:fs";
import http from "node:http";
import { startDemo } from "./demo.mjs";

const sessions = Number(process.argv[2] || 20000);
const flags = process.argv.slice(3);
const server = await startDemo(flags);
/** The server's user + system CPU time, in seconds (from /proc). */
const cpu = () => {
  const fields = readFileSync(`/proc/${server.proc.pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
};
const metric = async (name) => {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  return [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+)`, "gm"))].reduce((s, m) => s + Number(m[1]), 0);
};
try {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const get = (url) => new Promise((resolve, reject) => {
    http.get(url, { agent }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode));
    }).on("error", reject);
  });
  const started = Date.now();
  const cpu0 = cpu();
  let next = 0;
  const counts = {};
  const worker = async () => {
    while (next < sessions) {
      next++;
      const status = await get(`${server.url}/ws/chat?lh-poll=1&client=lh`);
      counts[status] = (counts[status] || 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  const took = (Date.now() - started) / 1000;
  // The joins' work goes on after the answers: wait until the server is idle again.
  let before = cpu();
  for (;;) {
    await new Promise((r) => setTimeout(r, 1000));
    const now = cpu();
    if (now - before < 0.05) break;
    before = now;
  }
  const busy = cpu() - cpu0;
  const slow = await metric("livehtml_slow_consumers_total");
  console.log(`${sessions} opens in ${took.toFixed(1)} s, answers ${JSON.stringify(counts)}; server CPU ${busy.toFixed(1)} s; ` +
    `${slow} sessions closed as slow consumers; flags: ${flags.join(" ") || "(defaults)"}`);
} finally {
  server.proc.kill("SIGKILL");
}
