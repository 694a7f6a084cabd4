"""Models written as text (queueing_llm.spec): law syntax, spec files, grid keys."""

import math

import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import queueing_llm as ql
from queueing_llm import strategies as qst
from queueing_llm.errors import LawError, ModelError, ParameterError
from queueing_llm.spec import (
    INT_MAX,
    SpecError,
    build_model,
    build_type,
    law_text,
    load_spec,
    parse_arrivals,
    parse_grid,
    parse_law,
    parse_number,
    parse_type,
    split_fields,
    with_value,
)

# -- text ------------------------------------------------------------------------------------


def test_split_fields_respects_brackets():
    assert split_fields("2,pmf:{2:0.5,4:0.5},1.5") == ["2", "pmf:{2:0.5,4:0.5}", "1.5"]
    assert split_fields("binomial(5, 0.2), empirical:[1,2]") == ["binomial(5, 0.2)", "empirical:[1,2]"]
    assert split_fields("a:b:c", ":") == ["a", "b", "c"]


@pytest.mark.parametrize("text, fragment", [("2,pmf:{2:0.5", "unclosed '}'"), ("2,(", "unclosed ')'"),
                                            ("2,3)", "unbalanced ')'"), ("{2:1]", "unbalanced ']'")])
def test_split_fields_refuses_unbalanced_brackets(text, fragment):
    with pytest.raises(SpecError, match=fragment.replace("(", r"\(").replace(")", r"\)").replace("]", r"\]")):
        split_fields(text)


@pytest.mark.parametrize("text, expected", [
    ("40", 40), ("1_000", 1000), ("0.25", 0.25), ("1e-3", 0.001), ("-3", -3),
    ("1/4", sp.Rational(1, 4)), ("8/2", 4), (" 7 ", 7),
])
def test_parse_number_reads_integers_decimals_and_exact_fractions(text, expected):
    value = parse_number(text, "x")
    assert value == expected and type(value) is type(expected)


def test_parse_number_integer_and_infinity_options():
    assert parse_number("1e3", "n", integer=True) == 1000 and isinstance(parse_number("1e3", "n", integer=True), int)
    assert parse_number("inf", "M", allow_inf=True) == math.inf
    assert parse_number(math.inf, "M", allow_inf=True) == math.inf
    assert parse_number(12, "n", integer=True) == 12  # a TOML integer as is


@pytest.mark.parametrize("value, options, fragment", [
    ("abc", {}, "x must be a number, got 'abc'"),
    ("nan", {}, "x must be a number, got nan"),
    ("inf", {}, "x must be finite, got inf"),
    ("-inf", {"allow_inf": True}, "x must be finite, got -inf"),
    ("2.5", {"integer": True}, "x must be an integer, got 2.5"),
    ("1/3", {"integer": True}, "x must be an integer, got 1/3"),
    ("1/0", {}, "divides by zero"),
    (str(2**63), {}, f"x = {2**63} is too large (at most 2**63 - 1 = {INT_MAX})"),
    ("1e19", {"integer": True}, "is too large"),
    (True, {}, "x must be a number, got True"),
    ([1], {}, "x must be a number, got [1]"),
])
def test_parse_number_errors_name_the_field_and_the_value(value, options, fragment):
    with pytest.raises(SpecError) as info:
        parse_number(value, "x", **options)
    assert fragment in str(info.value)


# -- laws --------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, law", [
    ("geometric:0.25", ql.Geometric(0.25)),
    ("geom:1/4", ql.Geometric(sp.Rational(1, 4))),
    ("geometric(0.5)", ql.Geometric(0.5)),
    ("poisson:1.5", ql.Poisson(1.5)),
    ("bernoulli:0.3", ql.Bernoulli(0.3)),
    ("binomial:5:0.2", ql.Binomial(5, 0.2)),
    ("binomial(5, 0.2)", ql.Binomial(5, 0.2)),
    ("Deterministic:3", ql.Deterministic(3)),
    ("pmf:{2:0.5,4:0.5}", ql.FinitePMF({2: 0.5, 4: 0.5})),
    ("pmf:{ 2 : 1/3 , 4 : 2/3 }", ql.FinitePMF({2: sp.Rational(1, 3), 4: sp.Rational(2, 3)})),
    ("finite:{1:1}", ql.FinitePMF({1: 1})),
    ("empirical:[3,5,5,8]", ql.Empirical([3, 5, 5, 8])),
])
def test_parse_law_builds_each_law(text, law):
    assert parse_law(text, "decode") == law


