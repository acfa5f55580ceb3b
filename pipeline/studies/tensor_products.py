"""The ``tensor-products`` stage: time, error and expressivity of every product as a Dataset.

For each method and degree L (inputs of degree L, output degree 2L, C channels, batch B) it
measures the forward product and its adjoint (median and interquartile range over
``repeats`` timed calls after one warm-up, device synchronised), the FLOP estimate of the
kernels, the maximum error against the explicit dense contraction (einsum with the CG or Gaunt
tables; no independent dense table exists for ``vector_gaunt``, whose error is NaN), and the
expressivity, span dimension and number of reachable paths
(:func:`pipeline.equivariant.expressivity.expressivity`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr
from tqdm import tqdm

from pipeline.backend import backend_name, synchronize, to_host
from pipeline.equivariant.clebsch_gordan import cg_block
from pipeline.equivariant.expressivity import expressivity
from pipeline.equivariant.gaunt import gaunt_dense
from pipeline.equivariant.products import (
    DEFAULT_CHUNK_ELEMENTS,
    METHODS,
    flop_estimate,
    output_irreps,
    tensor_product,
    tensor_product_vjp,
)

log = logging.getLogger(__name__)

PASSES = ("forward", "backward")


def dense_reference(method: str, lmax: int) -> np.ndarray | None:
    """Dense tensor (n, n, dim_out) of ``method`` for inputs of degree L, output 2L, or None."""
    if method in ("gaunt_grid", "gaunt_fourier"):
        return gaunt_dense(lmax, lmax, 2 * lmax)
    if method == "cg":
        irreps = output_irreps("cg", lmax, lmax)
        n = (lmax + 1) ** 2
        dense = np.zeros((n, n, irreps.dim))
        for b in irreps.blocks:
            (l1, l2), = b.paths
            dense[l1 * l1 : (l1 + 1) ** 2, l2 * l2 : (l2 + 1) ** 2, b.slice] = cg_block(l1, l2, b.l)
        return dense
    return None


def estimate_study_bytes(lmaxs: Sequence[int], *, batch: int, channels: int, dtype: Any,
                         methods: Sequence[str] = METHODS) -> int:
    """Peak memory of :func:`run_study` (the largest (method, L)), bytes (dominant arrays).

    Inputs x, y on the host (float64) and on the device, output and its cotangent, the two
    input gradients, the dense reference table and the products' chunk workspace.
    """
    itemsize = np.dtype(dtype).itemsize
    rows = int(batch) * int(channels)
    peak = 0
    for lmax in lmaxs:
        n = (int(lmax) + 1) ** 2
        for method in methods:
            dim = output_irreps(method, lmax, lmax).dim
            arrays = 8 * rows * 2 * n + itemsize * rows * (4 * n + 2 * dim) + 8 * n * n * dim
            peak = max(peak, arrays + 2 * 8 * DEFAULT_CHUNK_ELEMENTS)
    return int(peak)


def _timed(fn: Any, xp: Any, repeats: int) -> np.ndarray:
    fn()
    synchronize(xp)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(xp)
        times.append(time.perf_counter() - start)
    return np.array(times)


def run_study(
    lmaxs: Sequence[int],
    *,
    batch: int,
    channels: int,
    repeats: int,
    xp: Any,
    dtype: Any,
    device: str,
    methods: Sequence[str] = METHODS,
    rng: np.random.Generator,
) -> xr.Dataset:
    """Measure every (method, L) and return the stage's Dataset (dims method, lmax, pass, device)."""
    dtype = np.dtype(dtype)
    shape = (len(methods), len(lmaxs), len(PASSES), 1)
    med, q25, q75, tmin = (np.full(shape, np.nan) for _ in range(4))
    flops, error = np.full(shape[:3], np.nan), np.full(shape[:3], np.nan)
    expr, span, npaths = (np.zeros(shape[:2], dtype=np.int64) for _ in range(3))
    jobs = [(i, m, j, l) for i, m in enumerate(methods) for j, l in enumerate(lmaxs)]
    for i, method, j, lmax in tqdm(jobs, desc="tensor products", disable=None):
        n = (lmax + 1) ** 2
        x_host = rng.normal(size=(batch, channels, n))
        y_host = rng.normal(size=(batch, channels, n))
        x, y = xp.asarray(x_host, dtype=dtype), xp.asarray(y_host, dtype=dtype)
        out, irreps = tensor_product(x, y, method=method)
        g = xp.asarray(rng.normal(size=out.shape), dtype=dtype)
        times = {
            "forward": _timed(lambda x=x, y=y, method=method: tensor_product(x, y, method=method), xp, repeats),
            "backward": _timed(lambda x=x, y=y, g=g, method=method: tensor_product_vjp(x, y, g, method=method), xp,
                               repeats),
        }
        for k, name in enumerate(PASSES):
            t = times[name]
            med[i, j, k, 0], tmin[i, j, k, 0] = np.median(t), t.min()
            q25[i, j, k, 0], q75[i, j, k, 0] = np.percentile(t, [25, 75])
            flops[i, j, k] = flop_estimate(method, lmax, lmax, 2 * lmax, batch * channels, backward=name == "backward")
        dense = dense_reference(method, lmax)
        if dense is not None:
            k_ref = min(batch, 64)
            xs, ys, gs = x_host[:k_ref], y_host[:k_ref], to_host(g)[:k_ref].astype(np.float64)
            error[i, j, 0] = np.abs(to_host(out)[:k_ref] - np.einsum("bci,bcj,ijk->bck", xs, ys, dense)).max()
            gx, gy = tensor_product_vjp(x[:k_ref], y[:k_ref], g[:k_ref], method=method)
            ref_gx = np.einsum("bcj,bck,ijk->bci", ys, gs, dense)
            ref_gy = np.einsum("bci,bck,ijk->bcj", xs, gs, dense)
            error[i, j, 1] = max(np.abs(to_host(gx) - ref_gx).max(), np.abs(to_host(gy) - ref_gy).max())
        result = expressivity(method, lmax, channels, rng=rng)
        expr[i, j], span[i, j], npaths[i, j] = result.expressivity, result.span, result.n_paths
        log.info(
            "%s L=%d: forward %.3g s backward %.3g s error %.1e expressivity %d span %d paths %d",
            method, lmax, med[i, j, 0, 0], med[i, j, 1, 0], error[i, j, 0], expr[i, j], span[i, j], npaths[i, j],
        )
    t_dims = ("method", "lmax", "pass", "device")
    m_dims = ("method", "lmax", "pass")
    ds = xr.Dataset(
        {
            "time_median": (t_dims, med, {"units": "s", "long_name": "median wall time of one call over the batch"}),
            "time_q25": (t_dims, q25, {"units": "s", "long_name": "25th percentile of wall time"}),
            "time_q75": (t_dims, q75, {"units": "s", "long_name": "75th percentile of wall time"}),
            "time_min": (t_dims, tmin, {"units": "s", "long_name": "minimum wall time"}),
            "flops": (m_dims, flops, {"units": "1", "long_name": "estimated floating-point operations of one call (multiply-add = 2)"}),
            "max_abs_error": (m_dims, error, {"units": "1", "long_name": "max abs difference from the explicit dense einsum contraction (NaN: no independent table)"}),
            "expressivity": (("method", "lmax"), expr, {"units": "1", "long_name": "rank of the Jacobian of Lin∘T∘(Lin, Lin) w.r.t. per-irrep weights"}),
            "span": (("method", "lmax"), span, {"units": "1", "long_name": "dimension of the linear span of the reachable bilinear maps"}),
            "n_paths": (("method", "lmax"), npaths, {"units": "1", "long_name": "number of reachable (l1, l2, l3) paths"}),
        },
        coords={
            "method": ("method", list(methods), {"units": "1", "long_name": "tensor product method"}),
            "lmax": ("lmax", np.array(lmaxs, dtype=np.int64), {"units": "1", "long_name": "input degree L (output degree 2L)"}),
            "pass": ("pass", list(PASSES), {"units": "1", "long_name": "forward product or adjoint (gradients w.r.t. both inputs)"}),
            "device": ("device", [device], {"units": "1", "long_name": "device the timings ran on"}),
        },
    )
    ds.attrs.update(
        {
            "batch": int(batch),
            "channels": int(channels),
            "repeats": int(repeats),
            "dtype": dtype.name,
            "backend": backend_name(xp),
            "paths_computed": json.dumps({"cg": "all admissible", "gaunt_grid": "l1+l2+l3 even", "gaunt_fourier": "l1+l2+l3 even", "vector_gaunt": "l1+l2+l3 odd"}),
        }
    )
    return ds
