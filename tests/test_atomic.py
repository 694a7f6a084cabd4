"""Atomic files and folders (issue 11 item 6): no half results, no temporaries after an
interrupt, no files of two runs side by side, unwritable folders named."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import queueing_llm as ql
from queueing_llm.atomic import atomic_files, atomic_folder, file_mode, write_atomic
from queueing_llm.errors import OutputError


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_write_atomic_writes_with_umask_permissions_and_leaves_no_temporary(tmp_path) -> None:
    path = write_atomic(tmp_path / "sub" / "a.txt", "héllo\n")
    assert path.read_text(encoding="utf-8") == "héllo\n"
    assert (path.stat().st_mode & 0o777) == file_mode()
    assert hidden(path.parent) == []


def test_derivation_reexports_the_writer() -> None:
    from queueing_llm import derivation

    assert derivation.write_atomic is write_atomic


@pytest.mark.parametrize("where", ["/proc/self/no-such-folder/out", "/dev/null/out"])
def test_unwritable_folder_is_named(where) -> None:
    with pytest.raises(OutputError, match="cannot write .* into the folder '/(proc|dev)"):
        write_atomic(Path(where) / "a.txt", "x")
    with pytest.raises(OutputError, match="folder"):
        with atomic_folder(where) as tmp:
            (tmp / "a.txt").write_text("x")
    assert issubclass(OutputError, ql.ModelError)


def test_folder_is_replaced_whole_and_a_rerun_leaves_no_file_of_the_earlier_run(tmp_path) -> None:
    target = tmp_path / "report"
    with atomic_folder(target, owned=("a.txt", "b.png")) as tmp:
        (tmp / "a.txt").write_text("run 1")
        (tmp / "b.png").write_text("run 1")
    assert sorted(os.listdir(target)) == ["a.txt", "b.png"]
    with atomic_folder(target, owned=("a.txt", "b.png")) as tmp:  # run 2 makes no figure
        (tmp / "a.txt").write_text("run 2")
    assert sorted(os.listdir(target)) == ["a.txt"] and (target / "a.txt").read_text() == "run 2"
    assert hidden(tmp_path) == []


def test_foreign_files_in_the_target_are_kept(tmp_path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    (target / "a.txt").write_text("old")
    (target / "b.png").write_text("old")
    with atomic_folder(target, owned=("a.txt", "b.png")) as tmp:
        (tmp / "a.txt").write_text("new")
    assert sorted(os.listdir(target)) == ["a.txt", "notes.txt"]
    assert (target / "a.txt").read_text() == "new" and hidden(tmp_path) == []


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_a_failed_run_leaves_the_earlier_result_intact(tmp_path, error) -> None:
    target = tmp_path / "out"
    with atomic_folder(target, owned=("a.txt",)) as tmp:
        (tmp / "a.txt").write_text("good")
    with pytest.raises(type(error)):
        with atomic_folder(target, owned=("a.txt",)) as tmp:
            (tmp / "a.txt").write_text("half")
            raise error
    assert os.listdir(target) == ["a.txt"] and (target / "a.txt").read_text() == "good"
    assert hidden(tmp_path) == []


def test_stale_temporaries_of_dead_processes_are_removed(tmp_path) -> None:
    dead = 2**22 + 12345  # beyond the default pid_max: no such process
    (tmp_path / f".out.tmp-{dead}-abc").mkdir()
    (tmp_path / f".out.tmp-{dead}-abc" / "x").write_text("left over")
    (tmp_path / f".a.txt.tmp-{dead}-xyz.tmp").write_text("")
    with atomic_folder(tmp_path / "out") as tmp:
        (tmp / "f").write_text("1")
    write_atomic(tmp_path / "a.txt", "1")
    assert hidden(tmp_path) == []


def test_atomic_files_replace_together_or_not_at_all(tmp_path) -> None:
    a, b = tmp_path / "t.csv", tmp_path / "t.csv.json"
    with atomic_files(a, b) as (ta, tb):
        ta.write_text("1")
        tb.write_text("1")
    with pytest.raises(RuntimeError):
        with atomic_files(a, b) as (ta, tb):
            ta.write_text("2")
            raise RuntimeError("between the two files")
    assert a.read_text() == "1" and b.read_text() == "1" and hidden(tmp_path) == []


_SLOW_WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from queueing_llm.atomic import atomic_folder
    with atomic_folder(sys.argv[1], owned=("a.txt",)) as tmp:
        (tmp / "a.txt").write_text("half")
        Path(sys.argv[2]).write_text("ready")
        time.sleep(60)
""")


def test_sigterm_during_a_folder_write_removes_the_temporaries(tmp_path) -> None:
    target, ready = tmp_path / "out", tmp_path / "ready"
    target.mkdir()
    (target / "a.txt").write_text("earlier run")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_WRITER, str(target), str(ready)], env=env)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert time.monotonic() < deadline and proc.poll() is None, "the writer did not start"
            time.sleep(0.05)
        assert any(n.startswith(".out.tmp-") for n in hidden(tmp_path))  # the write is in progress
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == -signal.SIGTERM  # still ends as terminated by the signal
    finally:
        if proc.poll() is None:
            proc.kill()
    assert hidden(tmp_path) == []
    assert (target / "a.txt").read_text() == "earlier run"


def _build(rate: float) -> ql.ContinuousBatching:
    return ql.ContinuousBatching([ql.RequestType(prompt=1, decode=2, arrivals=rate)], kv_capacity=50)


def test_sweep_csv_and_metadata_written_together(tmp_path) -> None:
    res = ql.sweep(_build, ql.grid(rate=[0.5]), iterations=200, seed=1, replications=2)
    out = res.to_csv(tmp_path / "s.csv")
    assert out == tmp_path / "s.csv" and (tmp_path / "s.csv.json").exists()
    assert hidden(tmp_path) == []


def test_report_rewrite_that_fails_leaves_the_earlier_report_whole(tmp_path, monkeypatch) -> None:
    from queueing_llm.report import run

    out = tmp_path / "r"
    rep = run.report(iterations=400, names=["fixed-point"], output=out)
    before = {name: (out / name).read_bytes() for name in os.listdir(out)}
    assert set(before) == set(run.FILES)
    assert rep.paths["report.md"] == out / "report.md"

    def broken(*args, **kwargs):
        raise RuntimeError("figure failed")

    monkeypatch.setattr(run, "plot_stage_occupancy", broken)
    with pytest.raises(RuntimeError, match="figure failed"):
        rep.write(out)
    assert {name: (out / name).read_bytes() for name in os.listdir(out)} == before
    assert hidden(tmp_path) == []


def test_symlinked_and_working_folders_are_written_into_not_replaced(tmp_path, monkeypatch) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (real / "a.txt").write_text("old")
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    with atomic_folder(link, owned=("a.txt",)) as tmp:
        (tmp / "a.txt").write_text("new")
    assert link.is_symlink() and (real / "a.txt").read_text() == "new"
    monkeypatch.chdir(real)
    with atomic_folder(".", owned=("a.txt",)) as tmp:
        (tmp / "a.txt").write_text("newer")
    assert Path.cwd() == real and (real / "a.txt").read_text() == "newer" and os.listdir(real) == ["a.txt"]
    assert hidden(tmp_path) == []
