"""Turn the records read from a study's stage outputs into report variables.

Each builder returns ``{name: (dims, data, attrs)}`` tuples (and the coordinates they need) with
``units`` and ``long_name`` on every variable, for :func:`pipeline.reports.datasets.build_report`
to assemble into one Dataset; the variables and their dimensions are listed there. Missing
values are NaN (numbers) or ``""`` (text).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import xarray as xr

from pipeline.reports.benchmarks import BenchmarkRecord
from pipeline.reports.inputs import DescriptorSummary, PotentialSummary, StructureSummary

log = logging.getLogger(__name__)

#: Units and long names of the report's coordinates (tensor-product ones only when the file has none).
COORDINATE_ATTRS: dict[str, tuple[str, str]] = {
    "structure": ("1", "structure id"),
    "potential_tolerance": ("1", "requested relative accuracy of the potential"),
    "mode": ("1", "Tucker mode index (order of the ranks of the long-range coefficient tensor)"),
    "step": ("1", "step of the potential build"),
    "stage": ("1", "workflow rule (Snakemake benchmark folder)"),
    "job": ("1", "Snakemake job not tied to one structure (rule/target)"),
    "method": ("1", "tensor-product method"),
    "lmax": ("1", "maximum degree L of the inputs"),
    "pass": ("1", "timed pass"),
    "device": ("1", "device the tensor products ran on"),
    "cell_axis": ("1", "axis of the periodic cell (a, b, c)"),
    "xyz": ("1", "Cartesian component"),
}
#: Labels of the ``cell_axis`` and ``xyz`` coordinates.
CELL_AXES = ("a", "b", "c")
XYZ = ("x", "y", "z")
#: Units and long names of tensor-product variables, used only where the file lacks them.
TP_VARIABLE_ATTRS: dict[str, tuple[str, str]] = {
    "time_median": ("s", "median runtime"),
    "time_spread": ("s", "spread of the runtime over repeats"),
    "flops": ("1", "floating-point operations"),
    "expressivity": ("1", "expressivity of the tensor product"),
    "span": ("1", "dimension of the span of the outputs"),
    "n_paths": ("1", "number of coupling paths"),
    "max_error": ("1", "maximum error against the reference"),
}
#: Report name, units and long name of the optional descriptor scalars and per-method variables.
DESCRIPTOR_SCALAR_ATTRS: dict[str, tuple[str, str, str]] = {
    "fourier_grid_difference": (
        "descriptor_fourier_grid_difference", "1", "relative difference of Gaunt products via 2D Fourier and via S2 grid"
    ),
    "gaunt_cg_difference": (
        "descriptor_gaunt_cg_difference", "1", "largest relative difference of Gaunt and Clebsch-Gordan products"
    ),
    "equivariance_error_density": (
        "descriptor_equivariance_error_density", "1", "equivariance error of the density expansion"
    ),
    "equivariance_error_potential": (
        "descriptor_equivariance_error_potential", "1", "equivariance error of the potential expansion"
    ),
    "potential_projection_error": (
        "descriptor_potential_projection_error", "1", "change of the potential expansion with twice the band limit"
    ),
    "time_total_s": ("descriptor_time_total", "s", "wall-clock time of the descriptor stage"),
}
DESCRIPTOR_PER_METHOD_ATTRS: dict[str, tuple[str, str, str]] = {
    "gaunt_cg_difference_by_method": (
        "descriptor_gaunt_cg_difference_by_method", "1", "relative difference of the product and Clebsch-Gordan"
    ),
    "time_product_s": ("descriptor_time_product", "s", "wall-clock time of the product"),
}
#: Report coordinates a tensor-product file may not reuse with another meaning.
RESERVED_DIMS = ("structure", "potential_tolerance", "mode", "step", "stage", "job", "cell_axis", "xyz")


def _var(dims: tuple[str, ...], data: np.ndarray, units: str, long_name: str) -> tuple:
    return (dims, data, {"units": units, "long_name": long_name})


def text_array(values: Sequence[str]) -> np.ndarray:
    """Strings as an object array (netCDF variable-length strings)."""
    return np.array([str(v) for v in values], dtype=object)


def check_unique(items: Sequence[Any], key: str | Callable[[Any], Any], what: str) -> None:
    """Raise ValueError naming both files when two records share the label ``key`` gives."""
    seen: dict[Any, str] = {}
    for item in items:
        label = getattr(item, key) if isinstance(key, str) else key(item)
        if label in seen:
            raise ValueError(f"two {what} files for {label!r}: {seen[label]} and {item.path}")
        seen[label] = item.path


def structure_variables(records: list[StructureSummary]) -> tuple[dict[str, tuple], dict[str, tuple]]:
    """Per-structure variables over ``(structure[, cell_axis])`` and the ``cell_axis`` coordinate.

    Variables follow the order of ``records``.
    """
    dims = ("structure",)
    box = np.array([r.box for r in records], dtype=np.float64).reshape(len(records), 6)
    variables = {
        "n_atoms": _var(dims, np.array([r.n_atoms for r in records], dtype=np.int64), "1", "number of atoms"),
        "net_charge": _var(dims, np.array([r.net_charge_e for r in records]), "e", "net charge (sum of partial charges)"),
        "charge_source": _var(dims, text_array([r.charge_source for r in records]), "1", "origin of the partial charges"),
        "structure_format": _var(dims, text_array([r.format for r in records]), "1", "input file format"),
        "structure_source": _var(dims, text_array([r.source for r in records]), "1", "input file or generator"),
        "n_dropped": _var(
            dims, np.array([r.n_dropped for r in records], dtype=np.int64), "1", "number of items the ingest left out"
        ),
        "box_length": _var(
            dims + ("cell_axis",), box[:, :3], "angstrom", "length of the periodic box of the structure record (NaN: no box)"
        ),
        "box_angle": _var(
            dims + ("cell_axis",), box[:, 3:], "degree",
            "angle of the periodic box opposite the axis: alpha (b, c), beta (a, c), gamma (a, b) (NaN: no box)",
        ),
    }
    return variables, {"cell_axis": ("cell_axis", text_array(CELL_AXES))}


def _ordered_steps(records: list[PotentialSummary]) -> list[str]:
    steps = sorted({step for r in records for step in r.times_s})
    return [s for s in steps if s != "total"] + (["total"] if "total" in steps else [])


def potential_variables(
    records: list[PotentialSummary], ids: list[str], n_atoms: dict[str, int]
) -> tuple[dict[str, tuple], dict[str, tuple]]:
    """Variables over ``(structure, potential_tolerance[, mode | step])`` and their new coordinates.

    Raises
    ------
    ValueError
        When a potential belongs to no structure in ``ids``, its atom count differs from the
        structure's, or two files describe the same structure and tolerance.
    """
    for record in records:
        if record.structure_id not in n_atoms:
            raise ValueError(
                f"{record.path}: potential of structure {record.structure_id!r}, which is not among the "
                f"structure records given (known: {', '.join(ids)})"
            )
        if record.n_atoms != n_atoms[record.structure_id]:
            raise ValueError(
                f"{record.path}: 'potential' has {record.n_atoms} values but structure "
                f"{record.structure_id!r} has {n_atoms[record.structure_id]} atoms"
            )
    check_unique(records, lambda r: (r.structure_id, r.tolerance), "potential")
    tolerances = sorted({r.tolerance for r in records})
    steps = _ordered_steps(records)
    shape = (len(ids), len(tolerances))
    scalars = {key: np.full(shape, np.nan) for key in records[0].scalars}
    ranks = np.full(shape + (3,), np.nan)
    degree = np.full(shape + (3,), np.nan)
    cell = np.full(shape + (3, 3), np.nan)
    times = np.full(shape + (len(steps),), np.nan)
    device = np.full(shape, "", dtype=object)
    files = np.full(shape, "", dtype=object)
    for record in records:
        index = (ids.index(record.structure_id), tolerances.index(record.tolerance))
        for key, value in record.scalars.items():
            scalars[key][index] = value
        ranks[index] = record.ranks
        degree[index] = record.degree
        cell[index] = np.reshape(record.cell, (3, 3))
        device[index] = record.device
        files[index] = record.path
        for step, seconds in record.times_s.items():
            times[index + (steps.index(step),)] = seconds
    dims = ("structure", "potential_tolerance")
    variables = {
        "potential_max_rel_error": _var(
            dims, scalars["max_rel_error"], "1",
            "maximum relative error of the potential against direct summation at the self-check atoms",
        ),
        "potential_rms_rel_error": _var(
            dims, scalars["rms_rel_error"], "1",
            "RMS relative error of the potential against direct summation at the self-check atoms",
        ),
        "potential_max_rel_error_points": _var(
            dims, scalars["max_rel_error_points"], "1",
            "maximum relative error of the potential against direct summation at random points in the box",
        ),
        "potential_rms_rel_error_points": _var(
            dims, scalars["rms_rel_error_points"], "1",
            "RMS relative error of the potential against direct summation at random points in the box",
        ),
        "potential_self_check_atoms": _var(dims, scalars["self_check_atoms"], "1", "atoms in the self-check sample"),
        "potential_self_check_points": _var(dims, scalars["self_check_points"], "1", "points in the self-check sample"),
        "potential_tolerance_exceeded": _var(
            dims, scalars["tolerance_exceeded"], "1", "1 where the potential stage flagged its self-check error, else 0"
        ),
        "potential_alpha": _var(dims, scalars["alpha"], "1/angstrom", "range-separation parameter alpha of the atom values"),
        "potential_stored_alpha": _var(
            dims, scalars["stored_alpha"], "1/angstrom",
            "alpha of the stored long-range representation (smaller than alpha where it was shrunk to a storage limit)",
        ),
        "potential_cutoff": _var(dims, scalars["cutoff"], "angstrom", "short-range cutoff radius"),
        "potential_storage": _var(dims, scalars["storage_bytes"], "byte", "storage of the Chebyshev-Tucker long-range part"),
        "potential_energy": _var(dims, scalars["energy"], "e^2/angstrom", "electrostatic energy"),
        "potential_device": _var(dims, device, "1", "device or array backend of the potential build"),
        "potential_file": _var(dims, files, "1", "potential file read (empty where no run)"),
        "potential_ranks": _var(dims + ("mode",), ranks, "1", "Tucker ranks of the long-range coefficient tensor"),
        "potential_degree": _var(dims + ("mode",), degree, "1", "Chebyshev nodes per axis m"),
        "potential_time": _var(dims + ("step",), times, "s", "wall-clock time of a potential build step"),
        "potential_dielectric": _var(dims, scalars["dielectric"], "1", "relative permittivity of the uniform medium"),
        "potential_ionic_strength": _var(dims, scalars["ionic_strength"], "mol/L", "ionic strength of the medium"),
        "potential_kappa": _var(
            dims, scalars["kappa"], "1/angstrom", "inverse Debye screening length kappa (0 without salt)"
        ),
        "potential_debye_length": _var(
            dims, scalars["debye_length"], "angstrom", "Debye screening length 1/kappa (inf without salt)"
        ),
        "potential_temperature": _var(
            dims, scalars["temperature"], "K", "temperature of the medium (Debye length and kT/e)"
        ),
        "potential_periodic": _var(
            dims, scalars["periodic"], "1", "1 where the potential is a periodic (Ewald, tin-foil) sum, 0 in free space"
        ),
        "potential_background": _var(
            dims, scalars["background_potential"], "e/angstrom",
            "uniform neutralising background term included in the potential of a net-charged periodic cell",
        ),
        "potential_cell": _var(
            dims + ("cell_axis", "xyz"), cell, "angstrom",
            "periodic cell vectors a, b, c (rows of the cell matrix) of the potential (NaN in free space)",
        ),
    }
    coords = {
        "potential_tolerance": ("potential_tolerance", np.array(tolerances, dtype=np.float64)),
        "mode": ("mode", np.arange(3, dtype=np.int64)),
        "step": ("step", text_array(steps)),
        "cell_axis": ("cell_axis", text_array(CELL_AXES)),
        "xyz": ("xyz", text_array(XYZ)),
    }
    return variables, coords


def benchmark_variables(records: list[BenchmarkRecord], ids: list[str]) -> tuple[dict[str, tuple], dict[str, tuple]]:
    """``stage_*`` over ``(structure, stage)`` for targets in ``ids``, ``job_*`` over ``(job,)`` for the rest."""
    per_structure = [r for r in records if r.target in ids]
    jobs = [r for r in records if r.target not in ids]
    variables, coords = {}, {}
    if per_structure:
        stages = sorted({r.rule for r in per_structure})
        wall = np.full((len(ids), len(stages)), np.nan)
        rss = np.full((len(ids), len(stages)), np.nan)
        for r in per_structure:
            wall[ids.index(r.target), stages.index(r.rule)] = r.wall_s
            rss[ids.index(r.target), stages.index(r.rule)] = r.max_rss_mib
        dims = ("structure", "stage")
        variables["stage_wall_time"] = _var(dims, wall, "s", "wall-clock time of the stage (Snakemake benchmark s)")
        variables["stage_max_rss"] = _var(
            dims, rss, "MiB", "peak resident memory of the stage (Snakemake benchmark max_rss)"
        )
        coords["stage"] = ("stage", text_array(stages))
    if jobs:
        dims = ("job",)
        variables["job_wall_time"] = _var(dims, np.array([r.wall_s for r in jobs]), "s", "wall-clock time of the job")
        rss = np.array([r.max_rss_mib for r in jobs])
        variables["job_max_rss"] = _var(dims, rss, "MiB", "peak resident memory of the job")
        coords["job"] = ("job", text_array([f"{r.rule}/{r.target}" if r.rule else r.target for r in jobs]))
    return variables, coords


def descriptor_variables(
    records: list[DescriptorSummary], ids: list[str], methods: list[str]
) -> dict[str, tuple]:
    """Variables over ``(structure, method)`` and ``(structure,)``; ``methods`` is the report's method axis.

    Raises
    ------
    ValueError
        When a descriptor file belongs to no structure in ``ids`` or two describe the same one.
    """
    for record in records:
        if record.structure_id not in ids:
            raise ValueError(
                f"{record.path}: descriptors of structure {record.structure_id!r}, which is not among the "
                f"structure records given (known: {', '.join(ids)})"
            )
    check_unique(records, "structure_id", "descriptor")
    error = np.full((len(ids), len(methods)), np.nan)
    per_method = {name: np.full((len(ids), len(methods)), np.nan) for name in DESCRIPTOR_PER_METHOD_ATTRS}
    scalars = {name: np.full(len(ids), np.nan) for name in DESCRIPTOR_SCALAR_ATTRS}
    for record in records:
        row = ids.index(record.structure_id)
        columns = [methods.index(method) for method in record.methods]
        error[row, columns] = record.equivariance_error
        for name, values in record.per_method.items():
            per_method[name][row, columns] = values
        for name, value in record.scalars.items():
            scalars[name][row] = value
    variables = {
        "descriptor_equivariance_error": _var(
            ("structure", "method"), error, records[0].error_units,
            "equivariance error of the descriptor products under a random rotation",
        ),
    }
    for name, (report_name, units, long_name) in DESCRIPTOR_PER_METHOD_ATTRS.items():
        variables[report_name] = _var(("structure", "method"), per_method[name], units, long_name)
    for name, (report_name, units, long_name) in DESCRIPTOR_SCALAR_ATTRS.items():
        variables[report_name] = _var(("structure",), scalars[name], units, long_name)
    return variables


def tensor_product_variables(tp: xr.Dataset, path: str, methods: list[str]) -> tuple[dict[str, tuple], dict[str, tuple]]:
    """The file's data variables as ``tp_<name>``, reindexed onto ``methods``, with its coordinates.

    Coordinates and variables keep their attributes; missing ``units``/``long_name`` are filled
    from :data:`COORDINATE_ATTRS` and :data:`TP_VARIABLE_ATTRS` (``"unknown"`` units, with a
    warning, for an unlisted variable). Dimensions without a coordinate get an integer index.
    """
    clash = [dim for dim in tp.dims if dim in RESERVED_DIMS]
    if clash:
        raise ValueError(f"{path}: tensor-product dimension(s) {', '.join(clash)} clash with report coordinates")
    if list(tp["method"].values) != methods:
        tp = tp.reindex({"method": methods})  # dict form: `method` is also a keyword of reindex
    coords = {}
    for dim in tp.dims:
        if dim in tp.coords:
            values, attrs = tp[dim].values, dict(tp[dim].attrs)
        else:
            values, attrs = np.arange(tp.sizes[dim], dtype=np.int64), {}
        if values.dtype.kind in "OUS":
            values = text_array(values)
        units, long_name = COORDINATE_ATTRS.get(dim, ("1", f"tensor-product {dim}"))
        attrs.setdefault("units", units)
        attrs.setdefault("long_name", long_name)
        coords[dim] = (dim, values, attrs)
    for name, coord in tp.coords.items():
        if name not in tp.dims:
            coords[f"tp_{name}"] = (coord.dims, coord.values, {"units": "1", "long_name": str(name), **coord.attrs})
    variables = {}
    for name, variable in tp.data_vars.items():
        attrs = dict(variable.attrs)
        units, long_name = TP_VARIABLE_ATTRS.get(str(name), (None, str(name).replace("_", " ")))
        if "units" not in attrs:
            if units is None:
                log.warning("%s: variable %r has no units; stored as 'unknown'", path, name)
            attrs["units"] = units or "unknown"
        attrs.setdefault("long_name", f"tensor products: {long_name}")
        variables[f"tp_{name}"] = (variable.dims, variable.values, attrs)
    return variables, coords


