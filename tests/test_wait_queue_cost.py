"""An overloaded WAIT / Nested WAIT run costs work linear in its horizon on both engines (the
admission step reads the waiting room by type, never the whole queue), and the SimPy engine's
per-type waiting room (``sim/waiting_room.py``) keeps the order of the single queue it replaces.

The cost is counted, not timed: every deque the engines keep is replaced by one that counts
the elements read (iteration, indexing, ``remove``/``index``/``in``); the count must grow
like the horizon, not like its square (timings: ``benchmarks/bench_wait_overload.py``)."""

from __future__ import annotations

import warnings
from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import queueing_llm as ql
from queueing_llm.sim import events, fast, waiting_room
from queueing_llm.sim.waiting_room import WaitingRoom

T = ql.RequestType


class CountingDeque(deque):
    """A deque counting the elements read through it (class-wide counter ``visits``)."""

    visits = 0

    def __iter__(self):
        for x in super().__iter__():
            CountingDeque.visits += 1
            yield x

    def __reversed__(self):
        for x in super().__reversed__():
            CountingDeque.visits += 1
            yield x

    def __getitem__(self, i):
        CountingDeque.visits += 1
        return super().__getitem__(i)

    def __contains__(self, x):
        CountingDeque.visits += len(self)
        return super().__contains__(x)

    def index(self, x, *args):
        i = super().index(x, *args)
        CountingDeque.visits += i + 1
        return i

    def remove(self, x):
        CountingDeque.visits += super().index(x) + 1
        super().remove(x)


def model(factor: float) -> ql.ContinuousBatching:
    return ql.ContinuousBatching([T(2, 5, ql.Poisson(1.0 * factor)), T(4, 10, ql.Poisson(0.5 * factor))],
                                 kv_capacity=200)


def overloaded(kind: str) -> ql.ContinuousBatching:
    """Policy from the fluid rules at the base rates, run at 1.5 times them: the queue grows."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        policy = ql.fluid_wait(model(1.0)) if kind == "wait" else ql.fluid_nested_wait(model(1.0))
    return model(1.5).with_policy(policy)


def visits(monkeypatch, m, iterations: int, engine: str) -> tuple[int, int]:
    """Elements read from the engine's deques over a run, and the final queue length."""
    for module in (events, fast, waiting_room):
        monkeypatch.setattr(module, "deque", CountingDeque, raising=False)
    CountingDeque.visits = 0
    run = ql.simulate(m, iterations, seed=3, engine=engine)
    return CountingDeque.visits, int(run.queue[-1].sum())


@pytest.mark.parametrize("engine", ["events", "python"])
@pytest.mark.parametrize("kind", ["wait", "nested_wait"])
def test_overloaded_run_reads_the_queue_linearly_in_the_horizon(monkeypatch, kind, engine):
    m = overloaded(kind)
    short, queue_short = visits(monkeypatch, m, 1000, engine)
    long, queue_long = visits(monkeypatch, m, 3000, engine)
    # the run is overloaded (the queue grows like the horizon) and the counter sees the queue
    assert queue_short > 150 and queue_long > 2.5 * queue_short
    assert short > 1000
    # linear: 3x the horizon reads about 3x as many elements; a scan of the queue per
    # iteration reads about 9x (sum of a linearly growing length), at least 3 * queue_short more
    assert long < 3.6 * short, (short, long)
    # and per iteration a bounded number: admissions plus a few heads per type (and, Nested
    # WAIT on the fast loop, the batch's members in admission order), never the queue
    assert long / 3000 < 0.05 * queue_long, (long, queue_long)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["append", "appendleft", "popleft", "take"]), st.integers(0, 2)),
                max_size=60))
def test_waiting_room_keeps_the_order_of_one_queue(ops):
    """Against a single deque: the head, the counts per type and each type's order agree
    after any sequence of arrivals, evictions to the head and departures."""

    class Item:
        def __init__(self, i: int, k: int) -> None:
            self.id, self.type, self.prompt = i, k, i % 5

    room: WaitingRoom[Item] = WaitingRoom(3)
    one: deque[Item] = deque()
    for i, (op, k) in enumerate(ops):
        if op == "append":
            r = Item(i, k)
            room.append(r)
            one.append(r)
        elif op == "appendleft":
            r = Item(i, k)
            room.appendleft(r)
            one.appendleft(r)
        elif op == "popleft" and one:
            assert room.popleft() is one.popleft()
        elif op == "take":  # the first waiting request of type k leaves
            first = next((r for r in one if r.type == k), None)
            if first is not None:
                assert room.take(first) is first
                one.remove(first)
        assert len(room) == len(one)
        assert room.head() is (one[0] if one else None)
        assert room.counts() == [sum(r.type == j for r in one) for j in range(3)]
        for j, view in enumerate(room.views()):
            listed = list(view)
            assert [r for _, r, _ in listed] == [r for r in one if r.type == j]
            assert [p for p, _, _ in listed] == sorted(p for p, _, _ in listed)
            assert all(prompt == r.prompt for _, r, prompt in listed)
    if not one:
        with pytest.raises(IndexError):
            room.popleft()


def test_waiting_room_refuses_to_take_a_request_behind_its_type_head():
    class Item:
        def __init__(self, k: int) -> None:
            self.type, self.prompt = k, 0

    room: WaitingRoom[Item] = WaitingRoom(1)
    a, b = Item(0), Item(0)
    room.append(a)
    room.append(b)
    with pytest.raises(ValueError, match="head of a type"):
        room.take(b)
