// Benchmark peer: the seed's chat over Server-Sent Events on Node's `http`: streams at GET
// /sse, messages POSTed to /post and written to every stream as one event.
// Run with: PORT=8080 node node-sse/server.mjs
import http from "node:http";

const time = () => new Date().toTimeString().slice(0, 8);
const streams = new Set();
http
  .createServer((req, res) => {
    if (req.method === "GET" && req.url === "/sse") {
      res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" });
      res.write(": open\n\n");
      streams.add(res);
      req.on("close", () => streams.delete(res));
    } else if (req.method === "POST" && req.url === "/post") {
      let body = "";
      req.on("data", (chunk) => (body += chunk));
      req.on("end", () => {
        const msg = JSON.parse(body);
        msg.time = time();
        const event = `data: ${JSON.stringify(msg)}\n\n`;
        // Corked until the next tick: a burst of posts is one write per stream, not one each.
        for (const s of streams) {
          if (!s.writableCorked) {
            s.cork();
            process.nextTick(() => s.uncork());
          }
          s.write(event);
        }
        res.writeHead(204).end();
      });
    } else {
      res.writeHead(404).end();
    }
  })
  .listen(Number(process.env.PORT ?? 8080), "127.0.0.1");
