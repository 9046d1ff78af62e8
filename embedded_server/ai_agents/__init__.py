"""The AI agents section (the reference's "Agents"): sessions that work on a host through tools, driven
by a model behind an OpenAI-compatible endpoint. Named ``ai_agents`` to keep them apart from ``oc-agent``,
the host process (``embedded_server/agent/``); the TUI calls them Agents.

``store`` (sessions, transcripts, numbered events, the tenants' model configuration), ``loop`` (the
loop, in the control plane), ``tools`` (the tools, over the jobs and fs paths), ``routes``.
"""

from __future__ import annotations

from fastapi import FastAPI

from ..deps import API_PREFIX
from .loop import Runner
from .routes import router
from .store import ModelConfig, SessionStore


def install(app: FastAPI) -> None:
    """Create the session store (``app.state.ai_sessions``) and runner (``app.state.ai_runner``), resume
    unfinished sessions at start-up, and add the routes. Needs the jobs section installed first."""
    state = app.state
    settings = state.settings
    default = ModelConfig(settings.ai_base_url.rstrip("/"), settings.ai_model, settings.ai_key_secret)
    store = SessionStore(state.db, default)
    runner = Runner(store, state.hub, state.jobs, state, settings.ai_call_timeout)
    state.ai_sessions = store
    state.ai_runner = runner
    state.lifecycle.on_start.append(runner.resume_all)
    state.lifecycle.on_stop.append(runner.stop)
    state.lifecycle.on_close.append(runner.stop)  # a server closed without a stop signal (tests)
    app.include_router(router, prefix=API_PREFIX)
