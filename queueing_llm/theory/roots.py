r"""Where the roots of a real polynomial lie with respect to the unit circle: certified floats.

The stability of the linearised saturated map is decided by the roots of the survival
polynomial :math:`F` (:mod:`.dynamics_core`), whose degree is the largest decode length:
thousands for models built from traces. Exact rational arithmetic (the Schur-Cohn test)
is cheap for small degrees only; this module decides the question in floating point and
**certifies** the answer, so that the float answer is as trustworthy as the exact one.

Method
------
1. *Approximate roots* :math:`z_1, \dots, z_n` of :math:`p(z) = \sum_k a_k z^k` (exact
   rational :math:`a_k`): eigenvalues of the companion matrix (:func:`numpy.roots`) for
   moderate degrees, the Aberth-Ehrlich iteration for large ones, then Aberth polishing.
2. *Inclusion disks* (Smith 1970; Braess-Hadeler 1973; Carstensen 1991): with the
   Weierstrass corrections :math:`W_i = p(z_i) / (a_n \prod_{j \ne i} (z_i - z_j))`, the
   polynomial :math:`p/a_n` is the characteristic polynomial of
   :math:`B = \operatorname{diag}(z) - \mathbf 1 W^T` (Lagrange interpolation at the
   :math:`z_i`). Gershgorin's theorem on the columns of :math:`B` puts every root in
   :math:`\bigcup_i D_i`, :math:`D_i = \{|z - z_i| \le n |W_i|\}`, and a connected union of
   :math:`k` disks disjoint from the others holds exactly :math:`k` roots.
3. *Rigorous error*: :math:`|W_i|` is bounded **above** from the floating-point values with
   a-priori rounding-error bounds (Horner: :math:`|\mathrm{fl}(p(z)) - p(z)| \le \gamma
   \sum_k |a_k| |z|^k`, :math:`\gamma = 5(n+1)u/(1 - 5(n+1)u)`, :math:`u = 2^{-53}`, above
   the classical bound :math:`(1 + 2\sqrt 2) n u` of complex Horner steps with real
   coefficients (Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed.,
   sections 3.6 and 5.1); rounding of the coefficients, of
   :math:`1/z` for :math:`|z| > 1` (:math:`p(z) = z^n p^*(1/z)`), of the logarithms of the
   product and of the moduli are bounded the same way). The comparison with the circle
   keeps a margin of :math:`8u` relative.
4. *Counting*: if every disk lies strictly inside or strictly outside the unit circle,
   the number of roots inside is the number of disks inside (each connected component is
   on one side). Otherwise the certificate fails and the exact Schur-Cohn test decides
   (:func:`schur_cohn`, normalised so that the rationals stay of polynomial size), within
   a time budget; past the budget the answer is *undecided* (a value, not an exception).
   Measured on the Azure conversation trace model (coefficients over 19366): the exact
   test takes 0.35 s at degree 63, 4.6 s at 127, 69 s at 255 and over 14 min at 511; the
   certified route 0.01 s at degree 31, 0.1 s at 511 and 2-4 s at degree 4000.

The spectral radius comes with a certified enclosure
:math:`\rho \in [\max_{\text{comp}} \min_{i \in \text{comp}} (|z_i| - r_i),\ \max_i (|z_i| + r_i)]`.

Sources: B. T. Smith, "Error bounds for zeros of a polynomial based upon Gerschgorin's
theorems", J. ACM 17 (1970) 661-674; C. Carstensen, "Inclusion of the roots of a
polynomial based on Gerschgorin's theorem", Numer. Math. 59 (1991) 349-360; O. Aberth,
Math. Comp. 27 (1973) 339-344; I. Schur (1917), A. Cohn (1922), D. H. Lehmer (1961).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from ..errors import ParameterError
from ..progress import ProgressBar

__all__ = [
    "DEFAULT_BUDGET",
    "EXACT_DEGREE",
    "EIG_DEGREE",
    "EIG_FALLBACK_DEGREE",
    "RootCertificate",
    "StabilityResult",
    "OutOfBudget",
    "deadline_after",
    "exact_coefficients",
    "float_coefficients",
    "approximate_roots",
    "aberth",
    "certify_roots",
    "schur_cohn",
    "stability",
]

DEFAULT_BUDGET = 30.0
"""Seconds a stability decision may take by default before answering "undecided"; read at
call time wherever ``budget="default"`` (the default of every function with a budget), so
``queueing_llm.theory.roots.DEFAULT_BUDGET = 120`` changes it for the theorems too."""

EXACT_DEGREE = 12
"""Degrees up to this are decided exactly (Schur-Cohn in rationals); above, certified floats."""

EIG_DEGREE = 64
"""Degrees up to this get their first approximations from the companion eigenvalues
(:func:`numpy.roots`, :math:`O(n^3)`); above, from the Aberth iteration (:math:`O(n^2)` a step:
0.3 s for degree 1000 where LAPACK takes seconds, and minutes on a loaded machine)."""

EIG_FALLBACK_DEGREE = 300
"""Largest degree for which companion eigenvalues are tried when Aberth's roots are not certified."""

