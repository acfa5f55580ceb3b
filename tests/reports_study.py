"""A tiny hand-made study for the report tests: stage outputs written with the contract names.

Nothing here calls the stages themselves; the files follow the contracts of the structure,
potential, tensor-product and descriptor stages, and the benchmark files are written by
Snakemake's own benchmark writer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from pipeline.storage import write_netcdf

#: Values written into the study, checked by the tests after aggregation.
STRUCTURES = {
    # id: (charges in e, charge_source, format)
    "alpha": ([0.5, -0.25, 0.25, 0.75, -0.25], "file", "PQR"),
    "beta": ([1.0, -1.0] * 4, "lattice", "lattice"),
}
POTENTIALS = {
    # (id, tolerance): attributes beyond structure_id and tolerance
    ("alpha", 1e-4): dict(
        alpha=0.31, cutoff=9.0, degree=24, ranks=[4, 5, 6], storage_bytes=12345, energy=-1.5,
        self_check_max_rel_error=3.5e-5, self_check_rms_rel_error=1.25e-5, tolerance_exceeded=0,
        device="cpu", time_short_range_s=0.5, time_long_range_s=1.5, time_compress_s=0.25, time_total_s=2.25,
    ),
    # the names the potential stage writes today: errors at atoms and points, degree per axis,
    # energy as a 0-d variable, backend instead of device, no total time (the report sums the steps),
    # solvent model and periodic cell (a net-charged triclinic cell in salt water)
    ("alpha", 1e-6): dict(
        alpha=0.35, cutoff=10.0, degree=[40, 40, 48], ranks=[7, 8, 9], storage_bytes=54321, energy_variable=-1.25,
        max_rel_error_atoms=2.5e-6, rms_rel_error_atoms=7.5e-7, max_rel_error_points=4.0e-6, rms_rel_error_points=1.0e-6,
        selfcheck_atoms=5, selfcheck_points=200, tolerance_exceeded=1,
        backend="numpy", time_short_range_s=0.75, time_long_range_s=3.0, time_compress_s=0.5,
        dielectric=78.5, ionic_strength_M=0.15, kappa_per_A=0.125, debye_length_A=8.0, temperature_K=310.0,
        periodic=1, periodic_setting="auto", cell=[40.0, 0.0, 0.0, 0.0, 40.0, 0.0, 20.0, 20.0, 28.25],
        background_potential_e_per_A=-0.0625,
    ),
    # optional attributes left out on purpose: alpha, storage, timings except total, and the solvent
    # and periodic attributes (a file of the stage before those settings existed)
    ("beta", 1e-4): dict(
        ranks=[3, 3, 3], self_check_max_rel_error=8.0e-5, self_check_rms_rel_error=2.0e-5, time_total_s=1.0,
        backend="numpy",
    ),
}
#: Solvent and boundary attributes of a free-space potential in a dielectric as the stage writes them.
FREE_SPACE_MEDIUM = dict(
    dielectric=2.0, ionic_strength_M=0.0, kappa_per_A=0.0, debye_length_A=float("inf"), temperature_K=298.15,
    periodic=0, periodic_setting="off", cell=[], background_potential_e_per_A=0.0,
)
#: Periodic box of a structure record (a, b, c in Å; α, β, γ in degrees); the others have none.
BOXES = {"beta": [11.25, 11.25, 11.25, 90.0, 90.0, 90.0]}
TP_METHODS = ["cg", "gaunt_fourier", "gaunt_grid"]
TP_LMAX = [1, 2, 3]
TP_PASSES = ["forward", "backward"]
TP_DEVICES = ["cpu"]
DESCRIPTOR_ERRORS = {"cg": 1.5e-15, "gaunt_fourier": 2.5e-15, "gaunt_grid": 3.5e-15}
DESCRIPTOR_PRODUCT_TIMES = [0.5, 0.25, 0.125]  # s, in the order of DESCRIPTOR_ERRORS
BENCHMARKS = {
    # (rule, target): (seconds, max_rss MiB)
    ("ingest", "alpha"): (1.25, 150.5),
    ("lattice", "beta"): (0.75, 120.25),
    ("potential", "alpha"): (6.5, 900.0),
    ("potential", "beta"): (2.5, 400.0),
    ("tensor_products", "tensor_products"): (30.0, 1500.0),
}


def tp_time(method_index: int, lmax: int, pass_index: int) -> float:
    """Median runtime written into the tensor-product file, s."""
    return 1e-4 * (method_index + 1) * lmax ** (3 - method_index) * (pass_index + 1)


def write_structure(path: Path, structure_id: str) -> Path:
    charges, charge_source, fmt = STRUCTURES[structure_id]
    n = len(charges)
    positions = np.arange(3 * n, dtype=np.float64).reshape(n, 3)
    dataset = xr.Dataset(
        {
            "positions": (("atom", "xyz"), positions, {"units": "angstrom", "long_name": "atom position"}),
            "charge": (("atom",), np.array(charges), {"units": "e", "long_name": "partial charge"}),
            "radius": (("atom",), np.full(n, 1.5), {"units": "angstrom", "long_name": "atomic radius"}),
        },
        attrs=dict(
            structure_id=structure_id, source=f"test:{structure_id}", format=fmt, charge_source=charge_source,
            net_charge=float(sum(charges)), n_atoms=n, dropped='["water"]' if structure_id == "alpha" else "[]",
            package_versions="{}", pipeline_version="0.1.0", box=BOXES.get(structure_id, []),
        ),
    )
    return write_netcdf(dataset, path)


def write_potential(path: Path, structure_id: str, tolerance: float) -> Path:
    n = len(STRUCTURES[structure_id][0])
    attrs = dict(structure_id=structure_id, tolerance=tolerance, **POTENTIALS[(structure_id, tolerance)])
    variables = {"potential": (("atom",), np.linspace(-1.0, 1.0, n), {"units": "e/angstrom", "long_name": "potential"})}
    if "energy_variable" in attrs:
        variables["energy"] = ((), attrs.pop("energy_variable"), {"units": "e^2/angstrom", "long_name": "energy"})
    dataset = xr.Dataset(variables, attrs=attrs)
    return write_netcdf(dataset, path)


def write_tensor_products(path: Path) -> Path:
    shape = (len(TP_METHODS), len(TP_LMAX), len(TP_PASSES), len(TP_DEVICES))
    time = np.zeros(shape)
    for i in range(shape[0]):
        for j, lmax in enumerate(TP_LMAX):
            for k in range(shape[2]):
                time[i, j, k, :] = tp_time(i, lmax, k)
    dims = ("method", "lmax", "pass", "device")
    dataset = xr.Dataset(
        {
            "time_median": (dims, time, {"units": "s", "long_name": "median runtime"}),
            "time_spread": (dims, 0.1 * time, {"units": "s", "long_name": "interquartile range of the runtime"}),
            "n_paths": (("method", "lmax"), np.array([[2, 5, 10]] * 3, dtype=np.int64), {"units": "1", "long_name": "paths"}),
            "max_error": (("method", "lmax"), np.full((3, 3), 1e-6, dtype=np.float32), {"units": "1", "long_name": "error"}),
        },
        coords={
            "method": ("method", np.array(TP_METHODS, dtype=object), {"units": "1", "long_name": "method"}),
            "lmax": ("lmax", np.array(TP_LMAX, dtype=np.int64), {"units": "1", "long_name": "maximum degree"}),
            "pass": ("pass", np.array(TP_PASSES, dtype=object)),
            "device": ("device", np.array(TP_DEVICES, dtype=object), {"units": "1", "long_name": "device"}),
        },
        attrs={"batch": 64, "dtype": "float64"},
    )
    return write_netcdf(dataset, path)


def write_descriptors(path: Path, structure_id: str) -> Path:
    dataset = xr.Dataset(
        {
            "equivariance_error": (
                ("method",), np.array(list(DESCRIPTOR_ERRORS.values())), {"units": "1", "long_name": "equivariance error"}
            ),
            "fourier_grid_difference": ((), 4.5e-14, {"units": "1", "long_name": "fourier vs grid"}),
            "equivariance_error_density": ((), 6.5e-16, {"units": "1", "long_name": "density equivariance error"}),
            "time_product_s": (("method",), np.array(DESCRIPTOR_PRODUCT_TIMES), {"units": "s", "long_name": "product time"}),
        },
        coords={"method": ("method", np.array(list(DESCRIPTOR_ERRORS), dtype=object))},
        attrs=dict(structure_id=structure_id, gaunt_cg_difference=5.5e-14, time_total_s=0.125),
    )
    return write_netcdf(dataset, path)


def write_benchmarks(directory: Path) -> Path:
    from snakemake.benchmark import BenchmarkRecord, write_benchmark_records

    for (rule, target), (seconds, rss) in BENCHMARKS.items():
        (directory / rule).mkdir(parents=True, exist_ok=True)
        record = BenchmarkRecord(running_time=seconds, max_rss=rss, max_vms=rss, max_uss=rss, max_pss=rss, io_in=0, io_out=0)
        record.data_collected = True
        write_benchmark_records([record], str(directory / rule / f"{target}.tsv"), False)
    return directory


def make_study(root: Path) -> dict:
    """Write the whole study under ``root``; returns the keyword arguments of ``build_report``."""
    structures = [write_structure(root / "structures" / f"{sid}.nc", sid) for sid in STRUCTURES]
    potentials = [
        write_potential(root / "potential" / f"{sid}_{tol:g}.nc", sid, tol) for sid, tol in POTENTIALS
    ]
    return dict(
        structures=[str(p) for p in structures],
        potentials=[str(p) for p in potentials],
        tensor_products=str(write_tensor_products(root / "tensor_products.nc")),
        descriptors=[str(write_descriptors(root / "descriptors" / "alpha.nc", "alpha"))],
        benchmarks_dir=str(write_benchmarks(root / "benchmarks")),
        config={"potential": {"tolerance": 1e-4}, "structures": sorted(STRUCTURES)},
    )
