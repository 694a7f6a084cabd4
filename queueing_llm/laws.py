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
    "RegularMix",
    "regular_mix",
    "MAX_MIX_PERIOD",
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


def geometric_tail_is_zero(q: float) -> bool:
    r"""True if :math:`P(X > 2^{53}) = (1 - q)^{2^{53}}` of a Geometric(``q``) law is exactly 0
    in double precision (:math:`2^{53} \log(1 - q)` below the log of the smallest positive
    double, so :math:`q \gtrsim 8.3 \times 10^{-14}`; every ``q`` from
    :data:`GEOMETRIC_MIN_Q` up is). No draw of such a law exceeds
    :data:`~queueing_llm.numbers.MAX_INTEGER`: NumPy's sampler returns at most
    :math:`\lceil 44.5 / q \rceil` (its largest standard exponential is
    :math:`r - \log 2^{-53} \approx 7.70 + 36.74`), so :meth:`Geometric.sample` need not
    look for one."""
    return q >= 1.0 or math.exp(MAX_INTEGER * math.log1p(-q)) == 0.0


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
        q = self._num("q")
        draws = _check_rng(rng).geometric(q, size=size)
        if not geometric_tail_is_zero(q) and np.max(draws) > MAX_INTEGER:  # NumPy saturates at the int64 maximum
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

    For several types in fixed proportions, :func:`regular_mix` splits one such stream
    arrival by arrival (:class:`RegularMix`, a subclass the simulators treat alike).
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


MAX_MIX_PERIOD = 10**6
"""Largest common denominator :math:`D` of :func:`regular_mix`'s proportions: the type
sequence repeats every :math:`D` pooled arrivals and is tabulated once (one integer per
arrival of a period, and per type one cumulative count)."""


def _mix_proportions(proportions: Any) -> tuple[Fraction, ...]:
    """Validated proportions as exact fractions summing to 1."""
    if isinstance(proportions, (str, bytes, dict, set, Mapping)) or not isinstance(proportions, Iterable):
        raise LawError(f"regular_mix proportions must be a list of non-negative numbers summing to 1, "
                       f"got {describe(proportions)}")
    values = list(proportions.tolist() if isinstance(proportions, np.ndarray) else proportions)
    if not values:
        raise LawError("regular_mix proportions must hold at least one type's proportion, got an empty list")
    out = []
    for k, p in enumerate(values):
        if is_symbolic(p):
            raise LawError(f"regular_mix proportions[{k}] must be a number (the type sequence is tabulated), "
                           f"got the symbolic {p}")
        check_real(f"regular_mix proportions[{k}]", p, low=0.0, high=1.0, error=LawError)
        if isinstance(p, (sp.Rational, Fraction)) or (isinstance(p, (int, np.integer)) and not isinstance(p, bool)):
            q = Fraction(int(sp.Rational(p).p), int(sp.Rational(p).q)) if isinstance(p, sp.Rational) else Fraction(p)
        else:  # a float: its shortest decimal, then the nearest fraction of denominator <= MAX_MIX_PERIOD
            q = Fraction(str(float(p))).limit_denominator(MAX_MIX_PERIOD)
        out.append(q)
    total = sum(out)
    if abs(float(total) - 1.0) > 1e-9:
        raise LawError(f"regular_mix proportions must sum to 1, got {float(total):.12g} ({[float(q) for q in out]})")
    if total != 1:  # floats summing to 1 within 1e-9: rescaled exactly
        out = [q / total for q in out]
    D = math.lcm(*(q.denominator for q in out))
    if D > MAX_MIX_PERIOD:
        raise LawError(f"regular_mix proportions have common denominator {D} > {MAX_MIX_PERIOD} (the type "
                       "sequence's period in arrivals); give fractions with a smaller common denominator")
    return tuple(out)


