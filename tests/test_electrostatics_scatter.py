"""Scatter–gather build: chunk coefficient tensors and atom long ranges summed must give the one-job potential.

References: the one-job build (same plan), direct summation, and the coverage/plan checks of
the gather step failing on broken chunk sets. The command-line path runs potential-chunk ×4 +
potential-gather against potential.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

from pipeline.electrostatics import build_potential, direct_potential
from pipeline.electrostatics.build import assemble_potential, prepare_build
from pipeline.electrostatics.long_range import long_range_coefficients
from pipeline.electrostatics.scatter import (
    check_coverage,
    chunk_coefficients,
    chunk_range,
    chunk_to_dataset,
    gather_coefficients,
    structure_fingerprint,
)
from pipeline.storage import write_netcdf
from pipeline.structures.record import Structure, structure_to_dataset
from tests.cli_run import run_pipeline


def _cloud(rng, n=1500, width=22.0):
    pos = rng.uniform(0.0, width, (n, 3))
    q = rng.choice([-0.5, 0.5], n) + rng.normal(0.0, 0.1, n)
    return pos, q


def _write_chunks(tmp_path, pos, q, setup, chunks, *, skip=(), extra=()):
    paths = []
    for k in [k for k in range(chunks) if k not in skip] + list(extra):
        coeffs, atom_long, atom_range = chunk_coefficients(pos, q, setup, k, chunks)
        ds = chunk_to_dataset(coeffs, atom_long, setup.params, chunk=k, chunks=chunks, atom_range=atom_range, n_atoms=pos.shape[0],
                              fingerprint=structure_fingerprint(pos, q), seconds=0.0)
        paths.append(write_netcdf(ds, tmp_path / f"chunk_{k}_{len(paths)}.nc", compress=False))
    return paths


def test_chunk_ranges_tile_the_atoms():
    for n, chunks in ((10, 3), (7, 7), (5, 8), (1_000_003, 16)):
        ranges = [chunk_range(n, k, chunks) + (str(k),) for k in range(chunks)]
        check_coverage(ranges, n)
        sizes = [b - a for a, b, _ in ranges]
        assert sum(sizes) == n and max(sizes) - min(sizes) <= 1
    with pytest.raises(ValueError, match="chunk must be in"):
        chunk_range(10, 3, 3)


def test_four_chunks_match_single_build(rng, tmp_path):
    pos, q = _cloud(rng)
    tol = 1e-6
    single, _ = build_potential(pos, q, tolerance=tol)
    setup = prepare_build(pos, q, tolerance=tol)
    paths = _write_chunks(tmp_path, pos, q, setup, 4)
    coeffs, atom_long, _ = gather_coefficients(paths[::-1], setup.params, n_atoms=pos.shape[0],
                                               fingerprint=structure_fingerprint(pos, q))
    whole = long_range_coefficients(pos, q, setup.plan, setup.split)
    assert np.max(np.abs(coeffs - whole)) < 1e-12 * np.max(np.abs(whole))  # linear in the charges
    # the long range at the atoms, summed over chunks, is the single build's grid value
    assert np.max(np.abs(atom_long - single.atom_long.values)) < 1e-12 * np.max(np.abs(atom_long))
    gathered, _ = assemble_potential(setup, coeffs, pos, q, atom_long=atom_long)
    total_g = gathered.at_atoms()[0]
    total_s = single.at_atoms()[0]
    ref = direct_potential(pos, pos, q)
    scale = np.abs(ref).max()
    assert np.max(np.abs(total_g - total_s)) < tol * scale
    assert np.max(np.abs(total_g - ref)) < 3 * tol * scale
    pts = rng.uniform(np.asarray(setup.box_lo), np.asarray(setup.box_hi), (100, 3))
    assert np.max(np.abs(gathered.potential(pts) - single.potential(pts))) < tol * scale


def test_gather_rejects_broken_chunk_sets(rng, tmp_path):
    pos, q = _cloud(rng, 300, 12.0)
    setup = prepare_build(pos, q, tolerance=1e-5)
    fp = structure_fingerprint(pos, q)
    kw = {"n_atoms": pos.shape[0], "fingerprint": fp}
    with pytest.raises(ValueError, match="in no chunk file"):
        gather_coefficients(_write_chunks(tmp_path / "a", pos, q, setup, 3, skip=(1,)), setup.params, **kw)
    with pytest.raises(ValueError, match="overlap"):
        gather_coefficients(_write_chunks(tmp_path / "b", pos, q, setup, 3, extra=(2,)), setup.params, **kw)
    other = prepare_build(pos, q, tolerance=1e-6)
    with pytest.raises(ValueError, match="different parameters"):
        gather_coefficients(_write_chunks(tmp_path / "c", pos, q, setup, 2), other.params, **kw)
    moved = pos.copy()
    moved[0, 0] += 0.1
    with pytest.raises(ValueError, match="different structure"):
        gather_coefficients(_write_chunks(tmp_path / "d", pos, q, setup, 2), setup.params, n_atoms=pos.shape[0],
                            fingerprint=structure_fingerprint(moved, q))


def test_cli_scatter_gather_matches_potential(rng, tmp_path):
    pos, q = _cloud(rng, 3500, 30.0)
    write_netcdf(structure_to_dataset(Structure(positions=pos, charges=q, attrs={"structure_id": "cloud"})),
                 tmp_path / "s.nc")
    opts = ["--tolerance", "1e-6", "--self-check", "100"]
    res = run_pipeline("potential", "s.nc", "-o", "p1.nc", *opts, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    for k in range(4):
        res = run_pipeline("potential-chunk", "s.nc", "--chunk", str(k), "--chunks", "4", "-o", f"c{k}.nc", "--tolerance", "1e-6",
                   cwd=tmp_path)
        assert res.returncode == 0, res.stderr
    res = run_pipeline("potential-gather", "s.nc", "c3.nc", "c1.nc", "c0.nc", "c2.nc", "-o", "p4.nc", *opts, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    with xr.open_dataset(tmp_path / "p1.nc") as one, xr.open_dataset(tmp_path / "p4.nc") as four:
        scale = np.abs(one["potential"].values).max()
        assert np.max(np.abs(four["potential"].values - one["potential"].values)) < 1e-6 * scale
        assert four.attrs["structure_id"] == "cloud" and four.attrs["tolerance_exceeded"] == 0
        assert four.attrs["max_rel_error_atoms"] < 3e-6
        # energy ½Σ q Φ: each Φ within tol·max|Φ| of the other
        assert abs(float(four["energy"]) - float(one["energy"])) < 0.5 * np.abs(q).sum() * 1e-6 * scale
    # a chunk built with other options, or a missing chunk, fails with a message and no output
    res = run_pipeline("potential-gather", "s.nc", "c0.nc", "c1.nc", "c2.nc", "-o", "bad.nc", *opts, cwd=tmp_path)
    assert res.returncode == 1 and "in no chunk file" in res.stderr and not (tmp_path / "bad.nc").exists()
    res = run_pipeline("potential-gather", "s.nc", "c0.nc", "c1.nc", "c2.nc", "c3.nc", "-o", "bad.nc", "--tolerance", "1e-5",
               cwd=tmp_path)
    assert res.returncode == 1 and "different parameters" in res.stderr and not (tmp_path / "bad.nc").exists()
    res = run_pipeline("potential-chunk", "s.nc", "--chunk", "4", "--chunks", "4", "-o", "c4.nc", cwd=tmp_path)
    assert res.returncode == 1 and "--chunk" in res.stderr


@pytest.mark.workflow
@pytest.mark.parametrize("chunks, rules", [(1, ("potential",)), (2, ("potential_chunk", "potential_gather"))])
def test_workflow_potential_rules(tmp_path, chunks, rules):
    import shutil
    from pathlib import Path

    import yaml

    repo = Path(__file__).resolve().parents[1]
    shutil.copytree(repo / ".test" / "config", tmp_path / "config")
    config_path = tmp_path / "config" / "config.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["potential"]["chunks"] = chunks
    config_path.write_text(yaml.safe_dump(config))
    target = "results/potential/nacl_small.nc"
    cmd = [sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"), "--cores", "2", "--directory", str(tmp_path)]
    completed = subprocess.run([*cmd, target], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr[-4000:]
    for rule in rules:
        assert f"rule {rule}:" in completed.stderr or f"localrule {rule}:" in completed.stderr
    assert not list((tmp_path / "results" / "potential").rglob("chunk_*.nc"))  # temp() chunk files removed
    assert (tmp_path / "results" / "logs" / rules[-1] / "nacl_small.log").is_file()
    with xr.open_dataset(tmp_path / target) as pot, xr.open_dataset(tmp_path / "results/structures/nacl_small.nc") as s:
        pos, q = s["positions"].values, s["charge"].values
        ref = direct_potential(pos, pos, q)
        assert pot.attrs["periodic"] == 0  # a lattice without --periodic has no box: free space
        tol = config["potential"]["tolerance"]
        assert np.max(np.abs(pot["potential"].values - ref)) < 3 * tol * np.abs(ref).max()
        assert int(pot.attrs["tolerance_exceeded"]) == 0
