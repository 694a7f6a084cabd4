"""The report layer: tables (LaTeX booktabs, Markdown, CSV), figures, the report job and its command."""

import json
import math
import re
import subprocess
from pathlib import Path

import pytest
import sympy as sp

import queueing_llm as ql
from queueing_llm.cli import main
from queueing_llm.report import (
    FILES,
    VERDICT_COLUMNS,
    format_value,
    plot_stage_occupancy,
    plot_trajectory,
    read_csv,
    report,
    save_figure,
    theorem_rows,
    to_csv,
    to_latex,
    to_markdown,
    verdict_rows,
)
from queueing_llm.verify import estimate_mean, judge

ROOT = Path(__file__).resolve().parents[1]
PROVENANCE_KEYS = ("model", "seed", "iterations", "queueing_llm", "python", "numpy", "sympy", "git_commit")

ROWS = [
    {"name": "mean_kv", "note": "5% load & more", "value": 1.23456789, "count": 3, "holds": True, "ci": None},
    {"name": "x_star", "note": "a|b {c} #1", "value": math.inf, "count": 12, "holds": False, "ci": 0.25},
]


def stable_queue():
    return ql.ContinuousBatching(ql.RequestType(2, ql.Geometric(0.25), arrivals=1.5), batch_cap=8, policy="fcfs_cap")


def leftovers(folder):
    """Temporary files an interrupted atomic write would leave behind."""
    return [p.name for p in Path(folder).iterdir() if p.name.startswith(".") or p.name.endswith(".tmp")]


# -- a user theorem: the mean batch of a stable batch-capped queue is lambda E[l1] (Little) ---------

MEAN_BATCH = sp.Symbol(r"\bar{b}")


def _mean_batch(model):
    return model.types[0].arrival_rate * model.types[0].l1


def _applies(model):
    return None if model.policy.name == "fcfs_cap" and model.K == 1 else "needs one type and policy fcfs_cap"


USER_THEOREM = ql.Theorem(
    name="user-mean-batch",
    title="Mean batch of a stable batch-capped queue (a user's theorem)",
    hypotheses=("policy fcfs_cap, one type", "lambda E[l1] < B"),
    statement_fn=lambda m: sp.Eq(MEAN_BATCH, _mean_batch(m)),
    evaluate_fn=lambda m: {"mean_batch": _mean_batch(m)},
    check_fn=lambda m, runs, prediction, level=0.95: judge(
        "user-mean-batch", "mean_batch", prediction["mean_batch"], estimate_mean(runs, lambda r: r.batch_size, level)
    ),
    source="Little's law on the batch (test)",
    applies_fn=_applies,
)


@pytest.fixture
def user_theorem():
    ql.theorems.register(USER_THEOREM)
    try:
        yield USER_THEOREM
    finally:
        ql.theorems.unregister(USER_THEOREM.name)


# -- tables ----------------------------------------------------------------------------------------


def test_latex_is_booktabs_escaped_and_formatted():
    tex = to_latex(ROWS, ["name", "note", "value", "count", "holds", "ci"], caption="Load 5% of M_1")
    lines = tex.splitlines()
    assert lines[:4] == [r"\begin{table}[ht]", r"\centering", r"\caption{Load 5\% of M\_1}",
                         r"\begin{tabular}{llrrlr}"]
    assert [ln for ln in lines if ln in (r"\toprule", r"\midrule", r"\bottomrule")] == [
        r"\toprule", r"\midrule", r"\bottomrule"]
    assert r"mean\_kv & 5\% load \& more & 1.23457 & 3 & yes &  \\" in lines
    assert r"x\_star & a$|$b \{c\} \#1 & $\infty$ & 12 & no & 0.25 \\" in lines
    assert tex.rstrip().endswith(r"\end{table}")
    bare = to_latex(ROWS, ["name"])
    assert bare.startswith(r"\begin{tabular}{l}") and r"\caption" not in bare


def test_latex_math_columns_are_not_escaped():
    rows = [{"key": "x_star", "exact": r"\frac{100}{61}"}]
    tex = to_latex(rows, ["key", "exact"], math_columns=["exact"])
    assert r"x\_star & $\frac{100}{61}$ \\" in tex


