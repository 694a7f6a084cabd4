r"""Models written as text: the law syntax of ``--type``, model spec files (TOML), grid keys.

The command line (:mod:`queueing_llm.cli`) describes a model in text; this module turns
that text into a :class:`~queueing_llm.model.ContinuousBatching` and nothing else. The
same rules serve ``--type``, ``--trace``, a spec file (``--model FILE``) and the keys of
``queueing-llm sweep --grid``; ``docs/cli.md`` is the user's page.

Laws
----
A prompt or decode length (:math:`l_0`, :math:`l_1`, the model chapter, section 1) or an arrival law
is written as

=============================  ===============================================================
text                           value
=============================  ===============================================================
``40``                         the constant 40 (:class:`~queueing_llm.laws.Deterministic`)
``geometric:0.25``             :class:`~queueing_llm.laws.Geometric` with :math:`q = 0.25`
``poisson:1.5``                :class:`~queueing_llm.laws.Poisson` of mean 1.5
``bernoulli:0.3``              :class:`~queueing_llm.laws.Bernoulli` with :math:`p = 0.3`
``binomial:5:0.2``             :class:`~queueing_llm.laws.Binomial` with :math:`n = 5`, :math:`p = 0.2`
``binomial(5,0.2)``            the same (every law also takes the call form ``name(a,b)``)
``deterministic:3``            the constant 3
``pmf:{2:0.5,4:0.5}``          :class:`~queueing_llm.laws.FinitePMF`: value ``:`` probability
``empirical:[3,5,5,8]``        :class:`~queueing_llm.laws.Empirical` of the observations
=============================  ===============================================================

Numbers are integers (``40``, ``1_000``), decimals (``0.25``, ``1e-3``) or exact fractions
(``1/4``, kept as :class:`sympy.Rational` so the theory stays exact). An *arrival* field
also takes a bare number (Poisson arrivals with that mean per iteration, as in the Python
API), ``process:2.0`` (:class:`~queueing_llm.model.PoissonProcess`: 2 requests per second,
wall-clock mode, needs ``iteration_time``) and ``none`` (no arrivals: saturated runs only).

A request type on the command line is ``PROMPT,DECODE[,ARRIVALS]``: commas inside
braces, brackets or parentheses do not split it (``--type "2,pmf:{2:0.5,4:0.5},1.5"``).

Spec files
----------
A TOML file (Python 3.11's :mod:`tomllib`, ``tomli`` on 3.10) with the model's keys at the
top level, ``[[types]]`` (or one ``[trace]``), and optional ``[run]`` and ``[grid]``
tables::

    kv_capacity = 2000              # inf (TOML's inf) for no memory limit
    batch_cap = 64                  # default inf
    policy = "greedy"               # or "rate_limited(1.5)", "reserve", "static", "fcfs_cap"

    [[types]]
    prompt = 10
    decode = "pmf:{20:1/2,60:1/2}"
    arrivals = 1.2                  # Poisson per iteration; or "bernoulli:0.3", ...

    [run]                           # defaults of the command's options
    iterations = 20000
    seed = 1

    [grid]                          # axes of `queueing-llm sweep`
    arrivals = [0.8, 1.0, 1.2]

Errors
------
Every mistake raises :class:`SpecError` (a :class:`~queueing_llm.errors.ParameterError`,
so a :class:`~queueing_llm.errors.ModelError`) or the model's own error, prefixed with
where it was found (``--type '2,geometric:2'``, ``model.toml: types[0]``) and naming the
field, the value and what is allowed.
"""

from __future__ import annotations

import copy
import functools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sympy as sp

from .errors import ModelError, ParameterError, describe
from .laws import Bernoulli, Binomial, Deterministic, Empirical, FinitePMF, Geometric, Law, Poisson
from .model import ContinuousBatching, LinearIterationTime, PoissonProcess, RequestType, default_model
from .policies import Policy

__all__ = [
    "SpecError",
    "SpecFile",
    "LAW_NAMES",
    "MODEL_KEYS",
    "TYPE_KEYS",
    "TRACE_KEYS",
    "RUN_KEYS",
    "split_fields",
    "parse_number",
    "parse_law",
    "parse_arrivals",
    "parse_type",
    "build_type",
    "parse_grid",
    "load_spec",
    "build_model",
    "with_value",
    "law_text",
]

