"""``import queueing_llm`` stays light (issue 10 item 4).

SciPy, SimPy, matplotlib and numba are imported inside the functions that use them, so a
fresh interpreter that only imports the package never loads them. Checked in a subprocess
(``sys.modules`` of this test process holds whatever other tests imported).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HEAVY = ("scipy", "simpy", "matplotlib", "numba")
ROOT = Path(__file__).resolve().parents[1]

_PROBE = """
import json, sys
import queueing_llm
print(json.dumps({"file": queueing_llm.__file__,
                  "loaded": sorted({m.split('.')[0] for m in sys.modules} & set(sys.argv[1:]))}))
"""


def _loaded_after_import(*modules: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", _PROBE, *modules], env=env, cwd=ROOT, capture_output=True,
                         text=True, timeout=120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_loads_no_heavy_dependency() -> None:
    got = _loaded_after_import(*HEAVY)
    assert Path(got["file"]).resolve().is_relative_to(ROOT)  # this checkout's package, not another copy
    assert got["loaded"] == [], f"`import queueing_llm` loads {got['loaded']} at module level"


def test_probe_sees_a_loaded_module() -> None:
    # the probe can fail: numpy and sympy are imported by the package at module level
    assert _loaded_after_import("numpy", "sympy")["loaded"] == ["numpy", "sympy"]
