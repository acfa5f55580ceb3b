"""Compiled (Numba, GIL released) element-wise and reordering steps of the ring transforms.

Between the GEMMs of a product chunk the NumPy path makes several passes over the grid
arrays (six for one folded product) and gathers rows of transposed views for the slot
reorderings; those passes dominate the non-GEMM time and hold the GIL between calls, which
serialises the chunk threads of :mod:`pipeline.equivariant.chunk_threads`. These kernels do
each step in one pass with the GIL released. They compute the same rounded values as the
NumPy expressions they replace (same operations in the same order, no contraction into
fused multiply-adds), so results do not depend on which path ran.

Arrays are NumPy, C-contiguous, one float dtype; :mod:`pipeline.equivariant.ring_transform`
uses these kernels for NumPy arrays only.
"""

from __future__ import annotations

import numba
import numpy as np

#: Batch rows moved together by the reorderings: 16 float32 values are one 64-byte cache line.
_BLOCK = 16


@numba.njit(cache=True, nogil=True, boundscheck=False)
def folded_product(c1: np.ndarray, z1: np.ndarray, c2: np.ndarray, z2: np.ndarray, out_c: np.ndarray, out_z: np.ndarray) -> None:
    """out_c = c1·c2 + z1·z2 and out_z = c1·z2 + z1·c2, element-wise on 1-D arrays of one length.

    The outputs may be the same arrays as the inputs (every element is read before it is written).
    """
    for i in range(c1.shape[0]):
        a, b, c, d = c1[i], z1[i], c2[i], z2[i]
        out_c[i] = a * c + b * d
        out_z[i] = a * d + b * c


@numba.njit(cache=True, nogil=True, boundscheck=False)
def gather_transpose(x: np.ndarray, rows: np.ndarray, out: np.ndarray) -> None:
    """out[s, b] = x[b, rows[s]]: columns ``rows`` of x (B, n) as rows of out (len(rows), B);
    rows with ``rows[s] < 0`` are zero (padding)."""
    n_batch = x.shape[0]
    for lo in range(0, n_batch, _BLOCK):
        hi = min(lo + _BLOCK, n_batch)
        for b in range(lo, hi):
            for s in range(rows.shape[0]):
                r = rows[s]
                out[s, b] = x[b, r] if r >= 0 else 0.0


@numba.njit(cache=True, nogil=True, boundscheck=False)
def transpose_gather(x_t: np.ndarray, rows: np.ndarray, out: np.ndarray) -> None:
    """out[b, k] = x_t[rows[k], b]: rows ``rows`` of x_t (n, B) as columns of out (B, len(rows))."""
    n_batch = x_t.shape[1]
    for lo in range(0, n_batch, _BLOCK):
        hi = min(lo + _BLOCK, n_batch)
        for b in range(lo, hi):
            for k in range(rows.shape[0]):
                out[b, k] = x_t[rows[k], b]
