"""Compiled (Numba, GIL released) chunk of :meth:`TuckerSphereEvaluator.sphere_projection`.

One call projects the long-range potential on the spheres around a chunk of centres: the
factor values at the local nodes (Chebyshev recurrence, then a GEMM with the factor), the
ring contraction, the two local products and the product with the quadrature table. The
NumPy form of the same steps took some 25,000 calls at 10⁵ atoms (a ``matmul`` over a stack
of 128 small matrices among them), each taking the GIL, so two threads gained 1.6× over one;
here the GEMMs go through ``np.dot`` (BLAS ``gemm`` of the library SciPy ships, limited to
one thread per chunk like NumPy's own, see :mod:`pipeline.equivariant.chunk_kernels`).

Layouts (n centres of the chunk, m Chebyshev terms per axis, ranks r1, r2, r3, n1 and n3
local nodes in x and z, n_rings rings, n_out outputs):

* ``factor_k`` (m, r_k): Chebyshev coefficients of the Tucker factor of axis k, low to high;
* ``core_y`` (r2, r1·r3): the core with the y axis first;
* ``table`` (n1·n_rings·n3, n_out): the quadrature table Q, rows ordered (p, j, r);
* ``scratch``: one float64 buffer of :func:`projection_scratch_size` values, cut to shape here.
"""

from __future__ import annotations

import numba
import numpy as np
import scipy.linalg.cython_blas  # noqa: F401  (the BLAS of numba's np.dot, see pipeline.equivariant.chunk_kernels)


def projection_scratch_size(n_centres: int, m: int, ranks: tuple[int, int, int], n1: int, n3: int, n_rings: int,
                            group: int) -> int:
    """Length (float64 values) of the scratch buffer of :func:`project_chunk`.

    For up to ``n_centres`` centres; m is the largest number of Chebyshev terms of the three factors.
    """
    r1, r2, r3 = ranks
    points = n_centres * max(n1, n3, n_rings)
    return (points * m + n_centres * (n1 * r1 + n3 * r3 + n_rings * r2) + group * n_rings * r1 * r3
            + 2 * n_rings * r1 * n3 + group * n1 * n_rings * n3)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def factor_values(coords: np.ndarray, offsets: np.ndarray, lo: float, hi: float, factor: np.ndarray,
                  vander: np.ndarray, out: np.ndarray) -> None:
    """out[i·q + k] = Σ_n T_n(ξ(coords[i] + offsets[k])) factor[n] for a factor over [lo, hi] Å.

    ξ = (2x − (lo + hi))/(hi − lo) as in :func:`pipeline.electrostatics.chebyshev.to_reference`;
    ``vander`` holds the (m, n_points) Chebyshev values (three-term recurrence along rows, as
    :func:`~pipeline.electrostatics.chebyshev.chebvander`); ``out`` is (n_points, r).
    """
    n_off, m = offsets.shape[0], factor.shape[0]
    n_points = coords.shape[0] * n_off
    values = vander[: m * n_points].reshape((m, n_points))
    width, centre = hi - lo, lo + hi
    values[0, :] = 1.0
    if m > 1:
        for i in range(coords.shape[0]):
            for k in range(n_off):
                values[1, i * n_off + k] = (2.0 * (coords[i] + offsets[k]) - centre) / width
    for n in range(2, m):
        for s in range(n_points):
            values[n, s] = 2.0 * values[1, s] * values[n - 1, s] - values[n - 2, s]
    np.dot(values.T, factor, out)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def project_chunk(centres: np.ndarray, factors: tuple, box_lo: np.ndarray, box_hi: np.ndarray, nodes1: np.ndarray,
                  nodes3: np.ndarray, offsets2: np.ndarray, core_y: np.ndarray, table: np.ndarray, group: int,
                  scratch: np.ndarray, out: np.ndarray) -> None:
    """out[i] = Σ_g P_g Φ_L(centres[i] + ρ n̂_g) for one chunk of centres (n, 3) Å, by local interpolants.

    For centre i and ring j the ring contraction M_ij (r1, r3) is reduced to the local values
    L_i[p, j, r] = (F1_i M_ij F3_iᵀ)_pr with F1_i (n1, r1), F3_i (n3, r3) the factors at the local
    nodes ``centres[i] + nodes``; ``out[i] = vec(L_i) @ table``. Centres are taken ``group`` at
    a time for the ring contraction and the table product.
    """
    f1_coef, f2_coef, f3_coef = factors
    m = max(f1_coef.shape[0], f2_coef.shape[0], f3_coef.shape[0])
    r1, r3 = f1_coef.shape[1], f3_coef.shape[1]
    r2 = f2_coef.shape[1]
    n, n1, n3, n_rings = centres.shape[0], nodes1.shape[0], nodes3.shape[0], offsets2.shape[0]
    start = 0
    vander = scratch[start : start + n * max(n1, n3, n_rings) * m]
    start += vander.shape[0]
    f1 = scratch[start : start + n * n1 * r1].reshape((n * n1, r1))
    start += n * n1 * r1
    f3 = scratch[start : start + n * n3 * r3].reshape((n * n3, r3))
    start += n * n3 * r3
    e2 = scratch[start : start + n * n_rings * r2].reshape((n * n_rings, r2))
    start += n * n_rings * r2
    ring_all = scratch[start : start + group * n_rings * r1 * r3]
    start += ring_all.shape[0]
    right = scratch[start : start + n_rings * r1 * n3].reshape((n_rings, r1, n3))
    start += n_rings * r1 * n3
    right_t = scratch[start : start + n_rings * r1 * n3].reshape((r1, n_rings * n3))
    start += n_rings * r1 * n3
    local_all = scratch[start : start + group * n1 * n_rings * n3]
    factor_values(centres[:, 0].copy(), nodes1, box_lo[0], box_hi[0], f1_coef, vander, f1)
    factor_values(centres[:, 2].copy(), nodes3, box_lo[2], box_hi[2], f3_coef, vander, f3)
    factor_values(centres[:, 1].copy(), offsets2, box_lo[1], box_hi[1], f2_coef, vander, e2)
    for lo in range(0, n, group):
        b = min(group, n - lo)
        ring = ring_all[: b * n_rings * r1 * r3].reshape((b * n_rings, r1 * r3))
        np.dot(e2[lo * n_rings : (lo + b) * n_rings], core_y, ring)
        local = local_all[: b * n1 * n_rings * n3].reshape((b, n1 * n_rings * n3))
        for i in range(b):
            atom = lo + i
            m_i = ring[i * n_rings : (i + 1) * n_rings].reshape((n_rings * r1, r3))
            np.dot(m_i, f3[atom * n3 : (atom + 1) * n3].T, right.reshape((n_rings * r1, n3)))
            for j in range(n_rings):
                for a in range(r1):
                    for r in range(n3):
                        right_t[a, j * n3 + r] = right[j, a, r]
            np.dot(f1[atom * n1 : (atom + 1) * n1], right_t, local[i].reshape((n1, n_rings * n3)))
        np.dot(local, table, out[lo : lo + b])
