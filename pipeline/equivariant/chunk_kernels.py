"""Compiled (Numba, GIL released) stages of the ring transforms and Gaunt products on NumPy arrays.

The chunk threads of :mod:`pipeline.equivariant.chunk_threads` only run in parallel while no
thread holds the GIL. A chunk of a Gaunt product done as NumPy calls is some fifteen calls
(GEMMs, element-wise passes, reorderings), each taking and releasing the GIL around a few
microseconds of Python: about 50 µs of a 300 µs chunk at L = 6 holds the GIL, and every
hand-over between the threads waits for a wake-up. Two threads then gained only 1.4-1.5×
over one. Here a whole chunk is one call that holds no GIL: the slot reorderings and the
pointwise product as loops, the GEMMs of both stages through ``np.dot`` (BLAS ``gemm``, the
library SciPy ships, which numba calls; imported below so that threadpoolctl controllers
made later see it and limit it to one thread per chunk like NumPy's own).

The stages are those of :mod:`pipeline.equivariant.ring_transform` (which documents the
layouts and tables), with the same GEMM shapes as its NumPy expressions, one β GEMM per
order instead of a stacked ``matmul`` over the orders of a group (the same products, so the
same values up to the BLAS kernel's summation order), and the always-zero sin row of order 0
skipped. Element-wise kernels compute the same rounded values as the NumPy expressions they
stand for (same operations in the same order, no contraction into fused multiply-adds).

Tables are tuples (see :meth:`~pipeline.equivariant.ring_transform.RingTransform.compiled_synthesis`
and :meth:`~pipeline.equivariant.ring_transform.RingTransform.compiled_analysis`); scratch
buffers are 1-D and cut to shape here, so every call has the same argument types.
Arrays are NumPy, C-contiguous, one float dtype.
"""

from __future__ import annotations

import numba
import numpy as np
import scipy.linalg.cython_blas  # noqa: F401  (the BLAS of numba's np.dot; see the module docstring)

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


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _beta_synthesis(slots: np.ndarray, mats: np.ndarray, lo: int, rings: np.ndarray) -> None:
    """rings[c, m] = mats[m − lo] @ slots[c, m, :width] for the orders m of one group (the sin
    row of m = 0 is zero and skipped)."""
    width = mats.shape[2]
    for j in range(mats.shape[0]):
        m = lo + j
        np.dot(mats[j], slots[0, m, :width], rings[0, m])
        if m > 0:
            np.dot(mats[j], slots[1, m, :width], rings[1, m])


@numba.njit(cache=True, nogil=True, boundscheck=False)
def synthesize_slots(slots: np.ndarray, tables: tuple, scratch: np.ndarray, values: np.ndarray) -> None:
    """Folded values (2, n_fold, n_rings, B) of coefficients (2, L+1, L+1, B) in padded slot order.

    ``tables`` = (β matrices of the low orders, their first order, those of the high orders,
    their first order, α table of the even part, α table of the odd part, whether the even
    part comes from the sin coefficients (∂/∂α)); ``scratch`` holds the ring coefficients
    (2, L+1, n_rings, B).
    """
    mats_lo, lo_lo, mats_hi, lo_hi, az_even, az_odd, even_from_sin = tables
    n_deg, batch = slots.shape[1], slots.shape[3]
    n_fold, n_rings = values.shape[1], values.shape[2]
    cols = n_rings * batch
    rings = scratch[: 2 * n_deg * cols].reshape((2, n_deg, n_rings, batch))
    _beta_synthesis(slots, mats_lo, lo_lo, rings)
    _beta_synthesis(slots, mats_hi, lo_hi, rings)
    cos_part = rings[0].reshape((n_deg, cols))
    sin_part = rings[1, 1:].reshape((n_deg - 1, cols))
    even, odd = values[0].reshape((n_fold, cols)), values[1].reshape((n_fold, cols))
    if even_from_sin:
        np.dot(az_even, sin_part, even)
        np.dot(az_odd, cos_part, odd)
    else:
        np.dot(az_even, cos_part, even)
        np.dot(az_odd, sin_part, odd)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _beta_analysis(hat: np.ndarray, mats: np.ndarray, lo: int, slots: np.ndarray) -> None:
    """slots[c, m, :width] = mats[m − lo] @ hat[c, m] for the orders m of one group (sin row of m = 0 skipped)."""
    width = mats.shape[1]
    for j in range(mats.shape[0]):
        m = lo + j
        np.dot(mats[j], hat[0, m], slots[0, m, :width])
        if m > 0:
            np.dot(mats[j], hat[1, m], slots[1, m, :width])


