"""The documentation: build_theory.py writes the theory chapter from the registry, and the
whole site builds with ``sphinx-build -W`` (every warning an error) from the installed package.

The Sphinx build runs on a copy of ``docs/`` in a temporary folder (with ``CHANGELOG.md``
beside it, as in the repository), so a test run never writes into the source tree; the
generated chapter comes from the scripts of ``proofs/`` and ``build_theory.py`` exactly as
``make -C docs html`` makes it. The subprocesses import ``queueing_llm`` the way the test
process's environment does: in CI the package installed by ``pip install '.[test]'``.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import queueing_llm as ql
from queueing_llm.derivation import Derivation

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_build_theory_writes_every_theorem_and_the_derivations(tmp_path):
    proofs = tmp_path / "proofs"
    d = Derivation("A tiny derivation", "[test]")
    d.say("Context with $x = 1$.")
    d.equal("an identity", "(x + 1)**2", "x**2 + 2*x + 1")
    d.write(proofs / "tiny.tex")
    out = tmp_path / "generated"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "build_theory.py"), str(out), "--proofs", str(proofs)],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = (out / "theory.rst").read_text(encoding="utf-8")
    for name in ql.theorems:  # the subprocess registers the same built-in theorems
        assert f"(``{name}``)" in text, name
    assert ".. math::" in text and r"\mu &= \frac{2 M}{l_{1} \left(2 l_{0} + l_{1} + 1\right)}" in text
    assert "**Step 1.** Context with :math:`x = 1`." in text
    assert r"\left(x + 1\right)^{2} &= x^{2} + 2 x + 1" in text
    # heading levels: '-' sections, '^' families and derivations, '~' theorems, in that order
    assert "A tiny derivation\n^^^^^^^^^^^^^^^^^" in text


def test_docs_sources_hang_together():
    docs = ROOT / "docs"
    index = (docs / "index.rst").read_text(encoding="utf-8")
    for page in ("guide", "model", "theory", "references", "api"):
        assert f"   {page}\n" in index and (docs / f"{page}.rst").is_file()
    for page in ("user_theorems", "traces", "cli", "changelog"):
        assert f"   {page}\n" in index and (docs / f"{page}.md").is_file()
    assert ".. include:: generated/theory.rst" in (docs / "theory.rst").read_text(encoding="utf-8")
    assert "build_theory.py" in (docs / "Makefile").read_text(encoding="utf-8")


# -- the docs stand alone ------------------------------------------------------------------

CONTRACT_FILES = ("MODEL" + ".md", "REFERENCES" + ".md")  # split so this file does not cite them


def tracked_text_files():
    """Every text file of the repository under version control (or on disk without git)."""
    proc = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode == 0 and proc.stdout.strip():
        names = proc.stdout.splitlines()
    else:  # a source tree without git: walk it
        names = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if p.is_file()
                 and not {".git", ".venv", "_build", "generated", "__pycache__"} & set(p.parts)]
    for name in names:
        path = ROOT / name
        if path.suffix in {".py", ".md", ".rst", ".txt", ".cfg", ".toml", ".cff", ""} and path.is_file():
            yield path


def test_docs_cite_their_own_chapters_not_files_outside_the_repository():
    offenders = []
    for path in tracked_text_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for n, line in enumerate(text.splitlines(), 1):
            if any(name in line for name in CONTRACT_FILES):
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not offenders, "cite the model / references chapters instead:\n" + "\n".join(offenders)


def test_model_and_references_chapters_have_the_cited_sections():
    model = (ROOT / "docs" / "model.rst").read_text(encoding="utf-8")
    titles = re.findall(r"^(\d)\. (.+)\n-+$", model, re.M)
    assert [t[0] for t in titles] == ["1", "2", "3", "4", "5"], titles
    assert "One iteration" in titles[1][1] and "catalogue" in titles[4][1]
    for item in ("A.1", "A.2", "A.3", "A.4", "A.5", "A.6", "A.7", "A.8", "A.9", "B.1", "B.2", "B.3", "B.4",
                 "B.5", "B.6", "B.7", "C.1", "C.2", "C.3", "C.4", "C.5"):
        assert f"**{item} " in model, item
    # each built-in theorem is named in the catalogue
    builtin = [n for n, t in ql.theorems.items() if t.statement_fn.__module__.startswith("queueing_llm.")]
    assert builtin and all(f"(``{name}``" in model or f"``{name}``)" in model for name in builtin), builtin
    refs = (ROOT / "docs" / "references.rst").read_text(encoding="utf-8")
    assert [t[0] for t in re.findall(r"^(\d)\. (.+)\n-+$", refs, re.M)] == ["1", "2", "3"]


def test_license_citation_and_changelog():
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    version = re.search(r'^version = "(.+)"$', pyproject, re.M).group(1)
    assert 'license = {text = "MIT"}' in pyproject
    license_text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert license_text.startswith("MIT License") and "queueing-llm developers" in license_text
    yaml = pytest.importorskip("yaml", reason="PyYAML comes with distributed, of the test extra")
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    assert cff["cff-version"] == "1.2.0" and cff["version"] == version and cff["license"] == "MIT"
    assert cff["message"] and cff["title"] and cff["type"] == "software"
    assert all("name" in a or "family-names" in a for a in cff["authors"])
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(cff["date-released"]))
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## \[(.+?)\]", changelog, re.M)
    assert headings[:2] == ["Unreleased", version], headings


def _wall(types, d0, d1, kv):
    return ql.ContinuousBatching(
        types=[ql.RequestType(prompt=l0, decode=l1, arrivals=ql.PoissonProcess(rate)) for l0, l1, rate in types],
        kv_capacity=kv, iteration_time=ql.LinearIterationTime(d0, d1))


def test_references_chapter_quotes_what_the_package_computes():
    """The [derived] numbers of the references chapter, section 2, recomputed (the worked
    example and the [NSZ26] setting are pinned in tests/test_capacity.py)."""
    import sympy as sp

    from queueing_llm.theory.capacity import fluid_benchmark

    refs = (ROOT / "docs" / "references.rst").read_text(encoding="utf-8")
    text = " ".join(refs.split()).replace("\\,", ",")  # one line, LaTeX thin spaces as commas

    def quoted(value, shown):
        assert shown in text, shown
        digits = len(shown.split(".")[1]) if "." in shown else 0
        assert round(float(value), digits) == float(shown.replace(",", "")), (value, shown)

    c = sp.Rational
    two = fluid_benchmark(_wall([(2, 3, 2), (4, 1, 1)], 1, c(1, 100), 50), prefill_stage=True)
    assert two.lifetimes == (14, 9) and two.load == 37 and two.feasible is False
    quoted(two.rho, "0.37")
    quoted(two.delta_star, "1.5873")
    quoted(two.thresholds[0], "3.1746")
    quoted(two.memory_need, "58.73")
    quoted(two.capacity_bound / two.load, "0.901")
    roomy = fluid_benchmark(_wall([(2, 3, 2), (4, 1, 1)], 1, c(1, 100), 100), prefill_stage=True)
    assert roomy.feasible is True
    quoted(roomy.capacity_bound / roomy.load, "1.351")
    d0, d1, kv = c(15, 1000), c(3, 10**7), 100_000
    one = fluid_benchmark(_wall([(100, 200, 50)], d0, d1, kv), prefill_stage=True)
    assert one.lifetimes == (40200,) and one.feasible is True
    quoted(one.rho, "0.603")
    quoted(1000 * one.delta_star, "37.78")
    quoted(one.thresholds[0], "1.889")
    quoted(one.memory_need, "75,945")
    quoted(50 * one.capacity_bound / one.load, "55.28")  # memory-feasible rate, requests/s
    quoted(1 / (d1 * 40200), "82.9")  # rho < 1 alone
    mix = fluid_benchmark(_wall([(100, 100, 30), (200, 400, 5)], d0, d1, kv), prefill_stage=True)
    assert mix.lifetimes == (15150, 160400)
    quoted(mix.rho, "0.377")
    quoted(1000 * mix.delta_star, "24.08")
    quoted(mix.thresholds[0], "0.722")
    quoted(mix.thresholds[1], "0.120")
    quoted(mix.memory_need, "30,250")
    quoted(mix.capacity_bound / mix.load, "1.769")
    quoted(35 * mix.delta_star, "0.843")  # Nested WAIT, segment 1


# -- docs/user_theorems.md copied into a test file, as the page says -------------------------

AFTER_THE_PAGE = """
import queueing_llm as ql


