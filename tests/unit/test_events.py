"""events/memory: the in-process doorbell."""

from __future__ import annotations

import asyncio

from genyard.events import EventBus, InProcessEventBus


async def test_watch_job_rings_only_for_that_job_and_only_while_watching() -> None:
    bus = InProcessEventBus()
    with bus.watch_job("pred_a") as a, bus.watch_job("pred_a") as a2, bus.watch_job("pred_b") as b:
        assert not a.is_set()
        bus.job_changed("pred_a")
        assert a.is_set() and a2.is_set()
        assert not b.is_set()
        a.clear()
        bus.job_changed("pred_zzz")
        assert not a.is_set()
    bus.job_changed("pred_a")
    assert not a.is_set()  # the block ended: nobody is watching
    bus.job_changed("pred_b")
    assert not b.is_set()


async def test_a_waiter_wakes_when_the_job_changes() -> None:
    bus = InProcessEventBus()
    with bus.watch_job("pred_1") as rang:
        asyncio.get_running_loop().call_later(0.01, bus.job_changed, "pred_1")
        await asyncio.wait_for(rang.wait(), timeout=1)


async def test_work_signal_rings_for_its_models_and_stays_registered() -> None:
    bus = InProcessEventBus()
    diag = bus.work_signal(frozenset({"genyard/diagnostic", "genyard/diagnostic-fast"}))
    e5 = bus.work_signal(frozenset({"intfloat/multilingual-e5-small"}))
    bus.work_available("genyard/diagnostic-fast")
    assert diag.is_set() and not e5.is_set()
    diag.clear()
    bus.work_available("nobody/none")
    assert not diag.is_set() and not e5.is_set()
    bus.work_available("intfloat/multilingual-e5-small")
    assert e5.is_set() and not diag.is_set()
    e5.clear()
    bus.work_available("intfloat/multilingual-e5-small")
    assert e5.is_set()  # a lasting signal rings again


def test_the_memory_bus_satisfies_the_protocol() -> None:
    bus: EventBus = InProcessEventBus()
    assert callable(bus.watch_job) and callable(bus.work_signal)
