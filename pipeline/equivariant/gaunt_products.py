"""Gaunt-type product kernels: S2 grid, half-torus Fourier and vector (cross-product) Gaunt.

All three compute out_c = Σ_ab K_abc x_a y_b with a tensor K that is an integral over the
sphere, so the kernels are "synthesise, combine pointwise, project":

* ``gaunt_grid`` and ``gaunt_fourier``: K = G, G_abc = ∫ Y_a Y_b Y_c dΩ (integral-normalised),
  reaching the paths with l1 + l2 + l3 even.
* ``vector_gaunt``: K = V, V_abc = ∫ Y_c r̂·(∇Y_a × ∇Y_b) dΩ, the radial part of the cross
  product of the surface gradients (tangent vector fields) of the two signals. V is
  antisymmetric in (a, b), vanishes when l1 + l2 + l3 is even or any l is 0, and reaches every
  odd path (which are strictly inside the triangle); for x, y of degree 1 it is the cross
  product: out_1 = √(3/4π)·(x × y). Parity: out block l3 has parity
  p1·p2·(−1)^(l3+1) (a pseudo-SH signal).

Adjoints use the full symmetry of the kernels: G is symmetric in (a, b, c) and V is
cyclic (∫ h {f, g} = ∫ f {g, h} for the Poisson bracket {f, g} = r̂·(∇f × ∇g)), so

    grad_x = K-product(y, grad_out) → degree L1,  grad_y = K-product(grad_out, x) → degree L2,

evaluated on the same grid (exact for the same degree sum L1 + L2 + Lout).

Every kernel runs on a :class:`~pipeline.equivariant.ring_transform.RingTransform` (per-m
GEMMs in β, folded-azimuth GEMMs in α, batch last); ``gaunt_grid`` and ``vector_gaunt`` use
the Gauss–Legendre tables of :mod:`.s2grid`, ``gaunt_fourier`` the exact Fourier tables on
the half torus of :mod:`.fourier`. Kernels take an optional
:class:`~pipeline.equivariant.ring_transform.Workspace` and ``out`` arrays so the chunk loop
of :mod:`.products` allocates nothing per chunk.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from pipeline.equivariant import chunk_kernels
from pipeline.equivariant.fourier import HalfTorusTransform, half_torus_size
from pipeline.equivariant.ring_transform import RingTransform, Workspace, compiled_route
from pipeline.equivariant.s2grid import S2Grid, minimal_grid

log = logging.getLogger(__name__)


class _ProductOnRings:
    """Synthesise, multiply pointwise, analyse on one :class:`RingTransform` (batch last)."""

    transform: RingTransform
    lmax1: int
    lmax2: int
    lmax_out: int

    def forward(self, x: Any, y: Any, *, ws: Workspace | None = None, out: Any = None) -> Any:
        """x (B, (L1+1)²), y (B, (L2+1)²) → (B, (Lout+1)²), written to ``out`` if given."""
        t = self.transform
        if compiled_route(x):
            ws = ws or Workspace(np, t.dtype)
            result = _c_contiguous_out(out, (x.shape[0], (self.lmax_out + 1) ** 2), t.dtype)
            chunk_kernels.gaunt_forward(
                np.ascontiguousarray(x), np.ascontiguousarray(y), t.compiled_synthesis(self.lmax1), t.compiled_synthesis(self.lmax2),
                t.compiled_analysis(self.lmax_out), *self._buffers(ws, x.shape[0]), ws.get("values_x", self._grid_shape(x.shape[0])),
                ws.get("values_y", self._grid_shape(x.shape[0])), result,
            )
            return _copy_back(result, out)
        vx = t.synthesize(t.to_slots(x, self.lmax1, ws=ws), self.lmax1, ws=ws, name="values_x")
        vy = t.synthesize(t.to_slots(y, self.lmax2, ws=ws), self.lmax2, ws=ws, name="values_y")
        return t.from_slots(t.analyze(t.multiply(vx, vy, ws=ws, overwrite=True), self.lmax_out, ws=ws), self.lmax_out, out=out)

    def vjp(self, x: Any, y: Any, grad_out: Any, *, ws: Workspace | None = None, out: tuple[Any, Any] | None = None) -> tuple[Any, Any]:
        """(grad_x, grad_y) by the symmetry of G: G-products of (y, grad_out) and (grad_out, x)."""
        t = self.transform
        out_x, out_y = out if out is not None else (None, None)
        if compiled_route(x):
            ws = ws or Workspace(np, t.dtype)
            batch = x.shape[0]
            grad_x = _c_contiguous_out(out_x, (batch, (self.lmax1 + 1) ** 2), t.dtype)
            grad_y = _c_contiguous_out(out_y, (batch, (self.lmax2 + 1) ** 2), t.dtype)
            chunk_kernels.gaunt_vjp(
                np.ascontiguousarray(x), np.ascontiguousarray(y), np.ascontiguousarray(grad_out), t.compiled_synthesis(self.lmax1),
                t.compiled_synthesis(self.lmax2), t.compiled_synthesis(self.lmax_out), t.compiled_analysis(self.lmax1),
                t.compiled_analysis(self.lmax2), *self._buffers(ws, batch), ws.get("values_g", self._grid_shape(batch)),
                ws.get("values_p", self._grid_shape(batch)), grad_x, grad_y,
            )
            return _copy_back(grad_x, out_x), _copy_back(grad_y, out_y)
        gs = t.synthesize(t.to_slots(grad_out, self.lmax_out, ws=ws), self.lmax_out, ws=ws, name="values_g")
        vy = t.synthesize(t.to_slots(y, self.lmax2, ws=ws), self.lmax2, ws=ws, name="values_p")
        grad_x = t.from_slots(t.analyze(t.multiply(vy, gs, ws=ws, overwrite=True), self.lmax1, ws=ws), self.lmax1, out=out_x)
        vx = t.synthesize(t.to_slots(x, self.lmax1, ws=ws), self.lmax1, ws=ws, name="values_p")
        grad_y = t.from_slots(t.analyze(t.multiply(vx, gs, ws=ws, overwrite=True), self.lmax2, ws=ws), self.lmax2, out=out_y)
        return grad_x, grad_y

    def _grid_shape(self, batch: int) -> tuple[int, int, int, int]:
        """Shape of folded values (2, n_fold, n_rings, B)."""
        return (2, self.transform.n_fold, self.transform.n_rings, batch)

    def _buffers(self, ws: Workspace, batch: int) -> tuple[Any, Any]:
        return _kernel_buffers(ws, self.transform, max(self.lmax1, self.lmax2, self.lmax_out), batch)

    @property
    def grid_size(self) -> int:
        """Values per batch item on the grid."""
        return self.transform.n_rings * self.transform.n_azimuth

    def flops(self, batch: int, backward: bool = False) -> float:
        """Floating-point operations of one call (multiply-adds count 2)."""
        t, grid = self.transform, 6.0 * batch * self.transform.n_fold * self.transform.n_rings  # one folded product
        synth = lambda l: t.flops(l, batch)  # noqa: E731
        anal = lambda l: t.flops(l, batch)  # noqa: E731
        if backward:
            return synth(self.lmax_out) + synth(self.lmax1) + synth(self.lmax2) + 2 * grid + anal(self.lmax1) + anal(self.lmax2)
        return synth(self.lmax1) + synth(self.lmax2) + grid + anal(self.lmax_out)


def _kernel_buffers(ws: Workspace, transform: RingTransform, lmax: int, batch: int) -> tuple[Any, Any]:
    """Flat slot and scratch buffers of the compiled kernels for signals of degree ≤ ``lmax``."""
    n_deg = lmax + 1
    return ws.get("slots", (2 * n_deg * n_deg * batch,)), ws.get("scratch", (2 * n_deg * transform.n_rings * batch,))


def _c_contiguous_out(out: Any, shape: tuple[int, int], dtype: Any) -> np.ndarray:
    """``out`` when the compiled kernels can write it directly (C-contiguous, of the working dtype), else a new array."""
    if out is not None and out.flags.c_contiguous and out.dtype == dtype:
        return out
    return np.empty(shape, dtype=dtype)


def _copy_back(result: np.ndarray, out: Any) -> np.ndarray:
    """``result``, copied into ``out`` when ``out`` was given but could not be written directly."""
    if out is None or out is result:
        return result
    out[...] = result
    return out


class GridGauntPlan(_ProductOnRings):
    """Gaunt product on the minimal Gauss–Legendre × equispaced grid for (L1, L2, Lout)."""

    def __init__(self, lmax1: int, lmax2: int, lmax_out: int, *, xp: Any, dtype: Any, n_rings: int | None = None, n_azimuth: int | None = None):
        self.lmax1, self.lmax2, self.lmax_out = lmax1, lmax2, lmax_out
        nb_min, na_min = minimal_grid(lmax1 + lmax2 + lmax_out)
        self.n_rings = n_rings or nb_min
        self.n_azimuth = n_azimuth or na_min
        self.transform = S2Grid(max(lmax1, lmax2, lmax_out), self.n_rings, self.n_azimuth, xp=xp, dtype=dtype)


class FourierGauntPlan(_ProductOnRings):
    """Gaunt product through exact Fourier tables on the half torus (:mod:`.fourier`)."""

    def __init__(self, lmax1: int, lmax2: int, lmax_out: int, *, xp: Any, dtype: Any, for_vjp: bool = False):
        self.lmax1, self.lmax2, self.lmax_out = lmax1, lmax2, lmax_out
        sizes = [half_torus_size(lmax1, lmax2, lmax_out)]
        if for_vjp:
            sizes += [half_torus_size(lmax_out, lmax2, lmax1), half_torus_size(lmax_out, lmax1, lmax2)]
        self.n_beta = max(s[0] for s in sizes)
        self.n_alpha = max(s[1] for s in sizes)
        self.transform = HalfTorusTransform(max(lmax1, lmax2, lmax_out), self.n_beta, self.n_alpha, xp=xp, dtype=dtype)


class VectorGauntPlan:
    """Radial part of the cross product of surface gradients, on the minimal exact grid."""

    def __init__(self, lmax1: int, lmax2: int, lmax_out: int, *, xp: Any, dtype: Any):
        self.lmax1, self.lmax2, self.lmax_out = lmax1, lmax2, lmax_out
        self.n_rings, self.n_azimuth = minimal_grid(lmax1 + lmax2 + lmax_out)
        self.transform = S2Grid(max(lmax1, lmax2, lmax_out), self.n_rings, self.n_azimuth, xp=xp, dtype=dtype, derivatives=True)

    @property
    def grid_size(self) -> int:
        """Values per batch item on the grid."""
        return self.n_rings * self.n_azimuth

    def _gradient(self, c: Any, lmax: int, ws: Workspace | None, tag: str) -> tuple[Any, Any]:
        t = self.transform
        ct = t.to_slots(c, lmax, ws=ws)
        return t.synthesize(ct, lmax, "dbeta", ws=ws, name=f"dbeta_{tag}"), t.synthesize(ct, lmax, "over_sin", trig="dalpha", ws=ws, name=f"dalpha_{tag}")

    def _bracket(self, a: tuple[Any, Any], b: tuple[Any, Any], lmax: int, ws: Workspace | None, out: Any) -> Any:
        # r̂·(∇f × ∇g) = ∂β f · (∂α g / sin β) − (∂α f / sin β) · ∂β g   (ê_β × ê_α = r̂)
        t = self.transform
        values = t.multiply(a[0], b[1], ws=ws, name="bracket")
        values -= t.multiply(a[1], b[0], ws=ws, name="bracket_2")
        return t.from_slots(t.analyze(values, lmax, ws=ws), lmax, out=out)

    def _gradient_tables(self, lmax: int) -> tuple:
        """Tables of the compiled surface gradient: (slot rows, ∂β synthesis, (1/sin β)·∂α synthesis)."""
        t = self.transform
        rows, dbeta = t.compiled_synthesis(lmax, "dbeta")
        return rows, dbeta, t.compiled_synthesis(lmax, "over_sin", trig="dalpha")[1]

    def _compiled_buffers(self, ws: Workspace, batch: int, n_grids: int) -> tuple[Any, Any, Any]:
        """Flat slot and scratch buffers and ``n_grids`` folded grids (n_grids, 2, n_fold, n_rings, B)."""
        t = self.transform
        slots, scratch = _kernel_buffers(ws, t, max(self.lmax1, self.lmax2, self.lmax_out), batch)
        return slots, scratch, ws.get("grids", (n_grids, 2, t.n_fold, t.n_rings, batch))

    def forward(self, x: Any, y: Any, *, ws: Workspace | None = None, out: Any = None) -> Any:
        """x (B, (L1+1)²), y (B, (L2+1)²) → (B, (Lout+1)²), written to ``out`` if given."""
        if compiled_route(x):
            ws = ws or Workspace(np, self.transform.dtype)
            result = _c_contiguous_out(out, (x.shape[0], (self.lmax_out + 1) ** 2), self.transform.dtype)
            chunk_kernels.vector_gaunt_forward(
                np.ascontiguousarray(x), np.ascontiguousarray(y), self._gradient_tables(self.lmax1), self._gradient_tables(self.lmax2),
                self.transform.compiled_analysis(self.lmax_out), *self._compiled_buffers(ws, x.shape[0], 5), result,
            )
            return _copy_back(result, out)
        return self._bracket(self._gradient(x, self.lmax1, ws, "x"), self._gradient(y, self.lmax2, ws, "y"), self.lmax_out, ws, out)

    def vjp(self, x: Any, y: Any, grad_out: Any, *, ws: Workspace | None = None, out: tuple[Any, Any] | None = None) -> tuple[Any, Any]:
        """(grad_x, grad_y) by the cyclic symmetry of V."""
        out_x, out_y = out if out is not None else (None, None)
        if compiled_route(x):
            t, batch = self.transform, x.shape[0]
            ws = ws or Workspace(np, t.dtype)
            grad_x = _c_contiguous_out(out_x, (batch, (self.lmax1 + 1) ** 2), t.dtype)
            grad_y = _c_contiguous_out(out_y, (batch, (self.lmax2 + 1) ** 2), t.dtype)
            chunk_kernels.vector_gaunt_vjp(
                np.ascontiguousarray(x), np.ascontiguousarray(y), np.ascontiguousarray(grad_out), self._gradient_tables(self.lmax1),
                self._gradient_tables(self.lmax2), self._gradient_tables(self.lmax_out), t.compiled_analysis(self.lmax1),
                t.compiled_analysis(self.lmax2), *self._compiled_buffers(ws, batch, 7), grad_x, grad_y,
            )
            return _copy_back(grad_x, out_x), _copy_back(grad_y, out_y)
        gx, gy, gg = self._gradient(x, self.lmax1, ws, "x"), self._gradient(y, self.lmax2, ws, "y"), self._gradient(grad_out, self.lmax_out, ws, "g")
        return self._bracket(gy, gg, self.lmax1, ws, out_x), self._bracket(gg, gx, self.lmax2, ws, out_y)

    def flops(self, batch: int, backward: bool = False) -> float:
        """Floating-point operations of one call (multiply-adds count 2)."""
        t, grid = self.transform, 13.0 * batch * self.transform.n_fold * self.transform.n_rings  # two folded products, one difference
        synth = lambda l: 2 * t.flops(l, batch)  # noqa: E731
        anal = lambda l: t.flops(l, batch)  # noqa: E731
        if backward:
            return synth(self.lmax1) + synth(self.lmax2) + synth(self.lmax_out) + 2 * grid + anal(self.lmax1) + anal(self.lmax2)
        return synth(self.lmax1) + synth(self.lmax2) + grid + anal(self.lmax_out)
