"""Hostile trace files (issue 11 item 3): encodings, long fields, far-off and unsorted
timestamps, dates outside 1678-2262, negative or overflowing token counts, huge histograms."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import queueing_llm as ql
from queueing_llm.errors import TraceError, TraceWarning

ROWS = "prompt,decode,arrival\n10,2,0.0\n20,3,1.5\n30,4,2.5\n"


def write_bytes(tmp_path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def load_quiet(path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("error", TraceWarning)  # these files must load without a warning
        return ql.load_trace(path, **kw)


@pytest.mark.parametrize(("name", "data"), [
    ("utf8.csv", ROWS.encode("utf-8")),
    ("bom.csv", b"\xef\xbb\xbf" + ROWS.encode("utf-8")),
    ("le.csv", ROWS.encode("utf-16")),  # Python writes a byte-order mark
    ("be.csv", b"\xfe\xff" + ROWS.encode("utf-16-be")),
    ("crlf.csv", ROWS.replace("\n", "\r\n").encode("utf-8")),
])
def test_encodings_load_the_same_trace(tmp_path, name, data) -> None:
    trace = load_quiet(write_bytes(tmp_path, name, data))
    assert trace.prompt_tokens.tolist() == [10, 20, 30] and trace.arrival_times.tolist() == [0.0, 1.5, 2.5]


def test_utf16_without_bom_is_refused_clearly(tmp_path) -> None:
    path = write_bytes(tmp_path, "nobom.csv", ROWS.encode("utf-16-le"))
    with pytest.raises(TraceError, match="not UTF-8 text .*NUL bytes.*save it as UTF-8"):
        ql.load_trace(path)


def test_other_encodings_are_refused_naming_the_byte(tmp_path) -> None:
    path = write_bytes(tmp_path, "latin.csv", "prompt,decode,note\n1,2,caf\xe9\n".encode("latin-1"))
    with pytest.raises(TraceError, match=r"is not UTF-8 text \(undecodable byte b'\\xe9'"):
        ql.load_trace(path)


def test_fields_longer_than_the_csv_default_limit_load(tmp_path) -> None:
    text = "x" * 200_000
    path = write_bytes(tmp_path, "long.csv", f'prompt,decode,text\n5,6,"{text}"\n'.encode())
    trace = load_quiet(path)
    assert trace.prompt_tokens.tolist() == [5] and trace.output_tokens.tolist() == [6]
    import csv

    assert csv.field_size_limit() == 131072  # the global limit is restored


def azure(rows: list[str]) -> bytes:
    return ("TIMESTAMP,ContextTokens,GeneratedTokens\n" + "\n".join(rows) + "\n").encode()


def test_azure_dates_outside_nanosecond_range_convert_right(tmp_path) -> None:
    rows = ["2262-04-11 23:59:59.0000000,1,1", "2262-04-12 00:00:00.0000000,1,1", "2262-04-12 00:00:01.5000000,1,1"]
    trace = load_quiet(write_bytes(tmp_path, "late.csv", azure(rows)))
    assert trace.arrival_times.tolist() == [0.0, 1.0, 2.5]  # was negative (int64 nanoseconds wrapped)


def test_far_off_timestamp_warns_naming_the_row_and_span(tmp_path) -> None:
    rows = [f"2023-11-16 18:17:{s:02d}.0000000,1,1" for s in range(10)] + ["0001-01-01 00:00:00.0000000,1,1"]
    with pytest.warns(TraceWarning) as record:
        trace = ql.load_trace(write_bytes(tmp_path, "placeholder.csv", azure(rows)))
    messages = [str(w.message) for w in record]
    far = [m for m in messages if "far from the others" in m]
    assert len(far) == 1 and "line(s) 12 " in far[0] and "against 9 s for the other 10 rows" in far[0]
    assert trace.span > 2022 * 365 * 86400  # converted right: 2022 years, not a wrapped value
    assert "1 row(s) arrive before" in " ".join(messages)


def test_far_off_arrival_in_generic_csv_warns(tmp_path) -> None:
    path = write_bytes(tmp_path, "g.csv", b"prompt,decode,arrival\n1,1,0\n1,1,1\n1,1,2\n1,1,1200000000\n")
    with pytest.warns(TraceWarning, match=r"line\(s\) 5 lie far from the others: they stretch the span to 1.2e\+09 s"):
        ql.load_trace(path)


def test_builtin_traces_load_without_warnings() -> None:
    for name in ql.builtin_traces():
        load_quiet(name)


@pytest.mark.parametrize("cell", ["-1", "1e30", "9223372036854775808", "-9223372036854775808"])
def test_bad_token_counts_in_files_are_refused(tmp_path, cell) -> None:
    path = write_bytes(tmp_path, "t.csv", f"prompt,decode\n{cell},1\n".encode())
    with pytest.raises(TraceError, match="line 2: column 'prompt' has"):
        ql.load_trace(path)


@pytest.mark.parametrize("tokens", [
    [-(2**63)], np.array([2**64 - 1], dtype=np.uint64), [2**63], np.array([2.0**60]), [True],
])
def test_bad_token_counts_in_arrays_are_refused(tokens) -> None:
    with pytest.raises(TraceError, match="prompt_tokens must be"):
        ql.Trace(None, tokens, [1] * len(tokens))


def test_counts_refuses_a_huge_histogram_naming_the_size() -> None:
    trace = ql.load_trace("azure-code")
    with pytest.raises(TraceError, match=r"needs 3\.436e\+09 bins .* use bin_seconds >= 0\.000344"):
        trace.counts(bin_seconds=1e-6)
    for bad in (float("nan"), float("inf"), 0, True, np.bool_(True)):
        with pytest.raises(TraceError, match="bin_seconds must be a finite number"):
            trace.counts(bin_seconds=bad)
    assert trace.counts(bin_seconds=np.float64(60.0)).sum() == len(trace)


def test_summary_of_a_trace_with_a_far_off_row_answers() -> None:
    trace = ql.Trace([0.0, 1.0, 2.0, 3e9], [1, 2, 3, 4], [1, 1, 1, 1], name="far")
    summary = trace.summary()
    assert summary["dispersion_per_second"] is None and summary["span_seconds"] == 3e9
    assert ql.load_trace("azure-code").summary()["dispersion_per_second"] > 0
