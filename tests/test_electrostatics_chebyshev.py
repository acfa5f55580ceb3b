"""pipeline.electrostatics.chebyshev against NumPy's Chebyshev module and closed forms."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.polynomial import chebyshev as npcheb

from pipeline.electrostatics.chebyshev import (
    cheb_nodes1,
    chebvander,
    degree_for_gaussian,
    derivative_matrix,
    from_reference,
    to_reference,
    values_to_coefficients_matrix,
)


@pytest.mark.parametrize("m", [1, 2, 7, 64])
def test_convention_first_kind_nodes_descending(m):
    nodes = cheb_nodes1(m)
    np.testing.assert_allclose(np.sort(nodes), np.sort(npcheb.chebpts1(m)), rtol=0, atol=1e-15)
    assert np.all(np.diff(nodes) < 0)  # generated order: from near 1 to near -1


def test_values_to_coefficients_inverts_the_vandermonde_matrix():
    m = 33
    coefficients = np.random.default_rng(0).normal(size=m)
    values = npcheb.chebval(cheb_nodes1(m), coefficients)  # NumPy evaluates, low to high
    np.testing.assert_allclose(values_to_coefficients_matrix(m) @ values, coefficients, rtol=0, atol=1e-13)


def test_chebvander_matches_numpy():
    xi = np.linspace(-1.0, 1.0, 101)
    np.testing.assert_allclose(chebvander(xi, 20), npcheb.chebvander(xi, 19), rtol=0, atol=1e-13)


def test_chebvander_fills_the_given_array():
    xi = np.linspace(-1, 1, 9)
    buffer = np.full((6, 9), np.nan)
    values = chebvander(xi, 6, out=buffer)
    assert np.shares_memory(values, buffer)
    np.testing.assert_allclose(values, npcheb.chebvander(xi, 5), rtol=0, atol=1e-15)


def test_derivative_matrix_differentiates_a_polynomial_exactly():
    # f(ξ) = ξ^5 − 3ξ^2 + 2, f' = 5ξ^4 − 6ξ; coefficients through NumPy's poly2cheb
    c = npcheb.poly2cheb([2.0, 0.0, -3.0, 0.0, 0.0, 1.0])
    m = 8
    c = np.pad(c, (0, m - c.size))
    xi = np.linspace(-1, 1, 11)
    np.testing.assert_allclose(npcheb.chebval(xi, derivative_matrix(m) @ c), 5 * xi**4 - 6 * xi, rtol=0, atol=1e-12)


def test_reference_maps_round_trip():
    x = np.array([-3.0, 0.5, 7.0])
    np.testing.assert_allclose(from_reference(to_reference(x, -3.0, 7.0), -3.0, 7.0), x, rtol=0, atol=1e-14)
    np.testing.assert_allclose(to_reference(np.array([-3.0, 7.0]), -3.0, 7.0), [-1.0, 1.0])


@pytest.mark.parametrize(("alpha", "half_width", "tolerance"), [(0.3, 25.0, 1e-6), (0.2, 50.0, 1e-8), (0.5, 10.0, 1e-3)])
def test_degree_rule_interpolates_the_narrowest_gaussian_to_the_tolerance(alpha, half_width, tolerance):
    m = degree_for_gaussian(alpha, half_width, tolerance)
    nodes = cheb_nodes1(m)
    coefficients = values_to_coefficients_matrix(m) @ np.exp(-((alpha * half_width * nodes) ** 2))
    xi = np.linspace(-1.0, 1.0, 4001)
    error = np.max(np.abs(npcheb.chebval(xi, coefficients) - np.exp(-((alpha * half_width * xi) ** 2))))
    assert error <= tolerance
    # and the rule is not wasteful: 25% fewer nodes miss it
    fewer = int(0.75 * m)
    c = values_to_coefficients_matrix(fewer) @ np.exp(-((alpha * half_width * cheb_nodes1(fewer)) ** 2))
    assert np.max(np.abs(npcheb.chebval(xi, c) - np.exp(-((alpha * half_width * xi) ** 2)))) > tolerance


def test_tensor_values_to_coefficients_recovers_a_polynomial(rng):
    """The per-axis DCT of node values gives back the coefficients of a random tensor polynomial
    (numpy's chebval3d evaluates it independently); uneven sizes, odd and even."""
    from pipeline.electrostatics.long_range import values_to_coefficients

    shape = (7, 12, 9)
    coef = rng.normal(size=shape)
    nodes = [cheb_nodes1(m) for m in shape]
    values = npcheb.chebgrid3d(*nodes, coef)
    np.testing.assert_allclose(values_to_coefficients(values), coef, rtol=0, atol=1e-13 * np.abs(coef).max())
