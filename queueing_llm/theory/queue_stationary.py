r"""Stationary distribution of the batch-capped queue with geometric decode lengths (Geo^X/Geo/B).

Every member of the batch completes independently with probability :math:`q` per iteration.
With :math:`Y_n` the number in system after admission (the model chapter, section 2: execute,
arrive, admit), :math:`S = \min(Y, B)` in the batch and :math:`D \mid Y \sim \mathrm{Bin}(S, q)`,

.. math:: Y_{n+1} = Y_n - D_n + A_n .

**Functional equation.** With :math:`r(z) = q + (1-q) z` and :math:`p_n = P(Y = n)`,
:math:`E[z^{Y - D} \mid Y = n] = r(z)^n` for :math:`n < B` and :math:`z^{n-B} r(z)^B` otherwise, so

.. math:: P(z)\,K(z) = A(z) \sum_{n=0}^{B-1} p_n \big(z^B r(z)^n - r(z)^B z^n\big),\qquad
          K(z) = z^B - A(z)\, r(z)^B .

**Kernel roots.** For :math:`\lambda < Bq` the kernel has :math:`B` zeros in the closed unit
disk (Rouche): :math:`z_0 = 1` and :math:`z_1..z_{B-1}`, :math:`|z_k| < 1`. They are found by
numerical continuation from the arrival-free kernel (roots
:math:`z = \omega q/(1 - \omega(1-q))`, :math:`\omega^B = 1`), thinning the arrivals
:math:`A_t(z) = A(1 - t + tz)` from :math:`t = 0` to 1 and correcting each step by Newton's
method on the well-scaled branch equation :math:`B \log(z/r(z)) - \log A_t(z) \equiv 0
\pmod{2\pi i}`.

**Boundary probabilities.** Solving the :math:`B` linear equations "numerator = 0 at the
roots" directly is hopeless in floating point (condition numbers beyond :math:`10^{100}`
for :math:`B = 64`). Instead: above :math:`B` the chain is a random walk under which
:math:`z_k^{Y_n}` is a martingale, so by optional stopping the law of the first state below
:math:`B` reached from :math:`m \ge B` has generating polynomial :math:`x^m \bmod \Pi(x)`,
:math:`\Pi(x) = \prod_{k=0}^{B-1}(x - z_k) = x^B - \sum_{j<B} g_j x^j` with :math:`g_j \ge 0`
(the ladder law from :math:`B`). The :math:`g_j` come from :math:`\Pi` on the unit circle by
FFT (:math:`|\Pi| \le 2` there, so the error is absolute :math:`O(B\varepsilon)`); the chain
censored on :math:`\{0..B-1\}` then has rows :math:`A(x)r(x)^i \bmod \Pi(x)`, built with
non-negative arithmetic only, and its stationary vector (GTH elimination) is
:math:`p_0..p_{B-1}` up to the normalisation :math:`q\sum_n p_n (B - n) = Bq - \lambda`.

**Mean.** Differentiating the functional equation twice at :math:`z = 1`,

.. math:: E[Y] = \lambda + \frac{q(2-q)\sum_{n<B} p_n\,(B(B-1) - n(n-1)) - K''(1)}{2K'(1)},\qquad
          K'(1) = Bq - \lambda .

Closed forms: :math:`B = 1` (Geo^X/Geo/1) and :math:`q = 1` (Bailey's bulk-service queue,
:math:`P(z) = (B-\lambda)(z-1)A(z)\prod_k \frac{z - z_k}{1 - z_k} / (z^B - A(z))`).

Sources: N. T. J. Bailey (1954), J. R. Statist. Soc. B 16, 80-87; H. Bruneel and B. G. Kim
(1993), *Discrete-Time Models for Communication Systems Including ATM*, ch. 4; P. Gao,
S. Wittevrongel, H. Bruneel (2004), "Discrete-time multiserver queues with geometric service
times", Comput. Oper. Res. 31; H. R. Gail, S. L. Hantler, B. A. Taylor (1996), "Spectral
analysis of M/G/1 and G/M/1 type Markov chains", Adv. Appl. Prob. 28 (roots and first
passages); W. K. Grassmann, M. I. Taksar, D. P. Heyman (1985), Oper. Res. 33 (GTH).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp

from ..errors import ModelError, ParameterError
from ..model import ContinuousBatching
from ..numbers import is_symbolic, to_float
from . import queue_chain
from .queue import Z, geometric_q, queue_inputs, queue_reason, stability

__all__ = [
    "KernelRootError",
    "kernel",
    "functional_equation",
    "mean_formula",
    "kernel_roots",
    "ladder_probabilities",
    "boundary_probabilities",
    "StationaryResult",
    "stationary",
    "stationary_b1",
    "bailey",
    "gth",
    "arrival_pmf",
    "resolve_p_empty",
]

P_ = sp.Function("P")
p_ = sp.IndexedBase("p")
zk_ = sp.IndexedBase("z")
_n, _k = sp.symbols("n k", integer=True, nonnegative=True)


class KernelRootError(ModelError, ArithmeticError):
    """The kernel roots could not be found or failed validation (the message says which check).

    A package error (a :class:`~queueing_llm.errors.ModelError`) and, for callers that
    catch it as such, an :class:`ArithmeticError`. :func:`stationary` never lets it escape:
    it falls back to the truncated chain (:mod:`~queueing_llm.theory.queue_chain`).
    """


PGF_ABSOLUTE_ERROR = 1e-15
"""Absolute accuracy of the boundary probabilities on the PGF route (measured against the
GTH-solved chain: agreement within 1e-15 on B up to 64, loads to 0.98). A probability below
:data:`P_EMPTY_RESOLVE` is recomputed on the chain route, whose GTH solve is accurate
relative to the value itself."""

P_EMPTY_RESOLVE = 1e-9
"""Below this P(empty) from the PGF route is replaced by the chain route's value."""

