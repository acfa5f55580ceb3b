"""``python -m pipeline compile``: compiles (or loads) every Numba kernel and writes its stamp atomically."""

from __future__ import annotations

import subprocess
import sys


def test_compile_writes_the_stamp_with_the_kernels_it_readied(tmp_path):
    stamp = tmp_path / "sub" / ".kernels_compiled"
    done = subprocess.run([sys.executable, "-m", "pipeline", "compile", "--stamp", str(stamp)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    fields = dict(line.split() for line in stamp.read_text().splitlines())
    # short range (targets, pair-once), its map kernel, spreading, interpolation, direct sums
    assert int(fields["kernels"]) >= 6 and float(fields["seconds"]) > 0
    assert [p.name for p in stamp.parent.iterdir()] == [stamp.name]  # no temporary left


def test_compile_readies_every_numba_entry_point_of_the_package():
    # A kernel left out of compile_kernels would compile inside a job (seconds to a minute, on
    # every fresh install) and inside its recorded runtime. In a fresh process: run it, then every
    # Numba dispatcher that the package's Python code calls (helpers called only by other
    # compiled functions are compiled into them) must hold a signature.
    script = """
import importlib, inspect, pkgutil, re
from pathlib import Path
from numba.core.registry import CPUDispatcher
import pipeline
from pipeline.electrostatics.warmup import compile_kernels
compile_kernels()
kernels, text = {}, []
for info in pkgutil.walk_packages(pipeline.__path__, "pipeline."):
    if info.name.endswith("__main__"):
        continue
    try:
        module = importlib.import_module(info.name)
    except ImportError:  # optional dependencies (CuPy)
        continue
    text.append(Path(module.__file__).read_text())
    for name, value in vars(module).items():
        if isinstance(value, CPUDispatcher) and value.py_func.__module__ == info.name:
            kernels[f"{info.name}.{name}"] = value
python_text = "".join(text)
for source in set(inspect.getsource(value.py_func) for value in kernels.values()):
    python_text = python_text.replace(source, "")
called = sorted(key for key in kernels  # calls by name or through the module, not methods of the same name
                if re.search(r"(?<!self\\.)(?<!def )\\b" + key.rsplit(".", 1)[1] + r"\\(", python_text))
print(len(called), [key for key in called if not kernels[key].signatures])
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    called, missing = done.stdout.strip().split(" ", 1)
    assert int(called) >= 12 and missing == "[]", done.stdout
