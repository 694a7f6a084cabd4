r"""Real LLM request traces: arrival times and token lengths -> laws and arrival rates.

A :class:`Trace` holds, for :math:`n` requests, the arrival times :math:`t_1 \le \dots \le t_n`
in seconds (``None`` for length-only data), the prompt tokens :math:`l_{0,i}` and the output
tokens :math:`l_{1,i}`. From it come the model's primitives (the model chapter, section 1):

* the empirical laws :math:`\hat P(l_0 = v) = \#\{i : l_{0,i} = v\}/n` and likewise for
  :math:`l_1` (:meth:`Trace.prompt_law`, :meth:`Trace.decode_law`, exact rationals, so
  :math:`E[\hat l_0] = \frac1n \sum_i l_{0,i}` exactly);
* the arrival rate :math:`\hat\lambda = n / T` requests per second over the observation
  window :math:`T` (:meth:`Trace.arrival_rate`);
* a :class:`~queueing_llm.model.RequestType` combining them (:meth:`Trace.request_type`).

The model assumes Poisson arrivals and prompt and decode lengths independent of each other;
:meth:`Trace.summary` reports how far a trace is from both (index of dispersion of the
counts, coefficient of variation of the gaps, prompt-output correlation).

Formats read by :func:`load_trace` (see ``docs/traces.md`` for the datasets and their
attribution):

``"azure"``
    Azure LLM inference trace 2023 [PCZ+24]: CSV ``TIMESTAMP,ContextTokens,GeneratedTokens``.
``"mooncake"``
    Mooncake FAST'25 traces [QLZ+25]: JSON Lines with ``timestamp`` (milliseconds),
    ``input_length``, ``output_length``.
``"vidur"``
    Vidur processed traces: CSV ``num_prefill_tokens,num_decode_tokens`` and, when present,
    ``arrived_at`` (seconds).
``"csv"``
    Generic CSV with columns ``prompt,decode`` and optionally ``arrival`` (seconds).

Built-in traces shipped in the package: ``"azure-code"`` and ``"azure-conv"`` (CC BY 4.0).

References
----------
[PCZ+24] P. Patel, E. Choukse, C. Zhang, A. Shah, Í. Goiri, S. Maleki, R. Bianchini,
"Splitwise: Efficient generative LLM inference using phase splitting", ISCA 2024.
[QLZ+25] R. Qin et al., "Mooncake: Trading More Storage for Less Computation — A
KVCache-centric Architecture for Serving LLM Chatbot", USENIX FAST 2025.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import json
import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .errors import TraceError, TraceWarning, describe
from .laws import Empirical, Poisson
from .model import PoissonProcess, RequestType
from .numbers import MAX_INTEGER
from .stats import DEFAULT_LEVEL, Interval, batch_means_ci

__all__ = ["Trace", "load_trace", "builtin_traces", "FORMATS"]

FORMATS = ("azure", "mooncake", "vidur", "csv")
"""Trace formats understood by :func:`load_trace`."""

_AZURE_SOURCE = (
    "Azure LLM inference trace 2023 (github.com/Azure/AzurePublicDataset), CC BY 4.0; "
    "P. Patel et al., 'Splitwise: Efficient generative LLM inference using phase splitting', ISCA 2024"
)
_MOONCAKE_SOURCE = (
    "Mooncake FAST'25 trace (github.com/kvcache-ai/Mooncake), Apache-2.0; R. Qin et al., "
    "'Mooncake: Trading More Storage for Less Computation', USENIX FAST 2025"
)
_VIDUR_ARXIV_SOURCE = (
    "arXiv-summarization token lengths from Microsoft Vidur (github.com/microsoft/vidur), "
    "MIT License, Copyright (c) Microsoft Corporation"
)

_BUILTIN = {
    "azure-code": ("azure_llm_2023", "AzureLLMInferenceTrace_code.csv", _AZURE_SOURCE),
    "azure-conv": ("azure_llm_2023", "AzureLLMInferenceTrace_conv.csv", _AZURE_SOURCE),
}

# Attribution of the known public files when loaded from a user path (by file name).
_KNOWN_FILES = {
    "AzureLLMInferenceTrace_code.csv": _AZURE_SOURCE,
    "AzureLLMInferenceTrace_conv.csv": _AZURE_SOURCE,
    "conversation_trace.jsonl": _MOONCAKE_SOURCE,
    "synthetic_trace.jsonl": _MOONCAKE_SOURCE,
    "arxiv_summarization_stats_llama2_tokenizer_filtered_v2.csv": _VIDUR_ARXIV_SOURCE,
}

_PER = {"second": 1.0, "minute": 60.0, "hour": 3600.0}

MAX_COUNT_BINS = 10**7
"""Most bins :meth:`Trace.counts` allocates (80 MB of counts); more raises a TraceError
naming the number of bins and the ``bin_seconds`` that would fit."""

MAX_FIELD = 2**27
"""Longest CSV field read (characters); Python's csv module stops at 131072 by default."""