RESOLVE_WORK = 10**9
"""Planned-work limit (:func:`~queueing_llm.theory.queue_chain.planned_work`, multiply-adds) of the
chain solve that resolves a small P(empty), for the numba-compiled GTH elimination (about 3-4e9
multiply-adds a second, vectorised: at most about 0.3 s; B = 256, Geometric(0.01), load 0.999
plans 2.7e8 and solves in 0.07-0.1 s); the solve itself may double its truncation up to 4 times
this."""

RESOLVE_WORK_NUMPY = 10**8
"""The same limit when numba cannot be imported and the NumPy elimination runs (about 1e8
multiply-adds a second: 1 s)."""

RESOLVE_TAIL = 1e-10
"""Truncation tolerance of that solve. P(empty) of the chain truncated where the top 20 %
carry less than ``tail`` is within a relative ``error_bound`` (about ``tail``) of the
untruncated value (measured: 1e-8 and 1e-14 agree to 1e-13 relative at B = 256, load 0.996;
at load 0.999 the bound is 1e-13, and 1e-10 costs 15 % more states than 1e-8)."""


def _resolve_work() -> int:
    """The planned-work budget of the resolving solve: :data:`RESOLVE_WORK` with the compiled
    elimination, at most :data:`RESOLVE_WORK_NUMPY` without."""
    return RESOLVE_WORK if queue_chain.gth_compiled() else min(RESOLVE_WORK, RESOLVE_WORK_NUMPY)


def resolve_p_empty(B: int, q: float, arrivals: np.ndarray, pgf_value: float) -> tuple[float, float, str]:
    r"""P(empty) below the PGF route's absolute accuracy, never rounding noise.

    Returns ``(value, error, how)``: ``|P(empty) - value| <= error``.

    1. **Exact route** when the truncated chain fits :data:`RESOLVE_WORK` (:data:`RESOLVE_WORK_NUMPY`
       without numba; :func:`~queueing_llm.theory.queue_chain.planned_work`): its GTH solve, accurate relative
       to the value itself; error ``value * (1e-12 + error_bound)``.
    2. **Upper bound** otherwise: the chain is stochastically monotone, so thinning the arrivals
       (each kept with probability :math:`	heta`, :func:`~queueing_llm.theory.queue_chain.thinned`)
       can only raise P(empty). With :math:`	heta^*` the largest thinning whose chain fits the
       budget (bisection on the thinned rate, 40 steps over a grid independent of the model's own
       rate, so every model past the budget uses the same bounding law), the GTH value
       :math:`U` there bounds P(empty) from above; returned as ``value = U``, ``error = U``
       (the true value lies in :math:`[0, U]`). A model just inside the budget has a rate at
       most :math:`	heta^*\lambda`, hence a P(empty) of at least :math:`U`: the values stay
       monotone in the load across the switch.
    3. If even that fails: :math:`[0, \max(p_{pgf}, \epsilon) + \epsilon]`, :math:`\epsilon` =
       :data:`PGF_ABSOLUTE_ERROR`, again as an upper bound.
    """
    a = np.asarray(arrivals, dtype=float)
    budget = _resolve_work()
    try:
        fits = queue_chain.planned_work(B, q, a, RESOLVE_TAIL) <= budget
    except ModelError:
        fits = False
    if fits:
        try:
            chain = queue_chain.truncated_chain(B, q, a, tail=RESOLVE_TAIL, max_work=4 * budget)
        except ModelError:
            pass
        else:
            value = float(chain.pi[0])
            return value, value * (1e-12 + chain.error_bound), (
                f"P(empty) = {value:.6g} from the truncated chain ({chain.size} states, GTH; relative error "
                f"<= {1e-12 + chain.error_bound:.2g}), below the PGF route's absolute accuracy {PGF_ABSOLUTE_ERROR:g}")
    rate = float(np.arange(a.size) @ a)
    if rate > 0:
        def ok(r: float) -> bool:
            try:
                return queue_chain.planned_work(B, q, queue_chain.thinned(a, r / rate), RESOLVE_TAIL) <= budget
            except ModelError:
                return False

        lo, hi = 0.0, float(B * q)  # a grid that does not depend on the model's rate
        for _ in range(40):
            mid = 0.5 * (lo + hi)
            if mid < rate and ok(mid):
                lo = mid
            else:
                hi = mid
        if lo > 0:
            try:
                chain = queue_chain.truncated_chain(B, q, queue_chain.thinned(a, lo / rate), tail=RESOLVE_TAIL,
                                                    max_work=4 * budget)
            except ModelError:
                pass
            else:
                bound = float(chain.pi[0]) * (1 + 1e-12 + chain.error_bound)
                return bound, bound, (
                    f"P(empty) <= {bound:.6g}: the chain at this load exceeds the solve budget "
                    f"({budget:.3g} operations), so the value is an upper bound (error = value: the "
                    f"true P(empty) lies in [0, {bound:.3g}]), the GTH value of the chain with the arrivals "
                    f"thinned to rate {lo:.6g} (P(empty) decreases with the arrival rate)")
    bound = max(pgf_value, PGF_ABSOLUTE_ERROR) + PGF_ABSOLUTE_ERROR
    return bound, bound, (f"P(empty) <= {bound:.3g}: below the PGF route's absolute accuracy "
                          f"{PGF_ABSOLUTE_ERROR:g} and no chain solve fits the budget; an upper bound (error = value)")