INT_MAX = 2**63 - 1
"""Largest integer a field takes (the simulators count in 64-bit integers)."""

MODEL_KEYS = ("types", "trace", "kv_capacity", "batch_cap", "waiting_cap", "policy", "mix",
              "admit_after_eviction", "iteration_time")
"""Keys of a model spec (the top level of a spec file)."""

TYPE_KEYS = ("prompt", "decode", "arrivals")
"""Keys of one ``[[types]]`` entry."""

TRACE_KEYS = ("source", "format", "iteration_seconds", "max_prompt", "max_decode", "scale", "split", "split_by")
"""Keys of the ``[trace]`` table (options of :meth:`queueing_llm.traces.Trace.request_type`)."""

RUN_KEYS = ("iterations", "seed", "warmup", "engine", "saturated", "level", "replications", "theorems")
"""Keys of the ``[run]`` table: defaults of the command's options of the same names."""

_TYPE_ALIASES = {"rate": "arrivals"}


class SpecError(ParameterError):
    """A model written as text (a ``--type``, a spec file, a grid key) that cannot be read."""


# -- text ----------------------------------------------------------------------------------

_OPEN = {"(": ")", "[": "]", "{": "}"}


def split_fields(text: str, sep: str = ",") -> list[str]:
    """Split ``text`` on ``sep`` outside parentheses, brackets and braces; strip the parts.

    ``split_fields("2,pmf:{2:0.5,4:0.5},1.5")`` is ``["2", "pmf:{2:0.5,4:0.5}", "1.5"]``.

    Raises
    ------
    SpecError
        Unbalanced brackets.
    """
    parts: list[str] = []
    depth: list[str] = []
    current: list[str] = []
    for ch in text:
        if ch in _OPEN:
            depth.append(_OPEN[ch])
        elif ch in _OPEN.values():
            if not depth or depth.pop() != ch:
                raise SpecError(f"unbalanced {ch!r} in {text!r}")
        if ch == sep and not depth:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    if depth:
        raise SpecError(f"unclosed {''.join(reversed(depth))!r} in {text!r}")
    parts.append("".join(current).strip())
    return parts


_FRACTION = re.compile(r"^\s*([+-]?\d+)\s*/\s*(\d+)\s*$")


def parse_number(value: Any, name: str, *, integer: bool = False, allow_inf: bool = False) -> Any:
    """A number from text (or a number given as is), checked to be finite and not too large.

    Parameters
    ----------
    value : str, int, float or sympy.Rational
        ``"40"``, ``"1_000"``, ``"0.25"``, ``"1e-3"``, ``"1/4"`` (an exact
        :class:`sympy.Rational`), ``"inf"`` (only with ``allow_inf``).
    name : str
        The field's name, for the error message.
    integer : bool
        Require an integer (``"1e3"`` is accepted as 1000).
    allow_inf : bool
        Accept ``inf`` (``math.inf``).

    Returns
    -------
    int, float or sympy.Rational

    Raises
    ------
    SpecError
        Not a number, NaN, an infinity not allowed, a non-integer where an integer is
        needed, or an integer beyond :math:`2^{63} - 1`.
    """
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, (str, int, float, sp.Rational)):
        raise SpecError(f"{name} must be {kind}, got {describe(value)}")
    number: Any = value
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in ("inf", "+inf", "infinity"):
            number = math.inf
        else:
            match = _FRACTION.match(text)
            if match:
                if int(match.group(2)) == 0:
                    raise SpecError(f"{name} = {text!r} divides by zero")
                number = sp.Rational(int(match.group(1)), int(match.group(2)))
                if number.q == 1:
                    number = int(number)
            else:
                try:
                    number = int(text)
                except ValueError:
                    try:
                        number = float(text)
                    except ValueError:
                        raise SpecError(f"{name} must be {kind}, got {text!r}") from None
    if isinstance(number, float):
        if math.isnan(number):
            raise SpecError(f"{name} must be {kind}, got nan")
        if math.isinf(number):
            if allow_inf and number > 0:
                return math.inf
            raise SpecError(f"{name} must be finite, got {number}")
        if integer:
            if not number.is_integer():
                raise SpecError(f"{name} must be {kind}, got {number!r}")
            if abs(number) > INT_MAX:
                raise SpecError(f"{name} = {number:g} is too large (at most 2**63 - 1 = {INT_MAX})")
            number = int(number)
    if isinstance(number, sp.Rational) and integer and number.q != 1:
        raise SpecError(f"{name} must be {kind}, got {number}")
    if isinstance(number, int) and abs(number) > INT_MAX:
        raise SpecError(f"{name} = {number} is too large (at most 2**63 - 1 = {INT_MAX})")
    return number