FAR_OFF = 0.9
"""A gap between consecutive arrivals holding more than this share of a trace's span makes
:func:`load_trace` warn (a placeholder date, a row from another day)."""


def builtin_traces() -> tuple[str, ...]:
    """Names of the traces shipped in the package (``load_trace(name)`` loads them)."""
    return tuple(_BUILTIN)


# -- the value -------------------------------------------------------------------------
def _token_array(values: Any, what: str, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise TraceError(f"trace {name!r}: {what} must be one-dimensional, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.number):
        raise TraceError(f"trace {name!r}: {what} must be numbers, got dtype {arr.dtype}")
    if arr.size and (not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr))):
        bad = int(np.flatnonzero(~np.isfinite(arr) | (arr != np.round(arr)))[0])
        raise TraceError(f"trace {name!r}: {what} must be integers, got {arr[bad].item()!r} at request {bad}")
    if arr.size and np.any(arr < 0):
        bad = int(np.flatnonzero(arr < 0)[0])
        raise TraceError(f"trace {name!r}: {what} must be >= 0, got {arr[bad].item()!r} at request {bad}")
    if arr.size and np.any(arr > MAX_INTEGER):
        bad = int(np.flatnonzero(arr > MAX_INTEGER)[0])
        raise TraceError(
            f"trace {name!r}: {what} must be at most 2^53 = {MAX_INTEGER} tokens, got {arr[bad].item()!r} "
            f"at request {bad}"
        )
    if arr.dtype == object or arr.dtype == bool:
        raise TraceError(f"trace {name!r}: {what} must be integer token counts, got dtype {arr.dtype}")
    out = arr.astype(np.int64)
    out.setflags(write=False)
    return out