# ----------------------------------------------------------------------------------
# symbolic face
# ----------------------------------------------------------------------------------
def _qab(model: ContinuousBatching) -> tuple[sp.Expr, sp.Expr, sp.Expr, sp.Expr]:
    reason = queue_reason(model, geometric=True)
    if reason is not None:
        raise ModelError(reason)
    inp = queue_inputs(model)
    return geometric_q(model), inp.arrival_pgf, inp.lam, inp.B


def kernel(model: ContinuousBatching) -> sp.Expr:
    r"""The kernel :math:`K(z) = z^B - A(z)\,r(z)^B`, :math:`r(z) = q + (1-q)z`.

    Derived from the binomial completions: :math:`E[z^{-D}] = (1 - q + q/z)^B` for a full
    batch, and :math:`z^B (1 - q + q/z)^B = r(z)^B`. Source: Bruneel and Kim (1993), ch. 4.
    """
    q, A, _, B = _qab(model)
    # z^B E[z^{-D}] for a full batch: z^B (1 - q + q/z)^B = (q + (1-q) z)^B
    full = sp.powsimp(sp.expand_power_base(Z**B * (1 - q + q / Z) ** B, force=True), force=True)
    r = q + (1 - q) * Z
    assert sp.simplify(sp.powsimp(full / r**B, force=True)) == 1
    return Z**B - A * r**B


def functional_equation(model: ContinuousBatching) -> sp.Eq:
    r""":math:`P(z) K(z) = A(z) \sum_{n<B} p_n (z^B r(z)^n - r(z)^B z^n)` (see the module notes).

    :math:`P` is the PGF of the number in system after admission; :math:`p_n` its unknown
    boundary probabilities. Source: Bruneel and Kim (1993), ch. 4; the model chapter, section 5, B.5.
    """
    q, A, _, B = _qab(model)
    r = q + (1 - q) * Z
    rhs = A * sp.Sum(p_[_n] * (Z**B * r**_n - r**B * Z**_n), (_n, 0, B - 1))
    return sp.Eq(P_(Z) * kernel(model), rhs)


def mean_formula(model: ContinuousBatching) -> sp.Expr:
    r"""The stationary mean number in system in terms of the boundary probabilities :math:`p_n`:

    .. math:: E[Y] = \lambda + \frac{q(2-q)\sum_{n<B} p_n (B(B-1) - n(n-1)) - K''(1)}{2 (Bq - \lambda)} .

    Derived by differentiating :math:`P K = A Q` twice at :math:`z = 1` (with
    :math:`K(1) = Q(1) = 0`, :math:`Q'(1) = K'(1)`).
    """
    q, A, lam, B = _qab(model)
    K = kernel(model)
    K1 = sp.simplify(sp.diff(K, Z).subs(Z, 1))
    K2 = sp.simplify(sp.diff(K, Z, 2).subs(Z, 1))
    Q2 = q * (2 - q) * sp.Sum(p_[_n] * (B * (B - 1) - _n * (_n - 1)), (_n, 0, B - 1))
    return lam + (Q2 - K2) / (2 * K1)


def _k_derivatives(model: ContinuousBatching) -> tuple[sp.Expr, sp.Expr]:
    K = kernel(model)
    return sp.simplify(sp.diff(K, Z).subs(Z, 1)), sp.simplify(sp.diff(K, Z, 2).subs(Z, 1))


