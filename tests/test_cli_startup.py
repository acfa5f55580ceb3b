"""Lazy start-up: building one stage's parser imports no other stage and no heavy library.

``python -m pipeline STAGE --help`` has to answer at once, so :mod:`pipeline.cli` imports only
the named stage's module, and each stage module imports its numerical libraries inside its
handler. Each case runs in a fresh interpreter and inspects ``sys.modules`` after the parser
is built (no timings: the modules loaded are what decides the start-up time).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pipeline.cli import STAGE_MODULES, stage_name

#: Libraries that a parser never needs (each costs 0.1-1 s to import). NumPy is allowed: it is
#: the array language of every stage and of :mod:`pipeline.backend`, whose device names the
#: parsers may list.
HEAVY = (
    "scipy", "xarray", "pandas", "netCDF4", "h5py", "MDAnalysis", "MDAnalysisTests", "numba",
    "matplotlib", "tabulate", "tensorly", "threadpoolctl", "torch", "cupy", "gemmi", "pdb2pqr",
    "sympy", "snakemake", "gridData", "jsonschema", "tqdm",
)

#: Library modules a parser may load: each imports only the standard library (settings objects,
#: option choices, unit constants) or is a package whose ``__init__`` loads its names lazily.
LIGHT = {
    "pipeline.backend", "pipeline.units", "pipeline.electrostatics", "pipeline.electrostatics.settings",
    "pipeline.structures", "pipeline.structures.choices", "pipeline.devices",
}

PROBE = """
import json, sys
from pipeline.cli import build_parser
build_parser([sys.argv[1], "--help"]).format_help()
print(json.dumps(sorted(sys.modules)))
"""


def modules_after_parser(stage: str) -> set[str]:
    """Names in ``sys.modules`` of a fresh interpreter after building ``stage``'s parser."""
    done = subprocess.run([sys.executable, "-c", PROBE, stage], capture_output=True, text=True, check=True, timeout=120)
    return set(json.loads(done.stdout))


@pytest.mark.parametrize("module", STAGE_MODULES)
def test_stage_start_up_imports_only_its_own_module(module):
    loaded = modules_after_parser(stage_name(module))
    assert f"pipeline.cli.{module}" in loaded
    other_stages = sorted(m for m in loaded if m.startswith("pipeline.cli.") and m != f"pipeline.cli.{module}")
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY)
    pipeline_modules = sorted(m for m in loaded if m.startswith("pipeline.") and not m.startswith("pipeline.cli"))
    assert not other_stages, f"{stage_name(module)} start-up imports other stages: {other_stages}"
    assert not heavy, f"{stage_name(module)} start-up imports heavy libraries: {sorted({m.split('.')[0] for m in heavy})}"
    assert set(pipeline_modules) <= LIGHT, f"{stage_name(module)} start-up imports {pipeline_modules}"


def test_top_level_help_lists_every_stage(capsys):
    from pipeline.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for module in STAGE_MODULES:
        assert stage_name(module) in out


RUN_PROBE = """
import json, sys
from pipeline.cli import main
code = main(["potential", sys.argv[1], "-o", sys.argv[2], "--tolerance", "1e-4", "--self-check", "20", "-q"])
print(json.dumps([code, sorted(sys.modules)]))
"""


def test_potential_run_reads_and_writes_without_xarray(tmp_path):
    """The potential stage reads the record and writes its file through netCDF4 alone (xarray + pandas: ~0.25 s)."""
    import numpy as np

    from pipeline.storage import read_netcdf, write_netcdf
    from pipeline.structures.record import Structure, structure_to_dataset

    rng = np.random.default_rng(0)
    q = rng.normal(0.0, 0.5, 60)
    record = tmp_path / "s.nc"
    write_netcdf(structure_to_dataset(Structure(positions=rng.uniform(0.0, 12.0, (60, 3)), charges=q - q.mean(),
                                                attrs={"structure_id": "probe", "box": []})), record)
    done = subprocess.run([sys.executable, "-c", RUN_PROBE, str(record), str(tmp_path / "p.nc")], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    code, loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert code == 0
    assert not sorted(m for m in loaded if m.split(".")[0] in ("xarray", "pandas"))
    written = read_netcdf(tmp_path / "p.nc")
    assert written.attrs["structure_id"] == "probe" and written["potential"].shape == (60,)
