"""``benchmarks/gpu_check.py --device cpu --quick``: the device check runs on NumPy, in a minimal environment."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import requires_gpu

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
#: Packages the GPU machines do not have: importing any of them makes the run fail.
ABSENT = ("netCDF4", "MDAnalysis", "MDAnalysisTests", "snakemake", "tensorly", "gemmi", "pdb2pqr", "gridData",
          "threadpoolctl", "tqdm", "matplotlib", "tabulate", "yaml", "jsonschema", "fmm3dpy", "cupy")
RUNNER = """
import runpy, sys
for name in {absent!r}:
    sys.modules[name] = None  # `import name` now raises ImportError
sys.path.insert(0, {bench!r})
sys.argv = [{script!r}, *{args!r}]
runpy.run_path({script!r}, run_name="__main__")
"""


def _run(tmp_path, *args):
    code = RUNNER.format(absent=ABSENT, bench=str(SCRIPT.parent), script=str(SCRIPT), args=[str(a) for a in args])
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_quick_cpu_check_runs_every_section_without_the_absent_packages(tmp_path):
    out = tmp_path / "check.json"
    res = _run(tmp_path, out, "--device", "cpu", "--quick")
    assert res.returncode == 0, res.stderr[-3000:]
    data = json.loads(out.read_text())
    rows = data["rows"]
    assert {r["section"] for r in rows} == {"potential", "tensor", "descriptors"}
    assert not data["info"]["skipped_over_budget"] and not any("error" in r for r in rows)
    pot = [r for r in rows if r["section"] == "potential"]
    assert {(r["case"], r["step"]) for r in pot} >= {("protein_cloud", "atoms"), ("rock_salt", "map 17^3")}
    for r in pot:
        if r["step"] != "build":
            # the CuPy code paths (array cell list, bincount spreading, ...) on NumPy vs the compiled CPU path;
            # at the atoms the CPU kernel polynomial is cut to 1e-3 ε per pair (ε = 1e-6); over the ~10³ pairs
            # within the cutoff a lattice adds those coherently (measured 2.8e-10 cloud, 3.2e-9 rock salt)
            assert r["max_rel_diff"] < (1e-8 if "atoms" in r["step"] else 1e-10), r
            assert r["max_rel_err_direct"] < 3e-6, r  # tolerance 1e-6 (self-check allows 3×)
    tensor = [r for r in rows if r["section"] == "tensor"]
    assert {(r["case"], r["n"], r["step"]) for r in tensor} == {
        (m, lmax, p) for m in ("cg", "gaunt_grid", "gaunt_fourier", "vector_gaunt") for lmax in (1, 2, 3)
        for p in ("forward", "backward")}
    peer = importlib.util.find_spec("torch") is not None and importlib.util.find_spec("e3nn") is not None
    assert all(("e3nn_s" in r) == peer for r in tensor)
    desc = [r for r in rows if r["section"] == "descriptors"]
    assert len(desc) == 6 and all(r["max_rel_diff"] < 1e-12 for r in desc)
    assert {r["case"] for r in desc} >= {"density", "sphere potential"}
    table = res.stdout
    assert table.count("\n") >= len(rows) and "rel diff" in table.splitlines()[0]


def test_without_torch_the_e3nn_columns_are_left_out(tmp_path):
    out = tmp_path / "check.json"
    code = RUNNER.format(absent=(*ABSENT, "torch", "e3nn"), bench=str(SCRIPT.parent), script=str(SCRIPT),
                         args=[str(out), "--device", "cpu", "--quick", "--sections", "tensor"])
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    rows = json.loads(out.read_text())["rows"]
    assert len(rows) == 24 and not any("e3nn_s" in r for r in rows)


def test_cuda_without_cupy_is_a_one_line_error(tmp_path):
    res = _run(tmp_path, tmp_path / "x.json", "--device", "cuda", "--quick")
    assert res.returncode == 1 and not (tmp_path / "x.json").exists()
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: backend 'cupy' needs CuPy") and "gpu-cuda13" in lines[0]


@requires_gpu
@pytest.mark.gpu
def test_quick_check_on_the_device(tmp_path):
    out = tmp_path / "check.json"
    res = subprocess.run([sys.executable, str(SCRIPT), str(out), "--quick"], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    rows = json.loads(out.read_text())["rows"]
    assert all(r["max_rel_diff"] < 1e-9 for r in rows if r["section"] == "potential" and r["step"] != "build")


def test_budget_skips_and_lists_the_remaining_cases(tmp_path):
    out = tmp_path / "check.json"
    res = _run(tmp_path, out, "--device", "cpu", "--quick", "--budget", "0")
    assert res.returncode == 0, res.stderr[-3000:]
    data = json.loads(out.read_text())
    assert data["rows"] == []
    assert data["info"]["skipped_over_budget"][:2] == ["potential protein_cloud 1000", "potential rock_salt 1000"]
    assert "tensor products L=3" in data["info"]["skipped_over_budget"] and "skipped after 0 s" in res.stdout
