r"""Discrete probability laws with a symbolic face and a numeric face.

Every law lives on the non-negative integers. Its **symbolic face** gives the
probability generating function :math:`P(z) = E[z^X]`, the mean and the variance as
SymPy expressions; parameters may be SymPy symbols and flow through unchanged, as in
``sympy.stats``. Its **numeric face** gives ``pmf(k)`` and ``sample(rng, size)`` with an
explicit :class:`numpy.random.Generator`, as in ``scipy.stats``; never global random state.

Laws are frozen dataclasses: immutable, printable, comparable and picklable.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
import sympy as sp

from .errors import LawError, describe
from .numbers import (
    MAX_INTEGER,
    MAX_RATE,
    check_real,
    is_real_number,
    is_symbolic,
    plain,
    plain_integer,
    to_float,
    to_sympy,
)

__all__ = [
    "Law",
    "Poisson",
    "Regular",
    "Bernoulli",
    "Binomial",
    "Deterministic",
    "Geometric",
    "FinitePMF",
    "Empirical",
    "as_law",
]

_Z = sp.Symbol("z")


class Law(ABC):
    """Common interface of the discrete laws (do not instantiate directly).

    Attributes
    ----------
    support_min : int
        Smallest value with positive probability (the largest is the property
        :attr:`support_max`).
    """

    # -- symbolic face ------------------------------------------------------------
    @abstractmethod
    def pgf(self, z: Any = _Z) -> sp.Expr:
        r"""Probability generating function :math:`E[z^X]` as a SymPy expression."""

    @property
    def mean(self) -> sp.Expr:
        r""":math:`E[X] = P'(1)`."""
        return sp.simplify(sp.diff(self.pgf(_Z), _Z).subs(_Z, 1))

    @property
    def variance(self) -> sp.Expr:
        r""":math:`\mathrm{Var}\,X = P''(1) + P'(1) - P'(1)^2`."""
        p = self.pgf(_Z)
        d1 = sp.diff(p, _Z).subs(_Z, 1)
        d2 = sp.diff(p, _Z, 2).subs(_Z, 1)
        return sp.simplify(d2 + d1 - d1**2)

    @property
    def second_moment(self) -> sp.Expr:
        r""":math:`E[X^2] = \mathrm{Var}\,X + E[X]^2`."""
        return sp.simplify(self.variance + self.mean**2)

    @property
    def is_symbolic(self) -> bool:
        """True if a parameter is a SymPy expression with free symbols."""
        return any(is_symbolic(v) for v in self._parameters())

    def _parameters(self) -> tuple:
        return tuple(getattr(self, f) for f in self.__dataclass_fields__)  # type: ignore[attr-defined]

    # -- numeric face -------------------------------------------------------------
    support_min: int = 0

    @property
    def support_max(self) -> float:
        """Largest value with positive probability (``math.inf`` if unbounded)."""
        return math.inf

    @abstractmethod
    def pmf(self, k: int | np.ndarray) -> float | np.ndarray:
        """Probability of the value ``k`` (vectorised over arrays of integers)."""

    @abstractmethod
    def sample(self, rng: np.random.Generator, size: int | None = None) -> Any:
        """Independent draws using the generator ``rng`` (an int if ``size`` is None)."""

    def pmf_array(self, n: int) -> np.ndarray:
        """Probabilities of the values ``0 .. n-1`` as a float array."""
        return np.asarray(self.pmf(np.arange(n)), dtype=float)

    def mean_value(self) -> float:
        """The mean as a float."""
        return to_float(self.mean, f"mean of {self!r}")

    def variance_value(self) -> float:
        """The variance as a float."""
        return to_float(self.variance, f"variance of {self!r}")

    def _num(self, name: str) -> float:
        return to_float(getattr(self, name), f"{type(self).__name__}.{name}")

    def _require_numeric(self) -> None:
        if self.is_symbolic:
            raise LawError(f"{self!r} has symbolic parameters; give numbers to sample it")


def _check_rng(rng: Any) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng must be a numpy.random.Generator (numpy.random.default_rng(seed)), got {describe(rng)}"
        )
    return rng


def _probability(name: str, value: Any, *, low_open: bool = False) -> None:
    check_real(name, value, low=0.0, high=1.0, low_open=low_open, error=LawError)


def _set(law: Law, field_name: str, value: Any) -> None:
    """Store a validated parameter with NumPy scalars as Python numbers."""
    object.__setattr__(law, field_name, value)


GEOMETRIC_MIN_Q = 2.0**-40
"""Smallest success probability of :class:`Geometric` with numbers: below it draws beyond
:data:`~queueing_llm.numbers.MAX_INTEGER` have a non-negligible probability
(:math:`P(X > 2^{53}) = (1-q)^{2^{53}} \approx e^{-2^{13}}` at :math:`q = 2^{-40}`)."""


@dataclass(frozen=True)
class Poisson(Law):
    r"""Poisson law of mean :math:`\lambda \ge 0`: :math:`P(z) = e^{\lambda (z - 1)}`."""

    mean_: Any = field(metadata={"doc": "the mean lambda"})

    def __init__(self, mean: Any) -> None:
        check_real("Poisson mean", mean, low=0.0, limit=MAX_RATE, error=LawError)
        object.__setattr__(self, "mean_", plain(mean))

    def __repr__(self) -> str:
        return f"Poisson({self.mean_!r})"

    def pgf(self, z: Any = _Z) -> sp.Expr:
        return sp.exp(to_sympy(self.mean_) * (z - 1))

    @property
    def mean(self) -> sp.Expr:
        return to_sympy(self.mean_)

    @property
    def variance(self) -> sp.Expr:
        return to_sympy(self.mean_)

    def pmf(self, k):
        from scipy.stats import poisson

        return poisson.pmf(k, self._num("mean_"))

    def sample(self, rng, size=None):
        self._require_numeric()
        return _check_rng(rng).poisson(self._num("mean_"), size=size)


@dataclass(frozen=True)
class Bernoulli(Law):
    r"""Bernoulli law with :math:`P(X = 1) = p \in [0, 1]`: :math:`P(z) = 1 - p + p z`."""

    p: Any

    def __post_init__(self) -> None:
        _probability("Bernoulli p", self.p)
        _set(self, "p", plain(self.p))

    @property
    def support_max(self) -> float:
        return 1

    def pgf(self, z: Any = _Z) -> sp.Expr:
        p = to_sympy(self.p)
        return 1 - p + p * z

    def pmf(self, k):
        p = self._num("p")
        k = np.asarray(k)
        out = np.where(k == 0, 1 - p, np.where(k == 1, p, 0.0))
        return float(out) if out.ndim == 0 else out

    def sample(self, rng, size=None):
        self._require_numeric()
        return _check_rng(rng).binomial(1, self._num("p"), size=size)


@dataclass(frozen=True)
class Binomial(Law):
    r"""Binomial law of ``n`` trials with success probability ``p``:
    :math:`P(z) = (1 - p + p z)^n`."""

    n: Any
    p: Any

    def __post_init__(self) -> None:
        check_real("Binomial n", self.n, low=0, integer=True, error=LawError, limit=MAX_INTEGER)
        _probability("Binomial p", self.p)
        _set(self, "n", plain_integer(self.n))
        _set(self, "p", plain(self.p))

    @property
    def support_max(self) -> float:
        return math.inf if is_symbolic(self.n) else int(self.n)

    def pgf(self, z: Any = _Z) -> sp.Expr:
        p = to_sympy(self.p)
        return (1 - p + p * z) ** to_sympy(self.n)

    def pmf(self, k):
        from scipy.stats import binom

        n, p = int(self._num("n")), self._num("p")
        try:
            return binom.pmf(k, n, p)
        except OverflowError:  # SciPy's incomplete beta overflows at extreme (n, p), e.g. n = 2^53, p = 1e-300
            raise LawError(f"{self!r}: the pmf overflows in floating point at n = {n}, p = {p!r}") from None

    def sample(self, rng, size=None):
        self._require_numeric()
        return _check_rng(rng).binomial(int(self._num("n")), self._num("p"), size=size)


@dataclass(frozen=True)
class Deterministic(Law):
    r"""The constant ``value`` (an integer >= 0): :math:`P(z) = z^{v}`."""

    value: Any

    def __post_init__(self) -> None:
        check_real("Deterministic value", self.value, low=0, integer=True, error=LawError, limit=MAX_INTEGER)
        _set(self, "value", plain_integer(self.value))

    @property
    def support_min(self) -> int:  # type: ignore[override]
        return 0 if is_symbolic(self.value) else int(self.value)

    @property
    def support_max(self) -> float:
        return math.inf if is_symbolic(self.value) else int(self.value)

    def pgf(self, z: Any = _Z) -> sp.Expr:
        return z ** to_sympy(self.value)

    @property
    def mean(self) -> sp.Expr:
        return to_sympy(self.value)

    @property
    def variance(self) -> sp.Expr:
        return sp.Integer(0)

    def pmf(self, k):
        v = int(self._num("value"))
        k = np.asarray(k)
        out = (k == v).astype(float)
        return float(out) if out.ndim == 0 else out

    def sample(self, rng, size=None):
        self._require_numeric()
        _check_rng(rng)
        v = int(self._num("value"))
        return v if size is None else np.full(size, v, dtype=np.int64)


@dataclass(frozen=True)
class Geometric(Law):
    r"""Geometric law on :math:`\{1, 2, \dots\}` with success probability :math:`q \in (0, 1]`.

    :math:`P(X = k) = q (1 - q)^{k-1}`, :math:`P(z) = q z / (1 - (1 - q) z)`,
    mean :math:`1/q`, variance :math:`(1 - q)/q^2`. As a decode length it means each
    iteration completes a request independently with probability ``q``.
    """

    q: Any

    def __post_init__(self) -> None:
        _probability("Geometric q", self.q, low_open=True)
        if not is_symbolic(self.q) and to_float(self.q) < GEOMETRIC_MIN_Q:
            raise LawError(
                f"Geometric q must be in [2^-40, 1] for numbers (smaller q draws values beyond 2^53, "
                f"the largest exact integer), got {self.q!r}"
            )
        _set(self, "q", plain(self.q))

    support_min = 1

    @property
    def support_max(self) -> float:
        return 1 if (not is_symbolic(self.q) and to_float(self.q) == 1.0) else math.inf

    def pgf(self, z: Any = _Z) -> sp.Expr:
        q = to_sympy(self.q)
        return q * z / (1 - (1 - q) * z)

    @property
    def mean(self) -> sp.Expr:
        return 1 / to_sympy(self.q)

    @property
    def variance(self) -> sp.Expr:
        q = to_sympy(self.q)
        return (1 - q) / q**2

    def pmf(self, k):
        from scipy.stats import geom

        return geom.pmf(k, self._num("q"))

    def sample(self, rng, size=None):
        self._require_numeric()
        draws = _check_rng(rng).geometric(self._num("q"), size=size)
        if np.max(draws) > MAX_INTEGER:  # NumPy saturates at the int64 maximum: never return that
            raise LawError(f"{self!r} drew {int(np.max(draws))} > 2^53; the law's tail is beyond the numeric face")
        return draws


@dataclass(frozen=True)
class FinitePMF(Law):
    r"""A law with finitely many values: ``FinitePMF({2: 0.5, 4: 0.5})``.

    :math:`P(z) = \sum_v p_v z^v`. Values are integers >= 0, probabilities lie in
    [0, 1] and sum to 1 (exactly for rationals, within 1e-9 for floats).
    """

    probabilities: tuple[tuple[int, Any], ...]

    def __init__(self, probabilities: Mapping[int, Any] | Iterable[tuple[int, Any]]) -> None:
        items = probabilities.items() if isinstance(probabilities, Mapping) else probabilities
        pairs: dict[int, Any] = {}
        if isinstance(probabilities, (str, bytes)) or not isinstance(probabilities, (Mapping, Iterable)):
            raise LawError(
                f"{type(self).__name__} needs a dict value -> probability (e.g. {{2: 0.5, 4: 0.5}}), "
                f"got {describe(probabilities)}"
            )
        for item in items:
            if not isinstance(item, tuple) or len(item) != 2:
                raise LawError(f"{type(self).__name__} needs (value, probability) pairs, got {describe(item)}")
            value, prob = item
            if is_symbolic(value):
                raise LawError(
                    f"{type(self).__name__} values must be integers in [0, 2^53] (symbols only as "
                    f"probabilities), got the symbolic value {describe(value)}"
                )
            check_real(f"{type(self).__name__} value", value, low=0, integer=True, error=LawError, limit=MAX_INTEGER)
            _probability(f"{type(self).__name__} probability of {value}", prob)
            prob = plain(prob)
            pairs[int(value)] = pairs.get(int(value), 0) + prob
        if not pairs:
            raise LawError(f"{type(self).__name__} needs at least one value, got none")
        total = sum(pairs.values())
        if not is_symbolic(total) and abs(float(total) - 1.0) > 1e-9:
            raise LawError(
                f"{type(self).__name__} probabilities must sum to 1, got {float(total):.12g}"
            )
        object.__setattr__(self, "probabilities", tuple(sorted(pairs.items())))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict(self.probabilities)!r})"

    def _parameters(self) -> tuple:
        return tuple(p for _, p in self.probabilities)

    @property
    def values(self) -> np.ndarray:
        return np.array([v for v, _ in self.probabilities], dtype=np.int64)

    @property
    def support_min(self) -> int:  # type: ignore[override]
        return min(v for v, p in self.probabilities if is_symbolic(p) or p != 0)

    @property
    def support_max(self) -> float:
        return max(v for v, p in self.probabilities if is_symbolic(p) or p != 0)

    def pgf(self, z: Any = _Z) -> sp.Expr:
        return sp.Add(*[to_sympy(p) * z**v for v, p in self.probabilities])

    @property
    def mean(self) -> sp.Expr:
        r""":math:`\sum_v v\, p_v`, summed directly (exact; fast for large supports)."""
        return sp.Add(*[to_sympy(p) * v for v, p in self.probabilities])

    @property
    def variance(self) -> sp.Expr:
        r""":math:`\sum_v v^2 p_v - (\sum_v v\, p_v)^2`, summed directly (exact)."""
        second = sp.Add(*[to_sympy(p) * v**2 for v, p in self.probabilities])
        return sp.expand(second - self.mean**2)

    def _probs(self) -> np.ndarray:
        self._require_numeric()
        probs = np.array([to_float(p) for _, p in self.probabilities], dtype=float)
        return probs / probs.sum()

    def pmf(self, k):
        table = dict(zip(self.values.tolist(), self._probs().tolist(), strict=True))
        k = np.asarray(k)
        out = np.vectorize(lambda v: table.get(int(v), 0.0), otypes=[float])(k)
        return float(out) if out.ndim == 0 else out

    def sample(self, rng, size=None):
        return _check_rng(rng).choice(self.values, size=size, p=self._probs())


class Empirical(FinitePMF):
    r"""The empirical law of integer observations (a request trace's decode lengths, say).

    ``Empirical([3, 5, 5, 8])`` puts mass 1/4, 1/2, 1/4 on 3, 5, 8 (exact rationals).
    """

    def __init__(self, samples: Iterable[int]) -> None:
        if isinstance(samples, (str, bytes, Mapping)) or not isinstance(samples, (Iterable, np.ndarray)):
            raise LawError(f"Empirical samples must be a 1-D sequence of integers >= 0, got {describe(samples)}")
        try:
            data = np.asarray(samples if isinstance(samples, np.ndarray) else list(samples))
        except (ValueError, TypeError):  # ragged nested input
            raise LawError("Empirical samples must be a 1-D sequence of integers >= 0, got ragged data") from None
        if data.ndim != 1:
            raise LawError(f"Empirical samples must be one-dimensional, got shape {data.shape}")
        if data.size == 0:
            raise LawError("Empirical samples must hold at least one observation, got none")
        if data.dtype == object and all(is_real_number(x) for x in data.tolist()):
            data = np.asarray([float(x) for x in data.tolist()])
        if data.dtype == bool or not (np.issubdtype(data.dtype, np.integer) or np.issubdtype(data.dtype, np.floating)):
            raise LawError(f"Empirical samples must be integers >= 0, got dtype {data.dtype}")
        if not np.all(np.isfinite(data)) or np.any(data != np.round(data)):
            bad = int(np.flatnonzero(~np.isfinite(data) | (data != np.round(data)))[0])
            raise LawError(f"Empirical samples must be integers >= 0, got {data[bad].item()!r} at index {bad}")
        if np.any(data < 0):
            raise LawError(f"Empirical samples must be integers >= 0, got minimum {data.min()}")
        if np.any(data > MAX_INTEGER):
            raise LawError(f"Empirical samples must be integers in [0, 2^53], got maximum {data.max()}")
        values, counts = np.unique(data.astype(np.int64), return_counts=True)
        n = int(data.size)
        super().__init__({int(v): sp.Rational(int(c), n) for v, c in zip(values, counts, strict=True)})


def as_law(value: Any, name: str, *, minimum: int = 0) -> Law:
    """Turn an int (or integer-valued SymPy expression) into :class:`Deterministic`, check a law.

    Parameters
    ----------
    value : int, sympy.Expr or Law
    name : str
        Parameter name used in error messages (``"prompt"``, ``"decode"``).
    minimum : int
        Smallest allowed value of the support.
    """
    if isinstance(value, Law):
        law = value
    elif is_real_number(value) or isinstance(value, sp.Basic):
        check_real(name, value, low=minimum, integer=True, error=LawError, limit=MAX_INTEGER)
        law = Deterministic(plain_integer(value))
    else:
        raise LawError(
            f"{name} must be an integer >= {minimum} or a law (Deterministic, Geometric, ...), "
            f"got {describe(value)}"
        )
    if not law.is_symbolic and law.support_min < minimum:
        raise LawError(
            f"{name} must take values >= {minimum}, got {law!r} with smallest value {law.support_min}"
        )
    return law


@dataclass(frozen=True)
class Regular(Law):
    r"""Regular (deterministic, Beatty) arrivals at a fractional rate :math:`r \ge 0` per iteration.

    Iteration :math:`n` receives :math:`a_n = \lfloor (n+1) r \rfloor - \lfloor n r \rfloor`
    requests, so the first :math:`N` iterations receive :math:`\lfloor N r \rfloor`: the
    fluid-like input of [ADLS26]'s deterministic experiments, in the integer system (period the
    denominator of :math:`r`). The simulators take the counts of the iterations they cover
    (:meth:`counts`); no random number is drawn for them. As a law on one iteration it is the
    long-run frequency of the counts: :math:`\lfloor r \rfloor` with probability
    :math:`1 - \{r\}` and :math:`\lceil r \rceil` with probability :math:`\{r\}` (its PGF and
    moments). The counts are not independent across iterations, so results that assume
    i.i.d. arrivals (the batch-capped queue's steady state) do not describe them.
    """

    rate: Any

    def __post_init__(self) -> None:
        check_real("Regular rate", self.rate, low=0.0, error=LawError)

    def _fraction(self) -> Fraction:
        return Fraction(to_sympy(self.rate).p, to_sympy(self.rate).q) if isinstance(to_sympy(self.rate), sp.Rational) \
            else Fraction(str(float(self.rate)))

    @property
    def support_min(self) -> int:  # type: ignore[override]
        return int(math.floor(float(self._fraction())))

    @property
    def support_max(self) -> float:
        return int(math.ceil(float(self._fraction())))

    def pgf(self, z: Any = _Z) -> sp.Expr:
        r = to_sympy(self.rate)
        lo, frac = sp.floor(r), r - sp.floor(r)
        return (1 - frac) * z**lo + frac * z ** (lo + 1)

    @property
    def mean(self) -> sp.Expr:
        return to_sympy(self.rate)

    @property
    def variance(self) -> sp.Expr:
        r = to_sympy(self.rate)
        frac = r - sp.floor(r)
        return frac * (1 - frac)

    def pmf(self, k):
        r = self._fraction()
        lo, frac = math.floor(r), float(r - math.floor(r))
        k = np.asarray(k)
        out = np.where(k == lo, 1.0 - frac, 0.0) + np.where(k == lo + 1, frac, 0.0)
        return float(out) if out.ndim == 0 else out

    def counts(self, first: int, size: int) -> np.ndarray:
        r"""The counts :math:`a_n` of iterations ``first .. first + size - 1`` (exact integers)."""
        r = self._fraction()
        n = np.arange(int(first), int(first) + int(size) + 1, dtype=object)
        cumulative = np.array([int((m * r.numerator) // r.denominator) for m in n], dtype=np.int64)
        return np.diff(cumulative)

    def sample(self, rng, size=None):
        """The counts of the first ``size`` iterations (one count if ``size`` is None); no
        random number is drawn."""
        _check_rng(rng)
        out = self.counts(0, 1 if size is None else int(size))
        return int(out[0]) if size is None else out
