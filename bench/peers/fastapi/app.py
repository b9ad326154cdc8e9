"""Benchmark peer: the seed's FastAPI chat, as written there (one send per client, awaited).

Run with: PORT=8080 python fastapi/app.py
"""
import json
import os
import time

import uvicorn
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

app = FastAPI()
clients = []


@app.websocket("/ws")
async def chat(websocket: WebSocket):
    await websocket.accept()
    clients.append(websocket)
    try:
        while True:
            message = await websocket.receive_json()
            message["time"] = time.strftime("%H:%M:%S", time.localtime())
            text = json.dumps(message)
            for client in list(clients):
                await client.send_text(text)
    except WebSocketDisconnect:
        pass
    finally:
        if websocket in clients:
            clients.remove(websocket)


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ.get("PORT", "8080")), log_level="warning")
