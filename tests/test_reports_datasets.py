"""The report Dataset: self-describing, round-trips through netCDF, values in the right cells, clear failures."""

from __future__ import annotations

import math

import numpy as np
import pytest
import xarray as xr

from pipeline.reports.benchmarks import read_benchmark_tsv
from pipeline.reports.datasets import build_report
from pipeline.reports.inputs import DESCRIPTOR_PER_METHOD, DESCRIPTOR_SCALARS
from pipeline.reports.variables import DESCRIPTOR_PER_METHOD_ATTRS, DESCRIPTOR_SCALAR_ATTRS
from pipeline.storage import config_hash, read_netcdf, write_netcdf
from tests.reports_study import (
    BENCHMARKS,
    BOXES,
    FREE_SPACE_MEDIUM,
    DESCRIPTOR_ERRORS,
    DESCRIPTOR_PRODUCT_TIMES,
    POTENTIALS,
    STRUCTURES,
    TP_LMAX,
    TP_METHODS,
    TP_PASSES,
    make_study,
    tp_time,
    write_descriptors,
    write_potential,
)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return make_study(tmp_path_factory.mktemp("study"))


@pytest.fixture(scope="module")
def report(study):
    return build_report(**study)


def test_every_variable_and_coordinate_has_units_and_long_name(report):
    expected_coords = {"structure", "potential_tolerance", "mode", "step", "stage", "job", "method", "lmax", "pass", "device",
                       "cell_axis", "xyz"}
    assert expected_coords <= set(report.coords), f"coordinates: {sorted(report.coords)}"
    for name, variable in report.variables.items():
        assert isinstance(variable.attrs.get("units"), str) and variable.attrs["units"], f"{name} lacks units"
        assert isinstance(variable.attrs.get("long_name"), str) and variable.attrs["long_name"], f"{name} lacks long_name"


def test_global_attributes_are_cf_with_provenance(report, study):
    attrs = report.attrs
    assert attrs["Conventions"] == "CF-1.10"
    assert attrs["title"]
    assert "institution" not in attrs
    assert attrs["history"].endswith("build_report")
    assert attrs["config_hash"] == config_hash(study["config"])
    assert attrs["pipeline_version"] and attrs["package_versions"].startswith("{")
    for value in attrs.values():
        assert isinstance(value, (str, int, float, np.integer, np.floating)), f"attribute {value!r} not netCDF-safe"


def test_report_reads_back_identically(report, tmp_path):
    path = write_netcdf(report, tmp_path / "report.nc")
    xr.testing.assert_identical(read_netcdf(path), report)


def test_structure_values_land_on_their_ids(report):
    assert list(report["structure"].values) == list(STRUCTURES)
    for sid, (charges, charge_source, fmt) in STRUCTURES.items():
        row = report.sel({"structure": sid})
        assert int(row["n_atoms"]) == len(charges)
        assert float(row["net_charge"]) == pytest.approx(sum(charges), abs=1e-12)
        assert str(row["charge_source"].values) == charge_source
        assert str(row["structure_format"].values) == fmt
    assert report["n_atoms"].dtype == np.int64
    assert list(report["n_dropped"].values) == [1, 0]