def test_parse_law_keeps_numbers_for_the_request_type_to_check():
    assert parse_law("40", "decode") == 40
    assert parse_law(7, "decode") == 7
    law = ql.Geometric(0.5)
    assert parse_law(law, "decode") is law


@pytest.mark.parametrize("text, error, fragment", [
    ("foo:1", SpecError, "decode: unknown law 'foo' in 'foo:1'; laws: deterministic, poisson"),
    ("geometric:x", SpecError, "decode Geometric q must be a number, got 'x'"),
    ("geometric:2", LawError, "decode: Geometric q must be a number in (0, 1], got 2"),
    ("geometric:", SpecError, "decode: geometric takes 1 parameter(s) (q), e.g. geometric:0.25"),
    ("binomial:3", SpecError, "decode: binomial takes 2 parameter(s) (n, p), e.g. binomial:5:0.2"),
    ("binomial:2.5:0.1", SpecError, "decode Binomial n must be an integer, got 2.5"),
    ("pmf:{2:0.5,4:0.4}", LawError, "decode: FinitePMF probabilities must sum to 1, got 0.9"),
    ("pmf:{2:0.5;4:0.5}", SpecError, "decode: each pmf entry must be value:probability"),
    ("pmf:2:1", SpecError, "decode: pmf needs {value:probability,...}"),
    ("pmf:{a:1}", SpecError, "decode pmf value must be an integer, got 'a'"),
    ("empirical:3,5", SpecError, "decode: empirical needs [observation,...]"),
    ("empirical:[]", LawError, "decode: Empirical samples must hold at least one observation"),
    ("geometric(0.5", SpecError, "decode: 'geometric(0.5' opens '(' without closing it"),
    ("", SpecError, "decode is empty"),
])
def test_parse_law_errors_name_the_field(text, error, fragment):
    with pytest.raises(error) as info:
        parse_law(text, "decode")
    assert fragment in str(info.value)


def test_parse_arrivals_numbers_laws_processes_and_none():
    assert parse_arrivals("1.5") == 1.5
    assert parse_arrivals("bernoulli:0.3") == ql.Bernoulli(0.3)
    assert parse_arrivals("process:2") == ql.PoissonProcess(2)
    assert parse_arrivals("none") is None and parse_arrivals(None) is None
    with pytest.raises(SpecError, match="process takes 1 parameter"):
        parse_arrivals("process:")
    with pytest.raises(ParameterError, match="arrivals: PoissonProcess rate must be"):
        parse_arrivals("process:-1")
    with pytest.raises(SpecError, match=r"arrivals \(Poisson rate per iteration\) must be finite, got inf"):
        parse_arrivals("inf")


def test_parse_type_splits_the_three_fields():
    assert parse_type("2,geometric:0.25,1.5") == {"prompt": "2", "decode": "geometric:0.25", "arrivals": "1.5"}
    assert parse_type("2, pmf:{2:0.5,4:0.5}") == {"prompt": "2", "decode": "pmf:{2:0.5,4:0.5}"}
    for bad in ("2", "2;3", "2,3,1,4", "2,,1"):
        with pytest.raises(SpecError, match="--type must be PROMPT,DECODE or PROMPT,DECODE,ARRIVALS"):
            parse_type(bad)


def test_build_type_reproduces_the_readme_stationary_model():
    t = build_type(parse_type("2,geometric:0.25,1.5"))
    assert t == ql.RequestType(2, ql.Geometric(0.25), arrivals=1.5)


def test_build_type_prefixes_errors_with_where():
    with pytest.raises(LawError) as info:
        build_type(parse_type("2,0,1"), "--type '2,0,1'")
    assert str(info.value) == "--type '2,0,1': decode must be an integer in [1, inf), got 0"
    with pytest.raises(SpecError, match="t: missing decode"):
        build_type({"prompt": 2}, "t")
    with pytest.raises(SpecError, match="t: unknown key 'size'"):
        build_type({"prompt": 2, "decode": 3, "size": 1}, "t")