def test_tables_name_a_missing_column():
    with pytest.raises(ql.ModelError, match="rows\\[0\\] has no column 'missing'"):
        to_markdown(ROWS, ["name", "missing"])
    with pytest.raises(ql.ModelError, match="columns must be a non-empty sequence"):
        to_latex(ROWS, "name")


def test_markdown_round_trip():
    md = to_markdown(ROWS, ["name", "note", "value", "count", "holds"])
    lines = md.strip().splitlines()
    assert lines[1] == "| --- | --- | ---: | ---: | --- |"
    parsed = [[cell.strip().replace(r"\|", "|") for cell in re.split(r"(?<!\\)\|", line)[1:-1]] for line in lines]
    assert parsed[0] == ["name", "note", "value", "count", "holds"]
    assert parsed[2:] == [[format_value(row[c]) for c in parsed[0]] for row in ROWS]


def test_csv_round_trip_is_exact_and_atomic(tmp_path):
    path = to_csv(ROWS, tmp_path / "rows.csv")
    back = read_csv(path)
    assert [list(r) for r in back] == [list(ROWS[0])] * 2
    for row, text in zip(ROWS, back, strict=True):
        assert float(text["value"]) == row["value"] and int(text["count"]) == row["count"]
        assert text["note"] == row["note"] and text["holds"] == str(row["holds"])
        assert text["ci"] == ("" if row["ci"] is None else repr(row["ci"]))
    assert leftovers(tmp_path) == []
    assert (path.stat().st_mode & 0o044) == 0o044  # readable like any new file, not mkstemp's 0600


def test_failed_figure_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "figure.png"
    target.write_bytes(b"old")

    class Broken:
        def savefig(self, fh, **kwargs):
            fh.write(b"half an image")
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        save_figure(Broken(), target)
    assert target.read_bytes() == b"old"
    assert leftovers(tmp_path) == []


@pytest.mark.slow
def test_theorem_rows_are_exact_and_include_user_theorems(user_theorem):
    rows = theorem_rows(ql.default_model())
    by_key = {(r["theorem"], r["key"]): r for r in rows}
    x_star = by_key[("fixed-point", "x_star")]
    assert x_star["exact"] == "100/61" and x_star["value"] == 100 / 61
    assert x_star["exact_latex"] == r"\frac{100}{61}"
    assert x_star["statement"] == ql.theorems["fixed-point"].latex(ql.default_model())
    assert by_key[("linear-map", "stable")]["value"] is None  # a bool is not a float
    assert "cycles" in {r["theorem"] for r in rows} and ("cycles", "contiguous[...]") in by_key
    assert "user-mean-batch" not in {r["theorem"] for r in rows}  # does not apply to greedy

    queue_rows = theorem_rows(stable_queue())
    mine = [r for r in queue_rows if r["theorem"] == "user-mean-batch"]
    assert [(r["key"], r["exact"], r["value"]) for r in mine] == [("mean_batch", "6", 6.0)]
    assert mine[0]["statement"] == r"\bar{b} = 6" and mine[0]["source"] == "Little's law on the batch (test)"


def test_theorem_rows_of_an_unregistered_theorem_are_gone(user_theorem):
    assert any(r["theorem"] == "user-mean-batch" for r in theorem_rows(stable_queue()))
    ql.theorems.unregister("user-mean-batch")
    try:
        assert all(r["theorem"] != "user-mean-batch" for r in theorem_rows(stable_queue()))
    finally:
        ql.theorems.register(USER_THEOREM)  # the fixture unregisters it


def test_theorem_rows_named_theorems_must_exist_and_apply():
    assert {r["theorem"] for r in theorem_rows(ql.default_model(), ["fixed-point"])} == {"fixed-point"}
    with pytest.raises(ql.ModelError, match="no theorem named 'nope'"):
        theorem_rows(ql.default_model(), ["nope"])
    with pytest.raises(ql.ModelError, match="'stability' does not apply"):
        theorem_rows(ql.default_model(), ["stability"])


