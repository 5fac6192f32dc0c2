"""``POST /llm/openai/v1/embeddings``: one prediction embeds every text of the request.

``input`` is a string or a list of strings (token arrays are a 400); the model's input
is ``{"text": [...]}`` (e5 embeds them as passages). ``encoding_format`` ``float``
(a list of numbers) or ``base64`` (the little-endian float32 bytes, base64: what the
official SDK asks for by default and decodes itself). ``dimensions`` other than the
model's own is a 400 (no model here shortens its vectors). ``user`` is ignored.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from pydantic import BaseModel

from genyard.api import face_calls
from genyard.api.deps import ServicesDep, json_body
from genyard.api.openai.common import Generate, find_model
from genyard.api.openai.errors import bad_param
from genyard.api.responses import JSON

router = APIRouter(tags=["openai"])


class EmbeddingRequest(BaseModel):
    model: str
    input: str | list[Any]
    encoding_format: str | None = None
    dimensions: int | None = None


def _texts(value: str | list[Any]) -> list[str]:
    texts = [value] if isinstance(value, str) else value
    if not texts:
        raise bad_param("input", "must hold at least one string")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise bad_param(f"input[{i}]", "must be a string (token arrays are not supported)")
    return texts


def encode(vector: list[float], encoding_format: str) -> list[float] | str:
    if encoding_format == "base64":
        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
    return [float(x) for x in vector]


@router.post("/llm/openai/v1/embeddings")
async def create_embeddings(request: Request, services: ServicesDep, principal: Generate) -> JSON:
    body = await json_body(request, EmbeddingRequest)
    entry = find_model(services, body.model, "embedding", "POST /llm/openai/v1/embeddings")
    encoding_format = body.encoding_format or "float"
    if encoding_format not in ("float", "base64"):
        raise bad_param("encoding_format", "must be 'float' or 'base64'")
    dimensions = entry.capabilities.get("dimensions")
    if body.dimensions is not None and body.dimensions != dimensions:
        raise bad_param("dimensions", f"{entry.id} makes {dimensions}-dimensional vectors only")
    input = {"text": _texts(body.input)}
    job = await face_calls.run(services, principal, entry.id, input, names={"text": "input"})
    output = job.output if isinstance(job.output, dict) else {}
    vectors = output.get("embeddings") or []
    tokens, _ = face_calls.tokens(job)
    return JSON(
        {
            "object": "list",
            "data": [
                {"object": "embedding", "index": i, "embedding": encode(v, encoding_format)}
                for i, v in enumerate(vectors)
            ],
            "model": entry.id,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        },
        headers={"x-genyard-prediction-id": job.id},
    )
