"""Descriptors over trajectory frames (``python -m pipeline descriptors-frames``), with a ``frame`` dimension.

For each selected frame: the frame's potential is built exactly as in ``potential-frames``
(:func:`~pipeline.electrostatics.stage.build_checked`, self-check included), and the per-atom
descriptors are computed from the frame's positions and that potential exactly as in the
descriptors stage (:func:`~pipeline.descriptors.compute.compute_descriptors` with a
:class:`~pipeline.descriptors.sphere_potential.TuckerSphereEvaluator`). The per-frame Datasets of
:func:`~pipeline.descriptors.dataset.descriptors_to_dataset` are stacked along ``frame`` (the
frame index in the trajectory) with a ``time`` coordinate in ps. Meant for a chosen selection of
frames: the output holds every frame's features. The features are computed on the potential's
device (``--device``): on a GPU the frame's potential stays there and serves the sphere
potential directly. The sphere expansion's band limit is chosen on the first frame and kept for
the others.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from functools import partial

import xarray as xr

from pipeline.backend import xp_for_device
from pipeline.descriptors.compute import DescriptorParameters, compute_descriptors
from pipeline.descriptors.dataset import PRODUCT_STORAGE_DTYPE, descriptors_to_dataset
from pipeline.descriptors.sphere_potential import TuckerSphereEvaluator
from pipeline.electrostatics.settings import PotentialSettings
from pipeline.electrostatics.stage import build_checked, cell_for_box
from pipeline.storage import write_netcdf
from pipeline.structures.record import load_structure
from pipeline.structures.trajectory import FrameSelection, Trajectory, topology_of

log = logging.getLogger(__name__)


def run_descriptors_frames(structure_path, trajectory, output, settings: PotentialSettings,
                           params: DescriptorParameters, *, topology=None, trajectory_format: str | None = None,
                           frames: FrameSelection | None = None) -> int:
    """Descriptors of every selected frame, written to ``output``; returns the number of frames.

    Raises
    ------
    ValueError
        As :func:`~pipeline.electrostatics.frames.run_potential_frames`, and when the potential
        spheres (radius ``params.sphere_radius_A``) would leave the free-space Chebyshev box
        (``settings.padding`` smaller than the radius) or a frame is periodic (not supported by
        the sphere expansion). Nothing is written then.
    """
    frames = FrameSelection() if frames is None else frames
    if params.sphere_radius_A > settings.padding:
        raise ValueError(f"--sphere-radius {params.sphere_radius_A:g} Å is larger than --padding {settings.padding:g} Å: "
                         "the potential spheres would leave the Chebyshev box; raise --padding")
    structure = load_structure(structure_path)
    topology = topology or topology_of(structure.attrs, structure_path)
    xp = xp_for_device(settings.device)
    params = dataclasses.replace(params, device=settings.device)  # the features on the potential's device
    charges = xp.asarray(structure.charges)
    parts = []
    with Trajectory(topology, trajectory, trajectory_format=trajectory_format) as traj:
        if traj.n_atoms != structure.n_atoms:
            raise ValueError(f"{traj.trajectory_path}: trajectory (with topology {traj.topology_path.name}) has "
                             f"{traj.n_atoms} atoms but the structure record {structure_path} has {structure.n_atoms}")
        indices = frames.indices(traj.n_frames, source=str(traj.trajectory_path))
        for frame in traj.frames(indices):
            t0 = time.perf_counter()
            source = f"{traj.trajectory_path}: frame {frame.index}"
            cell = cell_for_box(frame.box, settings, source=source, label="box")
            if cell is not None:
                raise ValueError(f"{source}: descriptors need a free-space potential, but the frame has a box and "
                                 f"--periodic is {settings.periodic!r}; pass --periodic off")
            potential, _, check, _ = build_checked(xp.asarray(frame.positions), charges, settings, cell=cell,
                                                   source=source)
            # the spheres lie in the box (radius ≤ padding, checked above): no check per batch on the device
            result = compute_descriptors(frame.positions, structure.charges, TuckerSphereEvaluator(potential), params,
                                         device_potential=partial(potential.long_range, check=False),
                                         product_dtype=PRODUCT_STORAGE_DTYPE)
            if params.band_limit is None:  # the first frame's choice serves every frame: one quadrature for all
                params = dataclasses.replace(params, band_limit=result.band_limit)
            dataset = descriptors_to_dataset(result, attrs={})
            dataset["frame_seconds"] = ((), time.perf_counter() - t0,
                                        {"units": "s", "long_name": "wall time of the frame (potential and descriptors)"})
            dataset["potential_self_check_max_rel_error"] = ((), float(check["max_rel_error"]), {
                "units": "1", "long_name": "self-check max error of the frame's potential, relative to max |phi_ref|"})
            parts.append(dataset.expand_dims(frame=[frame.index]).assign_coords(time=("frame", [frame.time_ps])))
            log.info("descriptors of frame %d (t = %.6g ps) in %.2fs", frame.index, frame.time_ps,
                     float(dataset["frame_seconds"]))
        trajectory_format = traj.format
    out = xr.concat(parts, dim="frame", data_vars="minimal", coords="minimal", compat="override", join="override")
    for name in ("frame", "time"):
        out[name].attrs = {"units": "1", "long_name": "frame index in the trajectory"} if name == "frame" else \
            {"units": "ps", "long_name": "simulation time of the frame"}
    for name, variable in parts[0].variables.items():
        if name in out.variables and name not in ("frame", "time"):
            out[name].attrs = dict(variable.attrs)
    out.attrs = {**parts[0].attrs, "structure_id": str(structure.attrs.get("structure_id", "")),
                 "structure_file": str(structure_path), "trajectory": str(trajectory), "topology": str(topology),
                 "trajectory_format": trajectory_format, "frames": str(frames), "potential_tolerance": settings.tolerance}
    write_netcdf(out, output)
    log.info("wrote %s: descriptors of %d frames", output, len(parts))
    return len(parts)