_U = 2.0**-53
_TINY = 1e-290  # absolute slack covering subnormal rounding of the coefficients
_CHUNK = 256  # rows per block of the pairwise differences (memory ~ 4 MB per 1000 roots)


class OutOfBudget(Exception):
    """Raised inside a computation whose deadline has passed (caught by :func:`stability`)."""


def deadline_after(budget: float | str | None) -> float | None:
    """The :func:`time.monotonic` deadline ``budget`` seconds from now (None: no limit)."""
    budget = _check_budget(budget)
    return None if budget is None else time.monotonic() + budget


def _check_deadline(deadline: float | None) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise OutOfBudget


def exact_coefficients(coefficients: Sequence[Any]) -> list[Fraction]:
    """Exact :class:`~fractions.Fraction` coefficients, highest power first, leading zeros removed.

    Accepts Python ints, Fractions, floats (taken exactly) and rational SymPy numbers;
    a ParameterError for anything else or for the zero polynomial.
    """
    out: list[Fraction] = []
    for i, x in enumerate(coefficients):
        if isinstance(x, (Fraction, int)):
            out.append(Fraction(x))
        elif isinstance(x, float):
            if not math.isfinite(x):
                raise ParameterError(f"coefficient {i} is {x!r}: coefficients must be finite numbers")
            out.append(Fraction(x))
        else:
            p, q = getattr(x, "p", None), getattr(x, "q", None)
            if p is None or q is None or not getattr(x, "is_Rational", False):
                raise ParameterError(f"coefficient {i} = {x!r} is not a rational number")
            out.append(Fraction(int(p), int(q)))
    while out and out[0] == 0:
        out.pop(0)
    if not out:
        raise ParameterError("the zero polynomial has no roots to locate")
    return out


# -- floating-point evaluation with error bounds -------------------------------------------------
def float_coefficients(c: Sequence[Any]) -> np.ndarray:
    """Float coefficients of an exact polynomial, scaled by the largest modulus (same roots)."""
    return _floats(exact_coefficients(c))


def _floats(c: list[Fraction]) -> np.ndarray:
    """Coefficients scaled by the largest modulus (exactly) and rounded once to floats."""
    big = max(abs(x) for x in c)
    return np.array([float(x / big) for x in c], dtype=float)


