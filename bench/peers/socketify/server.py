"""Benchmark peer: the seed's chat on socketify (uWebSockets for Python), with its pub/sub.

Run with: PORT=8080 python socketify/server.py
"""
import json
import os
import time

from socketify import App, AppListenOptions, OpCode

app = App()


def on_open(ws):
    ws.subscribe("chat")


def on_message(ws, message, opcode):
    msg = json.loads(message)
    msg["time"] = time.strftime("%H:%M:%S", time.localtime())
    app.publish("chat", json.dumps(msg), OpCode.TEXT)


app.ws("/ws", {"open": on_open, "message": on_message, "max_backpressure": 256 * 1024 * 1024, "idle_timeout": 0})
app.listen(AppListenOptions(port=int(os.environ.get("PORT", "8080")), host="127.0.0.1"), lambda config: None)
app.run()
