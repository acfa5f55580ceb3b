"""Build a :class:`ChebyshevTuckerPotential` from positions and charges with one tolerance.

Steps (one INFO line each): parameters (:func:`prepare_build`: box, α and r_c from the cost
model of :mod:`.parameters`, Chebyshev sizes and spreading grid), the long-range grid
(spreading + FFT convolution), its Chebyshev coefficients, the long range at every atom
interpolated from the same grid, and Tucker compression (:func:`assemble_potential`). Every
automatic choice can be overridden. A scatter–gather build runs :func:`prepare_build` on the
whole structure in every job, :func:`long_range_coefficients` on a slice of the atoms, and
:func:`assemble_potential` on the sum.

Storage limit. The α that makes the atoms fastest can leave a long range whose Tucker ranks,
and so its storage, are large: for a random cloud the ranks follow the band limit ∝ α·(box
edge), whatever the compression. With ``max_storage_bytes`` the stored form is rebuilt at a
smaller α_s until it fits (:func:`fit_storage`: storage ∝ α^2.4, usually one cheap coarse-grid build);
the atom values keep the build's α, and evaluation elsewhere adds the mid range between α_s
and a target-specific α₂ (:mod:`.mid_range`). :data:`DEFAULT_MAX_STORAGE_BYTES` is 1% of a
129³ float64 map.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from pipeline.backend import namespace_of, synchronize, to_host
from pipeline.electrostatics.gridding import interpolate_grid
from pipeline.electrostatics.long_range import (
    LongRangePlan,
    compress_coefficients,
    estimate_build_bytes,
    grid_to_coefficients,
    long_range_coefficients,
    long_range_grid,
    plan_long_range,
)
from pipeline.electrostatics.parameters import (
    TUCKER_MARGIN,
    choose_alpha,
    choose_alpha_periodic,
    choose_cutoff,
    default_box,
    fft_memory_budget,
    internal_tolerances,
)
from pipeline.electrostatics.periodic import (
    PeriodicPlan,
    background_potential,
    cell_matrix,
    cell_widths,
    estimate_periodic_bytes,
    periodic_grid_to_coefficients,
    periodic_interpolate,
    periodic_long_range_grid,
    plan_periodic,
    total_charge,
)
from pipeline.electrostatics.potential import (
    AtomLongRange,
    ChebyshevTuckerPotential,
    check_inside,
    tucker_storage_bytes,
)
from pipeline.electrostatics.settings import DEFAULT_MAX_STORAGE_BYTES, DEFAULT_PADDING, MAX_SPAN_A
from pipeline.electrostatics.splitting import Split, check_tolerance, make_split
from pipeline.resources import available_memory_bytes, check_memory

log = logging.getLogger(__name__)
#: Each storage step aims this far below the limit, modelling storage ∝ α^STORAGE_EXPONENT
#: (measured 2.3–2.5 on random clouds: the core r³ with r growing slower than α, plus m·r).
STORAGE_SAFETY = 0.9
STORAGE_EXPONENT = 2.4
#: Most rebuilds :func:`fit_storage` tries before it gives up with a warning.
MAX_STORAGE_STEPS = 8


@dataclass(frozen=True)
class BuildSetup:
    """Everything a long-range build fixes before touching the charges.

    Attributes
    ----------
    box_lo, box_hi : tuple of 3 floats
        Chebyshev box, Å (free space), or the unit cube of fractional coordinates (periodic).
    split : EwaldSplit, ScreenedEwaldSplit or GaussianSumSplit
    cutoff : float
        Short-range cutoff r_c, Å.
    plan : LongRangePlan or PeriodicPlan
    params : dict
        Build parameters as stored with the potential (tolerance, α, cutoff, degree, grid, split,
        dielectric, κ, cell).
    dielectric : float
        Relative permittivity ε_r: every kernel is divided by it.
    cell : tuple of 3 tuples or None
        Periodic cell vectors (rows, Å); None in free space.
    """

    box_lo: tuple
    box_hi: tuple
    split: Split
    cutoff: float
    plan: LongRangePlan | PeriodicPlan
    params: dict
    dielectric: float = 1.0
    cell: tuple | None = None

    @property
    def periodic(self) -> bool:
        return self.cell is not None


def validate_structure(positions, charges) -> None:
    """Raise ``ValueError`` for empty input, wrong shapes or non-finite values."""
    pos = to_host(positions)
    q = to_host(charges)
    if pos.ndim != 2 or pos.shape[1] != 3:
        raise ValueError(f"positions must have shape (n_atoms, 3), got {pos.shape}")
    if q.shape != (pos.shape[0],):
        raise ValueError(f"charges must have shape ({pos.shape[0]},) to match positions, got {q.shape}")
    if pos.shape[0] == 0:
        raise ValueError("the structure is empty (0 atoms): nothing to build a potential for")
    if not np.all(np.isfinite(pos)):
        bad = int(np.nonzero(~np.isfinite(pos).all(axis=1))[0][0])
        raise ValueError(f"positions contain NaN or infinite values (first at atom {bad})")
    if not np.all(np.isfinite(q)):
        bad = int(np.nonzero(~np.isfinite(q))[0][0])
        raise ValueError(f"charges contain NaN or infinite values (first at atom {bad})")


def check_span(positions, *, allow_large_span: bool = False) -> None:
    """Raise ``ValueError`` when the atoms span more than :data:`MAX_SPAN_A` along an axis.

    Such a span is almost always a broken coordinate; the message names the atom farthest from
    the median along that axis. ``allow_large_span`` accepts it (the memory check still applies).
    """
    if allow_large_span:
        return
    pos = to_host(positions)
    span = pos.max(axis=0) - pos.min(axis=0)
    axis = int(np.argmax(span))
    if span[axis] > MAX_SPAN_A:
        column = pos[:, axis]
        far = int(np.argmax(np.abs(column - np.median(column))))
        raise ValueError(
            f"the atoms span {span[axis]:.4g} Å along {'xyz'[axis]}, more than {MAX_SPAN_A:.0f} Å (atom index {far} "
            f"at {'xyz'[axis]} = {column[far]:.6g} Å); check the coordinates, or pass --allow-large-span "
            "for a structure this wide"
        )


def prepare_build(
    positions,
    charges,
    *,
    tolerance: float = 1e-6,
    split: str = "ewald",
    alpha: float | None = None,
    cutoff: float | None = None,
    degree=None,
    box=None,
    padding: float = DEFAULT_PADDING,
    spacing: float | None = None,
    dielectric: float = 1.0,
    kappa: float = 0.0,
    cell=None,
    accuracy_level: int = 0,
    max_memory_bytes: int | None = None,
    allow_large_span: bool = False,
) -> BuildSetup:
    """Box, split, cutoff and long-range plan of a structure (see :func:`build_potential`).

    A pure function of the whole structure and the arguments: scatter–gather jobs call it on
    the same inputs and obtain identical setups. Refuses (``ValueError``) atoms spanning more
    than :data:`MAX_SPAN_A` unless ``allow_large_span``, and a plan whose memory estimate
    (:func:`~.long_range.estimate_build_bytes`) exceeds ``max_memory_bytes`` (default: the
    memory available now).
    """
    tolerance = check_tolerance(tolerance)
    validate_structure(positions, charges)
    if not dielectric > 0:
        raise ValueError(f"dielectric (relative permittivity) must be > 0, got {dielectric!r}")
    if not kappa >= 0:
        raise ValueError(f"kappa (inverse Debye length) must be ≥ 0 1/Å, got {kappa!r}")
    if int(accuracy_level) < 0:
        raise ValueError(f"accuracy_level must be ≥ 0, got {accuracy_level!r}")
    internal, grid_tol = internal_tolerances(tolerance, accuracy_level)
    accuracy = {"accuracy_level": int(accuracy_level), "internal_tolerance": internal, "grid_tolerance": grid_tol}
    if cell is None:
        check_span(positions, allow_large_span=allow_large_span)
    if cell is not None:
        return _prepare_periodic(positions, tolerance=tolerance, split=split, alpha=alpha, cutoff=cutoff,
                                 degree=degree, dielectric=float(dielectric), kappa=float(kappa), cell=cell,
                                 accuracy=accuracy, max_memory_bytes=max_memory_bytes)
    if box is None:
        lo, hi = default_box(to_host(positions), padding)
    else:
        lo, hi = (np.asarray(b, dtype=float).reshape(3) for b in box)
        if np.any(hi <= lo):
            raise ValueError(f"box must have hi > lo on every axis, got lo={lo.tolist()} hi={hi.tolist()}")
    lo, hi = tuple(float(v) for v in lo), tuple(float(v) for v in hi)
    check_inside(positions, lo, hi, "charges")
    if alpha is None:
        alpha = choose_alpha(lo, hi, tolerance, n_atoms=int(positions.shape[0]),
                             fft_memory_bytes=_fft_budget(positions, max_memory_bytes))
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0 1/Å, got {alpha!r}")
    kernel = _split_for_box(split, alpha, internal, lo, hi, kappa)
    if cutoff is None:
        cutoff = choose_cutoff(kernel, internal, _diagonal(lo, hi))
    if not cutoff > 0:
        raise ValueError(f"cutoff must be > 0 Å, got {cutoff!r}")
    plan = plan_long_range(lo, hi, kernel.t_max, internal, degree=degree, spacing=spacing, grid_tolerance=grid_tol)
    params = {
        "tolerance": tolerance,
        **accuracy,
        "alpha": float(alpha),
        "cutoff": float(cutoff),
        "degree": list(plan.degree),
        "padding": float(padding),
        "grid": plan.to_dict(),
        "dielectric": float(dielectric),
        "kappa_per_A": float(kappa),
        "periodic": 0,
        **kernel.params(),
    }
    log.info(
        "parameters: n_atoms=%d split=%s alpha=%.4g 1/A cutoff=%.3g A degree=%s grid=%s h=%.3g A eps_r=%g kappa=%.4g 1/A",
        positions.shape[0], kernel.name, alpha, cutoff, plan.degree, plan.shape, plan.spacing, dielectric, kappa,
    )
    check_memory(estimate_build_bytes(plan, int(positions.shape[0])), xp=namespace_of(positions),
                 what=f"the potential build (box {' x '.join(f'{b - a:.4g}' for a, b in zip(lo, hi))} Å, "
                      f"grid {'x'.join(map(str, plan.shape))}, {'x'.join(map(str, plan.degree))} Chebyshev nodes)",
                 setting="raise --tolerance, lower --padding or --degree, or set --max-memory",
                 limit_bytes=max_memory_bytes)
    return BuildSetup(box_lo=lo, box_hi=hi, split=kernel, cutoff=float(cutoff), plan=plan, params=params,
                      dielectric=float(dielectric))


def _fft_budget(positions, max_memory_bytes: int | None) -> float:
    """FFT working set allowed to the automatic α: a share of the user's limit or of the memory available."""
    limit = max_memory_bytes if max_memory_bytes is not None else available_memory_bytes(namespace_of(positions))
    return fft_memory_budget(limit)


