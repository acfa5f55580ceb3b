"""The potential over trajectory frames (``python -m pipeline potential-frames``): one build per frame.

:func:`run_potential_frames` loads the structure record (charges, labels), opens the trajectory
once, and for each selected frame (or each frame of one block of the selection) runs exactly
the single-structure build of :func:`~pipeline.electrostatics.stage.build_checked` (build,
values at every atom, self-check with automatic repair) on that frame's positions and box, so
every frame is bitwise equal to ``python -m pipeline potential`` on a record with the same
coordinates and settings. What does not change between frames is paid once per job: the
interpreter and its imports, the compiled (numba) kernels and the backend; with
``periodic: auto`` each frame uses its own box. The job holds one frame's coordinates and the
block's per-frame results (:class:`~.frame_series.FrameRecorder`), and writes one file
atomically at the end (:mod:`.frame_series` describes it). :func:`run_potential_frames_gather`
joins block files in frame order.
"""

from __future__ import annotations

import json
import logging
import time

import numpy as np

from pipeline.backend import to_host, xp_for_device
from pipeline.electrostatics.frame_series import (
    FrameRecorder,
    frames_to_dataset,
    gather_blocks,
)
from pipeline.electrostatics.settings import PotentialSettings
from pipeline.electrostatics.stage import build_checked, cell_for_box, medium_attrs
from pipeline.storage import write_netcdf
from pipeline.structures.record import load_structure
from pipeline.structures.trajectory import (
    FrameSelection,
    Trajectory,
    block_indices,
    topology_of,
)

log = logging.getLogger(__name__)


def charge_fingerprint(charges: np.ndarray) -> str:
    """Short hash of the charges (blocks of one structure must agree)."""
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(charges, dtype=np.float64).tobytes()).hexdigest()[:16]


def run_potential_frames(structure_path, trajectory, output, settings: PotentialSettings, *, topology=None,
                         trajectory_format: str | None = None, frames: FrameSelection | None = None,
                         block: int = 0, blocks: int = 1) -> dict:
    """Potential, energy and self-check of every selected frame of a trajectory, written to ``output``.

    Parameters
    ----------
    structure_path : path-like
        Structure record (charges and labels; its ``source`` is the default topology).
    trajectory : str or path-like
        Trajectory file or ``mdanalysistests:NAME``.
    output : path-like
        netCDF file to write (see :mod:`.frame_series`).
    settings : PotentialSettings
    topology : str or path-like, optional
        Topology for the trajectory (default: the record's ``source``).
    trajectory_format : str, optional
        Format of the trajectory (default: from its extension).
    frames : FrameSelection, optional
        ``start:stop:step`` of the trajectory (default: every frame).
    block, blocks : int
        Run only block ``block`` of ``blocks`` contiguous parts of the selection.

    Returns
    -------
    dict
        ``frames`` (count), ``seconds`` (loop wall time) and ``frames_per_s``.

    Raises
    ------
    ValueError
        Atom counts of record and trajectory differ, frames out of range, an unreadable frame,
        or a frame whose build misses the tolerance: nothing is written.
    """
    frames = FrameSelection() if frames is None else frames
    structure = load_structure(structure_path)
    if structure.n_atoms == 0:
        raise ValueError(f"{structure_path}: the structure is empty (0 atoms)")
    topology = topology or topology_of(structure.attrs, structure_path)
    xp = xp_for_device(settings.device)
    charges = xp.asarray(structure.charges)
    with Trajectory(topology, trajectory, trajectory_format=trajectory_format) as traj:
        if traj.n_atoms != structure.n_atoms:
            raise ValueError(f"{traj.trajectory_path}: trajectory (with topology {traj.topology_path.name}) has "
                             f"{traj.n_atoms} atoms but the structure record {structure_path} has {structure.n_atoms}")
        selected = frames.indices(traj.n_frames, source=str(traj.trajectory_path))
        indices = block_indices(selected, block, blocks)
        record = FrameRecorder(len(indices), structure.n_atoms)
        log.info("potential-frames: %s, %d atoms, frames %s of %d (block %d/%d: frames %d..%d)", traj.trajectory_path,
                 traj.n_atoms, frames, traj.n_frames, block, blocks, indices[0], indices[-1])
        from tqdm import tqdm

        start = time.perf_counter()
        for frame in tqdm(traj.frames(indices), total=len(indices), desc="frames", unit="frame", disable=None):
            t0 = time.perf_counter()
            source = f"{traj.trajectory_path}: frame {frame.index}"
            cell = cell_for_box(frame.box, settings, source=source, label="box")
            potential, (total, _, _), check, timings = build_checked(xp.asarray(frame.positions), charges, settings,
                                                                      cell=cell, source=source)
            total = to_host(total)
            energy = 0.5 * float(np.dot(to_host(potential.charges), total))
            record.add(frame=frame.index, time_ps=frame.time_ps, box=frame.box, potential_e_per_A=total,
                       energy=energy, params=potential.params, ranks=potential.ranks, check=check, timings=timings,
                       runtime_s=time.perf_counter() - t0)
            log.info("frame %d (t = %.6g ps): energy %.8g e^2/A, self-check %.2e, %.2fs", frame.index, frame.time_ps,
                     energy, check["max_rel_error"], record.runtime[record.n - 1])
        seconds = time.perf_counter() - start
        attrs = {key: structure.attrs[key] for key in ("structure_id", "source", "format", "charge_source")
                 if key in structure.attrs}
        attrs.update(
            medium_attrs(settings),
            input_file=str(structure_path), trajectory=str(trajectory), topology=str(topology),
            trajectory_format=traj.format, n_frames_trajectory=int(traj.n_frames), frames=str(frames),
            selected_frames=json.dumps([int(selected[0]), int(selected[-1]) + 1, int(frames.step)]),
            n_frames_selected=int(selected.size), block=int(block), blocks=int(blocks),
            settings=json.dumps(settings.to_dict(), sort_keys=True), tolerance=float(settings.tolerance),
            charge_fingerprint=charge_fingerprint(structure.charges), n_atoms=int(structure.n_atoms),
            loop_seconds=seconds, speed_frames_per_s=len(indices) / seconds if seconds > 0 else float("nan"),
        )
    dataset = frames_to_dataset(record, structure, attrs=attrs)
    write_netcdf(dataset, output)
    log.info("wrote %s: %d frames in %.1fs (%.3g frames/s)", output, record.n, seconds, attrs["speed_frames_per_s"])
    return {"frames": record.n, "seconds": seconds, "frames_per_s": attrs["speed_frames_per_s"]}


def run_potential_frames_gather(block_files, output) -> dict:
    """Join block files of one trajectory in frame order into ``output`` (every frame exactly once)."""
    dataset = gather_blocks(list(block_files))
    write_netcdf(dataset, output)
    log.info("wrote %s: %d frames from %d blocks", output, dataset.sizes["frame"], len(block_files))
    return {"frames": int(dataset.sizes["frame"])}
