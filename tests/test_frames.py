"""potential-frames: per-frame builds equal single-structure runs bitwise, blocks gather to the one-job file,
frame values agree with direct summation, and bad trajectories fail in one line with nothing written."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("MDAnalysisTests")

from pipeline.electrostatics.frames import (
    run_potential_frames,
    run_potential_frames_gather,
)
from pipeline.electrostatics.settings import PotentialSettings
from pipeline.electrostatics.stage import run_potential
from pipeline.storage import (
    read_netcdf,
    write_netcdf,
)
from pipeline.structures.ingest import ingest
from pipeline.structures.record import structure_to_dataset
from pipeline.structures.trajectory import FrameSelection, Trajectory, block_indices

#: Loose tolerance and a small self-check sample keep each frame well under a second.
SETTINGS = PotentialSettings(tolerance=1e-4, self_check=200)
DCD = "mdanalysistests:DCD"


@pytest.fixture(scope="module")
def adk_record(tmp_path_factory):
    """The PSF + DCD adk record (3341 atoms, charges from the PSF, frame 0 coordinates)."""
    path = tmp_path_factory.mktemp("frames") / "adk_psf.nc"
    write_netcdf(structure_to_dataset(ingest("mdanalysistests:PSF", coordinates=DCD, structure_id="adk_psf")), path)
    return path


@pytest.fixture(scope="module")
def frames_file(adk_record, tmp_path_factory):
    """Frames 2, 4, 6, 8 of the DCD in one job."""
    out = tmp_path_factory.mktemp("frames") / "all.nc"
    run_potential_frames(adk_record, DCD, out, SETTINGS, frames=FrameSelection(2, 10, 2))
    return read_netcdf(out)


def _frame_positions(index: int) -> np.ndarray:
    with Trajectory("mdanalysistests:PSF", DCD) as traj:
        return next(traj.frames(np.array([index]))).positions


def test_frame_equals_single_structure_run_bitwise(adk_record, frames_file, tmp_path):
    """Frame 6 of the frames file = `potential` on a record holding frame 6's float64 positions."""
    from pipeline.structures.record import load_structure

    structure = load_structure(adk_record)
    frame = dataclasses.replace(structure, positions=_frame_positions(6))
    record = tmp_path / "frame6.nc"
    write_netcdf(structure_to_dataset(frame), record)
    single = tmp_path / "frame6_potential.nc"
    run_potential(record, single, SETTINGS)
    reference = read_netcdf(single)
    row = frames_file["potential"].sel(frame=6).values
    assert np.array_equal(row, reference["potential"].values)
    assert frames_file["energy"].sel(frame=6).item() == reference["energy"].item()
    assert frames_file["alpha"].sel(frame=6).item() == reference.attrs["alpha"]


def test_frame_values_match_direct_summation(adk_record, frames_file):
    """Frame 8 against a plain double loop over pairs (no split), within the requested tolerance."""
    from pipeline.structures.record import load_structure

    q = load_structure(adk_record).charges
    x = _frame_positions(8)
    direct = np.empty(len(q))
    for start in range(0, len(q), 500):
        d = np.linalg.norm(x[start:start + 500, None, :] - x[None, :, :], axis=-1)
        np.fill_diagonal(d[:, start:start + 500], np.inf)
        direct[start:start + 500] = (q / d).sum(axis=1)
    error = np.max(np.abs(frames_file["potential"].sel(frame=8).values - direct)) / np.max(np.abs(direct))
    assert error < SETTINGS.tolerance
    energy = 0.5 * np.dot(q, direct)
    assert abs(frames_file["energy"].sel(frame=8).item() - energy) < 1e-4 * abs(energy)


def test_frames_file_layout_and_statistics(frames_file):
    ds = frames_file
    assert ds["frame"].values.tolist() == [2, 4, 6, 8]
    assert ds["time"].attrs["units"] == "ps"
    # the DCD stores 1 ps between frames (MDAnalysis' AKMA conversion leaves ~1e-7 ps rounding)
    assert np.allclose(ds["time"].values, [3.0, 5.0, 7.0, 9.0], atol=1e-5)
    for name, var in ds.variables.items():
        assert "units" in var.attrs and "long_name" in var.attrs, name
    assert np.all(np.isnan(ds["box"].values))  # adk in vacuum: no box
    potential = ds["potential"].values
    assert np.array_equal(ds["potential_mean"].values, potential.mean(axis=0))
    assert np.allclose(ds["potential_std"].values, np.sqrt(((potential - potential.mean(0)) ** 2).mean(0)), rtol=1e-12)
    # residue potential = mean over the residue's atoms; residue 0 of adk is MET 1
    members = ds["atom_residue"].values == 0
    assert ds["residue_name"].values[0] == "MET" and int(ds["residue_id"].values[0]) == 1
    assert np.allclose(ds["residue_potential"].values[:, 0], potential[:, members].mean(axis=1), rtol=1e-13)
    assert ds.sizes["residue"] == 214
    assert np.all(ds["self_check_max_rel_error"].values < SETTINGS.tolerance)


