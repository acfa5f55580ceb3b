"""Build the report Dataset of a study from its stage outputs.

The report is one self-describing xarray Dataset (every variable and coordinate has ``units``
and ``long_name``; CF-1.10 global attributes).

Dimensions: ``structure`` (ids), ``potential_tolerance`` (requested relative accuracy),
``mode`` (3 Tucker modes), ``step`` (potential build steps), ``stage`` (rules), ``job``,
``method``, ``lmax``, ``pass``, ``device``, ``cell_axis`` (a, b, c), ``xyz``. Below,
S = structure, T = potential_tolerance.

==========================================  ==============  ==========================
variable                                    dims            units
==========================================  ==============  ==========================
n_atoms, n_dropped                          (S,)            1
net_charge                                  (S,)            e
charge_source, structure_format,            (S,)            1 (text)
structure_source
box_length / box_angle                      (S, cell_axis)  angstrom / degree (NaN: no box)
potential_max_rel_error,                    (S, T)          1
potential_rms_rel_error,
potential_max_rel_error_points,
potential_rms_rel_error_points,
potential_self_check_atoms,
potential_self_check_points,
potential_tolerance_exceeded
potential_alpha, potential_stored_alpha     (S, T)          1/angstrom
potential_cutoff                            (S, T)          angstrom
potential_storage                           (S, T)          byte
potential_energy                            (S, T)          e^2/angstrom
potential_device, potential_file            (S, T)          1 (text)
potential_ranks, potential_degree           (S, T, mode)    1
potential_time                              (S, T, step)    s (total: as recorded,
                                                            else the sum of the steps)
potential_dielectric, potential_periodic    (S, T)          1
potential_ionic_strength                    (S, T)          mol/L
potential_kappa                             (S, T)          1/angstrom
potential_debye_length                      (S, T)          angstrom (inf: no salt)
potential_temperature                       (S, T)          K
potential_background                        (S, T)          e/angstrom
potential_cell                              (S, T,          angstrom (rows a, b, c;
                                            cell_axis, xyz) NaN in free space)
stage_wall_time / stage_max_rss             (S, stage)      s / MiB
job_wall_time / job_max_rss                 (job,)          s / MiB
tp_<name>                                   as in the file  as in the file
descriptor_equivariance_error               (S, method)     as in the file
descriptor_gaunt_cg_difference_by_method    (S, method)     1
descriptor_time_product                     (S, method)     s
descriptor_fourier_grid_difference,         (S,)            1
descriptor_gaunt_cg_difference,
descriptor_equivariance_error_density,
descriptor_equivariance_error_potential,
descriptor_potential_projection_error
descriptor_time_total                       (S,)            s
==========================================  ==============  ==========================

Potentials are indexed by structure and requested tolerance, so a study that builds the
potential of a structure at several tolerances keeps every run. Missing values are NaN (numbers)
or ``""`` (text); numbers that may be missing (ranks, storage) are therefore float64. Variables of
an input kind that was not given are left out. Potential files written before the solvent and
periodic settings existed read as vacuum in free space (dielectric 1, ionic strength 0, not
periodic, no background term) at 298.15 K. Benchmark files ``<rule>/<target>.tsv`` whose
target is a structure id go to ``stage_*``; the others (tensor products, the report itself) to
``job_*``. The ``method`` coordinate is shared by the tensor-product and descriptor variables.

``method`` is also a keyword argument of :meth:`xarray.Dataset.sel` (as ``tolerance`` would be,
hence ``potential_tolerance``): select with a dict, ``report.sel({"method": "cg"})``.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import xarray as xr

from pipeline.reports.benchmarks import collect_benchmarks
from pipeline.reports.inputs import (
    read_descriptor_summary,
    read_potential_summary,
    read_structure_summary,
    read_tensor_products,
)
from pipeline.reports.variables import (
    COORDINATE_ATTRS,
    benchmark_variables,
    check_unique,
    descriptor_variables,
    potential_variables,
    structure_variables,
    tensor_product_variables,
    text_array,
)
from pipeline.storage import config_hash, provenance_attrs, sanitize_attrs

log = logging.getLogger(__name__)

REPORT_TITLE = "Range-separated electrostatics and equivariant tensor-product study"


def _check_inputs_exist(inputs: dict[str, Sequence[str | os.PathLike]], benchmarks_dir) -> None:
    missing = [f"{path} ({kind})" for kind, paths in inputs.items() for path in paths if not Path(path).is_file()]
    if benchmarks_dir is not None and not Path(benchmarks_dir).is_dir():
        missing.append(f"{benchmarks_dir} (benchmarks folder)")
    if missing:
        raise FileNotFoundError(f"missing report input(s): {'; '.join(missing)}")


def build_report(
    structures: Sequence[str | os.PathLike],
    potentials: Sequence[str | os.PathLike] = (),
    tensor_products: str | os.PathLike | None = None,
    descriptors: Sequence[str | os.PathLike] = (),
    benchmarks_dir: str | os.PathLike | None = None,
    config: dict | None = None,
    *,
    history: str = "pipeline.reports.datasets.build_report",
) -> xr.Dataset:
    """Aggregate a study's stage outputs into one self-describing Dataset.

    Parameters
    ----------
    structures : sequence of path-like
        Structure records ``results/structures/{id}.nc``; at least one. Their order is the
        order of the ``structure`` coordinate.
    potentials : sequence of path-like
        Potential files ``results/potential/{id}.nc``, each of a structure listed above.
    tensor_products : path-like or None
        The tensor-product study ``results/tensor_products.nc``.
    descriptors : sequence of path-like
        Descriptor files ``results/descriptors/{id}.nc``.
    benchmarks_dir : path-like or None
        Folder of Snakemake benchmark files ``<rule>/<target>.tsv``.
    config : dict or None
        The study configuration; stored as JSON with its hash.
    history : str
        Command recorded in the ``history`` attribute, after a UTC time stamp.

    Returns
    -------
    xarray.Dataset
        The variables of the module docstring, coordinates ``structure`` and ``cell_axis`` (and,
        with the matching inputs, ``potential_tolerance``, ``mode`` (3), ``step``, ``xyz``,
        ``stage``, ``job``, ``method``, ``lmax``, ``pass``, ``device``), CF-1.10 global
        attributes and provenance.

    Raises
    ------
    FileNotFoundError
        Naming every listed input that does not exist.
    ValueError
        When an input lacks an essential variable, two inputs describe the same item, a
        potential or descriptor file belongs to no listed structure, or atom counts disagree.
    """
    if not structures:
        raise ValueError("a report needs at least one structure record")
    inputs = {
        "structure": [str(p) for p in structures],
        "potential": [str(p) for p in potentials],
        "tensor products": [str(tensor_products)] if tensor_products is not None else [],
        "descriptors": [str(p) for p in descriptors],
    }
    _check_inputs_exist(inputs, benchmarks_dir)

    structure_records = [read_structure_summary(p) for p in structures]
    check_unique(structure_records, "structure_id", "structure")
    ids = [r.structure_id for r in structure_records]
    data_vars, more = structure_variables(structure_records)
    coords: dict[str, tuple] = {"structure": ("structure", text_array(ids)), **more}
    log.info("report: %d structure(s), %d atoms in all", len(ids), sum(r.n_atoms for r in structure_records))

    potential_records = [read_potential_summary(p) for p in potentials]
    if potential_records:
        n_atoms = {r.structure_id: r.n_atoms for r in structure_records}
        variables, more = potential_variables(potential_records, ids, n_atoms)
        data_vars.update(variables)
        coords.update(more)
        tolerances = sorted({r.tolerance for r in potential_records})
        log.info("report: %d potential(s) at tolerance(s) %s", len(potential_records), tolerances)

    if benchmarks_dir is not None:
        variables, more = benchmark_variables(collect_benchmarks(benchmarks_dir), ids)
        data_vars.update(variables)
        coords.update(more)

    descriptor_records = [read_descriptor_summary(p) for p in descriptors]
    tp = read_tensor_products(tensor_products) if tensor_products is not None else None
    methods = [str(m) for m in tp["method"].values] if tp is not None else []
    methods += [m for r in descriptor_records for m in r.methods if m not in methods]
    methods = list(dict.fromkeys(methods))
    if tp is not None:
        variables, more = tensor_product_variables(tp, str(tensor_products), methods)
        data_vars.update(variables)
        coords.update(more)
        log.info("report: tensor products %s over %s", sorted(tp.data_vars), dict(tp.sizes))
    if descriptor_records:
        data_vars.update(descriptor_variables(descriptor_records, ids, methods))
        coords.setdefault("method", ("method", text_array(methods)))
        log.info("report: descriptors of %d structure(s)", len(descriptor_records))

    report = xr.Dataset(data_vars, coords=coords)
    for name in report.coords:
        units, long_name = COORDINATE_ATTRS.get(str(name), ("1", str(name)))
        report[name].attrs = {"units": units, "long_name": long_name, **report[name].attrs}
    for name in report.variables:
        report[name].attrs = sanitize_attrs(report[name].attrs)
    report.attrs = sanitize_attrs(_global_attrs(config, inputs, benchmarks_dir, history, potential_records, tp))
    return report


def _global_attrs(config, inputs, benchmarks_dir, history, potential_records, tp) -> dict[str, Any]:
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()
    devices = sorted({r.device for r in potential_records if r.device})
    if tp is not None and "device" in tp.coords:
        devices = sorted(set(devices) | {str(d) for d in tp["device"].values})
    attrs = {
        "title": REPORT_TITLE,
        "Conventions": "CF-1.10",
        "history": f"{now}: {history}",
        "source": "pipeline report stage: aggregated structure, potential, tensor-product and descriptor outputs",
        "date_created": now,
        "comment": "Missing values are NaN (numbers) or empty strings (text).",
        "config_hash": config_hash(config if config is not None else {}),
        "config": json.dumps(config if config is not None else {}, sort_keys=True, default=str),
        "input_files": json.dumps({**inputs, "benchmarks": str(benchmarks_dir) if benchmarks_dir else ""}),
        "backend": "numpy",
        "dtype": "float64",
        "devices": json.dumps(devices),
    }
    if tp is not None:
        tp_attrs = {k: getattr(v, "tolist", lambda: v)() for k, v in tp.attrs.items() if k != "package_versions"}
        attrs["tensor_products_attrs"] = json.dumps(tp_attrs, default=str)
    attrs.update(provenance_attrs())
    return attrs
