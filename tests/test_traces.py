"""Traces: built-in data, the four formats, every TraceError, exact laws, rates, simulation."""

import csv
import dataclasses
import hashlib
import io
import json
import math
import pickle
import re
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import queueing_llm as ql
from queueing_llm.errors import TraceError
from queueing_llm.stats import batch_means_ci

# sha256 of the packaged files, from queueing_llm/data/azure_llm_2023/README.md (upstream bytes)
SHA256 = {
    "AzureLLMInferenceTrace_code.csv": "54e9a6d2a4bd06ba1e060304b900abbc74cbea53de96506e60fe5bb4f2277fb6",
    "AzureLLMInferenceTrace_conv.csv": "2f1e5b666d4e3055fdbba98598ce2ec307767b9064e03e2fa46676dbcc7d0bf8",
}
SHA256_NAMES = {"azure-code": "AzureLLMInferenceTrace_code.csv", "azure-conv": "AzureLLMInferenceTrace_conv.csv"}


@pytest.fixture(scope="module")
def code():
    return ql.load_trace("azure-code")


@pytest.fixture(scope="module")
def conv():
    return ql.load_trace("azure-conv")


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- built-in traces -------------------------------------------------------------------
def test_packaged_data_is_the_unmodified_upstream_files_with_licence_and_readme():
    folder = resources.files("queueing_llm") / "data" / "azure_llm_2023"
    for name, digest in SHA256.items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name
    assert "Attribution 4.0 International" in (folder / "LICENSE").read_text(encoding="utf-8-sig")
    readme = (folder / "README.md").read_text(encoding="utf-8")
    assert "CC BY 4.0" in readme and "Splitwise" in readme


def test_builtin_names():
    assert ql.builtin_traces() == ("azure-code", "azure-conv")


@pytest.mark.parametrize(
    "name, count, span, first",
    [("azure-code", 8819, 3435.948056, (4808, 10)), ("azure-conv", 19366, 3501.721937, (374, 44))],
)
def test_builtin_traces_load(name, count, span, first):
    trace = ql.load_trace(name)
    assert len(trace) == count and trace.name == name
    assert trace.arrival_times[0] == 0.0 and np.all(np.diff(trace.arrival_times) >= 0)
    assert trace.span == pytest.approx(span, abs=1e-6)  # README: 3,436 s and 3,502 s
    assert (int(trace.prompt_tokens[0]), int(trace.output_tokens[0])) == first
    assert "CC BY 4.0" in trace.source and "Splitwise" in trace.source
    assert trace.output_tokens.min() >= 1


def test_azure_conv_summary_numbers(conv):
    # independent reading of the packaged CSV with the csv module
    text = (resources.files("queueing_llm") / "data" / "azure_llm_2023" / SHA256_NAMES["azure-conv"]).read_text()
    rows = list(csv.reader(io.StringIO(text)))[1:]
    s = conv.summary()
    assert s["count"] == len(rows) == 19366
    assert s["rate_per_second"] == pytest.approx(19366 / 3501.721937, rel=1e-12)
    assert s["prompt"]["mean"] == pytest.approx(sum(int(r[1]) for r in rows) / 19366, rel=1e-12)
    assert s["output"]["mean"] == pytest.approx(sum(int(r[2]) for r in rows) / 19366, rel=1e-12)
    assert (s["prompt"]["max"], s["output"]["max"]) == (14050, 1000)
    r = np.corrcoef(conv.prompt_tokens.astype(float), conv.output_tokens.astype(float))[0, 1]
    assert s["correlation"]["pearson"] == pytest.approx(r, rel=1e-12)
    assert s["correlation"]["pearson"] == pytest.approx(-0.11235, abs=1e-5)
    json.dumps(s)  # JSON-ready


def test_laws_means_equal_the_data_means_exactly(code, conv):
    for trace in (code, conv):
        n = len(trace)
        assert trace.prompt_law().mean == sp.Rational(int(trace.prompt_tokens.sum()), n)
        assert trace.decode_law().mean == sp.Rational(int(trace.output_tokens.sum()), n)
        assert trace.decode_law().support_max == int(trace.output_tokens.max())


# -- formats ---------------------------------------------------------------------------
AZURE = (
    "TIMESTAMP,ContextTokens,GeneratedTokens\n"
    "2023-11-16 18:17:04.5000000,30,3\n"
    "2023-11-16 18:17:03.2500000,10,2\n"
    "2023-11-16 18:17:05.2500000,20,4"
)