def test_theorem_rows_of_a_symbolic_model_keep_symbols():
    l0, l1, M = sp.symbols("l0 l1 M", positive=True)
    model = ql.ContinuousBatching([ql.RequestType(prompt=l0, decode=l1)], kv_capacity=M)
    row = next(r for r in theorem_rows(model, ["fixed-point"]) if r["key"] == "x_star")
    exact = sp.sympify(row["exact"], locals={"l0": l0, "l1": l1, "M": M})
    assert sp.simplify(exact - 2 * M / (l1 * (2 * l0 + l1 + 1))) == 0
    assert row["value"] is None


def test_verdict_rows_carry_the_run_kind():
    verdict = judge("t", "q", 1.0, estimate_mean(ql.simulate(stable_queue(), 400, seed=2, engine="fast"),
                                                  lambda r: r.batch_size))
    assert verdict_rows([verdict])[0]["run"] is None
    assert verdict_rows([verdict], {"t": "saturated"})[0]["run"] == "saturated"
    assert list(verdict_rows([verdict])[0]) == list(VERDICT_COLUMNS)


def test_verdict_rows_reject_other_values():
    with pytest.raises(ql.ModelError, match=r"verdicts\[0\] must be a Verdict"):
        verdict_rows(["holds"])


# -- figures ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_figures_are_png_and_validate_their_input(tmp_path):
    run = ql.simulate(ql.default_model(), 600, seed=3, engine="fast")
    for plot, name in ((plot_trajectory, "t.png"), (plot_stage_occupancy, "s.png")):
        path = plot(run, tmp_path / name, window=(100, 600))
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert leftovers(tmp_path) == []
    with pytest.raises(ql.ModelError, match="window stop must be an integer in \\[101, 600\\]"):
        plot_trajectory(run, tmp_path / "x.png", window=(100, 100))
    with pytest.raises(ql.ModelError, match="trajectory must be a Trajectory"):
        plot_stage_occupancy("run", tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


# -- the report job --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def default_report(tmp_path_factory):
    return report(output=tmp_path_factory.mktemp("default"))


@pytest.fixture(scope="module")
def queue_report(tmp_path_factory):
    ql.theorems.register(USER_THEOREM)
    try:
        return report(stable_queue(), output=tmp_path_factory.mktemp("queue"))
    finally:
        ql.theorems.unregister(USER_THEOREM.name)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["default_report", "queue_report"])
def test_report_writes_every_file_with_provenance(request, name):
    rep = request.getfixturevalue(name)
    folder = Path(rep.paths["report.md"]).parent
    assert sorted(rep.paths) == sorted(FILES)
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)  # nothing else, no temporaries
    assert all(Path(p).stat().st_size > 0 for p in rep.paths.values())
    prov = json.loads((folder / "provenance.json").read_text())
    for key in PROVENANCE_KEYS:
        assert key in prov
    assert prov["model"] == rep.model.to_dict() and prov["seed"] == 1 and prov["iterations"] == 20_000
    assert prov["sympy"] == sp.__version__ and prov["queueing_llm"] == ql.__version__
    assert prov["engine"] == "fast"
    csv_rows = read_csv(folder / "verdicts.csv")
    assert [(r["theorem"], str(float(r["estimate"])), r["run"], r["test"], r["status"]) for r in csv_rows] == [
        (r["theorem"], str(r["estimate"]), r["run"], r["test"], r["status"]) for r in rep.verdict_rows]
    assert prov["runs"] == rep.run_info and prov["runs"]["open"]["iterations"] == 20_000
    tex = (folder / "verdicts.tex").read_text()
    assert r"\toprule" in tex and r"\bottomrule" in tex
    theorems_tex = (folder / "theorems.tex").read_text()
    assert all(rf"\paragraph{{{r['theorem']}}}" in theorems_tex for r in rep.theorem_rows)
    assert (folder / "trajectory.png").read_bytes()[:4] == b"\x89PNG"
    md = (folder / "report.md").read_text()
    assert "![queue, batch and memory](trajectory.png)" in md
    assert all(f"**{name}**" in md for name in rep.skipped)


@pytest.mark.slow
def test_git_commit_is_the_checkout_head(default_report):
    commit = default_report.provenance["git_commit"]
    if (ROOT / ".git").exists():
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
        assert commit == head.stdout.strip()
    else:
        assert commit is None or re.fullmatch(r"[0-9a-f]{40}", commit)


