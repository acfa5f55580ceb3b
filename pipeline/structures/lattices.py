"""Ionic crystal lattices generated directly as arrays: rock salt, CsCl, zinc blende, Evjen cubes.

Conventions (lattice constant ``a`` in Å, fractional coordinates of the conventional cubic
cell wrapped into [0, 1), cells indexed ``(i, j, k)`` in ``[0, n)³``, positions
``a · (cell + basis)``; the crystal fills ``[0, n a)³``; as a periodic supercell its box is
``n a`` along each axis):

===========  ==========================================  =============================  ======  ==============
type         cations (fractional)                        anions                         ions    nearest cation–anion
===========  ==========================================  =============================  ======  ==============
rocksalt     fcc: (0,0,0) (0,½,½) (½,0,½) (½,½,0)        fcc + (½,0,0)                  8 n³    a/2
cscl         (0,0,0)                                     (½,½,½)                        2 n³    a√3/2
zincblende   fcc                                         fcc + (¼,¼,¼)                  8 n³    a√3/4
===========  ==========================================  =============================  ======  ==============

Ions: Na⁺/Cl⁻ (rocksalt), Cs⁺/Cl⁻ (cscl), Zn²⁺/S²⁻ (zincblende), with charges ±1, ±1, ±2 e
unless ``ion_charge`` says otherwise. Radii are Shannon ionic radii (Acta Cryst. A32, 751
(1976)) for the coordination of the lattice: Na⁺ 1.02, Cl⁻ 1.81 (CN 6); Cs⁺ 1.74, Cl⁻ 1.81
(CN 8, Cl⁻ value of CN 6); Zn²⁺ 0.60, S²⁻ 1.84 (CN 4, S²⁻ value of CN 6) Å.
Ion order: all cations of cell 0, all anions of cell 0, then cell 1..., cells in C order.

**Periodic supercells** (``periodic=True``): the same ions with full charges ±z and the box
stored in ``attrs["box"]`` as ``[a, b, c, α, β, γ]`` (Å, degrees; MDAnalysis ``dimensions``
convention); without it the crystal is a finite block in vacuum and ``box`` is empty. The
*primitive* rock-salt cell (``cell="primitive"``) is the triclinic fcc cell of edge a/√2 and
angles 60°, 60°, 60° holding Na⁺ at fractional (0, 0, 0) and Cl⁻ at (½, ½, ½); n³ of them give
2 n³ ions. Its cell vectors are those of MDAnalysis for the box, rows
``v1 = (L, 0, 0)``, ``v2 = (L cos γ, L sin γ, 0)``,
``v3 = (L cos β, L (cos α − cos β cos γ)/sin γ, √(L² − v3x² − v3y²))``; positions are
``fractional @ [v1; v2; v3]`` with fractional coordinates in [0, 1).

**Evjen cube** (Evjen, Phys. Rev. 39, 675 (1932)): ions at ``(a/2)·(i, j, k)`` for integers
``i, j, k`` in ``[−n, n]`` around a centre cation at the origin, charge
``(−1)^(i+j+k) · w(i) w(j) w(k)`` with ``w = ½`` on the boundary (``|i| = n``) and 1 inside, so
face ions carry ½, edge ions ¼, corner ions ⅛ of their charge. The cube is exactly neutral
and its Madelung sum ``−Σ_{j≠0} q_j (a/2) / r_j`` converges quickly to the NaCl constant
1.747564594633... (n = 1: 3 − 3/√2 + 1/√3 = 1.45603). ``(2n + 1)³`` ions, no box.

**Evjen cubes of CsCl and zinc blende** (``evjen_cscl``, ``evjen_zincblende``): a cube of
half-width h centred on a cation at the origin, every lattice site with ``|x|, |y|, |z| ≤ h``
with the weight ``w(x) w(y) w(z)`` (``w = ½`` on a face plane, 1 inside), so again faces,
edges and corners carry ½, ¼, ⅛. ``n`` counts conventional cells from the centre to a face.
Terminations (which ions lie on the faces):

======================  ========================  ======================================
termination             CsCl (h in units of a)    zinc blende (h in units of a)
======================  ========================  ======================================
cation                  h = n (Cs on the faces)   h = n (Zn on the faces)
anion                   h = n + ½ (Cl faces)      ½ [cube(n − ¼) + cube(n + ¼)] (S faces)
mixed                   ½ cube(n) + ¼ cube(n − ½) ½ cube(n) + ¼ cube(n − ¼)
                        + ¼ cube(n + ½)           + ¼ cube(n + ¼)
======================  ========================  ======================================

``cube(h)`` is the weighted cube of half-width h; combinations add the charges of nested
cubes site by site. A single S-terminated zinc-blende cube carries ±1 e (the two halves
cancel), every entry of the table is exactly neutral. The centre ion's Madelung sum
``−Σ_{j≠0} q_j r0 / (z r_j)`` of a cation- or anion-terminated cube does **not** converge to
the bulk Madelung constant: each cube is built of repeat units with a non-zero second moment
``Σ q r²`` (for CsCl ±¾ z a², for zinc blende ±3/2 z a² per conventional cell), which shifts
the potential inside by the mean inner potential ``−(2π/3V) Σ q r²``, i.e. the sum tends to
M ± π√3/4 (CsCl, ±1.3603) and M ± π√3/8 (zinc blende, ±0.6802), + for cation faces. ``mixed``
cancels that shift and converges to M (measured: CsCl |ΔM| = 7.7e-6 at n = 8, 4.8e-7 at
n = 16, about n⁻⁴; zinc blende 2.4e-4 at n = 8, 6.1e-5 at n = 16, 2.7e-5 at n = 24, n⁻²).
Radii NaN, no box; ``attrs["centre_index"]`` is the centre cation.

**Vacancies** (periodic lattices only; Schottky pairs): ``k = round(f · n_cations)`` cations
and the same number ``k`` of anions are removed, each set drawn uniformly without replacement
from its sublattice with ``numpy.random.default_rng(seed)``. Since cation and anion charges
are opposite and equal in size, the crystal stays neutral.

**Impurities** (after vacancies): ``m = round(f · n_sites)`` sites of the chosen sublattice
(``"cation"``, ``"anion"`` or ``"any"``) drawn uniformly get charge ``impurity_charge`` (element
``X``, atom and residue name ``IMP``, radius NaN). The net charge changes by
``Σ (impurity_charge − host charge)`` over those sites and is not compensated.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from pipeline.structures.choices import CELLS, CRYSTAL_TYPES, EVJEN_TYPES, IMPURITY_SITES, LATTICE_TYPES, TERMINATIONS
from pipeline.structures.record import Structure

log = logging.getLogger(__name__)

#: Lattice types: cation basis, anion offset (fractional), elements, ion charge (e), radii (Å).
LATTICES = {
    "rocksalt": {
        "cations": ((0.0, 0.0, 0.0), (0.0, 0.5, 0.5), (0.5, 0.0, 0.5), (0.5, 0.5, 0.0)),
        "anion_offset": (0.5, 0.0, 0.0),
        "elements": ("Na", "Cl"),
        "charge": 1.0,
        "radii": (1.02, 1.81),
    },
    "cscl": {
        "cations": ((0.0, 0.0, 0.0),),
        "anion_offset": (0.5, 0.5, 0.5),
        "elements": ("Cs", "Cl"),
        "charge": 1.0,
        "radii": (1.74, 1.81),
    },
    "zincblende": {
        "cations": ((0.0, 0.0, 0.0), (0.0, 0.5, 0.5), (0.5, 0.0, 0.5), (0.5, 0.5, 0.0)),
        "anion_offset": (0.25, 0.25, 0.25),
        "elements": ("Zn", "S"),
        "charge": 2.0,
        "radii": (0.60, 1.84),
    },
}
#: Evjen cubes of CsCl and zinc blende: termination → ((weight, half-width − n in units of a), ...).
EVJEN_COMPONENTS = {
    "cscl": {
        "cation": ((1.0, 0.0),),
        "anion": ((1.0, 0.5),),
        "mixed": ((0.5, 0.0), (0.25, -0.5), (0.25, 0.5)),
    },
    "zincblende": {
        "cation": ((1.0, 0.0),),
        "anion": ((0.5, -0.25), (0.5, 0.25)),
        "mixed": ((0.5, 0.0), (0.25, -0.25), (0.25, 0.25)),
    },
}
#: Lattice each Evjen type is cut from.
EVJEN_LATTICE = {"evjen": "rocksalt", "evjen_cscl": "cscl", "evjen_zincblende": "zincblende"}
#: Default termination of the CsCl and zinc-blende Evjen cubes: the one converging to the bulk constant.
DEFAULT_TERMINATION = "mixed"

__all__ = [
    "CELLS",
    "CRYSTAL_TYPES",
    "EVJEN_TYPES",
    "IMPURITY_SITES",
    "LATTICE_TYPES",
    "TERMINATIONS",
    "add_impurities",
    "add_vacancies",
    "cell_vectors",
    "crystal",
    "evjen_cube",
    "make_lattice",
]


def _check_positive_int(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _check_fraction(value: float, name: str) -> float:
    value = float(value)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return value


def _labels(element_index: np.ndarray, elements: tuple[str, ...]) -> np.ndarray:
    """Object array of symbols picked by small integer codes (no per-ion Python strings)."""
    table = np.array([str(e) for e in elements], dtype=object)
    return table[element_index]


def cell_vectors(box) -> np.ndarray:
    """Cell vectors (rows, Å) of a box ``[a, b, c, α, β, γ]`` (Å, degrees), MDAnalysis convention.

    Returns
    -------
    (3, 3) float64
        ``v1 = (a, 0, 0)``, ``v2 = (b cos γ, b sin γ, 0)``,
        ``v3 = (c cos β, c (cos α − cos β cos γ)/sin γ, √(c² − v3x² − v3y²))``; right angles
        give exact zeros.
    """
    a, b, c, alpha, beta, gamma = (float(v) for v in box)
    cos = {angle: 0.0 if angle == 90.0 else np.cos(np.radians(angle)) for angle in (alpha, beta, gamma)}
    sin_gamma = 1.0 if gamma == 90.0 else np.sin(np.radians(gamma))
    v3x = c * cos[beta]
    v3y = c * (cos[alpha] - cos[beta] * cos[gamma]) / sin_gamma
    return np.array(
        [[a, 0.0, 0.0], [b * cos[gamma], b * sin_gamma, 0.0], [v3x, v3y, np.sqrt(c * c - v3x * v3x - v3y * v3y)]]
    )


def _cell_grid(n_cells: int) -> np.ndarray:
    """(n³, 3) float64 integer cell indices in C order."""
    axis = np.arange(n_cells, dtype=np.float64)
    return np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1).reshape(-1, 3)


def crystal(
    lattice_type: str,
    n_cells: int,
    lattice_constant_A: float,
    *,
    ion_charge: float | None = None,
    cell: str = "conventional",
) -> Structure:
    """Perfect periodic crystal of ``n_cells³`` cells (see the module docstring).

    Parameters
    ----------
    lattice_type : {"rocksalt", "cscl", "zincblende"}
    n_cells : int
        Cells along each axis, >= 1.
    lattice_constant_A : float
        Conventional cubic lattice constant a, Å (> 0).
    ion_charge : float, optional
        Magnitude of the ion charges, e (default 1 for rocksalt and cscl, 2 for zincblende).
    cell : {"conventional", "primitive"}
        ``primitive`` (rock salt only): the triclinic fcc cell, 2 ions per cell.

    Returns
    -------
    Structure
        ``positions`` (n_ions, 3) float64 Å with n_ions = 2 · len(basis) · n_cells³ (2 n³ for
        the primitive cell), inside the box; charges +q/−q; ``attrs["box"]`` =
        [n a, n a, n a, 90, 90, 90] (primitive: [n a/√2] × 3 + [60, 60, 60]).
    """
    if lattice_type not in LATTICES:
        raise ValueError(f"lattice type must be one of {', '.join(LATTICES)}, got {lattice_type!r}")
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {', '.join(CELLS)}, got {cell!r}")
    if cell == "primitive" and lattice_type != "rocksalt":
        raise ValueError(f"the primitive cell is offered for rocksalt only, got {lattice_type!r}")
    n_cells = _check_positive_int(n_cells, "n_cells")
    a = float(lattice_constant_A)
    if not np.isfinite(a) or a <= 0:
        raise ValueError(f"lattice_constant_A must be a positive number of Å, got {lattice_constant_A!r}")
    spec = LATTICES[lattice_type]
    q = float(spec["charge"] if ion_charge is None else ion_charge)
    cells = _cell_grid(n_cells)
    if cell == "primitive":
        basis = np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]])
        length = float(n_cells * a / np.sqrt(2.0))
        box = [length, length, length, 60.0, 60.0, 60.0]
        fractional = ((cells[:, None, :] + basis[None, :, :]) / n_cells).reshape(-1, 3)
        positions = fractional @ cell_vectors(box)
    else:
        cations = np.asarray(spec["cations"], dtype=np.float64)
        basis = np.concatenate([cations, (cations + np.asarray(spec["anion_offset"])) % 1.0])  # (2b, 3) in [0, 1)
        positions = (cells[:, None, :] + basis[None, :, :]).reshape(-1, 3)
        positions *= a
        length = float(n_cells * a)
        box = [length, length, length, 90.0, 90.0, 90.0]
    n_basis = basis.shape[0]
    is_anion = np.tile(np.repeat(np.array([0, 1], dtype=np.int8), n_basis // 2), cells.shape[0])
    charges = np.where(is_anion == 1, -q, q)
    radii = np.asarray(spec["radii"], dtype=np.float64)[is_anion]
    elements = _labels(is_anion, spec["elements"])
    return Structure(
        positions=positions,
        charges=charges,
        radii=radii,
        elements=elements,
        atom_names=elements,
        residue_names=_labels(is_anion, tuple(e.upper() for e in spec["elements"])),
        residue_ids=np.arange(1, positions.shape[0] + 1, dtype=np.int64),
        chain_ids=None,
        attrs={
            "lattice_type": lattice_type,
            "n_cells": n_cells,
            "lattice_constant_A": a,
            "ion_charge": q,
            "cell": cell,
            "box": box,
        },
    )


def _rocksalt_evjen(n: int, a: float) -> Structure:
    index = np.arange(-n, n + 1)
    weight = np.where(np.abs(index) == n, 0.5, 1.0)
    sign = np.where(index % 2 == 0, 1.0, -1.0)
    factor = sign * weight  # (2n+1,) per-coordinate signed weight; the charge is the product
    charges = (factor[:, None, None] * factor[None, :, None] * factor[None, None, :]).reshape(-1)
    grid = np.stack(np.meshgrid(index, index, index, indexing="ij"), axis=-1).reshape(-1, 3)
    positions = grid.astype(np.float64) * (a / 2.0)
    is_anion = (charges < 0).astype(np.int8)
    elements = _labels(is_anion, ("Na", "Cl"))
    return Structure(
        positions=positions,
        charges=charges,
        radii=np.full(positions.shape[0], np.nan),
        elements=elements,
        atom_names=elements,
        residue_names=_labels(is_anion, ("NA", "CL")),
        residue_ids=np.arange(1, positions.shape[0] + 1, dtype=np.int64),
        chain_ids=None,
        attrs={
            "lattice_type": "evjen",
            "n_cells": n,
            "lattice_constant_A": a,
            "ion_charge": 1.0,
            "termination": "",
            "half_width_A": n * a / 2.0,
            "centre_index": (positions.shape[0] - 1) // 2,
            "box": [],
        },
    )


def _face_weights(values_q: np.ndarray, half_width_q: int) -> np.ndarray:
    """Evjen weight along one axis: 1 inside, ½ on the face plane, 0 outside (coordinates in a/4)."""
    distance = np.abs(values_q)
    return np.where(distance < half_width_q, 1.0, np.where(distance == half_width_q, 0.5, 0.0))


def _weighted_cube(lattice: str, n: int, a: float, termination: str) -> Structure:
    """CsCl or zinc-blende Evjen cube (see the module docstring); site coordinates handled in a/4."""
    spec = LATTICES[lattice]
    z = float(spec["charge"])
    cations_q = np.rint(4 * np.asarray(spec["cations"])).astype(np.int64)
    anions_q = cations_q + np.rint(4 * np.asarray(spec["anion_offset"])).astype(np.int64)
    components = [(weight, round(4 * (n + offset))) for weight, offset in EVJEN_COMPONENTS[lattice][termination]]
    h_max = max(h for _, h in components)
    sites, charges, is_anion = [], [], []
    for code, sign, basis in ((0, 1.0, cations_q), (1, -1.0, anions_q)):
        for site in basis:
            # this basis site's translates form a product grid: coordinates 4k + b within [−h_max, h_max]
            axes = [4 * np.arange(-((h_max + b) // 4), (h_max - b) // 4 + 1) + b for b in site]
            charge = np.zeros([len(values) for values in axes])
            for weight, h in components:
                w = [_face_weights(values, h) for values in axes]
                charge += weight * (w[0][:, None, None] * w[1][None, :, None] * w[2][None, None, :])
            grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
            sites.append(grid)
            charges.append(sign * z * charge.reshape(-1))
            is_anion.append(np.full(grid.shape[0], code, dtype=np.int8))
    sites_q = np.concatenate(sites)
    charges = np.concatenate(charges)
    is_anion = np.concatenate(is_anion)
    order = np.lexsort((sites_q[:, 2], sites_q[:, 1], sites_q[:, 0]))
    order = order[charges[order] != 0.0]
    sites_q, charges, is_anion = sites_q[order], charges[order], is_anion[order]
    centre = np.flatnonzero(np.all(sites_q == 0, axis=1))
    elements = _labels(is_anion, spec["elements"])
    return Structure(
        positions=sites_q * (a / 4.0),
        charges=charges,
        radii=np.full(charges.shape[0], np.nan),
        elements=elements,
        atom_names=elements,
        residue_names=_labels(is_anion, tuple(e.upper() for e in spec["elements"])),
        residue_ids=np.arange(1, charges.shape[0] + 1, dtype=np.int64),
        chain_ids=None,
        attrs={
            "lattice_type": f"evjen_{lattice}",
            "n_cells": n,
            "lattice_constant_A": a,
            "ion_charge": z,
            "termination": termination,
            "half_width_A": h_max * a / 4.0,
            "centre_index": int(centre[0]),
            "box": [],
        },
    )


def evjen_cube(n: int, lattice_constant_A: float, *, lattice: str = "rocksalt", termination: str | None = None) -> Structure:
    """Charge-neutral Evjen-weighted cube around a centre cation at the origin.

    Parameters
    ----------
    n : int
        Size, >= 1: for rock salt the half-width in units of a/2 (ions at (a/2)(i, j, k),
        i, j, k in [−n, n]); for CsCl and zinc blende conventional cells from the centre to a
        face (see the module docstring).
    lattice_constant_A : float
        Conventional lattice constant a, Å; nearest-neighbour distance a/2 (rock salt),
        a√3/2 (CsCl), a√3/4 (zinc blende).
    lattice : {"rocksalt", "cscl", "zincblende"}
    termination : {"cation", "anion", "mixed"}, optional
        CsCl and zinc blende only (default ``"mixed"``, which converges to the bulk Madelung
        constant); rock-salt face planes hold both ions, so it does not apply there.

    Returns
    -------
    Structure
        Centre cation (index ``attrs["centre_index"]``; ``((2n+1)³ − 1) / 2`` for rock salt) at
        the origin with charge +z; weighted charges summing to exactly 0; elements by sublattice;
        radii NaN; no box.
    """
    n = _check_positive_int(n, "n")
    a = float(lattice_constant_A)
    if not np.isfinite(a) or a <= 0:
        raise ValueError(f"lattice_constant_A must be a positive number of Å, got {lattice_constant_A!r}")
    if lattice not in LATTICES:
        raise ValueError(f"Evjen lattice must be one of {', '.join(LATTICES)}, got {lattice!r}")
    if lattice == "rocksalt":
        if termination is not None:
            raise ValueError("termination does not apply to the rock-salt Evjen cube (its faces hold both ions)")
        return _rocksalt_evjen(n, a)
    termination = DEFAULT_TERMINATION if termination is None else termination
    if termination not in TERMINATIONS:
        raise ValueError(f"termination must be one of {', '.join(TERMINATIONS)}, got {termination!r}")
    return _weighted_cube(lattice, n, a, termination)


def _subset(structure: Structure, keep: np.ndarray) -> None:
    for name in ("positions", "charges", "radii", "elements", "atom_names", "residue_names", "residue_ids"):
        values = getattr(structure, name)
        if values is not None:
            setattr(structure, name, values[keep])


def add_vacancies(structure: Structure, fraction: float, *, rng: np.random.Generator) -> int:
    """Remove Schottky pairs in place: ``round(fraction · n_cations)`` cations and as many anions.

    Returns
    -------
    int
        Number of ions removed (twice the number of pairs).
    """
    fraction = _check_fraction(fraction, "vacancy_fraction")
    cations = np.flatnonzero(structure.charges > 0)
    anions = np.flatnonzero(structure.charges < 0)
    k = int(round(fraction * cations.size))
    if k == 0:
        return 0
    if k > anions.size:
        raise ValueError(f"vacancy_fraction {fraction} removes {k} anions but the lattice has {anions.size}")
    removed = np.concatenate([rng.choice(cations, size=k, replace=False), rng.choice(anions, size=k, replace=False)])
    keep = np.ones(structure.n_atoms, dtype=bool)
    keep[removed] = False
    _subset(structure, keep)
    return 2 * k


def add_impurities(
    structure: Structure, fraction: float, charge: float, *, rng: np.random.Generator, site: str = "cation"
) -> np.ndarray:
    """Substitute ``round(fraction · n_sites)`` sites of one sublattice by ions of charge ``charge``, in place.

    Returns
    -------
    numpy.ndarray of int
        Sorted indices of the substituted ions.
    """
    fraction = _check_fraction(fraction, "impurity_fraction")
    if site not in IMPURITY_SITES:
        raise ValueError(f"impurity site must be one of {', '.join(IMPURITY_SITES)}, got {site!r}")
    if not np.isfinite(charge):
        raise ValueError(f"impurity_charge must be a finite number of e, got {charge!r}")
    if site == "cation":
        candidates = np.flatnonzero(structure.charges > 0)
    elif site == "anion":
        candidates = np.flatnonzero(structure.charges < 0)
    else:
        candidates = np.arange(structure.n_atoms)
    m = int(round(fraction * candidates.size))
    chosen = np.sort(rng.choice(candidates, size=m, replace=False)) if m else np.zeros(0, dtype=np.int64)
    structure.charges = structure.charges.copy()
    structure.charges[chosen] = float(charge)
    structure.radii = structure.radii.copy()
    structure.radii[chosen] = np.nan
    for name, label in (("elements", "X"), ("atom_names", "IMP"), ("residue_names", "IMP")):
        values = getattr(structure, name).copy()
        values[chosen] = label
        setattr(structure, name, values)
    return chosen


def make_lattice(
    lattice_type: str,
    n_cells: int,
    lattice_constant_A: float,
    *,
    vacancy_fraction: float = 0.0,
    impurity_fraction: float = 0.0,
    impurity_charge: float | None = None,
    impurity_site: str = "cation",
    ion_charge: float | None = None,
    seed: int = 0,
    periodic: bool = False,
    cell: str = "conventional",
    termination: str | None = None,
) -> Structure:
    """A lattice of one of :data:`LATTICE_TYPES` with optional vacancies and impurities.

    Parameters
    ----------
    lattice_type : {"rocksalt", "cscl", "zincblende", "evjen", "evjen_cscl", "evjen_zincblende"}
    n_cells : int
        Cells per axis (``"evjen"``: half-width in units of a/2; ``"evjen_cscl"``,
        ``"evjen_zincblende"``: conventional cells from the centre to a face).
    lattice_constant_A : float
        Lattice constant a, Å.
    vacancy_fraction : float in [0, 1)
        Fraction of cations removed, with as many anions (periodic lattices only).
    impurity_fraction : float in [0, 1)
        Fraction of ``impurity_site`` sites given ``impurity_charge``.
    impurity_charge : float, optional
        Charge of the impurity ions, e; required when ``impurity_fraction > 0``.
    impurity_site : {"cation", "anion", "any"}
    ion_charge : float, optional
        Magnitude of the host ion charges, e (periodic lattices only).
    seed : int
        Seed of ``numpy.random.default_rng`` drawing vacancies, then impurities.
    periodic : bool
        Crystal types only: store the supercell's box in ``attrs["box"]`` (a periodic
        crystal); otherwise the block of cells is a finite cluster and ``box`` is empty.
    cell : {"conventional", "primitive"}
        ``primitive``: the triclinic rock-salt cell (needs ``periodic``).
    termination : {"cation", "anion", "mixed"}, optional
        ``evjen_cscl`` and ``evjen_zincblende`` only (default ``"mixed"``).

    Returns
    -------
    Structure
        ``attrs``: source/format ``"lattice"``, ``charge_source`` ``"lattice"``, ``lattice_type``,
        ``n_cells``, ``lattice_constant_A``, ``periodic`` (0/1), ``cell``, ``termination``
        ("" unless an Evjen cube), ``vacancy_fraction``, ``n_vacancies``, ``impurity_fraction``,
        ``impurity_charge``, ``impurity_site``, ``n_impurities``, ``seed``, ``box``, ``dropped``
        (empty); Evjen cubes add ``half_width_A`` and ``centre_index``.
    """
    start = time.perf_counter()
    if lattice_type not in LATTICE_TYPES:
        raise ValueError(f"lattice type must be one of {', '.join(LATTICE_TYPES)}, got {lattice_type!r}")
    vacancy_fraction = _check_fraction(vacancy_fraction, "vacancy_fraction")
    impurity_fraction = _check_fraction(impurity_fraction, "impurity_fraction")
    if impurity_fraction > 0 and impurity_charge is None:
        raise ValueError("impurity_charge is required when impurity_fraction > 0")
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {', '.join(CELLS)}, got {cell!r}")
    if lattice_type in EVJEN_TYPES:
        if vacancy_fraction or impurity_fraction or ion_charge is not None:
            raise ValueError(
                "the Evjen cube is a Madelung reference: vacancies, impurities and ion_charge are not supported"
            )
        if periodic or cell != "conventional":
            raise ValueError(
                f"{lattice_type} is a finite neutral cube: periodic supercells and cells are for "
                f"{', '.join(CRYSTAL_TYPES)}"
            )
        structure = evjen_cube(
            n_cells, lattice_constant_A, lattice=EVJEN_LATTICE[lattice_type], termination=termination
        )
    else:
        if termination is not None:
            raise ValueError(f"termination applies to the Evjen cubes evjen_cscl and evjen_zincblende, not {lattice_type}")
        if cell == "primitive" and not periodic:
            raise ValueError("the primitive cell is a periodic cell: use it with periodic=True (--periodic)")
        structure = crystal(lattice_type, n_cells, lattice_constant_A, ion_charge=ion_charge, cell=cell)
        if not periodic:
            structure.attrs["box"] = []
        structure.attrs["termination"] = ""
    rng = np.random.default_rng(seed)
    n_vacancies = add_vacancies(structure, vacancy_fraction, rng=rng) if vacancy_fraction else 0
    n_impurities = 0
    if impurity_fraction:
        n_impurities = int(
            add_impurities(structure, impurity_fraction, float(impurity_charge), rng=rng, site=impurity_site).size
        )
    if n_vacancies:
        structure.residue_ids = np.arange(1, structure.n_atoms + 1, dtype=np.int64)
    structure.attrs.update(
        source="lattice",
        format="lattice",
        charge_source="lattice",
        dropped=[],
        periodic=int(bool(periodic)),
        cell=cell,
        vacancy_fraction=vacancy_fraction,
        n_vacancies=n_vacancies,
        impurity_fraction=impurity_fraction,
        impurity_charge=float("nan") if impurity_charge is None else float(impurity_charge),
        impurity_site=impurity_site,
        n_impurities=n_impurities,
        seed=int(seed),
    )
    log.debug(
        "lattice %s: n=%d a=%.4g Å, %d ions, %d vacancies, %d impurities, net charge %+.6g e, %.2fs",
        lattice_type,
        structure.attrs["n_cells"],
        structure.attrs["lattice_constant_A"],
        structure.n_atoms,
        n_vacancies,
        n_impurities,
        float(structure.charges.sum()),
        time.perf_counter() - start,
    )
    return structure
