"""The app factory: ``create_app(settings, services)`` builds routers, middleware and
the lifespan that starts and stops the services. Nothing is created at import."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from genyard import __version__
from genyard.api import anthropic, files, gemini, native, ops, simple, tasks
from genyard.api import openai as openai_face
from genyard.api.errors import ErrorFormats, install_error_handlers
from genyard.api.middleware import RequestContextMiddleware
from genyard.api.native.upload import UPLOAD_PATH
from genyard.config import Settings
from genyard.services.container import Services


def create_app(settings: Settings, services: Services | None = None) -> FastAPI:
    services = services or Services.build(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await services.start()
        try:
            yield
        finally:
            await services.stop()

    app = FastAPI(
        title="genyard",
        version=__version__,
        description="Self-hostable AI generation platform. Native API: /v1.",
        lifespan=lifespan,
    )
    app.state.services = services
    error_formats = ErrorFormats()
    install_error_handlers(app, error_formats)
    app.include_router(native.router())
    app.include_router(openai_face.router())
    error_formats.add(openai_face.PREFIX, openai_face.render_error)
    app.include_router(tasks.router())
    for prefix in tasks.PREFIXES:
        error_formats.add(prefix, tasks.render_error)
    app.include_router(files.router)
    app.include_router(ops.router)
    app.include_router(anthropic.router)
    error_formats.add(anthropic.PREFIX, anthropic.render_error)
    app.include_router(gemini.router)
    error_formats.add(gemini.PREFIX, gemini.render_error)
    app.include_router(simple.router())
    error_formats.add(simple.PREFIX, simple.render_error)
    app.add_middleware(
        RequestContextMiddleware,
        metrics=services.metrics,
        max_body_bytes=settings.max_body_bytes,
        error_formats=error_formats,
        body_limits={
            UPLOAD_PATH: settings.max_upload_bytes,
            openai_face.TRANSCRIPTIONS_PATH: settings.max_upload_bytes,
            **dict.fromkeys(simple.UPLOAD_PATHS, settings.max_upload_bytes),
        },
    )
    return app
