"""The netCDF layout of the ``evaluate`` stage: values at points, or maps on a regular grid."""

from __future__ import annotations

import numpy as np
import xarray as xr

#: Components of the field's last axis.
COMPONENTS = ["x", "y", "z"]


def field_unit(unit: str) -> str:
    """Unit of the field −∇Φ for a potential in ``unit`` (one of the potential units)."""
    return "e/angstrom^2" if unit == "e/A" else f"{unit}/angstrom"


def points_dataset(points, potential, field, *, unit: str, attrs: dict) -> xr.Dataset:
    """Dataset of values at scattered points.

    Parameters
    ----------
    points : (n, 3) float64, Å
    potential : (n,) float64, in ``unit``
    field : (n, 3) float64 in ``unit``/Å, or None
    unit : str
    attrs : dict
        Global attributes (provenance, settings).
    """
    data = {
        "points": (("point", "xyz"), np.asarray(points), {"units": "angstrom", "long_name": "evaluation point"}),
        "potential": (("point",), np.asarray(potential), {"units": unit, "long_name": "electrostatic potential"}),
    }
    if field is not None:
        data["field"] = (("point", "xyz"), np.asarray(field),
                         {"units": field_unit(unit), "long_name": "electric field -grad phi"})
    return xr.Dataset(data, coords=_component_coord(), attrs=attrs)


def map_dataset(axes, potential, field, *, unit: str, attrs: dict) -> xr.Dataset:
    """Dataset of a map on the tensor grid ``axes`` (three 1-D arrays, Å).

    Parameters
    ----------
    axes : three (n_k,) float64 arrays, Å
    potential : (nx, ny, nz) float64, in ``unit``
    field : (nx, ny, nz, 3) float64 in ``unit``/Å, or None
    unit : str
    attrs : dict
    """
    coords = {name: (name, np.asarray(a), {"units": "angstrom", "long_name": f"{name} coordinate"})
              for name, a in zip("xyz", axes)}
    data = {"potential": (("x", "y", "z"), potential, {"units": unit, "long_name": "electrostatic potential on the grid"})}
    if field is not None:
        coords.update(_component_coord())
        data["field"] = (("x", "y", "z", "xyz"), field,
                         {"units": field_unit(unit), "long_name": "electric field -grad phi on the grid"})
    return xr.Dataset(data, coords=coords, attrs=attrs)


def _component_coord() -> dict:
    return {"xyz": ("xyz", COMPONENTS, {"units": "1", "long_name": "Cartesian component"})}
