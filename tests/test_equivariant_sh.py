"""Spherical harmonics: e3nn conventions, closed forms, SciPy/e3nn peers, orthonormality."""

from __future__ import annotations

import math

import numpy as np
import pytest
from tests.conftest import TOL

from pipeline.equivariant.s2grid import gauss_legendre_grid, grid_points, legendre_dbeta_table, minimal_grid
from pipeline.equivariant.spherical_harmonics import legendre_table, lmax_of_dim, sh_index, spherical_harmonics


def _unit(rng, n, dtype=np.float64):
    v = rng.normal(size=(n, 3))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_convention_l1_block_is_xyz(rng, dtype):
    v = _unit(rng, 20, dtype)
    y = spherical_harmonics(1, v, normalization="component")
    assert y.dtype == dtype
    np.testing.assert_allclose(y[:, 0], 1.0, atol=TOL[np.dtype(dtype)])
    np.testing.assert_allclose(y[:, 1:], math.sqrt(3.0) * v, atol=10 * TOL[np.dtype(dtype)])


def test_convention_l2_closed_form(rng):
    # e3nn component-normalised l = 2 with polar axis +y, no Condon-Shortley phase
    x, y, z = _unit(rng, 30).T
    expected = math.sqrt(5.0) * np.stack(
        [math.sqrt(3) * x * z, math.sqrt(3) * x * y, y * y - 0.5 * (x * x + z * z), math.sqrt(3) * y * z, math.sqrt(3) / 2 * (z * z - x * x)],
        axis=1,
    )
    got = spherical_harmonics(2, np.stack([x, y, z], 1), normalization="component")[:, 4:9]
    np.testing.assert_allclose(got, expected, atol=1e-13)


def test_convention_flat_index_and_polar_axis():
    assert [sh_index(2, m) for m in (-2, 0, 2)] == [4, 6, 8]
    pole = spherical_harmonics(6, np.array([0.0, 1.0, 0.0]))
    for l in range(7):  # on the +y pole only m = 0 survives, with value √((2l+1)/4π)
        block = pole[l * l : (l + 1) ** 2]
        np.testing.assert_allclose(block[l], math.sqrt((2 * l + 1) / (4 * math.pi)), atol=1e-14)
        assert np.abs(np.delete(block, l)).max(initial=0.0) < 1e-14


def test_matches_scipy_complex_sh_to_l20(rng):
    # independent peer: SciPy's complex Y_l^m (Condon-Shortley) in the frame z' = y, x' = z, y' = x
    special = pytest.importorskip("scipy.special")
    if not hasattr(special, "sph_harm_y"):
        pytest.skip("scipy.special.sph_harm_y needs SciPy >= 1.15")
    v = _unit(rng, 40)
    beta = np.arccos(v[:, 1])
    alpha = np.arctan2(v[:, 0], v[:, 2])
    ours = spherical_harmonics(20, v)
    for l in (0, 1, 5, 13, 20):
        for m in range(0, l + 1):
            yc = special.sph_harm_y(l, m, beta, alpha) * (-1) ** m  # remove Condon-Shortley
            if m == 0:
                np.testing.assert_allclose(ours[:, sh_index(l, 0)], yc.real, atol=1e-12)
            else:
                np.testing.assert_allclose(ours[:, sh_index(l, m)], math.sqrt(2) * yc.real, atol=1e-12)
                np.testing.assert_allclose(ours[:, sh_index(l, -m)], math.sqrt(2) * yc.imag, atol=1e-12)


def test_matches_e3nn(rng):
    torch = pytest.importorskip("torch")
    o3 = pytest.importorskip("e3nn.o3")
    v = rng.normal(size=(25, 3))
    ref = o3.spherical_harmonics(list(range(9)), torch.tensor(v), normalize=True, normalization="integral").numpy()
    np.testing.assert_allclose(spherical_harmonics(8, v), ref, atol=1e-13)


@pytest.mark.parametrize("lmax", [20, 40])
def test_orthonormal_by_quadrature(lmax):
    n_rings, n_azimuth = minimal_grid(2 * lmax)
    _, w, _ = gauss_legendre_grid(n_rings, n_azimuth)
    y = spherical_harmonics(lmax, grid_points(n_rings, n_azimuth).reshape(-1, 3), normalize=False)
    weights = np.broadcast_to(w * 2 * np.pi / n_azimuth, (n_azimuth, n_rings)).reshape(-1)
    gram = (y.T * weights) @ y
    assert np.abs(gram - np.eye(gram.shape[0])).max() < 1e-12


def test_legendre_dbeta_matches_finite_difference():
    beta = np.linspace(0.2, 2.9, 7)
    h = 1e-6
    d = legendre_dbeta_table(9, np.cos(beta), np.sin(beta))
    fd = (legendre_table(9, np.cos(beta + h), np.sin(beta + h)) - legendre_table(9, np.cos(beta - h), np.sin(beta - h))) / (2 * h)
    assert np.abs(d - fd).max() < 1e-7


