"""A small LLM engine for the cluster tests and the benchmark: it speaks the real OpenAI wire format
(``/v1/models``, ``/v1/chat/completions`` streamed and not, ``/v1/completions``, ``/v1/embeddings``)
and, as ``--kind ollama``, Ollama's (``/api/tags``, ``/api/pull`` with NDJSON progress) beside it, as
Ollama does. It answers ``--tokens`` tokens, ``--delay`` seconds apart.

The test steers it with ``POST /_control`` (``ready``: answer 503 "loading" while false; ``fail``: the
next N completions answer 500 before their first byte; ``delay``, ``tokens``) and reads ``GET /_stats``
(requests, completed, cancelled: streams whose client went away before the end). ``--slots N`` lets
only N answers be generated at once, the others wait (as llama-server's ``--parallel``): then the
engine is the bottleneck, as a real one is.

Usage: python tests/fake_engine.py PORT [--kind openai|ollama] [--model NAME] [--no-model] [--slots N];
from Python: :func:`launch`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

STATE: dict[str, Any] = {
    "ready": True,
    "fail": 0,
    "delay": 0.0,
    "tokens": 5,
    "models": [],
    "requests": 0,
    "completed": 0,
    "cancelled": 0,
    "name": "engine",
    "slots": None,  # an asyncio.Semaphore, or None: no limit
}


class _NoLimit:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None


def _slot() -> Any:
    return STATE["slots"] or _NoLimit()


def _loading() -> Response | None:
    if STATE["ready"]:
        return None
    return JSONResponse(
        {"error": {"message": "Loading model", "type": "unavailable_error", "code": 503}}, 503
    )


async def models(request: Request) -> Response:
    refusal = _loading()
    if refusal is not None:
        return refusal
    now = int(time.time())
    data = [{"id": m, "object": "model", "created": now, "owned_by": "fake"} for m in STATE["models"]]
    return JSONResponse({"object": "list", "data": data})


async def tags(request: Request) -> Response:
    items = [{"name": m, "model": m, "size": 1234, "digest": "sha256:0"} for m in STATE["models"]]
    return JSONResponse({"models": items})


async def pull(request: Request) -> Response:
    body = await request.json()
    model = body.get("model") or body.get("name")

    async def progress() -> AsyncIterator[bytes]:
        yield b'{"status":"pulling manifest"}\n'
        total = 4_000_000
        for done in range(0, total + 1, 1_000_000):
            await asyncio.sleep(0.05)
            line = {"status": "pulling sha256:abc", "digest": "sha256:abc", "total": total, "completed": done}
            yield json.dumps(line).encode() + b"\n"
        yield b'{"status":"verifying sha256 digest"}\n'
        if model not in STATE["models"]:
            STATE["models"].append(model)
        yield b'{"status":"success"}\n'

    return StreamingResponse(progress(), media_type="application/x-ndjson")


async def control(request: Request) -> Response:
    STATE.update(await request.json())
    return JSONResponse({"ok": True})


async def stats(request: Request) -> Response:
    return JSONResponse({k: STATE[k] for k in ("requests", "completed", "cancelled", "ready", "models")})


def _word(i: int) -> str:
    return f"{STATE['name']}{i} "


async def completion(request: Request) -> Response:
    STATE["requests"] += 1
    refusal = _loading()
    if refusal is not None:
        return refusal
    if STATE["fail"] > 0:
        STATE["fail"] -= 1
        return JSONResponse({"error": {"message": "engine exploded", "type": "server_error"}}, 500)
    body = await request.json()
    chat = request.url.path.endswith("/chat/completions")
    model, n = body.get("model", ""), int(body.get("max_tokens") or STATE["tokens"])
    n = min(n, STATE["tokens"])
    created, ident = int(time.time()), f"cmpl-{STATE['requests']}"
    kind = "chat.completion" if chat else "text_completion"
    usage = {"prompt_tokens": 3, "completion_tokens": n, "total_tokens": 3 + n}
    if not body.get("stream"):
        async with _slot():
            await asyncio.sleep(STATE["delay"] * n)
        text = "".join(_word(i) for i in range(n))
        choice: dict[str, Any] = {"index": 0, "finish_reason": "length", "logprobs": None}
        choice.update({"message": {"role": "assistant", "content": text}} if chat else {"text": text})
        STATE["completed"] += 1
        return JSONResponse(
            {
                "id": ident,
                "object": kind,
                "created": created,
                "model": model,
                "choices": [choice],
                "usage": usage,
            }
        )

    async def events() -> AsyncIterator[bytes]:
        done = False
        try:
            async with _slot():
                for i in range(n):
                    await asyncio.sleep(STATE["delay"])
                    delta: dict[str, Any] = {"index": 0, "finish_reason": None, "logprobs": None}
                    delta.update({"delta": {"content": _word(i)}} if chat else {"text": _word(i)})
                    chunk = {"id": ident, "object": f"{kind}.chunk", "created": created, "model": model}
                    chunk["choices"] = [delta]
                    yield f"data: {json.dumps(chunk)}\n\n".encode()
            last = {
                "id": ident,
                "object": f"{kind}.chunk",
                "created": created,
                "model": model,
                "usage": usage,
            }
            end = {"index": 0, "finish_reason": "length"}
            last["choices"] = [{**end, "delta": {}} if chat else {**end, "text": ""}]
            yield f"data: {json.dumps(last)}\n\n".encode()
            yield b"data: [DONE]\n\n"
            done = True
            STATE["completed"] += 1
        finally:
            if not done:
                STATE["cancelled"] += 1

    return StreamingResponse(events(), media_type="text/event-stream")


async def embeddings(request: Request) -> Response:
    STATE["requests"] += 1
    refusal = _loading()
    if refusal is not None:
        return refusal
    body = await request.json()
    inputs = body.get("input")
    items = inputs if isinstance(inputs, list) else [inputs]
    data = [{"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]} for i in range(len(items))]
    STATE["completed"] += 1
    usage = {"prompt_tokens": len(items), "total_tokens": len(items)}
    return JSONResponse({"object": "list", "data": data, "model": body.get("model"), "usage": usage})


app = Starlette(
    routes=[
        Route("/v1/models", models),
        Route("/v1/chat/completions", completion, methods=["POST"]),
        Route("/v1/completions", completion, methods=["POST"]),
        Route("/v1/embeddings", embeddings, methods=["POST"]),
        Route("/api/tags", tags),
        Route("/api/pull", pull, methods=["POST"]),
        Route("/_control", control, methods=["POST"]),
        Route("/_stats", stats),
    ]
)


def launch(port: int, *args: str, timeout: float = 20.0) -> subprocess.Popen[bytes]:
    """Run this engine on 127.0.0.1:``port`` (``args``: the command-line options) in a process of its
    own; returns once it answers. The caller kills it."""
    child = subprocess.Popen(
        [sys.executable, __file__, str(port), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/_stats", timeout=1)
            return child
        except httpx.TransportError:
            time.sleep(0.05)
    child.kill()
    raise RuntimeError(f"the fake engine did not start on port {port}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--kind", default="openai", choices=["openai", "ollama"])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--no-model", action="store_true")
    parser.add_argument("--name", default="engine")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--tokens", type=int, default=5)
    parser.add_argument("--slots", type=int, default=0, help="answers generated at once (0: no limit)")
    args = parser.parse_args()
    STATE.update(
        models=[] if args.no_model else [args.model], name=args.name, delay=args.delay, tokens=args.tokens
    )
    if args.slots:
        STATE["slots"] = asyncio.Semaphore(args.slots)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
