"""The tasks face (evolink-video-upscale.txt): ``POST /v1/videos/generations``,
``GET /v1/tasks/{task_id}``, ``POST /v1/tasks/{task_id}/cancel``; errors in Evolink's
shape (``errors.render_error``) under :data:`PREFIXES`. See docs/faces/tasks.md.

The services container imports :mod:`genyard.api.tasks.render` (callback bodies), so
this package imports its routes (which import the container) only in :func:`router`.
"""

from fastapi import APIRouter

from genyard.api.tasks.errors import render_error

#: The paths whose errors this face renders.
PREFIXES = ("/v1/videos/generations", "/v1/tasks")


def router() -> APIRouter:
    from genyard.api.tasks import routes

    root = APIRouter()
    root.include_router(routes.router)
    return root


__all__ = ["PREFIXES", "render_error", "router"]