def _prepare_periodic(positions, *, tolerance, split, alpha, cutoff, degree, dielectric, kappa, cell,
                      accuracy: dict, max_memory_bytes: int | None) -> BuildSetup:
    """:func:`prepare_build` for a periodic cell (any position is wrapped into it)."""
    if split != "ewald":
        raise ValueError(f"periodic sums need the split 'ewald', got {split!r}")
    cell = cell_matrix(cell)
    if alpha is None:
        alpha = choose_alpha_periodic(cell, tolerance, n_atoms=int(positions.shape[0]),
                                      fft_memory_bytes=_fft_budget(positions, max_memory_bytes))
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0 1/Å, got {alpha!r}")
    internal = accuracy["internal_tolerance"]
    kernel = make_split("ewald", alpha, tolerance=internal / 10, length_scale=float(min(cell_widths(cell))),
                        kappa=kappa)
    if cutoff is None:
        cutoff = choose_cutoff(kernel, internal, float(min(cell_widths(cell))))
    if not cutoff > 0:
        raise ValueError(f"cutoff must be > 0 Å, got {cutoff!r}")
    plan = plan_periodic(cell, kernel.t_max, internal, degree=degree, grid_tolerance=accuracy["grid_tolerance"])
    cell_rows = tuple(tuple(float(v) for v in row) for row in cell)
    params = {
        "tolerance": tolerance,
        **accuracy,
        "alpha": float(alpha),
        "cutoff": float(cutoff),
        "degree": list(plan.degree),
        "padding": 0.0,
        "grid": plan.to_dict(),
        "dielectric": float(dielectric),
        "kappa_per_A": float(kappa),
        "periodic": 1,
        "cell": [list(row) for row in cell_rows],
        **kernel.params(),
    }
    check_memory(estimate_periodic_bytes(plan, int(positions.shape[0]), cutoff), xp=namespace_of(positions),
                 what=f"the periodic potential build (grid {'x'.join(map(str, plan.grid))}, "
                      f"{'x'.join(map(str, plan.degree))} Chebyshev nodes, cutoff {cutoff:.3g} Å)",
                 setting="raise --tolerance or lower --degree, or set --max-memory", limit_bytes=max_memory_bytes)
    log.info("parameters (periodic): n_atoms=%d alpha=%.4g 1/A cutoff=%.3g A (cell widths %s A) degree=%s grid=%s "
             "eps_r=%g kappa=%.4g 1/A", positions.shape[0], alpha, cutoff,
             np.round(cell_widths(cell), 2).tolist(), plan.degree, plan.grid, dielectric, kappa)
    return BuildSetup(box_lo=plan.box_lo, box_hi=plan.box_hi, split=kernel, cutoff=float(cutoff), plan=plan,
                      params=params, dielectric=float(dielectric), cell=cell_rows)