def stationary_b1(model: ContinuousBatching) -> dict[str, sp.Expr]:
    r"""Closed form for :math:`B = 1` (Geo^X/Geo/1), symbolic parameters allowed.

    No kernel root is needed: :math:`p_0 = 1 - \lambda/q` and

    .. math:: P(z) = \frac{(q - \lambda)(z - 1) A(z)}{z - A(z)(q + (1-q)z)},\qquad
              E[Y] = \lambda + \frac{A''(1) + 2\lambda(1-q)}{2(q - \lambda)} .

    Returns a dict with ``pgf``, ``mean_in_system``, ``p_empty``, ``mean_batch``,
    ``mean_sojourn``. Source: Bruneel and Kim (1993), ch. 4 (single server).
    """
    q, A, lam, B = _qab(model)
    if B != 1:
        raise ParameterError(f"stationary_b1 needs batch_cap = 1, got {B}")
    p0 = 1 - lam / q
    r = q + (1 - q) * Z
    pgf = sp.simplify(A * p0 * (Z * r**0 - r * Z**0) / (Z - A * r))
    mean = sp.simplify(mean_formula(model).subs(p_[0], p0).doit())
    return {
        "pgf": pgf,
        "mean_in_system": mean,
        "p_empty": sp.simplify(p0),
        "mean_batch": sp.simplify(lam / q),
        "mean_sojourn": sp.simplify(mean / lam),
    }


# ----------------------------------------------------------------------------------
# numeric face: arrivals, roots, ladder law, boundary probabilities
# ----------------------------------------------------------------------------------
def _numeric(model: ContinuousBatching) -> tuple[float, float, int]:
    q, _, lam, B = _qab(model)
    if is_symbolic(q) or is_symbolic(lam) or is_symbolic(B) or model.is_symbolic:
        raise ParameterError("the kernel roots need numeric parameters; the model has symbols")
    return to_float(q, "q"), to_float(lam, "lambda"), int(B)


def _log_pgf(model: ContinuousBatching) -> tuple[Any, Any]:
    """Vectorised complex functions log A(u) and A'(u)/A(u)."""
    inp = queue_inputs(model)
    logA = sp.expand_log(sp.log(inp.arrival_pgf), force=True)
    dlogA = sp.simplify(sp.diff(logA, Z))
    f = sp.lambdify(Z, logA, "numpy")
    g = sp.lambdify(Z, dlogA, "numpy")

    def log_a(u: np.ndarray) -> np.ndarray:
        return np.asarray(f(u), dtype=complex) + np.zeros_like(u)

    def dlog_a(u: np.ndarray) -> np.ndarray:
        return np.asarray(g(u), dtype=complex) + np.zeros_like(u)

    return log_a, dlog_a


def _pgf_functions(model: ContinuousBatching) -> tuple[Any, Any]:
    """Vectorised complex functions A(u) and A'(u)."""
    inp = queue_inputs(model)
    f = sp.lambdify(Z, inp.arrival_pgf, "numpy")
    g = sp.lambdify(Z, sp.diff(inp.arrival_pgf, Z), "numpy")
    return (lambda u: np.asarray(f(u), dtype=complex) + np.zeros_like(u),
            lambda u: np.asarray(g(u), dtype=complex) + np.zeros_like(u))


def arrival_pmf(model: ContinuousBatching, tail: float = 1e-17) -> np.ndarray:
    """Probabilities of 0, 1, ... arrivals per iteration (all types), cut where the tail < ``tail``."""
    inp = queue_inputs(model)
    out = np.array([1.0])
    for law in inp.arrival_laws:
        if math.isfinite(law.support_max) and law.support_max < 4096:
            pmf = np.asarray(law.pmf_array(int(law.support_max) + 1), dtype=float)
        else:
            mean, var = law.mean_value(), law.variance_value()
            n = int(mean + 12 * math.sqrt(var + 1) + 40)
            while True:  # unimodal laws: stop once the last values past the mean are negligible
                pmf = np.asarray(law.pmf_array(n), dtype=float)
                if pmf[-10:].max() < tail * 1e-3 and n > mean:
                    break
                n *= 2
            pmf = pmf[: int(np.nonzero(pmf >= tail * 1e-3)[0].max()) + 1]
        out = np.convolve(out, pmf)
    return out


def _separation(z: np.ndarray) -> np.ndarray:
    zz = np.concatenate([z, [1.0 + 0j]])
    d = np.abs(zz[:, None] - zz[None, :])
    np.fill_diagonal(d, np.inf)
    return d.min(axis=1)[:-1]