def test_azure_csv_sorted_and_rebased(tmp_path):
    with pytest.warns(ql.errors.TraceWarning, match=r"1 row\(s\) arrive before the row above them \(line\(s\) 3\)"):
        trace = ql.load_trace(write(tmp_path, "small.csv", AZURE))
    assert trace.arrival_times.tolist() == [0.0, 1.25, 2.0]
    assert trace.prompt_tokens.tolist() == [10, 30, 20] and trace.output_tokens.tolist() == [2, 3, 4]
    assert trace.name == "small" and trace.arrival_rate() == 1.5
    with pytest.warns(ql.errors.TraceWarning):
        assert ql.load_trace(tmp_path / "small.csv", format="azure") == trace


def test_mooncake_jsonl_milliseconds(tmp_path):
    lines = [
        {"timestamp": 0, "input_length": 100, "output_length": 5, "hash_ids": [0]},
        {"timestamp": 1500, "input_length": 600, "output_length": 7, "hash_ids": [1, 2]},
        {"timestamp": 3000, "input_length": 50, "output_length": 1, "hash_ids": [3]},
    ]
    text = "\n".join(json.dumps(r) for r in lines[:2]) + "\n\n" + json.dumps(lines[2]) + "\n"
    trace = ql.load_trace(write(tmp_path, "mc.jsonl", text))
    assert trace.arrival_times.tolist() == [0.0, 1.5, 3.0]
    assert trace.prompt_tokens.tolist() == [100, 600, 50] and trace.output_tokens.tolist() == [5, 7, 1]
    assert trace.arrival_rate(per="minute") == pytest.approx(60.0)


def test_vidur_lengths_only_and_with_arrivals(tmp_path):
    text = "num_prefill_tokens,num_decode_tokens,num_total_tokens,pd_ratio\n3772,54,3826,69.85\n2015,156,2171,12.9\n"
    trace = ql.load_trace(write(tmp_path, "arxiv.csv", text))
    assert trace.arrival_times is None and not trace.has_arrivals
    assert trace.prompt_tokens.tolist() == [3772, 2015] and trace.output_tokens.tolist() == [54, 156]
    assert "no arrivals" in repr(trace)
    timed = "arrived_at,num_prefill_tokens,num_decode_tokens\n0.0,5,2\n0.5,6,3\n"
    trace = ql.load_trace(write(tmp_path, "split.csv", timed), format="vidur")
    assert trace.arrival_times.tolist() == [0.0, 0.5]


def test_generic_csv_with_and_without_arrivals_and_bom(tmp_path):
    trace = ql.load_trace(write(tmp_path, "g.csv", "\ufeffarrival,prompt,decode\n0.0,4,2\n2.0,6,3\n4.0,8,1\n"))
    assert trace.arrival_times.tolist() == [0.0, 2.0, 4.0] and trace.arrival_rate() == 0.75
    trace = ql.load_trace(write(tmp_path, "h.csv", "decode,prompt\n2,4\n3,6\n"))
    assert trace.arrival_times is None and trace.prompt_tokens.tolist() == [4, 6]


# -- errors ----------------------------------------------------------------------------
def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(TraceError, match=r"nope\.csv: no such file.*azure-code"):
        ql.load_trace(tmp_path / "nope.csv")
    with pytest.raises(TraceError, match="no such file"):
        ql.load_trace("azure-typo")
    with pytest.raises(TraceError, match="file path or a built-in name"):
        ql.load_trace(42)


@pytest.mark.parametrize(
    "fmt, text, column, found",
    [
        ("azure", "TIMESTAMP,ContextTokens\n2023-11-16 18:17:04.5,3\n", "GeneratedTokens", "TIMESTAMP, ContextTokens"),
        ("vidur", "num_prefill_tokens,pd_ratio\n3,1.5\n", "num_decode_tokens", "num_prefill_tokens, pd_ratio"),
        ("csv", "arrival,prompt,output\n0,3,1\n", "decode", "arrival, prompt, output"),
    ],
)
def test_missing_column_names_the_column_and_the_columns_found(tmp_path, fmt, text, column, found):
    path = write(tmp_path, "t.csv", text)
    with pytest.raises(TraceError) as info:
        ql.load_trace(path, format=fmt)
    msg = str(info.value)
    assert str(path) in msg and f"missing column '{column}'" in msg and f"columns found: {found}" in msg


