"""Exact direct summation Φ(y) = Σ_j q_j / |y − x_j| (the reference for self-checks and tests).

Chunked over targets so memory stays at ``chunk × n_atoms``; works with NumPy and CuPy.
Sources at distance 0 from a target (the atom itself) are left out.
"""

from __future__ import annotations

from pipeline.backend import namespace_of

#: Target–source pairs per block.
BLOCK_PAIRS = 4_000_000


def direct_potential(targets, positions, charges, *, kernel=None):
    """Σ_j q_j k(|y_i − x_j|) at every target, skipping coincident pairs.

    Parameters
    ----------
    targets : (n_targets, 3) float64, Å
    positions : (n_atoms, 3) float64, Å
    charges : (n_atoms,) float64, e
    kernel : callable, optional
        k(r) for r > 0 (default 1/r).

    Returns
    -------
    (n_targets,) float64, e/Å
    """
    xp = namespace_of(targets, positions, charges)
    n_t = targets.shape[0]
    out = xp.zeros(n_t, dtype=xp.float64)
    chunk = max(1, BLOCK_PAIRS // max(positions.shape[0], 1))
    for start in range(0, n_t, chunk):
        y = targets[start : start + chunk]
        d = y[:, None, :] - positions[None, :, :]
        r = xp.sqrt(xp.sum(d * d, axis=-1))
        safe = xp.where(r > 0, r, 1.0)
        k = 1.0 / safe if kernel is None else kernel(safe)
        out[start : start + chunk] = xp.where(r > 0, k, 0.0) @ charges
    return out


def direct_field(targets, positions, charges):
    """Electric field E(y) = Σ_j q_j (y − x_j)/|y − x_j|³, shape (n_targets, 3), e/Å²."""
    xp = namespace_of(targets, positions, charges)
    n_t = targets.shape[0]
    out = xp.zeros((n_t, 3), dtype=xp.float64)
    chunk = max(1, BLOCK_PAIRS // max(positions.shape[0], 1))
    for start in range(0, n_t, chunk):
        y = targets[start : start + chunk]
        d = y[:, None, :] - positions[None, :, :]
        r = xp.sqrt(xp.sum(d * d, axis=-1))
        inv3 = xp.where(r > 0, 1.0 / xp.where(r > 0, r, 1.0) ** 3, 0.0) * charges[None, :]
        out[start : start + chunk] = xp.einsum("tj,tjk->tk", inv3, d)
    return out
