"""Full Clebsch–Gordan tensor product kernels (forward and hand-written adjoint).

For every pair (l1, l2) the outer product x_l1 ⊗ y_l2 (B, (2l1+1)(2l2+1)) is multiplied by one
dense matrix holding the stacked CG blocks √(2l3+1)·w3j(l1, l2, l3) of every admissible
l3 ≤ Lout, so the product is L² GEMMs of size B × n1n2 × Σn3. Output blocks are ordered by
l1, then l2, then l3 (:func:`pipeline.equivariant.clebsch_gordan.cg_paths`).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from pipeline.equivariant.clebsch_gordan import cg_block
from pipeline.equivariant.ring_transform import Workspace, matmul_into

log = logging.getLogger(__name__)


class CGPlan:
    """Stacked CG matrices for inputs of degree ≤ (L1, L2) and outputs of degree ≤ Lout."""

    def __init__(self, lmax1: int, lmax2: int, lmax_out: int, *, xp: Any, dtype: Any):
        self.lmax1, self.lmax2, self.lmax_out, self.xp = lmax1, lmax2, lmax_out, xp
        self.pairs = []  # (l1, l2, l3 list, out_start, out_stop, matrix)
        start = 0
        for l1 in range(lmax1 + 1):
            for l2 in range(lmax2 + 1):
                l3s = list(range(abs(l1 - l2), min(l1 + l2, lmax_out) + 1))
                if not l3s:
                    continue
                mat = np.concatenate([cg_block(l1, l2, l3).reshape((2 * l1 + 1) * (2 * l2 + 1), -1) for l3 in l3s], axis=1)
                stop = start + mat.shape[1]
                self.pairs.append((l1, l2, l3s, start, stop, xp.asarray(mat, dtype=dtype)))
                start = stop
        self.dim_out = start

    def forward(self, x: Any, y: Any, *, ws: Workspace | None = None, out: Any = None) -> Any:
        """x (B, (L1+1)²), y (B, (L2+1)²) → (B, dim_out), written to ``out`` if given."""
        xp = self.xp
        nb = x.shape[0]
        if out is None:
            out = xp.empty((nb, self.dim_out), dtype=x.dtype)
        for l1, l2, _, start, stop, mat in self.pairs:
            n1, n2 = 2 * l1 + 1, 2 * l2 + 1
            outer = xp.empty((nb, n1, n2), dtype=x.dtype) if ws is None else ws.get("outer", (nb, n1, n2))
            xp.multiply(x[:, l1 * l1 : (l1 + 1) ** 2, None], y[:, None, l2 * l2 : (l2 + 1) ** 2], out=outer)
            matmul_into(outer.reshape(nb, n1 * n2), mat, out[:, start:stop])
        return out

    def vjp(self, x: Any, y: Any, grad_out: Any, *, ws: Workspace | None = None, out: tuple[Any, Any] | None = None) -> tuple[Any, Any]:
        """Adjoint: (grad_x, grad_y) for the upstream gradient grad_out (B, dim_out)."""
        xp = self.xp
        nb = x.shape[0]
        grad_x, grad_y = out if out is not None else (xp.empty_like(x), xp.empty_like(y))
        grad_x[...] = 0.0
        grad_y[...] = 0.0
        for l1, l2, _, start, stop, mat in self.pairs:
            n1, n2 = 2 * l1 + 1, 2 * l2 + 1
            s1, s2 = slice(l1 * l1, (l1 + 1) ** 2), slice(l2 * l2, (l2 + 1) ** 2)
            g = xp.empty((nb, n1 * n2), dtype=x.dtype) if ws is None else ws.get("outer", (nb, n1 * n2))
            matmul_into(grad_out[:, start:stop], mat.T, g)
            g = g.reshape(nb, n1, n2)
            grad_x[:, s1] += xp.matmul(g, y[:, s2, None])[:, :, 0]
            grad_y[:, s2] += xp.matmul(x[:, None, s1], g)[:, 0, :]
        return grad_x, grad_y

    def flops(self, batch: int, backward: bool = False) -> float:
        """Floating-point operations of one call (multiply-adds count 2)."""
        total = 0.0
        for l1, l2, _, start, stop, _ in self.pairs:
            n12, k = (2 * l1 + 1) * (2 * l2 + 1), stop - start
            total += batch * ((2.0 * n12 * k + 4.0 * n12) if backward else (n12 + 2.0 * n12 * k))
        return total