# -- law_text: the inverse -----------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.one_of(qst.arrival_laws(), qst.decode_laws(), qst.prompt_laws()))
def test_law_text_reads_back_to_the_same_law(law):
    text = law_text(law)
    back = parse_law(str(text), "law")
    assert ql.laws.as_law(back, "law") == law


def test_law_text_examples():
    assert law_text(ql.Geometric(0.25)) == "geometric:0.25"
    assert law_text(ql.Binomial(5, 0.2)) == "binomial:5:0.2"
    assert law_text(ql.FinitePMF({2: 0.5, 4: 0.5})) == "pmf:{2:0.5,4:0.5}"
    assert law_text(ql.Deterministic(3)) == 3
    assert law_text(ql.PoissonProcess(2.0)) == "process:2.0"


# -- models ------------------------------------------------------------------------------------


def test_empty_spec_is_the_default_model():
    assert build_model({}) == ql.default_model()
    assert build_model({"batch_cap": "8"}) == ql.ContinuousBatching(ql.default_model().types, kv_capacity=2000,
                                                                    batch_cap=8)


def test_spec_with_types_defaults_to_no_memory_limit_and_greedy():
    m = build_model({"types": [parse_type("2,geometric:0.25,1.5")], "batch_cap": 8, "policy": "fcfs_cap"})
    assert m == ql.ContinuousBatching(ql.RequestType(2, ql.Geometric(0.25), arrivals=1.5), batch_cap=8,
                                      policy="fcfs_cap")


def test_spec_model_keys():
    m = build_model({"types": [{"prompt": 2, "decode": 3, "arrivals": "process:1"},
                               {"prompt": "1", "decode": "pmf:{1:1/2,2:1/2}", "rate": 0.5}],
                     "kv_capacity": "100", "waiting_cap": 5, "policy": "rate_limited(0.8)", "mix": "0.5,0.5",
                     "iteration_time": {"d0": 0.01, "d1": 0.001}, "admit_after_eviction": "false"})
    assert m.kv_capacity == 100 and m.waiting_cap == 5 and not m.admit_after_eviction
    assert m.iteration_time == ql.LinearIterationTime(0.01, 0.001)
    assert m.policy == ql.rate_limited(0.8) and m.proportions == (sp.Rational(1, 2), sp.Rational(1, 2))
    assert m.types[1].decode == ql.FinitePMF({1: sp.Rational(1, 2), 2: sp.Rational(1, 2)})
    assert build_model({"types": [{"prompt": 2, "decode": 3}], "iteration_time": [0.5]}).iteration_time == \
        ql.LinearIterationTime(0.5)


@pytest.mark.parametrize("spec, error, message", [
    ({"typo": 1}, SpecError, "unknown key 'typo'; keys: types, trace, kv_capacity"),
    ({"kv_capacity": "30"}, ParameterError,
     "kv_capacity must exceed max(l0 + l1) = 50 tokens (one request must fit), got 30"),
    ({"kv_capacity": "-inf"}, SpecError, "kv_capacity must be finite, got -inf"),
    ({"batch_cap": "lots"}, SpecError, "batch_cap must be a number, got 'lots'"),
    ({"policy": 3}, SpecError, "policy must be a policy name"),
    ({"policy": "fifo"}, ModelError, "policy must be one of"),
    ({"types": [], "kv_capacity": 10}, SpecError, "types must be a non-empty list"),
    ({"types": [{"prompt": 1, "decode": 1}], "trace": {"source": "azure-code"}}, SpecError,
     "give types or a trace, not both"),
    ({"types": [{"prompt": 1, "decode": 1}], "iteration_time": "1,2,3"}, SpecError,
     "iteration_time must be D0 or D0,D1"),
    ({"types": [{"prompt": 1, "decode": 1}], "iteration_time": {"d1": 1}}, SpecError, "iteration_time needs d0"),
    ({"types": [{"prompt": 1, "decode": 1}], "admit_after_eviction": "maybe"}, SpecError,
     "admit_after_eviction must be true or false, got 'maybe'"),
    ({"types": [{"prompt": 1, "decode": 1}], "mix": 1}, SpecError, "mix must be a list of proportions"),
])
def test_build_model_errors(spec, error, message):
    with pytest.raises(error) as info:
        build_model(spec, "m.toml")
    assert str(info.value).startswith("m.toml: ") and message in str(info.value)