def kernel_roots(model: ContinuousBatching, tol: float = 1e-12) -> np.ndarray:
    r"""The :math:`B - 1` roots of :math:`z^B = A(z) r(z)^B` inside the unit disk, other than 1.

    Numerical continuation in the thinning parameter :math:`t` of :math:`A_t(z) = A(1-t+tz)`
    from the arrival-free roots :math:`z = \omega_k q/(1 - \omega_k(1-q))`,
    :math:`\omega_k = e^{2\pi i k/B}`, with an Euler predictor, Newton corrector on
    :math:`h_t(z) = B\log(z/r(z)) - \log A_t(z)` (reduced mod :math:`2\pi i`; near a zero of
    :math:`A_t`, where the logarithm is singular, on :math:`(z/r)^B - A_t(z)` instead) and step
    halving whenever a corrector fails or two paths come close. Needs :math:`P(A = 0) > 0` and
    :math:`\lambda < Bq`. The result is validated: :math:`B-1` distinct roots, all with
    :math:`|z| < 1`, next Newton step below ``tol``; otherwise :class:`KernelRootError`.

    Source: the continuation approach of E. L. Allgower and K. Georg, *Numerical
    Continuation Methods* (1990), applied to the kernel of Bruneel and Kim (1993).
    """
    q, lam, B = _numeric(model)
    st = stability(model)
    if st.stable is not True:
        raise ModelError(f"the kernel roots need a stable model (lambda < B q), got lambda = {lam:g}, "
                         f"B q = {B * q:g}")
    if B == 1:
        return np.zeros(0, dtype=complex)
    pmf = arrival_pmf(model)
    if not pmf[0] > 0:
        raise ParameterError(
            "the kernel roots need P(no arrival in an iteration) > 0 (the arrival law has P(A = 0) = 0, "
            "so z = 0 is a multiple kernel root); use arrivals with mass at 0"
        )
    log_a, dlog_a = _log_pgf(model)
    a_fn, da_fn = _pgf_functions(model)

    def h(z: np.ndarray, t: float) -> np.ndarray:
        v = B * np.log(z / (q + (1 - q) * z)) - log_a(1 - t + t * z)
        return v - 2j * np.pi * np.round(v.imag / (2 * np.pi))

    def hz(z: np.ndarray, t: float) -> np.ndarray:
        return B / z - B * (1 - q) / (q + (1 - q) * z) - t * dlog_a(1 - t + t * z)

    def near_zero_of_a(z: np.ndarray, t: float) -> np.ndarray:
        # log A_t is singular at the zeros of A_t (Bernoulli p > 1/2, Binomial, ...): there the
        # power form (z/r)^B - A_t(z), with the same roots, is used instead
        return np.abs(t * dlog_a(1 - t + t * z)) > 4 * B * np.maximum(1.0, 1.0 / np.abs(z))

    def newton(z: np.ndarray, t: float) -> np.ndarray:
        u = 1 - t + t * z
        r = q + (1 - q) * z
        power = near_zero_of_a(z, t)
        out = h(z, t) / hz(z, t)
        if power.any():
            w_ = (z / r) ** B
            H = w_ - a_fn(u)
            Hz = B * w_ / z * q / r - t * da_fn(u)
            out = np.where(power, H / Hz, out)
        return out

    def tangent(z: np.ndarray, t: float) -> np.ndarray:
        u = 1 - t + t * z
        out = (z - 1) * dlog_a(u) / hz(z, t)
        power = near_zero_of_a(z, t)
        if power.any():
            r = q + (1 - q) * z
            w_ = (z / r) ** B
            Hz = B * w_ / z * q / r - t * da_fn(u)
            out = np.where(power, (z - 1) * da_fn(u) / Hz, out)
        return out

    w = np.exp(2j * np.pi * np.arange(1, B) / B)
    start = w * q / (1 - w * (1 - q))
    failures = []
    # a real thinning path can meet a double root where two conjugate paths collide (it happens
    # for polynomial A); a complex detour t(s) = s + i g s (1 - s) avoids such collisions
    for g in (0.0, 0.3, -0.3, 0.7):
        try:
            with np.errstate(all="ignore"):  # a path through a singularity fails validation, not with warnings
                z = _track(start, g, newton, tangent)
                for _ in range(4):
                    z = z - newton(z, 1.0)
            _validate_roots(z, newton, B, tol)
            return z
        except KernelRootError as exc:
            failures.append(f"path g = {g}: {exc}")
    raise KernelRootError("kernel roots not found; " + "; ".join(failures))


