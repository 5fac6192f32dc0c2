"""The Anthropic face: the Messages API under ``/llm/anthropic/v1`` for the official
``anthropic`` SDK (``base_url=<genyard>/llm/anthropic``). See docs/faces/anthropic.md."""

from genyard.api.anthropic.errors import PREFIX, render_error
from genyard.api.anthropic.routes import router

__all__ = ["PREFIX", "render_error", "router"]
