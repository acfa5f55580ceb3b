"""Neighbour search: all atom pairs closer than a cutoff, as sparse index arrays (KD-tree).

Two routes through :class:`scipy.spatial.cKDTree` give the same set of pairs:

* ``"query_pairs"`` (default): ``tree.query_pairs(r, output_type="ndarray")`` returns each
  unordered pair once (``i < j``). It is single-threaded but the fastest measured on two cores
  (see ``benchmarks/bench_descriptors.py``), and the half list is what the density expansion
  wants: ``Y_lm(−r̂) = (−1)^l Y_lm(r̂)`` gives the reverse pair for free.
* ``"ball_point"``: ``tree.query_ball_point(x, r, workers=-1)`` (all cores), flattened to the
  same half list; pays for per-atom Python lists but scales with the number of cores.

Pairs at exactly zero distance (coincident atoms) have no direction and are dropped with a
warning.
"""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # SciPy's spatial package is imported when a search runs (not by the cell route)
    from scipy.spatial import cKDTree

log = logging.getLogger(__name__)

#: Neighbour-search routes accepted by :func:`neighbour_pairs`.
SEARCH_METHODS = ("query_pairs", "ball_point")


@dataclass
class PairList:
    """Unordered atom pairs within a cutoff, each listed once with ``first < second``.

    Attributes
    ----------
    first, second : (n_pairs,) intp
        Atom indices, ``first < second``.
    vectors_A : (n_pairs, 3) float64, Å
        ``positions[second] − positions[first]``.
    distances_A : (n_pairs,) float64, Å
        Norms of ``vectors_A``, in ``(0, cutoff)``.
    """

    first: np.ndarray
    second: np.ndarray
    vectors_A: np.ndarray
    distances_A: np.ndarray

    @property
    def n_pairs(self) -> int:
        return int(self.first.shape[0])


def _pairs_from_ball_point(tree: cKDTree, positions_A: np.ndarray, cutoff_A: float, workers: int) -> np.ndarray:
    lists = tree.query_ball_point(positions_A, cutoff_A, workers=workers, return_sorted=False)
    counts = np.fromiter(map(len, lists), dtype=np.intp, count=len(lists))
    second = np.fromiter(itertools.chain.from_iterable(lists), dtype=np.intp, count=int(counts.sum()))
    first = np.repeat(np.arange(len(lists), dtype=np.intp), counts)
    keep = first < second
    return np.stack([first[keep], second[keep]], axis=1)


def neighbour_pairs(
    positions_A: np.ndarray, cutoff_A: float, *, method: str = "query_pairs", workers: int = -1
) -> PairList:
    """All unordered pairs of atoms closer than ``cutoff_A``.

    Parameters
    ----------
    positions_A : (n_atoms, 3) float64, Å
    cutoff_A : float
        Cutoff in Å (pairs with distance < cutoff; positive).
    method : {"query_pairs", "ball_point"}
        KD-tree route (see the module docstring).
    workers : int
        Threads for ``"ball_point"`` (−1 = all cores); ignored by ``"query_pairs"``.

    Returns
    -------
    PairList
        Half list (``first < second``), ordered by ``first`` then ``second``.
    """
    positions_A = np.ascontiguousarray(positions_A, dtype=np.float64)
    if positions_A.ndim != 2 or positions_A.shape[1] != 3:
        raise ValueError(f"positions must have shape (n_atoms, 3), got {positions_A.shape}")
    if not np.all(np.isfinite(positions_A)):
        raise ValueError("positions contain NaN or infinite values")
    if not cutoff_A > 0:
        raise ValueError(f"cutoff must be positive (Å), got {cutoff_A!r}")
    if method not in SEARCH_METHODS:
        raise ValueError(f"unknown neighbour search method {method!r}; expected one of {', '.join(SEARCH_METHODS)}")
    from scipy.spatial import cKDTree

    start = time.perf_counter()
    tree = cKDTree(positions_A)
    if method == "query_pairs":
        # query_pairs uses r <= cutoff; the strict inequality is applied below.
        pairs = tree.query_pairs(cutoff_A, output_type="ndarray")
    else:
        pairs = _pairs_from_ball_point(tree, positions_A, cutoff_A, workers)
    pairs = pairs.astype(np.intp, copy=False).reshape(-1, 2)
    order = np.argsort(pairs[:, 0].astype(np.int64) * positions_A.shape[0] + pairs[:, 1])
    first, second = pairs[order, 0], pairs[order, 1]
    vectors = positions_A[second] - positions_A[first]
    distances = np.sqrt(np.einsum("pk,pk->p", vectors, vectors))
    keep = (distances > 0.0) & (distances < cutoff_A)
    n_coincident = int(np.count_nonzero(distances == 0.0))
    if n_coincident:
        log.warning("neighbours: dropped %d pair(s) of coincident atoms (zero distance, no direction)", n_coincident)
    if not keep.all():
        first, second, vectors, distances = first[keep], second[keep], vectors[keep], distances[keep]
    log.info(
        "neighbours: %d atoms, cutoff %.2f Å, %d pairs (%s) %.2fs",
        positions_A.shape[0], cutoff_A, first.shape[0], method, time.perf_counter() - start,
    )
    return PairList(first=first, second=second, vectors_A=vectors, distances_A=distances)
