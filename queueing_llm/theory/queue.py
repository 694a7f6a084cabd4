r"""Family B of the model chapter, section 5: the batch-capped queue without a memory limit.

Policy ``fcfs_cap`` (admit FCFS while fewer than :math:`B` requests are in the batch,
:math:`M = \infty`), random arrivals :math:`A_n` per iteration with PGF :math:`A(z)` and
mean :math:`\lambda`, random decode lengths :math:`l_1` with PGF :math:`F(z)`. Every result
is derived in SymPy from the laws' PGFs (parameters may be symbols):

* **stability** :math:`\lambda E[l_1] < B` and saturated throughput :math:`B/E[l_1]`;
* **overload drift** :math:`\lambda - B/E[l_1]` (the fluid line of the queue) and the exact
  one-step drift :math:`\lambda - Bq` of geometric decode lengths with :math:`\ge B` present;
* **renewal transient** of a saturated batch started empty: :math:`U(z) = 1/(1 - F(z))`,
  :math:`u_n = \sum_k f_k u_{n-k}`, expected completions :math:`B u_n`, limit
  :math:`1/E[l_1]` iff the support's gcd is 1, else the oscillation
  :math:`u_{md + r} \to d\,[r = 0]/E[l_1]`;
* **equilibrium stage** law of a saturated batch :math:`P(l_1 > j)/E[l_1]` and its mean KV;
* **quadratic-Lyapunov bounds** on the stationary mean number in system for geometric
  decode lengths (Bailey's queue for :math:`q = 1`).

The stationary distribution (Geo^X/Geo/B) lives in :mod:`queueing_llm.theory.queue_stationary`,
the waiting-room cap in :mod:`queueing_llm.theory.queue_waiting`; both use :func:`queue_inputs`.

Notation: "in system" :math:`Y_n` is observed after admission (the model chapter, section 2);
:math:`S_n = \min(Y_n, B)` requests are in the batch, :math:`W_n = (Y_n - B)^+` wait.

Sources: N. T. J. Bailey, "On queueing processes with bulk service", J. R. Statist. Soc. B
16 (1954); W. Feller, *An Introduction to Probability Theory*, vol. 1, 3rd ed., ch. XIII
(discrete renewal theory); H. Bruneel and B. G. Kim, *Discrete-Time Models for Communication
Systems Including ATM* (1993); the model chapter, section 5, family B.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import reduce
from typing import Any

import sympy as sp

from ..errors import ModelError, ParameterError, describe
from ..laws import Deterministic, FinitePMF, Geometric, Law
from ..model import ContinuousBatching
from ..numbers import is_infinite, is_symbolic, to_sympy
from ..policies import FcfsCap, Greedy

__all__ = [
    "Z",
    "QueueInputs",
    "queue_inputs",
    "queue_reason",
    "geometric_q",
    "StabilityResult",
    "stability",
    "overload_drift",
    "fluid_queue",
    "geometric_one_step_drift",
    "renewal_generating_function",
    "decode_pmf",
    "renewal_sequence",
    "renewal_period",
    "RenewalLimit",
    "renewal_limit",
    "expected_completions",
    "stage_probability",
    "EquilibriumStage",
    "equilibrium_stage",
    "LyapunovBounds",
    "lyapunov_bounds",
    "lyapunov_identity",
]

Z = sp.Symbol("z")
"""The PGF variable of every derivation of family B."""


# ----------------------------------------------------------------------------------
# inputs of the family: arrival PGF, decode PGF, B
# ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class QueueInputs:
    r"""The primitives of the batch-capped queue read off a model.

    Attributes
    ----------
    B : sympy.Expr
        Batch cap (a number or a symbol).
    arrival_laws : tuple of Law
        Per-type arrival laws (independent); empty for a saturated-only model.
    arrival_pgf : sympy.Expr or None
        :math:`A(z) = \prod_k A_k(z)`, the PGF of all arrivals of one iteration.
    lam : sympy.Expr or None
        :math:`\lambda = A'(1)`.
    decode_laws, proportions : tuple
        Per-type decode laws and admission proportions :math:`p_k`.
    decode_pgf : sympy.Expr
        :math:`F(z) = \sum_k p_k F_k(z)`, the decode law of an admitted request.
    mean_decode : sympy.Expr
        :math:`E[l_1] = F'(1)`.
    """

    B: sp.Expr
    arrival_laws: tuple
    arrival_pgf: sp.Expr | None
    lam: sp.Expr | None
    decode_laws: tuple
    proportions: tuple
    decode_pgf: sp.Expr
    mean_decode: sp.Expr
    prompt_means: tuple = field(default=())

    @property
    def has_arrivals(self) -> bool:
        return self.arrival_pgf is not None

    @property
    def arrival_variance(self) -> sp.Expr:
        r""":math:`\sigma^2 = \sum_k \mathrm{Var}\,A_k` (independent types)."""
        return sp.Add(*[law.variance for law in self.arrival_laws])


def queue_reason(model: Any, *, arrivals: bool = True, geometric: bool = False) -> str | None:
    """None if the family-B results apply to ``model``, else the reason they do not.

    Parameters
    ----------
    arrivals : bool
        Require an arrival law (per iteration) for every type.
    geometric : bool
        Require geometric decode lengths with one common :math:`q` (``Deterministic(1)``
        counts as :math:`q = 1`).
    """
    if not isinstance(model, ContinuousBatching):
        return f"expected a ContinuousBatching model, got {describe(model)}"
    pol = model.policy
    if not (isinstance(pol, FcfsCap) or (isinstance(pol, Greedy) and is_infinite(model.kv_capacity))):
        return f"needs policy fcfs_cap (the batch-capped queue without memory limit), got policy {pol}"
    if not is_infinite(model.kv_capacity):
        return f"needs kv_capacity = inf (no memory limit), got {describe(model.kv_capacity)}"
    if is_infinite(model.batch_cap):
        return "needs a finite batch cap B (batch_cap = inf is an infinite-server system)"
    for k, t in enumerate(model.types):
        if t.arrivals is None:
            if arrivals:
                return f"type {k} has no arrival law (saturated-only model); give arrivals per iteration"
        elif not isinstance(t.arrivals, Law):
            return (f"type {k} arrives as {t.arrivals!r} in seconds; the family-B results need "
                    "arrivals per iteration (a law)")
    if geometric and geometric_q(model) is None:
        laws = ", ".join(repr(t.decode) for t in model.types)
        return f"needs geometric decode lengths with one common q (Geometric(q)), got {laws}"
    return None


def _require(model: Any, **kw: Any) -> None:
    reason = queue_reason(model, **kw)
    if reason is not None:
        raise ModelError(reason)


def geometric_q(model: ContinuousBatching) -> sp.Expr | None:
    r"""The common completion probability :math:`q` of geometric decode lengths, else None.

    ``Geometric(q)`` gives :math:`q`; ``Deterministic(1)`` is :math:`q = 1` (every member
    completes after one iteration: Bailey's bulk-service queue).
    """
    qs = []
    for t in model.types:
        law = t.decode
        if isinstance(law, Geometric):
            qs.append(to_sympy(law.q))
        elif isinstance(law, Deterministic) and not is_symbolic(law.value) and int(law.value) == 1:
            qs.append(sp.Integer(1))
        else:
            return None
    first = qs[0]
    if all(sp.simplify(x - first) == 0 for x in qs[1:]):
        return first
    return None


def queue_inputs(model: ContinuousBatching, *, arrivals: bool = True) -> QueueInputs:
    """Read the family-B primitives off ``model`` (raises ModelError if they do not apply)."""
    _require(model, arrivals=arrivals)
    laws = tuple(t.arrivals for t in model.types if isinstance(t.arrivals, Law))
    has = len(laws) == model.K
    pgf = sp.Mul(*[law.pgf(Z) for law in laws]) if has else None
    lam = sp.Add(*[law.mean for law in laws]) if has else None
    props = tuple(model.proportions)
    dec = tuple(t.decode for t in model.types)
    F = sp.Add(*[p * law.pgf(Z) for p, law in zip(props, dec, strict=True)])
    mean = sp.simplify(sp.Add(*[p * law.mean for p, law in zip(props, dec, strict=True)]))
    return QueueInputs(
        B=model.B, arrival_laws=laws, arrival_pgf=pgf, lam=lam, decode_laws=dec, proportions=props,
        decode_pgf=F, mean_decode=mean, prompt_means=tuple(t.l0 for t in model.types),
    )


def _truth(rel: Any) -> Any:
    """A Python bool when SymPy decides the relation, else the relation itself."""
    rel = sp.simplify(rel) if isinstance(rel, sp.Basic) else rel
    if rel in (sp.true, True):
        return True
    if rel in (sp.false, False):
        return False
    return rel


# ----------------------------------------------------------------------------------
# B.1 stability and saturated throughput
# ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class StabilityResult:
    r"""Stability of the batch-capped queue.

    Attributes
    ----------
    capacity : sympy.Expr
        Saturated throughput :math:`B/E[l_1]` (completions per iteration).
    load : sympy.Expr or None
        :math:`\rho = \lambda E[l_1]/B`.
    stable : bool or sympy relation
        :math:`\lambda E[l_1] < B` (a relation when symbolic; None without arrivals).
    throughput : sympy.Expr or None
        Long-run completions per iteration :math:`\min(\lambda, B/E[l_1])`.
    condition : sympy relation
        The statement :math:`\lambda E[l_1] < B`.
    """

    capacity: sp.Expr
    load: sp.Expr | None
    stable: Any
    throughput: sp.Expr | None
    condition: Any


def stability(model: ContinuousBatching) -> StabilityResult:
    r"""Stability condition and saturated throughput of the batch-capped queue.

    A saturated batch holds :math:`B` requests at every iteration; by the renewal reward
    theorem each slot completes one request per :math:`E[l_1]` iterations, so the
    saturated throughput is :math:`\mu = B/E[l_1]` with :math:`E[l_1] = F'(1)`. The queue is
    positive recurrent iff :math:`\lambda < \mu`, i.e.

    .. math:: \lambda E[l_1] < B.

    Source: the model chapter, section 5, B.1; Bailey (1954) for :math:`l_1 = 1`; Loynes (1962)
    stability of queues with stationary input.
    """
    inp = queue_inputs(model, arrivals=False)
    El1 = sp.simplify(sp.diff(inp.decode_pgf, Z).subs(Z, 1))
    capacity = sp.simplify(inp.B / El1)
    if inp.lam is None:
        lam = sp.Symbol("lambda", nonnegative=True)
        return StabilityResult(capacity, None, None, None, sp.StrictLessThan(lam * El1, inp.B))
    lam = inp.lam
    cond = sp.StrictLessThan(lam * El1, inp.B)
    stable = _truth(cond)
    thr = sp.Min(lam, capacity)
    return StabilityResult(capacity, sp.simplify(lam * El1 / inp.B), stable, thr, cond)


# ----------------------------------------------------------------------------------
# B.2 overload drift
# ----------------------------------------------------------------------------------
def overload_drift(model: ContinuousBatching) -> sp.Expr:
    r"""Long-run growth rate of the queue, :math:`\lim_n Q_n/n`.

    .. math:: \lim_{n\to\infty} \frac{Q_n}{n} = \left(\lambda - \frac{B}{E[l_1]}\right)^+ .

    In overload the batch is full from some iteration on and completes :math:`B/E[l_1]`
    requests per iteration (renewal reward), while :math:`\lambda` arrive; a stable queue
    has drift 0. Symbolic parameters give a ``Piecewise``.

    Source: the model chapter, section 5, B.2 (fluid limit of the queue).
    """
    inp = queue_inputs(model)
    raw = sp.simplify(inp.lam - inp.B / inp.mean_decode)
    decided = _truth(sp.StrictGreaterThan(raw, 0))
    if decided is True:
        return raw
    if decided is False:
        return sp.Integer(0)
    return sp.Piecewise((raw, sp.StrictGreaterThan(raw, 0)), (0, True))


def fluid_queue(model: ContinuousBatching, initial: Any = 0, n: Any = None) -> sp.Expr:
    r"""Fluid line of the queue: :math:`Q(n) = \max(Q(0) + (\lambda - B/E[l_1])\,n,\ 0)`.

    ``n`` defaults to the symbol :math:`n`. Source: the model chapter, section 5, B.2.
    """
    inp = queue_inputs(model)
    n = sp.Symbol("n", nonnegative=True) if n is None else to_sympy(n)
    raw = inp.lam - inp.B / inp.mean_decode
    return sp.Max(to_sympy(initial) + raw * n, 0)


def geometric_one_step_drift(model: ContinuousBatching) -> sp.Expr:
    r"""Exact one-step drift of the number in system with :math:`y \ge B` present.

    With geometric decode lengths every member completes independently with probability
    :math:`q`, so :math:`D \sim \mathrm{Bin}(B, q)` leave and :math:`A` arrive:

    .. math:: E[z^{Y_{n+1}} \mid Y_n = y] = z^{y} A(z)\,(1 - q + q/z)^{B},\qquad
              E[Y_{n+1} - Y_n \mid Y_n = y] = \lambda - Bq .

    Source: the model chapter, section 5, B.2.
    """
    _require(model, geometric=True)
    inp = queue_inputs(model)
    q = geometric_q(model)
    y = sp.Symbol("y", positive=True)
    cond_pgf = Z**y * inp.arrival_pgf * (1 - q + q / Z) ** inp.B
    return sp.simplify(sp.diff(cond_pgf, Z).subs(Z, 1) - y)


# ----------------------------------------------------------------------------------
# B.3 renewal transient of completions
# ----------------------------------------------------------------------------------
def renewal_generating_function(model: ContinuousBatching) -> sp.Expr:
    r""":math:`U(z) = \sum_{n\ge0} u_n z^n = 1/(1 - F(z))`, :math:`F` the decode-length PGF.

    :math:`u_n` is the probability that a batch slot refills (its member completes) at
    iteration :math:`n`; the renewal equation :math:`u_n = [n = 0] + \sum_{k\ge1} f_k u_{n-k}`
    becomes :math:`U = 1 + F U`. Source: Feller vol. 1, XIII.3; the model chapter, B.3.
    """
    inp = queue_inputs(model, arrivals=False)
    return 1 / (1 - inp.decode_pgf)


def decode_pmf(model: ContinuousBatching, n: int) -> list[sp.Expr]:
    r"""Exact :math:`f_0, \dots, f_n` of the decode law :math:`F = \sum_k p_k F_k`.

    Rationals stay rational; symbols stay symbolic. ``Deterministic``, ``FinitePMF``,
    ``Empirical`` and ``Geometric`` are read off directly; other laws by series expansion.
    """
    inp = queue_inputs(model, arrivals=False)
    out = [sp.Integer(0)] * (n + 1)
    for p, law in zip(inp.proportions, inp.decode_laws, strict=True):
        for k, v in _law_terms(law, n).items():
            out[k] += p * v
    return [sp.nsimplify(x) if isinstance(x, sp.Float) else x for x in out]


def _law_terms(law: Law, n: int) -> dict[int, sp.Expr]:
    if isinstance(law, Deterministic):
        if is_symbolic(law.value):
            raise ParameterError(
                f"the decode length {law.value} is symbolic; the sequence u_n needs a number "
                "(the generating function 1/(1 - z**l1) is symbolic)"
            )
        v = int(law.value)
        return {v: sp.Integer(1)} if v <= n else {}
    if isinstance(law, FinitePMF):
        return {v: to_sympy(p) for v, p in law.probabilities if v <= n}
    if isinstance(law, Geometric):
        q = to_sympy(law.q)
        return {k: q * (1 - q) ** (k - 1) for k in range(1, n + 1)}
    series = sp.series(law.pgf(Z), Z, 0, n + 1).removeO()
    return {k: series.coeff(Z, k) for k in range(n + 1)}


def renewal_sequence(model: ContinuousBatching, n: int) -> list[sp.Expr]:
    r"""The renewal sequence :math:`u_0, \dots, u_n` (exact rationals for rational PMFs).

    .. math:: u_0 = 1,\qquad u_m = \sum_{k=1}^{m} f_k\, u_{m-k},

    the coefficients of :math:`1/(1 - F(z))`. From an empty batch with a backlog the
    expected completions at iteration :math:`m \ge 1` are :math:`B u_m`.
    Source: Feller vol. 1, XIII.3; the model chapter, section 5, B.3.
    """
    if not isinstance(n, int) or n < 0:
        raise ParameterError(f"n must be an integer >= 0, got {describe(n)}")
    f = decode_pmf(model, n)
    u = [sp.Integer(1)]
    for m in range(1, n + 1):
        u.append(sp.expand(sp.Add(*[f[k] * u[m - k] for k in range(1, m + 1)])))
    return u


def renewal_period(model: ContinuousBatching) -> sp.Expr:
    r"""The period :math:`d = \gcd\{k : f_k > 0\}` of the decode law (1: aperiodic).

    A symbolic deterministic decode length :math:`l_1` has period :math:`l_1`.
    """
    inp = queue_inputs(model, arrivals=False)
    values: list[Any] = []
    for law in inp.decode_laws:
        if isinstance(law, Geometric):
            values.append(1)
        elif isinstance(law, Deterministic):
            values.append(to_sympy(law.value))
        elif isinstance(law, FinitePMF):
            values.extend(v for v, p in law.probabilities if is_symbolic(p) or p != 0)
        else:  # pragma: no cover - every decode law of the package is one of the above
            raise ParameterError(f"cannot read the support of {law!r}")
    if any(is_symbolic(v) for v in values):
        return values[0] if len(values) == 1 else sp.gcd_list(values)
    return sp.Integer(reduce(math.gcd, (int(v) for v in values)))


@dataclass(frozen=True)
class RenewalLimit:
    r"""Long-run behaviour of :math:`u_n`.

    Attributes
    ----------
    limit : sympy.Expr
        :math:`1/E[l_1]`: the limit of :math:`u_n` when aperiodic, the Cesaro limit always.
    periodic : bool or sympy relation
        :math:`d > 1`.
    period : sympy.Expr
        :math:`d`.
    residue_limits : tuple or None
        :math:`\lim_m u_{md + r} = d [r = 0]/E[l_1]`, :math:`r = 0..d-1` (numeric d only).
    """

    limit: sp.Expr
    periodic: Any
    period: sp.Expr
    residue_limits: tuple | None


def renewal_limit(model: ContinuousBatching) -> RenewalLimit:
    r"""Limit of the renewal sequence (Erdos-Feller-Pollard theorem).

    With :math:`d = \gcd` of the support: if :math:`d = 1`, :math:`u_n \to 1/E[l_1]`;
    otherwise :math:`u_n = 0` unless :math:`d \mid n` and :math:`u_{md} \to d/E[l_1]`, a
    persistent oscillation of the completions :math:`B u_n` around :math:`B/E[l_1]`.
    :math:`1/E[l_1]` is derived as :math:`\lim_{z\to1} (1 - z) U(z)`.

    Source: Feller vol. 1, XIII.3, Theorem 3 and XIII.11; the model chapter, section 5, B.3.
    """
    U = renewal_generating_function(model)
    inp = queue_inputs(model, arrivals=False)
    # (1 - z) U(z) = (1 - z)/(1 - F(z)) -> 1/F'(1) by l'Hopital
    num, den = (1 - Z), (1 - inp.decode_pgf)
    limit = sp.simplify(sp.diff(num, Z).subs(Z, 1) / sp.diff(den, Z).subs(Z, 1))
    assert U is not None
    d = renewal_period(model)
    periodic = _truth(sp.StrictGreaterThan(d, 1))
    residues = None
    if not is_symbolic(d):
        residues = tuple(sp.simplify(d * limit) if r == 0 else sp.Integer(0) for r in range(int(d)))
    return RenewalLimit(limit, periodic, d, residues)


def expected_completions(model: ContinuousBatching, n: int) -> list[sp.Expr]:
    r"""Expected completions :math:`c_m = B u_m` at iterations :math:`m = 0..n` of a saturated
    batch that starts empty (iteration 0 only admits: :math:`c_0 = 0`).

    Source: the model chapter, section 5, B.3.
    """
    inp = queue_inputs(model, arrivals=False)
    u = renewal_sequence(model, n)
    return [sp.Integer(0)] + [inp.B * x for x in u[1:]]


# ----------------------------------------------------------------------------------
# B.4 equilibrium stage distribution and mean KV of a saturated batch
# ----------------------------------------------------------------------------------
def stage_probability(model: ContinuousBatching, j: Any) -> sp.Expr:
    r"""Equilibrium probability that a member of a saturated batch is at stage :math:`j`:

    .. math:: P(\mathrm{stage} = j) = \frac{P(l_1 > j)}{E[l_1]}

    (the stationary age of a discrete renewal process; observed after admission, a new
    member has stage 0). Exact for numeric laws; :math:`1/l_1` on :math:`0..l_1-1` for a
    symbolic deterministic :math:`l_1`. Source: Feller vol. 1, XIII.10; the model chapter, B.4.
    """
    inp = queue_inputs(model, arrivals=False)
    j = to_sympy(j)
    tail = sp.Integer(0)
    for p, law in zip(inp.proportions, inp.decode_laws, strict=True):
        if isinstance(law, Geometric):
            tail += p * (1 - to_sympy(law.q)) ** j
        elif isinstance(law, Deterministic):
            tail += p * sp.Piecewise((1, sp.StrictLessThan(j, to_sympy(law.value))), (0, True))
        else:
            tail += p * sp.Add(*[to_sympy(pr) * sp.Piecewise((1, sp.StrictGreaterThan(v, j)), (0, True))
                                 for v, pr in law.probabilities])
    return sp.simplify(tail / inp.mean_decode)


@dataclass(frozen=True)
class EquilibriumStage:
    r"""Equilibrium of a saturated batch of :math:`B` members.

    Attributes
    ----------
    mean_stage : sympy.Expr
        :math:`E[\mathrm{stage}] = F''(1)/(2F'(1)) = (E[l_1^2] - E[l_1])/(2E[l_1])`.
    mean_kv : sympy.Expr
        :math:`B\,E[C]/E[l_1]` KV tokens held by the full batch.
    per_member_kv : sympy.Expr
        :math:`E[C]/E[l_1]`.
    """

    mean_stage: sp.Expr
    mean_kv: sp.Expr
    per_member_kv: sp.Expr


def equilibrium_stage(model: ContinuousBatching) -> EquilibriumStage:
    r"""Mean stage and mean KV of a saturated batch in equilibrium.

    With :math:`P(\mathrm{stage} = j) = P(l_1 > j)/E[l_1]` and the stage memory
    :math:`w_j = l_0 + 1 + j`,

    .. math:: E[\mathrm{stage}] = \frac{\sum_j j\,P(l_1 > j)}{E[l_1]}
              = \frac{E[l_1(l_1-1)]}{2E[l_1]} = \frac{F''(1)}{2F'(1)},\qquad
              E[\mathrm{KV}] = B \sum_k s_k \big(E[l_{0,k}] + 1 + E[\mathrm{stage}_k]\big)

    with :math:`s_k = p_k E[l_{1,k}]/\sum_i p_i E[l_{1,i}]` the share of batch slots held by
    type :math:`k`; equivalently :math:`B\,E[C]/E[l_1]` (memory Little's law per slot).
    Source: the model chapter, section 5, B.4; Feller vol. 1, XIII.10.
    """
    inp = queue_inputs(model, arrivals=False)
    F = inp.decode_pgf
    mean_stage = sp.simplify(sp.diff(F, Z, 2).subs(Z, 1) / (2 * sp.diff(F, Z).subs(Z, 1)))
    total = inp.mean_decode
    per = sp.Integer(0)
    for p, law, l0 in zip(inp.proportions, inp.decode_laws, inp.prompt_means, strict=True):
        Fk = law.pgf(Z)
        m1 = sp.diff(Fk, Z).subs(Z, 1)
        stage_k = sp.diff(Fk, Z, 2).subs(Z, 1) / (2 * m1)
        per += p * m1 / total * (l0 + 1 + stage_k)
    per = sp.simplify(per)
    return EquilibriumStage(mean_stage, sp.simplify(inp.B * per), per)


# ----------------------------------------------------------------------------------
# B.6 quadratic-Lyapunov bounds
# ----------------------------------------------------------------------------------
_EW, _ES2 = sp.symbols("E_W E_S2", nonnegative=True)


def lyapunov_identity(model: ContinuousBatching) -> sp.Eq:
    r"""The stationary quadratic identity :math:`E[Y_{n+1}^2] = E[Y_n^2]` solved for :math:`E[W]`.

    With :math:`Y' = Y - D + A`, :math:`D \mid Y \sim \mathrm{Bin}(S, q)`, :math:`S = \min(Y, B)`,
    :math:`W = (Y - B)^+`, :math:`YS = S^2 + BW` and :math:`E[S] = \lambda/q` (rate balance):

    .. math:: 2(qB - \lambda)\,E[W] = \sigma^2 + (1-q)\lambda + \frac{2\lambda^2}{q} - \lambda^2
              - q(2 - q)\,E[S^2].

    Source: the model chapter, section 5, B.6 (Kingman-type quadratic drift argument).
    """
    _require(model, geometric=True)
    inp = queue_inputs(model)
    q, lam, B = geometric_q(model), inp.lam, inp.B
    EA2 = inp.arrival_variance + lam**2
    ES = lam / q
    EY = ES + _EW
    EYS = _ES2 + B * _EW
    # E[Y'^2] - E[Y^2] = -2E[YD] + E[D^2] + 2 E[A] E[Y - D] + E[A^2]
    EYD = q * EYS
    ED2 = q * (1 - q) * ES + q**2 * _ES2
    drift2 = -2 * EYD + ED2 + 2 * lam * (EY - q * ES) + EA2
    sol = sp.solve(sp.Eq(drift2, 0), _EW)[0]
    return sp.Eq(_EW, sp.simplify(sol))


@dataclass(frozen=True)
class LyapunovBounds:
    r"""Bounds on the stationary mean number in system after admission, :math:`E[Y]`.

    Attributes
    ----------
    lower, upper : sympy.Expr
        :math:`E[Y]` bounds (``oo`` when unstable).
    queue_lower, queue_upper : sympy.Expr
        The same for :math:`E[W]`, the mean number waiting (Bailey's :math:`X` for :math:`q = 1`).
    stable : bool or relation
    reason : str
    """

    lower: sp.Expr
    upper: sp.Expr
    queue_lower: sp.Expr
    queue_upper: sp.Expr
    stable: Any
    reason: str = ""


def lyapunov_bounds(model: ContinuousBatching) -> LyapunovBounds:
    r"""Quadratic-Lyapunov bounds on the stationary mean number in system.

    From :func:`lyapunov_identity`, :math:`0 \le S \le B` and :math:`E[S] = \lambda/q` give
    :math:`(\lambda/q)^2 \le E[S^2] \le B\lambda/q`, hence

    .. math:: \frac{\sigma^2 + (1-q)\lambda + 2\lambda^2/q - \lambda^2 - (2-q)B\lambda}
                   {2(qB - \lambda)} \le E[W] \le \frac{\sigma^2 + (1-q)\lambda}{2(qB-\lambda)},

    and :math:`E[Y] = \lambda/q + E[W]`. For :math:`q = 1` (Bailey's queue) these are
    :math:`\sigma^2/(2(B-\lambda)) - \lambda/2 \le E[X] \le \sigma^2/(2(B-\lambda))` and
    :math:`\sigma^2/(2(B-\lambda)) + \lambda/2 \le E[Y] \le \sigma^2/(2(B-\lambda)) + \lambda`.
    An unstable model gets ``oo`` with the reason.

    Source: the model chapter, section 5, B.6 (the geometric analogue derived here).
    """
    _require(model, geometric=True)
    inp = queue_inputs(model)
    q, lam, B = geometric_q(model), inp.lam, inp.B
    st = stability(model)
    if st.stable is False:
        reason = f"unstable: lambda E[l1] = {st.load * B} >= B = {B}; no stationary mean"
        return LyapunovBounds(sp.oo, sp.oo, sp.oo, sp.oo, False, reason)
    ew = lyapunov_identity(model).rhs
    w_up = sp.simplify(ew.subs(_ES2, (lam / q) ** 2))
    w_lo = sp.simplify(ew.subs(_ES2, B * lam / q))
    return LyapunovBounds(
        sp.simplify(lam / q + w_lo), sp.simplify(lam / q + w_up), w_lo, w_up, st.stable,
        "" if st.stable is True else "valid when lambda E[l1] < B",
    )
