"""The pure credit rules: the draw order, the split of a settled hold, amounts."""

from __future__ import annotations

import random

import pytest

from genyard.domain.billing import Balance, Parts, draw, settle, to_micro


def test_draw_takes_free_then_earned_then_paid() -> None:
    balance = Balance(paid=100, free=30, earned=20, held=7)
    assert draw(balance, 0) == Parts()
    assert draw(balance, 25) == Parts(free=25)
    assert draw(balance, 45) == Parts(free=30, earned=15)
    assert draw(balance, 150) == Parts(paid=100, free=30, earned=20)
    assert draw(balance, 151) is None  # held credits are not spendable
    with pytest.raises(ValueError):
        draw(balance, -1)


def test_settle_spends_in_draw_order_and_returns_the_rest() -> None:
    held = Parts(paid=5, free=3, earned=2)
    assert settle(held, 10) == (held, Parts())
    assert settle(held, 0) == (Parts(), held)
    spent, back = settle(held, 4)
    assert spent == Parts(free=3, earned=1)
    assert back == Parts(paid=5, earned=1)
    assert settle(held, 99) == (held, Parts())  # never more than was held


def test_settle_conserves_every_bucket() -> None:
    rng = random.Random(7)
    for _ in range(500):
        held = Parts(rng.randrange(50), rng.randrange(50), rng.randrange(50))
        spent, back = settle(held, rng.randrange(-5, 160))
        assert spent.paid + back.paid == held.paid
        assert spent.free + back.free == held.free
        assert spent.earned + back.earned == held.earned
        assert min(spent.paid, spent.free, spent.earned, back.paid, back.free, back.earned) >= 0


def test_amounts_of_credits() -> None:
    assert to_micro("12.5") == 12_500_000
    assert to_micro(1) == 1_000_000
    assert to_micro("0.000001") == 1
    assert to_micro(0, allow_zero=True) == 0
    for bad in ("0", "-1", "0.0000001", "abc", "nan", "inf"):
        with pytest.raises(ValueError):
            to_micro(bad)