def test_bad_input():
    with pytest.raises(ValueError, match="normalization"):
        spherical_harmonics(2, np.ones(3), normalization="norm")
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        spherical_harmonics(2, np.ones((4, 2)))
    with pytest.raises(ValueError, match="size"):
        lmax_of_dim(10)


def _real_sh_closed_form(l: int, v: np.ndarray) -> np.ndarray:
    """Integral-normalised real SH of degree l = 2, 3, 4 for unit vectors, m = −l..l, written out.

    The textbook real harmonics (polar axis Z, azimuth atan2(Y, X), no Condon–Shortley phase)
    in the frame X = z, Y = x, Z = y: the e3nn basis with polar axis +y and α = atan2(x, z).
    """
    X, Y, Z = v[:, 2], v[:, 0], v[:, 1]
    pi = math.pi
    if l == 2:
        rows = [
            0.5 * math.sqrt(15 / pi) * X * Y, 0.5 * math.sqrt(15 / pi) * Y * Z, 0.25 * math.sqrt(5 / pi) * (3 * Z**2 - 1),
            0.5 * math.sqrt(15 / pi) * X * Z, 0.25 * math.sqrt(15 / pi) * (X**2 - Y**2),
        ]
    elif l == 3:
        rows = [
            0.25 * math.sqrt(35 / (2 * pi)) * Y * (3 * X**2 - Y**2), 0.5 * math.sqrt(105 / pi) * X * Y * Z,
            0.25 * math.sqrt(21 / (2 * pi)) * Y * (5 * Z**2 - 1), 0.25 * math.sqrt(7 / pi) * Z * (5 * Z**2 - 3),
            0.25 * math.sqrt(21 / (2 * pi)) * X * (5 * Z**2 - 1), 0.25 * math.sqrt(105 / pi) * Z * (X**2 - Y**2),
            0.25 * math.sqrt(35 / (2 * pi)) * X * (X**2 - 3 * Y**2),
        ]
    else:
        rows = [
            0.75 * math.sqrt(35 / pi) * X * Y * (X**2 - Y**2), 0.75 * math.sqrt(35 / (2 * pi)) * Y * Z * (3 * X**2 - Y**2),
            0.75 * math.sqrt(5 / pi) * X * Y * (7 * Z**2 - 1), 0.75 * math.sqrt(5 / (2 * pi)) * Y * Z * (7 * Z**2 - 3),
            3 / 16 * math.sqrt(1 / pi) * (35 * Z**4 - 30 * Z**2 + 3), 0.75 * math.sqrt(5 / (2 * pi)) * X * Z * (7 * Z**2 - 3),
            3 / 8 * math.sqrt(5 / pi) * (X**2 - Y**2) * (7 * Z**2 - 1), 0.75 * math.sqrt(35 / (2 * pi)) * X * Z * (X**2 - 3 * Y**2),
            3 / 16 * math.sqrt(35 / pi) * (X**2 * (X**2 - 3 * Y**2) - Y**2 * (3 * X**2 - Y**2)),
        ]
    return np.stack(rows, axis=1)


@pytest.mark.parametrize("l", [2, 3, 4])
def test_convention_closed_forms_l2_to_l4(rng, l):
    # every order m of degrees 2-4, sign included, without SymPy, SciPy or e3nn
    v = _unit(rng, 50)
    got = spherical_harmonics(4, v)[:, l * l : (l + 1) ** 2]
    np.testing.assert_allclose(got, _real_sh_closed_form(l, v), rtol=0, atol=1e-14)


def _scipy_complex_sh(l: int, m: int, beta: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """SciPy's complex Y_l^m (Condon–Shortley phase) at polar angle beta, azimuth alpha."""
    special = pytest.importorskip("scipy.special")
    if hasattr(special, "sph_harm_y"):  # SciPy >= 1.15
        return special.sph_harm_y(l, m, beta, alpha)
    return special.sph_harm(m, l, alpha, beta)  # older SciPy: order, degree, azimuth, polar


@pytest.mark.parametrize("l", [2, 3, 4])
def test_matches_scipy_complex_sh_l2_to_l4(rng, l):
    # a peer that needs no optional package: Y_lm = √2 (−1)^m Re/Im Y_l^|m| in the y-polar frame
    v = _unit(rng, 40)
    beta = np.arccos(v[:, 1])
    alpha = np.arctan2(v[:, 0], v[:, 2])
    ours = spherical_harmonics(l, v)
    for m in range(-l, l + 1):
        yc = _scipy_complex_sh(l, abs(m), beta, alpha) * (-1) ** abs(m)  # remove Condon-Shortley
        expected = yc.real if m == 0 else math.sqrt(2) * (yc.real if m > 0 else yc.imag)
        np.testing.assert_allclose(ours[:, sh_index(l, m)], expected, rtol=0, atol=1e-13, err_msg=f"l={l} m={m}")