# -- laws ----------------------------------------------------------------------------------

LAW_NAMES = {
    "deterministic": ("value",),
    "poisson": ("mean",),
    "bernoulli": ("p",),
    "binomial": ("n", "p"),
    "geometric": ("q",),
    "pmf": ("{value:probability,...}",),
    "empirical": ("[observation,...]",),
}
"""Law names of the text syntax and their parameters (``geometric:0.25``)."""

_ALIASES = {"det": "deterministic", "constant": "deterministic", "geom": "geometric", "finite": "pmf"}
_NAME = re.compile(r"^([A-Za-z_][A-Za-z_-]*)\s*(?:(:)|(\())")


def _law_call(text: str, field_name: str) -> tuple[str, str, list[str]] | None:
    """``(law, argument text, arguments)`` of ``law:a:b`` or ``law(a,b)``; None for a bare value."""
    match = _NAME.match(text)
    if not match:
        return None
    law = match.group(1).lower()
    rest = text[match.end():].strip()
    if match.group(3):  # law( ... )
        if not rest.endswith(")"):
            raise SpecError(f"{field_name}: {text!r} opens '(' without closing it at the end")
        inner = rest[:-1].strip()
        return law, inner, split_fields(inner, ",") if inner else []
    if law in ("pmf", "finite", "empirical"):
        return law, rest, [rest]
    return law, rest, split_fields(rest, ":")


def _pmf(arg: str, name: str) -> FinitePMF:
    body = arg.strip()
    if not (body.startswith("{") and body.endswith("}")):
        raise SpecError(f"{name}: pmf needs {{value:probability,...}}, e.g. pmf:{{2:0.5,4:0.5}}, got {arg!r}")
    pairs = []
    for item in split_fields(body[1:-1], ","):
        if not item:
            continue
        parts = split_fields(item, ":")
        if len(parts) != 2:
            raise SpecError(f"{name}: each pmf entry must be value:probability, got {item!r}")
        pairs.append((parse_number(parts[0], f"{name} pmf value", integer=True),
                      parse_number(parts[1], f"{name} probability of {parts[0]}")))
    return FinitePMF(pairs)


def _empirical(arg: str, name: str) -> Empirical:
    body = arg.strip()
    if not (body.startswith("[") and body.endswith("]")):
        raise SpecError(f"{name}: empirical needs [observation,...], e.g. empirical:[3,5,5,8], got {arg!r}")
    items = [s for s in split_fields(body[1:-1], ",") if s]
    return Empirical([parse_number(s, f"{name} observation", integer=True) for s in items])


def _named_law(text: str, name: str) -> Law | None:
    """The law written ``text`` (None if it is a bare value); a law's own range error
    (:class:`~queueing_llm.errors.LawError`) is prefixed with the field ``name``."""
    try:
        return _build_law(text, name)
    except SpecError:
        raise
    except ModelError as err:
        raise type(err)(f"{name}: {err}") from None


def _build_law(text: str, name: str) -> Law | None:
    call = _law_call(text, name)
    if call is None:
        return None
    law, arg, args = call
    law = _ALIASES.get(law, law)
    if law not in LAW_NAMES:
        raise SpecError(f"{name}: unknown law {call[0]!r} in {text!r}; laws: {', '.join(LAW_NAMES)}")
    if law == "pmf":
        return _pmf(arg, name)
    if law == "empirical":
        return _empirical(arg, name)
    params = LAW_NAMES[law]
    if len(args) != len(params) or any(a == "" for a in args):
        raise SpecError(f"{name}: {law} takes {len(params)} parameter(s) ({', '.join(params)}), "
                        f"e.g. {_example(law)}, got {text!r}")
    if law == "deterministic":
        return Deterministic(parse_number(args[0], f"{name} deterministic value", integer=True))
    if law == "poisson":
        return Poisson(parse_number(args[0], f"{name} Poisson mean"))
    if law == "bernoulli":
        return Bernoulli(parse_number(args[0], f"{name} Bernoulli p"))
    if law == "binomial":
        return Binomial(parse_number(args[0], f"{name} Binomial n", integer=True),
                        parse_number(args[1], f"{name} Binomial p"))
    return Geometric(parse_number(args[0], f"{name} Geometric q"))


