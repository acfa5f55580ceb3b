"""Read the stage outputs a report aggregates into plain records, checking what the report needs.

Each reader opens one netCDF file written by a stage and returns a frozen record. Essential
content (listed per reader) missing from a file raises :class:`ValueError` naming the file and
the variable or attribute; optional scalars that are absent become NaN (numbers) or ``""``
(text). A scalar is looked up first among the global attributes, then among the 0-d data
variables, under each of its accepted names in turn (for example ``alpha`` or ``ewald_alpha``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from pipeline.storage import read_netcdf

log = logging.getLogger(__name__)

#: Accepted names of the optional scalars of a potential file, first match wins. Errors are the
#: self-check against direct summation at the atoms (and at random points in the box).
POTENTIAL_SCALARS: dict[str, tuple[str, ...]] = {
    "alpha": ("alpha", "ewald_alpha", "split_alpha"),
    "stored_alpha": ("stored_alpha",),
    "cutoff": ("cutoff", "cutoff_A", "r_cut"),
    "storage_bytes": ("storage_bytes", "storage", "tucker_storage_bytes"),
    "energy": ("energy", "energy_e2_per_A", "electrostatic_energy"),
    "max_rel_error": ("self_check_max_rel_error", "max_rel_error_atoms", "max_rel_error"),
    "rms_rel_error": ("self_check_rms_rel_error", "rms_rel_error_atoms", "rms_rel_error"),
    "max_rel_error_points": ("self_check_max_rel_error_points", "max_rel_error_points"),
    "rms_rel_error_points": ("self_check_rms_rel_error_points", "rms_rel_error_points"),
    "self_check_atoms": ("self_check_atoms", "selfcheck_atoms"),
    "self_check_points": ("self_check_points", "selfcheck_points"),
    "tolerance_exceeded": ("tolerance_exceeded",),
    # solvent model and boundary conditions (dielectric 1, kappa 1/Å, lengths Å, mol/L, K, e/Å)
    "dielectric": ("dielectric",),
    "ionic_strength": ("ionic_strength_M",),
    "kappa": ("kappa_per_A",),
    "debye_length": ("debye_length_A",),
    "temperature": ("temperature_K",),
    "periodic": ("periodic",),
    "background_potential": ("background_potential_e_per_A",),
}
#: Values of the solvent and boundary scalars in potential files written before those settings
#: existed: vacuum (ε_r 1, no salt), free space (not periodic, no background term), and the
#: temperature their kT/e conversion assumed, 298.15 K (as the potential reader does).
POTENTIAL_DEFAULTS: dict[str, float] = {
    "dielectric": 1.0, "ionic_strength": 0.0, "kappa": 0.0, "debye_length": math.inf, "temperature": 298.15,
    "periodic": 0.0, "background_potential": 0.0,
}
#: Accepted names of the requested tolerance (essential), the Tucker ranks and the Chebyshev
#: nodes per axis (3 values, or 1 value for all axes) of a potential file.
TOLERANCE_NAMES = ("tolerance", "target_tolerance", "rel_tolerance")
RANKS_NAMES = ("ranks", "tucker_ranks", "rank")
DEGREE_NAMES = ("degree", "m", "chebyshev_degree", "n_nodes")
#: Optional scalars of a descriptor file (relative errors, and the stage's total seconds).
DESCRIPTOR_SCALARS = (
    "fourier_grid_difference", "gaunt_cg_difference", "equivariance_error_density",
    "equivariance_error_potential", "potential_projection_error", "time_total_s",
)
#: Optional per-method variables of a descriptor file (relative difference; seconds).
DESCRIPTOR_PER_METHOD = ("gaunt_cg_difference_by_method", "time_product_s")
#: Timing attributes ``time_<step>_s`` (seconds) of potential and descriptor files.
TIME_PATTERN = re.compile(r"^time_(.+)_s$")


@dataclass(frozen=True)
class StructureSummary:
    """What the report keeps of a structure record (``charge`` and ``positions`` are essential)."""

    structure_id: str
    n_atoms: int
    net_charge_e: float
    charge_source: str
    format: str
    source: str
    n_dropped: int
    path: str
    box: tuple[float, ...] = (math.nan,) * 6


@dataclass(frozen=True)
class PotentialSummary:
    """What the report keeps of a potential file (``potential`` and the tolerance are essential).

    ``ranks`` and ``degree`` hold 3 values, one per Tucker mode (NaN when absent); ``times_s``
    maps step names from ``time_<step>_s`` attributes to seconds, with ``total`` the sum of the
    steps when the file records no total; the other numbers follow :data:`POTENTIAL_SCALARS`
    (alpha 1/Å, cutoff Å, storage bytes, energy e²/Å, errors relative, sample sizes, solvent
    and boundary scalars with :data:`POTENTIAL_DEFAULTS` where absent). ``cell`` holds the 9
    entries of the periodic cell matrix (rows a, b, c; Å), NaN in free space.
    """

    structure_id: str
    n_atoms: int
    tolerance: float
    scalars: dict[str, float]
    ranks: tuple[float, float, float]
    degree: tuple[float, float, float]
    device: str
    times_s: dict[str, float]
    path: str
    cell: tuple[float, ...] = (math.nan,) * 9


@dataclass(frozen=True)
class DescriptorSummary:
    """What the report keeps of a descriptor file (``equivariance_error`` over ``method`` is essential).

    ``scalars`` holds :data:`DESCRIPTOR_SCALARS` (NaN when absent), ``per_method`` the
    :data:`DESCRIPTOR_PER_METHOD` variables the file has, one value per entry of ``methods``.
    """

    structure_id: str
    methods: tuple[str, ...]
    equivariance_error: tuple[float, ...]
    error_units: str
    scalars: dict[str, float]
    per_method: dict[str, tuple[float, ...]]
    path: str


def _lookup(dataset: xr.Dataset, names: tuple[str, ...]) -> Any:
    """First of ``names`` found as a global attribute or a 0-d data variable, else None."""
    for name in names:
        if name in dataset.attrs:
            return dataset.attrs[name]
        if name in dataset.data_vars and dataset[name].ndim == 0:
            return dataset[name].values.item()
    return None


def _float(value: Any, path: Path, name: str) -> float:
    if value is None:
        return math.nan
    try:
        return float(np.asarray(value, dtype=np.float64).reshape(()))
    except (TypeError, ValueError):
        raise ValueError(f"{path}: {name!r} must be a number, got {value!r}") from None


def _per_mode(dataset: xr.Dataset, names: tuple[str, ...], path: Path, *, broadcast: bool) -> tuple[float, ...]:
    """3 numbers, one per Tucker mode, stored as an attribute or a 1-d variable; NaN when absent."""
    value = _lookup(dataset, names)
    if value is None:
        value = next((dataset[n].values for n in names if n in dataset.data_vars and dataset[n].ndim == 1), None)
    if value is None:
        return (math.nan, math.nan, math.nan)
    if isinstance(value, str):
        value = json.loads(value)
    array = np.atleast_1d(np.asarray(value, dtype=np.float64))
    if broadcast and array.shape == (1,):
        array = np.repeat(array, 3)
    if array.shape != (3,):
        expected = "1 or 3 numbers" if broadcast else "3 numbers"
        raise ValueError(f"{path}: {names[0]!r} must hold {expected} (one per axis), got {value!r}")
    return tuple(float(v) for v in array)


def _numbers(dataset: xr.Dataset, name: str, sizes: tuple[int, ...], path: Path) -> tuple[float, ...]:
    """Attribute ``name`` as ``max(sizes)`` floats (NaN where absent or empty); other sizes are an error.

    An empty list is stored as the JSON text ``"[]"`` (netCDF has no empty attributes).
    """
    value = dataset.attrs.get(name)
    try:
        if isinstance(value, str):
            value = json.loads(value)
        array = np.atleast_1d(np.asarray([] if value is None else value, dtype=np.float64)).ravel()
    except (TypeError, ValueError):
        raise ValueError(f"{path}: attribute {name!r} must be a list of numbers, got {value!r}") from None
    if array.size == 0:
        return (math.nan,) * max(sizes)
    if array.size not in sizes:
        expected = " or ".join(str(n) for n in (0, *sizes))
        raise ValueError(f"{path}: attribute {name!r} must hold {expected} numbers, got {array.size}")
    return tuple(float(v) for v in array)


def _require_variables(dataset: xr.Dataset, names: tuple[str, ...], path: Path, kind: str) -> None:
    missing = [name for name in names if name not in dataset.variables]
    if missing:
        have = ", ".join(sorted(map(str, dataset.data_vars))) or "none"
        raise ValueError(
            f"{path}: {kind} file lacks essential variable(s) {', '.join(repr(m) for m in missing)} "
            f"(data variables present: {have})"
        )


def _identifier(dataset: xr.Dataset, path: Path) -> str:
    value = dataset.attrs.get("structure_id")
    return str(value) if value not in (None, "") else path.stem


def read_structure_summary(path: str | os.PathLike) -> StructureSummary:
    """Atom count, net charge and labels of a structure record ``results/structures/{id}.nc``.

    The atom count is the length of ``charge``; a stored ``n_atoms`` attribute that disagrees
    with it is an error. The net charge is recomputed as the sum of ``charge`` (e). The
    attribute ``box`` (a, b, c in Å, α, β, γ in degrees) is optional (NaN without a box).
    """
    path = Path(path)
    dataset = read_netcdf(path)
    _require_variables(dataset, ("positions", "charge"), path, "structure")
    charge = np.asarray(dataset["charge"].values, dtype=np.float64)
    n_atoms = int(charge.size)
    stored = dataset.attrs.get("n_atoms")
    if stored is not None and int(stored) != n_atoms:
        raise ValueError(f"{path}: attribute n_atoms={int(stored)} but variable 'charge' has {n_atoms} values")
    dropped = dataset.attrs.get("dropped", "[]")
    try:
        dropped = json.loads(dropped) if isinstance(dropped, str) else dropped
    except json.JSONDecodeError:
        dropped = [dropped]
    return StructureSummary(
        structure_id=_identifier(dataset, path),
        n_atoms=n_atoms,
        net_charge_e=float(charge.sum()),
        charge_source=str(dataset.attrs.get("charge_source", "")),
        format=str(dataset.attrs.get("format", "")),
        source=str(dataset.attrs.get("source", "")),
        n_dropped=len(dropped) if isinstance(dropped, (list, tuple)) else 0,
        path=str(path),
        box=_numbers(dataset, "box", (6,), path),
    )


def read_potential_summary(path: str | os.PathLike) -> PotentialSummary:
    """Accuracy, ranks, storage and timings of a potential file ``results/potential/{id}.nc``.

    Essential: the variable ``potential`` (one value per atom) and the requested tolerance
    (attribute ``tolerance``). Ranks, when present, must be 3 numbers; the degree 1 or 3; the
    periodic cell ``cell`` 9 (none or an empty list in free space).
    """
    path = Path(path)
    dataset = read_netcdf(path)
    _require_variables(dataset, ("potential",), path, "potential")
    tolerance = _lookup(dataset, TOLERANCE_NAMES)
    if tolerance is None:
        raise ValueError(f"{path}: potential file lacks essential attribute 'tolerance' (requested relative accuracy)")
    tolerance = _float(tolerance, path, "tolerance")
    scalars = {key: _float(_lookup(dataset, names), path, names[0]) for key, names in POTENTIAL_SCALARS.items()}
    for key, value in POTENTIAL_DEFAULTS.items():
        if _lookup(dataset, POTENTIAL_SCALARS[key]) is None:
            scalars[key] = value
    ranks = _per_mode(dataset, RANKS_NAMES, path, broadcast=False)
    degree = _per_mode(dataset, DEGREE_NAMES, path, broadcast=True)
    times = {}
    for name, value in dataset.attrs.items():
        match = TIME_PATTERN.match(name)
        if match:
            times[match.group(1)] = _float(value, path, name)
    if times and "total" not in times:
        times["total"] = float(sum(times.values()))
    device = dataset.attrs.get("device", dataset.attrs.get("backend", ""))
    return PotentialSummary(
        structure_id=_identifier(dataset, path),
        n_atoms=int(dataset["potential"].size),
        tolerance=tolerance,
        scalars=scalars,
        ranks=ranks,
        degree=degree,
        device=str(device),
        times_s=times,
        path=str(path),
        cell=_numbers(dataset, "cell", (9,), path),
    )


def read_descriptor_summary(path: str | os.PathLike) -> DescriptorSummary:
    """Equivariance errors and method agreement of a descriptor file ``results/descriptors/{id}.nc``.

    Essential: the variable ``equivariance_error`` over the dimension ``method`` with method
    labels as coordinate. :data:`DESCRIPTOR_SCALARS` (variables or attributes) and
    :data:`DESCRIPTOR_PER_METHOD` (variables over ``method``) are optional.
    """
    path = Path(path)
    dataset = read_netcdf(path)
    _require_variables(dataset, ("equivariance_error",), path, "descriptor")
    error = dataset["equivariance_error"]
    if error.dims != ("method",):
        raise ValueError(f"{path}: 'equivariance_error' must have dimension ('method',), got {error.dims}")
    if "method" not in dataset.coords:
        raise ValueError(f"{path}: dimension 'method' of 'equivariance_error' has no coordinate with method names")
    return DescriptorSummary(
        structure_id=_identifier(dataset, path),
        methods=tuple(str(m) for m in dataset["method"].values),
        equivariance_error=tuple(float(e) for e in error.values),
        error_units=str(error.attrs.get("units", "1")),
        scalars={name: _float(_lookup(dataset, (name,)), path, name) for name in DESCRIPTOR_SCALARS},
        per_method={
            name: tuple(float(v) for v in dataset[name].values)
            for name in DESCRIPTOR_PER_METHOD
            if name in dataset.data_vars and dataset[name].dims == ("method",)
        },
        path=str(path),
    )


def read_tensor_products(path: str | os.PathLike) -> xr.Dataset:
    """The tensor-product study ``results/tensor_products.nc`` as stored.

    Essential: the dimensions ``method`` and ``lmax`` and at least one data variable.

    Returns
    -------
    xarray.Dataset
        The file's content, unchanged.
    """
    path = Path(path)
    dataset = read_netcdf(path)
    missing = [dim for dim in ("method", "lmax") if dim not in dataset.dims]
    if missing:
        raise ValueError(
            f"{path}: tensor-product file lacks essential dimension(s) {', '.join(repr(m) for m in missing)} "
            f"(dimensions present: {', '.join(map(str, dataset.dims)) or 'none'})"
        )
    if not dataset.data_vars:
        raise ValueError(f"{path}: tensor-product file has no data variables")
    return dataset
