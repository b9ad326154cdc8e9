"""Benchmark peer: the seed's chat over Server-Sent Events on FastAPI with sse-starlette:
streams at GET /sse (an asyncio queue each), messages POSTed to /post and put on every queue.
Run with: PORT=8080 python fastapi-sse/app.py"""

import asyncio
import json
import os
import time

import uvicorn
from fastapi import FastAPI, Request, Response
from sse_starlette.sse import EventSourceResponse

app = FastAPI()
streams: set[asyncio.Queue] = set()


@app.get("/sse")
async def sse(request: Request):
    queue: asyncio.Queue = asyncio.Queue(maxsize=2048)
    streams.add(queue)

    async def events():
        try:
            while True:
                yield {"data": await queue.get()}
        finally:
            streams.discard(queue)

    return EventSourceResponse(events(), ping=3600)


@app.post("/post")
async def post(request: Request):
    msg = await request.json()
    msg["time"] = time.strftime("%H:%M:%S")
    data = json.dumps(msg)
    for queue in list(streams):
        if not queue.full():
            queue.put_nowait(data)
    return Response(status_code=204)


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ.get("PORT", "8080")), log_level="warning")