def _example(law: str) -> str:
    return {"deterministic": "deterministic:3", "poisson": "poisson:1.5", "bernoulli": "bernoulli:0.3",
            "binomial": "binomial:5:0.2", "geometric": "geometric:0.25"}[law]


def parse_law(value: Any, name: str) -> Any:
    """A prompt or decode length from text: a law, or an integer for a constant length.

    Parameters
    ----------
    value : str, int or Law
        ``"40"`` (kept as the number 40; :class:`~queueing_llm.model.RequestType` makes it
        :class:`~queueing_llm.laws.Deterministic` and checks its range), ``"geometric:0.25"``,
        ``"pmf:{2:0.5,4:0.5}"``, ... (module docstring); a :class:`~queueing_llm.laws.Law`
        passes through.
    name : str
        The field (``"prompt"``, ``"decode"``), for the error message.

    Raises
    ------
    SpecError, LawError
        Syntax (naming the field and the laws known) or a parameter out of range.
    """
    if isinstance(value, Law):
        return value
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise SpecError(f"{name} is empty; give an integer or a law such as geometric:0.25")
        law = _named_law(text, name)
        if law is not None:
            return law
    return parse_number(value, name, integer=False)


def parse_arrivals(value: Any, name: str = "arrivals") -> Any:
    """An arrival law from text: a number (Poisson per iteration), a law, ``process:RATE`` or ``none``.

    Parameters
    ----------
    value : str, number, Law, PoissonProcess or None
        ``"1.5"`` (Poisson, mean 1.5 per iteration), ``"bernoulli:0.3"``, ``"binomial:5:0.2"``,
        ``"pmf:{0:0.5,2:0.5}"``, ``"process:2.0"`` (a Poisson process of 2 per second:
        wall-clock mode), ``"none"`` (saturated-only type).
    name : str
        The field, for the error message.
    """
    if value is None or isinstance(value, (Law, PoissonProcess)):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in ("none", "-"):
            return None
        call = _law_call(text, name)
        if call is not None and call[0] == "process":
            if len(call[2]) != 1 or not call[2][0]:
                raise SpecError(f"{name}: process takes 1 parameter (requests per second), got {text!r}")
            rate = parse_number(call[2][0], f"{name} process rate")
            try:
                return PoissonProcess(rate)
            except ModelError as err:
                raise type(err)(f"{name}: {err}") from None
        if call is not None:
            return _named_law(text, name)
    return parse_number(value, f"{name} (Poisson rate per iteration)")


def parse_type(text: str) -> dict[str, str]:
    """``"PROMPT,DECODE[,ARRIVALS]"`` split into the fields of a ``[[types]]`` entry (text).

    ``parse_type("2,geometric:0.25,1.5")`` is
    ``{"prompt": "2", "decode": "geometric:0.25", "arrivals": "1.5"}``; the fields are read
    by :func:`build_model`.
    """
    if not isinstance(text, str):
        raise SpecError(f"a request type must be text PROMPT,DECODE[,ARRIVALS], got {describe(text)}")
    parts = split_fields(text, ",")
    if len(parts) not in (2, 3) or any(p == "" for p in parts):
        raise SpecError(
            f"--type must be PROMPT,DECODE or PROMPT,DECODE,ARRIVALS (e.g. 10,40,1.2 or "
            f"2,geometric:0.25,bernoulli:0.3), got {text!r}"
        )
    return dict(zip(TYPE_KEYS, parts, strict=False))


# -- law -> text (the inverse, for tables and provenance) -----------------------------------


def law_text(law: Any) -> Any:
    """The text form of a law (:func:`parse_law` reads it back), a number left as is.

    ``law_text(Geometric(0.25))`` is ``"geometric:0.25"``; a
    :class:`~queueing_llm.laws.Deterministic` gives its integer.
    """
    if isinstance(law, Deterministic):
        return law.value
    if isinstance(law, Poisson):
        return f"poisson:{law.mean_}"
    if isinstance(law, Bernoulli):
        return f"bernoulli:{law.p}"
    if isinstance(law, Binomial):
        return f"binomial:{law.n}:{law.p}"
    if isinstance(law, Geometric):
        return f"geometric:{law.q}"
    if isinstance(law, FinitePMF):
        return "pmf:{" + ",".join(f"{v}:{p}" for v, p in law.probabilities) + "}"
    if isinstance(law, PoissonProcess):
        return f"process:{law.rate}"
    return law