# What each potential of the study must give, written out by hand from tests/reports_study.py.
NAN = math.nan
EXPECTED_POTENTIALS = {
    ("alpha", 1e-4): dict(max=3.5e-5, rms=1.25e-5, max_points=NAN, atoms=NAN, exceeded=0.0, ranks=[4, 5, 6],
                          degree=[24, 24, 24], storage=12345.0, alpha=0.31, cutoff=9.0, energy=-1.5, device="cpu",
                          total=2.25, compress=0.25),
    ("alpha", 1e-6): dict(max=2.5e-6, rms=7.5e-7, max_points=4.0e-6, atoms=5.0, exceeded=1.0, ranks=[7, 8, 9],
                          degree=[40, 40, 48], storage=54321.0, alpha=0.35, cutoff=10.0, energy=-1.25, device="numpy",
                          total=4.25, compress=0.5),  # total = 0.75 + 3.0 + 0.5, the file has none
    ("beta", 1e-4): dict(max=8.0e-5, rms=2.0e-5, max_points=NAN, atoms=NAN, exceeded=NAN, ranks=[3, 3, 3],
                         degree=[NAN] * 3, storage=NAN, alpha=NAN, cutoff=NAN, energy=NAN, device="numpy",
                         total=1.0, compress=NAN),
}
POTENTIAL_VARIABLES = dict(
    max="potential_max_rel_error", rms="potential_rms_rel_error", max_points="potential_max_rel_error_points",
    atoms="potential_self_check_atoms", exceeded="potential_tolerance_exceeded", storage="potential_storage",
    alpha="potential_alpha", cutoff="potential_cutoff", energy="potential_energy",
)


def test_potential_values_land_on_structure_and_tolerance(report):
    assert list(report["potential_tolerance"].values) == [1e-6, 1e-4]
    assert set(EXPECTED_POTENTIALS) == set(POTENTIALS)
    for (sid, tol), expected in EXPECTED_POTENTIALS.items():
        at = report.sel({"structure": sid, "potential_tolerance": tol})
        for key, name in POTENTIAL_VARIABLES.items():
            np.testing.assert_equal(float(at[name]), expected[key], err_msg=f"{sid} {tol} {name}")
        np.testing.assert_equal(at["potential_ranks"].values, expected["ranks"])
        np.testing.assert_equal(at["potential_degree"].values, expected["degree"])
        np.testing.assert_equal(float(at["potential_time"].sel({"step": "total"})), expected["total"])
        np.testing.assert_equal(float(at["potential_time"].sel({"step": "compress"})), expected["compress"])
        assert str(at["potential_device"].values) == expected["device"]
        assert str(at["potential_file"].values).endswith(".nc")
    beta_low = report.sel({"structure": "beta", "potential_tolerance": 1e-6})
    assert np.isnan(beta_low["potential_max_rel_error"]) and str(beta_low["potential_file"].values) == ""
    assert list(report["step"].values)[-1] == "total"


# Solvent and boundary variables of each potential of the study: alpha 1e-6 as written
# (tests/reports_study.py), the others files without those attributes, which read as vacuum in free space.
MEDIUM_VARIABLES = dict(
    dielectric="potential_dielectric", ionic_strength="potential_ionic_strength", kappa="potential_kappa",
    debye_length="potential_debye_length", temperature="potential_temperature", periodic="potential_periodic",
    background="potential_background",
)
OLD_FILE_MEDIUM = dict(dielectric=1.0, ionic_strength=0.0, kappa=0.0, debye_length=math.inf, temperature=298.15,
                       periodic=0.0, background=0.0)
EXPECTED_MEDIUM = {
    ("alpha", 1e-6): dict(dielectric=78.5, ionic_strength=0.15, kappa=0.125, debye_length=8.0, temperature=310.0,
                          periodic=1.0, background=-0.0625),
    ("alpha", 1e-4): OLD_FILE_MEDIUM,
    ("beta", 1e-4): OLD_FILE_MEDIUM,
}
MEDIUM_UNITS = dict(dielectric="1", ionic_strength="mol/L", kappa="1/angstrom", debye_length="angstrom", temperature="K",
                    periodic="1", background="e/angstrom")