def test_trace_spec_builds_the_docs_model():
    spec = {"trace": {"source": "azure-conv", "iteration_seconds": 0.03, "max_prompt": 4096, "max_decode": 512,
                      "scale": 16}, "kv_capacity": 4000}
    trace = ql.load_trace("azure-conv")
    rt = trace.request_type(iteration_seconds=0.03, max_prompt=4096, max_decode=512, scale=16)
    assert build_model(spec) == ql.ContinuousBatching(types=[rt], kv_capacity=4000)


def test_trace_spec_split_gives_one_type_per_band_and_wall_clock_needs_iteration_time():
    m = build_model({"trace": {"source": "azure-code", "iteration_seconds": 0.03, "split": "1024,4096",
                               "max_prompt": 8192, "max_decode": 512, "scale": 64}, "kv_capacity": 1000})
    parts = ql.load_trace("azure-code").split([1024, 4096])
    assert m.K == 3
    assert [t.arrivals for t in m.types] == [p.request_type(0.03, max_prompt=8192, max_decode=512, scale=64).arrivals
                                             for p in parts]
    wall = build_model({"trace": {"source": "azure-code", "max_decode": 64}, "iteration_time": "0.02,0.0001"})
    assert isinstance(wall.types[0].arrivals, ql.PoissonProcess)


@pytest.mark.parametrize("trace, fragment", [
    ({"source": "azure-code"}, "trace: give iteration_seconds (--iteration-seconds TAU"),
    ({"source": "nope.csv", "iteration_seconds": 1}, "trace: trace file nope.csv: no such file"),
    ({"source": 3}, "trace: source must be a built-in trace name or a file path"),
    ({"source": "azure-code", "iteration_seconds": 0.03, "scale": 0}, "scale must be an integer >= 1"),
    ({"source": "azure-code", "iteration_seconds": "x"}, "trace: iteration_seconds must be a number, got 'x'"),
    ({"source": "azure-code", "iteration_seconds": 0.03, "split": "5,1"}, "split thresholds must be"),
    ({"source": "azure-code", "colour": 1}, "trace: unknown key 'colour'"),
])
def test_trace_spec_errors(trace, fragment):
    with pytest.raises(ModelError) as info:
        build_model({"trace": trace})
    assert fragment in str(info.value)


# -- spec files --------------------------------------------------------------------------------

SPEC = """
kv_capacity = inf
batch_cap = 8
policy = "fcfs_cap"

[[types]]
prompt = 2
decode = "geometric:1/4"
arrivals = 1.5

[run]
iterations = 3000
seed = 7

[grid]
rate = [0.5, 1.0]
"""


def test_load_spec_reads_model_run_and_grid(tmp_path):
    path = tmp_path / "model.toml"
    path.write_text(SPEC, encoding="utf-8")
    spec = load_spec(path)
    assert spec.run == {"iterations": 3000, "seed": 7} and spec.grid == {"rate": [0.5, 1.0]}
    m = build_model(spec.model, str(path))
    assert m == ql.ContinuousBatching(ql.RequestType(2, ql.Geometric(sp.Rational(1, 4)), arrivals=1.5),
                                      batch_cap=8, policy="fcfs_cap")


def test_load_spec_trace_paths_are_relative_to_the_file(tmp_path):
    (tmp_path / "t.csv").write_text("prompt,decode\n3,2\n5,4\n", encoding="utf-8")
    path = tmp_path / "model.toml"
    path.write_text('kv_capacity = 100\n[trace]\nsource = "t.csv"\n', encoding="utf-8")
    m = build_model(load_spec(path).model)
    assert m.types[0].decode == ql.Empirical([2, 4]) and m.types[0].arrivals is None


