"""Separable ring transforms: slot order, folded azimuth, half-torus Fourier tables, dtypes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.equivariant.fourier import fourier_beta_matrices, half_torus_nodes, legendre_fourier_table
from pipeline.equivariant.products import get_plan, tensor_product, tensor_product_vjp
from pipeline.equivariant.ring_transform import Workspace, slot_order
from pipeline.equivariant.s2grid import S2Grid, grid_points
from pipeline.equivariant.spherical_harmonics import legendre_table, spherical_harmonics


def test_slot_order_groups_each_order_cos_then_sin():
    lmax = 4
    order, inverse, ranges = slot_order(lmax)
    n = (lmax + 1) ** 2
    assert sorted(order.tolist()) == list(range(n))
    assert np.array_equal(order[inverse], np.arange(n))
    l_of = np.floor(np.sqrt(np.arange(n))).astype(int)
    m_of = np.arange(n) - l_of * l_of - l_of
    assert [r[0] for r in ranges] == list(range(lmax + 1)) and ranges[-1][2] == n
    for m, start, stop in ranges:
        rows = order[start:stop]
        k = lmax - m + 1
        assert stop - start == (k if m == 0 else 2 * k)
        assert np.array_equal(l_of[rows[:k]], np.arange(m, lmax + 1)) and (m_of[rows[:k]] == m).all()
        if m:
            assert np.array_equal(l_of[rows[k:]], np.arange(m, lmax + 1)) and (m_of[rows[k:]] == -m).all()


@pytest.mark.parametrize("n_azimuth", [13, 14])  # odd; even (α = π is its own mirror)
def test_folded_synthesis_matches_sh_on_the_grid(rng, n_azimuth):
    lmax, n_rings = 5, 6
    grid = S2Grid(lmax, n_rings, n_azimuth, xp=np, dtype=np.float64)
    c = rng.normal(size=(3, (lmax + 1) ** 2))
    folded = grid.synthesize(grid.to_slots(c, lmax), lmax)
    assert folded.shape == (2, n_azimuth // 2 + 1, n_rings, 3)
    direct = (spherical_harmonics(lmax, grid_points(n_rings, n_azimuth).reshape(-1, 3), normalize=False) @ c.T).reshape(n_azimuth, n_rings, 3)
    k = np.arange(n_azimuth // 2 + 1)
    np.testing.assert_allclose(folded[0] + folded[1], direct[k], atol=1e-12)  # f(α_k) = C + Z
    np.testing.assert_allclose(folded[0] - folded[1], direct[(-k) % n_azimuth], atol=1e-12)  # f(−α_k) = C − Z


@pytest.mark.parametrize("n_azimuth", [11, 12])
def test_folded_round_trip_and_product_on_the_grid(rng, n_azimuth):
    lmax, n_rings = 5, 6  # exact for integrands of degree ≤ 10 = 2·lmax
    grid = S2Grid(lmax, n_rings, n_azimuth, xp=np, dtype=np.float64)
    c = rng.normal(size=(4, (lmax + 1) ** 2))
    folded = grid.synthesize(grid.to_slots(c, lmax), lmax)
    back = grid.from_slots(grid.analyze(folded, lmax), lmax)
    np.testing.assert_allclose(back, c, atol=1e-12)
    # folded pointwise product = unfolded product at ±α_k
    g = grid.synthesize(grid.to_slots(rng.normal(size=(4, (lmax + 1) ** 2)), lmax), lmax)
    prod = grid.multiply(folded, g)
    for sign in (1, -1):
        np.testing.assert_allclose(prod[0] + sign * prod[1], (folded[0] + sign * folded[1]) * (g[0] + sign * g[1]), atol=1e-12)
    in_place = grid.multiply(folded.copy(), g, overwrite=True)
    np.testing.assert_allclose(in_place, prod, atol=1e-14)


def test_half_torus_synthesis_is_the_legendre_table():
    lmax, n_beta = 7, 11
    beta = half_torus_nodes(n_beta)
    synthesis, _ = fourier_beta_matrices(lmax, n_beta)
    table = legendre_table(lmax, np.cos(beta), np.sin(beta))
    for m in range(lmax + 1):
        np.testing.assert_allclose(synthesis[m], table[m, m:].T, atol=1e-13)


def test_legendre_fourier_table_parity():
    table = legendre_fourier_table(6)  # [m, l, n + L]
    assert np.abs(table[0::2].imag).max() == 0.0 and np.abs(table[1::2].real).max() == 0.0
    np.testing.assert_allclose(table[0::2], table[0::2, :, ::-1], atol=1e-15)  # cos series: F[−n] = F[n]
    np.testing.assert_allclose(table[1::2], -table[1::2, :, ::-1], atol=1e-15)  # sin series: F[−n] = −F[n]


@pytest.mark.parametrize("m", [0, 1, 4, 5])
def test_half_torus_projection_is_exact(rng, m):
    # reference: Gauss–Legendre in t = cos β with many nodes (the integrand is a polynomial in t)
    lmax, n_beta = 6, 9
    _, projection = fourier_beta_matrices(lmax, n_beta)
    if m % 2 == 0:
        coef, n = rng.normal(size=n_beta), np.arange(n_beta)  # cos series, degree < n_beta
        h = lambda b: np.cos(np.outer(b, n)) @ coef  # noqa: E731
    else:
        coef, n = rng.normal(size=n_beta - 1), np.arange(1, n_beta)  # sin series, degree < n_beta
        h = lambda b: np.sin(np.outer(b, n)) @ coef  # noqa: E731
    t, w = np.polynomial.legendre.leggauss(80)
    beta_q = np.arccos(t)
    ref = (legendre_table(lmax, t, np.sqrt(1.0 - t * t))[m, m:] * h(beta_q)) @ w
    got = projection[m] @ h(half_torus_nodes(n_beta))
    np.testing.assert_allclose(got, ref, atol=1e-12)
    assert np.abs(ref).max() > 1e-3  # not vacuous


@pytest.mark.parametrize("method", ["gaunt_grid", "gaunt_fourier", "vector_gaunt"])
def test_float32_tables_and_intermediates_stay_float32(rng, method):
    lmax = 3
    plan = get_plan(method, lmax, lmax, 2 * lmax, xp=np, dtype=np.float32)
    t = plan.transform
    tables = [*t.azimuth.values(), *t.analysis, *(s for mats in t.synthesis.values() for s in mats)]
    assert all(a.dtype == np.float32 for a in tables)
    x = rng.normal(size=(5, (lmax + 1) ** 2)).astype(np.float32)
    ws = Workspace(np, np.float32)
    ct = t.to_slots(x, lmax, ws=ws)
    values = t.synthesize(ct, lmax, ws=ws)
    assert ct.dtype == values.dtype == t.multiply(values, values, ws=ws).dtype == t.analyze(values, lmax, ws=ws).dtype == np.float32
    out, _ = tensor_product(x, x, method=method)
    gx, gy = tensor_product_vjp(x, x, out, method=method)
    assert out.dtype == gx.dtype == gy.dtype == np.float32


def test_workspace_reuses_and_grows():
    ws = Workspace(np, np.float32)
    a = ws.get("a", (3, 4))
    b = ws.get("a", (2, 4))
    assert b.shape == (2, 4) and b.dtype == np.float32 and np.shares_memory(a, b)
    c = ws.get("a", (5, 4))
    assert c.shape == (5, 4) and not np.shares_memory(a, c)
    assert not np.shares_memory(ws.get("b", (3, 4)), ws.get("a", (5, 4)))
    assert math.prod(ws.get("a", (1, 1)).shape) == 1
