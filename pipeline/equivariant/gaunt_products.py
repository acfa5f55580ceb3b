"""Gaunt-type product kernels: S2 grid, torus Fourier and vector (cross-product) Gaunt.

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
"""

from __future__ import annotations

import logging
from typing import Any

from pipeline.equivariant.fourier import TorusTransform, torus_size
from pipeline.equivariant.s2grid import S2Grid, minimal_grid

log = logging.getLogger(__name__)


class GridGauntPlan:
    """Gaunt product on the minimal Gauss–Legendre × equispaced grid for (L1, L2, Lout)."""

    def __init__(self, lmax1: int, lmax2: int, lmax_out: int, *, xp: Any, dtype: Any, n_rings: int | None = None, n_azimuth: int | None = None):
        self.lmax1, self.lmax2, self.lmax_out = lmax1, lmax2, lmax_out
        nb_min, na_min = minimal_grid(lmax1 + lmax2 + lmax_out)
        self.n_rings = n_rings or nb_min
        self.n_azimuth = n_azimuth or na_min
        self.grid = S2Grid(max(lmax1, lmax2, lmax_out), self.n_rings, self.n_azimuth, xp=xp, dtype=dtype)

    def forward(self, x: Any, y: Any) -> Any:
        """x (B, (L1+1)²), y (B, (L2+1)²) → (B, (Lout+1)²)."""
        g = self.grid
        return g.analyze(g.synthesize(x, self.lmax1) * g.synthesize(y, self.lmax2), self.lmax_out)

    def vjp(self, x: Any, y: Any, grad_out: Any) -> tuple[Any, Any]:
        grid = self.grid
        gs = grid.synthesize(grad_out, self.lmax_out)
        grad_x = grid.analyze(gs * grid.synthesize(y, self.lmax2), self.lmax1)
        grad_y = grid.analyze(gs * grid.synthesize(x, self.lmax1), self.lmax2)
        return grad_x, grad_y

    def flops(self, batch: int, backward: bool = False) -> float:
        nb, na = self.n_rings, self.n_azimuth

        def synth(l: int) -> float:  # Legendre GEMMs + azimuth GEMM
            return 2.0 * batch * nb * ((l + 1) ** 2 + na * (2 * l + 1))

        grid = batch * nb * na
        if backward:
            return synth(self.lmax_out) + synth(self.lmax1) + synth(self.lmax2) + 2 * grid + synth(self.lmax1) + synth(self.lmax2)
        return synth(self.lmax1) + synth(self.lmax2) + grid + synth(self.lmax_out)


class FourierGauntPlan:
    """Gaunt product through exact torus Fourier tables and 2D FFTs."""

    def __init__(self, lmax1: int, lmax2: int, lmax_out: int, *, xp: Any, dtype: Any, for_vjp: bool = False):
        self.lmax1, self.lmax2, self.lmax_out = lmax1, lmax2, lmax_out
        sizes = [torus_size(lmax1, lmax2, lmax_out)]
        if for_vjp:
            sizes += [torus_size(lmax_out, lmax2, lmax1), torus_size(lmax_out, lmax1, lmax2)]
        self.n_beta = max(s[0] for s in sizes)
        self.n_alpha = max(s[1] for s in sizes)
        self.torus = TorusTransform(max(lmax1, lmax2, lmax_out), self.n_beta, self.n_alpha, xp=xp, dtype=dtype)

    def forward(self, x: Any, y: Any) -> Any:
        t = self.torus
        return t.analyze(t.synthesize(x, self.lmax1) * t.synthesize(y, self.lmax2), self.lmax_out)

    def vjp(self, x: Any, y: Any, grad_out: Any) -> tuple[Any, Any]:
        t = self.torus
        gs = t.synthesize(grad_out, self.lmax_out)
        grad_x = t.analyze(gs * t.synthesize(y, self.lmax2), self.lmax1)
        grad_y = t.analyze(gs * t.synthesize(x, self.lmax1), self.lmax2)
        return grad_x, grad_y

    def flops(self, batch: int, backward: bool = False) -> float:
        import math

        nbeta, nalpha = self.n_beta, self.n_alpha
        fft = 2.5 * batch * nbeta * nalpha * math.log2(nbeta * nalpha)

        def synth(l: int) -> float:
            return 2.0 * batch * nbeta * (l + 1) ** 2 + fft

        def proj(l: int) -> float:
            return 8.0 * batch * nbeta * (l + 1) ** 2 / 2 + fft

        grid = batch * nbeta * nalpha
        if backward:
            return 3 * synth(max(self.lmax1, self.lmax2, self.lmax_out)) + 2 * grid + proj(self.lmax1) + proj(self.lmax2)
        return synth(self.lmax1) + synth(self.lmax2) + grid + proj(self.lmax_out)


class VectorGauntPlan:
    """Radial part of the cross product of surface gradients, on the minimal exact grid."""

    def __init__(self, lmax1: int, lmax2: int, lmax_out: int, *, xp: Any, dtype: Any):
        self.lmax1, self.lmax2, self.lmax_out = lmax1, lmax2, lmax_out
        self.n_rings, self.n_azimuth = minimal_grid(lmax1 + lmax2 + lmax_out)
        self.grid = S2Grid(max(lmax1, lmax2, lmax_out), self.n_rings, self.n_azimuth, xp=xp, dtype=dtype, derivatives=True)

    def _gradient(self, ct: Any, lmax: int) -> tuple[Any, Any]:
        return self.grid.synthesize(ct, lmax, "dbeta"), self.grid.synthesize(ct, lmax, "dalpha_over_sin")

    def _bracket(self, a: tuple[Any, Any], b: tuple[Any, Any], lmax: int) -> Any:
        # r̂·(∇f × ∇g) = ∂β f · (∂α g / sin β) − (∂α f / sin β) · ∂β g   (ê_β × ê_α = r̂)
        return self.grid.analyze(a[0] * b[1] - a[1] * b[0], lmax)

    def forward(self, x: Any, y: Any) -> Any:
        return self._bracket(self._gradient(x, self.lmax1), self._gradient(y, self.lmax2), self.lmax_out)

    def vjp(self, x: Any, y: Any, grad_out: Any) -> tuple[Any, Any]:
        gx, gy, gg = self._gradient(x, self.lmax1), self._gradient(y, self.lmax2), self._gradient(grad_out, self.lmax_out)
        return self._bracket(gy, gg, self.lmax1), self._bracket(gg, gx, self.lmax2)

    def flops(self, batch: int, backward: bool = False) -> float:
        nb, na = self.n_rings, self.n_azimuth

        def synth(l: int) -> float:
            return 2.0 * batch * nb * ((l + 1) ** 2 + na * (2 * l + 1))

        grid = 3.0 * batch * nb * na
        if backward:
            return 2 * (synth(self.lmax1) + synth(self.lmax2) + synth(self.lmax_out)) + 2 * grid + synth(self.lmax1) + synth(self.lmax2)
        return 2 * (synth(self.lmax1) + synth(self.lmax2)) + grid + synth(self.lmax_out)