def _mix_sequence(proportions: tuple[Fraction, ...]) -> np.ndarray:
    r"""One period (:math:`D` arrivals) of the type sequence, by Tijdeman's earliest-deadline rule.

    With integer weights :math:`c_i = p_i D` and :math:`C_i` the type-:math:`i` arrivals among
    the first :math:`t - 1`, arrival :math:`t` goes, among the types with
    :math:`p_i t - C_i \ge \delta = 1/(2K' - 2)` (:math:`K'` types of positive proportion;
    such a type exists since these excesses sum to 1), to the one whose deadline
    :math:`(C_i + 1 - \delta)/p_i` is earliest (lowest index on ties). Then
    :math:`|C_i(N) - p_i N| \le 1 - \delta` for every :math:`N` (R. Tijdeman, "The chairman
    assignment problem", Discrete Math. 32 (1980) 323-330). After :math:`D` arrivals every
    excess :math:`p_i D - C_i` is an integer of absolute value below 1, so zero: the sequence
    has period :math:`D`.
    """
    return _mix_table(proportions)[0]


_MIX_TABLES: dict = {}


def _mix_table(proportions: tuple[Fraction, ...]) -> tuple[np.ndarray, list[np.ndarray]]:
    """The period's type sequence and, per type, its cumulative counts (length D + 1); cached."""
    cached = _MIX_TABLES.get(proportions)
    if cached is not None:
        return cached
    D = math.lcm(*(q.denominator for q in proportions))
    c = [int(q * D) for q in proportions]
    positive = [i for i, ci in enumerate(c) if ci > 0]
    seq = np.empty(D, dtype=np.int32)
    if len(positive) == 1:
        seq[:] = positive[0]
    else:
        m = 2 * len(positive) - 2  # delta = 1/m
        C = [0] * len(c)
        for t in range(1, D + 1):
            best, best_num, best_den = -1, 0, 1
            for i in positive:
                if m * (c[i] * t - D * C[i]) >= D:  # p_i t - C_i >= delta
                    num, den = m * (C[i] + 1) - 1, c[i]  # deadline * D / m
                    if best < 0 or num * best_den < best_num * den:
                        best, best_num, best_den = i, num, den
            seq[t - 1] = best
            C[best] += 1
        if any(C[i] != c[i] for i in range(len(c))):  # pragma: no cover - the theorem's guarantee
            raise LawError(f"internal error: regular_mix period of {D} arrivals gave counts {C}, expected {c}")
    prefix = [np.concatenate([[0], np.cumsum(seq == i)]).astype(np.int64) for i in range(len(c))]
    if len(_MIX_TABLES) >= 16:
        _MIX_TABLES.pop(next(iter(_MIX_TABLES)))
    _MIX_TABLES[proportions] = (seq, prefix)
    return seq, prefix


