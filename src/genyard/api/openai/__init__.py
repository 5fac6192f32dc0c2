"""The OpenAI face under ``/llm/openai/v1`` (docs/faces/openai.md): chat completions,
completions, embeddings, models, image generation, speech and transcription, each call
a prediction; errors in OpenAI's shape (:func:`render_error`)."""

from fastapi import APIRouter

from genyard.api.openai import audio, chat, completions, embeddings, images, models
from genyard.api.openai.errors import PREFIX, render_error

#: The multipart route whose body may be as large as an upload (GENYARD_MAX_UPLOAD_BYTES).
TRANSCRIPTIONS_PATH = f"{PREFIX}/audio/transcriptions"

__all__ = ["PREFIX", "TRANSCRIPTIONS_PATH", "render_error", "router"]


def router() -> APIRouter:
    root = APIRouter()
    for module in (chat, completions, embeddings, models, images, audio):
        root.include_router(module.router)
    return root
