"""Real Clebsch–Gordan coefficients (Wigner 3j tensors) in the e3nn real basis.

The complex coefficients ⟨l1 m1 l2 m2 | l3 m3⟩ come from Racah's formula evaluated in exact
rational arithmetic; the real tensor is obtained by the per-l unitary change of basis Q_l
from the real basis to the complex one (with the extra phase (−i)^l that makes every entry
real), then divided by its Frobenius norm:

    w3j(l1,l2,l3)[a,b,c] = Re Σ Q1[i,a] Q2[k,b] conj(Q3[n,c]) ⟨l1 i l2 k | l3 n⟩ / ‖·‖_F.

This is the construction and the sign convention of e3nn (``o3.wigner_3j``); the tensor is
invariant: w3j[a,b,c] = Σ D1[a,a'] D2[b,b'] D3[c,c'] w3j[a',b',c'] for every rotation, and
w3j(1,1,1) = ε/√6 (Levi-Civita), so x̂ ⊗ ŷ → +ẑ/√6.

The *CG tensor product* uses ``cg_block = √(2l3+1) · w3j`` (e3nn "component" irrep
normalisation), for which the stacked matrix over all l3 for a given (l1, l2) is orthogonal
and x̂ ⊗ ŷ → 1e is (0, 0, 1/√2).

Tables are cached per (l1, l2, l3) and returned read-only.

References
----------
Racah, Phys. Rev. 62 (1942) 438; e3nn ``o3/_wigner.py``.
"""

from __future__ import annotations

import functools
import logging
import math
from fractions import Fraction

import numpy as np

log = logging.getLogger(__name__)


def triangle_ok(l1: int, l2: int, l3: int) -> bool:
    """True when |l1 − l2| ≤ l3 ≤ l1 + l2 (the triangle rule)."""
    return abs(l1 - l2) <= l3 <= l1 + l2


def _check_degrees(*ls: int) -> None:
    for l in ls:
        if int(l) != l or l < 0:
            raise ValueError(f"degrees must be non-negative integers, got {ls}")


def su2_clebsch_gordan_coefficient(j1: int, m1: int, j2: int, m2: int, j3: int, m3: int) -> float:
    """⟨j1 m1 j2 m2 | j3 m3⟩ (Condon–Shortley convention) for integer j by Racah's formula."""
    if m3 != m1 + m2 or not triangle_ok(j1, j2, j3) or abs(m1) > j1 or abs(m2) > j2 or abs(m3) > j3:
        return 0.0
    f = math.factorial
    pref = Fraction(
        (2 * j3 + 1) * f(j3 + j1 - j2) * f(j3 - j1 + j2) * f(j1 + j2 - j3),
        f(j1 + j2 + j3 + 1),
    ) * (f(j3 + m3) * f(j3 - m3) * f(j1 - m1) * f(j1 + m1) * f(j2 - m2) * f(j2 + m2))
    total = Fraction(0)
    kmin = max(0, j2 - j3 - m1, j1 - j3 + m2)
    kmax = min(j1 + j2 - j3, j1 - m1, j2 + m2)
    for k in range(kmin, kmax + 1):
        den = f(k) * f(j1 + j2 - j3 - k) * f(j1 - m1 - k) * f(j2 + m2 - k) * f(j3 - j2 + m1 + k) * f(j3 - j1 - m2 + k)
        total += Fraction((-1) ** k, den)
    if total == 0:
        return 0.0
    return math.copysign(math.sqrt(float(pref * total * total)), float(total))


@functools.lru_cache(maxsize=None)
def _su2_table(l1: int, l2: int, l3: int) -> np.ndarray:
    c = np.zeros((2 * l1 + 1, 2 * l2 + 1, 2 * l3 + 1))
    for m1 in range(-l1, l1 + 1):
        for m2 in range(-l2, l2 + 1):
            m3 = m1 + m2
            if abs(m3) <= l3:
                c[l1 + m1, l2 + m2, l3 + m3] = su2_clebsch_gordan_coefficient(l1, m1, l2, m2, l3, m3)
    c.setflags(write=False)
    return c


def change_basis_real_to_complex(l: int) -> np.ndarray:
    """Unitary Q_l ((2l+1, 2l+1) complex128) with the phase (−i)^l, e3nn's convention.

    Row index: complex order m, column index: real order m (both −l..l)."""
    _check_degrees(l)
    q = np.zeros((2 * l + 1, 2 * l + 1), dtype=np.complex128)
    r = 1.0 / math.sqrt(2.0)
    for m in range(-l, 0):
        q[l + m, l + abs(m)] = r
        q[l + m, l - abs(m)] = -1j * r
    q[l, l] = 1.0
    for m in range(1, l + 1):
        q[l + m, l + abs(m)] = (-1) ** m * r
        q[l + m, l - abs(m)] = 1j * (-1) ** m * r
    return (-1j) ** l * q


@functools.lru_cache(maxsize=None)
def _wigner_3j_cached(l1: int, l2: int, l3: int) -> np.ndarray:
    if not triangle_ok(l1, l2, l3):
        out = np.zeros((2 * l1 + 1, 2 * l2 + 1, 2 * l3 + 1))
        out.setflags(write=False)
        return out
    q1, q2, q3 = (change_basis_real_to_complex(l) for l in (l1, l2, l3))
    c = np.einsum("ij,kl,mn,ikn->jlm", q1, q2, np.conj(q3.T), _su2_table(l1, l2, l3))
    if np.abs(c.imag).max() > 1e-10:  # pragma: no cover - a broken phase convention
        raise RuntimeError(f"real w3j({l1},{l2},{l3}) has an imaginary part {np.abs(c.imag).max():.2e}")
    c = np.ascontiguousarray(c.real)
    c /= np.linalg.norm(c)
    c[np.abs(c) < 1e-15] = 0.0
    c.setflags(write=False)
    return c


def wigner_3j(l1: int, l2: int, l3: int) -> np.ndarray:
    """Real, Frobenius-normalised Wigner 3j tensor in the e3nn basis.

    Parameters
    ----------
    l1, l2, l3 : int
        Degrees; a tensor of zeros is returned when the triangle rule fails.

    Returns
    -------
    (2l1+1, 2l2+1, 2l3+1) float64 read-only array, ‖·‖_F = 1 (or 0).
    """
    _check_degrees(l1, l2, l3)
    return _wigner_3j_cached(int(l1), int(l2), int(l3))


def cg_block(l1: int, l2: int, l3: int) -> np.ndarray:
    """CG product coefficients √(2l3+1)·w3j, shape (2l1+1, 2l2+1, 2l3+1), read-only float64."""
    return _cg_block_cached(int(l1), int(l2), int(l3))


@functools.lru_cache(maxsize=None)
def _cg_block_cached(l1: int, l2: int, l3: int) -> np.ndarray:
    out = wigner_3j(l1, l2, l3) * math.sqrt(2 * l3 + 1)
    out.setflags(write=False)
    return out


def cg_paths(lmax1: int, lmax2: int, lmax_out: int | None = None) -> list[tuple[int, int, int]]:
    """All triangle-admissible (l1, l2, l3) with l1 ≤ L1, l2 ≤ L2, l3 ≤ lmax_out, ordered by
    l1, then l2, then l3 (the order of the CG product's output blocks)."""
    lmax_out = lmax1 + lmax2 if lmax_out is None else lmax_out
    return [
        (l1, l2, l3)
        for l1 in range(lmax1 + 1)
        for l2 in range(lmax2 + 1)
        for l3 in range(abs(l1 - l2), min(l1 + l2, lmax_out) + 1)
    ]