def _track(z: np.ndarray, g: float, newton: Any, tangent: Any, max_steps: int = 2500) -> np.ndarray:
    """Follow the roots from s = 0 to 1 along t(s) = s + i g s (1 - s) (predictor-corrector)."""
    s, step, count = 0.0, 0.05, 0
    while s < 1.0:
        count += 1
        if count > max_steps:
            raise KernelRootError(f"continuation of the kernel roots did not finish in {max_steps} steps")
        step = min(step, 1.0 - s)
        t = s + 1j * g * s * (1 - s)
        sn = s + step
        tn = sn + 1j * g * sn * (1 - sn) if sn < 1.0 else 1.0
        pred = z + (tn - t) * tangent(z, t)
        zn, ok = pred.copy(), False
        with np.errstate(all="ignore"):
            for _ in range(8):
                delta = newton(zn, tn)
                zn = zn - delta
                if np.all(np.abs(delta) <= 1e-12 * np.maximum(np.abs(zn), 1e-300)):
                    ok = True
                    break
        sep = _separation(z)
        if ok and np.all(np.isfinite(zn)) and np.all(np.abs(zn - pred) < 0.25 * sep) \
                and np.all(np.abs(zn - z) < 0.5 * sep):
            z, s = zn, sn
            step = min(2 * step, 0.25)
        else:
            step /= 2
            if step < 1e-10:
                raise KernelRootError(f"continuation of the kernel roots stalled at s = {s:.6g}")
    return z


def _validate_roots(z: np.ndarray, newton: Any, B: int, tol: float) -> None:
    """B - 1 finite, distinct roots strictly inside the disk whose next Newton step (the forward
    error) is below ``tol`` (relative to max(|z|, 1e-3))."""
    if z.size != B - 1:
        raise KernelRootError(f"expected {B - 1} kernel roots inside the unit disk, found {z.size}")
    if not np.all(np.isfinite(z)):
        raise KernelRootError("a kernel root is not finite")
    if np.any(np.abs(z) >= 1 - 1e-13):
        raise KernelRootError(f"a kernel root lies on or outside the unit circle (max |z| = {np.abs(z).max():.15g})")
    with np.errstate(all="ignore"):
        step = np.abs(newton(z, 1.0)) / np.maximum(np.abs(z), 1e-3)
    if not step.max() <= tol:
        raise KernelRootError(f"kernel-root Newton step {step.max():.3g} exceeds {tol:g}")
    if _separation(z).min() < 1e-10:
        raise KernelRootError("two kernel roots coincide (separation < 1e-10)")


def ladder_probabilities(roots: np.ndarray) -> np.ndarray:
    r"""Coefficients :math:`g_0..g_{B-1}` of :math:`\Pi(x) = (x-1)\prod_k (x - z_k) = x^B - \sum_j g_j x^j`.

    :math:`g_j` is the probability that the chain started at :math:`B` first enters
    :math:`\{0..B-1\}` at :math:`j` (optional stopping of the martingales :math:`z_k^{Y_n}`).
    Computed by FFT of :math:`\Pi` at :math:`N \ge B+1` roots of unity, where :math:`|\Pi| \le 2`.
    Source: Gail, Hantler and Taylor (1996), section 3.
    """
    B = roots.size + 1
    N = 1 << int(math.ceil(math.log2(2 * B + 2)))
    x = np.exp(2j * np.pi * np.arange(N) / N)
    allz = np.concatenate([[1.0 + 0j], roots])
    values = np.prod(x[:, None] - allz[None, :], axis=1)
    coef = np.fft.fft(values) / N
    # fft gives sum_m values_m x_m^{-j} / N = coefficient of x^j
    if abs(coef[B] - 1) > 1e-8 or np.abs(coef[B + 1:]).max(initial=0) > 1e-8:
        raise KernelRootError("the root polynomial is not monic of degree B (roots inconsistent)")
    g = -coef[:B].real
    if g.min() < -1e-9 or abs(g.sum() - 1) > 1e-8:
        raise KernelRootError(f"ladder probabilities invalid (min {g.min():.3g}, sum {g.sum():.15g})")
    g = np.clip(g, 0.0, None)
    return g / g.sum()


def gth(P: np.ndarray) -> np.ndarray:
    r"""Stationary vector of an irreducible stochastic matrix by GTH elimination (no subtractions).

    Source: W. K. Grassmann, M. I. Taksar and D. P. Heyman (1985), Oper. Res. 33, 1107-1116.
    """
    P = np.array(P, dtype=float, copy=True)
    n = P.shape[0]
    for k in range(n - 1, 0, -1):
        s = P[k, :k].sum()
        if not s > 0:
            raise ModelError(f"GTH: state {k} cannot reach the lower states (reducible chain)")
        P[:k, k] /= s
        P[:k, :k] += np.outer(P[:k, k], P[k, :k])
    pi = np.zeros(n)
    pi[0] = 1.0
    for k in range(1, n):
        pi[k] = pi[:k] @ P[:k, k]
    return pi / pi.sum()