def long_range_parts(setup: BuildSetup, positions, charges, *, targets=None):
    """Long-range Chebyshev coefficients of ``charges`` at ``positions``, and the long range at ``targets``.

    Linear in the charges (the unit of work of a scatter–gather build); the dielectric divides
    the charges, and a periodic Coulomb cell's background term −πQ/(Vα²) of these charges is
    added to both.

    Returns
    -------
    coeffs : (m1, m2, m3) array, e/Å
    at_targets : (n_targets,) array, e/Å, or None without ``targets``
    """
    xp = namespace_of(positions, charges)
    sources = charges / setup.dielectric
    if setup.periodic:
        grid = periodic_long_range_grid(positions, sources, setup.plan, setup.split)
        coeffs = periodic_grid_to_coefficients(grid, setup.plan)
        at_targets = None if targets is None else periodic_interpolate(grid, targets, setup.plan)
        background = background_potential(total_charge(sources), setup.cell, setup.split)
        if background:
            coeffs[0, 0, 0] += background
            at_targets = None if at_targets is None else at_targets + background
    else:
        grid = long_range_grid(positions, sources, setup.plan, setup.split)
        coeffs = grid_to_coefficients(grid, setup.plan)
        at_targets = None if targets is None else interpolate_grid(grid, targets, setup.plan)
    synchronize(xp)
    return coeffs, at_targets