@dataclass(frozen=True)
class RegularMix(Regular):
    r"""Type ``k``'s share of a :class:`Regular` stream at rate :math:`r` split in fixed proportions.

    Built by :func:`regular_mix`, which gives one such law per type. The pooled stream is
    :class:`Regular`'s: iteration :math:`n` receives
    :math:`a_n = \lfloor (n+1) r \rfloor - \lfloor n r \rfloor` requests, so the laws' counts
    summed over the types are exactly ``Regular(rate).counts``. The :math:`m`-th pooled
    arrival (:math:`m = 0, 1, \dots`, in iteration order) goes to the type the deterministic
    proportional rule gives it: Tijdeman's earliest-deadline rule, under which every type's
    cumulative count :math:`C_k(N)` among the first :math:`N` pooled arrivals stays within
    :math:`1 - 1/(2K'-2) < 1` of :math:`p_k N` at every :math:`N` (:math:`K' \ge 2` types of
    positive proportion; exact with one), and which repeats every :math:`D` arrivals,
    :math:`D` the common denominator of the proportions. (Smooth weighted round robin,
    "the type of largest :math:`p_k N - C_k`", keeps within 1 for two or three types but not
    beyond: 1.26 for 12 types measured.) So over any :math:`N` iterations type :math:`k`
    receives :math:`p_k \lfloor N r \rfloor` requests up to one, the fluid-like input of
    [ADLS26]'s deterministic proportional experiments in the integer system. No random
    number is drawn for the counts.

    As a law on one iteration (:meth:`pgf`, :meth:`pmf`, moments) it is the long-run frequency
    of type :math:`k`'s counts, exact: with :math:`r = a/b` in lowest terms and
    :math:`g = \gcd(a, D)`, the pair (pooled arrivals before iteration :math:`n` mod
    :math:`D`, :math:`a_n`) runs through its values uniformly over a period of
    :math:`bD/g` iterations, which are counted in :math:`O(D)` operations. Its mean is
    :math:`p_k r`. As for :class:`Regular`, the counts of successive iterations are not
    independent.

    Parameters
    ----------
    rate : number
        The pooled rate :math:`r \ge 0` per iteration.
    proportions : list of numbers
        :math:`p_1, \dots, p_K \ge 0` summing to 1 (exact fractions; a float is read as its
        shortest decimal, rounded to the nearest fraction of denominator at most
        :data:`MAX_MIX_PERIOD`; floats summing to 1 within :math:`10^{-9}` are rescaled).
    k : int
        The type, an index into ``proportions``.
    """

    proportions: Any = None
    k: Any = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if is_symbolic(self.rate):
            raise LawError(f"RegularMix rate must be a number (its counts are tabulated), got the symbolic {self.rate}")
        props = _mix_proportions(self.proportions)
        check_real("RegularMix k (a type index)", self.k, low=0, high=len(props) - 1, integer=True, error=LawError)
        _set(self, "proportions", tuple(sp.Rational(q.numerator, q.denominator) for q in props))
        _set(self, "k", int(self.k))

    def __repr__(self) -> str:
        props = ", ".join(str(p) for p in self.proportions)
        return f"RegularMix(rate={self.rate!r}, proportions=({props}), k={self.k})"

    def _parameters(self) -> tuple:
        return (self.rate, *self.proportions)

    def _fractions(self) -> tuple[Fraction, ...]:
        return tuple(Fraction(int(p.p), int(p.q)) for p in self.proportions)

    @property
    def proportion(self) -> sp.Rational:
        """This type's proportion :math:`p_k`."""
        return self.proportions[self.k]

    def cumulative(self, arrivals: Any) -> np.ndarray:
        r"""Type ``k``'s count :math:`C_k(N)` among the first :math:`N` pooled arrivals, for
        each :math:`N` of ``arrivals`` (non-negative integers)."""
        props = self._fractions()
        D = math.lcm(*(q.denominator for q in props))
        c_k = int(props[self.k] * D)
        prefix = _mix_table(props)[1][self.k]
        n = np.asarray(arrivals, dtype=np.int64)
        if n.size and n.min() < 0:
            raise LawError(f"arrival counts must be >= 0, got {int(n.min())}")
        return (n // D) * c_k + prefix[n % D]

    def counts(self, first: int, size: int) -> np.ndarray:
        r"""Type ``k``'s counts at iterations ``first .. first + size - 1`` (exact integers):
        :math:`C_k(\lfloor (n+1) r \rfloor) - C_k(\lfloor n r \rfloor)`."""
        r = self._fraction()
        pooled = super().counts(first, size)
        start = (int(first) * r.numerator) // r.denominator
        arrivals = start + np.concatenate([[0], np.cumsum(pooled, dtype=np.int64)])
        return np.diff(self.cumulative(arrivals))

    def frequencies(self) -> dict[int, Fraction]:
        """The long-run frequency of each count of type ``k`` per iteration (exact fractions)."""
        return _mix_frequencies(self._fraction(), self._fractions(), self.k)

    @property
    def support_min(self) -> int:  # type: ignore[override]
        return min(self.frequencies())

    @property
    def support_max(self) -> float:
        return max(self.frequencies())

    def pgf(self, z: Any = _Z) -> sp.Expr:
        return sp.Add(*[sp.Rational(w.numerator, w.denominator) * z**j for j, w in self.frequencies().items()])

    @property
    def mean(self) -> sp.Expr:
        return to_sympy(self.rate) * self.proportion

    @property
    def variance(self) -> sp.Expr:
        return Law.variance.fget(self)  # type: ignore[attr-defined]

    def pmf(self, k):
        freq = self.frequencies()
        kk = np.asarray(k)
        out = np.zeros(kk.shape, dtype=float)
        for j, w in freq.items():
            out = out + np.where(kk == j, float(w), 0.0)
        return float(out) if out.ndim == 0 else out


_MIX_FREQUENCIES: dict = {}


def _mix_frequencies(r: Fraction, props: tuple[Fraction, ...], k: int) -> dict[int, Fraction]:
    """Long-run frequencies of type ``k``'s counts per iteration (see :class:`RegularMix`)."""
    key = (r, props, k)
    if key in _MIX_FREQUENCIES:
        return _MIX_FREQUENCIES[key]
    a, b = r.numerator, r.denominator
    D = math.lcm(*(q.denominator for q in props))
    if a == 0:
        return {0: Fraction(1)}
    c_k = int(props[k] * D)
    prefix = _mix_table(props)[1][k]
    g = math.gcd(a, D)
    lo, rem = divmod(a, b)
    t = b - rem  # offsets y in [0, t) of the iteration's position give a_n = lo, [t, b) give lo + 1
    u = np.arange(D, dtype=np.int64)
    s = (-(u * (b % g))) % g  # y must be = s (mod g) for x = u b + y to be a multiple of g

    def in_range(y0: int, y1: int) -> np.ndarray:  # y in [y0, y1) with y = s (mod g)
        return (y1 - 1 - s) // g - (y0 - 1 - s) // g

    def count_of(arrivals: int) -> np.ndarray:  # type k among pooled arrivals u .. u + arrivals - 1
        end = u + arrivals
        return (end // D) * c_k + prefix[end % D] - prefix[u]

    weights: dict[int, int] = {}
    parts = [(count_of(lo), in_range(0, t))]
    if rem:
        parts.append((count_of(lo + 1), in_range(t, b)))
    for values, ws in parts:
        for v in np.unique(values):
            weights[int(v)] = weights.get(int(v), 0) + sum(int(w) for w in ws[values == v].tolist())
    period = b * D // g
    if sum(weights.values()) != period:  # pragma: no cover - an internal consistency check
        raise LawError(f"internal error: regular_mix frequencies cover {sum(weights.values())} of {period} iterations")
    out = {j: Fraction(w, period) for j, w in sorted(weights.items()) if w}
    if len(_MIX_FREQUENCIES) >= 256:
        _MIX_FREQUENCIES.pop(next(iter(_MIX_FREQUENCIES)))
    _MIX_FREQUENCIES[key] = out
    return out


def regular_mix(rate: Any, proportions: Any) -> tuple[RegularMix, ...]:
    r"""Regular arrivals at rate :math:`r` per iteration split among types in fixed proportions.

    Returns one law per type, :class:`RegularMix` ``(rate, proportions, k)``, to give the
    types' ``arrivals``: the pooled count at iteration :math:`n` is exactly
    :class:`Regular`'s :math:`\lfloor (n+1) r \rfloor - \lfloor n r \rfloor`, and the
    :math:`m`-th pooled arrival goes to the type a deterministic proportional rule gives
    (every type's cumulative count within 1 of :math:`p_k` times the pooled count, at every
    count). Each law's PGF and moments are the long-run frequencies of its counts; its mean
    is :math:`p_k r`.

    Parameters
    ----------
    rate : number
        :math:`r \ge 0`, pooled requests per iteration.
    proportions : list of numbers
        :math:`p_k \ge 0` summing to 1, one per type.

    Examples
    --------
    >>> import queueing_llm as ql
    >>> laws = ql.regular_mix(1.5, [0.5, 0.25, 0.25])
    >>> [law.counts(0, 8).tolist() for law in laws]
    [[1, 0, 1, 1, 0, 2, 0, 1], [0, 1, 0, 1, 0, 0, 1, 0], [0, 1, 0, 0, 1, 0, 0, 1]]
    >>> laws[0].pgf()
    z**2/8 + z/2 + 3/8
    >>> ql.Regular(1.5).counts(0, 8).tolist()
    [1, 2, 1, 2, 1, 2, 1, 2]
    """
    props = _mix_proportions(proportions)
    return tuple(RegularMix(rate, props, k) for k in range(len(props)))
