// Benchmark peer: the seed's chat on Bun's server, with its built-in pub/sub.
// Run with: PORT=8080 bun bun/server.mjs
// PAYLOAD=html: send what livehtml's peer sends, byte for byte (the chat line as an escaped htmx
// out-of-band fragment) instead of JSON, so a comparison can hold the payload equal.
import { line } from "../html-line.mjs";

const time = () => new Date().toTimeString().slice(0, 8);
const html = process.env.PAYLOAD === "html";
const server = Bun.serve({
  hostname: "127.0.0.1",
  port: Number(process.env.PORT ?? 8080),
  fetch(req, server) {
    if (new URL(req.url).pathname === "/ws" && server.upgrade(req)) return;
    return new Response("chat peer", { status: 404 });
  },
  websocket: {
    backpressureLimit: 256 * 1024 * 1024,
    closeOnBackpressureLimit: false,
    idleTimeout: 0,
    open(ws) {
      ws.subscribe("chat");
    },
    message(ws, data) {
      const msg = JSON.parse(String(data));
      if (html) return server.publish("chat", line(msg));
      msg.time = time();
      server.publish("chat", JSON.stringify(msg));
    },
  },
});