def test_mooncake_missing_field_and_bad_json(tmp_path):
    path = write(tmp_path, "m.jsonl", '{"timestamp": 0, "input_length": 3, "output_length": 1}\n{"timestamp": 5}\n')
    with pytest.raises(TraceError, match=r"m\.jsonl: line 2: missing field 'input_length'; fields found: timestamp"):
        ql.load_trace(path)
    path = write(tmp_path, "b.jsonl", '{"timestamp": 0, "input_length": 3, "output_length": 1}\n{oops\n')
    with pytest.raises(TraceError, match=r"b\.jsonl: line 2 is not valid JSON"):
        ql.load_trace(path)
    path = write(tmp_path, "c.jsonl", '{"timestamp": 0, "input_length": 3, "output_length": 1}\n\n[1, 2]\n')
    with pytest.raises(TraceError, match=r"line 3 is not a JSON object"):
        ql.load_trace(path)


@pytest.mark.parametrize(
    "text, pattern",
    [
        ("arrival,prompt,decode\n0,3,1\n1,abc,2\n", r"line 3: column 'prompt' has a non-numeric value 'abc'"),
        ("arrival,prompt,decode\n0,3,1\n1,4,2\n2,5,-1\n", r"line 4: column 'decode' has a negative value '-1'"),
        ("arrival,prompt,decode\n-1,3,1\n", r"line 2: column 'arrival' has a negative value '-1'"),
        ("arrival,prompt,decode\n0,3.5,1\n", r"line 2: column 'prompt' must hold token counts, got '3.5'"),
        ("arrival,prompt,decode\n0,nan,1\n", r"line 2: column 'prompt' has a non-finite value 'nan'"),
        ("arrival,prompt,decode\n0,3,1\n1,4\n", r"line 3 has 2 fields, the header has 3"),
        ("arrival,prompt,decode\n", r"empty trace: a header \(arrival, prompt, decode\) but no requests"),
        ("", r"is empty \(no header, no requests\)"),
    ],
)
def test_bad_values_name_the_file_and_the_line(tmp_path, text, pattern):
    path = write(tmp_path, "bad.csv", text)
    with pytest.raises(TraceError, match=pattern) as info:
        ql.load_trace(path, format="csv")
    assert str(path) in str(info.value)


def test_mooncake_bad_value_reports_the_file_line_not_the_record_index(tmp_path):
    text = (
        '{"timestamp": 0, "input_length": 3, "output_length": 1}\n\n'
        '{"timestamp": 9, "input_length": "x", "output_length": 1}\n'
    )
    with pytest.raises(TraceError, match=r"line 3: column 'input_length' has a non-numeric value 'x'"):
        ql.load_trace(write(tmp_path, "m.jsonl", text))
    with pytest.raises(TraceError, match=r"m2\.jsonl: is an empty trace"):
        ql.load_trace(write(tmp_path, "m2.jsonl", "\n\n"))


def test_bad_timestamp_names_the_line(tmp_path):
    text = "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:04.5,3,1\nyesterday,4,2\n"
    with pytest.raises(TraceError, match=r"line 3: column 'TIMESTAMP' has a value 'yesterday' that is not a date-time"):
        ql.load_trace(write(tmp_path, "a.csv", text))


def test_unknown_format(tmp_path):
    path = write(tmp_path, "x.csv", "a,b,c\n1,2,3\n")
    with pytest.raises(TraceError, match=r"x\.csv: unknown trace format.*columns found \(a, b, c\).*azure, mooncake"):
        ql.load_trace(path)
    with pytest.raises(TraceError, match=r"x\.csv: unknown format 'parquet'; formats: azure, mooncake, vidur, csv"):
        ql.load_trace(path, format="parquet")


def test_zero_output_tokens_cannot_be_decode_lengths():
    trace = ql.Trace([0.0, 1.0, 2.0], [3, 4, 5], [2, 0, 1])
    with pytest.raises(TraceError, match=r"1 request\(s\) have 0 output tokens \(first at request 1\)"):
        trace.decode_law()
    kept = trace.subset(trace.output_tokens > 0)
    assert kept.decode_law().mean == sp.Rational(3, 2) and kept.window == 2.0


