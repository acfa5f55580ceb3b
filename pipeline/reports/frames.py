"""The trajectory part of a study report: per-trajectory time series, statistics and missing structures.

:func:`frames_report` reads the frames files of ``python -m pipeline potential-frames`` (or
``potential-frames-gather``) and returns a Dataset merged into the report:

================================  ===========================  ==============  ===============================
variable                          dims                         units           meaning
================================  ===========================  ==============  ===============================
trajectory_n_frames               (trajectory,)                1               frames computed
trajectory_n_atoms                (trajectory,)                1               atoms per frame
trajectory_energy_mean/std        (trajectory,)                e^2/angstrom    energy over frames (std ddof 0)
trajectory_speed                  (trajectory,)                1/s             frames / summed job loop time
trajectory_time                   (trajectory, traj_frame)     ps              time of each frame (NaN padding)
trajectory_energy                 (trajectory, traj_frame)     e^2/angstrom    energy of each frame
trajectory_runtime                (trajectory, traj_frame)     s               wall time of each frame
trajectory_residue_id             (trajectory, traj_residue)   1               residue numbers (-1 padding)
trajectory_residue_potential_*    (trajectory, traj_residue)   e/angstrom      mean and std over frames
trajectory_descriptor_frames      (trajectory,)                1               frames with descriptors (descriptors-frames)
trajectory_descriptor_equiv...    (trajectory,)                1               largest equivariance error over those frames
================================  ===========================  ==============  ===============================

:func:`missing_report` lists expected structures without results (``missing_structure`` with
``missing_reason``), so a study whose inputs partly failed still reports the rest.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import xarray as xr

from pipeline.storage import read_netcdf

#: Variables a frames file must hold for the report.
REQUIRED = ("potential", "energy", "runtime", "residue_potential_mean", "residue_potential_std", "residue_id")


def _padded(rows: list[np.ndarray], fill, dtype) -> np.ndarray:
    width = max((len(r) for r in rows), default=0)
    out = np.full((len(rows), width), fill, dtype=dtype)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def frames_report(paths: Sequence[str | os.PathLike], descriptor_paths: Sequence[str | os.PathLike] = ()) -> xr.Dataset:
    """Per-trajectory time series and statistics of the frames files ``paths`` (module docstring).

    ``descriptor_paths`` (files of ``descriptors-frames``) add ``trajectory_descriptor_frames``
    (frames with descriptors) and ``trajectory_descriptor_equivariance_error`` (largest over
    frames and methods) for the trajectories they belong to (NaN/0 for the others).

    Raises
    ------
    ValueError
        When a file lacks a variable of :data:`REQUIRED` (naming the file and the variable).
    """
    ids, n_frames, n_atoms, e_mean, e_std, speed = [], [], [], [], [], []
    times, energies, runtimes, resids, res_mean, res_std = [], [], [], [], [], []
    for path in paths:
        ds = read_netcdf(path)
        missing = [name for name in REQUIRED if name not in ds]
        if missing:
            raise ValueError(f"{path}: not a frames file, missing variable(s) {', '.join(missing)}")
        energy = np.asarray(ds["energy"].values, dtype=np.float64)
        ids.append(str(ds.attrs.get("structure_id", os.path.basename(os.fspath(path)).split(".")[0])))
        n_frames.append(energy.size)
        n_atoms.append(int(ds.sizes["atom"]))
        e_mean.append(float(energy.mean()))
        e_std.append(float(energy.std()))
        speed.append(float(ds.attrs.get("speed_frames_per_s", np.nan)))
        times.append(np.asarray(ds["time"].values, dtype=np.float64))
        energies.append(energy)
        runtimes.append(np.asarray(ds["runtime"].values, dtype=np.float64))
        resids.append(np.asarray(ds["residue_id"].values, dtype=np.int64))
        res_mean.append(np.asarray(ds["residue_potential_mean"].values, dtype=np.float64))
        res_std.append(np.asarray(ds["residue_potential_std"].values, dtype=np.float64))
    per_frame = ("trajectory", "traj_frame")
    per_residue = ("trajectory", "traj_residue")
    data = {
        "trajectory_n_frames": (("trajectory",), np.array(n_frames, dtype=np.int64), {"units": "1", "long_name": "frames computed"}),
        "trajectory_n_atoms": (("trajectory",), np.array(n_atoms, dtype=np.int64), {"units": "1", "long_name": "atoms per frame"}),
        "trajectory_energy_mean": (("trajectory",), np.array(e_mean), {"units": "e^2/angstrom", "long_name": "electrostatic energy, mean over frames"}),
        "trajectory_energy_std": (("trajectory",), np.array(e_std), {"units": "e^2/angstrom", "long_name": "electrostatic energy, standard deviation over frames (ddof 0)"}),
        "trajectory_speed": (("trajectory",), np.array(speed), {"units": "1/s", "long_name": "frames per second of the potential-frames jobs (summed loop time)"}),
        "trajectory_time": (per_frame, _padded(times, np.nan, np.float64), {"units": "ps", "long_name": "simulation time of the frame"}),
        "trajectory_energy": (per_frame, _padded(energies, np.nan, np.float64), {"units": "e^2/angstrom", "long_name": "electrostatic energy of the frame"}),
        "trajectory_runtime": (per_frame, _padded(runtimes, np.nan, np.float64), {"units": "s", "long_name": "wall time of the frame's build, atom values and self-check"}),
        "trajectory_residue_id": (per_residue, _padded(resids, -1, np.int64), {"units": "1", "long_name": "residue number (-1: padding)"}),
        "trajectory_residue_potential_mean": (per_residue, _padded(res_mean, np.nan, np.float64), {"units": "e/angstrom", "long_name": "residue potential, mean over frames"}),
        "trajectory_residue_potential_std": (per_residue, _padded(res_std, np.nan, np.float64), {"units": "e/angstrom", "long_name": "residue potential, standard deviation over frames"}),
    }
    n_desc, eq_error = np.zeros(len(ids), dtype=np.int64), np.full(len(ids), np.nan)
    for path in descriptor_paths:
        ds = read_netcdf(path)
        if "equivariance_error" not in ds or "frame" not in ds.dims:
            raise ValueError(f"{path}: not a descriptors-frames file, missing 'equivariance_error' over 'frame'")
        sid = str(ds.attrs.get("structure_id", ""))
        if sid in ids:
            i = ids.index(sid)
            n_desc[i] = ds.sizes["frame"]
            eq_error[i] = float(np.nanmax(ds["equivariance_error"].values))
    data["trajectory_descriptor_frames"] = (("trajectory",), n_desc, {"units": "1", "long_name": "frames with descriptors"})
    data["trajectory_descriptor_equivariance_error"] = (("trajectory",), eq_error, {
        "units": "1", "long_name": "largest relative equivariance error of the product features over frames and methods"})
    coords = {"trajectory": ("trajectory", np.array(ids, dtype=object), {"units": "1", "long_name": "structure id of the trajectory"})}
    return xr.Dataset(data, coords=coords)


def missing_report(expected_ids: Sequence[str], present_paths: Sequence[str | os.PathLike],
                   reasons: dict[str, str] | None = None) -> xr.Dataset:
    """Structures expected by the study whose record is not among ``present_paths`` (file stem = id), with reasons."""
    present = {os.path.basename(os.fspath(p)).split(".")[0] for p in present_paths}
    missing = [sid for sid in expected_ids if sid not in present]
    reasons = reasons or {}
    why = [reasons.get(sid, "no result (the job failed or did not run)") for sid in missing]
    return xr.Dataset(
        {"missing_reason": (("missing_structure",), np.array(why, dtype=object),
                            {"units": "1", "long_name": "why the structure has no result"})},
        coords={"missing_structure": ("missing_structure", np.array(missing, dtype=object),
                                      {"units": "1", "long_name": "expected structure without result"})},
    )