def test_medium_values_land_on_structure_and_tolerance(report):
    for (sid, tol), expected in EXPECTED_MEDIUM.items():
        at = report.sel({"structure": sid, "potential_tolerance": tol})
        for key, name in MEDIUM_VARIABLES.items():
            np.testing.assert_equal(float(at[name]), expected[key], err_msg=f"{sid} {tol} {name}")
    for key, name in MEDIUM_VARIABLES.items():
        assert report[name].attrs["units"] == MEDIUM_UNITS[key], name
    cell = report["potential_cell"].sel({"structure": "alpha", "potential_tolerance": 1e-6})
    assert cell.dims == ("cell_axis", "xyz") and report["potential_cell"].attrs["units"] == "angstrom"
    np.testing.assert_equal(cell.sel({"cell_axis": "c"}).values, [20.0, 20.0, 28.25])  # row c of the matrix
    np.testing.assert_equal(cell.sel({"xyz": "x"}).values, [40.0, 0.0, 20.0])  # x components of a, b, c
    assert np.isnan(report["potential_cell"].sel({"structure": "beta", "potential_tolerance": 1e-4})).all()
    # no run: NaN, not the defaults of an old file
    assert np.isnan(float(report["potential_dielectric"].sel({"structure": "beta", "potential_tolerance": 1e-6})))


def test_structure_boxes_land_on_their_ids(report):
    np.testing.assert_equal(report["box_length"].sel({"structure": "beta"}).values, BOXES["beta"][:3])
    np.testing.assert_equal(report["box_angle"].sel({"structure": "beta"}).values, BOXES["beta"][3:])
    assert np.isnan(report["box_length"].sel({"structure": "alpha"})).all()  # stored as an empty list
    assert list(report["cell_axis"].values) == ["a", "b", "c"]
    assert report["box_length"].attrs["units"] == "angstrom" and report["box_angle"].attrs["units"] == "degree"


def test_free_space_potential_with_empty_cell(study, tmp_path):
    path = write_potential(tmp_path / "beta.nc", "beta", 1e-4)
    with xr.open_dataset(path) as ds:
        ds = ds.load()
    ds.attrs.update(FREE_SPACE_MEDIUM)
    write_netcdf(ds, path)
    report = build_report(study["structures"], [str(path)])
    at = report.sel({"structure": "beta", "potential_tolerance": 1e-4})
    assert float(at["potential_dielectric"]) == 2.0 and float(at["potential_temperature"]) == 298.15
    assert float(at["potential_periodic"]) == 0.0 and math.isinf(float(at["potential_debye_length"]))
    assert np.isnan(at["potential_cell"].values).all()


@pytest.mark.parametrize("attribute, value, message", [
    ("cell", [1.0, 2.0, 3.0], r"'cell' must hold 0 or 9 numbers, got 3"),
    ("cell", "a box", r"'cell' must be a list of numbers, got 'a box'"),
])
def test_bad_cell_attribute_is_named(study, tmp_path, attribute, value, message):
    path = write_potential(tmp_path / "alpha.nc", "alpha", 1e-4)
    with xr.open_dataset(path) as ds:
        ds = ds.load()
    ds.attrs[attribute] = value
    write_netcdf(ds, path)
    with pytest.raises(ValueError, match=message) as info:
        build_report(study["structures"], [str(path)])
    assert str(path) in str(info.value)


def test_benchmarks_go_to_stages_and_jobs(report):
    for (rule, target), (seconds, rss) in BENCHMARKS.items():
        if target in STRUCTURES:
            at = report.sel({"structure": target, "stage": rule})
            assert float(at["stage_wall_time"]) == seconds and float(at["stage_max_rss"]) == rss
        else:
            at = report.sel({"job": f"{rule}/{target}"})
            assert float(at["job_wall_time"]) == seconds and float(at["job_max_rss"]) == rss
    assert np.isnan(float(report["stage_wall_time"].sel({"structure": "alpha", "stage": "lattice"})))


def test_tensor_product_table_is_copied_with_prefix(report):
    assert list(report["method"].values) == TP_METHODS
    for i, method in enumerate(TP_METHODS):
        for lmax in TP_LMAX:
            for k, pass_ in enumerate(TP_PASSES):
                value = float(report["tp_time_median"].sel({"method": method, "lmax": lmax, "pass": pass_, "device": "cpu"}))
                assert value == tp_time(i, lmax, k)
    assert report["tp_n_paths"].dtype == np.int64 and report["tp_n_paths"].attrs["long_name"] == "paths"
    assert report["tp_max_error"].dtype == np.float32
    assert report["pass"].attrs["units"] == "1"  # filled in: the file's `pass` coordinate has no attrs