def test_trace_constructor_validates():
    with pytest.raises(TraceError, match="empty"):
        ql.Trace(None, [], [])
    with pytest.raises(TraceError, match="equal length"):
        ql.Trace(None, [1, 2], [1])
    with pytest.raises(TraceError, match=r"prompt_tokens must be >= 0, got -3 at request 1"):
        ql.Trace(None, [1, -3], [1, 1])
    with pytest.raises(TraceError, match="output_tokens must be integers"):
        ql.Trace(None, [1, 3], [1, 1.5])
    with pytest.raises(TraceError, match="non-decreasing"):
        ql.Trace([1.0, 0.5], [1, 3], [1, 1])
    with pytest.raises(TraceError, match="one time per request"):
        ql.Trace([1.0], [1, 3], [1, 1])
    with pytest.raises(TraceError, match="shorter than the span"):
        ql.Trace([0.0, 5.0], [1, 3], [1, 1], window=4.0)
    with pytest.raises(TraceError, match="has no arrival times"):
        ql.Trace(None, [1, 3], [1, 1]).arrival_rate()
    with pytest.raises(TraceError, match="same second"):
        ql.Trace([2.0, 2.0], [1, 3], [1, 1]).arrival_rate()
    with pytest.raises(TraceError, match="per must be one of second, minute, hour"):
        ql.Trace([0.0, 2.0], [1, 3], [1, 1]).arrival_rate(per="day")


def test_law_options_are_validated():
    trace = ql.Trace(None, [1, 3], [1, 1])
    with pytest.raises(TraceError, match=r"scale must be an integer >= 1 \(tokens per block, at most 2\^53\), got 0"):
        trace.prompt_law(scale=0)
    with pytest.raises(TraceError, match=r"max_value must be an integer >= 1 or None \(at most 2\^53\), got 2.5"):
        trace.decode_law(max_value=2.5)
    with pytest.raises(TraceError, match="has no arrival times; iteration_seconds=0.1"):
        trace.request_type(iteration_seconds=0.1)


# -- laws, rates and request types ------------------------------------------------------
@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    st.lists(st.integers(0, 500), min_size=1, max_size=40),
    st.integers(1, 600),
    st.integers(1, 64),
)
def test_clipped_scaled_law_is_the_law_of_ceil_min_over_scale(prompts, clip, scale):
    data = np.array(prompts)
    law = ql.Trace(None, data, np.ones_like(data)).prompt_law(max_value=clip, scale=scale)
    blocks = [math.ceil(min(v, clip) / scale) for v in prompts]
    assert law.mean == sp.Rational(sum(blocks), len(blocks))
    assert dict(law.probabilities) == {v: sp.Rational(blocks.count(v), len(blocks)) for v in set(blocks)}


def test_clip_keeps_the_model_finite(conv):
    rt = conv.request_type(max_prompt=4096, max_decode=256)
    assert rt.prompt.support_max == 4096 and rt.decode.support_max == 256
    expected = np.minimum(conv.output_tokens, 256)
    assert rt.decode.mean == sp.Rational(int(expected.sum()), len(conv))


def test_request_type_arrivals_per_iteration_and_per_second(code):
    rate = len(code) / code.span
    rt = code.request_type(iteration_seconds=0.05, max_prompt=4096, max_decode=512, scale=8)
    assert isinstance(rt.arrivals, ql.Poisson)
    assert float(rt.arrival_rate) == pytest.approx(rate * 0.05 * 8, rel=1e-12)
    wall = code.request_type()
    assert wall.arrivals == ql.PoissonProcess(rate) and wall.prompt == code.prompt_law()
    lengths_only = ql.Trace(None, [3, 4], [1, 2]).request_type()
    assert lengths_only.arrivals is None


def test_split_rates_add_up_and_parts_partition(conv):
    parts = conv.split([512, 2048])
    names = ["azure-conv[prompt<512]", "azure-conv[512<=prompt<2048]", "azure-conv[2048<=prompt]"]
    assert [p.name for p in parts] == names
    assert sum(len(p) for p in parts) == len(conv)
    assert sum(p.arrival_rate() for p in parts) == pytest.approx(conv.arrival_rate(), rel=1e-12)
    assert parts[0].prompt_tokens.max() < 512 <= parts[1].prompt_tokens.min()
    assert parts[2].prompt_tokens.min() >= 2048
    with pytest.raises(TraceError, match=r"part 20000<=prompt of split\(\[20000\], by='prompt'\) is empty"):
        conv.split([20000])
    with pytest.raises(TraceError, match="increasing"):
        conv.split([5, 5])