def _diagonal(lo, hi) -> float:
    """Length of the box diagonal, Å (the length scale of the splits and cutoffs)."""
    return float(np.linalg.norm(np.subtract(hi, lo)))


def _split_for_box(kind: str, alpha: float, tolerance: float, lo, hi, kappa: float = 0.0):
    return make_split(kind, alpha, tolerance=tolerance / 10, length_scale=_diagonal(lo, hi), kappa=kappa)


def fit_storage(setup: BuildSetup, positions, charges, compressed, *, max_storage_bytes: int, hooi_sweeps: int = 0):
    """Rebuild the stored long range at smaller α until its Tucker form fits ``max_storage_bytes``.

    Parameters
    ----------
    setup : BuildSetup
        The build's setup (box, split kind, tolerance, α of the atoms).
    positions, charges : arrays of the whole structure
    compressed : (core, factors, rel_error)
        Tucker form of the build's own long range.
    max_storage_bytes : int
    hooi_sweeps : int

    Returns
    -------
    (core, factors, rel_error), split, cutoff (Å), plan
        The stored form and its split; the inputs themselves when they already fit. When it
        still does not fit after :data:`MAX_STORAGE_STEPS` rebuilds (or the split cannot get
        smaller) the last one is returned with a WARNING.
    """
    tolerance = float(setup.params["internal_tolerance"])
    grid_tol = float(setup.params["grid_tolerance"])
    kappa = float(setup.params.get("kappa_per_A", 0.0))
    core, factors, rel_err = compressed
    split, cutoff, plan = setup.split, setup.cutoff, setup.plan
    storage = tucker_storage_bytes(core, factors)
    if setup.periodic:
        if storage > max_storage_bytes:
            log.warning("stored periodic long range takes %d B (limit %d B): a periodic form is not shrunk", storage,
                        max_storage_bytes)
        return compressed, split, float(cutoff), plan
    for _ in range(MAX_STORAGE_STEPS):
        if storage <= max_storage_bytes:
            break
        alpha = split.t_max * (STORAGE_SAFETY * max_storage_bytes / storage) ** (1.0 / STORAGE_EXPONENT)
        smaller = _split_for_box(split.name, alpha, tolerance, setup.box_lo, setup.box_hi, kappa)
        while smaller.t_max >= split.t_max and alpha > 1e-3 * split.t_max:  # a discrete split may not move
            alpha *= 0.9
            smaller = _split_for_box(split.name, alpha, tolerance, setup.box_lo, setup.box_hi, kappa)
        if smaller.t_max >= split.t_max:
            break
        split = smaller
        cutoff = choose_cutoff(split, tolerance, _diagonal(setup.box_lo, setup.box_hi))
        plan = plan_long_range(setup.box_lo, setup.box_hi, split.t_max, tolerance, grid_tolerance=grid_tol)
        coeffs = long_range_coefficients(positions, charges / setup.dielectric, plan, split)
        core, factors, rel_err = compress_coefficients(coeffs, tolerance * TUCKER_MARGIN, hooi_sweeps=hooi_sweeps)
        previous, storage = storage, tucker_storage_bytes(core, factors)
        log.info("storage: %d B over the limit of %d B; long range stored at alpha=%.4g 1/A: m=%s ranks=%s, %d B",
                 previous, max_storage_bytes, split.t_max, plan.degree, tuple(core.shape), storage)
    if storage > max_storage_bytes:
        log.warning("stored long range still takes %d B at alpha=%.4g 1/A (limit %d B)", storage, split.t_max,
                    max_storage_bytes)
    return (core, factors, rel_err), split, float(cutoff), plan


