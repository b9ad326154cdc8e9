// Benchmark peer: the seed's chat over Server-Sent Events on Bun: streams at GET /sse (a
// ReadableStream each), messages POSTed to /post and enqueued to every stream as one event.
// Run with: PORT=8080 bun bun-sse/server.mjs
const time = () => new Date().toTimeString().slice(0, 8);
const encoder = new TextEncoder();
const streams = new Set();
Bun.serve({
  hostname: "127.0.0.1",
  port: Number(process.env.PORT ?? 8080),
  idleTimeout: 0,
  async fetch(req) {
    const url = new URL(req.url);
    if (req.method === "GET" && url.pathname === "/sse") {
      let controller;
      const body = new ReadableStream({
        type: "direct",
        pull(c) {
          controller = c;
          streams.add(c);
          c.write(": open\n\n");
          c.flush();
          return new Promise(() => {});
        },
        cancel() {
          streams.delete(controller);
        },
      });
      return new Response(body, { headers: { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" } });
    }
    if (req.method === "POST" && url.pathname === "/post") {
      const msg = await req.json();
      msg.time = time();
      const event = encoder.encode(`data: ${JSON.stringify(msg)}\n\n`);
      for (const c of streams) {
        c.write(event);
        c.flush();
      }
      return new Response(null, { status: 204 });
    }
    return new Response("not found", { status: 404 });
  },
});
