// Benchmark peer: the seed's chat on Bun's server, with its built-in pub/sub.
// Run with: PORT=8080 bun bun/server.mjs
const time = () => new Date().toTimeString().slice(0, 8);
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
      msg.time = time();
      server.publish("chat", JSON.stringify(msg));
    },
  },
});
