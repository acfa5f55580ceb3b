"""Host transfers of the device code paths, counted on NumPy.

Every electrostatics module is made to answer "not numpy" to its backend checks (so the CuPy
code runs with NumPy arrays) and every ``to_host`` of the package is wrapped by a counter. The
same work is done twice, with the default chunk sizes and with chunks so small that every loop
runs many times: equal counts mean that no transfer sits inside a chunk loop.
"""

from __future__ import annotations

import importlib
from collections import Counter

import numpy as np
import pytest

from pipeline.electrostatics import build_potential
from pipeline.electrostatics.direct import direct_potential
from pipeline.equivariant.products import tensor_product, tensor_product_vjp
from tests.conftest import count_host_transfers

ARRAY_MODULES = ("gridding", "short_range", "long_range", "tucker", "direct", "potential", "blas")


@pytest.fixture
def counted(monkeypatch):
    """A Counter of ``to_host`` calls by calling function, on the array (CuPy) code paths."""
    for name in ARRAY_MODULES:
        monkeypatch.setattr(importlib.import_module(f"pipeline.electrostatics.{name}"), "backend_name", lambda xp: "array")
    return count_host_transfers(monkeypatch)


def _stages(pos, q, rng):
    """Build, atom values, points, field and a map; returns {stage: value} for checking."""
    pot, _ = build_potential(pos, q, tolerance=1e-6, max_storage_bytes=6000)  # stored at a smaller α: mid range
    out = {"atoms": pot.at_atoms()[0]}
    pts = rng.uniform(np.asarray(pot.box_lo), np.asarray(pot.box_hi), (3000, 3))
    out["points"] = pot.potential(pts)
    out["field"] = pot.field(pts[:40])
    axes = [np.linspace(pot.box_lo[k], pot.box_hi[k], 12) for k in range(3)]
    out["grid"] = pot.grid(*axes)
    return out, pts


def _run(pos, q, counter, seed):
    counts = {}
    values = {}
    rng = np.random.default_rng(seed)
    counter.clear()
    values, pts = _stages(pos, q, rng)
    counts = dict(counter)
    return counts, values, pts


def test_no_transfers_inside_chunk_loops(counted, monkeypatch):
    rng = np.random.default_rng(3)
    n = 600
    pos = rng.uniform(0.0, (n / 0.1) ** (1 / 3), (n, 3))
    q = rng.normal(0.0, 0.5, n)
    q -= q.mean()
    big, values, pts = _run(pos, q, counted, 1)
    cells = importlib.import_module("pipeline.electrostatics.short_range_cells")
    calls = Counter()
    ranges = cells.neighbour_ranges
    monkeypatch.setattr(cells, "neighbour_ranges", lambda *a: calls.update(["ranges"]) or ranges(*a))
    monkeypatch.setattr(cells, "BLOCK_PAIRS", 5000)
    monkeypatch.setattr(cells, "COUNT_BLOCK", 64)
    monkeypatch.setattr(importlib.import_module("pipeline.electrostatics.gridding"), "CHUNK_ENTRIES", 20_000)
    monkeypatch.setattr(importlib.import_module("pipeline.electrostatics.potential"), "EVAL_BLOCK", 100)
    small, small_values, _ = _run(pos, q, counted, 1)
    assert calls["ranges"] > 100  # the small chunks did run many times
    assert small == big, (small, big)
    # per stage (build + atoms + 3000 points + 40 field points + 12³ map): a handful of transfers
    assert sum(big.values()) <= 40, big
    assert not any("neighbour_ranges" in k or "interpolate" in k or "spread" in k for k in big)
    for key in values:
        np.testing.assert_allclose(small_values[key], values[key], rtol=0, atol=1e-12 * np.abs(values[key]).max())
    ref = direct_potential(pos, pos, q)
    assert np.max(np.abs(values["atoms"] - ref)) < 3e-6 * np.abs(ref).max()
    ref = direct_potential(pts[:200], pos, q)
    assert np.max(np.abs(values["points"][:200] - ref)) < 3e-6 * np.abs(ref).max()


def test_tensor_products_make_no_transfers(counted):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 16)).astype(np.float32)
    y = rng.normal(size=(300, 16)).astype(np.float32)
    for method in ("cg", "gaunt_grid", "gaunt_fourier", "vector_gaunt"):
        out, _ = tensor_product(x, y, method=method, chunk_size=7)  # 43 chunks
        tensor_product_vjp(x, y, np.ones_like(out), method=method, chunk_size=7)
    assert sum(counted.values()) == 0, dict(counted)
