#!/usr/bin/env python
"""Plant small bugs in a copy of the code and check that the tests chosen for each one catch it.

Every entry of :data:`MUTATIONS` names a change to the numerical core, storage or validation:
one exact snippet of one file, its replacement, and the pytest node ids that must fail with it.
The package and the tests are copied once to a temporary folder, where every selected test
must pass unchanged (the baseline, which also fills the Numba caches of that copy). For each
entry that copy is copied again (file times kept, so the compiled caches of unchanged modules stay
valid), the snippet is replaced there, and ``python -m pytest -x -q -p no:cacheprovider <ids>``
runs in it with PYTHONPATH pointing at it. The mutation is caught when pytest reports a failing
test (exit status 1); an import error, a missing test id or a time-out is an error, not a catch.

Prints a table (mutation, tests run, caught, seconds) and exits with status 1 when a mutation
survives, errs, or its snippet is not found exactly once in its file (the code moved: the entry
must be re-targeted), or when the baseline fails.

Usage::

    python scripts/mutation_check.py              # every mutation (a few minutes on 2 cores)
    python scripts/mutation_check.py --list       # names, files and tests, nothing run
    python scripts/mutation_check.py --only NAME  # one or more named mutations (repeatable)
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("mutation_check")

ROOT = Path(__file__).resolve().parent.parent
#: What a test run needs from the repository; copied for every mutation.
COPIED = ("pipeline", "tests", "pyproject.toml")
#: Seconds one mutation's test run may take before it counts as an error.
TIMEOUT_S = 300

ACC = "tests/test_electrostatics_accuracy.py"
RULES = "tests/test_electrostatics_rules.py"
SELF = "tests/test_electrostatics_selfcheck.py"
STORE = "tests/test_storage.py"
DESC = "tests/test_descriptors_validation.py"


@dataclass(frozen=True)
class Mutation:
    """One planted bug: replace ``old`` (exactly once in ``file``) by ``new``; ``tests`` must fail."""

    name: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...]


MUTATIONS = (
    Mutation(
        "Ewald short range erfc(1.01 ar)/r",
        "pipeline/electrostatics/splitting.py",
        "        return special.erfc(self.alpha * r) / r\n",
        "        return special.erfc(1.01 * self.alpha * r) / r\n",
        ("tests/test_electrostatics_kernels.py::test_short_range_sums_match_brute_force",
         f"{ACC}::test_random_cloud_vs_direct"),
    ),
    Mutation(
        "Gaussian window sigma x 1.01 (gather, CuPy spreading)",
        "pipeline/electrostatics/gridding.py",
        "    return xp.exp(-0.5 * (d / plan.sigma) ** 2) / (math.sqrt(2 * math.pi) * plan.sigma)\n",
        "    return xp.exp(-0.5 * (d / (1.01 * plan.sigma)) ** 2) / (math.sqrt(2 * math.pi) * plan.sigma)\n",
        (f"{ACC}::test_coefficients_are_linear_in_charges", f"{ACC}::test_random_cloud_vs_direct"),
    ),
    Mutation(
        "Periodic window transform with beta x 1.01 (deconvolution off the window)",
        "pipeline/electrostatics/periodic.py",
        "    integrand = np.exp(plan.beta * (np.cos(theta) - 1.0))",
        "    integrand = np.exp(1.01 * plan.beta * (np.cos(theta) - 1.0))",
        ("tests/test_electrostatics_periodic.py::test_madelung_constants_from_one_cell",
         "tests/test_electrostatics_periodic.py::test_window_transform_against_adaptive_quadrature"),
    ),
    Mutation(
        "Tucker rank one below the tail rule",
        "pipeline/electrostatics/tucker.py",
        "            rank = r\n            break\n",
        "            rank = r - 1\n            break\n",
        (f"{ACC}::test_random_cloud_vs_direct", f"{RULES}::test_tucker_ranks_satisfy_the_tail_rule"),
    ),
    Mutation(
        "Tucker error margin 0.5 -> 2 (budget)",
        "pipeline/electrostatics/parameters.py",
        "TUCKER_MARGIN = 0.5\n",
        "TUCKER_MARGIN = 2.0\n",
        (f"{ACC}::test_random_cloud_vs_direct",),
    ),
    Mutation(
        "short-range cutoff rule erfc(a rc) = eps, not 0.1 eps",
        "pipeline/electrostatics/parameters.py",
        "CUTOFF_MARGIN = 0.1\n",
        "CUTOFF_MARGIN = 1.0\n",
        (f"{RULES}::test_error_budget_of_the_plan_is_within_the_tolerance", f"{ACC}::test_random_cloud_vs_direct"),
    ),
    Mutation(
        "short-range cutoff x 0.9 in the cell-list kernel",
        "pipeline/electrostatics/short_range.py",
        "pot_sorted = _self_sum(xs, ys, zs, q, n, start, origin, cell, slab, nc, float(cutoff), table,",
        "pot_sorted = _self_sum(xs, ys, zs, q, n, start, origin, cell, slab, nc, 0.9 * float(cutoff), table,",
        (f"{ACC}::test_random_cloud_vs_direct",),
    ),
    Mutation(
        "field: Chebyshev derivative scale x 1.001",
        "pipeline/electrostatics/potential.py",
        "            scale = 2.0 / (self.box_hi[k] - self.box_lo[k])\n",
        "            scale = 2.002 / (self.box_hi[k] - self.box_lo[k])\n",
        (f"{ACC}::test_field_vs_finite_differences_and_direct",),
    ),
    Mutation(
        "SH sign of m < 0 at l = 3",
        "pipeline/equivariant/spherical_harmonics.py",
        "                out[:, l * l + l - m] = poly[m, l] * sin_m\n",
        "                out[:, l * l + l - m] = (-1.0 if l == 3 else 1.0) * poly[m, l] * sin_m\n",
        ("tests/test_equivariant_sh.py::test_convention_closed_forms_l2_to_l4",
         "tests/test_equivariant_sh.py::test_matches_scipy_complex_sh_l2_to_l4"),
    ),
    Mutation(
        "Gaunt S2 grid one ring short",
        "pipeline/equivariant/s2grid.py",
        "    return d // 2 + 1, d + 1\n",
        "    return d // 2, d + 1\n",
        ("tests/test_equivariant_products.py::test_grid_equals_fourier_equals_explicit_gaunt",),
    ),
    Mutation(
        "compiled vector-Gaunt bracket adds instead of subtracting",
        "pipeline/equivariant/chunk_kernels.py",
        "        o[0, i] = p_c - (c1 * c2 + z1 * z2)\n",
        "        o[0, i] = p_c + (c1 * c2 + z1 * z2)\n",
        ("tests/test_equivariant_products.py::test_cross_product_conventions",),
    ),
    Mutation(
        "self-check: atom values compared with themselves",
        "pipeline/electrostatics/selfcheck.py",
        "    max_a, rms_a = _errors(atom_values[idx_x], ref, scale)\n",
        "    max_a, rms_a = _errors(atom_values[idx_x], atom_values[idx_x], scale)\n",
        (f"{SELF}::test_scaled_core_is_reported_at_atoms_and_points",),
    ),
    Mutation(
        "self-check: point values compared with themselves",
        "pipeline/electrostatics/selfcheck.py",
        "        max_p, rms_p = _errors(point_values, ref_points, scale)\n",
        "        max_p, rms_p = _errors(point_values, point_values, scale)\n",
        (f"{SELF}::test_scaled_core_is_reported_at_atoms_and_points",),
    ),
    Mutation(
        "self-check: representation at atoms compared with itself",
        "pipeline/electrostatics/selfcheck.py",
        "    max_r = _errors(values[: idx.size], ref, scale)[0] if with_atoms else None\n",
        "    max_r = _errors(values[: idx.size], values[: idx.size], scale)[0] if with_atoms else None\n",
        (f"{SELF}::test_damaged_representation_is_flagged_although_atom_values_are_good",),
    ),
    Mutation(
        "self-check: tolerance_exceeded forced to 0",
        "pipeline/electrostatics/selfcheck.py",
        "    exceeded = int(worst > tolerance)\n",
        "    exceeded = 0\n",
        (f"{SELF}::test_scaled_core_is_reported_at_atoms_and_points",),
    ),
    Mutation(
        "self-check: errors scaled by the values, not the reference",
        "pipeline/electrostatics/selfcheck.py",
        "    scale = float(np.max(np.abs(to_host(ref)))) if idx.size else math.nan\n",
        "    scale = float(np.max(np.abs(to_host(atom_values[idx_x])))) if idx.size else math.nan\n",
        (f"{SELF}::test_undamaged_potential_passes_with_the_same_errors",
         f"{SELF}::test_scaled_core_is_reported_at_atoms_and_points"),
    ),
    Mutation(
        "self-check: map compared with itself",
        "pipeline/electrostatics/selfcheck.py",
        "        max_m = _errors(potential.grid(*axes).reshape(-1), ref_map, scale)[0]\n",
        "        max_m = _errors(ref_map, ref_map, scale)[0]\n",
        (f"{SELF}::test_scaled_core_is_reported_at_atoms_and_points",),
    ),
    Mutation(
        "stage: a build that misses the tolerance is kept without repair or error",
        "pipeline/electrostatics/stage.py",
        "        if not _missed(check, settings):\n            break\n",
        "        break\n",
        (f"{SELF}::test_missed_tolerance_fails_after_the_repairs_and_writes_nothing",),
    ),
    Mutation(
        "netCDF written straight to the final path",
        "pipeline/storage.py",
        '        dataset.to_netcdf(tmp_name, engine="netcdf4", encoding=encoding)\n',
        '        dataset.to_netcdf(path, engine="netcdf4", encoding=encoding)\n',
        (f"{STORE}::test_crash_part_way_leaves_the_existing_file_unchanged",),
    ),
    Mutation(
        "temporary file of a failed netCDF write left behind",
        "pipeline/storage.py",
        "        _publish(tmp_name, path)\n    except BaseException:\n        Path(tmp_name).unlink(missing_ok=True)\n",
        "        _publish(tmp_name, path)\n    except BaseException:\n        pass\n",
        (f"{STORE}::test_crash_part_way_leaves_no_file_when_there_was_none",),
    ),
    Mutation(
        "NaN-coordinate check disabled",
        "pipeline/structures/validation.py",
        "    if not finite.all():\n",
        "    if False:\n",
        ("tests/test_structures_validation.py::test_nan_coordinate_names_the_atom",),
    ),
    Mutation(
        "descriptor validation without the inversion",
        "pipeline/descriptors/validation.py",
        "    improper = -rotation  # rotation followed by inversion",
        "    improper = rotation.copy()  # rotation followed by inversion",
        (f"{DESC}::test_wrong_parity_label_gives_a_large_equivariance_error",
         f"{DESC}::test_odd_path_sign_gives_a_large_equivariance_error"),
    ),
    Mutation(
        "descriptor validation ignores the output parity",
        "pipeline/descriptors/validation.py",
        "        sign = b.parity if det < 0 else 1.0\n",
        "        sign = 1.0\n",
        (f"{DESC}::test_equivariance_error_below_1e10_with_band_limited_potential",),
    ),
    Mutation(
        "device density: pair vector neighbour -> centre",
        "pipeline/descriptors/density_array.py",
        "        d = cells.positions[src] - centres[t0:t1][tgt]  # centre → neighbour\n",
        "        d = centres[t0:t1][tgt] - cells.positions[src]  # centre → neighbour\n",
        ("tests/test_descriptors_device.py::test_array_density_matches_compiled_kernel_and_double_loop",),
    ),
    Mutation(
        "sphere potential: last centre of each batch left out",
        "pipeline/descriptors/projection.py",
        "        hi = min(lo + batch, n_centres)\n        values = values_of(lo, hi)\n",
        "        hi = min(lo + batch - 1, n_centres)\n        values = values_of(lo, hi)\n",
        ("tests/test_descriptors_device.py::test_no_transfers_inside_chunk_loops",),
    ),
    Mutation(
        "compiled sphere projection: local values reordered ring-last",
        "pipeline/descriptors/sphere_kernels.py",
        "                        right_t[a, j * n3 + r] = right[j, a, r]\n",
        "                        right_t[a, r * n_rings + j] = right[j, a, r]\n",
        ("tests/test_descriptors_projection.py::test_sphere_projection_over_several_chunks_matches_pointwise_quadrature",),
    ),
)


@dataclass
class Outcome:
    mutation: Mutation
    status: str  # "yes", "NO", or what went wrong
    seconds: float


def _copy_tree(origin: Path, destination: Path) -> None:
    """Copy what the tests need from ``origin``, keeping file times (Python and Numba caches stay valid)."""
    for name in COPIED:
        source = origin / name
        if source.is_dir():
            shutil.copytree(source, destination / name, ignore=shutil.ignore_patterns(".pytest_cache"))
        else:
            shutil.copy2(source, destination / name)


def _environment(copy: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(copy)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def _pytest(copy: Path, tests: tuple[str, ...]) -> tuple[int, str]:
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    try:
        result = subprocess.run(command, cwd=copy, env=_environment(copy), capture_output=True, text=True,
                                timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return -1, f"timed out after {TIMEOUT_S} s"
    return result.returncode, (result.stdout + result.stderr).strip()


def _matches(mutation: Mutation) -> int:
    path = ROOT / mutation.file
    return path.read_text().count(mutation.old) if path.is_file() else 0


def check_baseline(base: Path, mutations: tuple[Mutation, ...]) -> bool:
    """Every selected test passes in the unchanged copy ``base``, and its package is the one imported."""
    tests = tuple(dict.fromkeys(t for m in mutations for t in m.tests))
    probe = subprocess.run([sys.executable, "-c", "import pipeline; print(pipeline.__file__)"], cwd=base,
                           env=_environment(base), capture_output=True, text=True)
    imported = Path(probe.stdout.strip() or "?").resolve()
    if base.resolve() not in imported.parents:
        log.error("the copy's package is not the one imported (got %s): check PYTHONPATH and installs", imported)
        return False
    start = time.perf_counter()
    code, output = _pytest(base, tests)
    if code != 0:
        log.error("baseline FAILED: the selected tests do not pass on the unchanged code\n%s", output[-4000:])
        return False
    log.info("baseline: %d test ids pass unchanged (%.1f s)", len(tests), time.perf_counter() - start)
    return True


def run_one(mutation: Mutation, base: Path = ROOT) -> Outcome:
    """Apply ``mutation`` in a fresh copy of ``base`` and run its tests."""
    found = _matches(mutation)
    if found != 1:
        return Outcome(mutation, f"snippet found {found}x in {mutation.file}: the code moved", 0.0)
    with tempfile.TemporaryDirectory(prefix="mutation-") as tmp:
        copy = Path(tmp)
        _copy_tree(base, copy)
        target = copy / mutation.file
        target.write_text(target.read_text().replace(mutation.old, mutation.new, 1))
        start = time.perf_counter()
        code, output = _pytest(copy, mutation.tests)
        seconds = time.perf_counter() - start
    if code == 1:
        return Outcome(mutation, "yes", seconds)
    if code == 0:
        return Outcome(mutation, "NO", seconds)
    log.error("%s: pytest exit status %d\n%s", mutation.name, code, output[-3000:])
    return Outcome(mutation, f"error (pytest exit {code})", seconds)


def _short(test: str) -> str:
    file, _, name = test.partition("::")
    return f"{Path(file).stem.removeprefix('test_')}::{name}" if name else Path(file).stem


def print_table(outcomes: list[Outcome]) -> None:
    rows = [("mutation", "tests run", "caught", "seconds")]
    for o in outcomes:
        tests = ", ".join(_short(t) for t in o.mutation.tests)
        rows.append((o.mutation.name, tests, o.status, f"{o.seconds:.1f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for i, row in enumerate(rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="Example: python scripts/mutation_check.py")
    parser.add_argument("--only", action="append", metavar="NAME", help="run only the named mutation(s)")
    parser.add_argument("--list", action="store_true", help="list the mutations and their tests, run nothing")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stderr)
    mutations = MUTATIONS
    if args.only:
        unknown = sorted(set(args.only) - {m.name for m in MUTATIONS})
        if unknown:
            parser.error(f"unknown mutation(s) {unknown}; known: {[m.name for m in MUTATIONS]}")
        mutations = tuple(m for m in MUTATIONS if m.name in args.only)
    if args.list:
        for m in mutations:
            print(f"{m.name}\n    {m.file}\n    " + "\n    ".join(m.tests))
        return 0
    start = time.perf_counter()
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="mutation-base-") as tmp:
        base = Path(tmp)
        _copy_tree(ROOT, base)
        if not check_baseline(base, mutations):
            return 1
        for m in mutations:
            outcome = run_one(m, base)
            log.info("%-55s caught: %s (%.1f s)", m.name, outcome.status, outcome.seconds)
            outcomes.append(outcome)
    print_table(outcomes)
    bad = [o for o in outcomes if o.status != "yes"]
    print(f"\n{len(outcomes) - len(bad)} of {len(outcomes)} mutations caught in {time.perf_counter() - start:.0f} s")
    for o in bad:
        print(f"FAILED: {o.mutation.name}: {o.status}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