FAMILY_BC = ("stability", "overload-drift", "renewal-transient", "equilibrium-stage", "stationary", "lyapunov-bounds",
             "waiting-cap", "memory-little", "fluid-benchmark", "nsz-threshold")


@pytest.mark.slow
def test_default_model_memory_little_does_not_apply_and_says_why(default_report):
    rows = {r["theorem"]: r for r in default_report.verdict_rows}
    little = rows["memory-little"]
    # greedy at lambda = 1.2 evicts: a violated hypothesis, not a failure; the theory is evaluate's
    assert little["holds"] is None and little["status"] == "does not apply" and little["test"] == "does not apply"
    assert "evicted" in little["reason"] and little["ci_low"] is None
    assert little["theory"] == float(ql.theorems["memory-little"].evaluate(default_report.model)["mean_kv"]) == 1464
    text = default_report.to_text()
    assert re.search(r"^memory-little/mean_kv +tokens \(per iteration\) +open +does not apply +1464 +does not apply$",
                     text, re.M)
    assert "does not apply memory-little: " + little["reason"] in text
    assert "FAILS memory-little" not in text
    md = (Path(default_report.paths["report.md"]).parent / "report.md").read_text()
    assert f"- **memory-little** (does not apply): {little['reason']}" in md
    assert little["run"] == "open"


@pytest.mark.slow
def test_default_model_family_b_c_rows_are_right(default_report):
    rows = {r["theorem"]: r for r in default_report.verdict_rows}
    assert not [r for r in default_report.failures if r["theorem"] in FAMILY_BC]
    nsz = rows["nsz-threshold"]  # the tight case: the relaxed map rate-limited at x* = mu completes mu exactly
    assert nsz["holds"] is True and nsz["test"] == "exact" and nsz["run"] == "relaxed, rate_limited(x*)"
    assert nsz["theory"] == pytest.approx(100 / 61) and nsz["unit"] == "completions per iteration"
    assert "reaches down" not in nsz["reason"]
    info = default_report.run_info["relaxed, rate_limited(x*)"]
    assert info["kind"] == "relaxed" and info["iterations"] == 1500 and info["first_eviction"] is None
    for name in FAMILY_BC:
        if name not in rows:
            assert default_report.skipped[name].startswith("does not apply"), default_report.skipped[name]
    assert default_report.runs["open"] is default_report.trajectory
    # every verdict used exactly the runs its theorem declares (the open run for a theorem declaring none)
    for name, row in rows.items():
        specs = ql.theorems[name].runs
        assert row["run"] == (" + ".join(s.label for s in specs) if specs else "open")
        assert default_report.run_kinds[name] == row["run"]
    assert set(default_report.run_info) == {"open"} | {
        s.label for name in rows for s in ql.theorems[name].runs}
    assert json.loads(default_report.to_json())["runs"]["open"]["iterations"] == 20_000


def test_a_declared_run_that_cannot_be_built_is_reported_with_its_reason():
    from queueing_llm.runs import relaxed_run

    relaxed_user = ql.Theorem(
        name="user-relaxed", title="a user's theorem on the relaxed map", hypotheses=("finite M",),
        statement_fn=lambda m: sp.Eq(MEAN_BATCH, 0), evaluate_fn=lambda m: {"mean_batch": 0},
        check_fn=USER_THEOREM.check_fn, runs=(relaxed_run(label="relaxed from empty"),))
    ql.theorems.register(relaxed_user)
    try:
        rep = report(stable_queue(), iterations=2000, names=["user-relaxed", "stability"])
    finally:
        ql.theorems.unregister("user-relaxed")
    assert [r["theorem"] for r in rep.verdict_rows] == ["stability"]
    why = rep.skipped["user-relaxed"]
    assert why.startswith("declared run not built: the declared relaxed from empty run cannot be built: ")
    assert "error" in rep.run_info["relaxed from empty"] and "relaxed from empty" not in rep.runs
    assert "user-relaxed (declared run not built)" in rep.to_text()