@dataclass(frozen=True, eq=False)
class Trace:
    r"""A request trace: arrival times (seconds) and prompt and output token counts.

    Parameters
    ----------
    arrival_times : 1-D array of float or None
        Arrival second of each request, non-decreasing (``None`` for length-only data).
    prompt_tokens, output_tokens : 1-D arrays of int >= 0
        Prompt length :math:`l_0` and output length :math:`l_1` of each request.
    name : str
    source : str
        Where the data come from and under which licence (the attribution to cite).
    window : float or None
        Observation window :math:`T` in seconds; defaults to the span :math:`t_n - t_1`.
        Sub-traces (:meth:`split`, :meth:`subset`) keep their parent's window, so the
        rates of the parts add up to the parent's rate.

    The arrays are read-only; a Trace is immutable, comparable and picklable.
    """

    arrival_times: np.ndarray | None
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray
    name: str = "trace"
    source: str = ""
    window: float | None = field(default=None)

    def __post_init__(self) -> None:
        name = self.name
        if not isinstance(name, str):
            raise TraceError(f"trace name must be a string, got {describe(name)}")
        prompt = _token_array(self.prompt_tokens, "prompt_tokens", name)
        output = _token_array(self.output_tokens, "output_tokens", name)
        if prompt.size != output.size:
            raise TraceError(
                f"trace {name!r}: prompt_tokens and output_tokens must have equal length, "
                f"got {prompt.size} and {output.size}"
            )
        if prompt.size == 0:
            raise TraceError(f"trace {name!r} is empty: it holds no requests")
        object.__setattr__(self, "prompt_tokens", prompt)
        object.__setattr__(self, "output_tokens", output)
        times = self.arrival_times
        if times is not None:
            times = np.asarray(times, dtype=float)
            if times.shape != prompt.shape:
                raise TraceError(
                    f"trace {name!r}: arrival_times must hold one time per request ({prompt.size}), "
                    f"got shape {times.shape}"
                )
            if not np.all(np.isfinite(times)):
                raise TraceError(f"trace {name!r}: arrival_times must be finite numbers of seconds")
            if np.any(np.diff(times) < 0):
                bad = int(np.flatnonzero(np.diff(times) < 0)[0]) + 1
                raise TraceError(
                    f"trace {name!r}: arrival_times must be non-decreasing, got {times[bad]:g} s "
                    f"after {times[bad - 1]:g} s at request {bad}"
                )
            times = times.copy()
            times.setflags(write=False)
            object.__setattr__(self, "arrival_times", times)
        if self.window is not None:
            if times is None:
                raise TraceError(f"trace {name!r}: a window needs arrival_times, got arrival_times=None")
            w = self.window
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w <= 0:
                raise TraceError(f"trace {name!r}: window must be a number of seconds > 0, got {describe(w)}")
            if w < times[-1] - times[0]:
                raise TraceError(
                    f"trace {name!r}: window = {w:g} s is shorter than the span of the arrivals "
                    f"{times[-1] - times[0]:g} s"
                )
            object.__setattr__(self, "window", float(w))

    # -- value semantics ----------------------------------------------------------
    def __len__(self) -> int:
        return int(self.prompt_tokens.size)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Trace):
            return NotImplemented
        same_times = (self.arrival_times is None and other.arrival_times is None) or (
            self.arrival_times is not None
            and other.arrival_times is not None
            and np.array_equal(self.arrival_times, other.arrival_times)
        )
        return (
            same_times
            and np.array_equal(self.prompt_tokens, other.prompt_tokens)
            and np.array_equal(self.output_tokens, other.output_tokens)
            and (self.name, self.source, self.window) == (other.name, other.source, other.window)
        )

    def __hash__(self) -> int:
        times = b"" if self.arrival_times is None else self.arrival_times.tobytes()
        return hash((times, self.prompt_tokens.tobytes(), self.output_tokens.tobytes(), self.name, self.window))

    def __repr__(self) -> str:
        span = "no arrivals" if self.arrival_times is None else f"span={self.span:.6g} s"
        return f"Trace(name={self.name!r}, requests={len(self)}, {span})"

    # -- arrivals -----------------------------------------------------------------
    @property
    def has_arrivals(self) -> bool:
        """True if the trace records arrival times."""
        return self.arrival_times is not None

    def _times(self, what: str) -> np.ndarray:
        if self.arrival_times is None:
            raise TraceError(f"trace {self.name!r} has no arrival times (length-only data); {what} needs them")
        return self.arrival_times

    @property
    def span(self) -> float:
        r"""Seconds from the first to the last arrival, :math:`t_n - t_1`."""
        times = self._times("the span")
        return float(times[-1] - times[0])

    @property
    def observation_window(self) -> float:
        r"""The observation window :math:`T` in seconds (``window`` if given, else the span)."""
        self._times("the observation window")
        return self.span if self.window is None else self.window

    def arrival_rate(self, per: str = "second") -> float:
        r"""Mean arrival rate :math:`\hat\lambda = n / T` (requests per second, minute or hour).

        :math:`n` is the number of requests and :math:`T` the observation window (the span
        :math:`t_n - t_1` unless the trace was cut from a larger one). For a Poisson process
        observed over :math:`T` this is the maximum-likelihood estimate of its rate; the
        model's arrival rate :math:`\lambda` (the model chapter, section 4). See
        :meth:`arrival_rate_interval` for a confidence interval that allows burstiness.
        """
        if per not in _PER:
            raise TraceError(f"per must be one of {', '.join(_PER)}, got {describe(per)}")
        window = self.observation_window
        if window <= 0:
            raise TraceError(
                f"trace {self.name!r}: all {len(self)} arrivals happen at the same second, so the rate is undefined"
            )
        return len(self) / window * _PER[per]

    def counts(self, bin_seconds: float = 1.0) -> np.ndarray:
        r"""Arrivals per consecutive bin of ``bin_seconds`` seconds from the first arrival,
        :math:`N_b = \#\{i : t_1 + b\,h \le t_i < t_1 + (b+1) h\}` (the last arrival falls in
        the last bin)."""
        times = self._times("counts per bin")
        if (isinstance(bin_seconds, (bool, np.bool_)) or not isinstance(bin_seconds, (int, float, np.integer))
                or not math.isfinite(bin_seconds) or not bin_seconds > 0):
            raise TraceError(f"bin_seconds must be a finite number of seconds > 0, got {describe(bin_seconds)}")
        bins = self.observation_window / bin_seconds
        if bins > MAX_COUNT_BINS:
            raise TraceError(
                f"counts(bin_seconds={bin_seconds:g}) needs {math.ceil(bins):.4g} bins over the "
                f"{self.observation_window:g} s window, more than MAX_COUNT_BINS = {MAX_COUNT_BINS:g}; "
                f"use bin_seconds >= "
                f"{self.observation_window / MAX_COUNT_BINS:.3g}"
            )
        nbins = max(1, math.ceil(bins))
        index = np.minimum(((times - times[0]) / bin_seconds).astype(np.int64), nbins - 1)
        return np.bincount(index, minlength=nbins)

    def arrival_rate_interval(
        self, level: float = DEFAULT_LEVEL, bin_seconds: float = 1.0, batches: int = 20, per: str = "second"
    ) -> Interval:
        r"""Batch-means confidence interval of the arrival rate.

        The counts :math:`N_b` per bin of :math:`h` seconds are cut into ``batches``
        contiguous batches; the Student interval on the batch means (Law 2015, section
        9.5.3; :func:`~queueing_llm.stats.batch_means_ci`) divided by :math:`h`. Unlike the
        Poisson interval it stays honest for bursty traffic (over-dispersed counts).
        """
        if per not in _PER:
            raise TraceError(f"per must be one of {', '.join(_PER)}, got {describe(per)}")
        ci = batch_means_ci(self.counts(bin_seconds), level=level, batches=batches)
        f = _PER[per] / bin_seconds
        return Interval(ci.estimate * f, ci.low * f, ci.high * f, ci.level, ci.method, ci.n)

    # -- laws ---------------------------------------------------------------------
    def _lengths(self, data: np.ndarray, what: str, max_value: int | None, scale: int) -> np.ndarray:
        if max_value is not None and (
            isinstance(max_value, bool) or not isinstance(max_value, (int, np.integer))
            or not 1 <= max_value <= MAX_INTEGER
        ):
            raise TraceError(
                f"{what} max_value must be an integer >= 1 or None (at most 2^53), got {describe(max_value)}"
            )
        if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or not 1 <= scale <= MAX_INTEGER:
            raise TraceError(
                f"{what} scale must be an integer >= 1 (tokens per block, at most 2^53), got {describe(scale)}"
            )
        out = data if max_value is None else np.minimum(data, int(max_value))
        return -(-out // int(scale))  # ceil(out / scale)

    def prompt_law(self, max_value: int | None = None, scale: int = 1) -> Empirical:
        r"""Empirical law of the prompt length :math:`l_0`.

        :math:`\hat P(l_0 = v) = \frac1n \#\{i : \lceil \min(l_{0,i}, m) / s \rceil = v\}`,
        exact rationals, with :math:`m` = ``max_value`` (no clipping if None) and :math:`s` =
        ``scale``. With :math:`s = 1` and no clipping its mean is the data mean exactly.

        Parameters
        ----------
        max_value : int or None
            Clip lengths above this many tokens to it (keeps :math:`M` finite and small).
        scale : int
            Tokens per block: lengths are counted in blocks of ``scale`` tokens, rounded up
            (no request shrinks to nothing, memory is not underestimated). A model built
            from scaled laws measures memory in blocks (give ``kv_capacity`` in blocks) and
            one of its iterations stands for ``scale`` decode steps.
        """
        return Empirical(self._lengths(self.prompt_tokens, "prompt_law", max_value, scale))

    def decode_law(self, max_value: int | None = None, scale: int = 1) -> Empirical:
        r"""Empirical law of the decode length :math:`l_1` (output tokens = iterations).

        :math:`\hat P(l_1 = v) = \frac1n \#\{i : \lceil \min(l_{1,i}, m) / s \rceil = v\}`
        (exact rationals; the data mean exactly when unclipped and unscaled). Parameters
        as in :meth:`prompt_law`. The model needs :math:`l_1 \ge 1`: a request with no
        output token raises :class:`~queueing_llm.errors.TraceError` (drop them with
        :meth:`subset`).
        """
        zero = np.flatnonzero(self.output_tokens == 0)
        if zero.size:
            raise TraceError(
                f"trace {self.name!r}: the model needs decode lengths >= 1, but {zero.size} request(s) have "
                f"0 output tokens (first at request {int(zero[0])}); drop them with "
                "trace.subset(trace.output_tokens > 0)"
            )
        return Empirical(self._lengths(self.output_tokens, "decode_law", max_value, scale))

    def request_type(
        self,
        iteration_seconds: float | None = None,
        *,
        max_prompt: int | None = None,
        max_decode: int | None = None,
        scale: int = 1,
    ) -> RequestType:
        r"""A :class:`~queueing_llm.model.RequestType` with this trace's laws and arrival rate.

        Prompt and decode are :meth:`prompt_law` and :meth:`decode_law` (independent, as the
        model assumes; see :meth:`summary` for the measured correlation). Arrivals:

        * ``iteration_seconds=None``: ``PoissonProcess(λ̂)`` in seconds (wall-clock mode;
          the model then needs ``iteration_time=ql.LinearIterationTime(d0, d1)``);
        * ``iteration_seconds=τ``: ``Poisson(λ̂ τ s)`` arrivals per iteration (slotted mode,
          the model chapter, section 4), :math:`\tau` the seconds of one decode step and :math:`s`
          = ``scale`` decode steps per model iteration.

        A length-only trace (no arrival times) gives ``arrivals=None`` (saturated models).
        """
        prompt = self.prompt_law(max_prompt, scale)
        decode = self.decode_law(max_decode, scale)
        if self.arrival_times is None:
            if iteration_seconds is not None:
                raise TraceError(
                    f"trace {self.name!r} has no arrival times; iteration_seconds={iteration_seconds!r} "
                    "cannot give an arrival rate (use iteration_seconds=None for a saturated-only type)"
                )
            return RequestType(prompt=prompt, decode=decode)
        rate = self.arrival_rate()
        if iteration_seconds is None:
            return RequestType(prompt=prompt, decode=decode, arrivals=PoissonProcess(rate))
        if (
            isinstance(iteration_seconds, bool)
            or not isinstance(iteration_seconds, (int, float))
            or not math.isfinite(iteration_seconds)
            or iteration_seconds <= 0
        ):
            raise TraceError(
                f"iteration_seconds must be a number of seconds > 0 or None, got {describe(iteration_seconds)}"
            )
        return RequestType(prompt=prompt, decode=decode, arrivals=Poisson(rate * iteration_seconds * int(scale)))

    # -- description --------------------------------------------------------------
    def summary(self, quantiles: Sequence[float] = (0.5, 0.9, 0.99)) -> dict[str, Any]:
        r"""Numbers that describe the trace, as a JSON-ready dict.

        Keys: ``name``, ``source``, ``count``; ``prompt`` and ``output`` (each ``mean``,
        ``std``, ``min``, ``max`` and the quantiles ``p50``, ``p90``, ``p99``);
        ``correlation`` (Pearson :math:`r` and Spearman :math:`\rho` of prompt vs output;
        the model assumes independence, i.e. 0); with arrivals: ``span_seconds``,
        ``window_seconds``, ``rate_per_second`` (:math:`n/T`), ``interarrival_cv`` (the
        coefficient of variation of the gaps :math:`t_{i+1} - t_i`, 1 for Poisson) and
        ``dispersion_per_second`` (variance over mean of the counts per second, 1 for
        Poisson; None when the window exceeds :data:`MAX_COUNT_BINS` seconds).
        """
        from scipy import stats as st

        def describe_lengths(x: np.ndarray) -> dict[str, float]:
            out = {"mean": float(x.mean()), "std": float(x.std()), "min": int(x.min()), "max": int(x.max())}
            for q in quantiles:
                out[f"p{100 * q:g}"] = float(np.quantile(x, q))
            return out

        p, o = self.prompt_tokens, self.output_tokens
        varies = p.min() != p.max() and o.min() != o.max()
        result: dict[str, Any] = {
            "name": self.name,
            "source": self.source,
            "count": len(self),
            "prompt": describe_lengths(p),
            "output": describe_lengths(o),
            "correlation": {
                "pearson": float(np.corrcoef(p, o)[0, 1]) if varies else math.nan,
                "spearman": float(st.spearmanr(p, o).statistic) if varies else math.nan,
            },
        }
        if self.arrival_times is not None and len(self) >= 2 and self.observation_window > 0:
            gaps = np.diff(self.arrival_times)
            dispersion = None  # a window longer than MAX_COUNT_BINS seconds (a far-off timestamp): no histogram
            if self.observation_window <= MAX_COUNT_BINS:
                counts = self.counts(1.0)
                dispersion = float(counts.var() / counts.mean())
            result.update(
                span_seconds=self.span,
                window_seconds=self.observation_window,
                rate_per_second=self.arrival_rate(),
                interarrival_cv=float(gaps.std() / gaps.mean()) if gaps.mean() > 0 else math.nan,
                dispersion_per_second=dispersion,
            )
        return result

    # -- parts --------------------------------------------------------------------
    def subset(self, mask: Any, name: str | None = None) -> Trace:
        """The requests selected by a boolean mask (or index array), keeping this trace's window."""
        idx = np.asarray(mask)
        if idx.dtype == bool and idx.shape != self.prompt_tokens.shape:
            raise TraceError(f"subset mask must have one entry per request ({len(self)}), got shape {idx.shape}")
        times = None if self.arrival_times is None else self.arrival_times[idx]
        window = None if self.arrival_times is None else self.observation_window
        return Trace(
            times,
            self.prompt_tokens[idx],
            self.output_tokens[idx],
            name=self.name if name is None else name,
            source=self.source,
            window=window,
        )

    def split(self, thresholds: Iterable[int], by: str = "prompt") -> tuple[Trace, ...]:
        r"""Split into request types by prompt (or output) length.

        Thresholds :math:`c_1 < \dots < c_m` give :math:`m + 1` parts
        :math:`\{l < c_1\}, \{c_1 \le l < c_2\}, \dots, \{l \ge c_m\}`; each part keeps the
        parent's window, so its :meth:`arrival_rate` is its share of the parent's rate and
        the rates add up. Empty parts raise :class:`~queueing_llm.errors.TraceError`.
        """
        if by not in ("prompt", "output"):
            raise TraceError(f"split by must be 'prompt' or 'output', got {describe(by)}")
        cuts = [int(c) for c in thresholds]
        if not cuts or any(b <= a for a, b in zip(cuts, cuts[1:], strict=False)):
            raise TraceError(f"split thresholds must be a non-empty increasing list of integers, got {cuts!r}")
        data = self.prompt_tokens if by == "prompt" else self.output_tokens
        part = np.searchsorted(np.asarray(cuts), data, side="right")
        bounds = [None, *cuts, None]
        parts = []
        for k in range(len(cuts) + 1):
            lo, hi = bounds[k], bounds[k + 1]
            label = f"{'' if lo is None else lo}<={by}" if hi is None else f"{by}<{hi}"
            if lo is not None and hi is not None:
                label = f"{lo}<={by}<{hi}"
            mask = part == k
            if not mask.any():
                raise TraceError(f"trace {self.name!r}: the part {label} of split({cuts!r}, by={by!r}) is empty")
            parts.append(self.subset(mask, name=f"{self.name}[{label}]"))
        return tuple(parts)


# -- loading ---------------------------------------------------------------------------
class _Source:
    """A readable trace: a file path or a packaged resource, with the name used in messages."""

    def __init__(self, label: str, opener: Callable[[], io.TextIOBase], suffix: str) -> None:
        self.label = label
        self.open = opener
        self.suffix = suffix


def _fail(src: _Source, problem: str) -> TraceError:
    return TraceError(f"trace file {src.label}: {problem}")


@contextlib.contextmanager
def _field_limit(limit: int) -> Any:
    """Python's csv field limit raised to ``limit`` inside the block (restored after)."""
    old = csv.field_size_limit(limit)
    try:
        yield
    finally:
        csv.field_size_limit(old)


def _read_csv(src: _Source) -> tuple[list[str], list[list[str]]]:
    with src.open() as handle, _field_limit(MAX_FIELD):
        try:
            rows = list(csv.reader(handle))
        except csv.Error as exc:
            raise _fail(src, f"is not a readable CSV file ({exc}; fields up to {MAX_FIELD} characters)") from None
    while rows and not any(cell.strip() for cell in rows[-1]):
        rows.pop()  # trailing blank lines
    if not rows:
        raise _fail(src, "is empty (no header, no requests)")
    header = [cell.strip() for cell in rows[0]]
    data = rows[1:]
    if not data:
        raise _fail(src, f"is an empty trace: a header ({', '.join(header)}) but no requests")
    for i, row in enumerate(data):
        if len(row) != len(header):
            raise _fail(src, f"line {i + 2} has {len(row)} fields, the header has {len(header)}")
    return header, data


def _column(src: _Source, header: list[str], data: list[list[str]], column: str) -> list[str]:
    if column not in header:
        raise _fail(src, f"missing column {column!r}; columns found: {', '.join(header) or '(none)'}")
    j = header.index(column)
    return [row[j].strip() for row in data]


def _numbers(
    src: _Source, column: str, cells: Sequence[Any], *, integer: bool, lines: Sequence[int] | None = None
) -> np.ndarray:
    """Parse a column of numbers; ``lines[i]`` is the file line of value ``i`` (CSV: ``i + 2``)."""
    values = np.empty(len(cells), dtype=float)
    for i, cell in enumerate(cells):
        line = i + 2 if lines is None else lines[i]
        try:
            if isinstance(cell, bool):
                raise ValueError
            v = float(cell)
        except (TypeError, ValueError):
            raise _fail(
                src, f"line {line}: column {column!r} has a non-numeric value {describe(cell)}"
            ) from None
        if not math.isfinite(v):
            raise _fail(src, f"line {line}: column {column!r} has a non-finite value {describe(cell)}")
        if v < 0:
            raise _fail(src, f"line {line}: column {column!r} has a negative value {describe(cell)}")
        if integer and v > MAX_INTEGER:
            raise _fail(src, f"line {line}: column {column!r} has {describe(cell)} tokens, more than 2^53")
        if integer and v != round(v):
            raise _fail(src, f"line {line}: column {column!r} must hold token counts, got {describe(cell)}")
        values[i] = v
    return values.astype(np.int64) if integer else values


def _timestamps(src: _Source, cells: list[str]) -> np.ndarray:
    """Seconds since the first row of ``YYYY-MM-DD HH:MM:SS.fffffff`` timestamps.

    Parsed in microseconds first (any year 1 to 9999), then in nanoseconds when every stamp
    lies in nanoseconds' range (years 1678-2262) and the span fits, so dates outside that
    range are converted right (to the microsecond) instead of wrapping around."""
    stamps = _parse_stamps(src, cells, "us")
    span_us = int((stamps.max() - stamps.min()).astype(np.int64))
    low, high = np.datetime64("1678-01-01", "us"), np.datetime64("2262-01-01", "us")
    if stamps.min() > low and stamps.max() < high and span_us < 2**62 // 1000:
        stamps = _parse_stamps(src, cells, "ns")
        return (stamps - stamps.min()).astype(np.int64) / 1e9
    return (stamps - stamps.min()).astype(np.int64) / 1e6


def _parse_stamps(src: _Source, cells: list[str], unit: str) -> np.ndarray:
    try:
        stamps = np.array(cells, dtype=f"datetime64[{unit}]")
    except (ValueError, OverflowError):
        for i, cell in enumerate(cells):
            try:
                np.datetime64(cell, unit)
            except (ValueError, OverflowError):
                raise _fail(
                    src, f"line {i + 2}: column 'TIMESTAMP' has a value {describe(cell)} that is not a date-time"
                ) from None
        raise  # pragma: no cover - the loop finds the culprit
    if np.any(np.isnat(stamps)):
        i = int(np.flatnonzero(np.isnat(stamps))[0])
        raise _fail(src, f"line {i + 2}: column 'TIMESTAMP' has a value {describe(cells[i])} that is not a date-time")
    return stamps


def _lines_text(lines: np.ndarray) -> str:
    shown = ", ".join(str(int(x)) for x in lines[:5])
    return shown + (f" and {lines.size - 5} more" if lines.size > 5 else "")


def _sorted_trace(times: np.ndarray | None, prompt: np.ndarray, output: np.ndarray,
                  lines: Sequence[int] | None = None, src: _Source | None = None, **kw: Any) -> Trace:
    """The trace sorted by arrival time; a :class:`TraceWarning` for rows out of order and for
    a far-off timestamp (one gap holding more than :data:`FAR_OFF` of the span)."""
    if times is not None:
        line_of = np.arange(2, times.size + 2) if lines is None else np.asarray(lines)
        label = "the trace" if src is None else f"trace file {src.label}"
        back = np.flatnonzero(np.diff(times) < 0) + 1
        if back.size:
            warnings.warn(
                f"{label}: {back.size} row(s) arrive before the row above them (line(s) {_lines_text(line_of[back])}); "
                "sorted by arrival time",
                TraceWarning, stacklevel=4,
            )
        order = np.argsort(times, kind="stable")
        times, prompt, output = times[order], prompt[order], output[order]
        line_of = line_of[order]
        if times.size >= 3:
            gaps = np.diff(times)
            span = float(times[-1] - times[0])
            g = int(np.argmax(gaps))
            if span > 0 and gaps[g] > FAR_OFF * span:
                far = line_of[: g + 1] if g + 1 <= times.size - g - 1 else line_of[g + 1:]
                rest = float(times[g] - times[0]) if g + 1 > times.size - g - 1 else float(times[-1] - times[g + 1])
                warnings.warn(
                    f"{label}: the timestamps of line(s) {_lines_text(far)} lie far from the others: they stretch the "
                    f"span to {span:.6g} s against {rest:.6g} s for the other {times.size - far.size} rows, so the "
                    "arrival rate n/T is far too small; drop them (Trace.subset) or pass a window",
                    TraceWarning, stacklevel=4,
                )
    return Trace(times, prompt, output, **kw)


def _load_azure(src: _Source, **kw: Any) -> Trace:
    header, data = _read_csv(src)
    stamps = _column(src, header, data, "TIMESTAMP")
    prompt_cells = _column(src, header, data, "ContextTokens")
    output_cells = _column(src, header, data, "GeneratedTokens")
    prompt = _numbers(src, "ContextTokens", prompt_cells, integer=True)
    output = _numbers(src, "GeneratedTokens", output_cells, integer=True)
    return _sorted_trace(_timestamps(src, stamps), prompt, output, src=src, **kw)


def _load_columns(src: _Source, prompt_col: str, decode_col: str, time_col: str, **kw: Any) -> Trace:
    """A CSV with integer prompt and decode columns and an optional arrival-time column."""
    header, data = _read_csv(src)
    prompt = _numbers(src, prompt_col, _column(src, header, data, prompt_col), integer=True)
    output = _numbers(src, decode_col, _column(src, header, data, decode_col), integer=True)
    times = None
    if time_col in header:
        times = _numbers(src, time_col, _column(src, header, data, time_col), integer=False)
    return _sorted_trace(times, prompt, output, src=src, **kw)


def _load_vidur(src: _Source, **kw: Any) -> Trace:
    return _load_columns(src, "num_prefill_tokens", "num_decode_tokens", "arrived_at", **kw)


def _load_generic(src: _Source, **kw: Any) -> Trace:
    return _load_columns(src, "prompt", "decode", "arrival", **kw)


def _load_mooncake(src: _Source, **kw: Any) -> Trace:
    fields = ("timestamp", "input_length", "output_length")
    columns: dict[str, list[Any]] = {f: [] for f in fields}
    lines: list[int] = []
    with src.open() as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise _fail(src, f"line {number} is not valid JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise _fail(src, f"line {number} is not a JSON object, got {describe(record)}")
            for f in fields:
                if f not in record:
                    found = ", ".join(record) or "(none)"
                    raise _fail(src, f"line {number}: missing field {f!r}; fields found: {found}")
                columns[f].append(record[f])
            lines.append(number)
    if not lines:
        raise _fail(src, "is an empty trace: no requests")

    times = _numbers(src, "timestamp", columns["timestamp"], integer=False, lines=lines) / 1000.0
    prompt = _numbers(src, "input_length", columns["input_length"], integer=True, lines=lines)
    output = _numbers(src, "output_length", columns["output_length"], integer=True, lines=lines)
    return _sorted_trace(times, prompt, output, lines=lines, src=src, **kw)


_LOADERS: dict[str, Callable[..., Trace]] = {
    "azure": _load_azure,
    "mooncake": _load_mooncake,
    "vidur": _load_vidur,
    "csv": _load_generic,
}


def _detect(src: _Source) -> str:
    if src.suffix in (".jsonl", ".json"):
        return "mooncake"
    with src.open() as handle:
        first = handle.readline()
    header = [cell.strip() for cell in next(csv.reader([first]), [])]
    if "TIMESTAMP" in header:
        return "azure"
    if "num_prefill_tokens" in header:
        return "vidur"
    if "prompt" in header or "decode" in header:
        return "csv"
    raise _fail(
        src,
        f"unknown trace format: cannot tell it from the columns found ({', '.join(header) or 'none'}); "
        f"pass format= one of {', '.join(FORMATS)}",
    )


def _encoding(path: Path) -> str:
    """UTF-8 (with or without a byte-order mark) or UTF-16 with a byte-order mark; a file
    that looks like UTF-16 without one (NUL bytes) is refused with what to do."""
    try:
        with path.open("rb") as fh:
            head = fh.read(4096)
    except OSError as err:
        raise TraceError(f"trace file {path}: cannot be read ({err.strerror or err})") from None
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) and not head.startswith(codecs.BOM_UTF32_LE):
        return "utf-16"
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)) or b"\x00" in head:
        raise TraceError(
            f"trace file {path}: is not UTF-8 text (it holds NUL bytes: UTF-16 or UTF-32 without a byte-order mark, "
            "or a binary file); save it as UTF-8 (or UTF-16 with a byte-order mark)"
        )
    return "utf-8-sig"


