"""``vidfake.eval`` imports without torch: metrics, reports and calibration of a
predictions file must not pay for (or need) the model's libraries."""
from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import vidfake.eval

# Imports each named module in turn and prints the first after which torch is loaded
# (null if none), so a failure names the module that brought it in.
FIRST_TO_IMPORT_TORCH = """
import importlib, json, sys
culprit = None
for name in sys.argv[1:]:
    importlib.import_module(name)
    if "torch" in sys.modules:
        culprit = name
        break
print(json.dumps(culprit))
"""


def eval_modules() -> list[str]:
    return sorted(f"vidfake.eval.{info.name}" for info in pkgutil.iter_modules(vidfake.eval.__path__))


def test_every_eval_module_is_found():
    names = eval_modules()
    assert {"vidfake.eval.metrics", "vidfake.eval.calibrate", "vidfake.eval.results", "vidfake.eval.plots"} <= set(names)


def test_no_eval_module_imports_torch():
    names = eval_modules()
    done = subprocess.run([sys.executable, "-c", FIRST_TO_IMPORT_TORCH, *names],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) is None, f"importing {json.loads(done.stdout)} imported torch"


def test_the_check_sees_a_module_that_imports_torch():
    done = subprocess.run([sys.executable, "-c", FIRST_TO_IMPORT_TORCH, "vidfake.eval.metrics", "vidfake.temporal.model"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == "vidfake.temporal.model"
