"""pipeline.electrostatics.tucker: mode products, ranks from the tail rule, and the recorded error."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.electrostatics.tucker import mode_product, tucker_hosvd, tucker_to_full


def _low_rank(shape, ranks, rng):
    core = rng.normal(size=ranks)
    factors = [np.linalg.qr(rng.normal(size=(n, r)))[0] for n, r in zip(shape, ranks)]
    return tucker_to_full(core, factors)


@pytest.mark.parametrize("mode", [0, 1, 2])
def test_mode_product_matches_einsum(mode):
    rng = np.random.default_rng(1)
    tensor, matrix = rng.normal(size=(4, 5, 6)), rng.normal(size=(3, (4, 5, 6)[mode]))
    expected = np.moveaxis(np.tensordot(matrix, tensor, axes=(1, mode)), 0, mode)
    np.testing.assert_allclose(mode_product(tensor, matrix, mode), expected, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("tolerance", [1e-3, 1e-9])  # the Gram route and the SVD route
def test_exact_low_rank_tensor_is_recovered_at_its_ranks(tolerance):
    rng = np.random.default_rng(2)
    tensor = _low_rank((20, 18, 16), (4, 3, 5), rng)
    core, factors, rel_error = tucker_hosvd(tensor, tolerance)
    assert core.shape == (4, 3, 5)
    actual = np.linalg.norm(tucker_to_full(core, factors) - tensor) / np.linalg.norm(tensor)
    assert actual < 1e-13 and rel_error < 1e-13
    for factor in factors:
        np.testing.assert_allclose(factor.T @ factor, np.eye(factor.shape[1]), rtol=0, atol=1e-13)


@pytest.mark.parametrize("tolerance", [1e-2, 1e-5, 1e-8, 1e-10])
def test_recorded_error_is_the_reconstruction_error_and_meets_the_tolerance(tolerance):
    # a smooth tensor with decaying spectra (a Gaussian of three coordinates, not separable)
    x = np.linspace(-1, 1, 40)
    gx, gy, gz = np.meshgrid(x, x, x, indexing="ij")
    tensor = np.exp(-3.0 * ((gx - 0.3 * gy) ** 2 + (gy + 0.2 * gz) ** 2 + gz**2))
    core, factors, rel_error = tucker_hosvd(tensor, tolerance)
    actual = np.linalg.norm(tucker_to_full(core, factors) - tensor) / np.linalg.norm(tensor)
    assert actual <= tolerance
    assert abs(rel_error - actual) <= 1e-3 * tolerance + 1e-15
