r"""Figures of a run, drawn with matplotlib's Agg backend and saved atomically.

matplotlib is imported inside the functions (``import queueing_llm`` stays light) and
figures are built as :class:`matplotlib.figure.Figure` objects without ``pyplot``, so no
global state or GUI backend is touched. Each plot can also be saved as PDF (``also=``),
the vector copy a LaTeX document includes (:mod:`.document`). Each figure is saved to a temporary file in the
target folder and renamed onto ``path``, so a crash never leaves half an image.

* :func:`plot_trajectory`: queue length, batch size and KV memory against the iteration
  (the model chapter, section 2, observed after admission), evictions marked.
* :func:`plot_stage_occupancy`: the stage counts :math:`x_{k,j}(n)` as a heatmap over a
  window of iterations, one panel per request type.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..derivation import file_mode
from ..errors import ModelError, describe
from ..numbers import check_real

__all__ = ["plot_trajectory", "plot_stage_occupancy", "save_figure"]


def _trajectory(value: Any) -> Any:
    from ..sim import Trajectory

    if not isinstance(value, Trajectory):
        raise ModelError(f"trajectory must be a Trajectory (ql.simulate(...)), got {describe(value)}")
    return value


def _window(trajectory: Any, window: tuple[int, int] | None, default: int | None) -> tuple[int, int]:
    n = trajectory.iterations
    if window is None:
        return (0, n) if default is None else (max(0, n - default), n)
    if not isinstance(window, (tuple, list)) or len(window) != 2:
        raise ModelError(f"window must be a pair (start, stop) of iterations, got {describe(window)}")
    start, stop = window
    check_real("window start", start, low=0, high=n - 1, integer=True)
    check_real("window stop", stop, low=int(start) + 1, high=n, integer=True)
    return int(start), int(stop)


def save_figure(figure: Any, path: str | os.PathLike, dpi: int = 120,
                also: Sequence[str | os.PathLike] = ()) -> Path:
    """Save a matplotlib figure to ``path`` through a temporary file in the same folder and
    a rename (the format follows the suffix, default PNG); returns the path. ``also``: more
    paths the same figure is saved to, each atomically (``["fig.pdf"]`` for a vector copy
    to include in LaTeX)."""
    for extra in also:
        save_figure(figure, extra, dpi)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = path.suffix[1:].lower() or "png"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            figure.savefig(fh, format=fmt, dpi=dpi)
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def plot_trajectory(trajectory: Any, path: str | os.PathLike, window: tuple[int, int] | None = None,
                    also: Sequence[str | os.PathLike] = ()) -> Path:
    r"""Queue length, batch size and KV memory of a run against the iteration, saved to ``path``.

    Three panels sharing the iteration axis :math:`n`: waiting requests
    :math:`Q_n = \sum_k q_{k}(n)`, batch members :math:`\sum_{k,j} x_{k,j}(n)` and memory
    :math:`Z_n = \sum_{k,j} (l_0 + 1 + j)\, x_{k,j}(n)` with the budget :math:`M` when
    finite (the model chapter, section 2; [ADLS26] for the stage memory :math:`w_j = l_0 + 1 + j`).
    Iterations with evictions are marked by ticks on the memory panel.

    Parameters
    ----------
    trajectory : Trajectory
    path : path-like
        Image file (PNG unless the suffix says otherwise), written atomically.
    window : (start, stop) or None
        Iterations ``start <= n < stop`` (default: the whole run).
    also : sequence of path-like
        More files for the same figure (e.g. a PDF next to the PNG), see :func:`save_figure`.

    Returns
    -------
    pathlib.Path
    """
    from matplotlib.figure import Figure

    run = _trajectory(trajectory)
    start, stop = _window(run, window, None)
    n = np.arange(start, stop)
    fig = Figure(figsize=(8, 6.5), layout="constrained")
    axes = fig.subplots(3, 1, sharex=True)
    axes[0].plot(n, run.queue[start:stop].sum(axis=1), lw=0.7, color="tab:blue")
    axes[0].set_ylabel("waiting")
    axes[1].plot(n, run.batch_size[start:stop], lw=0.7, color="tab:green")
    axes[1].set_ylabel("batch size")
    axes[2].plot(n, run.memory[start:stop], lw=0.7, color="tab:purple", label="KV tokens")
    budget = run.model.M
    if budget.is_finite:
        axes[2].axhline(float(budget), color="black", lw=0.8, ls="--", label=f"M = {budget}")
    evicted = run.evictions[start:stop].sum(axis=1)
    hits = n[evicted > 0]
    total = int(evicted.sum())
    if hits.size:
        axes[2].plot(hits, np.full(hits.size, 0.0), "|", color="tab:red", ms=6,
                     label=f"evictions ({total} in {hits.size} iterations)")
    axes[2].set_ylabel("memory (tokens)")
    axes[2].set_xlabel("iteration n")
    axes[2].legend(loc="center right", fontsize="small", framealpha=0.9)
    mode = "saturated" if run.saturated else "open"
    fig.suptitle(f"{mode} run, {run.iterations} iterations, seed {run.seed}, policy {run.model.policy}",
                 fontsize="medium")
    return save_figure(fig, path, also=also)


def plot_stage_occupancy(trajectory: Any, path: str | os.PathLike, window: tuple[int, int] | None = None,
                         last: int = 400, also: Sequence[str | os.PathLike] = ()) -> Path:
    r"""Heatmap of the stage counts :math:`x_{k,j}(n)` (stage :math:`j` against iteration
    :math:`n`), one panel per request type, saved to ``path``.

    The cohorts of the [ADLS26] dynamics show as diagonal stripes: a request admitted at
    iteration :math:`a` sits in stage :math:`j` at iteration :math:`a + j` (the model chapter,
    section 2), until it completes or is evicted.

    Parameters
    ----------
    trajectory : Trajectory
    path : path-like
        Image file, written atomically.
    window : (start, stop) or None
        Iterations shown; default the last ``last`` iterations of the run.
    last : int
        Length of the default window.
    also : sequence of path-like
        More files for the same figure (e.g. a PDF next to the PNG), see :func:`save_figure`.

    Returns
    -------
    pathlib.Path
    """
    from matplotlib.figure import Figure

    run = _trajectory(trajectory)
    check_real("last", last, low=1, integer=True)
    start, stop = _window(run, window, int(last))
    counts = run.batch[start:stop]  # (n, K, S)
    K = counts.shape[1]
    fig = Figure(figsize=(8, 1.2 + 2.4 * K), layout="constrained")
    axes = np.atleast_1d(fig.subplots(K, 1, sharex=True, squeeze=False)[:, 0])
    for k, ax in enumerate(axes):
        top = float(run.model.types[k].decode.support_max)
        stages = counts.shape[2] if not math.isfinite(top) else min(int(top), counts.shape[2])
        image = ax.imshow(counts[:, k, :stages].T, aspect="auto", origin="lower", interpolation="nearest",
                          cmap="viridis", extent=(start - 0.5, stop - 0.5, -0.5, stages - 0.5))
        ax.set_ylabel(f"type {k}: stage j")
        fig.colorbar(image, ax=ax, label="requests")
    axes[-1].set_xlabel("iteration n")
    fig.suptitle(f"stage occupancy, iterations {start}..{stop - 1}", fontsize="medium")
    return save_figure(fig, path, also=also)
