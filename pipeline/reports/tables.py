"""Format a report Dataset as plain-text tables for the terminal (``python -m pipeline summary``).

Sections, each present only when the report holds its variables: structures, potentials
(one row per structure and requested tolerance), their parameters, their solvent model and
boundary conditions (one row per structure and distinct model), potential build steps, stage runtimes from
the Snakemake benchmarks, other jobs, tensor products (one row per method, L, pass and
device) and descriptors. Numbers are printed with 4 significant digits; missing values as
``-``. Tables are drawn by ``tabulate``.
"""

from __future__ import annotations

import json
import math
from itertools import product
from typing import Any

import numpy as np
import xarray as xr
from tabulate import tabulate

TABLE_FORMAT = "simple"


def _cell(value: Any) -> Any:
    if isinstance(value, (float, np.floating)):
        return "-" if math.isnan(value) else f"{value:.4g}"
    if isinstance(value, np.integer):
        return int(value)
    return "-" if value == "" else value


def _table(title: str, headers: list[str], rows: list[list[Any]]) -> str:
    body = tabulate([[_cell(v) for v in row] for row in rows], headers=headers, tablefmt=TABLE_FORMAT, disable_numparse=True)
    return f"{title}\n{'-' * len(title)}\n{body}\n"


def _units(report: xr.Dataset, name: str) -> str:
    units = report[name].attrs.get("units", "")
    return "" if units in ("", "1") else f" ({units})"


def _bytes(value: float) -> str:
    if math.isnan(value):
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return "-"


def _sci(value: float) -> str:
    return np.format_float_scientific(value, precision=3, trim="-", exp_digits=1)


def _ranks(values: np.ndarray) -> str:
    if np.isnan(values).any():
        return "-"
    return "x".join(str(int(v)) for v in values)


def _box(lengths: np.ndarray, angles: np.ndarray) -> str:
    """``a b c / α β γ`` with 4 significant digits, ``-`` without a box."""
    if np.isnan(lengths).any():
        return "-"
    return f"{' '.join(f'{v:.4g}' for v in lengths)} / {' '.join(f'{v:.4g}' for v in angles)}"


def structures_table(report: xr.Dataset) -> str:
    """One row per structure: atoms, format, charge source, net charge, periodic box."""
    has_box = "box_length" in report
    rows = [
        [sid, report["n_atoms"].values[i], report["structure_format"].values[i], report["charge_source"].values[i],
         float(report["net_charge"].values[i]), report["n_dropped"].values[i]]
        + ([_box(report["box_length"].values[i], report["box_angle"].values[i])] if has_box else [])
        for i, sid in enumerate(report["structure"].values)
    ]
    headers = ["structure", "atoms", "format", "charge source", "net charge (e)", "dropped"]
    return _table("Structures", headers + (["box a b c (Å) / α β γ (°)"] if has_box else []), rows)


def _potential_rows(report: xr.Dataset):
    """(structure id, tolerance, values by variable name) for every run present in the report."""
    names = [name for name in report.data_vars if name.startswith("potential_")]
    for i, sid in enumerate(report["structure"].values):
        for j, tol in enumerate(report["potential_tolerance"].values):
            values = {name: report[name].isel({"structure": i, "potential_tolerance": j}).values for name in names}
            if values["potential_file"] != "":
                yield sid, float(tol), values


def potentials_table(report: xr.Dataset) -> str:
    """One row per (structure, tolerance) with a potential: self-check errors, ranks, storage, time."""
    has_total = "step" in report.coords and "total" in report["step"].values
    rows = []
    for sid, tol, values in _potential_rows(report):
        exceeded = float(values["potential_tolerance_exceeded"])
        total = values["potential_time"][list(report["step"].values).index("total")] if has_total else math.nan
        rows.append([
            sid, _sci(tol), float(values["potential_self_check_atoms"]), float(values["potential_max_rel_error"]),
            float(values["potential_rms_rel_error"]), float(values["potential_max_rel_error_points"]),
            "-" if math.isnan(exceeded) else ("yes" if exceeded else "no"), _ranks(values["potential_ranks"]),
            _bytes(float(values["potential_storage"])), float(total), str(values["potential_device"]),
        ])
    headers = ["structure", "tolerance", "atoms checked", "max rel err", "rms rel err", "max rel err (points)",
               "flagged", "ranks", "storage", "total (s)", "device"]
    return _table("Potentials (self-check against direct summation or a plain Ewald sum)", headers, rows)


