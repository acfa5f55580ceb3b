"""A potential as the variables of its file (the P.nc of ``python -m pipeline potential``), as an xarray Dataset, and back.

Variables: ``core (rank_x, rank_y, rank_z)``, ``factor_x (cheb_x, rank_x)`` (and y, z), the atoms
(``positions (atom, xyz)``, ``charge (atom)``) needed for the short range, the per-atom
``potential``, ``potential_short``, ``potential_long`` (self excluded, e/Å), scalar ``energy``
(e²/Å) and ``energy_kcal_per_mol``. Attributes: box (``box_lo``/``box_hi`` Å), ``alpha`` and
``cutoff`` of the split the per-atom values were computed with, ``stored_alpha``,
``stored_cutoff`` and ``split_params`` of the stored Tucker form (smaller than ``alpha`` when the
build shrank it to fit ``max_storage_bytes``), tolerance, degree and ranks of the stored form,
``storage_bytes``, self-check errors, ``tolerance_exceeded``, per-step timings ``time_<step>_s``,
the structure's own ``structure_id``/``source`` and provenance. Medium and boundary:
``dielectric`` (ε_r), ``kappa_per_A`` and ``debye_length_A`` (inf without salt), ``periodic``
(0/1), ``cell`` (9 values, rows of the cell matrix, Å) and ``background_potential_e_per_A``
(the uniform neutralising background −πQ/(Vα²) included in a net-charged periodic Coulomb
potential at the build's α; 0 otherwise).
"""

from __future__ import annotations

import json
import os

from typing import TYPE_CHECKING

import numpy as np

from pipeline.backend import backend_name, to_host
from pipeline.electrostatics.potential import ChebyshevTuckerPotential
from pipeline.electrostatics.splitting import split_from_params
from pipeline.storage import Variable, provenance_attrs, read_variables
from pipeline.units import COULOMB_KCAL_PER_MOL_A_PER_E2

if TYPE_CHECKING:
    import xarray as xr

AXES = ("x", "y", "z")
#: Structure attributes carried over into the potential file.
CARRIED_ATTRS = ("structure_id", "source", "format", "charge_source")


def potential_to_dataset(potential: ChebyshevTuckerPotential, *, total, short, long, timings: dict,
                         selfcheck: dict, structure_attrs: dict | None = None) -> xr.Dataset:
    """Dataset holding the representation, per-atom values, energy, parameters and timings.

    The variables and attributes of :func:`potential_file_variables` (same arguments).
    """
    import xarray as xr

    variables, attrs = potential_file_variables(potential, total=total, short=short, long=long, timings=timings,
                                                selfcheck=selfcheck, structure_attrs=structure_attrs)
    return xr.Dataset(variables, attrs=attrs)


def potential_file_variables(potential: ChebyshevTuckerPotential, *, total, short, long, timings: dict, selfcheck: dict,
                             structure_attrs: dict | None = None) -> tuple[dict[str, Variable], dict]:
    """The potential file's variables (name → (dims, NumPy values, attrs)) and global attributes.

    Parameters
    ----------
    potential : ChebyshevTuckerPotential
    total, short, long : (n_atoms,) e/Å
        Per-atom potential and its short- and long-range parts (self excluded), any backend.
    timings : dict
        Seconds per step, stored as ``time_<step>_s``.
    selfcheck : dict
        Self-check attributes (:func:`~pipeline.electrostatics.selfcheck.self_check`).
    structure_attrs : dict, optional
        The structure record's attributes; :data:`CARRIED_ATTRS` are carried over.
    """
    total, short, long = (to_host(a) for a in (total, short, long))
    charges = to_host(potential.charges)
    kappa = float(getattr(potential.split, "kappa", 0.0))
    energy = 0.5 * float(np.dot(charges, total))
    data = {
        "core": (("rank_x", "rank_y", "rank_z"), to_host(potential.core),
                 {"units": "e/angstrom", "long_name": "Tucker core of the long-range Chebyshev coefficients"}),
        "positions": (("atom", "xyz"), to_host(potential.positions), {"units": "angstrom", "long_name": "atom position"}),
        "charge": (("atom",), charges, {"units": "e", "long_name": "partial charge"}),
        "potential": (("atom",), total, {"units": "e/angstrom", "long_name": "total electrostatic potential at the atom (self excluded)"}),
        "potential_short": (("atom",), short, {"units": "e/angstrom", "long_name": "short-range part of the potential at the atom"}),
        "potential_long": (("atom",), long, {"units": "e/angstrom", "long_name": "long-range part of the potential at the atom (self term removed)"}),
        "energy": ((), energy, {"units": "e^2/angstrom", "long_name": "electrostatic energy 1/2 sum q_j phi(x_j)"}),
        "energy_kcal_per_mol": ((), energy * COULOMB_KCAL_PER_MOL_A_PER_E2,
                                {"units": "kcal/mol",
                                 "long_name": "electrostatic energy in the medium (Coulomb constant 332.0637 / dielectric)"}),
    }
    for axis, factor in zip(AXES, potential.factors):
        data[f"factor_{axis}"] = ((f"cheb_{axis}", f"rank_{axis}"), to_host(factor),
                                  {"units": "1", "long_name": f"Tucker factor along {axis}: Chebyshev coefficients (low to high) per column"})
    data["xyz"] = (("xyz",), np.array(AXES, dtype=object), {"units": "1", "long_name": "Cartesian axis"})
    attrs = {key: (structure_attrs or {})[key] for key in CARRIED_ATTRS if key in (structure_attrs or {})}
    params = dict(potential.params)
    attrs.update(
        box_lo=list(potential.box_lo), box_hi=list(potential.box_hi),
        split=potential.split.name, alpha=float(params["alpha"]), cutoff=float(params["cutoff"]),
        stored_alpha=float(potential.split.t_max), stored_cutoff=float(potential.cutoff),
        max_storage_bytes=int(params.get("max_storage_bytes", 0)),
        tolerance=float(params["tolerance"]), degree=list(potential.degree), ranks=list(potential.ranks),
        storage_bytes=int(potential.storage_bytes), n_atoms=int(charges.size),
        split_params=json.dumps(potential.split.params()), build_params=json.dumps(params),
        backend=backend_name(potential.xp), dtype="float64",
        energy_e2_per_A=energy, energy_kcal_per_mol=energy * COULOMB_KCAL_PER_MOL_A_PER_E2,
        selfcheck_error_normalisation="errors divided by max |phi_ref| over the checked sample",
        dielectric=float(potential.dielectric), kappa_per_A=kappa,
        debye_length_A=(1.0 / kappa) if kappa > 0 else float("inf"),
        periodic=int(potential.periodic), temperature_K=float(potential.temperature),
        cell=[] if potential.cell is None else [float(v) for row in potential.cell for v in row],
        background_potential_e_per_A=_background(potential),
    )
    attrs.update(selfcheck)
    attrs.update({f"time_{key}_s": float(value) for key, value in timings.items()})
    return data, provenance_attrs(**attrs)


