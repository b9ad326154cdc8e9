// Benchmark peer: the seed's chat on Node's `ws`. Run with: PORT=8080 node node-ws/server.mjs
import { WebSocketServer } from "ws";

const time = () => new Date().toTimeString().slice(0, 8);
const wss = new WebSocketServer({ host: "127.0.0.1", port: Number(process.env.PORT ?? 8080), path: "/ws" });
wss.on("connection", (ws) => {
  ws.on("message", (data) => {
    const msg = JSON.parse(data);
    msg.time = time();
    const out = JSON.stringify(msg);
    for (const client of wss.clients) if (client.readyState === 1) client.send(out);
  });
});
