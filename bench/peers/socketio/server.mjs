// Benchmark peer: the seed's chat on Socket.IO (WebSocket transport only).
// Run with: PORT=8080 node socketio/server.mjs
import { createServer } from "node:http";
import { Server } from "socket.io";

const time = () => new Date().toTimeString().slice(0, 8);
const http = createServer();
const io = new Server(http, { transports: ["websocket"], serveClient: false });
io.on("connection", (socket) => {
  socket.on("chat", (msg) => {
    msg.time = time();
    io.emit("chat", msg);
  });
});
http.listen(Number(process.env.PORT ?? 8080), "127.0.0.1");