def test_arrival_rate_interval_covers_the_rate_of_a_poisson_process():
    rng = np.random.default_rng(7)
    times = np.cumsum(rng.exponential(1 / 4.0, size=20_000))
    trace = ql.Trace(times - times[0], np.ones(times.size, int), np.ones(times.size, int), name="poisson")
    assert 4.0 in trace.arrival_rate_interval()
    assert trace.arrival_rate() == pytest.approx(4.0, rel=0.03)
    s = trace.summary()
    assert s["interarrival_cv"] == pytest.approx(1.0, abs=0.03)
    assert s["dispersion_per_second"] == pytest.approx(1.0, abs=0.05)


def test_counts_per_bin():
    trace = ql.Trace([0.0, 0.2, 1.0, 2.9, 3.0], [1] * 5, [1] * 5)
    assert trace.counts(1.0).tolist() == [2, 1, 2]  # the last arrival falls in the last bin


def test_slotted_request_type_runs_in_simulate(code):
    tau, scale = 0.03, 16
    rt = code.request_type(iteration_seconds=tau, max_prompt=4096, max_decode=512, scale=scale)
    model = ql.ContinuousBatching(types=[rt], kv_capacity=2000)
    run = ql.simulate(model, iterations=4000, seed=3)
    assert run.iterations == 4000 and run.completions.sum() > 0
    ci = batch_means_ci(run.arrivals[:, 0])
    assert float(rt.arrival_rate) in ci  # Poisson(rate * tau * scale) arrivals per iteration
    assert run.requests.decode.max() <= 512 // scale and run.requests.prompt.max() <= 4096 // scale


def test_wall_clock_request_type_runs_in_simulate(conv):
    rt = conv.request_type(max_prompt=4096, max_decode=512, scale=16)
    model = ql.ContinuousBatching(
        types=[rt], kv_capacity=3000, iteration_time=ql.LinearIterationTime(0.48), batch_cap=64
    )
    run = ql.simulate(model, iterations=1500, seed=5)
    assert run.time[-1] == pytest.approx(1500 * 0.48)
    assert run.completions.sum() > 0 and run.batch.sum(axis=(1, 2)).max() <= 64


# -- value semantics -------------------------------------------------------------------
def test_pickling_equality_and_immutability(code):
    for trace in (code, ql.Trace(None, [3, 4], [1, 2], name="x")):
        back = pickle.loads(pickle.dumps(trace))
        assert back == trace and hash(back) == hash(trace)
    rt = code.request_type(iteration_seconds=0.05, max_decode=512)
    assert pickle.loads(pickle.dumps(rt)) == rt
    assert code != code.subset(np.arange(10))
    with pytest.raises(dataclasses.FrozenInstanceError):
        code.name = "other"
    with pytest.raises(ValueError, match="read-only"):
        code.prompt_tokens[0] = 1


# -- the documentation -----------------------------------------------------------------
DOC = Path(__file__).resolve().parents[1] / "docs" / "traces.md"


def test_docs_examples_run(capsys):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) == 2
    exec(compile("\n".join(blocks), str(DOC), "exec"), {})
    out = capsys.readouterr().out
    assert "Trace(name='azure-conv', requests=19366, span=3501.72 s)" in out
    assert "memory-little/mean_kv" in out and "holds" in out


@pytest.mark.parametrize("name", ["azure-code", "azure-conv"])
def test_docs_table_matches_the_summary(name):
    row = next(line for line in DOC.read_text(encoding="utf-8").splitlines() if line.startswith(f"| {name} |"))
    cells = [c.strip().replace(",", "").replace("\u2212", "-") for c in row.strip("|").split("|")][1:]
    s = ql.load_trace(name).summary()
    expected = [
        s["count"], s["span_seconds"], s["rate_per_second"], s["prompt"]["mean"], s["output"]["mean"],
        s["correlation"]["pearson"], s["correlation"]["spearman"], s["interarrival_cv"], s["dispersion_per_second"],
    ]
    for cell, value in zip(cells, expected, strict=True):
        decimals = len(cell.split(".")[1]) if "." in cell else 0
        assert float(cell) == round(value, decimals), (cell, value)
