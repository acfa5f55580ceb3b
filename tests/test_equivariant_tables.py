"""Clebsch–Gordan, Gaunt and Wigner D tables: reference values, SymPy/e3nn peers, identities."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.equivariant.clebsch_gordan import cg_block, su2_clebsch_gordan_coefficient, wigner_3j
from pipeline.equivariant.gaunt import gaunt_path_factor, gaunt_table, three_j_zero
from pipeline.equivariant.spherical_harmonics import spherical_harmonics
from pipeline.equivariant.wigner import random_rotations, wigner_D


@pytest.mark.parametrize(
    ("l1", "m1", "l2", "m2", "l3", "m3", "value"),
    [
        # integral-normalised real Gaunt, SymPy 1.14 real_gaunt (12 digits); float64 tol 1e-12
        (0, 0, 0, 0, 0, 0, 0.282094791774),
        (1, 0, 1, 0, 2, 0, 0.252313252202),
        (1, 1, 1, 1, 2, 2, 0.218509686118),
        (2, 0, 2, 0, 2, 0, 0.180223751573),
    ],
)
def test_gaunt_reference_values(l1, m1, l2, m2, l3, m3, value):
    assert abs(gaunt_table(l1, l2, l3)[l1 + m1, l2 + m2, l3 + m3] - value) < 1e-12


def test_sympy_real_sh_convention_map():
    # SymPy's Znm (real SH from Ynm with Condon-Shortley phase, polar axis z) equals ours in the
    # frame z' = y, x' = z, y' = x times s(l, m) = (-1)^m. A Gaunt entry is nonzero only when
    # m3 = ±m1 ± m2, where s1 s2 s3 = (-1)^(m1+m2+m3) = +1, so real_gaunt maps index-for-index.
    sympy = pytest.importorskip("sympy")
    from sympy.functions.special.spherical_harmonics import Znm

    v = np.array([0.3, -0.5, 0.8])
    v /= np.linalg.norm(v)
    beta, alpha = math.acos(v[1]), math.atan2(v[0], v[2])
    ours = spherical_harmonics(3, v)
    for l, m in [(1, 1), (1, -1), (2, -1), (2, 2), (3, -3), (3, 2)]:
        theirs = complex(sympy.N(Znm(l, m, beta, alpha).expand(func=True), 20))
        assert abs(theirs.imag) < 1e-12
        theirs = theirs.real
        assert abs(theirs - (-1) ** m * ours[l * l + l + m]) < 1e-12, (l, m)


def test_gaunt_matches_sympy_real_gaunt_entrywise():
    wigner = pytest.importorskip("sympy.physics.wigner")
    for l1, l2, l3 in [(1, 1, 2), (1, 2, 1), (2, 2, 2), (1, 2, 3), (2, 2, 4), (0, 2, 2), (1, 1, 1)]:
        g = gaunt_table(l1, l2, l3)
        ref = np.array(
            [
                [[float(wigner.real_gaunt(l1, l2, l3, m1, m2, m3)) for m3 in range(-l3, l3 + 1)] for m2 in range(-l2, l2 + 1)]
                for m1 in range(-l1, l1 + 1)
            ]
        )
        assert np.abs(g - ref).max() < 1e-12, (l1, l2, l3)


def test_gaunt_m0_matches_sympy_complex_gaunt():
    # m = 0 real and complex SH coincide: G(l1 0, l2 0, l3 0) = SymPy gaunt(l1, l2, l3, 0, 0, 0)
    wigner = pytest.importorskip("sympy.physics.wigner")
    for l1, l2, l3 in [(2, 3, 5), (3, 3, 4), (4, 6, 6), (5, 5, 8)]:
        assert abs(gaunt_table(l1, l2, l3)[l1, l2, l3] - float(wigner.gaunt(l1, l2, l3, 0, 0, 0))) < 1e-12


def test_gaunt_equals_cg_times_closed_form_factor():
    for l1 in range(6):
        for l2 in range(6):
            for l3 in range(abs(l1 - l2), l1 + l2 + 1):
                g = gaunt_table(l1, l2, l3)
                if (l1 + l2 + l3) % 2:
                    assert np.abs(g).max() == 0.0
                else:
                    ratio = gaunt_path_factor(l1, l2, l3)
                    assert ratio > 0
                    assert np.abs(g - ratio * wigner_3j(l1, l2, l3)).max() < 1e-13, (l1, l2, l3)


def test_three_j_zero_matches_racah():
    for l1, l2, l3 in [(1, 1, 2), (2, 3, 3), (4, 4, 6), (5, 7, 4)]:
        racah = (-1) ** (l1 - l2) * su2_clebsch_gordan_coefficient(l1, 0, l2, 0, l3, 0) / math.sqrt(2 * l3 + 1)
        assert abs(three_j_zero(l1, l2, l3) - racah) < 1e-14


def test_w3j_111_is_levi_civita_and_matches_e3nn():
    eps = np.zeros((3, 3, 3))
    for i, j, k in [(0, 1, 2), (1, 2, 0), (2, 0, 1)]:
        eps[i, j, k], eps[j, i, k] = 1.0, -1.0
    assert np.abs(wigner_3j(1, 1, 1) - eps / math.sqrt(6)).max() < 1e-15
    # x̂ ⊗ ŷ → 1e = (0, 0, 1/√2) with the CG-product normalisation √(2l3+1)·w3j
    np.testing.assert_allclose(np.einsum("i,j,ijk->k", [1, 0, 0], [0, 1, 0], cg_block(1, 1, 1)), [0, 0, 1 / math.sqrt(2)], atol=1e-15)
    torch = pytest.importorskip("torch")
    o3 = pytest.importorskip("e3nn.o3")
    for l1, l2, l3 in [(1, 2, 3), (2, 2, 1), (3, 4, 2), (4, 4, 4)]:
        ref = o3.wigner_3j(l1, l2, l3, dtype=torch.float64).numpy()
        assert np.abs(wigner_3j(l1, l2, l3) - ref).max() < 1e-13


def test_cg_orthogonal_per_pair():
    for l1, l2 in [(0, 3), (2, 2), (3, 5), (6, 4)]:
        mat = np.concatenate([cg_block(l1, l2, l3).reshape(-1, 2 * l3 + 1) for l3 in range(abs(l1 - l2), l1 + l2 + 1)], axis=1)
        assert mat.shape[0] == mat.shape[1]
        assert np.abs(mat.T @ mat - np.eye(mat.shape[0])).max() < 1e-13


def test_tables_are_read_only_and_invalid_triangle_is_zero():
    with pytest.raises(ValueError):
        wigner_3j(1, 1, 1)[0, 0, 0] = 1.0
    assert np.abs(wigner_3j(1, 1, 3)).max() == 0.0
    with pytest.raises(ValueError, match="non-negative"):
        gaunt_table(-1, 1, 1)


def test_wigner_D1_equals_R_and_is_a_representation(rng):
    r = random_rotations(3, rng=rng)
    d = wigner_D(4, r)
    np.testing.assert_allclose(d[:, 1:4, 1:4], r, atol=1e-13)
    np.testing.assert_allclose(wigner_D(4, r[0] @ r[1]), d[0] @ d[1], atol=1e-12)
    np.testing.assert_allclose(np.einsum("nab,ncb->nac", d, d), np.broadcast_to(np.eye(25), (3, 25, 25)), atol=1e-12)
    v = rng.normal(size=(5, 3))
    np.testing.assert_allclose(spherical_harmonics(4, v @ r[2].T), spherical_harmonics(4, v) @ d[2].T, atol=1e-12)


def test_w3j_is_invariant(rng):
    r = random_rotations(1, rng=rng)[0]
    d = wigner_D(5, r)
    for l1, l2, l3 in [(1, 2, 3), (2, 3, 2), (5, 4, 3)]:
        blocks = [d[l * l : (l + 1) ** 2, l * l : (l + 1) ** 2] for l in (l1, l2, l3)]
        rotated = np.einsum("ai,bj,ck,ijk->abc", *blocks, wigner_3j(l1, l2, l3))
        assert np.abs(rotated - wigner_3j(l1, l2, l3)).max() < 1e-12