#: Variables a potential file must hold to rebuild the potential.
POTENTIAL_VARIABLES = ("core", "factor_x", "factor_y", "factor_z", "positions", "charge")


def potential_from_dataset(ds: xr.Dataset, *, xp=np, source: str = "dataset") -> ChebyshevTuckerPotential:
    """Rebuild the potential object (arrays on ``xp``) from :func:`potential_to_dataset` output."""
    values = {name: ds[name].values for name in POTENTIAL_VARIABLES if name in ds}
    return potential_from_variables(values, ds.attrs, xp=xp, source=source)


def potential_from_variables(values: dict, attrs: dict, *, xp=np, source: str = "dataset") -> ChebyshevTuckerPotential:
    """Rebuild the potential object (arrays on ``xp``) from a potential file's arrays and attributes.

    Parameters
    ----------
    values : dict
        At least :data:`POTENTIAL_VARIABLES` (NumPy arrays, e.g. from
        :func:`pipeline.storage.read_variables`).
    attrs : dict
        The file's global attributes.
    xp : module
        Array backend of the result (NumPy or CuPy).
    source : str
        Named in errors.

    Raises
    ------
    ValueError
        When a variable or attribute of a potential file is missing (naming ``source``).
    """
    missing = [n for n in POTENTIAL_VARIABLES if n not in values]
    if missing:
        raise ValueError(f"{source}: not a potential file, missing variable(s) {', '.join(missing)}")
    for key in ("box_lo", "box_hi", "split_params", "cutoff", "build_params"):
        if key not in attrs:
            raise ValueError(f"{source}: not a potential file, missing attribute {key!r}")
    params = json.loads(attrs["build_params"])
    cell = np.atleast_1d(attrs.get("cell", []))
    return ChebyshevTuckerPotential(
        box_lo=tuple(float(v) for v in np.atleast_1d(attrs["box_lo"])),
        box_hi=tuple(float(v) for v in np.atleast_1d(attrs["box_hi"])),
        core=xp.asarray(values["core"], dtype=xp.float64),
        factors=[xp.asarray(values[f"factor_{a}"], dtype=xp.float64) for a in AXES],
        split=split_from_params(json.loads(attrs["split_params"])),
        cutoff=float(attrs.get("stored_cutoff", attrs["cutoff"])),
        positions=xp.asarray(values["positions"], dtype=xp.float64),
        charges=xp.asarray(values["charge"], dtype=xp.float64),
        params=params,
        dielectric=float(attrs.get("dielectric", 1.0)),
        temperature=float(attrs.get("temperature_K", 298.15)),
        cell=tuple(tuple(float(v) for v in row) for row in np.reshape(cell, (3, 3))) if cell.size == 9 else None,
    )


def _background(potential: ChebyshevTuckerPotential) -> float:
    """The background term included in a periodic potential of the atoms' split (0 otherwise), e/Å."""
    if not potential.periodic:
        return 0.0
    from pipeline.electrostatics.periodic import background_potential

    split = potential.split if potential.atom_long is None else potential.atom_long.split
    return background_potential(float(to_host(potential.sources).sum()), potential.cell, split)


def load_potential(path: str | os.PathLike, *, device: str = "cpu") -> ChebyshevTuckerPotential:
    """Read a potential file written by ``python -m pipeline potential``.

    Parameters
    ----------
    path : path-like
    device : {"cpu", "cuda", "auto"}
    """
    from pipeline.backend import xp_for_device

    values, attrs = read_variables(path, POTENTIAL_VARIABLES)
    return potential_from_variables(values, attrs, xp=xp_for_device(device), source=str(path))

