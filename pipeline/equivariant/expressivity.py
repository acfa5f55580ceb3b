"""Numerical expressivity, span and reachable paths of a tensor product.

Model (Price of Freedom, arXiv:2506.13523): inputs x, y are one copy of each l ≤ L; an input
linear layer lifts each l-block to C channels (weights W1[l, c], W2[l, c]); the product T acts
channel-wise; an output linear layer maps every output block (all channels, all copies of the
same irrep (l3, parity)) to one copy of each irrep type (weights U[block, c]). The resulting
bilinear map B(θ) = Lin∘T∘(Lin, Lin) is equivariant, so it is a combination of path tensors.

* **expressivity**: dimension of the set {B(θ)} = rank of the Jacobian ∂B/∂θ at random θ;
* **span**: dimension of the linear span of {B(θ)} (rank of many random B(θ));
* **paths**: the (l1, l2, l3) for which T maps block l1 ⊗ block l2 to a nonzero l3 output.

B is linear in each of W1, W2, U separately, so each Jacobian column is an exact evaluation
of the model with one weight replaced by a unit weight; B is compared through its values on
random input pairs (enough pairs that the evaluation is injective on equivariant maps).
Expected (design notes §5) for L1 = L2 = L, Lout = 2L: CG L(L+1)(2L+1)/3 + (L+1)²;
Gaunt, one channel, 4L+1; Gaunt span and saturated expressivity L(L+1)(2L+1)/6 + (L+1)².
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from pipeline.equivariant.products import output_irreps, tensor_product

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExpressivityResult:
    """Numbers for one (method, L, C)."""

    method: str
    lmax: int
    channels: int
    expressivity: int
    span: int
    paths: tuple[tuple[int, int, int], ...]

    @property
    def n_paths(self) -> int:
        return len(self.paths)


def cg_path_count(lmax: int) -> int:
    """L(L+1)(2L+1)/3 + (L+1)²: all paths for one copy of each l ≤ L, Lout = 2L."""
    return lmax * (lmax + 1) * (2 * lmax + 1) // 3 + (lmax + 1) ** 2


def even_path_count(lmax: int) -> int:
    """L(L+1)(2L+1)/6 + (L+1)²: paths with l1 + l2 + l3 even."""
    return lmax * (lmax + 1) * (2 * lmax + 1) // 6 + (lmax + 1) ** 2


def _masks(lmax: int) -> np.ndarray:
    m = np.zeros((lmax + 1, (lmax + 1) ** 2))
    for l in range(lmax + 1):
        m[l, l * l : (l + 1) ** 2] = 1.0
    return m


def _rank(rows: np.ndarray) -> int:
    """Numerical rank of a short, wide matrix: eigenvalues of the Gram matrix of its
    normalised rows (rows below 1e-10 of the largest norm count as zero) above 1e-11 of the largest (singular values above ~3e-6 relative)."""
    norms = np.linalg.norm(rows, axis=1)
    keep = norms > 1e-10 * norms.max(initial=0.0)
    rows = rows[keep] / norms[keep, None]
    if rows.shape[0] == 0:
        return 0
    eig = np.linalg.eigvalsh(rows @ rows.T)
    return int(np.sum(eig > eig.max() * 1e-11))


def expressivity(method: str, lmax: int, channels: int = 1, *, rng: np.random.Generator, parity: tuple[int, int] = (1, 1)) -> ExpressivityResult:
    """Expressivity, span dimension and reachable paths of ``method`` (float64, NumPy).

    Parameters
    ----------
    method : one of :data:`pipeline.equivariant.products.METHODS`
    lmax : int, input degree L (both inputs); output degree 2L
    channels : int, C ≥ 1
    rng : numpy Generator for the random weights and probe inputs
    """
    if lmax < 0 or channels < 1:
        raise ValueError(f"need lmax >= 0 and channels >= 1, got {lmax}, {channels}")
    n = (lmax + 1) ** 2
    irreps = output_irreps(method, lmax, lmax, 2 * lmax, parity)
    blocks = irreps.blocks
    types = sorted({(b.l, b.parity) for b in blocks})
    type_start, start = {}, 0
    for t in types:
        type_start[t] = start
        start += 2 * t[0] + 1
    dim_final = start
    n_samples = 2 * (lmax + 1) ** 2 + 8
    masks = _masks(lmax)
    x = rng.normal(size=(n_samples, n))
    y = rng.normal(size=(n_samples, n))

    def tp(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return tensor_product(a, b, method=method, parity=parity)[0]

    # blocks of each irrep type: their indices and (n_k, 2l+1) column indices into T's output
    by_type = {t: ([], []) for t in types}
    for k, b in enumerate(blocks):
        by_type[(b.l, b.parity)][0].append(k)
        by_type[(b.l, b.parity)][1].append(np.arange(b.start, b.stop))
    gathers = [(type_start[t], 2 * t[0] + 1, np.array(ks), np.array(cols)) for t, (ks, cols) in by_type.items()]

    def lin_out(t: np.ndarray, u: np.ndarray) -> np.ndarray:
        """t (..., C, S, dimT), u (nblocks, C) -> (..., S, dim_final), summed over blocks and channels."""
        out = np.empty((*t.shape[:-3], t.shape[-2], dim_final))
        for s0, width, ks, cols in gathers:
            out[..., s0 : s0 + width] = np.einsum("kc,...cskm->...sm", u[ks], t[..., cols])
        return out

    def lifted(v: np.ndarray, w: np.ndarray) -> np.ndarray:  # (S, n), (L+1, C) -> (C, S, n)
        return v[None] * (w.T @ masks)[:, None, :]

    def model(w1: np.ndarray, w2: np.ndarray, u: np.ndarray) -> np.ndarray:
        return lin_out(tp(lifted(x, w1), lifted(y, w2)), u).ravel()

    w1, w2 = rng.normal(size=(lmax + 1, channels)), rng.normal(size=(lmax + 1, channels))
    u = rng.normal(size=(len(blocks), channels))
    xl, yl = lifted(x, w1), lifted(y, w2)
    masked_x = x[None] * masks[:, None, :]  # (L+1, S, n)
    masked_y = y[None] * masks[:, None, :]
    rows = []
    # ∂B/∂W1[l, c]: channel c sees the l-block of x only
    t1 = tp(masked_x[:, None], yl[None])  # (L+1, C, S, dimT)
    t2 = tp(xl[None], masked_y[:, None])
    for t in (t1, t2):
        for l in range(lmax + 1):
            for c in range(channels):
                uc = np.zeros_like(u)
                uc[:, c] = u[:, c]
                rows.append(lin_out(t[l], uc).ravel())
    z = tp(xl, yl)  # (C, S, dimT)
    for k in range(len(blocks)):
        for c in range(channels):
            uk = np.zeros_like(u)
            uk[k, c] = 1.0
            rows.append(lin_out(z, uk).ravel())
    jac = np.array(rows)
    rank_expr = _rank(jac)

    # reachable paths from T itself
    tpaths = tp(masked_x[:, None], masked_y[None])  # (L+1, L+1, S, dimT)
    scale = np.abs(tpaths).max()
    paths = set()
    for b in blocks:
        for l1, l2 in b.paths:
            if np.abs(tpaths[l1, l2, :, b.slice]).max() > 1e-10 * scale:
                paths.add((l1, l2, b.l))

    n_span = len(irreps.paths) + 8  # the maps lie in the span of these path tensors
    span_rows = [model(*(rng.normal(size=a.shape) for a in (w1, w2, u))) for _ in range(n_span)]
    rank_span = _rank(np.array(span_rows))
    log.info("expressivity %s L=%d C=%d: expressivity=%d span=%d paths=%d", method, lmax, channels, rank_expr, rank_span, len(paths))
    return ExpressivityResult(method, lmax, channels, rank_expr, rank_span, tuple(sorted(paths)))