def _horner(a: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``p(z)`` (complex Horner, highest first) and ``sum |a_k| |z|^k`` at every point."""
    value = np.full(z.shape, a[0], dtype=complex)
    bound = np.full(z.shape, abs(a[0]), dtype=float)
    r = np.abs(z)
    for ak in a[1:]:
        value = value * z + ak
        bound = bound * r + abs(ak)
    return value, bound


def _horner_derivative(a: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``p(z)``, ``p'(z)`` and ``sum |a_k| |z|^k`` by Horner (highest first)."""
    value = np.full(z.shape, a[0], dtype=complex)
    deriv = np.zeros(z.shape, dtype=complex)
    bound = np.full(z.shape, abs(a[0]), dtype=float)
    r = np.abs(z)
    for ak in a[1:]:
        deriv = deriv * z + value
        value = value * z + ak
        bound = bound * r + abs(ak)
    return value, deriv, bound


def _log_abs_p_upper(a: np.ndarray, z: np.ndarray) -> np.ndarray:
    r"""Upper bounds of :math:`\log |p(z_i)|` for the exact polynomial whose rounded
    coefficients are ``a`` (relative rounding :math:`\le u`), at the float points ``z``.

    :math:`|z| \le 1`: Horner on :math:`p`. :math:`|z| > 1`: :math:`p(z) = z^n p^*(w)`,
    :math:`w = 1/z` (rounded: the evaluation-point error is bounded through
    :math:`|p^{*\prime}| \le n \sum |a_k| |w|^{n-k-1}`), so no overflow for large degrees.
    """
    n = a.size - 1
    gamma = 5 * (n + 1) * _U / (1 - 5 * (n + 1) * _U)
    out = np.empty(z.shape, dtype=float)
    inner = np.abs(z) <= 1
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        if inner.any():
            v, b = _horner(a, z[inner])
            b = b * (1 + 3 * (n + 2) * _U) + _TINY
            up = np.abs(v) * (1 + 2 * _U) + (gamma + 2 * _U) * b
            logs = np.log(up)
            out[inner] = logs + 2 * _U * (np.abs(logs) + 2)  # log rounds to 1 ulp of its result
        if (~inner).any():
            zz = z[~inner]
            w = 1 / zz
            v, b = _horner(a[::-1], w)
            b = b * (1 + 3 * (n + 2) * _U) + _TINY
            # point error |w_fl - 1/z| <= 4u|w| (complex division): by the mean value theorem
            # |p*(w_fl) - p*(1/z)| <= 4u|w| n sum |a_k| (|w|(1+4u))^(n-k-1) <= 4u n (1 + 5nu) b(|w|)
            point = 4 * _U * n * (1 + 5 * n * _U) * b
            up = np.abs(v) * (1 + 2 * _U) + (gamma + 2 * _U) * b + point
            logz = np.log(np.abs(zz))
            logs = np.log(up)
            out[~inner] = (logs + n * logz + 2 * _U * (np.abs(logs) + 2)
                           + 4 * (n + 1) * _U * (n * np.abs(logz) + 1))
    return out


def _log_denominator_lower(z: np.ndarray, deadline: float | None) -> np.ndarray:
    r"""Lower bounds of :math:`\log \prod_{j \ne i} |z_i - z_j|` (``-inf`` if two coincide)."""
    n = z.size
    out = np.empty(n, dtype=float)
    for start in range(0, n, _CHUNK):
        _check_deadline(deadline)
        rows = slice(start, min(start + _CHUNK, n))
        d = np.abs(z[rows, None] - z[None, :])
        idx = np.arange(rows.start, rows.stop)
        d[idx - rows.start, idx] = 1.0
        with np.errstate(divide="ignore"):
            logs = np.log(d)
        total = logs.sum(axis=1)
        spread = np.abs(logs).sum(axis=1)
        # |z_i - z_j| and log each rounded: <= 4u absolute per factor; summation <= (n+2) 2u sum |log|
        out[rows] = total - (4 * n * _U + 2 * (n + 2) * _U * spread) - 4 * _U
    return out


# -- approximate roots -----------------------------------------------------------------------------
def aberth(a: np.ndarray, z0: np.ndarray, *, iterations: int = 200, tol: float = 4 * _U,
           deadline: float | None = None) -> np.ndarray:
    r"""Aberth-Ehrlich iteration for all roots of :math:`p` (float coefficients ``a``, highest first).

    :math:`z_i \leftarrow z_i - N_i / (1 - N_i \sum_{j \ne i} (z_i - z_j)^{-1})`,
    :math:`N_i = p(z_i)/p'(z_i)` (cubic convergence for simple roots), evaluated through
    :math:`p^*(1/z)` outside the unit circle. A root stops moving once its correction is
    below ``tol`` relative or :math:`|p(z_i)|` is within the rounding error of its evaluation
    (it cannot improve); all stop after ``iterations`` steps or at the deadline
    (:class:`OutOfBudget`).
    Source: O. Aberth, Math. Comp. 27 (1973) 339-344.
    """
    n = a.size - 1
    z = np.array(z0, dtype=complex)
    active = np.ones(n, dtype=bool)
    for _ in range(iterations):
        _check_deadline(deadline)
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        zi = z[idx]
        ratio = np.empty(idx.size, dtype=complex)  # N = p / p'
        noise = np.empty(idx.size, dtype=bool)  # |p(z)| below its rounding error
        inner = np.abs(zi) <= 1
        with np.errstate(all="ignore"):
            if inner.any():
                v, d, b = _horner_derivative(a, zi[inner])
                ratio[inner] = v / d
                noise[inner] = np.abs(v) <= 4 * (n + 1) * _U * b
            if (~inner).any():
                w = 1 / zi[~inner]
                v, d, b = _horner_derivative(a[::-1], w)
                ratio[~inner] = 1 / (w * (n - w * d / v))
                noise[~inner] = np.abs(v) <= 4 * (n + 1) * _U * b
            s = np.empty(idx.size, dtype=complex)
            for start in range(0, idx.size, _CHUNK):
                rows = slice(start, min(start + _CHUNK, idx.size))
                diff = zi[rows, None] - z[None, :]
                diff[np.arange(rows.stop - rows.start), idx[rows]] = np.inf
                s[rows] = (1 / diff).sum(axis=1)
            step = ratio / (1 - ratio * s)
        good = np.isfinite(step)
        step = np.where(good, step, 0)
        z[idx] = zi - step
        small = np.abs(step) <= tol * np.maximum(np.abs(z[idx]), 1e-300)
        active[idx[(small & good) | noise]] = False
    return z


def approximate_roots(c: list[Fraction], *, deadline: float | None = None, method: str = "auto") -> np.ndarray:
    """Float approximations of all roots of the exact polynomial ``c`` (highest first).

    ``method="eig"``: companion eigenvalues (:func:`numpy.roots`), Aberth-polished;
    ``"aberth"``: the Aberth iteration from a circle of the geometric-mean radius
    :math:`|a_0/a_n|^{1/n}`; ``"auto"``: ``"eig"`` up to :data:`EIG_DEGREE`, else ``"aberth"``.
    Zero roots (trailing zero coefficients) are returned exactly.
    """
    if method not in ("auto", "eig", "aberth"):
        raise ParameterError(f"method must be 'auto', 'eig' or 'aberth', got {method!r}")
    c = list(c)
    zeros = 0
    while len(c) > 1 and c[-1] == 0:
        c.pop()
        zeros += 1
    if zeros:
        inner = approximate_roots(c, deadline=deadline, method=method)
        return np.concatenate([inner, np.zeros(zeros, dtype=complex)])
    a = _floats(c)
    n = a.size - 1
    if n == 0:
        return np.zeros(0, dtype=complex)
    if method == "eig" or (method == "auto" and n <= EIG_DEGREE):
        z = np.roots(a).astype(complex)
        return aberth(a, z, iterations=3, deadline=deadline)
    log_radius = (math.log(abs(c[-1])) - math.log(abs(c[0]))) / n if c[-1] != 0 else 0.0
    angles = 2 * np.pi * (np.arange(n) + 0.25) / n + 0.4
    return aberth(a, np.exp(log_radius) * np.exp(1j * angles), iterations=500, deadline=deadline)


# -- certificate -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class RootCertificate:
    r"""Inclusion disks of all roots of a polynomial and what they prove.

    Attributes
    ----------
    centers : numpy.ndarray
        Approximate roots :math:`z_i` (complex); exact zero roots included.
    radii : numpy.ndarray
        Certified radii :math:`r_i` (every root lies in :math:`\bigcup_i \{|z - z_i| \le r_i\}`;
        a connected union of :math:`k` disks holds exactly :math:`k` roots).
    inside : int or None
        Number of roots strictly inside the unit circle, when every disk lies strictly on
        one side of it; None when some disk meets the circle (not certified).
    radius_bounds : tuple of float
        Certified :math:`(\rho_-, \rho_+)` with :math:`\rho_- \le \rho = \max |\lambda| \le \rho_+`.
    """

    centers: np.ndarray
    radii: np.ndarray
    inside: int | None
    radius_bounds: tuple[float, float]

    @property
    def degree(self) -> int:
        return int(self.centers.size)

    @property
    def radius(self) -> float:
        """The float estimate :math:`\\max_i |z_i|` of the spectral radius."""
        return float(np.max(np.abs(self.centers))) if self.centers.size else 0.0


def _components(z: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Labels of the connected components of the union of disks (union-find on overlaps)."""
    n = z.size
    parent = np.arange(n)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for start in range(0, n, _CHUNK):
        rows = slice(start, min(start + _CHUNK, n))
        d = np.abs(z[rows, None] - z[None, :]) * (1 - 4 * _U)
        hit = d <= (r[rows, None] + r[None, :]) * (1 + 4 * _U)
        for i, j in zip(*np.nonzero(hit), strict=True):
            a, b = find(int(i) + start), find(int(j))
            if a != b:
                parent[a] = b
    return np.array([find(i) for i in range(n)])


def certify_roots(coefficients: Sequence[Any], roots: np.ndarray | None = None, *,
                  deadline: float | None = None, method: str = "auto") -> RootCertificate:
    r"""Certified inclusion disks for the roots of the exact polynomial ``coefficients``.

    ``roots`` are approximations (:func:`approximate_roots` with ``method`` by default). Zero roots (trailing
    zero coefficients) are exact. The disks are :math:`|z - z_i| \le n \overline{|W_i|}`
    with :math:`\overline{|W_i|}` a rigorous upper bound of the Weierstrass correction
    (module docstring); a coincident pair of approximations gives infinite radii (nothing
    certified). Raises :class:`OutOfBudget` past ``deadline``.
    """
    c = exact_coefficients(coefficients)
    zeros = 0
    while c[-1] == 0:
        c.pop()
        zeros += 1
    n = len(c) - 1
    if n == 0:
        centers, radii = np.zeros(zeros, dtype=complex), np.zeros(zeros)
        return RootCertificate(centers, radii, zeros, (0.0, 0.0))
    z = approximate_roots(c, deadline=deadline, method=method) if roots is None else np.asarray(roots, dtype=complex)
    if z.size != n:
        raise ParameterError(f"expected {n} approximate roots (the degree without zero roots), got {z.size}")
    a = _floats(c)
    if not np.all(np.isfinite(z)):
        radii = np.full(n, np.inf)
    else:
        top = _log_abs_p_upper(a, z)
        lead = math.log(abs(a[0]) * (1 - 2 * _U))
        lead -= 2 * _U * (abs(lead) + 1)  # a lower bound of log|a_n| (log rounds to 1 ulp)
        bottom = _log_denominator_lower(z, deadline)
        with np.errstate(invalid="ignore"):
            log_w = top - lead - bottom
            log_w = log_w + 4 * _U * (np.abs(top) + abs(lead) + np.abs(bottom) + 1)  # the two subtractions
        with np.errstate(over="ignore"):
            radii = n * np.exp(log_w + 8 * _U) * (1 + 8 * _U)
        radii = np.where(np.isnan(radii), np.inf, radii)
    mod = np.abs(z)
    lo_edge = mod * (1 - 8 * _U) - radii * (1 + 8 * _U)
    hi_edge = mod * (1 + 8 * _U) + radii * (1 + 8 * _U)
    inner, outer = hi_edge < 1, lo_edge > 1
    inside = int(inner.sum()) + zeros if np.all(inner | outer) else None
    upper = float(np.max(hi_edge))
    if np.all(np.isfinite(radii)):
        labels = _components(z, radii)
        lower = max(float(np.min(lo_edge[labels == lab])) for lab in np.unique(labels))
        lower = max(lower, 0.0)
    else:
        lower = 0.0
    centers = np.concatenate([z, np.zeros(zeros, dtype=complex)])
    return RootCertificate(centers, np.concatenate([radii, np.zeros(zeros)]), inside, (lower, upper))


# -- exact test ------------------------------------------------------------------------------------
def schur_cohn(coefficients: Sequence[Any], *, deadline: float | None = None,
               progress: Callable[[int, int], Any] | None = None) -> bool:
    r"""Exact Schur-Cohn test: are all roots strictly inside the unit circle?

    :math:`p` of degree :math:`n \ge 1` has all zeros in :math:`|z| < 1` iff
    :math:`|p(0)| < |a_n|` and :math:`T p(z) = (a_n p(z) - p(0) p^*(z))/z` has
    (:math:`p^*(z) = z^n p(1/z)`; Schur 1917, Cohn 1922, Lehmer's form). Each :math:`Tp` is
    divided by its (positive) leading coefficient :math:`a_n^2 - p(0)^2`: the roots do not
    change and the reduced rationals stay of polynomial size (without it their size doubles
    at every step). ``progress(done, total)`` is called after each step; past ``deadline``
    (:func:`time.monotonic`) :class:`OutOfBudget` is raised.
    """
    c = exact_coefficients(coefficients)
    total = len(c) - 1
    lead = c[0]
    c = [x / lead for x in c]
    while len(c) > 1:
        _check_deadline(deadline)
        const = c[-1]
        if abs(const) >= 1:  # c is monic
            return False
        nxt = [x - const * y for x, y in zip(c, reversed(c), strict=True)][:-1]
        scale = nxt[0]  # 1 - const^2 > 0
        c = [x / scale for x in nxt]
        if progress is not None:
            progress(total - len(c) + 1, total)
    return True


# -- the decision ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class StabilityResult:
    r"""Are all roots of a polynomial strictly inside the unit circle, and how was it decided?

    Attributes
    ----------
    stable : bool or None
        True: every root has :math:`|\lambda| < 1`; False: some root has
        :math:`|\lambda| \ge 1`; None: undecided within the time budget.
    radius : float
        Float estimate of the spectral radius :math:`\rho = \max |\lambda|` (nan if none computed).
    radius_bounds : tuple of float
        Certified enclosure :math:`(\rho_-, \rho_+)` of :math:`\rho`
        (:math:`(0, \infty)` when nothing was certified).
    method : str
        ``"exact"`` (Schur-Cohn in rationals), ``"certified-float"`` (inclusion disks), or
        ``"undecided"``.
    degree : int
        Degree of the polynomial.
    seconds : float
        Wall time of the decision.
    reason : str
        One line saying how the answer was reached (or why not).
    centers : numpy.ndarray or None
        The approximate roots behind :attr:`radius` (None if none were computed).
    """

    stable: bool | None
    radius: float
    radius_bounds: tuple[float, float]
    method: str
    degree: int
    seconds: float
    reason: str
    centers: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def decided(self) -> bool:
        """True unless the budget ran out."""
        return self.stable is not None

    @property
    def radius_error(self) -> float:
        r"""Certified bound of :math:`|\rho - \hat\rho|` for the estimate :attr:`radius`."""
        lo, hi = self.radius_bounds
        return max(hi - self.radius, self.radius - lo) if math.isfinite(self.radius) else math.inf


def _check_budget(budget: Any) -> float | None:
    if isinstance(budget, str) and budget == "default":
        budget = DEFAULT_BUDGET
    if budget is None:
        return None
    if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not budget >= 0:
        raise ParameterError(f"budget must be None, 'default' or a number of seconds >= 0, got {budget!r}")
    return float(budget)


def stability(coefficients: Sequence[Any], *, budget: float | str | None = "default",
              exact_degree: int = EXACT_DEGREE,
              progress: Callable[[int, int], Any] | bool | None = None) -> StabilityResult:
    r"""Decide whether every root of the exact polynomial ``coefficients`` (highest power first)
    lies strictly inside the unit circle: exactly where cheap, by certified floats where not.

    Degrees up to ``exact_degree``: the exact :func:`schur_cohn` test (the radius estimate
    and its enclosure from :func:`certify_roots`). Larger degrees: :func:`certify_roots`;
    when a disk meets the circle (a root on or within rounding of it), :func:`schur_cohn`
    decides exactly. ``budget`` seconds (None: no limit; ``"default"``: :data:`DEFAULT_BUDGET`)
    bound the whole decision; past it
    the result says ``stable=None`` ("undecided within budget") instead of running on.
    ``progress(done, total)`` follows the steps of the exact test (None: a
    :class:`~queueing_llm.progress.ProgressBar` on standard error, shown only once the exact
    test has run 2 s; False: silent).
    """
    budget = _check_budget(budget)
    start = time.monotonic()
    deadline = None if budget is None else start + budget
    c = exact_coefficients(coefficients)
    n = len(c) - 1

    def done(stable: bool | None, cert: RootCertificate | None, method: str, reason: str) -> StabilityResult:
        radius = cert.radius if cert is not None else math.nan
        bounds = cert.radius_bounds if cert is not None else (0.0, math.inf)
        centers = cert.centers if cert is not None else None
        return StabilityResult(stable, radius, bounds, method, n, time.monotonic() - start, reason, centers)

    if n == 0:
        return StabilityResult(True, 0.0, (0.0, 0.0), "exact", 0, 0.0, "a nonzero constant has no roots")

    def exact() -> bool:
        bar = ProgressBar(n, label=f"Schur-Cohn, degree {n}") if progress is None else None
        report = bar if bar is not None else (progress if callable(progress) else None)
        try:
            return schur_cohn(c, deadline=deadline, progress=report)
        finally:
            if bar is not None:
                bar.close()

    cert: RootCertificate | None = None
    try:
        if n <= exact_degree:
            stable = exact()
            try:
                cert = certify_roots(c, deadline=deadline)
            except OutOfBudget:
                cert = None
            return done(stable, cert, "exact", f"Schur-Cohn in rationals (degree {n} <= {exact_degree})")
        cert = certify_roots(c, deadline=deadline)
        if cert.inside is None and EIG_DEGREE < n <= EIG_FALLBACK_DEGREE:  # Aberth's roots: try LAPACK's
            second = certify_roots(c, deadline=deadline, method="eig")
            cert = second if second.inside is not None else cert
        if cert.inside is not None:
            lo, hi = cert.radius_bounds
            return done(cert.inside == n, cert, "certified-float",
                        f"{cert.inside} of {n} inclusion disks inside the unit circle, the rest outside; "
                        f"rho in [{lo:.17g}, {hi:.17g}]")
        stable = exact()
        return done(stable, cert, "exact", "an inclusion disk meets the unit circle: Schur-Cohn in rationals")
    except OutOfBudget:
        return done(None, cert, "undecided",
                    f"undecided within the budget of {budget:g} s (degree {n}); give a larger budget")