def test_blocks_gather_to_the_one_job_file_bitwise(adk_record, frames_file, tmp_path):
    blocks = [tmp_path / f"block_{k}.nc" for k in range(3)]
    for k in (2, 0, 1):  # any order
        run_potential_frames(adk_record, DCD, blocks[k], SETTINGS, frames=FrameSelection(2, 10, 2), block=k, blocks=3)
    assert [read_netcdf(b).sizes["frame"] for b in blocks] == [2, 1, 1]
    out = tmp_path / "gathered.nc"
    run_potential_frames_gather(list(reversed(blocks)), out)
    gathered = read_netcdf(out)
    assert gathered["frame"].values.tolist() == [2, 4, 6, 8]
    for name in ("potential", "energy", "potential_mean", "potential_std", "residue_potential_mean",
                 "residue_potential_std", "self_check_max_rel_error", "alpha", "ranks"):
        assert np.array_equal(gathered[name].values, frames_file[name].values), name
    assert np.array_equal(gathered["time"].values, frames_file["time"].values)

    with pytest.raises(ValueError, match=r"frame 6 of mdanalysistests:DCD is in none of the 2 block files"):
        run_potential_frames_gather([blocks[0], blocks[2]], tmp_path / "missing.nc")
    copy = tmp_path / "copy_of_block_1.nc"
    shutil.copy(blocks[1], copy)
    with pytest.raises(ValueError, match=r"copy_of_block_1.nc: frame 6 is also in .*block_1.nc \(duplicate frame\)"):
        run_potential_frames_gather([*blocks, copy], tmp_path / "duplicate.nc")
    assert not (tmp_path / "missing.nc").exists() and not (tmp_path / "duplicate.nc").exists()


def test_frame_selection_and_blocks():
    assert FrameSelection.parse("2:10:2").indices(98).tolist() == [2, 4, 6, 8]
    assert FrameSelection.parse("::40").indices(98).tolist() == [0, 40, 80]
    assert FrameSelection.parse("95:").indices(98).tolist() == [95, 96, 97]
    assert [b.tolist() for b in (block_indices(np.arange(7), k, 3) for k in range(3))] == [[0, 1, 2], [3, 4], [5, 6]]
    for text, message in (("0:10:0", "step must be > 0"), ("::-1", "step must be > 0"), ("-1:5", "start must be ≥ 0"),
                          ("5:5", "stop must be > start"), ("a:b", "expected integers")):
        with pytest.raises(ValueError, match=message):
            FrameSelection.parse(text)
    with pytest.raises(ValueError, match=r"traj.dcd: frames stop 99 is out of range: the trajectory has 98 frames"):
        FrameSelection(0, 99).indices(98, source="traj.dcd")
    with pytest.raises(ValueError, match=r"frames start 98 is out of range"):
        FrameSelection(98).indices(98)
    with pytest.raises(ValueError, match=r"--blocks 5 is more than the 4 selected frames"):
        block_indices(np.arange(4), 0, 5)


def test_atom_count_mismatch_names_the_files(adk_record, tmp_path):
    out = tmp_path / "out.nc"
    # the solvated adk trajectory (47681 atoms) with the vacuum adk topology (3341)
    with pytest.raises(ValueError, match=r"adk_oplsaa.xtc: cannot be read as XTC with topology adk.psf"):
        run_potential_frames(adk_record, "mdanalysistests:XTC", out, SETTINGS, topology="mdanalysistests:PSF")
    with pytest.raises(ValueError, match=r"adk_oplsaa.xtc: trajectory \(with topology adk_oplsaa.tpr\) has 47681 atoms "
                                         r"but the structure record .*adk_psf.nc has 3341"):
        run_potential_frames(adk_record, "mdanalysistests:XTC", out, SETTINGS, topology="mdanalysistests:TPR")
    with pytest.raises(ValueError, match=r"adk_dims.dcd: frames stop 200 is out of range: the trajectory has 98 frames"):
        run_potential_frames(adk_record, DCD, out, SETTINGS, frames=FrameSelection(0, 200))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name, topology", [("DCD", "mdanalysistests:PSF"), ("XTC", "mdanalysistests:TPR")])
