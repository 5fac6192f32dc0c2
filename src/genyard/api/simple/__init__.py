"""The simple face, ``/api``: the endpoints of ai-omakase-developer-docs.txt, each one
prediction of a catalog model (docs/faces/simple.md).

Register it with ``app.include_router(simple.router())`` and
``error_formats.add(simple.PREFIX, simple.render_error)``; its multipart routes
(:data:`UPLOAD_PATHS`) take bodies up to ``GENYARD_MAX_UPLOAD_BYTES``.
"""

from fastapi import APIRouter

from genyard.api.simple import media, speech, text
from genyard.api.simple.errors import render_error

PREFIX = "/api"
UPLOAD_PATHS = ("/api/stt", "/api/voice-clone", "/api/image2text")

__all__ = ["PREFIX", "UPLOAD_PATHS", "render_error", "router"]


def router() -> APIRouter:
    # Full paths on each route (no prefix), so metrics and logs show the template.
    root = APIRouter()
    root.include_router(text.router)
    root.include_router(speech.router)
    root.include_router(media.router)
    return root