def test_descriptor_errors_land_on_structure_and_method(report):
    for method, error in DESCRIPTOR_ERRORS.items():
        assert float(report["descriptor_equivariance_error"].sel({"structure": "alpha", "method": method})) == error
    assert np.isnan(report["descriptor_equivariance_error"].sel({"structure": "beta"}).values).all()
    assert float(report["descriptor_gaunt_cg_difference"].sel({"structure": "alpha"})) == 5.5e-14
    assert float(report["descriptor_fourier_grid_difference"].sel({"structure": "alpha"})) == 4.5e-14
    assert float(report["descriptor_time_total"].sel({"structure": "alpha"})) == 0.125
    assert float(report["descriptor_equivariance_error_density"].sel({"structure": "alpha"})) == 6.5e-16
    assert np.isnan(float(report["descriptor_equivariance_error_potential"].sel({"structure": "alpha"})))
    times = report["descriptor_time_product"].sel({"structure": "alpha"})
    assert [float(times.sel({"method": m})) for m in DESCRIPTOR_ERRORS] == DESCRIPTOR_PRODUCT_TIMES
    assert np.isnan(report["descriptor_gaunt_cg_difference_by_method"].values).all()  # not in the file


def test_descriptor_readers_and_variables_agree():
    assert set(DESCRIPTOR_SCALARS) == set(DESCRIPTOR_SCALAR_ATTRS)
    assert set(DESCRIPTOR_PER_METHOD) == set(DESCRIPTOR_PER_METHOD_ATTRS)


def test_descriptor_methods_join_tensor_product_methods(study, tmp_path):
    path = write_descriptors(tmp_path / "alpha.nc", "alpha")
    with xr.open_dataset(path) as ds:
        renamed = ds.load().assign_coords(method=["cg", "gaunt_fourier", "gaunt_s2"])
    write_netcdf(renamed, path)
    report = build_report(**{**study, "descriptors": [str(path)]})
    assert list(report["method"].values) == [*TP_METHODS, "gaunt_s2"]
    assert np.isnan(report["tp_time_median"].sel({"method": "gaunt_s2"}).values).all()
    assert float(report["descriptor_equivariance_error"].sel({"structure": "alpha", "method": "gaunt_s2"})) == 3.5e-15
    assert np.isnan(float(report["descriptor_equivariance_error"].sel({"structure": "alpha", "method": "gaunt_grid"})))


def test_structures_only_report_leaves_other_variables_out(study):
    report = build_report(study["structures"])
    assert set(report.data_vars) == {"n_atoms", "net_charge", "charge_source", "structure_format", "structure_source",
                                     "n_dropped", "box_length", "box_angle"}


def test_missing_inputs_are_all_named(study, tmp_path):
    missing = [str(tmp_path / "gone.nc"), str(tmp_path / "also_gone.nc")]
    with pytest.raises(FileNotFoundError) as info:
        build_report(**{**study, "potentials": [*study["potentials"], missing[0]], "descriptors": [missing[1]]})
    for path in missing:
        assert path in str(info.value)
    with pytest.raises(FileNotFoundError, match="benchmarks folder"):
        build_report(**{**study, "benchmarks_dir": str(tmp_path / "nothing")})


def _drop(path, tmp_path, *, variables=(), attrs=()):
    with xr.open_dataset(path) as ds:
        ds = ds.load()
    ds = ds.drop_vars(list(variables))
    for name in attrs:
        del ds.attrs[name]
    return str(write_netcdf(ds, tmp_path / f"broken_{len(list(tmp_path.iterdir()))}.nc"))