def _source_of(path_or_name: str | Path) -> tuple[_Source, str, str]:
    """The source, the trace's name and its attribution."""
    if isinstance(path_or_name, str) and path_or_name in _BUILTIN:
        folder, filename, attribution = _BUILTIN[path_or_name]
        resource = resources.files("queueing_llm") / "data" / folder / filename

        def open_resource() -> io.TextIOBase:
            return resource.open("r", encoding="utf-8-sig", newline="")

        src = _Source(f"{path_or_name} (packaged {folder}/{filename})", open_resource, ".csv")
        return src, path_or_name, attribution
    if not isinstance(path_or_name, (str, Path)):
        raise TraceError(
            f"load_trace needs a file path or a built-in name ({', '.join(_BUILTIN)}), got {describe(path_or_name)}"
        )
    path = Path(path_or_name)
    if not path.is_file():
        raise TraceError(f"trace file {path}: no such file (built-in traces: {', '.join(_BUILTIN)})")

    encoding = _encoding(path)

    def open_file() -> io.TextIOBase:
        return path.open("r", encoding=encoding, newline="")

    source = _KNOWN_FILES.get(path.name, str(path))
    return _Source(str(path), open_file, path.suffix.lower()), path.stem, source


def load_trace(path_or_name: str | Path, format: str | None = None) -> Trace:
    r"""Read a request trace from a file or load a built-in one.

    Parameters
    ----------
    path_or_name : str or pathlib.Path
        A built-in name (``"azure-code"``, ``"azure-conv"``: the Azure LLM inference trace
        2023 [PCZ+24], shipped in the package) or the path of a trace file.
    format : {"azure", "mooncake", "vidur", "csv"} or None
        The file's layout (module docstring); ``None`` guesses it from the suffix
        (``.jsonl``: mooncake) and the CSV header.

    Returns
    -------
    Trace
        Requests sorted by arrival time (stable), arrival times in seconds: since the first
        request for Azure timestamps, the file's milliseconds / 1000 for Mooncake, as given
        otherwise.

    Raises
    ------
    TraceError
        Naming the file and the problem: no such file, unknown format, a missing column
        (with the columns found), a non-numeric or negative value (with its line), an
        empty trace.
    """
    src, name, attribution = _source_of(path_or_name)
    try:
        if format is None:
            format = _detect(src)
        if not isinstance(format, str) or format not in _LOADERS:
            raise _fail(src, f"unknown format {describe(format)}; formats: {', '.join(FORMATS)}")
        return _LOADERS[format](src, name=name, source=attribution)
    except UnicodeDecodeError as exc:
        raise _fail(
            src, f"is not UTF-8 text (undecodable byte {exc.object[exc.start:exc.start + 1]!r} at byte {exc.start} of "
            f"a read block); save it as UTF-8 (or UTF-16 with a byte-order mark)"
        ) from None
    except OSError as err:
        raise _fail(src, f"cannot be read ({err.strerror or err})") from None
