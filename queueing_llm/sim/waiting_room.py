r"""The SimPy engine's waiting room: one FIFO per type, ordered as one queue.

The model's waiting room is a single queue: arrivals join its back, evicted requests its head
(the last one evicted first in line). WAIT and Nested WAIT read it by type (how many of each
type wait, the head of each type, [ALSW25]), so the room is kept as :math:`K` deques, one per
type, whose entries carry a **position**: arrivals get :math:`0, 1, 2, \dots` at the back and
evicted requests :math:`-1, -2, \dots` at the head. Positions therefore order the whole room
exactly as the single queue would, and each type's deque lists that type in queue order.

Every operation costs :math:`O(1)` or :math:`O(K)`, never the number of waiting requests: an
overloaded run, whose room grows linearly with the horizon, costs time linear in the horizon
(scanning the room at each admission step cost time quadratic in it). The Python fast loop
(:func:`~.fast.run_scheduled`) keeps the same structure with request slots instead of objects.

Source: the model chapter, section 2 (the queue, evictions to its head).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Generic, Protocol, TypeVar

__all__ = ["WaitingRoom"]


class _Typed(Protocol):
    type: int
    prompt: int


R = TypeVar("R", bound=_Typed)


class WaitingRoom(Generic[R]):
    """The waiting requests of ``K`` types, one FIFO of ``(position, request)`` per type.

    Parameters
    ----------
    K : int
        Number of request types (a request's ``type`` is its queue's index).
    """

    def __init__(self, K: int) -> None:
        self.by_type: list[deque[tuple[int, R]]] = [deque() for _ in range(K)]
        self.front = 0  # position of the current head (evicted requests get front - 1)
        self.back = 0  # position the next arrival gets
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def counts(self) -> list[int]:
        """Requests waiting per type, :math:`O(K)`."""
        return [len(q) for q in self.by_type]

    def append(self, r: R) -> None:
        """``r`` joins the back (an arrival)."""
        self.by_type[r.type].append((self.back, r))
        self.back += 1
        self.size += 1

    def appendleft(self, r: R) -> None:
        """``r`` joins the head (an evicted request): it is first in line."""
        self.front -= 1
        self.by_type[r.type].appendleft((self.front, r))
        self.size += 1

    def head(self) -> R | None:
        """The request first in line (the smallest position among the types' heads), or None."""
        best: tuple[int, R] | None = None
        for q in self.by_type:
            if q and (best is None or q[0][0] < best[0]):
                best = q[0]
        return None if best is None else best[1]

    def popleft(self) -> R:
        """Remove and return the request first in line."""
        r = self.head()
        if r is None:
            raise IndexError("pop from an empty waiting room")
        return self.take(r)

    def take(self, r: R) -> R:
        """Remove ``r``, which must be first in line among its type (admissions by type are a
        prefix of each type's FIFO, :func:`~.scheduling.select_admissions`)."""
        q = self.by_type[r.type]
        if not q or q[0][1] is not r:
            raise ValueError("only the head of a type's queue leaves the waiting room")
        q.popleft()
        self.size -= 1
        return r

    def views(self) -> list[Iterator[tuple[int, R, int]]]:
        """Each type's waiting requests as lazy ``(position, request, prompt)`` iterators in
        queue order, what :func:`~.scheduling.select_admissions` reads (it reads only the
        requests it admits and one more per type)."""
        return [((p, r, r.prompt) for p, r in q) for q in self.by_type]
