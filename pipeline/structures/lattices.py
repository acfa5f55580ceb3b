"""Ionic crystal lattices generated directly as arrays: rock salt, CsCl, zinc blende, Evjen cube.

Conventions (lattice constant ``a`` in Å, fractional coordinates of the conventional cubic
cell wrapped into [0, 1), cells indexed ``(i, j, k)`` in ``[0, n)³``, positions
``a · (cell + basis)``; the crystal fills ``[0, n a)³`` and is periodic with box ``n a`` along each axis):

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

**Evjen cube** (Evjen, Phys. Rev. 39, 675 (1932)): ions at ``(a/2)·(i, j, k)`` for integers
``i, j, k`` in ``[−n, n]`` around a centre cation at the origin, charge
``(−1)^(i+j+k) · w(i) w(j) w(k)`` with ``w = ½`` on the boundary (``|i| = n``) and 1 inside, so
face ions carry ½, edge ions ¼, corner ions ⅛ of their charge. The cube is exactly neutral
and its Madelung sum ``−Σ_{j≠0} q_j (a/2) / r_j`` converges quickly to the NaCl constant
1.747564594633... (n = 1: 3 − 3/√2 + 1/√3 = 1.45603). ``(2n + 1)³`` ions, no box.

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
#: Every type accepted by :func:`make_lattice`.
LATTICE_TYPES = (*LATTICES, "evjen")
#: Sublattices an impurity may occupy.
IMPURITY_SITES = ("cation", "anion", "any")


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


def crystal(
    lattice_type: str, n_cells: int, lattice_constant_A: float, *, ion_charge: float | None = None
) -> Structure:
    """Perfect periodic crystal of ``n_cells³`` conventional cubic cells (see the module docstring).

    Parameters
    ----------
    lattice_type : {"rocksalt", "cscl", "zincblende"}
    n_cells : int
        Cells along each axis, >= 1.
    lattice_constant_A : float
        Conventional cubic lattice constant a, Å (> 0).
    ion_charge : float, optional
        Magnitude of the ion charges, e (default 1 for rocksalt and cscl, 2 for zincblende).

    Returns
    -------
    Structure
        ``positions`` (n_ions, 3) float64 Å with n_ions = 2 · len(basis) · n_cells³; charges
        +q/−q; ``attrs["box"]`` = [n a, n a, n a, 90, 90, 90].
    """
    if lattice_type not in LATTICES:
        raise ValueError(f"lattice type must be one of {', '.join(LATTICES)}, got {lattice_type!r}")
    n_cells = _check_positive_int(n_cells, "n_cells")
    a = float(lattice_constant_A)
    if not np.isfinite(a) or a <= 0:
        raise ValueError(f"lattice_constant_A must be a positive number of Å, got {lattice_constant_A!r}")
    spec = LATTICES[lattice_type]
    q = float(spec["charge"] if ion_charge is None else ion_charge)
    cations = np.asarray(spec["cations"], dtype=np.float64)
    basis = np.concatenate([cations, (cations + np.asarray(spec["anion_offset"])) % 1.0])  # (2b, 3), in [0, 1)
    n_basis = basis.shape[0]
    axis = np.arange(n_cells, dtype=np.float64)
    cells = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1).reshape(-1, 3)  # (n³, 3)
    positions = (cells[:, None, :] + basis[None, :, :]).reshape(-1, 3)
    positions *= a
    is_anion = np.tile(np.repeat(np.array([0, 1], dtype=np.int8), n_basis // 2), cells.shape[0])
    charges = np.where(is_anion == 1, -q, q)
    radii = np.asarray(spec["radii"], dtype=np.float64)[is_anion]
    elements = _labels(is_anion, spec["elements"])
    length = n_cells * a
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
            "box": [length, length, length, 90.0, 90.0, 90.0],
        },
    )


def evjen_cube(n: int, lattice_constant_A: float) -> Structure:
    """Charge-neutral Evjen-weighted rock-salt cube of ``(2n + 1)³`` ions around a centre cation.

    Parameters
    ----------
    n : int
        Half-width in units of a/2 (ions at (a/2)(i, j, k), i, j, k in [−n, n]), >= 1.
    lattice_constant_A : float
        NaCl conventional lattice constant a, Å; nearest-neighbour distance a/2.

    Returns
    -------
    Structure
        Centre ion (index ``((2n+1)³ − 1) / 2``) at the origin with charge +1; charges
        ``(−1)^(i+j+k) w(i) w(j) w(k)`` (see the module docstring); elements Na/Cl by sign;
        radii NaN; no box.
    """
    n = _check_positive_int(n, "n")
    a = float(lattice_constant_A)
    if not np.isfinite(a) or a <= 0:
        raise ValueError(f"lattice_constant_A must be a positive number of Å, got {lattice_constant_A!r}")
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
        attrs={"lattice_type": "evjen", "n_cells": n, "lattice_constant_A": a, "ion_charge": 1.0, "box": []},
    )


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
) -> Structure:
    """A lattice of one of :data:`LATTICE_TYPES` with optional vacancies and impurities.

    Parameters
    ----------
    lattice_type : {"rocksalt", "cscl", "zincblende", "evjen"}
    n_cells : int
        Cells per axis (for ``"evjen"``: the half-width n of the cube).
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

    Returns
    -------
    Structure
        ``attrs``: source/format ``"lattice"``, ``charge_source`` ``"lattice"``, ``lattice_type``,
        ``n_cells``, ``lattice_constant_A``, ``vacancy_fraction``, ``n_vacancies``,
        ``impurity_fraction``, ``impurity_charge``, ``impurity_site``, ``n_impurities``, ``seed``,
        ``box``, ``dropped`` (empty).
    """
    start = time.perf_counter()
    if lattice_type not in LATTICE_TYPES:
        raise ValueError(f"lattice type must be one of {', '.join(LATTICE_TYPES)}, got {lattice_type!r}")
    vacancy_fraction = _check_fraction(vacancy_fraction, "vacancy_fraction")
    impurity_fraction = _check_fraction(impurity_fraction, "impurity_fraction")
    if impurity_fraction > 0 and impurity_charge is None:
        raise ValueError("impurity_charge is required when impurity_fraction > 0")
    if lattice_type == "evjen":
        if vacancy_fraction or impurity_fraction or ion_charge is not None:
            raise ValueError(
                "the Evjen cube is a Madelung reference: vacancies, impurities and ion_charge are not supported"
            )
        structure = evjen_cube(n_cells, lattice_constant_A)
    else:
        structure = crystal(lattice_type, n_cells, lattice_constant_A, ion_charge=ion_charge)
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
