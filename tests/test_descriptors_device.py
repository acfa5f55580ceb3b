"""The descriptors' device route (``--device cuda``), run on NumPy.

The array density of :mod:`pipeline.descriptors.density_array` is compared with the compiled
cell-list kernel and with a double loop written from the formulas
(:func:`tests.test_descriptors_density_cells.sources_reference`, SciPy's spherical harmonics).
The whole stage takes its device route with NumPy arrays when its backend checks are made to
answer "not numpy" (as ``tests/test_gpu_transfers.py`` does for the potential), and must then
agree with the CPU route; host transfers are counted with default and with tiny chunks.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections import Counter
from functools import partial

import numpy as np
import pytest

from pipeline.cli import main
from pipeline.descriptors.compute import DescriptorParameters, compute_descriptors
from pipeline.descriptors.density_array import array_atom_density
from pipeline.descriptors.density_cells import atom_density_from_cells
from pipeline.descriptors.sphere_potential import sphere_evaluator
from pipeline.electrostatics import build_potential
from pipeline.electrostatics.periodic import periodic_sources
from pipeline.storage import read_netcdf
from tests.conftest import count_host_transfers
from tests.test_descriptors_density_cells import sources_reference

#: Relative tolerance of the density against the compiled kernel and the double loop: the same
#: float64 terms summed in other orders (measured 1e-15).
DENSITY_RTOL = 1e-12
#: Relative tolerance of every feature of the device route against the CPU route (measured 1e-15
#: for the density and products; the sphere potential by pointwise values against the ring
#: contraction with local interpolants, measured 1e-14).
ROUTE_RTOL = 1e-10


def relative(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(b)))


def clustered_cloud(rng, n=500):
    """A dense cluster, a sparse halo and three coincident pairs (one centre has two atoms on it)."""
    dense = rng.normal(0.0, 2.0, (n // 2, 3))
    sparse = rng.uniform(-25.0, 25.0, (n - n // 2, 3))
    pos = np.concatenate([dense, sparse])
    pos[7] = pos[3]
    pos[8] = pos[3]
    pos[n - 1] = pos[n - 2]
    return pos, rng.normal(0.0, 0.6, n)


def as_array_route(monkeypatch, *modules):
    """Make ``backend_name`` of ``modules`` answer "array": their CuPy code runs with NumPy arrays."""
    for name in modules:
        monkeypatch.setattr(importlib.import_module(name), "backend_name", lambda xp: "array")


@pytest.mark.parametrize("block_pairs", [None, 97])
def test_array_density_matches_compiled_kernel_and_double_loop(rng, block_pairs):
    pos, q = clustered_cloud(rng)
    lmax, cutoff, n_radial = 3, 4.5, 4
    got, counts, zeros = array_atom_density(pos, q, n_centres=len(pos), lmax=lmax, cutoff_A=cutoff, n_radial=n_radial,
                                            block_pairs=block_pairs)
    want, want_counts, want_zeros = atom_density_from_cells(pos, q, n_centres=len(pos), lmax=lmax, cutoff_A=cutoff,
                                                            n_radial=n_radial)
    assert relative(got, want) < DENSITY_RTOL
    np.testing.assert_array_equal(counts, want_counts)
    np.testing.assert_array_equal(zeros, want_zeros)
    assert zeros[3] == 2 and zeros[7] == 2 and zeros[n := len(pos) - 1] == 1 and zeros.sum() == 8
    # brute-force neighbour counts and the double loop on centres of the cluster, the halo and the coincident atoms
    d = np.linalg.norm(pos[None, :, :] - pos[:, None, :], axis=-1)
    np.testing.assert_array_equal(counts, ((d > 0) & (d < cutoff)).sum(axis=1))
    sample = np.array([0, 3, 7, 100, 249, 250, 300, n - 2, n])
    ref = sources_reference(pos[sample], pos, q, lmax, cutoff, n_radial)
    assert relative(got[sample], ref) < DENSITY_RTOL
    assert np.abs(got[sample]).max() > 0.1  # the halo atoms alone could leave the check empty


def test_array_density_with_periodic_images_and_fewer_centres(rng):
    n, edge, cutoff = 150, 11.0, 5.0
    cell = np.array([[edge, 0.0, 0.0], [2.0, edge, 0.0], [-1.0, 1.5, edge]])  # triclinic
    pos = rng.uniform(0.0, 1.0, (n, 3)) @ cell
    q = rng.normal(0.0, 0.5, n)
    sources, charges = periodic_sources(pos, q, cell, cutoff)
    assert len(sources) > 2 * n  # the images do take part
    got, counts, zeros = array_atom_density(sources, charges, n_centres=n, lmax=2, cutoff_A=cutoff, n_radial=3,
                                            block_pairs=211)
    want, want_counts, _ = atom_density_from_cells(sources, charges, n_centres=n, lmax=2, cutoff_A=cutoff, n_radial=3)
    assert got.shape == (n, 3, 9) and relative(got, want) < DENSITY_RTOL
    np.testing.assert_array_equal(counts, want_counts)
    assert not zeros.any()
    sample = np.array([0, 17, 88, n - 1])
    ref = sources_reference(sources[sample], sources, charges, 2, cutoff, 3)
    assert relative(got[sample], ref) < DENSITY_RTOL


def test_array_density_edge_cases(rng):
    pos, q = clustered_cloud(rng, 60)
    got, counts, zeros = array_atom_density(pos, q, n_centres=0, lmax=1, cutoff_A=3.0, n_radial=2)
    assert got.shape == (0, 2, 4) and counts.shape == (0,) and zeros.shape == (0,)
    with pytest.raises(ValueError, match="n_centres"):
        array_atom_density(pos, q, n_centres=61, lmax=1, cutoff_A=3.0, n_radial=2)
    with pytest.raises(ValueError, match="charges"):
        array_atom_density(pos, q[:-1], n_centres=10, lmax=1, cutoff_A=3.0, n_radial=2)
    # one isolated atom: no neighbours, nothing but zeros
    got, counts, zeros = array_atom_density(np.zeros((1, 3)), np.ones(1), n_centres=1, lmax=2, cutoff_A=3.0, n_radial=2)
    assert not got.any() and counts.tolist() == [0] and zeros.tolist() == [0]


@pytest.fixture(scope="module")
def cloud_and_potential():
    rng = np.random.default_rng(11)
    n = 240
    pos = np.concatenate([rng.normal(0.0, 3.0, (n // 2, 3)), rng.uniform(-12.0, 12.0, (n - n // 2, 3))])
    pos[5] = pos[4]  # coincident atoms
    q = rng.normal(0.0, 0.5, n)
    q -= q.mean()
    potential, _ = build_potential(pos, q, tolerance=1e-6, padding=3.0)
    return pos, q, potential


def test_compute_descriptors_array_route_matches_cpu_route(cloud_and_potential, monkeypatch):
    pos, q, potential = cloud_and_potential
    params = DescriptorParameters(lmax=2, cutoff_A=5.0, n_radial=3, sphere_radius_A=1.5, n_validation=16)
    cpu = compute_descriptors(pos, q, sphere_evaluator(potential), params)
    as_array_route(monkeypatch, "pipeline.descriptors.compute")
    dev = compute_descriptors(pos, q, sphere_evaluator(potential), params,
                              device_potential=partial(potential.long_range, check=False))
    assert cpu.backend == "numpy" and dev.backend == "array"
    assert relative(dev.density, cpu.density) < ROUTE_RTOL
    assert relative(dev.potential_sh, cpu.potential_sh) < ROUTE_RTOL
    assert [r.method for r in dev.products] == [r.method for r in cpu.products] and len(dev.products) == 4
    for got, want in zip(dev.products, cpu.products):
        assert isinstance(got.values, np.ndarray) and relative(got.values, want.values) < ROUTE_RTOL, got.method
    np.testing.assert_array_equal(dev.n_neighbours, cpu.n_neighbours)
    assert dev.n_pairs == cpu.n_pairs
    # the validation recomputes the sample on the host, independently of the device results
    assert max(dev.validation.equivariance_error.values()) < 1e-8
    np.testing.assert_array_equal(dev.validation.sample, cpu.validation.sample)
    assert {"neighbours", "density", "potential", "product_cg", "validation"} <= set(dev.timings_s)


def test_device_route_needs_the_device_potential(cloud_and_potential, monkeypatch):
    pos, q, potential = cloud_and_potential
    as_array_route(monkeypatch, "pipeline.descriptors.compute")
    with pytest.raises(ValueError, match="device_potential"):
        compute_descriptors(pos, q, sphere_evaluator(potential), DescriptorParameters(n_validation=0))


def test_parameters_check_the_device():
    with pytest.raises(ValueError, match="device must be one of"):
        DescriptorParameters(device="gpu")
    assert DescriptorParameters().device == "cpu" and DescriptorParameters().to_dict()["device"] == "cpu"


@pytest.fixture
def counted(monkeypatch):
    """A Counter of ``to_host`` calls by calling function, with the descriptors on the array route."""
    as_array_route(monkeypatch, "pipeline.descriptors.compute")
    return count_host_transfers(monkeypatch)


def test_no_transfers_inside_chunk_loops(cloud_and_potential, counted, monkeypatch):
    pos, q, potential = cloud_and_potential
    params = DescriptorParameters(lmax=2, cutoff_A=5.0, n_radial=3, sphere_radius_A=1.5, n_validation=0)
    run = partial(compute_descriptors, pos, q, sphere_evaluator(potential), params,
                  device_potential=partial(potential.long_range, check=False))
    counted.clear()
    big = run()
    big_counts = dict(counted)
    cells = importlib.import_module("pipeline.electrostatics.short_range_cells")
    density = importlib.import_module("pipeline.descriptors.density_array")
    calls = Counter()
    ranges = cells.neighbour_ranges
    evaluate = potential.long_range
    monkeypatch.setattr(cells, "neighbour_ranges", lambda *a: calls.update(["ranges"]) or ranges(*a))
    monkeypatch.setattr(potential, "long_range", lambda *a, **k: calls.update(["sphere"]) or evaluate(*a, **k))
    monkeypatch.setattr(cells, "COUNT_BLOCK", 16)
    monkeypatch.setattr(density, "default_block_pairs", lambda lmax, n_radial: 300)
    monkeypatch.setattr(importlib.import_module("pipeline.descriptors.compute"), "DEVICE_SPHERE_POINTS", 800)
    monkeypatch.setattr(importlib.import_module("pipeline.equivariant.products"), "DEFAULT_CHUNK_ELEMENTS", 4096)
    monkeypatch.setattr(importlib.import_module("pipeline.equivariant.products"), "DEFAULT_CHUNK_GRID_BYTES", 4096)
    run = partial(compute_descriptors, pos, q, sphere_evaluator(potential), params,
                  device_potential=partial(potential.long_range, check=False))
    counted.clear()
    small = run()
    assert calls["ranges"] > 50 and calls["sphere"] > 20  # the small chunks did run many times
    assert dict(counted) == big_counts, (dict(counted), big_counts)
    # the cell list's bounding box, pair count and chunk boundaries, then each result once (density, neighbour
    # and coincident counts, sphere potential, 4 products)
    assert sum(big_counts.values()) == 3 + 4 + 4, big_counts
    assert not any("density" in k or "expansion" in k or "product" in k for k in big_counts), big_counts
    assert relative(small.density, big.density) < 1e-13
    assert relative(small.potential_sh, big.potential_sh) < 1e-13
    for got, want in zip(small.products, big.products):
        assert relative(got.values, want.values) < 1e-13


@pytest.fixture(scope="module")
def lattice_inputs(tmp_path_factory):
    """A periodic rock-salt block with vacancies and its potential (made by the CLI stages)."""
    d = tmp_path_factory.mktemp("descriptors_device")
    s, p = d / "nacl.nc", d / "nacl_pot.nc"
    assert main(["lattice", "--type", "rocksalt", "--cells", "2", "--lattice-constant", "5.64",
                 "--vacancy-fraction", "0.15", "--seed", "3", "--periodic", "--id", "nacl", "-o", str(s)]) == 0
    assert main(["potential", str(s), "-o", str(p), "--tolerance", "1e-6", "--self-check", "20"]) == 0
    return d, s, p


def descriptors_cli(structure, potential, output, *extra):
    return main(["descriptors", str(structure), "--potential", str(potential), "-o", str(output),
                 "--lmax", "2", "--cutoff", "6", "--n-radial", "3", "--validation-atoms", "8", *extra])


def test_cli_array_route_on_a_periodic_lattice_matches_cpu(lattice_inputs, monkeypatch):
    d, s, p = lattice_inputs
    assert descriptors_cli(s, p, d / "cpu.nc") == 0
    as_array_route(monkeypatch, "pipeline.descriptors.compute", "pipeline.descriptors.stage")
    assert descriptors_cli(s, p, d / "array.nc", "--device", "cpu") == 0
    cpu, dev = read_netcdf(d / "cpu.nc"), read_netcdf(d / "array.nc")
    assert cpu.attrs["backend"] == "numpy" and dev.attrs["backend"] == "array"
    assert np.size(read_netcdf(p).attrs["cell"]) == 9  # a periodic potential: images join the density
    for name in ("density", "potential_expansion"):
        assert relative(dev[name].values, cpu[name].values) < ROUTE_RTOL, name
    np.testing.assert_array_equal(dev["n_neighbours"].values, cpu["n_neighbours"].values)
    products = [name for name in cpu.data_vars if name.startswith("product_")]
    assert sorted(products) == sorted(name for name in dev.data_vars if name.startswith("product_")) and len(products) == 4
    for name in products:  # stored as float32
        assert relative(dev[name].values, cpu[name].values) < 1e-6, name
    assert float(dev["equivariance_error"].max()) < 1e-8


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="CuPy is installed")
def test_cli_cuda_without_cupy_is_a_one_line_error(lattice_inputs, tmp_path, capsys):
    _, s, p = lattice_inputs
    out = tmp_path / "gpu.nc"
    assert descriptors_cli(s, p, out, "--device", "cuda") == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: backend 'cupy' needs CuPy"), lines
    assert not out.exists() and not list(tmp_path.iterdir())


def test_cli_out_of_device_memory_is_a_one_line_error(lattice_inputs, tmp_path, capsys, monkeypatch):
    _, s, p = lattice_inputs
    compute = importlib.import_module("pipeline.descriptors.compute")
    as_array_route(monkeypatch, "pipeline.descriptors.compute")

    def exhausted(*args, **kwargs):
        raise MemoryError("Out of memory allocating 4,294,967,296 bytes")

    monkeypatch.setattr(compute, "array_atom_density", exhausted)
    out = tmp_path / "oom.nc"
    assert descriptors_cli(s, p, out) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: out of host memory"), lines
    assert "--lmax" in lines[0] and "--n-radial" in lines[0] and "--device cpu" in lines[0]
    assert not out.exists() and not list(tmp_path.iterdir())
