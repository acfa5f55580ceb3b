"""Resource guards: memory sizes and limits, the tolerance range, the atoms' span, and each stage's refusal."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline import resources
from pipeline.electrostatics import prepare_build
from pipeline.electrostatics.build import MAX_SPAN_A
from pipeline.electrostatics.long_range import estimate_build_bytes, fft_shape
from pipeline.electrostatics.splitting import check_tolerance
from pipeline.resources import check_memory, format_bytes, parse_memory_size
from pipeline.storage import write_netcdf
from pipeline.structures.record import Structure, structure_to_dataset
from tests.cli_run import assert_refused, run_pipeline


@pytest.mark.parametrize(
    "text, expected",
    [("8G", 8 * 2**30), ("500M", 500 * 2**20), ("1.5T", int(1.5 * 2**40)), ("8GiB", 8 * 2**30), ("4kB", 4096),
     ("123", 123), ("1e9", 10**9), ("2g", 2 * 2**30)],
)
def test_parse_memory_size(text, expected):
    assert parse_memory_size(text) == expected


@pytest.mark.parametrize("text", ["8X", "", "-1G", "0", "G", "8 G B"])
def test_parse_memory_size_rejects(text):
    with pytest.raises(ValueError, match="--max-memory"):
        parse_memory_size(text)


def test_format_bytes():
    assert format_bytes(1023) == "1023 B"
    assert format_bytes(4.84 * 2**30) == "4.84 GiB"
    assert format_bytes(1000 * 2**10) == "1000 KiB"
    assert format_bytes(931 * 2**30) == "931 GiB"


def test_check_memory_names_estimate_limit_and_setting(monkeypatch):
    check_memory(2**20, what="step", setting="change X", limit_bytes=2**20)  # equal: accepted
    with pytest.raises(ValueError) as info:
        check_memory(3 * 2**30, what="the step", setting="lower --grid", limit_bytes=2**30)
    message = str(info.value)
    assert message == ("the step needs an estimated 3 GiB of memory, more than the memory limit of 1 GiB "
                       "(--max-memory); lower --grid")
    monkeypatch.setattr(resources, "available_memory_bytes", lambda xp=None: 2**30)
    with pytest.raises(ValueError, match=r"more than the 1 GiB of available memory; lower --grid$"):
        check_memory(3 * 2**30, what="the step", setting="lower --grid")
    monkeypatch.setattr(resources, "available_memory_bytes", lambda xp=None: None)
    check_memory(3 * 2**40, what="the step", setting="lower --grid")  # unknown: not checked


def test_available_memory_is_below_total():
    available = resources.available_memory_bytes()
    total = int(next(line for line in open("/proc/meminfo") if line.startswith("MemTotal:")).split()[1]) * 1024
    assert 0 < available <= total


def test_cgroup_room_takes_the_tightest_level(tmp_path):
    proc = tmp_path / "cgroup"
    proc.write_text("0::/job/step\n")
    root = tmp_path / "fs"
    step, job = root / "job" / "step", root / "job"
    step.mkdir(parents=True)
    (step / "memory.max").write_text("max\n")
    (job / "memory.max").write_text("1000\n")
    (job / "memory.current").write_text("700\n")
    (job / "memory.stat").write_text("anon 500\ninactive_file 150\n")
    assert resources._cgroup_room(root, proc) == 1000 - 700 + 150
    (root / "memory.max").write_text("400\n")
    (root / "memory.current").write_text("100\n")
    (root / "memory.stat").write_text("inactive_file 0\n")
    assert resources._cgroup_room(root, proc) == 300
    v1 = tmp_path / "v1"
    v1.write_text("4:memory:/slurm/job1\n0::/\n")
    (root / "memory" / "slurm" / "job1").mkdir(parents=True)
    (root / "memory" / "slurm" / "job1" / "memory.limit_in_bytes").write_text("250\n")
    (root / "memory" / "slurm" / "job1" / "memory.usage_in_bytes").write_text("50\n")
    (root / "memory" / "slurm" / "job1" / "memory.stat").write_text("total_inactive_file 10\n")
    assert resources._cgroup_room(root, v1) == 210


@pytest.mark.parametrize("value", [1e-300, 1e-13, 0.0, 0.05, float("nan"), float("inf")])
def test_tolerance_range(value):
    with pytest.raises(ValueError, match=r"--tolerance must be in \[1e-12, 1e-2\]"):
        check_tolerance(value, name="--tolerance")


def test_tolerance_range_ends_accepted():
    assert check_tolerance(1e-12) == 1e-12 and check_tolerance(1e-2) == 1e-2


def test_build_estimate_counts_the_fft_and_refuses_over_the_limit(rng):
    pos, q = rng.uniform(0, 30, (300, 3)), rng.normal(size=300)
    setup = prepare_build(pos, q, tolerance=1e-6)
    estimate = estimate_build_bytes(setup.plan, 300)
    assert estimate >= 16 * math.prod(fft_shape(setup.plan.shape)) + 8 * math.prod(setup.plan.shape)
    assert estimate < 4 * (16 * math.prod(fft_shape(setup.plan.shape)) + 8 * math.prod(setup.plan.shape)) + 10**6
    prepare_build(pos, q, tolerance=1e-6, max_memory_bytes=estimate)
    with pytest.raises(ValueError, match=r"the potential build \(box .* needs an estimated .* --max-memory"):
        prepare_build(pos, q, tolerance=1e-6, max_memory_bytes=estimate - 1)
    tighter = prepare_build(pos, q, tolerance=1e-10)
    assert estimate_build_bytes(tighter.plan, 300) > estimate


def test_span_refused_unless_allowed(rng):
    pos, q = rng.uniform(0, 20, (50, 3)), rng.normal(size=50)
    pos[17, 1] = 1e12
    with pytest.raises(ValueError, match=r"span 1e\+12 Å along y, more than 10000 Å \(atom index 17 at y = 1e\+12 Å\)"):
        prepare_build(pos, q)
    with pytest.raises(ValueError, match="the potential build .* PiB of memory"):  # the memory guard still holds
        prepare_build(pos, q, allow_large_span=True)
    pos[17, 1] = MAX_SPAN_A - 30  # wide but allowed: one long thin axis fits
    assert prepare_build(pos, q).box_hi[1] > MAX_SPAN_A - 30


@pytest.fixture(scope="module")
def structures(tmp_path_factory):
    folder = tmp_path_factory.mktemp("guards")
    rng = np.random.default_rng(7)
    pos, q = rng.uniform(0, 12, (60, 3)), rng.normal(size=60)
    write_netcdf(structure_to_dataset(Structure(positions=pos, charges=q)), folder / "s.nc")
    far = pos.copy()
    far[3, 0] = 1e12
    write_netcdf(structure_to_dataset(Structure(positions=far, charges=q)), folder / "far.nc")
    return folder


def test_potential_cli_guards(structures):
    res = run_pipeline("potential", "s.nc", "-o", "p.nc", "--tolerance", "1e-300", cwd=structures)
    assert_refused(res, "--tolerance must be in [1e-12, 1e-2]", "1e-300")
    res = run_pipeline("potential", "far.nc", "-o", "p.nc", cwd=structures)
    assert_refused(res, "atom index 3 at x = 1e+12 Å", "--allow-large-span")
    res = run_pipeline("potential", "far.nc", "-o", "p.nc", "--allow-large-span", cwd=structures)
    assert_refused(res, "the potential build (box 1e+12", "PiB of memory", "available memory", "--max-memory")
    res = run_pipeline("potential", "s.nc", "-o", "p.nc", "--max-memory", "100K", cwd=structures)
    assert_refused(res, "the memory limit of 100 KiB (--max-memory)", "raise --tolerance")
    res = run_pipeline("potential", "s.nc", "-o", "p.nc", "--max-memory", "8X", cwd=structures)
    assert_refused(res, "--max-memory must be a size", "'8X'")
    assert not (structures / "p.nc").exists()


def test_descriptors_cli_guard(structures):
    res = run_pipeline("potential", "s.nc", "-o", "pot.nc", "--self-check", "10", cwd=structures)
    assert res.returncode == 0, res.stderr
    res = run_pipeline("descriptors", "s.nc", "--potential", "pot.nc", "-o", "d.nc", "--max-memory", "64K", cwd=structures)
    assert_refused(res, "descriptors of 60 atoms (--lmax 2, --n-radial 4, --cutoff 6 Å)", "limit of 64 KiB",
                    "lower --lmax, --n-radial or --cutoff")
    assert not (structures / "d.nc").exists()


def test_tensor_products_cli_guard(structures):
    res = run_pipeline("tensor-products", "-o", "tp.nc", "--lmax", "10", "--batch", "1000000", "--channels", "16", "--dtype", "float64",
               "--max-memory", "1T", cwd=structures)
    assert_refused(res, "tensor-products (--lmax up to 10, --batch 1000000, --channels 16) needs an estimated",
                    "3.5 TiB", "limit of 1 TiB", "lower --batch, --channels or --lmax")
    assert not (structures / "tp.nc").exists()