def test_the_page_unregistered_its_theorem_at_teardown():
    assert "mean-batch" not in ql.theorems
"""


@pytest.mark.slow
def test_user_theorems_page_copied_into_a_test_file_passes(tmp_path):
    page = (ROOT / "docs" / "user_theorems.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```", page, flags=re.S | re.M)
    assert len(blocks) >= 2
    (tmp_path / "test_mean_batch.py").write_text("\n\n".join(blocks), encoding="utf-8")
    (tmp_path / "test_zz_after_the_page.py").write_text(AFTER_THE_PAGE, encoding="utf-8")
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")  # not the repository's settings
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_mean_batch.py",
         "test_zz_after_the_page.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    page_tests = len(re.findall(r"^def test_", "\n".join(blocks), flags=re.M))
    assert page_tests >= 2 and re.search(rf"\b{page_tests + 1} passed\b", proc.stdout), proc.stdout


# -- sphinx-build -W -----------------------------------------------------------------------


def run(args, cwd, timeout=900):
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(map(str, args))} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


RUN_PROOFS = """
import runpy, sys
out = sys.argv[1]
for script in sys.argv[2:]:
    sys.argv = [script, out]
    runpy.run_path(script, run_name="__main__")
"""


@pytest.mark.slow
def test_sphinx_build_with_warnings_as_errors(tmp_path):
    pytest.importorskip("sphinx", reason="sphinx is in the test extra (pip install '.[test]')")
    pytest.importorskip("myst_parser", reason="myst-parser is in the test extra (pip install '.[test]')")
    site = tmp_path / "site"
    docs = site / "docs"
    shutil.copytree(ROOT / "docs", docs, ignore=shutil.ignore_patterns("_build", "generated", "__pycache__"))
    shutil.copy(ROOT / "CHANGELOG.md", site / "CHANGELOG.md")
    generated = docs / "generated"
    scripts = sorted(str(p) for p in (ROOT / "proofs").glob("*.py") if not p.name.startswith("_"))
    run([sys.executable, "-c", RUN_PROOFS, str(generated / "proofs"), *scripts], cwd=tmp_path)
    run([sys.executable, str(docs / "build_theory.py"), str(generated), "--proofs", str(generated / "proofs")],
        cwd=tmp_path)
    html = tmp_path / "html"
    proc = run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
                str(docs), str(html)], cwd=tmp_path)
    assert "WARNING" not in proc.stderr + proc.stdout, proc.stderr
    pages = {p.stem for p in html.glob("*.html")}
    assert {"index", "guide", "model", "references", "theory", "api", "user_theorems", "traces",
            "cli", "changelog"} <= pages, pages
    model = (html / "model.html").read_text(encoding="utf-8")
    assert "One iteration" in model and "Worked trajectory" in (html / "references.html").read_text(encoding="utf-8")
    assert "Derivations" in (html / "theory.html").read_text(encoding="utf-8")
    assert "0.1.0" in (html / "changelog.html").read_text(encoding="utf-8")
    assert "queueing_llm.sweep.sweep" in (html / "api.html").read_text(encoding="utf-8")  # autodoc ran
