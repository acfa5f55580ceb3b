"""Expressivity, span and reachable paths reproduce the counts of design notes §5."""

from __future__ import annotations

import pytest

from pipeline.equivariant.expressivity import cg_path_count, even_path_count, expressivity


def test_closed_form_counts():
    assert [cg_path_count(l) for l in range(1, 5)] == [6, 19, 44, 85]
    assert [even_path_count(l) for l in range(1, 5)] == [5, 14, 30, 55]
    assert cg_path_count(10) == 891 and even_path_count(10) == 506


@pytest.mark.parametrize("lmax", [1, 2, 3, 4, 5, 6])
def test_cg_expressivity(rng, lmax):
    r = expressivity("cg", lmax, 1, rng=rng)
    assert (r.expressivity, r.span, r.n_paths) == (cg_path_count(lmax),) * 3


# gaunt_fourier computes the same tensor as gaunt_grid (tested to 1e-12), so L <= 4 suffices.
@pytest.mark.parametrize(
    ("method", "lmax"),
    [("gaunt_grid", lmax) for lmax in range(1, 7)] + [("gaunt_fourier", lmax) for lmax in range(1, 5)],
)
def test_gaunt_single_channel(rng, method, lmax):
    r = expressivity(method, lmax, 1, rng=rng)
    assert r.expressivity == 4 * lmax + 1
    assert r.span == r.n_paths == even_path_count(lmax)
    assert all((l1 + l2 + l3) % 2 == 0 for l1, l2, l3 in r.paths)


@pytest.mark.parametrize("lmax", [1, 2, 3])
def test_gaunt_channels_saturate_at_even_paths(rng, lmax):
    few = expressivity("gaunt_grid", lmax, 2, rng=rng)
    many = expressivity("gaunt_grid", lmax, 2 * lmax + 2, rng=rng)
    assert many.expressivity == even_path_count(lmax)
    assert few.expressivity <= many.expressivity


@pytest.mark.parametrize("lmax", [1, 2, 3, 4])
def test_gaunt_plus_vector_gaunt_reach_every_path(rng, lmax):
    cg = set(expressivity("cg", lmax, 1, rng=rng).paths)
    even = set(expressivity("gaunt_grid", lmax, 1, rng=rng).paths)
    vec = expressivity("vector_gaunt", lmax, 1, rng=rng)
    odd = set(vec.paths)
    assert even | odd == cg and not even & odd
    assert all((l1 + l2 + l3) % 2 == 1 for l1, l2, l3 in odd)
    assert vec.expressivity == 4 * lmax - 3  # L + L + (2L-1) weights minus two scalings