def assemble_potential(setup: BuildSetup, coeffs, positions, charges, *, ranks=None, hooi_sweeps: int = 0,
                       atom_long=None, max_storage_bytes: int | None = None):
    """Tucker-compress summed coefficients and wrap them with the atoms into a potential.

    Parameters
    ----------
    setup : BuildSetup
    coeffs : (m1, m2, m3) array
        Long-range Chebyshev coefficients of all charges (sum over chunks).
    positions, charges : arrays of the whole structure
    ranks, hooi_sweeps : see :func:`build_potential`
    atom_long : (n_atoms,) array, optional
        Φ_L at every atom (self term included) from the build's grid.
    max_storage_bytes : int, optional
        Limit on the stored long range (:func:`fit_storage`); not applied with fixed ``ranks``.

    Returns
    -------
    potential : ChebyshevTuckerPotential
    seconds : float
        Time of the compression (and of any smaller-α rebuilds).
    """
    xp = namespace_of(coeffs)
    t0 = time.perf_counter()
    tolerance = setup.params["internal_tolerance"]
    compressed = compress_coefficients(coeffs, tolerance * TUCKER_MARGIN, ranks=ranks, hooi_sweeps=hooi_sweeps)
    log.info("tucker: m=%s ranks=%s rel_err=%.1e", setup.plan.degree, tuple(compressed[0].shape), compressed[2])
    split, cutoff, plan = setup.split, setup.cutoff, setup.plan
    if max_storage_bytes and ranks is None:
        compressed, split, cutoff, plan = fit_storage(setup, positions, charges, compressed,
                                                      max_storage_bytes=int(max_storage_bytes), hooi_sweeps=hooi_sweeps)
    core, factors, rel_err = compressed
    synchronize(xp)
    seconds = time.perf_counter() - t0
    params = dict(setup.params)
    params.update(ranks=[int(r) for r in core.shape], tucker_rel_error=float(rel_err), hooi_sweeps=int(hooi_sweeps),
                  max_storage_bytes=int(max_storage_bytes or 0), stored_alpha=float(split.t_max),
                  stored_cutoff=float(cutoff), stored_degree=list(plan.degree))
    potential = ChebyshevTuckerPotential(
        box_lo=setup.box_lo, box_hi=setup.box_hi, core=core, factors=factors, split=split, cutoff=cutoff,
        positions=positions, charges=charges, params=params,
        atom_long=None if atom_long is None else AtomLongRange(atom_long, setup.split, setup.cutoff),
        dielectric=setup.dielectric, cell=setup.cell,
    )
    return potential, seconds