# -- spec files ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SpecFile:
    """A spec file read by :func:`load_spec`.

    Attributes
    ----------
    path : pathlib.Path
    model : dict
        The model's keys (:data:`MODEL_KEYS`), for :func:`build_model`.
    run : dict
        The ``[run]`` table (:data:`RUN_KEYS`).
    grid : dict
        The ``[grid]`` table: key -> list of values (``queueing-llm sweep``).
    """

    path: Path
    model: dict = field(default_factory=dict)
    run: dict = field(default_factory=dict)
    grid: dict = field(default_factory=dict)


def _toml():
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: the tomli backport (a dependency there)
        import tomli as tomllib
    return tomllib


def _unknown(keys: Any, allowed: tuple[str, ...], where: str) -> None:
    bad = [k for k in keys if k not in allowed]
    if bad:
        raise SpecError(_at(where, f"unknown key {bad[0]!r}; keys: {', '.join(allowed)}"))


def load_spec(path: str | Path) -> SpecFile:
    """Read a model spec file (TOML; layout in the module docstring).

    The keys are checked here (unknown keys are refused, listing the known ones); the
    values when the model is built (:func:`build_model`). A ``[trace]`` ``source`` that is
    a relative path is taken relative to the spec file's folder.

    Raises
    ------
    SpecError
        No such file, a file that is not UTF-8 TOML (with the parser's line and column),
        an unknown key or table, a ``[grid]`` axis that is not a non-empty list.
    """
    p = Path(path)
    label = str(p)
    try:
        raw = p.read_bytes()
    except OSError as err:
        raise SpecError(f"model spec {label}: cannot read it: {err.strerror or err}") from None
    try:
        data = _toml().loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise SpecError(f"model spec {label}: not UTF-8 text (a TOML file is UTF-8)") from None
    except ValueError as err:  # tomllib.TOMLDecodeError, with line and column
        raise SpecError(f"model spec {label}: not valid TOML: {err}") from None
    _unknown(data, (*MODEL_KEYS, "run", "grid"), f"model spec {label}")
    run = data.pop("run", {})
    grid = data.pop("grid", {})
    if not isinstance(run, dict):
        raise SpecError(f"model spec {label}: run must be a table [run], got {describe(run)}")
    _unknown(run, RUN_KEYS, f"model spec {label}: [run]")
    if not isinstance(grid, dict):
        raise SpecError(f"model spec {label}: grid must be a table [grid], got {describe(grid)}")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise SpecError(f"model spec {label}: [grid] {key} must be a non-empty list of values, "
                            f"got {describe(values)}")
    types = data.get("types")
    if types is not None:
        if isinstance(types, dict):
            types = data["types"] = [types]
        if not isinstance(types, list) or not types or not all(isinstance(t, dict) for t in types):
            raise SpecError(f"model spec {label}: types must be one or more [[types]] tables, got {describe(types)}")
        for k, t in enumerate(types):
            _unknown([_TYPE_ALIASES.get(key, key) for key in t], TYPE_KEYS, f"model spec {label}: types[{k}]")
    trace = data.get("trace")
    if trace is not None:
        if not isinstance(trace, dict):
            raise SpecError(f"model spec {label}: trace must be a table [trace], got {describe(trace)}")
        _unknown(trace, TRACE_KEYS, f"model spec {label}: [trace]")
        source = trace.get("source")
        if isinstance(source, str) and not _is_builtin(source) and not Path(source).is_absolute():
            trace["source"] = str(p.parent / source)
    return SpecFile(p, data, run, grid)


def _is_builtin(name: str) -> bool:
    from .traces import builtin_traces

    return name in builtin_traces()


# -- the model -----------------------------------------------------------------------------


def _default_spec() -> dict[str, Any]:
    """The embedded default model as a spec (its types as laws)."""
    m = default_model()
    return {"types": [{"prompt": t.prompt, "decode": t.decode, "arrivals": t.arrivals} for t in m.types],
            "kv_capacity": m.kv_capacity, "policy": m.policy}


