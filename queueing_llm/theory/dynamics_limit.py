r"""Multi-type stability: the large-prompt limit, the gcd criterion and :math:`l_0^{\min}`.

Scale the prompts as :math:`l_{0,k} = r_k s` and let :math:`s \to \infty`. The survival
polynomial is linear in :math:`s`, and its leading coefficient is the **limiting
polynomial** (the model chapter, A.5)

.. math:: A(\lambda) = \lim_{s\to\infty} F(\lambda)/s
          = \sum_{m<L} \sum_{k:\, l_{1,k} > m} p_k r_k \lambda^{L-1-m},
          \qquad (1 - \lambda) A(\lambda) = -R \lambda^L + \sum_k p_k r_k \lambda^{L - l_{1,k}},

:math:`R = \sum_k p_k r_k`. On :math:`|\lambda| \ge 1` the closed form vanishes only when
:math:`\lambda^{l_{1,k}} = 1` for every :math:`k`, i.e. at the :math:`g`-th roots of unity,
:math:`g = \gcd(l_{1,1}, \dots, l_{1,K})`; :math:`\lambda = 1` is the factor
:math:`1 - \lambda`. Hence :math:`\rho(A) = 1` if :math:`g > 1` and :math:`\rho(A) < 1` if
:math:`g = 1` (the **gcd criterion**).

With a common prompt :math:`l_0` the finite-prompt polynomial is exactly
:math:`F(\lambda) = (l_0 + L) A(\lambda) - \lambda A'(\lambda)` (:math:`A` with
:math:`r_k = 1`), so a root :math:`\lambda_0` of :math:`A` moves to
:math:`\lambda_0 (1 + 1/(l_0 + L)) + O(l_0^{-2})`: radially **outwards**. Roots on the unit
circle (:math:`g > 1`) leave it: unstable for every prompt; for :math:`g = 1` the fixed
point is stable once the prompts are long enough. :func:`l0_min` finds the smallest common
prompt exactly (Schur-Cohn in rationals), :func:`first_order_l0` the first-order estimate
and :func:`cubic_asymptotic` the two-type asymptotic
:math:`1 - \rho(A) \sim 2\pi^2 p(1-p)/((1-p) + p\beta)^3\, l_{1,2}^{-3}`.

Source: [ADLS26], multi-type stability and the gcd criterion (the references chapter, section 1,
Examples 4-5).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace
from fractions import Fraction
from functools import lru_cache, reduce
from typing import Any

import numpy as np
import sympy as sp

from ..errors import ModelError, ParameterError, SymbolicValueError
from ..model import ContinuousBatching, RequestType
from ..numbers import check_real, is_symbolic
from ..progress import ProgressBar
from . import roots as _roots
from .dynamics_core import (
    LAMBDA,
    components,
    decode_horizon,
    survival_coefficients,
    survival_polynomial,
    to_fraction,
)

__all__ = [
    "SCALE",
    "prompt_ratios",
    "with_prompts",
    "limiting_polynomial",
    "limiting_closed_form",
    "decode_gcd",
    "unit_circle_roots",
    "limiting_radius",
    "radial_identity",
    "spectral_radius_at",
    "stable_at",
    "first_order_l0",
    "l0_min",
    "cubic_asymptotic",
    "asymptotic_gap",
]

SCALE = sp.Symbol("s", positive=True)
"""The prompt scale :math:`s` of the large-prompt limit :math:`l_{0,k} = r_k s`."""


def prompt_ratios(model: ContinuousBatching) -> tuple[sp.Expr, ...]:
    r"""Default prompt ratios :math:`r_k`: 1 for every type when the (mean) prompts are
    equal, else the prompts themselves (only ratios matter for the roots)."""
    l0s = [t.l0 for t in model.types]
    if all(sp.simplify(x - l0s[0]) == 0 for x in l0s):
        return tuple(sp.Integer(1) for _ in l0s)
    if all(not is_symbolic(x) and x == 0 for x in l0s):  # pragma: no cover - covered by the equal case
        return tuple(sp.Integer(1) for _ in l0s)
    return tuple(l0s)


def with_prompts(model: ContinuousBatching, prompts: Any) -> ContinuousBatching:
    """The model with the prompt of every type replaced (same decodes, proportions, M)."""
    prompts = [prompts] * model.K if not isinstance(prompts, (list, tuple)) else list(prompts)
    if len(prompts) != model.K:
        raise ParameterError(f"prompts must hold {model.K} values (one per type), got {len(prompts)}")
    types = [
        RequestType(prompt=p, decode=t.decode, arrivals=t.arrivals)
        for p, t in zip(prompts, model.types, strict=True)
    ]
    return replace(model, types=types, kv_capacity=math.inf, mix=model.proportions, policy="greedy")


def limiting_polynomial(model: ContinuousBatching, lam: sp.Symbol = LAMBDA, ratios: Any = None) -> sp.Expr:
    r""":math:`A(\lambda) = \lim_{s\to\infty} F(\lambda; l_{0,k} = r_k s)/s`, computed by SymPy
    from the survival polynomial of the scaled model (its coefficient of :math:`s`).
    ``ratios`` defaults to :func:`prompt_ratios`. Source: [ADLS26] (the model chapter, A.5)."""
    r = prompt_ratios(model) if ratios is None else tuple(sp.sympify(x) for x in ratios)
    scaled = with_prompts(model, [ri * SCALE for ri in r])
    F = sp.expand(survival_polynomial(scaled, lam))
    return sp.expand(sp.limit(F / SCALE, SCALE, sp.oo))


def limiting_closed_form(model: ContinuousBatching, lam: sp.Symbol = LAMBDA, ratios: Any = None) -> sp.Expr:
    r""":math:`(1 - \lambda) A(\lambda) = -R \lambda^L + \sum_k p_k r_k \lambda^{L - l_{1,k}}`.

    Derived by summing the geometric series
    :math:`(1-\lambda)\sum_{m=0}^{l_1-1}\lambda^{L-1-m} = \lambda^{L-l_1} - \lambda^L`
    (SymPy ``summation``) once with symbolic :math:`L, l_1`, then evaluated per component
    (a simplification per component took minutes for the hundreds of decode lengths of a
    trace). Source: [ADLS26] (the references chapter, section 1, closed forms)."""
    r = prompt_ratios(model) if ratios is None else tuple(sp.sympify(x) for x in ratios)
    L = decode_horizon(model)
    form, (lam_s, L_s, l1_s) = _geometric_closed_form()
    total = sp.Integer(0)
    for c in components(model):
        total += c.p * r[c.type_index] * form.xreplace({lam_s: lam, L_s: sp.Integer(L), l1_s: c.l1})
    return sp.expand(total)


@lru_cache(maxsize=1)
def _geometric_closed_form() -> tuple[sp.Expr, tuple[sp.Symbol, sp.Symbol, sp.Symbol]]:
    r""":math:`(1-\lambda)\sum_{m=0}^{l_1-1}\lambda^{L-1-m}` summed and simplified by SymPy
    for symbolic :math:`L, l_1`: :math:`\lambda^{L-l_1}(1 - \lambda^{l_1})`."""
    lam = sp.Symbol("lambda")
    L, l1 = sp.symbols("L l1", integer=True, positive=True)
    m = sp.Symbol("m", integer=True, nonnegative=True)
    series = sp.summation(lam ** (L - 1 - m), (m, 0, l1 - 1))
    return sp.factor(sp.simplify((1 - lam) * series)), (lam, L, l1)


def decode_gcd(model: ContinuousBatching) -> int:
    r""":math:`g = \gcd` of the decode lengths of all components (numeric)."""
    decode_horizon(model)
    return int(reduce(math.gcd, (int(c.l1) for c in components(model))))


def unit_circle_roots(model: ContinuousBatching, lam: sp.Symbol = LAMBDA) -> list[sp.Expr]:
    r"""The roots of :math:`A` on the unit circle: :math:`e^{2\pi i k/g}`, :math:`k = 1..g-1`.

    Checked exactly: :math:`A` is divisible by the cyclotomic polynomial :math:`\Phi_d` for
    every divisor :math:`d > 1` of :math:`g`. Source: [ADLS26], gcd criterion.
    """
    g = decode_gcd(model)
    A = sp.Poly(limiting_polynomial(model, lam), lam)
    for d in sp.divisors(g)[1:]:
        if not A.rem(sp.Poly(sp.cyclotomic_poly(d, lam), lam)).is_zero:
            raise ModelError(f"A is not divisible by the cyclotomic polynomial Phi_{d}")  # pragma: no cover
    return [sp.exp(2 * sp.pi * sp.I * k / g) for k in range(1, g)]


def limiting_radius(model: ContinuousBatching, ratios: Any = None) -> sp.Expr | float:
    r""":math:`\rho(A)`: exactly 1 when :math:`g > 1` (:func:`unit_circle_roots`), else the
    largest root modulus of :math:`A` (a float, :math:`< 1`).

    The coefficients of :math:`A` are those of :func:`limiting_polynomial`, obtained without a
    symbolic limit: :math:`F` is affine in the prompts, so
    :math:`D A = F|_{l_{0,k} = D r_k} - F|_{l_{0,k} = 0}` exactly (fractions, :math:`O(L)`),
    :math:`D` the common denominator of the ratios (prompts are integers; :math:`D A` has the
    roots of :math:`A`)."""
    if decode_gcd(model) > 1:
        return sp.Integer(1)
    r = prompt_ratios(model) if ratios is None else tuple(sp.sympify(x) for x in ratios)
    if any(is_symbolic(x) for x in r):
        raise SymbolicValueError(f"the prompt ratios {list(r)} are symbolic: give numeric prompts or ratios")
    fr = [to_fraction(sp.nsimplify(x) if isinstance(x, sp.Float) else x) for x in r]
    if any(x < 0 for x in fr):
        raise ParameterError(f"prompt ratios must be >= 0, got {list(r)}")
    common = math.lcm(*(x.denominator for x in fr))
    top = _coefficients_at(model, [int(x * common) for x in fr])
    bottom = _coefficients_at(model, [0] * model.K)
    coeffs = [to_fraction(a) - to_fraction(b) for a, b in zip(top, bottom, strict=True)]
    if len(coeffs) == 1:
        return 0.0
    return float(np.max(np.abs(_roots.approximate_roots(_roots.exact_coefficients(coeffs)))))


def radial_identity(model: ContinuousBatching, l0: Any = None, lam: sp.Symbol = LAMBDA) -> tuple[sp.Expr, sp.Expr]:
    r"""Both sides of :math:`F(\lambda) = (l_0 + L) A(\lambda) - \lambda A'(\lambda)` for a
    common prompt :math:`l_0` (a symbol by default); their difference expands to zero."""
    l0 = sp.Symbol("l0", nonnegative=True) if l0 is None else sp.sympify(l0)
    common = with_prompts(model, l0)
    ratios = tuple(sp.Integer(1) for _ in model.types)
    A = limiting_polynomial(common, lam, ratios)
    L = decode_horizon(model)
    return sp.expand(survival_polynomial(common, lam)), sp.expand((l0 + L) * A - lam * sp.diff(A, lam))


def _coefficients_at(model: ContinuousBatching, l0: Any) -> list:
    S = survival_coefficients(with_prompts(model, l0))
    if any(is_symbolic(x) for x in S):
        raise SymbolicValueError(f"survival coefficients {list(S)} are symbolic: give numeric proportions")
    return list(S)


def _prompt_line(model: ContinuousBatching) -> tuple[list[Fraction], list[Fraction]]:
    r"""Survival coefficients as exact affine functions of a common prompt :math:`l_0`:
    :math:`S_m(l_0) = S_m(0) + l_0 (S_m(1) - S_m(0))`.

    :math:`S_m` is affine in :math:`l_0` (the stage memory :math:`w_j = l_0 + 1 + j` is;
    :func:`radial_identity`); the line through :math:`l_0 = 0, 1` is confirmed exactly at
    :math:`l_0 = 2`, so a search over prompts costs three derivations, not one per prompt.
    """
    at = [[to_fraction(x) for x in _coefficients_at(model, v)] for v in (0, 1, 2)]
    base, slope = at[0], [b - a for a, b in zip(at[0], at[1], strict=True)]
    if any(a + 2 * d != c for a, d, c in zip(base, slope, at[2], strict=True)):  # pragma: no cover - model contract
        raise ModelError("the survival coefficients are not affine in the common prompt length")
    return base, slope


def _line_at(line: tuple[list[Fraction], list[Fraction]], l0: int) -> list[Fraction]:
    return [a + l0 * d for a, d in zip(*line, strict=True)]


def spectral_radius_at(model: ContinuousBatching, l0: Any) -> float:
    r""":math:`\rho(F)` when every type has the common prompt :math:`l_0` (float roots,
    :func:`.roots.approximate_roots`)."""
    S = _coefficients_at(model, l0)
    if len(S) == 1:
        return 0.0
    return float(np.max(np.abs(_roots.approximate_roots(_roots.exact_coefficients(S)))))


def stable_at(model: ContinuousBatching, l0: Any, budget: float | str | None = "default") -> bool | None:
    """Is :math:`\\rho(F) < 1` with the common prompt ``l0``? Decided by :func:`.roots.stability`
    (exact Schur-Cohn for small degrees, certified floats with an exact fallback for large
    ones); None if undecided within ``budget`` seconds (``"default"``: :data:`.roots.DEFAULT_BUDGET`)."""
    return _roots.stability(_coefficients_at(model, l0), budget=budget).stable


def _decide(coeffs: list[Fraction], previous: np.ndarray | None,
            deadline: float | None) -> tuple[bool, np.ndarray | None]:
    r"""Certified decision of :math:`\rho < 1` at one prompt of a search, warm-started from the
    roots at the previous prompt (they move continuously with :math:`l_0`): Aberth from
    ``previous`` and the certificate; else :func:`.roots.stability` (fresh roots, exact
    fallback). Returns the decision and the roots to start the next prompt from; raises
    :class:`.roots.OutOfBudget` past ``deadline``."""
    n = len(coeffs) - 1
    if n <= _roots.EXACT_DEGREE:
        return _roots.schur_cohn(coeffs, deadline=deadline), None
    if previous is not None and previous.size == n:
        guess = _roots.aberth(_roots.float_coefficients(coeffs), previous, iterations=60, deadline=deadline)
        cert = _roots.certify_roots(coeffs, guess, deadline=deadline)
        if cert.inside is not None:
            return cert.inside == n, cert.centers
    remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
    result = _roots.stability(coeffs, budget=remaining, exact_degree=0)
    if result.stable is None:
        raise _roots.OutOfBudget
    return result.stable, result.centers


def first_order_l0(model: ContinuousBatching) -> int | sp.Expr:
    r"""First-order prompt length for stability: the smallest integer :math:`l_0 \ge 0` with
    :math:`\rho(A)(1 + 1/(l_0 + L)) < 1`, i.e. :math:`l_0 > \rho(A)/(1-\rho(A)) - L`
    (:func:`radial_identity`); ``oo`` when :math:`g > 1`. An estimate only: :func:`l0_min`
    is exact."""
    if decode_gcd(model) > 1:
        return sp.oo
    rho = limiting_radius(model, tuple(sp.Integer(1) for _ in model.types))
    L = decode_horizon(model)
    return max(0, int(math.floor(rho / (1 - rho) - L)) + 1)


def l0_min(model: ContinuousBatching, max_l0: int = 10**6, scan: int = 20_000,
           budget: float | str | None = "default",
           progress: Callable[[int, int], Any] | bool | None = None) -> int | sp.Expr | None:
    r"""Smallest common prompt length :math:`l_0` for which every root of :math:`F` lies
    strictly inside the unit circle (``oo`` if :math:`g > 1`; None if undecided within
    ``budget`` seconds).

    Searched upwards from :math:`l_0 = 0`; every :math:`l_0` is decided with certainty:
    exactly (Schur-Cohn in rationals) for small degrees, else by certified floating-point
    inclusion disks of the roots (warm-started from the roots at the previous prompt), with
    the exact test where the certificate fails (:mod:`.roots`). The answer is therefore
    certified: stable at :math:`l_0^{\min}`, unstable at every smaller prompt of the scan.
    Beyond ``scan`` values a bisection assumes the stability region is upward closed. Not
    the asymptotic formula: compare :func:`first_order_l0`. ``budget`` (seconds; None: no
    limit; ``"default"``: :data:`.roots.DEFAULT_BUDGET`) bounds the whole search;
    ``progress(done, total)`` follows the scan (None: a
    :class:`~queueing_llm.progress.ProgressBar` shown only after 2 s; False: silent).
    Source: [ADLS26], multi-type stability.
    """
    check_real("max_l0", max_l0, low=1, integer=True)
    deadline = _roots.deadline_after(budget)
    if decode_gcd(model) > 1:
        return sp.oo
    line = _prompt_line(model)
    last = min(scan, max_l0)
    bar = ProgressBar(last + 1, label="l0_min search") if progress is None else None
    report = bar if bar is not None else (progress if callable(progress) else None)
    roots: np.ndarray | None = None

    def stable(l0: int) -> bool:
        nonlocal roots
        verdict, roots = _decide(_line_at(line, l0), roots, deadline)
        return verdict

    try:
        for l0 in range(0, last + 1):
            if report is not None:
                report(l0, last + 1)
            if stable(l0):
                return l0
        lo, hi = last, None
        step = max(1, lo)
        while hi is None:
            cand = lo + step
            if cand > max_l0:
                raise ParameterError(f"no common prompt length up to max_l0 = {max_l0} makes the model stable")
            roots = None
            if stable(cand):
                hi = cand
            else:
                lo, step = cand, step * 2
        while hi - lo > 1:
            mid = (lo + hi) // 2
            roots = None
            if stable(mid):
                hi = mid
            else:
                lo = mid
        return hi
    except _roots.OutOfBudget:
        return None
    finally:
        if bar is not None:
            bar.close()


def cubic_asymptotic(p: Any = None, beta: Any = None, l1_long: Any = None) -> dict[str, sp.Expr]:
    r"""Two types: the gap :math:`1 - \rho(A)` for long decode lengths, derived by perturbation.

    Types with decode lengths :math:`a = \beta N < N`, proportions :math:`p` (short) and
    :math:`1 - p`, common prompt. :math:`(1-\lambda)A(\lambda) = 0` reads
    :math:`p \lambda^{-a} + (1-p)\lambda^{-N} = 1`. Near the root of unity
    :math:`\lambda_0 = e^{2\pi i j/N}` with :math:`\lambda_0^{-a} = e^{i\varphi}`,
    :math:`\varphi = 2\pi/N` (possible since :math:`\gcd(a, N) = 1`), write
    :math:`\lambda = \lambda_0 e^{t/N}`: :math:`p e^{i\varphi - \beta t} + (1-p) e^{-t} = 1`.
    Expanding :math:`t = t_1 \varphi + t_2 \varphi^2 + O(\varphi^3)` order by order (SymPy
    ``series`` and ``solve``) gives :math:`t_1 = i p/D`, :math:`\mathrm{Re}\, t_2 = -p(1-p)/(2D^3)`,
    :math:`D = (1-p) + p\beta`, hence

    .. math:: 1 - \rho(A) \sim -\mathrm{Re}(t_2)\,\frac{\varphi^2}{N}
              = \frac{2\pi^2 p (1-p)}{((1-p) + p\beta)^3}\, N^{-3}.

    Returns ``{"t1", "t2", "gap"}`` (``gap`` in the symbols ``p``, ``beta``, ``N`` or the
    values given). Source: [ADLS26] (the references chapter, section 1).
    """
    P, B, N = sp.symbols("p beta N", positive=True)
    s1, s2, gap = _cubic_symbolic()
    values = {P: p, B: beta, N: l1_long}
    subs = {k: sp.sympify(v) for k, v in values.items() if v is not None}
    return {"t1": s1, "t2": s2, "gap": sp.simplify(gap.subs(subs))}


@lru_cache(maxsize=1)
def _cubic_symbolic() -> tuple[sp.Expr, sp.Expr, sp.Expr]:
    P, B, N = sp.symbols("p beta N", positive=True)
    phi, t1, t2 = sp.symbols("varphi t_1 t_2")
    t = t1 * phi + t2 * phi**2
    equation = P * sp.exp(sp.I * phi - B * t) + (1 - P) * sp.exp(-t) - 1
    series = sp.expand(sp.series(equation, phi, 0, 3).removeO())
    s1 = sp.solve(series.coeff(phi, 1), t1)[0]
    s2 = sp.solve(series.coeff(phi, 2).subs(t1, s1), t2)[0]
    s2 = sp.factor(sp.simplify(s2))
    re_t2 = sp.factor(sp.simplify(sp.re(sp.expand_complex(s2))))
    gap = sp.factor(-re_t2 * (2 * sp.pi / N) ** 2 / N)
    return sp.simplify(s1), s2, gap


def asymptotic_gap(model: ContinuousBatching) -> sp.Expr:
    r""":func:`cubic_asymptotic` for a two-type model (deterministic, distinct decode lengths):
    :math:`p` the proportion of the shorter type, :math:`\beta = l_{1,1}/l_{1,2}`."""
    comps = components(model)
    lengths = sorted({int(c.l1) for c in comps})
    if len(comps) != 2 or len(lengths) != 2:
        raise ParameterError("the cubic asymptotic is for two request types with distinct decode lengths")
    short = next(c for c in comps if int(c.l1) == lengths[0])
    return cubic_asymptotic(short.p, sp.Rational(lengths[0], lengths[1]), lengths[1])["gap"]