def test_runs_declared_by_several_theorems_are_built_once():
    rep = report(stable_queue(), iterations=3000, names=["renewal-transient", "equilibrium-stage", "stability"])
    assert [(r["theorem"], r["run"]) for r in rep.verdict_rows] == [
        ("renewal-transient", "saturated"), ("equilibrium-stage", "saturated"), ("stability", "open")]
    assert list(rep.run_info) == ["open", "saturated"] and rep.run_info["saturated"]["iterations"] == 3000
    assert rep.runs["saturated"].saturated and rep.all_hold


def test_report_on_the_python_loop_says_so(monkeypatch, tmp_path):
    """The report names the backend that ran (``Trajectory.backend``), not "fast engine": here
    the kernel is made not to apply, so ``engine="fast"`` runs the Python loop."""
    import queueing_llm.sim.kernel as kernel

    monkeypatch.setattr(kernel, "kernel_applies", lambda config: False)
    rep = report(stable_queue(), iterations=3000, names=["stability"], output=tmp_path)
    assert rep.trajectory.backend == "python" and rep.backends == {"open": ["python"]}
    md, tex = (tmp_path / "report.md").read_text(), (tmp_path / "report.tex").read_text()
    for text in (md, tex, rep.to_text()):
        assert "fast engine" not in text
        assert "backend python (Python loop)" in text
        assert "numba" not in text.split("## Provenance")[0] and "several backends" not in text
    assert rep.run_info["open"]["backends"] == ["python"] and rep.run_info["open"]["engine"] == "fast"
    assert json.loads((tmp_path / "provenance.json").read_text())["backend"] == "python"


def test_report_lists_the_backends_of_runs_that_differ(monkeypatch):
    """Runs on different backends are each named: the open run on the compiled kernel, the
    saturated run (made to miss the kernel here) on the Python loop."""
    import queueing_llm.sim.kernel as kernel

    applies = kernel.kernel_applies
    monkeypatch.setattr(kernel, "kernel_applies", lambda config: not config.saturated and applies(config))
    rep = report(stable_queue(), iterations=3000, names=["renewal-transient", "stability"])
    assert rep.backends == {"open": ["numba"], "saturated": ["python"]}
    md = rep.to_markdown()
    assert "3000 iterations, seed 1, backend numba (compiled kernel)" in md
    assert ("The runs ran on several backends: open: backend numba (compiled kernel); "
            "saturated: backend python (Python loop).") in md
    assert re.search(r"\*\*saturated\*\*: .*backend python \(Python loop\)", md)
    assert "fast engine" not in md
    assert "several backends" in rep.to_text()
    with_default = report(stable_queue(), iterations=3000, names=["stability"])
    assert with_default.backends == {"open": ["numba"]} and with_default.backends_text() is None


def test_strict_report_exits_1_when_a_verdict_fails(tmp_path):
    from queueing_llm.cli import main

    wrong = ql.Theorem(
        name="user-wrong-mean-batch", title="a wrong mean batch", hypotheses=("fcfs_cap",),
        statement_fn=lambda m: sp.Eq(MEAN_BATCH, 0), evaluate_fn=lambda m: {"mean_batch": 2 * _mean_batch(m)},
        check_fn=USER_THEOREM.check_fn, applies_fn=_applies)
    args = ["report", "--type", "2,3,1.5", "--batch-cap", "8", "--policy", "fcfs_cap", "--iterations", "2000"]
    assert main([*args, "--theorem", "stability", "--strict"]) == 0
    ql.theorems.register(wrong)
    try:
        assert main([*args, "--theorem", "user-wrong-mean-batch", "--strict"]) == 1
        assert main([*args, "--theorem", "user-wrong-mean-batch"]) == 0  # without --strict: printed, status 0
    finally:
        ql.theorems.unregister(wrong.name)