def _with_defaults(spec: Mapping[str, Any]) -> dict[str, Any]:
    """``spec`` with the default model's types, KV budget and policy when it has no types or trace."""
    out = copy.deepcopy(dict(spec))
    if out.get("types") is None and out.get("trace") is None:
        out.pop("types", None)
        out.pop("trace", None)
        for key, value in _default_spec().items():
            out.setdefault(key, value)
    return out


def _prefixed(where: str, err: ModelError) -> ModelError:
    return type(err)(f"{where}: {err}") if where else err


def _at(where: str, what: str) -> str:
    return f"{where}: {what}" if where else what


def build_type(entry: Any, where: str = "") -> RequestType:
    """A :class:`~queueing_llm.model.RequestType` from a ``[[types]]`` table (or :func:`parse_type`'s dict).

    ``build_type({"prompt": "2", "decode": "geometric:0.25", "arrivals": "1.5"})`` is
    ``RequestType(2, Geometric(0.25), arrivals=1.5)``. Errors are prefixed by ``where``
    (``"--type '2,geometric:2'"``) and name the field.
    """
    if isinstance(entry, RequestType):
        return entry
    if not isinstance(entry, Mapping):
        raise SpecError(f"{where or 'a request type'} must be a table with prompt, decode and arrivals, "
                        f"got {describe(entry)}")
    fields = {_TYPE_ALIASES.get(k, k): v for k, v in entry.items()}
    _unknown(fields, TYPE_KEYS, where)
    for key in ("prompt", "decode"):
        if key not in fields:
            raise SpecError(_at(where, f"missing {key} (an integer or a law such as geometric:0.25)"))
    try:
        return RequestType(prompt=parse_law(fields["prompt"], "prompt"),
                           decode=parse_law(fields["decode"], "decode"),
                           arrivals=parse_arrivals(fields.get("arrivals"), "arrivals"))
    except ModelError as err:
        raise _prefixed(where, err) from None


def _int_option(value: Any, name: str) -> int | None:
    return None if value is None else parse_number(value, name, integer=True)


@functools.lru_cache(maxsize=8)
def _trace(source: str, format: str | None) -> Any:
    from .traces import load_trace

    return load_trace(source, format)


def _trace_types(trace: Any, iteration_time: Any, where: str) -> list[RequestType]:
    if not isinstance(trace, Mapping):
        raise SpecError(f"{where or 'trace'} must be a table of {', '.join(TRACE_KEYS)}, got {describe(trace)}")
    _unknown(trace, TRACE_KEYS, where)
    source = trace.get("source")
    if not isinstance(source, str) or not source:
        raise SpecError(_at(where, f"source must be a built-in trace name or a file path, got {describe(source)}"))
    fmt = trace.get("format")
    if fmt is not None and not isinstance(fmt, str):
        raise SpecError(_at(where, f"format must be a format name, got {describe(fmt)}"))
    tau = trace.get("iteration_seconds")
    tau = None if tau is None else float(parse_number(tau, _at(where, "iteration_seconds")))
    split = trace.get("split")
    by = trace.get("split_by", "prompt")
    try:
        loaded = _trace(source, fmt)
        if tau is None and iteration_time is None and loaded.arrival_times is not None:
            raise SpecError(
                "give iteration_seconds (--iteration-seconds TAU: seconds per decode step, for Poisson arrivals "
                "per iteration) or the model's iteration_time (--iteration-time D0,D1: wall-clock arrivals in "
                "requests per second)"
            )
        if split is not None:
            cuts = split_fields(split, ",") if isinstance(split, str) else split
            if not isinstance(cuts, list):
                raise SpecError(f"split must be a list of token thresholds, got {describe(split)}")
            parts = loaded.split([parse_number(c, "split threshold", integer=True) for c in cuts], by=by)
        else:
            parts = (loaded,)
        return [part.request_type(tau, max_prompt=_int_option(trace.get("max_prompt"), "max_prompt"),
                                  max_decode=_int_option(trace.get("max_decode"), "max_decode"),
                                  scale=_int_option(trace.get("scale", 1), "scale"))
                for part in parts]
    except ModelError as err:
        raise _prefixed(where, err) from None