def build_potential(
    positions,
    charges,
    *,
    tolerance: float = 1e-6,
    split: str = "ewald",
    alpha: float | None = None,
    cutoff: float | None = None,
    degree=None,
    ranks=None,
    hooi_sweeps: int = 0,
    box=None,
    padding: float = DEFAULT_PADDING,
    spacing: float | None = None,
    atom_values: bool = True,
    max_storage_bytes: int | None = DEFAULT_MAX_STORAGE_BYTES,
    dielectric: float = 1.0,
    kappa: float = 0.0,
    cell=None,
    accuracy_level: int = 0,
    max_memory_bytes: int | None = None,
    allow_large_span: bool = False,
):
    """Range-separated potential of point charges in the Chebyshev–Tucker format.

    Parameters
    ----------
    positions : (n_atoms, 3) float64 array (NumPy or CuPy), Å
    charges : (n_atoms,) float64 array, e
    tolerance : float
        Target relative accuracy ε in [1e-12, 1e-2] (errors relative to max |Φ| over the atoms).
    split : {"ewald", "gaussian-sum"}
    alpha : float, optional
        Split parameter, 1/Å (default: :func:`choose_alpha`, a cost model).
    cutoff : float, optional
        Short-range cutoff r_c, Å (default: :func:`choose_cutoff`).
    degree : int or 3 ints, optional
        Chebyshev nodes per axis (default: degree rule).
    ranks : 3 ints, optional
        Fixed Tucker ranks (default: tail rule with ε · :data:`~.parameters.TUCKER_MARGIN`).
    hooi_sweeps : int
        HOOI refinement sweeps after the HOSVD.
    box : pair of (3,) arrays, optional
        (lo, hi) of the Chebyshev box in Å (default: bounding box + ``padding``).
    padding : float
        Å added around the atoms for the default box.
    spacing : float, optional
        Override of the spreading-grid spacing, Å.
    atom_values : bool
        Also interpolate Φ_L at every atom from the uniform grid (N·P³, kept as
        ``potential.atom_long`` for :meth:`~ChebyshevTuckerPotential.at_atoms`).
    max_storage_bytes : int or None
        Limit on the stored long range (see the module Notes; None or 0: no limit). Not
        applied when ``ranks`` are fixed; a smaller-α stored form takes its Chebyshev sizes
        from the degree rule, whatever ``degree`` says. Not applied to periodic forms.
    dielectric : float
        Relative permittivity ε_r of the uniform medium; every kernel is divided by it.
    kappa : float
        Inverse Debye length κ, 1/Å; > 0 screens the kernel to e^{−κr}/r (Ewald split only).
    cell : (3, 3) array or box [a, b, c, α, β, γ], optional
        Periodic cell (rows are cell vectors, Å): a periodic (Ewald, tin-foil) sum over the
        cell's images, any position wrapped into it (see :mod:`.periodic`). None: free space.
    accuracy_level : int
        0 for the default plan; each level tightens the internal tolerances
        (:func:`~.parameters.internal_tolerances`), which a build whose self-check missed the
        tolerance is repaired with.
    max_memory_bytes : int, optional
        Refuse a build whose memory estimate exceeds this (default: the memory available now).
    allow_large_span : bool
        Accept atoms spanning more than :data:`MAX_SPAN_A` along an axis.

    Returns
    -------
    potential : ChebyshevTuckerPotential
    info : dict
        Parameters and per-step timings (seconds).
    """
    xp = namespace_of(positions, charges)
    timings = {}
    t0 = time.perf_counter()
    setup = prepare_build(positions, charges, tolerance=tolerance, split=split, alpha=alpha, cutoff=cutoff,
                          degree=degree, box=box, padding=padding, spacing=spacing, dielectric=dielectric,
                          kappa=kappa, cell=cell, accuracy_level=accuracy_level,
                          max_memory_bytes=max_memory_bytes, allow_large_span=allow_large_span)
    timings["parameters"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    coeffs, atom_long = long_range_parts(setup, positions, charges, targets=positions if atom_values else None)
    synchronize(xp)
    timings["long_range_coefficients"] = time.perf_counter() - t0
    log.info("long range: grid %s, coefficients %s%s in %.2fs", setup.plan.shape, tuple(coeffs.shape),
             f" and {positions.shape[0]} atoms" if atom_values else "", timings["long_range_coefficients"])

    potential, timings["tucker"] = assemble_potential(setup, coeffs, positions, charges, ranks=ranks,
                                                      hooi_sweeps=hooi_sweeps, atom_long=atom_long,
                                                      max_storage_bytes=max_storage_bytes)
    return potential, {"params": potential.params, "timings": timings}