@numba.njit(cache=True, nogil=True, boundscheck=False)
def analyze_slots(values: np.ndarray, tables: tuple, scratch: np.ndarray, slots: np.ndarray) -> None:
    """Coefficients (2, L+1, L+1, B) in padded slot order (padding and the sin row of m = 0
    left unwritten) of folded values (2, n_fold, n_rings, B).

    ``tables`` = (α analysis table of cos, that of sin from m = 1, β analysis matrices of the
    low orders, their first order, those of the high orders, their first order); ``scratch``
    holds the α integrals (2, L+1, n_rings, B).
    """
    cos_an, sin_an, mats_lo, lo_lo, mats_hi, lo_hi = tables
    n_deg = slots.shape[1]
    n_fold, n_rings, batch = values.shape[1], values.shape[2], values.shape[3]
    cols = n_rings * batch
    hat = scratch[: 2 * n_deg * cols].reshape((2, n_deg, n_rings, batch))
    np.dot(cos_an, values[0].reshape((n_fold, cols)), hat[0].reshape((n_deg, cols)))
    np.dot(sin_an, values[1].reshape((n_fold, cols)), hat[1, 1:].reshape((n_deg - 1, cols)))
    _beta_analysis(hat, mats_lo, lo_lo, slots)
    _beta_analysis(hat, mats_hi, lo_hi, slots)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _synthesize_coefficients(coeffs: np.ndarray, tables: tuple, slot_buffer: np.ndarray, scratch: np.ndarray, values: np.ndarray) -> None:
    """Folded values of coefficients (B, (L+1)²) in e3nn order; ``tables`` = (slot rows, synthesis tables)."""
    rows, stage = tables
    n_deg, batch = stage[0].shape[2], coeffs.shape[0]  # the low group starts at m = 0: width L + 1
    slots = slot_buffer[: 2 * n_deg * n_deg * batch].reshape((2, n_deg, n_deg, batch))
    gather_transpose(coeffs, rows, slots.reshape((2 * n_deg * n_deg, batch)))
    synthesize_slots(slots, stage, scratch, values)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _analyze_coefficients(values: np.ndarray, tables: tuple, slot_buffer: np.ndarray, scratch: np.ndarray, out: np.ndarray) -> None:
    """Coefficients (B, (L+1)²) in e3nn order of folded values; ``tables`` = (analysis tables, slot positions)."""
    stage, positions = tables
    n_deg, batch = stage[2].shape[1], values.shape[3]
    slots = slot_buffer[: 2 * n_deg * n_deg * batch].reshape((2, n_deg, n_deg, batch))
    analyze_slots(values, stage, scratch, slots)
    transpose_gather(slots.reshape((2 * n_deg * n_deg, batch)), positions, out)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _multiply_in_place(f: np.ndarray, g: np.ndarray) -> None:
    """f ← folded product of f and g (both (2, n_fold, n_rings, B))."""
    ff, gg = f.reshape((2, f.size // 2)), g.reshape((2, g.size // 2))
    folded_product(ff[0], ff[1], gg[0], gg[1], ff[0], ff[1])


@numba.njit(cache=True, nogil=True, boundscheck=False)
def gaunt_forward(x: np.ndarray, y: np.ndarray, synthesis_x: tuple, synthesis_y: tuple, analysis: tuple,
                  slot_buffer: np.ndarray, scratch: np.ndarray, values_x: np.ndarray, values_y: np.ndarray,
                  out: np.ndarray) -> None:
    """out (B, (Lout+1)²) = analysis of the folded product of the syntheses of x and y (B, (L+1)²)."""
    _synthesize_coefficients(x, synthesis_x, slot_buffer, scratch, values_x)
    _synthesize_coefficients(y, synthesis_y, slot_buffer, scratch, values_y)
    _multiply_in_place(values_x, values_y)
    _analyze_coefficients(values_x, analysis, slot_buffer, scratch, out)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def gaunt_vjp(x: np.ndarray, y: np.ndarray, grad_out: np.ndarray, synthesis_x: tuple, synthesis_y: tuple,
              synthesis_g: tuple, analysis_x: tuple, analysis_y: tuple, slot_buffer: np.ndarray,
              scratch: np.ndarray, values_g: np.ndarray, values_p: np.ndarray, grad_x: np.ndarray,
              grad_y: np.ndarray) -> None:
    """grad_x = analysis (degree L1) of synth(y)·synth(g), grad_y = analysis (degree L2) of
    synth(x)·synth(g), the synthesis of grad_out done once."""
    _synthesize_coefficients(grad_out, synthesis_g, slot_buffer, scratch, values_g)
    _synthesize_coefficients(y, synthesis_y, slot_buffer, scratch, values_p)
    _multiply_in_place(values_p, values_g)
    _analyze_coefficients(values_p, analysis_x, slot_buffer, scratch, grad_x)
    _synthesize_coefficients(x, synthesis_x, slot_buffer, scratch, values_p)
    _multiply_in_place(values_p, values_g)
    _analyze_coefficients(values_p, analysis_y, slot_buffer, scratch, grad_y)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _surface_gradient(coeffs: np.ndarray, tables: tuple, slot_buffer: np.ndarray, scratch: np.ndarray,
                      dbeta: np.ndarray, dalpha: np.ndarray) -> None:
    """Folded ∂β f and (∂α f)/sin β of coefficients (B, (L+1)²); ``tables`` = (slot rows, ∂β
    synthesis tables, (1/sin β)·∂α synthesis tables); the slots are gathered once."""
    rows, stage_beta, stage_alpha = tables
    n_deg, batch = stage_beta[0].shape[2], coeffs.shape[0]
    slots = slot_buffer[: 2 * n_deg * n_deg * batch].reshape((2, n_deg, n_deg, batch))
    gather_transpose(coeffs, rows, slots.reshape((2 * n_deg * n_deg, batch)))
    synthesize_slots(slots, stage_beta, scratch, dbeta)
    synthesize_slots(slots, stage_alpha, scratch, dalpha)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _bracket(f_beta: np.ndarray, f_alpha: np.ndarray, g_beta: np.ndarray, g_alpha: np.ndarray, out: np.ndarray) -> None:
    """out = folded ∂βf·(∂αg/sin β) − (∂αf/sin β)·∂βg (the radial part of ∇f × ∇g), all (2, n_fold, n_rings, B)."""
    fb, fa = f_beta.reshape((2, f_beta.size // 2)), f_alpha.reshape((2, f_alpha.size // 2))
    gb, ga = g_beta.reshape((2, g_beta.size // 2)), g_alpha.reshape((2, g_alpha.size // 2))
    o = out.reshape((2, out.size // 2))
    for i in range(o.shape[1]):
        c1, z1, c2, z2 = fb[0, i], fb[1, i], ga[0, i], ga[1, i]
        p_c, p_z = c1 * c2 + z1 * z2, c1 * z2 + z1 * c2
        c1, z1, c2, z2 = fa[0, i], fa[1, i], gb[0, i], gb[1, i]
        o[0, i] = p_c - (c1 * c2 + z1 * z2)
        o[1, i] = p_z - (c1 * z2 + z1 * c2)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def vector_gaunt_forward(x: np.ndarray, y: np.ndarray, gradient_x: tuple, gradient_y: tuple, analysis: tuple,
                         slot_buffer: np.ndarray, scratch: np.ndarray, grids: np.ndarray, out: np.ndarray) -> None:
    """out = analysis of the bracket of the surface gradients of x and y; ``grids`` (5, 2, n_fold, n_rings, B) scratch."""
    _surface_gradient(x, gradient_x, slot_buffer, scratch, grids[0], grids[1])
    _surface_gradient(y, gradient_y, slot_buffer, scratch, grids[2], grids[3])
    _bracket(grids[0], grids[1], grids[2], grids[3], grids[4])
    _analyze_coefficients(grids[4], analysis, slot_buffer, scratch, out)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def vector_gaunt_vjp(x: np.ndarray, y: np.ndarray, grad_out: np.ndarray, gradient_x: tuple, gradient_y: tuple,
                     gradient_g: tuple, analysis_x: tuple, analysis_y: tuple, slot_buffer: np.ndarray,
                     scratch: np.ndarray, grids: np.ndarray, grad_x: np.ndarray, grad_y: np.ndarray) -> None:
    """grad_x = analysis of {y, g}, grad_y = analysis of {g, x} (cyclic symmetry of V); ``grids`` (7, 2, n_fold, n_rings, B)."""
    _surface_gradient(x, gradient_x, slot_buffer, scratch, grids[0], grids[1])
    _surface_gradient(y, gradient_y, slot_buffer, scratch, grids[2], grids[3])
    _surface_gradient(grad_out, gradient_g, slot_buffer, scratch, grids[4], grids[5])
    _bracket(grids[2], grids[3], grids[4], grids[5], grids[6])
    _analyze_coefficients(grids[6], analysis_x, slot_buffer, scratch, grad_x)
    _bracket(grids[4], grids[5], grids[0], grids[1], grids[6])
    _analyze_coefficients(grids[6], analysis_y, slot_buffer, scratch, grad_y)
