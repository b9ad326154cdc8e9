"""Benchmark peer: the seed's chat on Tornado. Run with: PORT=8080 python tornado/server.py"""
import asyncio
import json
import os
import time

import tornado.web
import tornado.websocket

clients = set()


class Chat(tornado.websocket.WebSocketHandler):
    def check_origin(self, origin):
        return True

    def open(self):
        clients.add(self)

    def on_message(self, message):
        msg = json.loads(message)
        msg["time"] = time.strftime("%H:%M:%S", time.localtime())
        text = json.dumps(msg)
        for client in list(clients):
            try:
                client.write_message(text)
            except tornado.websocket.WebSocketClosedError:
                clients.discard(client)

    def on_close(self):
        clients.discard(self)


async def main():
    app = tornado.web.Application([(r"/ws", Chat)])
    app.listen(int(os.environ.get("PORT", "8080")), address="127.0.0.1")
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