def test_truncated_trajectory_names_the_frame_and_writes_nothing(adk_record, tmp_path, name, topology):
    from MDAnalysisTests import datafiles

    data = Path(getattr(datafiles, name)).read_bytes()
    truncated = tmp_path / f"truncated.{name.lower()}"
    truncated.write_bytes(data[: len(data) * 3 // 4])  # ends inside a frame three quarters in
    out = tmp_path / "out.nc"
    expected = {"DCD": r"truncated.dcd: frame 73: the file ends inside this frame",
                "XTC": r"truncated.xtc: frame 7: cannot be read .*truncated or damaged"}[name]
    with pytest.raises(ValueError, match=expected):
        run_potential_frames(adk_record, truncated, out, SETTINGS, topology=topology, frames=FrameSelection(0, 2))
    assert not out.exists() and not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".out.nc*"))


def test_cli_one_line_error_and_light_help(adk_record, tmp_path):
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    out = tmp_path / "out.nc"
    result = subprocess.run([sys.executable, "-m", "pipeline", "potential-frames", str(adk_record), "--trajectory", DCD,
                             "--frames", "0:10:0", "-o", str(out)], capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == "error: frames: step must be > 0, got 0"
    assert not out.exists()
    code = ("import sys, pipeline.cli.potential_frames, pipeline.cli.potential_frames_gather; "
            "print([m for m in ('numpy', 'MDAnalysis', 'xarray', 'scipy', 'numba') if m in sys.modules])")
    heavy = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert heavy.strip() == "[]"
    help_text = subprocess.run([sys.executable, "-m", "pipeline", "potential-frames", "--help"], capture_output=True,
                               text=True, env=env, check=True).stdout
    assert "--trajectory" in help_text and "--ionic-strength" in help_text and "Examples:" in help_text


def _rocksalt_trajectory(folder, scales, a=5.64, cells=2):
    """A PQR topology of a rock-salt block (64 ions, ±1 e) and a DCD whose frames scale it and its cubic box."""
    import warnings

    import MDAnalysis as mda

    g = np.arange(2 * cells) * (a / 2)
    pos = np.array([[x, y, z] for x in g for y in g for z in g])
    q = np.where(np.rint(pos / (a / 2)).astype(int).sum(axis=1) % 2 == 0, 1.0, -1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        u = mda.Universe.empty(len(q), n_residues=len(q), atom_resindex=np.arange(len(q)), trajectory=True)
        u.add_TopologyAttr("name", ["NA" if c > 0 else "CL" for c in q])
        u.add_TopologyAttr("resname", ["ION"] * len(q))
        u.add_TopologyAttr("resid", np.arange(1, len(q) + 1))
        u.add_TopologyAttr("charges", q)
        u.add_TopologyAttr("radii", np.ones(len(q)))
        u.atoms.positions = pos
        u.atoms.write(str(folder / "nacl.pqr"))
        with mda.Writer(str(folder / "nacl.dcd"), n_atoms=len(q)) as writer:
            for s in scales:
                u.atoms.positions = pos * s
                u.dimensions = [cells * a * s] * 3 + [90.0] * 3
                writer.write(u.atoms)
    return q


def test_periodic_frames_use_their_own_box(tmp_path):
    """Rock salt breathing by ±3%: every frame's periodic potential is ∓M·2/a' with its own lattice constant a'.

    Closed form: the NaCl Madelung constant M = 1.747564594633182 (nearest-neighbour convention), so
    Φ_i = −q_i M / (a'/2). Using the first frame's box for the others would be off by 2–3%.
    """
    scales = (1.0, 1.02, 0.97)
    q = _rocksalt_trajectory(tmp_path, scales)
    record = tmp_path / "nacl.nc"
    write_netcdf(structure_to_dataset(ingest(tmp_path / "nacl.pqr", structure_id="nacl")), record)
    settings = PotentialSettings(tolerance=1e-6, self_check=64, periodic="auto")
    out = tmp_path / "frames.nc"
    run_potential_frames(record, tmp_path / "nacl.dcd", out, settings)
    ds = read_netcdf(out)
    assert np.allclose(ds["box"].values[:, 0], [11.28 * s for s in scales], rtol=1e-6)
    for i, s in enumerate(scales):
        exact = -1.747564594633182 * q / (5.64 * s / 2)
        assert np.max(np.abs(ds["potential"].values[i] - exact)) / np.max(np.abs(exact)) < 1e-6
    # frame 1 = `potential` on a record holding that frame's positions and box
    from pipeline.structures.record import load_structure

    with Trajectory(tmp_path / "nacl.pqr", tmp_path / "nacl.dcd") as traj:
        frame = next(traj.frames(np.array([1])))
    structure = load_structure(record)
    single = tmp_path / "frame1.nc"
    write_netcdf(structure_to_dataset(dataclasses.replace(structure, positions=frame.positions,
                                                          attrs={**structure.attrs, "box": frame.box})), single)
    run_potential(single, tmp_path / "frame1_potential.nc", settings)
    assert np.array_equal(read_netcdf(tmp_path / "frame1_potential.nc")["potential"].values, ds["potential"].values[1])


def test_descriptors_frames_take_the_device_route_with_the_potential(adk_record, tmp_path, monkeypatch):
    """With the compute module's backend answering "array" (CuPy's code on NumPy arrays), descriptors-frames
    hands the frame's potential to the device route: same features as the CPU route, the backend recorded."""
    import importlib

    from pipeline.descriptors.compute import DescriptorParameters
    from pipeline.descriptors.frames import run_descriptors_frames

    params = DescriptorParameters(lmax=1, n_radial=2, n_validation=8)
    cpu, dev = tmp_path / "cpu.nc", tmp_path / "dev.nc"
    run_descriptors_frames(adk_record, DCD, cpu, SETTINGS, params, frames=FrameSelection(30, 32))
    monkeypatch.setattr(importlib.import_module("pipeline.descriptors.compute"), "backend_name", lambda xp: "array")
    run_descriptors_frames(adk_record, DCD, dev, SETTINGS, params, frames=FrameSelection(30, 32))
    a, b = read_netcdf(cpu), read_netcdf(dev)
    assert a.attrs["backend"] == "numpy" and b.attrs["backend"] == "array"
    assert a.attrs["band_limit"] == b.attrs["band_limit"]
    for name in ("density", "potential_expansion"):
        assert np.abs(b[name].values - a[name].values).max() <= 1e-10 * np.abs(a[name].values).max(), name
    for name in [v for v in a.data_vars if v.startswith("product_")]:  # float32 storage: one rounding apart at most
        assert np.abs(b[name].values - a[name].values).max() <= 2.0**-23 * np.abs(a[name].values).max(), name


def test_descriptors_of_a_frame_equal_the_descriptors_stage(adk_record, tmp_path):
    """descriptors-frames on frame 30 = `potential` + `descriptors` on a record holding frame 30 (same numbers)."""
    from pipeline.cli import main
    from pipeline.structures.record import load_structure

    out = tmp_path / "descriptors_frames.nc"
    common = ["--tolerance", "1e-4", "--self-check", "200"]
    assert main(["descriptors-frames", str(adk_record), "--trajectory", DCD, "--frames", "30:31", "--lmax", "1",
                 "--n-radial", "2", "--validation-atoms", "16", "-o", str(out), *common]) == 0
    frames = read_netcdf(out)
    assert frames["frame"].values.tolist() == [30] and frames["time"].attrs["units"] == "ps"
    structure = load_structure(adk_record)
    record = tmp_path / "frame30.nc"
    write_netcdf(structure_to_dataset(dataclasses.replace(structure, positions=_frame_positions(30))), record)
    assert main(["potential", str(record), "-o", str(tmp_path / "p30.nc"), *common]) == 0
    assert main(["descriptors", str(record), "--potential", str(tmp_path / "p30.nc"), "--lmax", "1", "--n-radial", "2",
                 "--validation-atoms", "16", "-o", str(tmp_path / "d30.nc")]) == 0
    single = read_netcdf(tmp_path / "d30.nc")
    products = [name for name in single.data_vars if name.startswith("product_")]
    assert len(products) == 4
    for name in ("density", "potential_expansion", *products):
        np.testing.assert_array_equal(frames[name].values[0], single[name].values, err_msg=name)
    from pipeline.reports.frames import frames_report
    from pipeline.reports.tables import trajectories_table

    potential_frames = tmp_path / "potential_frames.nc"
    run_potential_frames(adk_record, DCD, potential_frames, SETTINGS, frames=FrameSelection(30, 32))
    report = frames_report([potential_frames], [out])
    assert report["trajectory_descriptor_frames"].values.tolist() == [1]
    assert report["trajectory_descriptor_equivariance_error"].values[0] == np.nanmax(frames["equivariance_error"].values)
    assert report["trajectory_n_frames"].values.tolist() == [2]
    assert "descriptor frames" in trajectories_table(report)
    with pytest.raises(ValueError, match=r"--sphere-radius 4 Å is larger than --padding 3 Å"):
        from pipeline.descriptors.compute import DescriptorParameters
        from pipeline.descriptors.frames import run_descriptors_frames

        run_descriptors_frames(adk_record, DCD, tmp_path / "x.nc", SETTINGS, DescriptorParameters(sphere_radius_A=4.0))