def boundary_probabilities(model: ContinuousBatching, roots: np.ndarray | None = None) -> np.ndarray:
    r"""Stationary :math:`p_0..p_{B-1}` (number in system after admission) from the kernel roots.

    The censored chain on :math:`\{0..B-1\}` has row :math:`i` equal to the coefficients of
    :math:`A(x) r(x)^i \bmod \Pi(x)`, reduced with :math:`x^B \equiv \sum_j g_j x^j`
    (:func:`ladder_probabilities`); its GTH stationary vector is scaled by
    :math:`q \sum_n p_n (B - n) = Bq - \lambda` (:math:`Q'(1) = K'(1)`).
    """
    q, lam, B = _numeric(model)
    z = kernel_roots(model) if roots is None else roots
    g = ladder_probabilities(z)
    a = arrival_pmf(model)
    mmax = B - 1 + a.size
    rem = np.zeros((max(mmax, B), B))
    rem[:B, :B] = np.eye(B)
    for m in range(B, mmax):
        prev = rem[m - 1]
        rem[m, 1:] = prev[:-1]
        rem[m, 0] = 0.0
        rem[m] += prev[-1] * g
    from scipy.stats import binom

    C = np.zeros((B, mmax))
    for i in range(B):
        ri = binom.pmf(np.arange(i + 1), i, 1 - q) if q < 1 else np.eye(1, i + 1, 0)[0]
        c = np.convolve(ri, a)[:mmax]
        C[i, : c.size] = c
    T = C @ rem[:mmax]
    T /= T.sum(axis=1, keepdims=True)
    pi = gth(T)
    n = np.arange(B)
    return pi * (B - lam / q) / float(pi @ (B - n))


@dataclass(frozen=True)
class StationaryResult:
    r"""Stationary quantities of the number in system after admission.

    Attributes
    ----------
    mean_in_system : float or sympy.Expr
        :math:`E[Y]` (``inf`` when unstable).
    p_empty : float or sympy.Expr
        :math:`P(Y = 0)`.
    mean_batch : float or sympy.Expr
        :math:`E[\min(Y, B)] = \lambda/q` (rate balance; ``B`` when unstable).
    mean_sojourn : float or sympy.Expr
        :math:`E[Y]/\lambda` iterations (Little's law).
    stable : bool or relation
    reason : str
        Why the quantities are infinite (unstable), or how they were obtained.
    boundary : numpy.ndarray or None
        :math:`p_0..p_{B-1}`.
    roots : numpy.ndarray or None
        The kernel roots :math:`z_1..z_{B-1}` (None on the chain route).
    route : str
        ``"pgf"`` (kernel roots), ``"chain"`` (truncated chain, GTH), ``"closed form"``,
        ``"symbolic"`` or ``"unstable"``.
    p_empty_error : float
        Bound on the absolute error of a numeric ``p_empty`` (0 when exact or symbolic).
    """

    mean_in_system: Any
    p_empty: Any
    mean_batch: Any
    mean_sojourn: Any
    stable: Any
    reason: str
    boundary: np.ndarray | None = field(default=None, repr=False)
    roots: np.ndarray | None = field(default=None, repr=False)
    route: str = "pgf"
    p_empty_error: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "mean_in_system": self.mean_in_system,
            "p_empty": self.p_empty,
            "mean_batch": self.mean_batch,
            "mean_sojourn": self.mean_sojourn,
            "stable": self.stable,
            "reason": self.reason,
            "p_empty_error": self.p_empty_error,
        }


def _unstable(model: ContinuousBatching, lam: Any, B: Any, q: Any) -> StationaryResult:
    reason = (f"unstable: lambda = {lam} >= B q = {sp.simplify(B * q)} (lambda E[l1] >= B); the number "
              "in system grows without bound, so there is no stationary distribution")
    return StationaryResult(sp.oo, sp.Integer(0), B, sp.oo, False, reason, route="unstable")


