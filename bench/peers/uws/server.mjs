// Benchmark peer: the seed's chat on uWebSockets.js, with its built-in pub/sub.
// Run with: PORT=8080 node uws/server.mjs
// PAYLOAD=html: send what livehtml's peer sends, byte for byte (the chat line as an escaped htmx
// out-of-band fragment) instead of JSON, so a comparison can hold the payload equal.
import uWS from "@trufflesuite/uws-js-unofficial";
import { line } from "../html-line.mjs";

const time = () => new Date().toTimeString().slice(0, 8);
const html = process.env.PAYLOAD === "html";
const decoder = new TextDecoder();
const app = uWS.App();
app.ws("/ws", {
  // Large enough that no message of the burst is dropped (uWS drops silently past the limit).
  maxBackpressure: 256 * 1024 * 1024,
  idleTimeout: 0,
  open: (ws) => ws.subscribe("chat"),
  message: (ws, data) => {
    const msg = JSON.parse(decoder.decode(data));
    if (html) return app.publish("chat", line(msg), false);
    msg.time = time();
    app.publish("chat", JSON.stringify(msg), false);
  },
});
app.listen("127.0.0.1", Number(process.env.PORT ?? 8080), (ok) => {
  if (!ok) process.exit(1);
});
