"""docs/build_theory.py writes the theory chapter from the registry (Sphinx itself is not run here)."""

import subprocess
import sys
from pathlib import Path

import queueing_llm as ql
from queueing_llm.derivation import Derivation

ROOT = Path(__file__).resolve().parents[1]


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
    for page in ("guide", "theory", "api"):
        assert f"   {page}\n" in index and (docs / f"{page}.rst").is_file()
    assert ".. include:: generated/theory.rst" in (docs / "theory.rst").read_text(encoding="utf-8")
    assert "build_theory.py" in (docs / "Makefile").read_text(encoding="utf-8")
