"""The normalised structure record every stage reads: one xarray Dataset per structure.

Variables (dimension ``atom``, plus ``xyz`` for positions):

============  ==============  =====  ==========================================
name          dims            units  meaning
============  ==============  =====  ==========================================
positions     (atom, xyz)     Å      Cartesian coordinates, float64
charge        (atom,)         e      partial charge, float64
radius        (atom,)         Å      atomic radius (NaN where the source has none)
element       (atom,)         1      element symbol ("" when unknown)
atom_name     (atom,)         1      atom name from the file
residue_name  (atom,)         1      residue name
residue_id    (atom,)         1      residue number, int64
insertion_code (atom,)        1      PDB insertion code of the residue ("" when none)
chain_id      (atom,)         1      chain or segment identifier
============  ==============  =====  ==========================================

Global attributes: ``structure_id``, ``source`` (path or ``mdanalysistests:NAME`` or
``lattice``), ``format``, ``charge_source`` (``"file"``, ``"forcefield:AMBER"``,
``"lattice"``...), ``net_charge`` (e), ``n_atoms``, ``bounding_box_min``/``max`` (Å),
``box`` (periodic cell lengths and angles, Å/degrees, or empty), ``dropped`` (JSON list of
what the ingest left out and why), plus the provenance of :func:`pipeline.storage.provenance_attrs`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.storage import provenance_attrs, read_netcdf, read_variables

if TYPE_CHECKING:
    import xarray as xr


@dataclass
class Structure:
    """A structure in memory: arrays of length ``n_atoms`` and free-form metadata.

    Attributes
    ----------
    positions : (n_atoms, 3) float64, Å
    charges : (n_atoms,) float64, e
    radii : (n_atoms,) float64, Å (NaN where unknown)
    elements, atom_names, residue_names, chain_ids : (n_atoms,) str
    residue_ids : (n_atoms,) int64
    insertion_codes : (n_atoms,) str, optional
        PDB insertion codes ("" or None when the source has none).
    attrs : dict
        ``structure_id``, ``source``, ``format``, ``charge_source``, ``dropped``, ``box``...
    """

    positions: np.ndarray
    charges: np.ndarray
    radii: np.ndarray | None = None
    elements: np.ndarray | None = None
    atom_names: np.ndarray | None = None
    residue_names: np.ndarray | None = None
    residue_ids: np.ndarray | None = None
    chain_ids: np.ndarray | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    insertion_codes: np.ndarray | None = None

    @property
    def n_atoms(self) -> int:
        return int(self.positions.shape[0])


def _labels(values: np.ndarray | None, n_atoms: int) -> np.ndarray:
    if values is None:
        return np.full(n_atoms, "", dtype=object)
    return np.asarray(values).astype(str).astype(object)


def structure_to_dataset(structure: Structure) -> xr.Dataset:
    """Build the normalised record (see the module docstring) from a :class:`Structure`."""
    import xarray as xr

    n_atoms = structure.n_atoms
    positions = np.ascontiguousarray(structure.positions, dtype=np.float64)
    charges = np.asarray(structure.charges, dtype=np.float64)
    radii = np.full(n_atoms, np.nan) if structure.radii is None else np.asarray(structure.radii, dtype=np.float64)
    residue_ids = (
        np.zeros(n_atoms, dtype=np.int64) if structure.residue_ids is None else np.asarray(structure.residue_ids, dtype=np.int64)
    )
    data_vars = {
        "positions": (("atom", "xyz"), positions, {"units": "angstrom", "long_name": "atom position"}),
        "charge": (("atom",), charges, {"units": "e", "long_name": "partial charge"}),
        "radius": (("atom",), radii, {"units": "angstrom", "long_name": "atomic radius"}),
        "element": (("atom",), _labels(structure.elements, n_atoms), {"units": "1", "long_name": "element symbol"}),
        "atom_name": (("atom",), _labels(structure.atom_names, n_atoms), {"units": "1", "long_name": "atom name"}),
        "residue_name": (("atom",), _labels(structure.residue_names, n_atoms), {"units": "1", "long_name": "residue name"}),
        "residue_id": (("atom",), residue_ids, {"units": "1", "long_name": "residue number"}),
        "insertion_code": (
            ("atom",),
            _labels(structure.insertion_codes, n_atoms),
            {"units": "1", "long_name": "residue insertion code"},
        ),
        "chain_id": (("atom",), _labels(structure.chain_ids, n_atoms), {"units": "1", "long_name": "chain or segment identifier"}),
    }
    coords = {
        "atom": ("atom", np.arange(n_atoms, dtype=np.int64), {"units": "1", "long_name": "atom index"}),
        "xyz": ("xyz", np.array(["x", "y", "z"], dtype=object), {"units": "1", "long_name": "Cartesian axis"}),
    }
    attrs = dict(structure.attrs)
    attrs.setdefault("dropped", [])
    attrs["dropped"] = json.dumps(attrs["dropped"])
    attrs.update(
        n_atoms=n_atoms,
        net_charge=float(charges.sum()),
        bounding_box_min=positions.min(axis=0).tolist() if n_atoms else [0.0, 0.0, 0.0],
        bounding_box_max=positions.max(axis=0).tolist() if n_atoms else [0.0, 0.0, 0.0],
    )
    dataset = xr.Dataset(data_vars, coords=coords)
    for name in ("element", "atom_name", "residue_name", "insertion_code", "chain_id"):
        # fixed-width compressed char arrays: for 10^6 atoms ~1 MB and 2 s to write instead of
        # ~200 MB and 5 s as variable-length strings; read back as str all the same
        dataset[name].encoding.update(dtype="S1", zlib=True, complevel=4)
    dataset.attrs = provenance_attrs(**attrs)
    return dataset


def load_structure(path: str | os.PathLike, *, annotations: bool = True) -> Structure:
    """Read a structure record written by the ingest stage.

    ``attrs["box"]`` comes back as a list of 6 floats (Å, degrees), or ``[]`` without a box.
    With ``annotations=False`` only positions, charges and the attributes are read (the
    per-atom names, elements and residues stay None): the potential stages need no more, and
    decoding the text columns costs seconds at 10⁷ atoms.

    Raises
    ------
    ValueError
        When the file lacks the ``positions`` or ``charge`` variables.
    """
    if annotations:
        dataset = read_netcdf(path)
        values, attrs = {name: dataset[name].values for name in dataset.variables}, dict(dataset.attrs)
    else:  # netCDF4 alone: the potential stages start without importing xarray
        values, attrs = read_variables(path, ("positions", "charge"))
    missing = [name for name in ("positions", "charge") if name not in values]
    if missing:
        raise ValueError(f"{path}: not a structure record, missing variable(s) {', '.join(missing)}")
    get = values.get
    if isinstance(attrs.get("dropped"), str):
        attrs["dropped"] = json.loads(attrs["dropped"])
    if "box" in attrs:
        # netCDF keeps an empty list as the JSON text "[]" and six numbers as an array
        box = json.loads(attrs["box"]) if isinstance(attrs["box"], str) else np.atleast_1d(attrs["box"]).tolist()
        attrs["box"] = [float(v) for v in box]
    return Structure(
        positions=np.asarray(values["positions"], dtype=np.float64),
        charges=np.asarray(values["charge"], dtype=np.float64),
        radii=get("radius"),
        elements=get("element"),
        atom_names=get("atom_name"),
        residue_names=get("residue_name"),
        residue_ids=get("residue_id"),
        chain_ids=get("chain_id"),
        attrs=attrs,
        insertion_codes=get("insertion_code"),
    )
