"""A small web app for the tunnel tests, run on the "host" as its own process:
``python tests/tunnel_app.py PORT``.

- ``/echo/…``: the request as JSON (method, path, query, headers, body size and SHA-256), body streamed
- ``/big?size=N``: N bytes (a repeating pattern), streamed with a Content-Length
- ``/chunks?n=N&delay=S``: N chunks, chunked, S seconds apart
- ``/sse?n=N&delay=S``: N server-sent events, S seconds apart
- ``/status/{code}``: that status with a body of its own
- ``/ws``: a WebSocket that echoes text and bytes
- ``/``: a page that uses both (relative URLs, so it works under a tunnel's prefix), for a browser
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

PATTERN = bytes(range(256)) * 256  # 64 KiB


async def echo(request: Request) -> JSONResponse:
    digest, size = hashlib.sha256(), 0
    async for chunk in request.stream():
        digest.update(chunk)
        size += len(chunk)
    return JSONResponse(
        {
            "method": request.method,
            "path": request.url.path,
            "raw_path": request.scope["raw_path"].decode(),
            "query": request.url.query,
            "headers": [[k.decode(), v.decode()] for k, v in request.scope["headers"]],
            "size": size,
            "sha256": digest.hexdigest(),
        },
        headers={"X-App": "yes"},
    )


async def big(request: Request) -> StreamingResponse:
    size = int(request.query_params.get("size", "0"))

    async def body():  # type: ignore[no-untyped-def]
        left = size
        while left > 0:
            chunk = PATTERN[: min(left, len(PATTERN))]
            left -= len(chunk)
            yield chunk

    return StreamingResponse(
        body(), headers={"Content-Length": str(size)}, media_type="application/octet-stream"
    )


async def chunks(request: Request) -> StreamingResponse:
    n, delay = int(request.query_params.get("n", "3")), float(request.query_params.get("delay", "0.3"))

    async def body():  # type: ignore[no-untyped-def]
        for i in range(n):
            yield f"chunk {i}\n".encode()
            await asyncio.sleep(delay)

    return StreamingResponse(body(), media_type="text/plain")


async def sse(request: Request) -> StreamingResponse:
    n, delay = int(request.query_params.get("n", "3")), float(request.query_params.get("delay", "0.3"))

    async def body():  # type: ignore[no-untyped-def]
        for i in range(n):
            yield f"id: {i}\ndata: {json.dumps({'n': i})}\n\n"
            await asyncio.sleep(delay)

    return StreamingResponse(body(), media_type="text/event-stream")


PAGE = """<!doctype html><meta charset=utf-8><title>tunnel demo</title>
<style>body{font:16px system-ui;margin:2em}li{margin:.2em 0}</style>
<h1>An app on the host</h1><p id=where></p><ul id=log></ul>
<script>
const log = (text) => { const li = document.createElement("li"); li.textContent = text; log_.appendChild(li); };
const log_ = document.getElementById("log");
document.getElementById("where").textContent = "served at " + location.href;
const ws = new WebSocket(location.href.replace(/^http/, "ws").replace(/[^/]*$/, "") + "ws");
ws.onopen = () => ws.send("hello over the tunnel");
ws.onmessage = (e) => log("WebSocket: " + e.data);
const events = new EventSource("sse?n=3&delay=0.2");
events.onmessage = (e) => { log("SSE event " + e.lastEventId + ": " + e.data); if (e.lastEventId === "2") events.close(); };
</script>"""


async def page(request: Request) -> Response:
    return Response(PAGE, media_type="text/html")


async def status(request: Request) -> Response:
    code = int(request.path_params["code"])
    return Response(f"the app says {code}", status_code=code, media_type="text/plain")


async def ws_echo(ws: WebSocket) -> None:
    await ws.accept(subprotocol=(ws.scope.get("subprotocols") or [None])[0])
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await ws.send_text("echo: " + message["text"])
            elif message.get("bytes") is not None:
                await ws.send_bytes(message["bytes"])
    except WebSocketDisconnect:
        return


app = Starlette(
    routes=[
        Route(
            "/echo/{rest:path}", echo, methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
        ),
        Route("/", page),
        Route("/big", big),
        Route("/chunks", chunks),
        Route("/sse", sse),
        Route("/status/{code}", status),
        WebSocketRoute("/ws", ws_echo),
    ]
)

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", ws="websockets-sansio")
