// Benchmark peer: the seed's chat on uWebSockets.js, with its built-in pub/sub.
// Run with: PORT=8080 node uws/server.mjs
import uWS from "@trufflesuite/uws-js-unofficial";

const time = () => new Date().toTimeString().slice(0, 8);
const decoder = new TextDecoder();
const app = uWS.App();
app.ws("/ws", {
  // Large enough that no message of the burst is dropped (uWS drops silently past the limit).
  maxBackpressure: 256 * 1024 * 1024,
  idleTimeout: 0,
  open: (ws) => ws.subscribe("chat"),
  message: (ws, data) => {
    const msg = JSON.parse(decoder.decode(data));
    msg.time = time();
    app.publish("chat", JSON.stringify(msg), false);
  },
});
app.listen("127.0.0.1", Number(process.env.PORT ?? 8080), (ok) => {
  if (!ok) process.exit(1);
});
