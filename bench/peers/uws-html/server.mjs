// Benchmark peer: uws/server.mjs sending what livehtml's peer sends, byte for byte: the chat
// line as an htmx out-of-band fragment, escaped, instead of JSON.
// Run with: PORT=8080 node uws-html/server.mjs
import uWS from "@trufflesuite/uws-js-unofficial";

const time = () => new Date().toTimeString().slice(0, 8);
const escape = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
const line = (msg) =>
  `<ul id="messages" hx-swap-oob="beforeend"><li>[${time()}] <strong>${escape(msg.name ?? "Anonymous")}</strong>: ${escape(msg.message ?? "")}</li></ul>`;
const decoder = new TextDecoder();
const app = uWS.App();
app.ws("/ws", {
  // Large enough that no message of the burst is dropped (uWS drops silently past the limit).
  maxBackpressure: 256 * 1024 * 1024,
  idleTimeout: 0,
  open: (ws) => ws.subscribe("chat"),
  message: (ws, data) => {
    app.publish("chat", line(JSON.parse(decoder.decode(data))), false);
  },
});
app.listen("127.0.0.1", Number(process.env.PORT ?? 8080), (ok) => {
  if (!ok) process.exit(1);
});
