"""The Gemini face: generateContent, streamGenerateContent, embedContent,
batchEmbedContents and the models list under ``/llm/gemini/v1beta``, for the official
``google-genai`` SDK (``HttpOptions(base_url=<genyard>/llm/gemini/,
api_version="v1beta")``). See docs/faces/gemini.md."""

from genyard.api.gemini.errors import PREFIX, render_error
from genyard.api.gemini.routes import router

__all__ = ["PREFIX", "render_error", "router"]
