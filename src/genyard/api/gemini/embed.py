"""``:embedContent`` and ``:batchEmbedContents`` on an embedding model.

``taskType`` picks e5's prefix: ``RETRIEVAL_DOCUMENT`` embeds as a passage; every
other task (``RETRIEVAL_QUERY``, ``SEMANTIC_SIMILARITY``, ``CLASSIFICATION``,
``CLUSTERING``, ``QUESTION_ANSWERING``, ``FACT_VERIFICATION``,
``CODE_RETRIEVAL_QUERY``) as a query, as e5's authors advise for queries and
symmetric tasks; none (or ``TASK_TYPE_UNSPECIFIED``) takes the model's default. A
batch whose requests differ in task runs one prediction per task. ``title`` is
ignored; ``outputDimensionality`` must be the model's own (e5 vectors cannot be cut).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from genyard.api import face_calls
from genyard.api.gemini.mapping import Camel, Content, text_of
from genyard.domain.accounts import Principal
from genyard.domain.catalog import ModelEntry
from genyard.errors import InvalidRequest
from genyard.services.container import Services

TASKS = {
    "RETRIEVAL_DOCUMENT": "passage",
    "RETRIEVAL_QUERY": "query",
    "SEMANTIC_SIMILARITY": "query",
    "CLASSIFICATION": "query",
    "CLUSTERING": "query",
    "QUESTION_ANSWERING": "query",
    "FACT_VERIFICATION": "query",
    "CODE_RETRIEVAL_QUERY": "query",
}
FIELD_NAMES = {"text": "content", "task": "taskType", "input": "body"}


class EmbedRequest(Camel):
    content: Content
    model: str | None = None  # the batch names each request's model; checked there
    task_type: str | None = None
    title: str | None = None  # ignored
    output_dimensionality: int | None = None


class BatchRequest(Camel):
    requests: list[EmbedRequest] = Field(min_length=1)


def _task(req: EmbedRequest, entry: ModelEntry, where: str) -> str | None:
    if req.task_type in (None, "TASK_TYPE_UNSPECIFIED"):
        return None
    task = TASKS.get(req.task_type)
    if task is None:
        raise InvalidRequest(
            f"{where}taskType: unknown task type {req.task_type!r}; expected one of "
            + ", ".join(TASKS),
            {"field": f"{where}taskType"},
        )
    if "task" not in entry.input_schema.get("properties", {}):
        return None  # a model without query/passage modes embeds every text alike
    return task


def _check_dimensions(req: EmbedRequest, entry: ModelEntry, where: str) -> None:
    dimensions = entry.capabilities.get("dimensions")
    if req.output_dimensionality not in (None, dimensions):
        raise InvalidRequest(
            f"{where}outputDimensionality: {entry.id} makes {dimensions}-dimensional vectors only",
            {"field": f"{where}outputDimensionality"},
        )


async def embed(
    services: Services, principal: Principal, entry: ModelEntry, requests: list[EmbedRequest]
) -> list[list[float]]:
    """One vector per request, in order (one prediction per distinct task)."""
    groups: dict[str | None, list[int]] = {}
    texts: list[str] = []
    batch = len(requests) > 1
    for i, req in enumerate(requests):
        where = f"requests[{i}]." if batch else ""
        if batch and req.model not in (None, entry.id, f"models/{entry.id}"):
            raise InvalidRequest(
                f"{where}model: every request must name the model of the URL, {entry.id}",
                {"field": f"{where}model"},
            )
        _check_dimensions(req, entry, where)
        groups.setdefault(_task(req, entry, where), []).append(i)
        texts.append(text_of(req.content, f"{where}content"))
    vectors: list[list[float]] = [[] for _ in requests]
    for task, indexes in groups.items():
        input: dict[str, Any] = {"text": [texts[i] for i in indexes]}
        if task is not None:
            input["task"] = task
        job = await face_calls.run(services, principal, entry.id, input, names=FIELD_NAMES)
        output = job.output if isinstance(job.output, dict) else {}
        for i, vector in zip(indexes, output.get("embeddings", []), strict=True):
            vectors[i] = [float(x) for x in vector]
    return vectors
