"""The agent's capability registry: which request methods it serves, and how a request is answered.

Each capability module (system, job_runner, fs, pty, vnc) exports a :class:`Capability`: its handlers
keyed by the request's model class in :mod:`embedded_server.protocol`. The :class:`Registry` parses a
request's params with that model (a mismatch answers ``VALIDATION_ERROR``, the API's 400), hands the
handler the typed call and turns what it returns or raises into the response. A handler that is a
coroutine function runs on the event loop (quick, loop-bound work: jobs, opening a stream); a plain
function runs in a worker thread, so slow file system work never delays heartbeats.

A handler of a :class:`~embedded_server.protocol.StreamCall` returns a :class:`StreamReply`: the answer,
and the coroutine that serves the stream the agent then dials back with the call's ``stream_id``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from .. import protocol
from .streams import ServeStream, StreamDialer

log = logging.getLogger("oc_agent")

Handler = Callable[[Any], Any]  # (typed call) -> result dict | StreamReply, or an awaitable of one


@dataclass(frozen=True)
class StreamReply:
    """What a stream handler answers: ``result`` for the request, then ``serve`` on the dialled stream.

    ``release`` runs when the stream could not be dialled, to free what the handler opened (an fd, a
    shell, a VNC connection).
    """

    result: dict[str, Any]
    serve: ServeStream
    release: Callable[[], None] | None = None


@dataclass(frozen=True)
class Capability:
    """One area of what the agent can do: a name and its handlers keyed by request model class."""

    name: str
    handlers: Mapping[type[protocol.Call], Handler] = field(default_factory=dict)


def validation_message(exc: ValidationError) -> str:
    """A one-line, readable account of what is wrong with a request's params (``field: problem; …``)."""
    problems = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "params"
        problems.append(f"{where}: {error['msg']}")
    return "; ".join(problems) or "invalid params"


class Registry:
    """The request methods of a list of capabilities, and the dispatch of one request to its handler.

    Args:
        capabilities: what this agent offers; a method may appear in one capability only.
        streams: dials the request streams that stream handlers ask for.

    Raises:
        ValueError: two capabilities serve the same method.
    """

    def __init__(self, capabilities: Iterable[Capability], streams: StreamDialer) -> None:
        self.streams = streams
        self._routes: dict[str, tuple[type[protocol.Call], Handler]] = {}
        for capability in capabilities:
            for model, handler in capability.handlers.items():
                if model.METHOD in self._routes:
                    raise ValueError(f"{model.METHOD} is served twice (again by {capability.name})")
                self._routes[model.METHOD] = (model, handler)

    def methods(self) -> list[str]:
        """The method names served, sorted (the hello's ``capabilities``)."""
        return sorted(self._routes)

    async def answer(self, method: Any, params: Any) -> dict[str, Any]:
        """The response body for one request: ``{"result": …}`` or ``{"error": {"code", "message"}}``.

        Never raises (except cancellation): a failing handler is logged and answered ``HANDLER_FAILED``.
        """
        route = self._routes.get(method) if isinstance(method, str) else None
        if route is None:
            return _error("UNKNOWN_METHOD", f"unknown method {method!r}")
        model, handler = route
        try:
            call = model.model_validate(params or {})
        except ValidationError as exc:
            return _error("VALIDATION_ERROR", f"{method}: {validation_message(exc)}")
        if isinstance(call, protocol.StreamCall) and not call.stream_id:
            return _error("VALIDATION_ERROR", "stream_id is required")
        try:
            if inspect.iscoroutinefunction(handler):
                result = await handler(call)
            else:
                result = await asyncio.to_thread(handler, call)
        except protocol.AgentError as exc:  # the handler's verdict on the request (no such file …)
            return _error(exc.code, exc.message)
        except Exception as exc:  # a failing handler answers with an error, never kills the agent
            log.exception("%s failed", method)
            return _error("HANDLER_FAILED", f"{type(exc).__name__}: {exc}")
        if isinstance(result, StreamReply):
            if not isinstance(call, protocol.StreamCall):  # a bug of the capability, not of the request
                return _error("HANDLER_FAILED", f"{method} answered with a stream it has no stream_id for")
            self.streams.spawn(call.stream_id, result.serve, on_fail=result.release)
            return {"result": result.result}
        return {"result": result}


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}