@pytest.mark.parametrize(
    "kind, variables, attrs, message",
    [
        ("potentials", ["potential"], [], r"lacks essential variable\(s\) 'potential'"),
        ("potentials", [], ["tolerance"], "lacks essential attribute 'tolerance'"),
        ("structures", ["charge"], [], r"lacks essential variable\(s\) 'charge'"),
        ("descriptors", ["equivariance_error"], [], r"lacks essential variable\(s\) 'equivariance_error'"),
    ],
)
def test_partial_inputs_name_file_and_variable(study, tmp_path, kind, variables, attrs, message):
    broken = _drop(study[kind][0], tmp_path, variables=variables, attrs=attrs)
    inputs = {**study, kind: [broken, *study[kind][1:]]}
    with pytest.raises(ValueError, match=message) as info:
        build_report(**inputs)
    assert broken in str(info.value)


def test_tensor_products_without_method_dimension_fail(study, tmp_path):
    path = tmp_path / "tp.nc"
    write_netcdf(xr.Dataset({"time_median": (("L",), np.ones(2), {"units": "s", "long_name": "t"})}), path)
    with pytest.raises(ValueError, match=r"lacks essential dimension\(s\) 'method', 'lmax'"):
        build_report(**{**study, "tensor_products": str(path)})


def test_corrupt_file_is_named(study, tmp_path):
    path = tmp_path / "garbage.nc"
    path.write_bytes(b"not a netCDF file")
    with pytest.raises(ValueError, match="not a readable netCDF file") as info:
        build_report(**{**study, "potentials": [str(path)]})
    assert str(path) in str(info.value)


def test_potential_must_match_a_structure_and_its_atom_count(study, tmp_path):
    foreign = write_potential(tmp_path / "foreign.nc", "beta", 1e-4)
    with xr.open_dataset(foreign) as ds:
        ds = ds.load()
    ds.attrs["structure_id"] = "gamma"
    write_netcdf(ds, foreign)
    with pytest.raises(ValueError, match="structure 'gamma', which is not among"):
        build_report(**{**study, "potentials": [str(foreign)]})
    ds.attrs["structure_id"] = "alpha"  # alpha has 5 atoms, this potential 8 values
    write_netcdf(ds, foreign)
    with pytest.raises(ValueError, match="'potential' has 8 values but structure 'alpha' has 5 atoms"):
        build_report(**{**study, "potentials": [str(foreign)]})


def test_duplicate_runs_are_refused(study):
    with pytest.raises(ValueError, match="two potential files for \\('alpha', 0.0001\\)"):
        build_report(**{**study, "potentials": [study["potentials"][0], study["potentials"][0]]})
    with pytest.raises(ValueError, match="two structure files for 'alpha'"):
        build_report(**{**study, "structures": [study["structures"][0], *study["structures"]]})


def test_benchmark_median_over_repeats_and_na(tmp_path):
    path = tmp_path / "bench.tsv"
    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    rows = ["3.00\t0:00:03\tNA\tNA\tNA\tNA\tNA\tNA\t0.00\t0", "1.00\t0:00:01\t5.00\t1\t1\t1\t0\t0\t0.00\t0",
            "1.50\t0:00:01\t7.50\t1\t1\t1\t0\t0\t0.00\t0"]
    path.write_text(header + "\n".join(rows) + "\n")
    record = read_benchmark_tsv(path)
    assert record.wall_s == 1.5 and record.max_rss_mib == 7.5  # median of 3, 1, 1.5 (mean would be 1.83)
    path.write_text("s\th:m:s\n1.0\t0:00:01\n")
    with pytest.raises(ValueError, match=r"lacks column\(s\) max_rss"):
        read_benchmark_tsv(path)


def test_ranks_must_be_three_numbers(study, tmp_path):
    with xr.open_dataset(study["potentials"][0]) as ds:
        ds = ds.load()
    ds.attrs["ranks"] = [4, 5]
    path = write_netcdf(ds, tmp_path / "two_ranks.nc")
    with pytest.raises(ValueError, match=r"'ranks' must hold 3 numbers \(one per axis\)") as info:
        build_report(**{**study, "potentials": [str(path)]})
    assert str(path) in str(info.value)