def _iteration_time(value: Any) -> LinearIterationTime | None:
    if value is None or isinstance(value, LinearIterationTime):
        return value
    if isinstance(value, Mapping):
        _unknown(value, ("d0", "d1"), "iteration_time")
        if "d0" not in value:
            raise SpecError("iteration_time needs d0 (seconds per iteration) and optionally d1 (seconds per token)")
        parts = [value["d0"], value.get("d1", 0)]
    elif isinstance(value, str):
        parts = split_fields(value, ",")
    elif isinstance(value, list):
        parts = value
    else:
        parts = [value]
    if len(parts) not in (1, 2):
        raise SpecError(f"iteration_time must be D0 or D0,D1 (seconds; d0 + d1 * KV tokens), got {describe(value)}")
    d = [float(parse_number(x, f"iteration_time {n}")) for n, x in zip(("d0", "d1"), parts, strict=False)]
    return LinearIterationTime(*d)


def _mix(value: Any) -> Any:
    if value is None:
        return None
    items = split_fields(value, ",") if isinstance(value, str) else value
    if not isinstance(items, list):
        raise SpecError(f"mix must be a list of proportions, one per type, got {describe(value)}")
    return [parse_number(x, f"mix[{k}]") for k, x in enumerate(items)]


def _flag(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise SpecError(f"{name} must be true or false, got {describe(value)}")


def _policy(value: Any) -> Any:
    if isinstance(value, (str, Policy)):
        return value
    raise SpecError(f"policy must be a policy name such as greedy or rate_limited(1.5), got {describe(value)}")


def build_model(spec: Mapping[str, Any], where: str = "") -> ContinuousBatching:
    r"""The :class:`~queueing_llm.model.ContinuousBatching` a spec describes.

    Parameters
    ----------
    spec : mapping
        Keys of :data:`MODEL_KEYS` (a spec file's top level, or the command's options):
        ``types`` (a list of tables with ``prompt``, ``decode``, ``arrivals`` in the text
        syntax, or :class:`~queueing_llm.model.RequestType` values) or ``trace`` (a table
        of :data:`TRACE_KEYS`: the trace's request types,
        :meth:`~queueing_llm.traces.Trace.request_type`, one per part of
        :meth:`~queueing_llm.traces.Trace.split` when ``split`` is given); ``kv_capacity``,
        ``batch_cap``, ``waiting_cap`` (numbers or ``inf``), ``policy``, ``mix``,
        ``admit_after_eviction``, ``iteration_time`` (``d0``, ``[d0, d1]`` or a table).
        Without ``types`` and ``trace``: the embedded default model
        (:func:`~queueing_llm.model.default_model`), whose KV budget and policy apply unless
        given. With them: ``kv_capacity`` defaults to ``inf`` and ``policy`` to greedy.
    where : str
        Prefix of error messages (``"model.toml"``; none by default).

    Raises
    ------
    ModelError
        The first problem, prefixed by ``where`` and naming the field.
    """
    if not isinstance(spec, Mapping):
        raise SpecError(f"{where or 'the model spec'} must be a table of model keys, got {describe(spec)}")
    _unknown(spec, MODEL_KEYS, where)
    full = _with_defaults(spec)
    if full.get("types") is not None and full.get("trace") is not None:
        raise SpecError(_at(where, "give types or a trace, not both"))
    try:
        iteration_time = _iteration_time(full.get("iteration_time"))
    except ModelError as err:
        raise _prefixed(where, err) from None
    if full.get("trace") is not None:
        types = _trace_types(full["trace"], iteration_time, _at(where, "trace"))
    else:
        entries = full["types"]
        if not isinstance(entries, list) or not entries:
            raise SpecError(_at(where, f"types must be a non-empty list of request types, got {describe(entries)}"))
        types = [build_type(e, _at(where, f"types[{k}]")) for k, e in enumerate(entries)]
    try:
        kwargs: dict[str, Any] = {
            "kv_capacity": parse_number(full.get("kv_capacity", math.inf), "kv_capacity", allow_inf=True),
            "batch_cap": parse_number(full.get("batch_cap", math.inf), "batch_cap", allow_inf=True),
            "waiting_cap": parse_number(full.get("waiting_cap", math.inf), "waiting_cap", allow_inf=True),
            "policy": _policy(full.get("policy", "greedy")),
            "iteration_time": iteration_time,
            "mix": _mix(full.get("mix")),
        }
        if "admit_after_eviction" in full:
            kwargs["admit_after_eviction"] = _flag(full["admit_after_eviction"], "admit_after_eviction")
        return ContinuousBatching(types=types, **kwargs)
    except ModelError as err:
        raise _prefixed(where, err) from None


# -- grid keys -----------------------------------------------------------------------------

_INDEXED = re.compile(r"^([a-z_]+)\[(\d+)\]$")


def with_value(spec: Mapping[str, Any], key: str, value: Any) -> dict[str, Any]:
    """A copy of ``spec`` with the field ``key`` set to ``value`` (one grid point's change).

    Keys: a model key (``kv_capacity``, ``batch_cap``, ``waiting_cap``, ``policy``,
    ``iteration_time``, ``mix``, ``admit_after_eviction``); a type field (``prompt``,
    ``decode``, ``arrivals``, alias ``rate``) for a one-type model, or with its index
    (``decode[1]``) for any; a trace option (``scale``, ``iteration_seconds``,
    ``max_prompt``, ``max_decode``, also written ``trace.scale``) for a trace model.
    A model without types or trace is the default model, whose type can be changed.

    Raises
    ------
    SpecError
        An unknown key, an index out of range, a type field on a trace model, or a type
        field without index on a model of several types.
    """
    if not isinstance(key, str):
        raise SpecError(f"a grid key must be a name, got {describe(key)}")
    out = _with_defaults(spec)
    name = key.strip()
    if name.startswith("trace."):
        name = name[len("trace."):]
        if name not in TRACE_KEYS:
            raise SpecError(f"grid key {key!r}: the trace options are {', '.join(TRACE_KEYS)}")
    if name in MODEL_KEYS and name not in ("types", "trace"):
        out[name] = value
        return out
    if name in TRACE_KEYS and name not in ("source",):
        if out.get("trace") is None:
            raise SpecError(f"grid key {key!r} is a trace option, but the model is not built from a trace")
        out["trace"] = {**out["trace"], name: value}
        return out
    match = _INDEXED.match(name)
    field_name, index = (match.group(1), int(match.group(2))) if match else (name, None)
    field_name = _TYPE_ALIASES.get(field_name, field_name)
    if field_name not in TYPE_KEYS:
        keys = [k for k in MODEL_KEYS if k not in ("types", "trace")] + ["prompt", "decode", "arrivals", "rate"]
        raise SpecError(f"unknown grid key {key!r}; keys: {', '.join(keys)} (type fields may take an index, "
                        "decode[1]), and for a trace model its options")
    if out.get("trace") is not None:
        raise SpecError(f"grid key {key!r}: the request types of a trace model come from the trace; "
                        "sweep a trace option instead (scale, iteration_seconds, max_prompt, max_decode)")
    types = list(out["types"])
    if index is None:
        if len(types) != 1:
            raise SpecError(f"grid key {key!r}: the model has {len(types)} types; name one, e.g. {field_name}[0]")
        index = 0
    if index >= len(types):
        raise SpecError(f"grid key {key!r}: type index {index} out of range (the model has {len(types)} types)")
    entry = types[index]
    if isinstance(entry, RequestType):
        entry = {"prompt": entry.prompt, "decode": entry.decode, "arrivals": entry.arrivals}
    types[index] = {**{_TYPE_ALIASES.get(k, k): v for k, v in entry.items()}, field_name: value}
    out["types"] = types
    return out


def _grid_value(text: str) -> Any:
    """A grid value: a number when it reads as one (so tables get numeric columns), else the text."""
    try:
        return parse_number(text, "value", allow_inf=True)
    except SpecError:
        return text


def parse_grid(text: str) -> tuple[str, list[Any]]:
    """``"KEY=V1,V2,..."`` -> ``(KEY, [V1, V2, ...])``, values as numbers where they read as numbers.

    ``parse_grid("rate=0.5,1.0,1.5")`` is ``("rate", [0.5, 1.0, 1.5])``; commas inside
    braces do not split (``"decode=pmf:{2:0.5,4:0.5},geometric:0.25"``).
    """
    if not isinstance(text, str) or "=" not in text:
        raise SpecError(f"--grid must be KEY=V1,V2,... (e.g. rate=0.5,1.0,1.5), got {text!r}")
    key, _, rest = text.partition("=")
    key = key.strip()
    values = [v for v in split_fields(rest, ",") if v != ""]
    if not key or not values:
        raise SpecError(f"--grid must be KEY=V1,V2,... with a key and at least one value, got {text!r}")
    return key, [_grid_value(v) for v in values]
