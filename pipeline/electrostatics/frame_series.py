"""Potential time series over trajectory frames as an xarray Dataset, their statistics and their gather.

One file per structure (or per block of frames) with dimensions ``frame`` (coordinate: the
frame index in the trajectory, plus ``time`` in ps), ``atom`` and ``residue``:

=========================  ==================  ============  =====================================
variable                   dims                units         meaning
=========================  ==================  ============  =====================================
potential                  (frame, atom)       e/angstrom    total potential at the atom (self excluded)
energy                     (frame,)            e^2/angstrom  ½ Σ q_j Φ(x_j)
energy_kcal_per_mol        (frame,)            kcal/mol      the same × 332.0637
box                        (frame, box_param)  Å, degrees    a, b, c, α, β, γ (NaN without a box)
alpha, cutoff              (frame,)            1/Å, Å        split of the frame's build
ranks                      (frame, mode)       1             Tucker ranks of the stored long range
self_check_*               (frame,)            1             self-check errors relative to max |Φ_ref|
tolerance_exceeded         (frame,)            1             1 when the self-check missed the tolerance
accuracy_level             (frame,)            1             level of the build that passed
runtime                    (frame,)            s             wall seconds of the frame (build, atoms, check)
time_<step>                (frame,)            s             seconds of each build step
residue_potential          (frame, residue)    e/angstrom    mean of the potential over the residue's atoms
potential_mean, _std       (atom,)             e/angstrom    mean and standard deviation over frames
residue_potential_mean/std (residue,)          e/angstrom    the same per residue
=========================  ==================  ============  =====================================

Statistics are over the frames the file holds, population standard deviation (ddof = 0),
computed by :func:`add_statistics` from the full float64 arrays, so a gathered file and a
one-job file of the same frames are bitwise equal. Residues are the distinct (chain, residue
number, residue name) triples in order of first appearance.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import xarray as xr

from pipeline.storage import provenance_attrs, read_netcdf
from pipeline.units import COULOMB_KCAL_PER_MOL_A_PER_E2

log = logging.getLogger(__name__)

#: Names of the six box parameters.
BOX_PARAMS = ("a", "b", "c", "alpha", "beta", "gamma")
#: Per-frame self-check figures: (key of the self-check dict, variable name, long name).
CHECK_FIGURES = (
    ("max_rel_error_atoms", "self_check_max_rel_error_atoms", "self-check max error at sampled atoms"),
    ("rms_rel_error_atoms", "self_check_rms_rel_error_atoms", "self-check rms error at sampled atoms"),
    ("max_rel_error_points", "self_check_max_rel_error_points", "self-check max error at random points"),
    ("max_rel_error", "self_check_max_rel_error", "self-check largest error (atoms, points, map)"),
)
#: Attributes every block of one study must share for a gather.
SHARED_ATTRS = ("trajectory", "topology", "frames", "n_frames_selected", "settings", "charge_fingerprint", "n_atoms")


class FrameRecorder:
    """Preallocated per-frame arrays of one job (``n_frames`` × ``n_atoms``), filled frame by frame."""

    def __init__(self, n_frames: int, n_atoms: int) -> None:
        self.n = 0
        self.frame = np.zeros(n_frames, dtype=np.int64)
        self.time = np.full(n_frames, np.nan)
        self.potential = np.empty((n_frames, n_atoms))
        self.energy = np.full(n_frames, np.nan)
        self.box = np.full((n_frames, 6), np.nan)
        self.alpha = np.full(n_frames, np.nan)
        self.cutoff = np.full(n_frames, np.nan)
        self.ranks = np.zeros((n_frames, 3), dtype=np.int64)
        self.accuracy_level = np.zeros(n_frames, dtype=np.int64)
        self.exceeded = np.zeros(n_frames, dtype=np.int64)
        self.runtime = np.full(n_frames, np.nan)
        self.checks = {key: np.full(n_frames, np.nan) for key, _, _ in CHECK_FIGURES}
        self.steps: dict[str, np.ndarray] = {}

    def add(self, *, frame: int, time_ps: float, box: list, potential_e_per_A, energy: float, params: dict,
            ranks, check: dict, timings: dict, runtime_s: float) -> None:
        """Record one frame (host arrays)."""
        i = self.n
        self.frame[i], self.time[i], self.energy[i], self.runtime[i] = frame, time_ps, energy, runtime_s
        self.potential[i] = potential_e_per_A
        if len(box) == 6:
            self.box[i] = box
        self.alpha[i], self.cutoff[i] = float(params["alpha"]), float(params["cutoff"])
        self.ranks[i] = ranks
        self.accuracy_level[i] = int(check.get("accuracy_level", 0))
        self.exceeded[i] = int(check.get("tolerance_exceeded", 0))
        for key, _, _ in CHECK_FIGURES:
            self.checks[key][i] = float(check.get(key, np.nan))
        for step, seconds in timings.items():
            self.steps.setdefault(step, np.full(self.frame.size, np.nan))[i] = float(seconds)
        self.n += 1


def residue_index(chain_ids, residue_ids, residue_names) -> tuple[np.ndarray, np.ndarray]:
    """(per-atom residue index (n_atoms,) int64, first atom of each residue (n_residues,) int64).

    Residues are the distinct (chain, number, name) triples in order of first appearance.
    """
    keys = [f"{c}\x00{r}\x00{n}" for c, r, n in zip(chain_ids, residue_ids, residue_names)]
    _, first, inverse = np.unique(np.asarray(keys, dtype=object), return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return rank[inverse.reshape(-1)].astype(np.int64), first[order].astype(np.int64)


def frames_to_dataset(record: FrameRecorder, structure, *, attrs: dict) -> xr.Dataset:
    """Dataset of the recorded frames (module docstring), with statistics; ``attrs`` become global attributes."""
    n = record.n
    n_atoms = structure.n_atoms
    chains = np.asarray(structure.chain_ids if structure.chain_ids is not None else [""] * n_atoms).astype(str)
    resids = np.asarray(structure.residue_ids if structure.residue_ids is not None else np.zeros(n_atoms), dtype=np.int64)
    resnames = np.asarray(structure.residue_names if structure.residue_names is not None else [""] * n_atoms).astype(str)
    atom_residue, first = residue_index(chains, resids, resnames)
    kcal = record.energy[:n] * COULOMB_KCAL_PER_MOL_A_PER_E2
    data = {
        "potential": (("frame", "atom"), record.potential[:n],
                      {"units": "e/angstrom", "long_name": "total electrostatic potential at the atom (self excluded)"}),
        "energy": (("frame",), record.energy[:n], {"units": "e^2/angstrom", "long_name": "electrostatic energy 1/2 sum q_j phi(x_j)"}),
        "energy_kcal_per_mol": (("frame",), kcal, {"units": "kcal/mol", "long_name": "electrostatic energy (Coulomb constant 332.0637)"}),
        "box": (("frame", "box_param"), record.box[:n],
                {"units": "angstrom (a, b, c), degree (alpha, beta, gamma)", "long_name": "periodic box of the frame (NaN: none)"}),
        "alpha": (("frame",), record.alpha[:n], {"units": "1/angstrom", "long_name": "splitting parameter of the frame's build"}),
        "cutoff": (("frame",), record.cutoff[:n], {"units": "angstrom", "long_name": "short-range cutoff of the frame's build"}),
        "ranks": (("frame", "mode"), record.ranks[:n], {"units": "1", "long_name": "Tucker ranks of the stored long range"}),
        "tolerance_exceeded": (("frame",), record.exceeded[:n], {"units": "1", "long_name": "1 when the self-check missed the tolerance"}),
        "accuracy_level": (("frame",), record.accuracy_level[:n], {"units": "1", "long_name": "accuracy level of the build that passed the self-check"}),
        "runtime": (("frame",), record.runtime[:n], {"units": "s", "long_name": "wall time of the frame (build, atom values, self-check)"}),
        "charge": (("atom",), np.asarray(structure.charges, dtype=np.float64), {"units": "e", "long_name": "partial charge"}),
        "atom_residue": (("atom",), atom_residue, {"units": "1", "long_name": "index of the atom's residue"}),
        "residue_id": (("residue",), resids[first], {"units": "1", "long_name": "residue number"}),
        "residue_name": (("residue",), resnames[first].astype(object), {"units": "1", "long_name": "residue name"}),
        "chain_id": (("residue",), chains[first].astype(object), {"units": "1", "long_name": "chain or segment identifier"}),
    }
    for key, name, long_name in CHECK_FIGURES:
        data[name] = (("frame",), record.checks[key][:n], {"units": "1", "long_name": f"{long_name}, relative to max |phi_ref| at the atoms"})
    for step, seconds in record.steps.items():
        data[f"time_{step}"] = (("frame",), seconds[:n], {"units": "s", "long_name": f"seconds of the build step {step}"})
    coords = {
        "frame": ("frame", record.frame[:n], {"units": "1", "long_name": "frame index in the trajectory"}),
        "time": ("frame", record.time[:n], {"units": "ps", "long_name": "simulation time of the frame"}),
        "atom": ("atom", np.arange(n_atoms, dtype=np.int64), {"units": "1", "long_name": "atom index"}),
        "residue": ("residue", np.arange(first.size, dtype=np.int64), {"units": "1", "long_name": "residue index"}),
        "box_param": ("box_param", np.array(BOX_PARAMS, dtype=object), {"units": "1", "long_name": "box parameter"}),
        "mode": ("mode", np.array(["x", "y", "z"], dtype=object), {"units": "1", "long_name": "Tucker mode"}),
    }
    dataset = xr.Dataset(data, coords=coords)
    dataset.attrs = provenance_attrs(**attrs)
    return add_statistics(dataset)


def add_statistics(dataset: xr.Dataset) -> xr.Dataset:
    """Add per-frame residue potentials and mean/std over frames (per atom and per residue)."""
    potential = np.asarray(dataset["potential"].values, dtype=np.float64)
    atom_residue = np.asarray(dataset["atom_residue"].values, dtype=np.int64)
    n_res = dataset.sizes["residue"]
    counts = np.bincount(atom_residue, minlength=n_res).astype(np.float64)
    residue = np.stack([np.bincount(atom_residue, weights=row, minlength=n_res) for row in potential]) / counts \
        if potential.shape[0] else np.zeros((0, n_res))
    out = dataset.copy()
    unit = "e/angstrom"
    out["residue_potential"] = (("frame", "residue"), residue,
                                {"units": unit, "long_name": "mean potential over the residue's atoms"})
    out["potential_mean"] = (("atom",), potential.mean(axis=0), {"units": unit, "long_name": "potential at the atom, mean over frames"})
    out["potential_std"] = (("atom",), potential.std(axis=0),
                            {"units": unit, "long_name": "potential at the atom, standard deviation over frames (ddof 0)"})
    out["residue_potential_mean"] = (("residue",), residue.mean(axis=0),
                                     {"units": unit, "long_name": "residue potential, mean over frames"})
    out["residue_potential_std"] = (("residue",), residue.std(axis=0),
                                    {"units": unit, "long_name": "residue potential, standard deviation over frames (ddof 0)"})
    out.attrs["n_frames"] = int(potential.shape[0])
    return out


def gather_blocks(paths: list[str | os.PathLike]) -> xr.Dataset:
    """Concatenate block files in frame order and recompute the statistics.

    Every frame of the selection recorded in the blocks (attribute ``selected_frames``) must be
    present exactly once, and the blocks must share :data:`SHARED_ATTRS`.

    Raises
    ------
    ValueError
        Naming the missing frame, or the duplicate frame and both files, or the file whose
        settings differ.
    """
    if not paths:
        raise ValueError("potential-frames-gather: no block files given")
    blocks = [(Path(p), read_netcdf(p)) for p in paths]
    first_path, first = blocks[0]
    for path, block in blocks:
        missing = [v for v in ("potential", "energy", "atom_residue") if v not in block] + \
                  [a for a in (*SHARED_ATTRS, "selected_frames") if a not in block.attrs]
        if missing:
            raise ValueError(f"{path}: not a potential-frames block file, missing {', '.join(missing)}")
        for key in SHARED_ATTRS:
            if str(block.attrs[key]) != str(first.attrs[key]):
                raise ValueError(f"{path}: attribute {key!r} = {block.attrs[key]!r} differs from {first_path}: "
                                 f"{first.attrs[key]!r}; blocks of different runs cannot be gathered")
    owner: dict[int, Path] = {}
    for path, block in blocks:
        for frame in block["frame"].values.tolist():
            if frame in owner:
                raise ValueError(f"{path}: frame {frame} is also in {owner[frame]} (duplicate frame)")
            owner[frame] = path
    expected = json.loads(first.attrs["selected_frames"])
    expected = list(range(*expected))
    for frame in expected:
        if frame not in owner:
            raise ValueError(f"frame {frame} of {first.attrs['trajectory']} is in none of the {len(blocks)} block files "
                             f"(missing frame; the blocks hold {len(owner)} of {len(expected)} frames)")
    extra = sorted(set(owner) - set(expected))
    if extra:
        raise ValueError(f"{owner[extra[0]]}: frame {extra[0]} is not in the selection {first.attrs['frames']}")
    per_frame = sorted({name for _, b in blocks for name, var in b.data_vars.items() if "frame" in var.dims})
    static = [name for name in first.data_vars if name not in per_frame]
    ordered = sorted(blocks, key=lambda item: int(item[1]["frame"].values[0]))
    parts = []
    for _, block in ordered:
        for name in per_frame:  # a build step that only some blocks needed (a repair): NaN elsewhere
            if name not in block:
                block[name] = (("frame",), np.full(block.sizes["frame"], np.nan), {"units": "s"})
        parts.append(block[per_frame])
    series = xr.concat(parts, dim="frame", data_vars="all", coords="minimal", compat="override", join="override")
    gathered = xr.merge([series, first[static]], compat="override", join="override")
    gathered = gathered.drop_vars([v for v in gathered.data_vars if v.endswith(("_mean", "_std"))] + ["residue_potential"])
    gathered.attrs = {k: v for k, v in first.attrs.items() if k not in ("block", "blocks")}
    gathered.attrs["blocks"] = len(blocks)
    gathered.attrs["block_files"] = json.dumps([str(p) for p, _ in ordered])
    seconds = float(sum(float(b.attrs.get("loop_seconds", np.nan)) for _, b in ordered))
    gathered.attrs["loop_seconds"] = seconds  # summed over the block jobs
    gathered.attrs["speed_frames_per_s"] = len(owner) / seconds if seconds > 0 else float("nan")
    for name in gathered.variables:
        holder = next((b for _, b in ordered if name in b.variables), None)
        if holder is not None:
            gathered[name].attrs = dict(holder[name].attrs)
    return add_statistics(gathered)
