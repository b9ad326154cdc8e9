// Benchmark peer: bun/server.mjs sending what livehtml's peer sends, byte for byte: the chat
// line as an htmx out-of-band fragment, escaped, instead of JSON (so a comparison can hold the
// payload equal and see the transport alone).
// Run with: PORT=8080 bun bun-html/server.mjs
const time = () => new Date().toTimeString().slice(0, 8);
const escape = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
const line = (msg) =>
  `<ul id="messages" hx-swap-oob="beforeend"><li>[${time()}] <strong>${escape(msg.name ?? "Anonymous")}</strong>: ${escape(msg.message ?? "")}</li></ul>`;
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
      server.publish("chat", line(JSON.parse(String(data))));
    },
  },
});
