"""The llama.cpp provider's generation loop on a scripted engine: stop sequences across
token boundaries, UTF-8 characters split across tokens, end of generation, the token
budget, cancel. (The real models are tested in test_llm.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from genyard.errors import ProviderError
from genyard.providers.base import RunContext
from genyard.providers.local.llama import Engine, Sampling, _generate, _held_back

EOG = 0


class ScriptedLlm:
    """Yields its script's tokens; token i (from 1) decodes to ``pieces[i - 1]``."""

    def __init__(self, pieces: list[bytes], *, eog_after: bool = False) -> None:
        self.pieces = pieces
        self.script = list(range(1, len(pieces) + 1)) + ([EOG] if eog_after else [])
        self.seed: int | None = None

    def reset(self) -> None:
        pass

    def set_seed(self, seed: int) -> None:
        self.seed = seed

    def generate(self, tokens: list[int], **sampling: Any) -> Iterator[int]:
        yield from self.script

    def detokenize(self, tokens: list[int]) -> bytes:
        return b"".join(self.pieces[t - 1] for t in tokens)


def engine(llm: ScriptedLlm, n_ctx: int = 100) -> Engine:
    return Engine(llm, None, n_ctx, lambda token: token == EOG)


def sampling(max_tokens: int = 50, stop: tuple[str, ...] = ()) -> Sampling:
    return Sampling(0.0, 1.0, 40, 0.05, 1.0, max_tokens, stop, seed=5)


def generate(llm: ScriptedLlm, ctx: RunContext | None = None, **kw: Any) -> tuple[Any, ...]:
    ctx = ctx or RunContext("j", 1)
    text, finish, n_out, matched = _generate(engine(llm), [1, 2, 3], sampling(**kw), ctx)
    pieces = ctx.drain_deltas()
    assert "".join(pieces) == text
    assert (matched is not None) == (finish == "stop" and bool(kw.get("stop")))
    return text, finish, n_out, pieces


def test_a_stop_sequence_across_tokens_is_cut_and_never_streamed() -> None:
    llm = ScriptedLlm([b"Hel", b"lo", b" wo", b"rld", b"!"])
    text, finish, n_out, pieces = generate(llm, stop=("o wor",))
    assert (text, finish, n_out) == ("Hell", "stop", 4)
    assert pieces == ["Hel", "l"]  # "o", which could start "o wor", was held back
    # the earliest of several sequences ends it, and is the one reported
    ctx = RunContext("j", 1)
    llm = ScriptedLlm([b"Hel", b"lo", b" wo", b"rld", b"!"])
    ended = _generate(engine(llm), [1], sampling(stop=("rld", "lo w")), ctx)
    assert ended == ("Hel", "stop", 3, "lo w")
    # a partial match that does not complete is released
    text, finish, _, _ = generate(ScriptedLlm([b"Hel", b"lo", b" wo", b"rld"]), stop=("o wx",))
    assert (text, finish) == ("Hello world", "length")


def test_a_character_split_across_tokens_is_emitted_whole() -> None:
    han = "한".encode()
    llm = ScriptedLlm([b"A", han[:1], han[1:], b"B"], eog_after=True)
    text, finish, n_out, pieces = generate(llm)
    assert (text, finish, n_out) == ("A한B", "stop", 4)
    assert "\ufffd" not in "".join(pieces)
    # cut short by the budget, half a character shows as U+FFFD, as everywhere
    text, finish, _, _ = generate(ScriptedLlm([b"A", han[:2]]), max_tokens=2)
    assert (text, finish) == ("A\ufffd", "length")


def test_end_of_generation_and_budget() -> None:
    text, finish, n_out, _ = generate(ScriptedLlm([b"a", b"b"], eog_after=True))
    assert (text, finish, n_out) == ("ab", "stop", 2)  # the end token is not counted
    text, finish, n_out, _ = generate(ScriptedLlm([b"a", b"b", b"c"]), max_tokens=2)
    assert (text, finish, n_out) == ("ab", "length", 2)
    llm = ScriptedLlm([b"a", b"b", b"c"])
    ended = _generate(engine(llm, n_ctx=5), [1, 2, 3], sampling(), RunContext("j", 1))
    assert ended == ("ab", "length", 2, None)  # the context (5 - 3 prompt tokens) ran out first
    assert llm.seed == 5


def test_a_canceled_run_raises() -> None:
    ctx = RunContext("j", 1)
    ctx.cancel_event.set()
    with pytest.raises(ProviderError, match="canceled"):
        _generate(engine(ScriptedLlm([b"a"])), [1], sampling(), ctx)


@pytest.mark.parametrize(
    ("tail", "stops", "held"),
    [("abc", ("cde",), 1), ("abcd", ("cde",), 2), ("abc", ("xyz",), 0), ("a", ("ab", "a!"), 1)],
)
def test_held_back(tail: str, stops: tuple[str, ...], held: int) -> None:
    assert _held_back(tail, stops) == held