def potential_parameters_table(report: xr.Dataset) -> str:
    """One row per (structure, tolerance) with a potential: the atoms' alpha and cutoff, the stored
    form's alpha and nodes per axis, energy."""
    rows = [
        [sid, _sci(tol), float(values["potential_alpha"]), float(values["potential_cutoff"]),
         float(values["potential_stored_alpha"]), _ranks(values["potential_degree"]), float(values["potential_energy"])]
        for sid, tol, values in _potential_rows(report)
    ]
    headers = ["structure", "tolerance", f"alpha{_units(report, 'potential_alpha')}",
               f"cutoff{_units(report, 'potential_cutoff')}", f"stored alpha{_units(report, 'potential_stored_alpha')}",
               "stored nodes per axis", f"energy{_units(report, 'potential_energy')}"]
    return _table("Potential parameters", headers, rows)


#: Columns of the solvent and boundary table: report variable and header label.
MEDIUM_COLUMNS = {
    "potential_dielectric": "eps_r",
    "potential_ionic_strength": "I",
    "potential_kappa": "kappa",
    "potential_debye_length": "Debye length",
    "potential_temperature": "T",
    "potential_periodic": "periodic",
    "potential_background": "background",
}


def medium_table(report: xr.Dataset) -> str:
    """One row per structure and distinct solvent model: ε_r, I, κ, Debye length, T, periodic,
    background term, with the tolerances of the potentials that share it (``lo…hi (count)``)."""
    groups: dict[tuple, list[float]] = {}
    for sid, tol, values in _potential_rows(report):
        key = (sid, *(float(values[name]) for name in MEDIUM_COLUMNS))
        groups.setdefault(key, []).append(tol)
    rows = []
    for (sid, *numbers), tolerances in groups.items():
        cells = dict(zip(MEDIUM_COLUMNS, numbers))
        periodic = cells["potential_periodic"]
        cells["potential_periodic"] = "-" if math.isnan(periodic) else ("yes" if periodic else "no")
        temperature = cells["potential_temperature"]  # 298.15 K needs 5 digits
        cells["potential_temperature"] = "-" if math.isnan(temperature) else f"{temperature:.5g}"
        low, high = min(tolerances), max(tolerances)
        runs = _sci(low) if len(tolerances) == 1 else f"{_sci(low)}…{_sci(high)} ({len(tolerances)})"
        rows.append([sid, runs, *cells.values()])
    headers = ["structure", "tolerance", *(f"{label}{_units(report, name)}" for name, label in MEDIUM_COLUMNS.items())]
    return _table("Solvent and boundary conditions of the potentials", headers, rows)


def steps_table(report: xr.Dataset) -> str:
    """Seconds per potential build step, one row per (structure, tolerance)."""
    time = report["potential_time"]
    rows = []
    for i, sid in enumerate(report["structure"].values):
        for j, tol in enumerate(report["potential_tolerance"].values):
            values = time.isel({"structure": i, "potential_tolerance": j}).values
            if not np.isnan(values).all():
                rows.append([sid, _sci(tol), *(float(v) for v in values)])
    return _table("Potential build steps (s)", ["structure", "tolerance", *map(str, report["step"].values)], rows)


def stages_table(report: xr.Dataset) -> str:
    """Wall time and peak memory per structure and workflow stage."""
    stages = [str(s) for s in report["stage"].values]
    headers = ["structure", *(f"{s} (s / MiB)" for s in stages)]
    rows = []
    for i, sid in enumerate(report["structure"].values):
        cells = []
        for k in range(len(stages)):
            wall = float(report["stage_wall_time"].values[i, k])
            rss = float(report["stage_max_rss"].values[i, k])
            cells.append("-" if math.isnan(wall) and math.isnan(rss) else f"{_cell(wall)} / {_cell(rss)}")
        rows.append([sid, *cells])
    return _table("Stage runtimes (Snakemake benchmarks)", headers, rows)


def jobs_table(report: xr.Dataset) -> str:
    """Wall time and peak memory of the jobs not tied to one structure."""
    rows = [[job, float(report["job_wall_time"].values[k]), float(report["job_max_rss"].values[k])]
            for k, job in enumerate(report["job"].values)]
    return _table("Other jobs (Snakemake benchmarks)", ["job", "wall (s)", "max RSS (MiB)"], rows)