def stationary(model: ContinuousBatching) -> StationaryResult:
    r"""Stationary mean number in system, :math:`P(\mathrm{empty})`, mean batch and mean sojourn.

    Numeric models: kernel roots, ladder law, censored chain (module notes), then
    :func:`mean_formula`; :math:`E[\min(Y,B)] = \lambda/q` and
    :math:`E[\mathrm{sojourn}] = E[Y]/\lambda` (Little's law; the sojourn counts the
    observations of a request after admission, arrival iteration to completion iteration).
    Symbolic models: the closed form for :math:`B = 1`, else :func:`mean_formula` with the
    unknown boundary probabilities. Unstable models (:math:`\lambda \ge Bq`): infinite mean
    and sojourn, :math:`P(\mathrm{empty}) = 0`, batch :math:`B`, with the reason.

    Source: Bruneel and Kim (1993), ch. 4; the model chapter, section 5, B.5.
    """
    q, A, lam, B = _qab(model)
    st = stability(model)
    if st.stable is False:
        return _unstable(model, lam, B, q)
    symbolic = model.is_symbolic or st.stable is not True
    if symbolic:
        if B == 1:
            d = stationary_b1(model)
            return StationaryResult(d["mean_in_system"], d["p_empty"], d["mean_batch"], d["mean_sojourn"],
                                    st.stable, "closed form B = 1, valid when lambda < q", route="closed form")
        mean = mean_formula(model)
        return StationaryResult(mean, p_[0], sp.simplify(lam / q), mean / lam, st.stable,
                                "symbolic: in terms of the boundary probabilities p_n (need numbers for roots)",
                                route="symbolic")
    qf, lf, Bi = to_float(q), to_float(lam), int(B)
    if lf == 0:
        # the sojourn of a (rare) arrival into an empty system is its decode length: the limit 1/q
        return StationaryResult(0.0, 1.0, 0.0, 1.0 / qf, True, "no arrivals: the system stays empty (the "
                                "sojourn is the limit 1/q of a lone arrival)", route="closed form")
    if Bi > 1 and not arrival_pmf(model)[0] > 0:
        return _chain_route(model, "the PGF route needs P(no arrival) > 0")
    try:
        with np.errstate(all="ignore"):  # failed paths are detected by the validation, not by warnings
            roots = kernel_roots(model)
            p = boundary_probabilities(model, roots)
    except ArithmeticError as exc:  # KernelRootError and floating-point failures: the chain route
        return _chain_route(model, f"the kernel roots failed: {str(exc).split(';')[0]}")
    K1, K2 = (to_float(x) for x in _k_derivatives(model))
    n = np.arange(Bi)
    q2 = qf * (2 - qf) * float(p @ (Bi * (Bi - 1) - n * (n - 1)))
    mean = lf + (q2 - K2) / (2 * K1)
    reason = f"PGF route: {Bi - 1} kernel roots inside the unit disk, censored chain on 0..{Bi - 1}"
    p_empty, p_error = float(p[0]), PGF_ABSOLUTE_ERROR
    if p_empty < P_EMPTY_RESOLVE:
        p_empty, p_error, how = resolve_p_empty(Bi, qf, arrival_pmf(model), float(p[0]))
        reason += "; " + how
    return StationaryResult(mean, p_empty, lf / qf, mean / lf, True, reason, boundary=p, roots=roots,
                            route="pgf", p_empty_error=p_error)


def _chain_route(model: ContinuousBatching, why: str) -> StationaryResult:
    r"""The stationary quantities from the truncated chain (:func:`~queueing_llm.theory.queue_chain.truncated_chain`).

    :math:`E[Y] = \sum_n n \pi_n`, :math:`E[\min(Y, B)] = \lambda/q` (rate balance),
    :math:`E[	ext{sojourn}] = E[Y]/\lambda`; the truncation error bound :math:`\epsilon`
    (total variation) bounds the error of :math:`P(	ext{empty})` by :math:`\epsilon` and is
    stated in the reason.
    """
    q, _, lam, B = _qab(model)
    qf, lf, Bi = to_float(q), to_float(lam), int(B)
    chain = queue_chain.truncated_chain(Bi, qf, arrival_pmf(model))
    n = np.arange(chain.size)
    mean = float(n @ chain.pi)
    reason = (f"chain route ({why}): truncated chain on 0..{chain.size - 1} solved by GTH, "
              f"truncation error (total variation) <= {chain.error_bound:.3g}")
    return StationaryResult(mean, float(chain.pi[0]), lf / qf, mean / lf, True, reason,
                            boundary=chain.pi[:Bi].copy(), roots=None, route="chain",
                            p_empty_error=chain.error_bound)


def bailey(model: ContinuousBatching, roots: np.ndarray | None = None) -> dict[str, float]:
    r"""Bailey's bulk-service queue (:math:`l_1 = 1`, i.e. :math:`q = 1`) in closed form.

    The numerator is then a polynomial of degree :math:`B` vanishing at :math:`1, z_1..z_{B-1}`:

    .. math:: P(z) = \frac{(B - \lambda)(z - 1) A(z)}{z^B - A(z)} \prod_{k=1}^{B-1}\frac{z - z_k}{1 - z_k},

    .. math:: E[Y] = \lambda + \sum_{k=1}^{B-1}\frac{1}{1 - z_k} - \frac{B(B-1) - A''(1)}{2(B - \lambda)},
              \qquad P(Y = 0) = (B - \lambda)\prod_{k=1}^{B-1}\frac{-z_k}{1 - z_k}.

    Source: N. T. J. Bailey (1954), J. R. Statist. Soc. B 16, 80-87 (eqs. for the bulk queue
    observed after arrivals).
    """
    q, A, lam, B = _qab(model)
    if q != 1:
        raise ParameterError(f"bailey needs decode length 1 (q = 1), got q = {q}")
    z = kernel_roots(model) if roots is None else roots
    lf, Bi = to_float(lam), int(B)
    A2 = to_float(sp.diff(A, Z, 2).subs(Z, 1))
    mean = lf + float(np.sum(1 / (1 - z)).real) - (Bi * (Bi - 1) - A2) / (2 * (Bi - lf))
    p0 = (Bi - lf) * float(np.prod(-z / (1 - z)).real)
    return {"mean_in_system": mean, "p_empty": p0, "mean_batch": lf, "mean_sojourn": mean / lf}