@pytest.mark.parametrize("text, fragment", [
    ("kv_capacity = ", "not valid TOML"),
    ("colour = 1", "unknown key 'colour'"),
    ("[run]\nspeed = 1", "[run]: unknown key 'speed'"),
    ("[grid]\nrate = []", "[grid] rate must be a non-empty list"),
    ("[grid]\nrate = 1", "[grid] rate must be a non-empty list"),
    ("run = 1", "run must be a table [run]"),
    ("types = 3", "types must be one or more [[types]] tables"),
    ("[[types]]\nprompt = 1\nlength = 2", "types[0]: unknown key 'length'"),
    ("trace = 1", "trace must be a table [trace]"),
    ("[trace]\nsource='azure-code'\nbins=2", "[trace]: unknown key 'bins'"),
])
def test_load_spec_errors_name_the_file_and_the_key(tmp_path, text, fragment):
    path = tmp_path / "m.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(info.value).startswith(f"model spec {path}: ") and fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_load_spec_refuses_missing_and_non_utf8_files(tmp_path):
    with pytest.raises(SpecError, match="cannot read it: No such file or directory"):
        load_spec(tmp_path / "absent.toml")
    path = tmp_path / "utf16.toml"
    path.write_text("kv_capacity = 100\n", encoding="utf-16")
    with pytest.raises(SpecError, match="not UTF-8 text"):
        load_spec(path)


# -- grid keys ---------------------------------------------------------------------------------


def test_parse_grid():
    assert parse_grid("rate=0.5,1.0,1.5") == ("rate", [0.5, 1.0, 1.5])
    assert parse_grid("policy=greedy,rate_limited(1.5)") == ("policy", ["greedy", "rate_limited(1.5)"])
    assert parse_grid("decode=pmf:{2:0.5,4:0.5},3") == ("decode", ["pmf:{2:0.5,4:0.5}", 3])
    assert parse_grid("kv_capacity=100,inf") == ("kv_capacity", [100, math.inf])
    for bad in ("rate", "=1,2", "rate="):
        with pytest.raises(SpecError, match="--grid must be KEY=V1,V2"):
            parse_grid(bad)


def test_with_value_on_the_default_model_and_on_types():
    m = build_model(with_value({}, "rate", 0.5))
    assert m == ql.ContinuousBatching(ql.RequestType(10, 40, arrivals=0.5), kv_capacity=2000)
    assert build_model(with_value({}, "kv_capacity", 3000)).kv_capacity == 3000
    two = {"types": [parse_type("2,3,0.5"), parse_type("1,2,0.2")]}
    assert build_model(with_value(two, "decode[1]", "geometric:0.5")).types[1].decode == ql.Geometric(0.5)
    assert two["types"][1]["decode"] == "2"  # the base spec is not changed
    trace = {"trace": {"source": "azure-code", "iteration_seconds": 0.03, "max_decode": 64}}
    assert with_value(trace, "scale", 8)["trace"]["scale"] == 8
    assert with_value(trace, "trace.max_prompt", 100)["trace"]["max_prompt"] == 100


@pytest.mark.parametrize("spec, key, fragment", [
    ({}, "bogus", "unknown grid key 'bogus'; keys: kv_capacity"),
    ({"types": [parse_type("2,3,0.5"), parse_type("1,2,0.2")]}, "decode", "the model has 2 types; name one"),
    ({}, "decode[3]", "type index 3 out of range"),
    ({}, "scale", "is a trace option, but the model is not built from a trace"),
    ({"trace": {"source": "azure-code"}}, "decode", "the request types of a trace model come from the trace"),
    ({}, "trace.colour", "the trace options are source, format"),
])
def test_with_value_errors(spec, key, fragment):
    with pytest.raises(SpecError) as info:
        with_value(spec, key, 1)
    assert fragment in str(info.value)


def test_the_module_docstring_example_builds(tmp_path):
    import textwrap

    import queueing_llm.spec as spec_module

    doc = spec_module.__doc__
    block = doc[doc.index("tables::") + len("tables::"):doc.index("\nErrors\n")]
    path = tmp_path / "doc.toml"
    path.write_text(textwrap.dedent(block), encoding="utf-8")
    spec = load_spec(path)
    m = build_model(spec.model)
    assert m.kv_capacity == 2000 and m.batch_cap == 64 and m.types[0].decode == ql.FinitePMF(
        {20: sp.Rational(1, 2), 60: sp.Rational(1, 2)})
    assert spec.run == {"iterations": 20000, "seed": 1} and spec.grid == {"arrivals": [0.8, 1.0, 1.2]}