def tensor_products_table(report: xr.Dataset) -> str:
    """One row per combination of the tensor-product dimensions, one column per ``tp_`` variable."""
    names = [name for name in report.data_vars if name.startswith("tp_")]
    dims = list(dict.fromkeys(d for name in names for d in report[name].dims))
    rows = []
    for labels in product(*(range(report.sizes[d]) for d in dims)):
        at = dict(zip(dims, labels))
        cells = []
        for name in names:
            variable = report[name].isel({d: at[d] for d in report[name].dims})
            value = variable.values.item() if variable.ndim == 0 else math.nan
            cells.append(float(value) if isinstance(value, (int, float, np.number)) else value)
        if all(isinstance(c, float) and math.isnan(c) for c in cells):
            continue
        rows.append([report[d].values[at[d]] for d in dims] + cells)
    headers = dims + [f"{name[3:]}{_units(report, name)}" for name in names]
    return _table("Tensor products", headers, rows)


def descriptors_table(report: xr.Dataset) -> str:
    """Equivariance error per method and method agreement, one row per structure with descriptors."""
    error = report["descriptor_equivariance_error"]
    methods = [str(m) for m in report["method"].values]
    extra = {
        "descriptor_equivariance_error_density": "equiv. err density",
        "descriptor_equivariance_error_potential": "equiv. err potential",
        "descriptor_fourier_grid_difference": "fourier vs grid",
        "descriptor_gaunt_cg_difference": "gaunt vs CG",
        "descriptor_time_total": "time (s)",
    }
    extra = {name: label for name, label in extra.items() if name in report}
    rows = []
    for i, sid in enumerate(report["structure"].values):
        values = error.values[i]
        if np.isnan(values).all():
            continue
        rows.append([sid, *(float(v) for v in values), *(float(report[name].values[i]) for name in extra)])
    headers = ["structure", *(f"equiv. err {m}" for m in methods), *extra.values()]
    return _table("Descriptors (relative errors)", headers, rows)


def trajectories_table(report: xr.Dataset) -> str:
    """One row per trajectory: frames, atoms, mean and std of the energy, frames per second (and descriptor frames)."""
    descriptors = "trajectory_descriptor_frames" in report and bool(np.any(report["trajectory_descriptor_frames"].values))
    rows = [
        [sid, report["trajectory_n_frames"].values[i], report["trajectory_n_atoms"].values[i],
         float(report["trajectory_energy_mean"].values[i]), float(report["trajectory_energy_std"].values[i]),
         float(report["trajectory_speed"].values[i]),
         *([int(report["trajectory_descriptor_frames"].values[i]),
            float(report["trajectory_descriptor_equivariance_error"].values[i])] if descriptors else [])]
        for i, sid in enumerate(report["trajectory"].values)
    ]
    headers = ["trajectory", "frames", "atoms", "energy mean (e^2/A)", "energy std (e^2/A)", "frames/s"]
    if descriptors:
        headers += ["descriptor frames", "descriptor equiv. err"]
    return _table("Trajectories", headers, rows)


def missing_table(report: xr.Dataset) -> str:
    """Expected structures without results and why."""
    rows = [[sid, why] for sid, why in zip(report["missing_structure"].values, report["missing_reason"].values)]
    return _table("Missing structures", ["structure", "reason"], rows)


def format_summary(report: xr.Dataset) -> str:
    """The whole report as text: a header line, then one table per section present.

    Parameters
    ----------
    report : xarray.Dataset
        A report built by :func:`pipeline.reports.datasets.build_report`.

    Returns
    -------
    str
        Lines separated by newlines, ending with a newline.
    """
    if "n_atoms" not in report or "structure" not in report.coords:
        raise ValueError("not a study report: variable 'n_atoms' over 'structure' is missing")
    attrs = report.attrs
    header = (
        f"{attrs.get('title', 'Study report')}\n"
        f"pipeline {attrs.get('pipeline_version', '?')}, config {attrs.get('config_hash', '?')}, "
        f"created {attrs.get('date_created', '?')}, devices {', '.join(json.loads(attrs.get('devices', '[]'))) or '-'}\n"
    )
    sections = [header, structures_table(report)]
    if "potential_max_rel_error" in report:
        sections.append(potentials_table(report))
        sections.append(potential_parameters_table(report))
        if "potential_dielectric" in report:
            sections.append(medium_table(report))
        if "potential_time" in report and report.sizes.get("step", 0):
            sections.append(steps_table(report))
    if "stage_wall_time" in report:
        sections.append(stages_table(report))
    if "job_wall_time" in report:
        sections.append(jobs_table(report))
    if any(name.startswith("tp_") for name in report.data_vars):
        sections.append(tensor_products_table(report))
    if "descriptor_equivariance_error" in report:
        sections.append(descriptors_table(report))
    if "trajectory_energy_mean" in report and report.sizes.get("trajectory", 0):
        sections.append(trajectories_table(report))
    if "missing_reason" in report and report.sizes.get("missing_structure", 0):
        sections.append(missing_table(report))
    return "\n".join(sections)
