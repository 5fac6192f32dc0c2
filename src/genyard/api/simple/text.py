"""``POST /api/chat``, ``POST /api/embedding``, ``POST /api/rerank``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, StrictStr, model_validator

from genyard.api.deps import ServicesDep, json_body, read_json
from genyard.api.responses import JSON
from genyard.api.simple.calls import GenerateDep, default_model, json_answer, predict
from genyard.errors import InvalidRequest

router = APIRouter(tags=["simple"])

#: The seed: "temperature defaults near 0.1 when omitted". This face's default wins over
#: the chat model's own catalog default (0 for the bundled SmolLM2).
CHAT_TEMPERATURE = 0.1
_QUERY_TYPES = frozenset({"query", "search_query"})
_PASSAGE_TYPES = frozenset({"passage", "document", "search_document"})


class ChatBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    input: StrictStr = Field(min_length=1, description="Question or instruction.")
    temperature: float = Field(default=CHAT_TEMPERATURE, ge=0, le=2)


class EmbeddingBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    input: StrictStr | None = Field(default=None, min_length=1)
    text: StrictStr | None = Field(default=None, min_length=1)
    input_type: StrictStr | None = None

    @model_validator(mode="after")
    def _one_text(self) -> EmbeddingBody:
        if self.input is None and self.text is None:
            raise ValueError("input is required (or its alias text): the text to embed")
        if self.input is not None and self.text is not None and self.input != self.text:
            raise ValueError("input and text differ; send one of them")
        return self


@router.post("/api/chat")
async def chat(request: Request, services: ServicesDep, principal: GenerateDep) -> JSON:
    body = await json_body(request, ChatBody)
    entry = default_model(services, "text")
    input: dict[str, Any] = {"temperature": body.temperature}
    if "chat" in entry.capabilities.get("modes", ["chat"]):
        input["messages"] = [{"role": "user", "content": body.input}]
    else:  # a completion model reads the input as its prompt
        input["prompt"] = body.input
    rename = {"messages": "input", "prompt": "input"}
    job = await predict(services, principal, entry, input, route="chat", rename=rename)
    return json_answer(job, {"text": job.output["text"]})


def embedding_task(input_type: str | None) -> str | None:
    """e5's task for the seed's ``input_type``: ``query`` (or ``search_query``) and
    ``passage`` (or ``document``, ``search_document``); anything else (the seed's own
    example sends ``"string"``) leaves the model's default, ``passage``."""
    kind = (input_type or "").strip().lower()
    if kind in _QUERY_TYPES:
        return "query"
    if kind in _PASSAGE_TYPES:
        return "passage"
    return None


@router.post("/api/embedding")
async def embedding(request: Request, services: ServicesDep, principal: GenerateDep) -> JSON:
    body = await json_body(request, EmbeddingBody)
    entry = default_model(services, "embedding")
    input: dict[str, Any] = {"text": body.input if body.input is not None else body.text}
    task = embedding_task(body.input_type)
    if task is not None and "task" in entry.input_schema.get("properties", {}):
        input["task"] = task
    job = await predict(services, principal, entry, input, route="embedding")
    return json_answer(job, {"embeddingVector": job.output["embeddings"][0]})


def _rerank_input(data: Any) -> tuple[str, list[str]]:
    """The seed's rules: ``query`` must not be empty, ``input`` must be an array of
    strings (each one non-empty, at least one)."""
    if not isinstance(data, dict):
        raise InvalidRequest("request body must be a JSON object")
    query, docs = data.get("query"), data.get("input")
    if not isinstance(query, str) or not query.strip():
        raise InvalidRequest("query must be a non-empty string")
    if not isinstance(docs, list) or not docs:
        raise InvalidRequest("input must be a non-empty array of strings")
    for i, doc in enumerate(docs):
        if not isinstance(doc, str):
            raise InvalidRequest(f"input[{i}] must be a string, got {type(doc).__name__}")
        if not doc.strip():
            raise InvalidRequest(f"input[{i}] must not be empty")
    return query, docs


@router.post("/api/rerank")
async def rerank(request: Request, services: ServicesDep, principal: GenerateDep) -> JSON:
    query, docs = _rerank_input(await read_json(request, services.settings.max_body_bytes))
    entry = default_model(services, "rerank")
    job = await predict(
        services,
        principal,
        entry,
        {"query": query, "documents": docs},
        route="rerank",
        rename={"documents": "input"},
    )
    return json_answer(job, job.output)
