r"""Family C of the model chapter, section 5: capacity with memory and time.

Three results, each derived in SymPy from the model's primitives (the stage memories,
the laws' moments, the iteration time), for numeric and symbolic parameters:

* **memory Little's law**: the mean KV memory in use, observed once per iteration, is
  the throughput (admissions per iteration) times the mean lifetime memory
  :math:`E[C] = E[\sum_{j<l_1} w_j]`, :math:`w_j = l_0 + 1 + j`; since the memory never
  exceeds :math:`M`, :math:`\lambda E[C] \le M` is necessary for stability;
* the **[NSZ26] stability threshold** :math:`\mu = M / (\bar b\, E[g(s, o)])` with the
  lifetime memory :math:`g` of a request with chunked prefill, and the slack
  :math:`\delta = \max(s + o)/M`;
* the **[ALSW25] fluid benchmark** with linear iteration time :math:`d_0 + d_1 Z`:
  :math:`\rho = d_1 \sum_k \lambda_k W_k`, :math:`\Delta^* = d_0/(1-\rho)`, per-stage
  thresholds :math:`n_k^* = \lambda_k \Delta^*`, memory need :math:`M^*` and the
  feasibility region, with the stage-memory convention (with or without a prefill
  stage) an explicit parameter.

Sources: [ALSW25] R. Ao, G. Luo, D. Simchi-Levi, X. Wang, arXiv:2504.11320, section 3
(fluid benchmark); [NSZ26] C. Nie, N. Si, Z. Zhou, arXiv:2605.04595, section 3 (memory
stability threshold); Little's law (J. D. C. Little, 1961) applied to token-iterations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Any

import sympy as sp

from ..errors import ParameterError, describe
from ..laws import Deterministic, FinitePMF, Law
from ..model import ContinuousBatching, PoissonProcess, RequestType
from ..numbers import check_real, is_infinite, to_sympy

__all__ = [
    "law_moment",
    "expect_polynomial",
    "expect_function",
    "lifetime_memory",
    "stage_memory_prefill",
    "MemoryLittle",
    "memory_little",
    "prefill_memory",
    "decode_memory",
    "nsz_g",
    "expected_g",
    "NszThreshold",
    "nsz_threshold",
    "FluidBenchmark",
    "fluid_equations",
    "fluid_solution",
    "fluid_benchmark",
    "check_chunk",
    "check_batch_time",
]

# Symbols of the derivations: prompt and decode length of one request, stage index.
L0, L1 = sp.symbols("l_0 l_1", integer=True, nonnegative=True)
_J, _I = sp.symbols("j i", integer=True, nonnegative=True)
_Z = sp.Symbol("z")


# ----------------------------------------------------------------------------------
# Expectations over the model's laws
# ----------------------------------------------------------------------------------
def law_moment(law: Law, r: int) -> sp.Expr:
    r"""Raw moment :math:`E[X^r]` of a law, from its PGF.

    :math:`E[X^r] = \sum_{k=0}^{r} S(r, k)\, P^{(k)}(1)` with :math:`S(r,k)` the Stirling
    numbers of the second kind and :math:`P^{(k)}(1) = E[X(X-1)\cdots(X-k+1)]` the
    factorial moments. The mean and second moment come from the law itself (they may
    be in closed form there).
    """
    r = int(r)
    if r < 0:
        raise ParameterError(f"moment order must be an integer >= 0, got {r}")
    if r == 0:
        return sp.Integer(1)
    if r == 1:
        return law.mean
    if r == 2:
        return law.second_moment
    if isinstance(law, Deterministic):
        return to_sympy(law.value) ** r
    pgf = law.pgf(_Z)
    total = sp.Integer(0)
    for k in range(1, r + 1):
        total += sp.functions.combinatorial.numbers.stirling(r, k) * sp.diff(pgf, _Z, k).subs(_Z, 1)
    return sp.simplify(total)


def expect_polynomial(expr: Any, laws: dict[sp.Symbol, Law]) -> sp.Expr:
    r"""Expectation of a polynomial in independent random variables.

    Each monomial :math:`c \prod_v v^{a_v}` becomes :math:`c \prod_v E[v^{a_v}]`
    (:func:`law_moment`); the variables (prompt and decode length of one request) are
    independent, as in the model chapter, section 1.
    """
    expr = sp.expand(sp.sympify(expr))
    variables = list(laws)
    poly = sp.Poly(expr, *variables)
    total = sp.Integer(0)
    for powers, coeff in poly.terms():
        term = coeff
        for v, a in zip(variables, powers, strict=True):
            term *= law_moment(laws[v], a)
        total += term
    return sp.simplify(total)


def _support(law: Law) -> list[tuple[sp.Expr, sp.Expr]]:
    """Values and probabilities of a law with finite support (exact SymPy numbers)."""
    if isinstance(law, Deterministic):
        return [(to_sympy(law.value), sp.Integer(1))]
    if isinstance(law, FinitePMF):
        return [(sp.Integer(v), to_sympy(p)) for v, p in law.probabilities]
    if not law.is_symbolic and not math.isinf(law.support_max):
        poly = sp.Poly(sp.expand(law.pgf(_Z)), _Z)
        return [(sp.Integer(k[0]), c) for k, c in poly.terms()]
    raise ParameterError(
        f"this expectation needs a law with finite support (deterministic, finite PMF, binomial), got {law!r}"
    )


def expect_function(fn: Any, law: Law) -> sp.Expr:
    r""":math:`E[f(X)] = \sum_v P(X = v) f(v)` over a law with finite support (exact).

    ``fn`` maps a SymPy number (or symbol, for a deterministic symbolic law) to a SymPy
    expression. Used for the chunked-prefill memory of [NSZ26], which is not a polynomial.
    """
    return sp.Add(*[p * fn(v) for v, p in _support(law)])


# ----------------------------------------------------------------------------------
# Lifetime memory, with or without a prefill stage
# ----------------------------------------------------------------------------------
def stage_memory_prefill(t: RequestType, k: Any) -> sp.Expr:
    r"""Stage memory in the convention with a prefill stage ([ALSW25], the references chapter, section 2).

    A request holds :math:`l_0 + k` tokens at stages :math:`k = 0, \dots, l_1`: stage 0 is
    the prefill iteration (the prompt's KV), stage :math:`k` adds the :math:`k`-th output
    token. Compare the model chapter's :math:`w_j = l_0 + 1 + j`, :math:`j < l_1`
    (:meth:`RequestType.stage_memory`).
    """
    return t.l0 + to_sympy(k)


def lifetime_memory(t: RequestType, prefill_stage: bool = False) -> sp.Expr:
    r"""Mean lifetime memory :math:`W` (token-iterations) of a request of type ``t``.

    ``prefill_stage=False`` (the model chapter, the simulator's convention):
    :math:`W = E[C] = E[\sum_{j<l_1} w_j]`, :math:`w_j = l_0 + 1 + j`, that is
    :meth:`RequestType.lifetime_memory`, :math:`l_1 (l_0 + (l_1+1)/2)` when deterministic.

    ``prefill_stage=True`` ([ALSW25]): :math:`W = E[\sum_{k=0}^{l_1} (l_0 + k)]`, which is
    :math:`(l_1 + 1)(l_0 + l_1/2)` when deterministic; the sum is taken in SymPy for
    symbolic lengths and its expectation from the laws' moments (prompt and decode
    independent).
    """
    _check_flag("prefill_stage", prefill_stage)
    if not prefill_stage:
        return t.lifetime_memory
    one = RequestType(prompt=Deterministic(L0), decode=Deterministic(L1))
    per_request = sp.summation(stage_memory_prefill(one, _J), (_J, 0, L1))
    if t.is_deterministic:
        return sp.factor(per_request.subs({L0: t.l0, L1: t.l1}))
    return expect_polynomial(per_request, {L0: t.prompt, L1: t.decode})


def _check_flag(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ParameterError(f"{name} must be True or False, got {describe(value)}")


def _rates(model: ContinuousBatching) -> list[tuple[sp.Expr, bool]]:
    """Arrival rate of each type and whether it is per second (PoissonProcess)."""
    out = []
    for k, t in enumerate(model.types):
        if t.arrivals is None:
            raise ParameterError(
                f"types[{k}] has arrivals=None (saturated-only); this result needs arrival rates"
            )
        out.append((t.arrival_rate, isinstance(t.arrivals, PoissonProcess)))
    return out


def _lt_one(x: sp.Expr) -> bool | sp.Basic:
    """``x < 1`` decided when possible, else the relation (symbolic parameters)."""
    rel = sp.Lt(x, 1)
    return bool(rel) if rel in (sp.true, sp.false) else rel


def _decide(rel: sp.Basic) -> bool | sp.Basic:
    """A relation decided to True/False when SymPy can, else the relation as written."""
    decided = sp.simplify(rel) if not isinstance(rel, bool) else rel
    if decided in (sp.true, True):
        return True
    if decided in (sp.false, False):
        return False
    return rel


# ----------------------------------------------------------------------------------
# Memory Little's law
# ----------------------------------------------------------------------------------
_SYM = {
    "A": sp.Symbol("A", nonnegative=True),  # token-iterations per iteration from per-iteration arrivals
    "S": sp.Symbol("S", nonnegative=True),  # token-iterations per second from PoissonProcess arrivals
    "d0": sp.Symbol("d_0", positive=True),
    "d1": sp.Symbol("d_1", nonnegative=True),
}


@cache
def _little_solution() -> dict[str, sp.Expr]:
    r"""Memory Little's law with a linear iteration time, solved once with generic symbols.

    :math:`\bar Z = A + S \bar s` (per-iteration arrivals contribute :math:`A`, arrivals
    per second :math:`S \bar s`), :math:`\bar s = d_0 + d_1 \bar Z`.
    """
    z, s = sp.symbols(r"\bar{Z} \bar{s}")
    A, S, d0, d1 = (_SYM[k] for k in ("A", "S", "d0", "d1"))
    sol = sp.solve([sp.Eq(z, A + S * s), sp.Eq(s, d0 + d1 * z)], [z, s], dict=True)[0]
    return {"Z": sol[z], "s": sol[s]}


@dataclass(frozen=True)
class MemoryLittle:
    r"""Memory Little's law for a model (see :func:`memory_little`).

    Attributes
    ----------
    mean_kv : sympy.Expr
        :math:`\bar Z = \Lambda\, E[C]`, mean KV tokens in use per iteration (``oo`` if
        the iteration time diverges, :math:`\rho \ge 1`).
    throughput : sympy.Expr
        :math:`\Lambda`, admissions (= arrivals, = completions) per iteration.
    lifetime_memory : sympy.Expr
        :math:`E[C]`, arrival-weighted mean lifetime memory (token-iterations).
    mean_iteration_time : sympy.Expr or None
        :math:`\bar s = d_0 + d_1 \bar Z` seconds (None without an iteration time).
    necessary : bool or sympy relation
        :math:`\Lambda E[C] \le M`, necessary for stability.
    reason : str
        Empty, or why the values are infinite.
    """

    mean_kv: sp.Expr
    throughput: sp.Expr
    lifetime_memory: sp.Expr
    mean_iteration_time: sp.Expr | None
    necessary: Any
    reason: str = ""


def memory_little(model: ContinuousBatching) -> MemoryLittle:
    r"""Memory Little's law: mean KV in use = throughput :math:`\times` mean lifetime memory.

    Observed once per iteration (after admission), a request admitted and never evicted
    contributes :math:`w_0, w_1, \dots, w_{l_1-1}` to :math:`l_1` consecutive observations,
    :math:`C = \sum_{j<l_1} w_j` in all. Summing over a long run and dividing by the
    number of iterations gives, for a stationary run without evictions,

    .. math:: \bar Z = \sum_k a_k\, E[C_k] = \Lambda\, E[C],

    with :math:`a_k` the type-:math:`k` arrivals per iteration. Per-iteration arrival laws
    give :math:`a_k = \lambda_k`. A :class:`~queueing_llm.model.PoissonProcess` of rate
    :math:`\lambda_k` per second gives :math:`a_k = \lambda_k \bar s` with the mean
    iteration time :math:`\bar s = d_0 + d_1 \bar Z` (the model chapter, section 4); solving the two
    linear equations gives :math:`\bar Z = d_0 S / (1 - d_1 S)`,
    :math:`S = \sum_k \lambda_k E[C_k]`, which is the fluid memory need of [ALSW25]
    (an exact identity here, not an approximation). Since :math:`Z_n \le M`,
    :math:`\Lambda E[C] \le M` is necessary for stability ([NSZ26] section 3, the model chapter,
    section 5 C.1).
    """
    rates = _rates(model)
    costs = [t.lifetime_memory for t in model.types]
    per_iteration = sp.Add(*[r * c for (r, ps), c in zip(rates, costs, strict=True) if not ps])
    per_second = sp.Add(*[r * c for (r, ps), c in zip(rates, costs, strict=True) if ps])
    wall = any(ps for _, ps in rates)
    reason = ""
    if wall:
        it = model.iteration_time
        d0, d1 = to_sympy(it.d0), to_sympy(it.d1)
        general = _little_solution()
        subs = {_SYM["A"]: per_iteration, _SYM["S"]: per_second, _SYM["d0"]: d0, _SYM["d1"]: d1}
        rho = d1 * per_second
        if _lt_one(rho) is False:
            reason = f"rho = d1 * sum_k lambda_k E[C_k] = {rho} >= 1: the mean iteration time diverges"
            z, s = sp.oo, sp.oo
        else:
            z, s = general["Z"].subs(subs), general["s"].subs(subs)
    else:
        z = per_iteration
        s = None
        if model.iteration_time is not None:
            s = to_sympy(model.iteration_time.d0) + to_sympy(model.iteration_time.d1) * z
    if z == sp.oo:
        throughput = sp.oo
        weights = [r if ps else sp.Integer(0) for r, ps in rates]  # the per-second types dominate
    else:
        weights = [r * s if ps else r for r, ps in rates]
        throughput = sp.Add(*weights)
    mean_c = sp.simplify(sp.Add(*[a * c for a, c in zip(weights, costs, strict=True)]) / sp.Add(*weights))
    necessary = _decide(sp.Le(z, model.M)) if z != sp.oo else False
    return MemoryLittle(z, throughput, mean_c, s, necessary, reason)


# ----------------------------------------------------------------------------------
# [NSZ26] stability threshold
# ----------------------------------------------------------------------------------
def check_chunk(chunk: Any) -> sp.Expr | None:
    """Validate the prefill chunk size :math:`\\hat s` (integer >= 1, ``inf`` or None)."""
    if chunk is None:
        return None
    check_real("chunk", chunk, low=1, integer=True, allow_inf=True)
    return to_sympy(chunk)


def check_batch_time(batch_time: Any) -> sp.Expr:
    """Validate the batch time :math:`\\bar b` (seconds per batch, > 0)."""
    check_real("batch_time", batch_time, low=0.0, low_open=True)
    return to_sympy(batch_time)


def prefill_memory(s: Any, chunk: Any) -> sp.Expr:
    r"""Prefill part of the [NSZ26] lifetime memory: :math:`\hat s + 2\hat s + \dots + s`.

    Reading of the chunked-prefill sum (the references chapter, section 3): the prompt of
    :math:`s` tokens is prefilled in :math:`m = \lceil s/\hat s \rceil` iterations; after
    the :math:`i`-th chunk the request holds :math:`\min(i \hat s, s)` tokens, so

    .. math:: P(s) = \sum_{i=1}^{m} \min(i\hat s, s) = \hat s\,\frac{m(m-1)}{2} + s .

    When :math:`\hat s` divides :math:`s` this is :math:`\hat s (1 + 2 + \dots + s/\hat s)`,
    the paper's series; otherwise the last chunk is the partial one (:math:`s - (m-1)\hat s`
    tokens) and the series ends at :math:`s` (not at :math:`m \hat s`). ``chunk=None``:
    prefill abstracted (the prompt's KV is resident at admission, the model chapter, section 1),
    :math:`P = 0`; ``chunk=oo``: one prefill iteration holding :math:`s`, :math:`P = s`.
    """
    s = to_sympy(s)
    if chunk is None:
        return sp.Integer(0)
    chunk = to_sympy(chunk)
    if chunk == sp.oo:
        return s
    m = sp.ceiling(s / chunk)
    # memory after each full chunk i < m, then the whole prompt after the last chunk
    return sp.summation(_I * chunk, (_I, 1, m - 1)) + s


def decode_memory(s: Any, o: Any) -> sp.Expr:
    r"""Decode part of the [NSZ26] lifetime memory: :math:`(s+1) + \dots + (s+o)`.

    Derived as :math:`\sum_{i=1}^{o} (s + i) = o s + o(o+1)/2`; with :math:`s = l_0`,
    :math:`o = l_1` it is the model chapter's lifetime memory :math:`C = \sum_{j<l_1} w_j`.
    """
    s, o = to_sympy(s), to_sympy(o)
    return sp.expand(sp.summation(s + _I, (_I, 1, o)))


def nsz_g(s: Any, o: Any, chunk: Any) -> sp.Expr:
    r""":math:`g(s, o) = (\hat s + 2\hat s + \dots + s) + ((s+1) + \dots + (s+o))` ([NSZ26], section 3).

    The cumulative KV memory (token-iterations) of a request with prompt :math:`s` and
    output :math:`o`; :func:`prefill_memory` documents the reading of the prefill sum.
    """
    return prefill_memory(s, chunk) + decode_memory(s, o)


def expected_g(t: RequestType, chunk: Any) -> sp.Expr:
    r""":math:`E[g(s, o)]` for one request type, exactly.

    The decode part is a polynomial in :math:`s, o`; its expectation comes from the
    laws' moments (:func:`expect_polynomial`, prompt and decode independent). The
    prefill part involves :math:`\lceil s/\hat s\rceil`: it is evaluated in closed form for a
    deterministic (possibly symbolic) prompt and summed exactly over the support of a
    finite-support prompt law.
    """
    chunk = check_chunk(chunk)
    s, o = sp.symbols("s o", integer=True, nonnegative=True)
    decode_part = decode_memory(s, o)
    if t.is_deterministic:
        return sp.simplify(nsz_g(t.l0, t.l1, chunk))
    e_decode = expect_polynomial(decode_part, {s: t.prompt, o: t.decode})
    if chunk is None:
        e_prefill = sp.Integer(0)
    elif chunk == sp.oo:
        e_prefill = t.l0
    elif isinstance(t.prompt, Deterministic):
        e_prefill = prefill_memory(t.l0, chunk)
    else:
        closed = prefill_memory(s, chunk)
        e_prefill = expect_function(lambda v: closed.xreplace({s: v}), t.prompt)
    return sp.simplify(e_prefill + e_decode)


@dataclass(frozen=True)
class NszThreshold:
    r"""The [NSZ26] threshold for a model (see :func:`nsz_threshold`).

    Attributes
    ----------
    mu : sympy.Expr
        :math:`\mu = M/(\bar b\, E[g])` requests per unit of ``batch_time``.
    delta : sympy.Expr
        :math:`\delta = \max(s + o)/M`.
    mean_g : sympy.Expr
        :math:`E[g] = \sum_k p_k E[g_k]`.
    stable_rate : sympy.Expr
        :math:`\mu (1 - \delta)`.
    """

    mu: sp.Expr
    delta: sp.Expr
    mean_g: sp.Expr
    stable_rate: sp.Expr


def nsz_threshold(model: ContinuousBatching, chunk: Any = None, batch_time: Any = 1) -> NszThreshold:
    r"""[NSZ26] memory stability threshold :math:`\mu = M / (\bar b\, E[g(s,o)])` and slack :math:`\delta`.

    [NSZ26, section 3]: with KV capacity :math:`M` tokens and batch time :math:`\bar b`,
    the system is unstable under any policy if :math:`\lambda > \mu` and stable under a
    work-conserving policy if :math:`\lambda < \mu(1-\delta)`,
    :math:`\delta = \max(s + o)/M`. :math:`E[g] = \sum_k p_k E[g_k]` over the model's
    admission proportions :math:`p_k` (:func:`expected_g`).

    Parameters
    ----------
    model : ContinuousBatching
        Finite ``kv_capacity`` :math:`M`.
    chunk : int, inf or None
        Prefill chunk size :math:`\hat s \ge 1`; None (default) abstracts prefill as
        the model chapter does (then :math:`g = C` and :math:`\mu \bar b = M/E[C]`, the memory
        Little bound); ``inf`` is an unchunked prefill iteration.
    batch_time : float
        :math:`\bar b > 0`, seconds per batch (default 1: :math:`\mu` per iteration).
    """
    chunk = check_chunk(chunk)
    bbar = check_batch_time(batch_time)
    M = model.M
    if is_infinite(M):
        raise ParameterError("the [NSZ26] threshold needs a finite kv_capacity M, got inf")
    mean_g = sp.simplify(sp.Add(*[p * expected_g(t, chunk) for p, t in zip(model.proportions, model.types,
                                                                            strict=True)]))
    mu = sp.simplify(M / (bbar * mean_g))
    sizes = []
    for t in model.types:
        sizes.append(_law_max(t.prompt) + _law_max(t.decode))
    delta = sp.simplify(sp.Max(*sizes) / M)
    return NszThreshold(mu, delta, mean_g, sp.simplify(mu * (1 - delta)))


def _law_max(law: Law) -> sp.Expr:
    if isinstance(law, Deterministic):
        return to_sympy(law.value)
    if law.is_symbolic or math.isinf(law.support_max):
        raise ParameterError(f"delta = max(s + o)/M needs bounded numeric length laws, got {law!r}")
    return sp.Integer(int(law.support_max))


# ----------------------------------------------------------------------------------
# [ALSW25] fluid benchmark with linear iteration time
# ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class FluidBenchmark:
    r"""The [ALSW25] fluid benchmark for a model (see :func:`fluid_benchmark`).

    Attributes
    ----------
    load : sympy.Expr
        :math:`S = \sum_k \lambda_k W_k` (token-iterations per second).
    rho : sympy.Expr
        :math:`d_1 S`.
    delta_star : sympy.Expr
        :math:`\Delta^* = d_0/(1-\rho)` seconds per iteration (``oo`` if :math:`\rho \ge 1`).
    thresholds : tuple
        :math:`n_k^* = \lambda_k \Delta^*` requests per stage, per type.
    memory_need : sympy.Expr
        :math:`M^* = \Delta^* S`.
    capacity_bound : sympy.Expr
        :math:`M/(d_0 + d_1 M)`, the largest feasible :math:`S`.
    feasible : bool or sympy relation
        :math:`S \le M/(d_0 + d_1 M)` (and :math:`\rho < 1`).
    lifetimes : tuple
        :math:`W_k`.
    reason : str
        Empty, or why :math:`\Delta^*` is infinite.
    """

    load: sp.Expr
    rho: sp.Expr
    delta_star: sp.Expr
    thresholds: tuple
    memory_need: sp.Expr
    capacity_bound: sp.Expr
    feasible: Any
    lifetimes: tuple
    reason: str = ""


def fluid_equations(rates: list, lifetimes: list, d0: Any, d1: Any) -> tuple[sp.Symbol, list, list[sp.Eq]]:
    r"""The fluid balance of [ALSW25] with linear iteration time, as SymPy equations.

    Unknowns: the iteration length :math:`\Delta` and per-stage occupancies :math:`n_k`.
    Every iteration admits :math:`n_k` type-:math:`k` requests, which must equal the
    arrivals :math:`\lambda_k \Delta` during it; the batch holds :math:`n_k` requests at
    every stage, :math:`\sum_k n_k W_k` tokens, so :math:`\Delta = d_0 + d_1 \sum_k n_k W_k`.
    """
    delta = sp.Symbol(r"\Delta", positive=True)
    ns = [sp.Symbol(f"n_{k + 1}", nonnegative=True) for k in range(len(rates))]
    eqs = [sp.Eq(n, lam * delta) for n, lam in zip(ns, rates, strict=True)]
    eqs.append(sp.Eq(delta, d0 + d1 * sp.Add(*[n * w for n, w in zip(ns, lifetimes, strict=True)])))
    return delta, ns, eqs


@cache
def fluid_solution(K: int) -> dict[str, Any]:
    r"""The fluid balance for :math:`K` types solved once with generic symbols.

    Returns the symbols (``rates`` :math:`\lambda_k`, ``lifetimes`` :math:`W_k`, ``d0``,
    ``d1``, ``M``, ``S``) and the solution: ``delta_star`` :math:`\Delta^*`, ``thresholds``
    :math:`n_k^*`, ``memory_need`` :math:`M^* = \sum_k n_k^* W_k`; and, from the same balance
    written with the load :math:`S = \sum_k \lambda_k W_k` (it is all the iteration time
    sees), ``need_of_load`` :math:`M^*(S)` and ``capacity_bound``, the root in :math:`S` of
    :math:`M^*(S) = M`.
    """
    lam = [sp.Symbol(f"lambda_{k + 1}", positive=True) for k in range(K)]
    w = [sp.Symbol(f"W_{k + 1}", positive=True) for k in range(K)]
    d0, d1 = sp.Symbol("d_0", positive=True), sp.Symbol("d_1", positive=True)
    M, S = sp.Symbol("M", positive=True), sp.Symbol("S", positive=True)
    delta, ns, eqs = fluid_equations(lam, w, d0, d1)
    sol = sp.solve(eqs, [delta, *ns], dict=True)[0]
    need = sp.Add(*[sol[n] * wk for n, wk in zip(ns, w, strict=True)])
    # the same balance with one aggregate load S: Delta = d0 + d1 S Delta
    delta_of_load = sp.solve(sp.Eq(delta, d0 + d1 * S * delta), delta)[0]
    need_of_load = delta_of_load * S
    bound = sp.solve(sp.Eq(need_of_load, M), S)[0]
    return {
        "rates": lam, "lifetimes": w, "d0": d0, "d1": d1, "M": M, "S": S,
        "delta_star": sol[delta], "thresholds": [sol[n] for n in ns], "memory_need": need,
        "need_of_load": need_of_load, "capacity_bound": bound,
    }


def fluid_benchmark(model: ContinuousBatching, prefill_stage: bool = False) -> FluidBenchmark:
    r"""[ALSW25] fluid benchmark with linear iteration time :math:`d_0 + d_1 Z`.

    Solving the fluid balance (:func:`fluid_equations`) gives

    .. math::
        \rho = d_1 \sum_k \lambda_k W_k, \qquad \Delta^* = \frac{d_0}{1-\rho}, \qquad
        n_k^* = \lambda_k \Delta^*, \qquad
        M^* = \Delta^* \sum_k \lambda_k W_k = \frac{d_0}{d_1}\frac{\rho}{1-\rho};

    :math:`M^*` increases with :math:`S = \sum_k \lambda_k W_k` on :math:`\rho < 1`, and
    solving :math:`M^* = M` for :math:`S` gives the feasibility region
    :math:`S \le M/(d_0 + d_1 M)` ([ALSW25] section 3; the references chapter, section 2). For
    :math:`\rho \ge 1` the fluid iteration length is infinite: ``delta_star = oo``,
    ``feasible = False``.

    Parameters
    ----------
    model : ContinuousBatching
        Every type with :class:`~queueing_llm.model.PoissonProcess` arrivals (rates
        :math:`\lambda_k` per second) and an ``iteration_time`` :math:`(d_0, d_1)`.
    prefill_stage : bool
        False (default): the model chapter's stage memories :math:`w_j = l_0 + 1 + j`,
        :math:`W_k = E[C_k]` (the simulator's convention); True: [ALSW25]'s convention
        with a prefill stage, :math:`l_0 + k` tokens at stages :math:`k = 0..l_1`,
        :math:`W_k = (l_1+1)(l_0 + l_1/2)`.
    """
    _check_flag("prefill_stage", prefill_stage)
    if model.iteration_time is None:
        raise ParameterError("the fluid benchmark needs iteration_time=ql.LinearIterationTime(d0, d1), got None")
    rates = []
    for k, t in enumerate(model.types):
        if not isinstance(t.arrivals, PoissonProcess):
            raise ParameterError(
                f"the fluid benchmark reads rates per second from ql.PoissonProcess arrivals; "
                f"types[{k}] has arrivals={t.arrivals!r}"
            )
        rates.append(t.arrival_rate)
    lifetimes = [lifetime_memory(t, prefill_stage) for t in model.types]
    d0, d1 = to_sympy(model.iteration_time.d0), to_sympy(model.iteration_time.d1)
    general = fluid_solution(len(rates))
    subs = {general["d0"]: d0, general["d1"]: d1}
    subs.update(zip(general["rates"], rates, strict=True))
    subs.update(zip(general["lifetimes"], lifetimes, strict=True))
    load = sp.Add(*[lam * w for lam, w in zip(rates, lifetimes, strict=True)])
    rho = d1 * load
    M = model.M
    bound_of_m = general["capacity_bound"].subs(subs)
    if is_infinite(M):
        bound = sp.limit(bound_of_m, general["M"], sp.oo)
    else:
        bound = bound_of_m.subs(general["M"], M)
    stable = _lt_one(rho)
    if stable is False:
        reason = f"rho = {rho} >= 1: the fluid iteration length Delta* is infinite"
        return FluidBenchmark(load, rho, sp.oo, tuple(sp.oo for _ in rates), sp.oo, bound, False,
                              tuple(lifetimes), reason)
    delta_star = general["delta_star"].subs(subs)
    thresholds = tuple(n.subs(subs) for n in general["thresholds"])
    memory_need = general["memory_need"].subs(subs)
    if is_infinite(M):
        feasible = stable
    else:
        feasible = _decide(sp.Le(load, bound))
    return FluidBenchmark(load, rho, delta_star, thresholds, memory_need, bound, feasible, tuple(lifetimes))