@pytest.mark.slow
def test_stable_queue_verdicts_hold_including_the_users_theorem(queue_report):
    rows = {r["theorem"]: r for r in queue_report.verdict_rows}
    assert set(rows) == {"memory-little", "stability", "overload-drift", "stationary", "lyapunov-bounds",
                         "renewal-transient", "equilibrium-stage", "user-mean-batch"}
    assert queue_report.all_hold and all(r["status"] == "holds" for r in rows.values())
    stationary = rows["stationary"]
    assert stationary["ci_low"] <= stationary["theory"] <= stationary["ci_high"] and stationary["level"] == 0.95
    assert rows["user-mean-batch"]["theory"] == 6.0
    assert any(r["theorem"] == "user-mean-batch" for r in queue_report.theorem_rows)
    assert rows["renewal-transient"]["run"] == rows["equilibrium-stage"]["run"] == "saturated"  # as declared
    assert {r["run"] for r in rows.values()} == {"open", "saturated"}
    assert list(queue_report.run_info) == ["open", "saturated"]
    lyapunov = rows["lyapunov-bounds"]  # the theory column shows a bound from evaluate, never a midpoint
    bounds = ql.theorems["lyapunov-bounds"].evaluate(queue_report.model)
    assert lyapunov["theory"] in (float(bounds["lower"]), float(bounds["upper"]))
    assert lyapunov["test"] == "bounds (lower and upper)" and "% of the exact stationary mean" in lyapunov["reason"]
    assert rows["stability"]["unit"] == "completions per iteration"
    assert "user-mean-batch" not in ql.theorems  # the fixture cleaned up


def test_report_is_reproducible_and_json_ready():
    a = report(stable_queue(), iterations=2000, seed=7, names=["stationary", "renewal-transient"])
    b = report(stable_queue(), iterations=2000, seed=7, names=["stationary", "renewal-transient"])
    assert a.verdict_rows == b.verdict_rows and a.paths == {}
    assert [(r["theorem"], r["run"]) for r in a.verdict_rows] == [("stationary", "open"),
                                                                    ("renewal-transient", "saturated")]
    data = json.loads(a.to_json())
    assert data["provenance"]["theorems"] == ["stationary", "renewal-transient"]


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"iterations": 0}, "iterations must be an integer in [1, inf), got 0"),
        ({"names": ["nope"]}, "no theorem named 'nope'"),
        ({"names": "stationary"}, "names must be a sequence of theorem names"),
        ({"level": 1.0}, "level must be a number in (0, 1)"),
        ({"model": "greedy"}, "model must be a ContinuousBatching"),
    ],
)
def test_report_rejects_bad_input(kwargs, fragment):
    with pytest.raises(ql.ModelError) as err:
        report(**kwargs)
    assert fragment in str(err.value)


def test_report_output_must_be_a_folder(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ql.ParameterError, match="output must be a folder, got the existing file"):
        report(iterations=100, output=tmp_path / "file")


# -- the command -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_report_prints_the_table_and_writes_files(capsys, tmp_path):
    code = main(["report", "--iterations", "3000", "--seed", "2", "--output", str(tmp_path / "out")])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert re.search(r"^theorem/quantity +unit +run +test +theory +simulation +95% CI +verdict$", out.out, re.M)
    assert "memory-little/mean_kv" in out.out and "not verified:" in out.out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(FILES)


def test_cli_report_json_for_a_typed_model(capsys):
    code = main(["report", "--type", "2,3,1.5", "--batch-cap", "8", "--policy", "fcfs_cap",
                 "--iterations", "3000", "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    data = json.loads(out.out)
    assert data["seed"] == 1 and data["model"]["policy"] == "fcfs_cap"
    assert {r["theorem"] for r in data["verdicts"]} >= {"stability", "memory-little"}


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["report", "--iterations", "0"], "iterations must be an integer in [1, inf), got 0"),
        (["report", "--theorem", "nope"], "no theorem named 'nope'"),
        (["report", "--theorem", "stability"], "'stability' does not apply to this model"),
        (["report", "--level", "2"], "level must be a number in (0, 1), got 2"),
        (["report", "--policy", "fifo"], "policy must be one of"),
        (["report", "--seed", "x"], "--seed"),
        (["report", "--output", "/dev/null/out"], "output folder '/dev/null/out' cannot be created"),
    ],
)
def test_cli_report_bad_input_one_line_exit_2(capsys, argv, fragment):
    try:
        code = main(argv)
    except SystemExit as stop:  # argparse-level errors
        code = stop.code
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert fragment in lines[0] and "Traceback" not in err
