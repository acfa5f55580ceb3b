"""One API for the equivariant tensor products of SH signals and their gradients.

``tensor_product(x, y, method=..., lmax_out=None, parity=(p1, p2))`` takes x of shape
(..., (L1+1)²) and y of shape (..., (L2+1)²) in e3nn flat order (one copy of each l; the
leading axes are batch/channel axes and broadcast), and returns ``(out, irreps)``:

=================  =====================================================  ==================
method             output (last axis)                                     paths computed
=================  =====================================================  ==================
``cg``             one block per path (l1, l2, l3), √(2l3+1)·w3j           all admissible
``gaunt_grid``     (Lout+1)², Σ G x y, G = ∫YYY (integral-normalised)     l1+l2+l3 even
``gaunt_fourier``  same as ``gaunt_grid`` (exact half-torus Fourier)     l1+l2+l3 even
``vector_gaunt``   (Lout+1)², Σ V x y, V = ∫ Y3 r̂·(∇Y1 × ∇Y2)             l1+l2+l3 odd
=================  =====================================================  ==================

``irreps`` (:class:`~pipeline.equivariant.irreps.ProductIrreps`) lists the output blocks with
their degree, parity (see :mod:`pipeline.equivariant.irreps`) and contributing paths.
``tensor_product_vjp`` returns (grad_x, grad_y) from hand-written adjoints, reduced over
broadcast axes. Work is done in chunks of the flattened batch, small enough on CPU for the
chunk's grid arrays to stay in cache, with scratch arrays reused across the chunks of a call;
on CPU the chunks run on a thread pool (one BLAS thread per chunk, as many threads as BLAS is
allowed by default; see :mod:`pipeline.equivariant.chunk_threads`).
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import numpy as np

from pipeline.backend import backend_name, get_xp, namespace_of
from pipeline.equivariant.cg_product import CGPlan
from pipeline.equivariant.chunk_threads import run_chunks
from pipeline.equivariant.gaunt_products import FourierGauntPlan, GridGauntPlan, VectorGauntPlan
from pipeline.equivariant.irreps import Block, ProductIrreps, path_parity
from pipeline.equivariant.spherical_harmonics import lmax_of_dim

log = logging.getLogger(__name__)

METHODS = ("cg", "gaunt_fourier", "gaunt_grid", "vector_gaunt")
#: Largest number of CG outer-product values (elements) held per chunk.
DEFAULT_CHUNK_ELEMENTS = 2**23
#: Bytes of one grid array per chunk of the Gaunt-type products: small enough that the
#: chunk's grid arrays stay in cache between the GEMM stages (batch 10⁴, gaunt_grid, medians
#: for 2**18 / 2**19 / 2**20: L = 3 1.69 / 1.60 / 3.63 ms on one thread, 1.06 / 0.95 / 2.72 ms
#: on two; L = 6 6.90 / 6.62 / 7.81 ms on one; L = 10 22.0 / 24.7 / 28.7 ms on one). The same
#: size serves any thread count: a chunk holds the GIL only to start its one compiled call
#: (:mod:`pipeline.equivariant.chunk_kernels`). On a GPU the chunks are bounded by
#: DEFAULT_CHUNK_ELEMENTS instead (fewer, larger kernels).
DEFAULT_CHUNK_GRID_BYTES = 2**19


def output_irreps(method: str, lmax1: int, lmax2: int, lmax_out: int | None = None, parity: tuple[int, int] = (1, 1)) -> ProductIrreps:
    """Output description of ``method`` for inputs of degree (L1, L2) (see module docstring)."""
    _check_method(method)
    lmax_out = lmax1 + lmax2 if lmax_out is None else lmax_out
    return _output_irreps(method, int(lmax1), int(lmax2), int(lmax_out), (int(parity[0]), int(parity[1])))


@functools.lru_cache(maxsize=256)
def _output_irreps(method: str, lmax1: int, lmax2: int, lmax_out: int, parity: tuple[int, int]) -> ProductIrreps:
    """Cached body of :func:`output_irreps` (ProductIrreps is immutable)."""
    blocks = []
    start = 0
    if method == "cg":
        for l1 in range(lmax1 + 1):
            for l2 in range(lmax2 + 1):
                for l3 in range(abs(l1 - l2), min(l1 + l2, lmax_out) + 1):
                    blocks.append(Block(l3, path_parity(l1, l2, parity), start, ((l1, l2),)))
                    start += 2 * l3 + 1
        return ProductIrreps(tuple(blocks))
    odd = 1 if method == "vector_gaunt" else 0
    for l3 in range(lmax_out + 1):
        paths = tuple(
            (l1, l2)
            for l1 in range(lmax1 + 1)
            for l2 in range(lmax2 + 1)
            if abs(l1 - l2) <= l3 <= l1 + l2 and (l1 + l2 + l3) % 2 == odd and (not odd or min(l1, l2, l3) > 0)
        )
        blocks.append(Block(l3, parity[0] * parity[1] * (-1) ** (l3 + odd), start, paths))
        start += 2 * l3 + 1
    return ProductIrreps(tuple(blocks))


@functools.lru_cache(maxsize=32)
def _plan(method: str, lmax1: int, lmax2: int, lmax_out: int, backend: str, dtype: str, for_vjp: bool) -> Any:
    xp = get_xp(backend)
    if method == "cg":
        return CGPlan(lmax1, lmax2, lmax_out, xp=xp, dtype=dtype)
    if method == "gaunt_grid":
        return GridGauntPlan(lmax1, lmax2, lmax_out, xp=xp, dtype=dtype)
    if method == "gaunt_fourier":
        return FourierGauntPlan(lmax1, lmax2, lmax_out, xp=xp, dtype=dtype, for_vjp=for_vjp)
    return VectorGauntPlan(lmax1, lmax2, lmax_out, xp=xp, dtype=dtype)


def get_plan(method: str, lmax1: int, lmax2: int, lmax_out: int, *, xp: Any, dtype: Any, for_vjp: bool = False) -> Any:
    """The cached tables of one product (pure function of its small-integer arguments)."""
    _check_method(method)
    return _plan(method, int(lmax1), int(lmax2), int(lmax_out), backend_name(xp), np.dtype(dtype).str, bool(for_vjp))


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")


def _prepare(x: Any, y: Any, lmax_out: int | None, parity: tuple[int, int]) -> tuple[Any, Any, Any, int, int, int, tuple[int, ...]]:
    xp = namespace_of(x, y)
    x, y = xp.asarray(x), xp.asarray(y)
    for name, a in (("x", x), ("y", y)):
        if a.dtype not in (np.float32, np.float64):
            raise TypeError(f"{name} must be float32 or float64, got {a.dtype}")
        if a.ndim < 1:
            raise ValueError(f"{name} must have shape (..., (L+1)**2), got a scalar")
    if x.dtype != y.dtype:
        raise TypeError(f"x and y must have the same dtype, got {x.dtype} and {y.dtype}")
    lmax1 = lmax_of_dim(x.shape[-1], name="x last axis")
    lmax2 = lmax_of_dim(y.shape[-1], name="y last axis")
    if lmax_out is None:
        lmax_out = lmax1 + lmax2
    if int(lmax_out) != lmax_out or not 0 <= lmax_out <= lmax1 + lmax2:
        raise ValueError(f"lmax_out must be an integer in [0, L1+L2] = [0, {lmax1 + lmax2}], got {lmax_out!r}")
    if len(parity) != 2 or any(p not in (1, -1) for p in parity):
        raise ValueError(f"parity must be a pair of +1/-1, got {parity!r}")
    try:
        batch = np.broadcast_shapes(x.shape[:-1], y.shape[:-1])
    except ValueError as exc:
        raise ValueError(f"leading axes of x {x.shape[:-1]} and y {y.shape[:-1]} do not broadcast") from exc
    return xp, x, y, lmax1, lmax2, int(lmax_out), batch


def _chunk_size(plan: Any, n_total: int, chunk_size: int | None, xp: Any, itemsize: int) -> int:
    if chunk_size is not None:
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        return int(chunk_size)
    if isinstance(plan, CGPlan):
        step = DEFAULT_CHUNK_ELEMENTS // (max(plan.dim_out, 1) * 2)
    elif backend_name(xp) == "numpy":
        step = DEFAULT_CHUNK_GRID_BYTES // (plan.grid_size * itemsize)
    else:
        step = DEFAULT_CHUNK_ELEMENTS // (plan.grid_size * 4)
    return max(1, min(n_total, step))


def tensor_product(
    x: Any,
    y: Any,
    *,
    method: str = "cg",
    lmax_out: int | None = None,
    parity: tuple[int, int] = (1, 1),
    chunk_size: int | None = None,
    threads: int | None = None,
    out: Any = None,
) -> tuple[Any, ProductIrreps]:
    """Equivariant tensor product of two SH signals.

    Parameters
    ----------
    x : (..., (L1+1)²) float32/float64 array, e3nn flat order
    y : (..., (L2+1)²) array of the same dtype and backend; leading axes broadcast with x
    method : {"cg", "gaunt_fourier", "gaunt_grid", "vector_gaunt"}
    lmax_out : int, optional
        Largest output degree, 0..L1+L2 (default L1+L2).
    parity : (p1, p2)
        Parities of the inputs (l-block of input i has parity p_i·(−1)^l).
    chunk_size : int, optional
        Batch items per chunk (default: a grid array of at most 512 KiB per chunk on CPU, so
        the grid stages run in cache; at most ~2²³ intermediate values on GPU).
    threads : int, optional
        CPU threads working on the chunks (default: the number of threads the BLAS library
        may use at the time of the call); ignored for device arrays. The result does not
        depend on it.
    out : (..., irreps.dim) array, optional
        Where to write the result (same backend and batch shape; any float dtype, e.g. float32
        storage of float64 inputs, and any strides, e.g. a slice of a wider array). Each chunk
        is computed in the inputs' dtype and then cast into it, so no full-size array of the
        inputs' dtype is made. Reusing one ``out`` across calls also spares the first-touch
        page faults of a fresh array, a large share of cg's time when its output is large
        ((L1+1)²(L2+1)² values per item).

    Returns
    -------
    out : (..., irreps.dim) array
        ``out`` when given.
    irreps : ProductIrreps

    Raises
    ------
    ValueError
        Unknown method, last axis not a square, lmax_out outside [0, L1+L2], bad parity.
    TypeError
        Non-float, mismatched dtypes, or mixed NumPy/CuPy inputs.
    """
    _check_method(method)
    xp, x, y, lmax1, lmax2, lmax_out, batch = _prepare(x, y, lmax_out, parity)
    irreps = output_irreps(method, lmax1, lmax2, lmax_out, parity)
    plan = get_plan(method, lmax1, lmax2, lmax_out, xp=xp, dtype=x.dtype)
    x2 = xp.broadcast_to(x, (*batch, x.shape[-1])).reshape(-1, x.shape[-1])
    y2 = xp.broadcast_to(y, (*batch, y.shape[-1])).reshape(-1, y.shape[-1])
    n_total = x2.shape[0]
    step = _chunk_size(plan, n_total, chunk_size, xp, x.dtype.itemsize)
    if out is None:
        result = xp.empty((n_total, irreps.dim), dtype=x.dtype)

        def body(sl: slice, ws: Any) -> None:
            plan.forward(x2[sl], y2[sl], ws=ws, out=result[sl])
    else:
        if tuple(out.shape) != (*batch, irreps.dim):
            raise ValueError(f"out must have shape {(*batch, irreps.dim)}, got {tuple(out.shape)}")
        target = out.reshape(n_total, irreps.dim)
        if not xp.may_share_memory(target, out):
            raise ValueError("out's leading axes must merge into one without a copy (e.g. an array or a last-axis slice of one)")

        def body(sl: slice, ws: Any) -> None:
            chunk = ws.get("tensor_product_out", (sl.stop - sl.start, irreps.dim))
            target[sl] = plan.forward(x2[sl], y2[sl], ws=ws, out=chunk)

    run_chunks(n_total, step, body, xp=xp, dtype=x.dtype, threads=threads)
    return (result.reshape(*batch, irreps.dim) if out is None else out), irreps


def tensor_product_vjp(
    x: Any,
    y: Any,
    grad_out: Any,
    *,
    method: str = "cg",
    lmax_out: int | None = None,
    parity: tuple[int, int] = (1, 1),
    chunk_size: int | None = None,
    threads: int | None = None,
) -> tuple[Any, Any]:
    """Gradients of ⟨grad_out, tensor_product(x, y)⟩ with respect to x and y.

    Parameters
    ----------
    x, y, method, lmax_out, parity, chunk_size, threads
        As for :func:`tensor_product`.
    grad_out : (..., irreps.dim) array
        Upstream gradient, broadcast batch shape of x and y.

    Returns
    -------
    grad_x : array of x's shape
    grad_y : array of y's shape
    """
    _check_method(method)
    xp, x, y, lmax1, lmax2, lmax_out, batch = _prepare(x, y, lmax_out, parity)
    irreps = output_irreps(method, lmax1, lmax2, lmax_out, parity)
    g = xp.asarray(grad_out)
    namespace_of(x, g)
    if g.dtype != x.dtype:
        raise TypeError(f"grad_out must have dtype {x.dtype}, got {g.dtype}")
    if tuple(g.shape) != (*batch, irreps.dim):
        raise ValueError(f"grad_out must have shape {(*batch, irreps.dim)}, got {tuple(g.shape)}")
    plan = get_plan(method, lmax1, lmax2, lmax_out, xp=xp, dtype=x.dtype, for_vjp=True)
    x2 = xp.broadcast_to(x, (*batch, x.shape[-1])).reshape(-1, x.shape[-1])
    y2 = xp.broadcast_to(y, (*batch, y.shape[-1])).reshape(-1, y.shape[-1])
    g2 = g.reshape(-1, irreps.dim)
    n_total = x2.shape[0]
    step = _chunk_size(plan, n_total, chunk_size, xp, x.dtype.itemsize)
    grad_x = xp.empty(x2.shape, dtype=x.dtype)
    grad_y = xp.empty(y2.shape, dtype=y.dtype)

    def body(sl: slice, ws: Any) -> None:
        plan.vjp(x2[sl], y2[sl], g2[sl], ws=ws, out=(grad_x[sl], grad_y[sl]))

    run_chunks(n_total, step, body, xp=xp, dtype=x.dtype, threads=threads)
    return _reduce_to(grad_x.reshape(*batch, -1), x.shape, xp), _reduce_to(grad_y.reshape(*batch, -1), y.shape, xp)


def _reduce_to(grad: Any, shape: tuple[int, ...], xp: Any) -> Any:
    """Sum a gradient of the broadcast shape back to an input's shape."""
    extra = grad.ndim - len(shape)
    if extra:
        grad = xp.sum(grad, axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape[:-1]) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = xp.sum(grad, axis=axes, keepdims=True)
    return grad.reshape(shape)


def flop_estimate(method: str, lmax1: int, lmax2: int, lmax_out: int | None, batch: int, *, backward: bool = False) -> float:
    """Approximate floating-point operations of one product (or its adjoint) over ``batch`` items."""
    lmax_out = lmax1 + lmax2 if lmax_out is None else lmax_out
    plan = get_plan(method, lmax1, lmax2, lmax_out, xp=np, dtype=np.float64, for_vjp=backward)
    return float(plan.flops(batch, backward=backward))
