"""Separable transforms between SH coefficients and values on a ring grid, batch last.

A ring grid has ``n_rings`` rings at polar angles β_j and ``n_azimuth`` equispaced azimuths
α_k = 2πk/n_azimuth. With Y_lm(β, α) = leg_lm(β)·trig_m(α) (trig: 1, cos mα or sin mα; see
:mod:`pipeline.equivariant.spherical_harmonics`), synthesis of f = Σ c_lm Y_lm is two GEMM
stages:

1. β stage, one GEMM per order m ≥ 0 (its cos and sin parts stacked):
   R_cos/sin[m, j, b] = Σ_l S_m[j, l] c[(l, ±m), b], with the (n_rings, L−m+1) matrix S_m;
2. α stage on the folded azimuth (below): two GEMMs,
   C[k, j, b] = Σ_m cos(mα_k) R_cos[m, j, b] and Z[k, j, b] = Σ_m sin(mα_k) R_sin[m, j, b].

Folded azimuth. The azimuths pair up as α_k and α_{−k} = 2π − α_k, and every signal splits
into an even part C (cos terms) and an odd part Z (sin terms): f(α_{±k}) = C_k ± Z_k. So a
signal is stored as ``(2, n_fold, n_rings, B)`` = (C, Z) on the rows k = 0..⌊n_azimuth/2⌋ only
(Z is zero on the self-paired rows α = 0 and, for even n_azimuth, α = π). The pointwise
product of f = (C1, Z1) and g = (C2, Z2) is, in the same form,
(C1C2 + Z1Z2, C1Z2 + Z1C2) — the half-sums and half-differences of the products at ±α_k —
and the α analysis integrates it with weights μ_k (2π/n_azimuth)·{cos mα_k, sin mα_k}, μ_k = 2
for paired rows and 1 for self-paired ones. This halves the α GEMMs (the larger stage) for
four products instead of one in the pointwise step; the quadrature is unchanged, so every
exactness statement of the unfolded grid holds.

Analysis runs the transposed stages: ĥ_cos/sin[m, j, b] from the α GEMMs, then
c[(l, ±m), b] = Σ_j A_m[l, j] ĥ_cos/sin[m, j, b] with the β analysis matrices A_m (the
quadrature in β folded in). Both directions cost O(L³) per item (O(L) orders × O(L) rings
× O(L) degrees or azimuths) against O(L⁴) for a dense (L+1)² × grid matrix.

Layout: batch last, so every GEMM has the batch as its long dimension and writes contiguous
rows. Coefficients ``(n_coeff, B)`` in slot order (m = 0; then for each m ≥ 1 the cos rows
l = m..L followed by the sin rows, see :func:`slot_order`), ring coefficients
``(2, L+1, n_rings, B)`` (cos, sin; the sin row m = 0 is unused), folded values
``(2, n_fold, n_rings, B)``. The only transposes are at entry (:meth:`RingTransform.to_slots`)
and exit (:meth:`RingTransform.from_slots`). Temporaries come from a :class:`Workspace`
reused across the chunks of one call.

The β matrices (Gauss–Legendre Legendre tables in :mod:`pipeline.equivariant.s2grid`,
Fourier tables on a half torus in :mod:`pipeline.equivariant.fourier`) are built in float64
by the caller and cast once to the working dtype here.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


def matmul_into(a: Any, b: Any, out: Any) -> None:
    """out[...] = a @ b. NumPy writes in place (BLAS takes strided and stacked ``out``);
    other backends go through a temporary."""
    if isinstance(out, np.ndarray):
        np.matmul(a, b, out=out)
    else:
        out[...] = a @ b


class Workspace:
    """Named scratch arrays reused across the chunks of one call.

    Fresh memory is expensive to fault in (about 0.3 ms per MiB measured on a virtualised
    CPU, comparable to the GEMMs of a chunk), so the product kernels take their temporaries
    from here; a buffer grows when a larger shape is requested. A workspace belongs to one
    call (it is not shared between threads or kept between calls).

    Parameters
    ----------
    xp : module
    dtype : numpy dtype
    """

    def __init__(self, xp: Any, dtype: Any):
        self.xp, self.dtype = xp, np.dtype(dtype)
        self._buffers: dict[str, Any] = {}
        self._views: dict[tuple[str, tuple[int, ...]], Any] = {}

    def get(self, name: str, shape: tuple[int, ...]) -> Any:
        """A C-contiguous array of ``shape`` (contents undefined) backed by buffer ``name``."""
        view = self._views.get((name, shape))
        if view is not None:
            return view
        size = math.prod(shape)
        buf = self._buffers.get(name)
        if buf is None or buf.size < size:
            buf = self.xp.empty(size, dtype=self.dtype)
            self._buffers[name] = buf
            self._views = {key: v for key, v in self._views.items() if key[0] != name}
        view = buf[:size].reshape(shape)
        self._views[(name, shape)] = view
        return view


def slot_order(lmax: int) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int, int]]]:
    """Permutation of flat SH indices into slot order, its inverse, and per-order row ranges.

    Returns
    -------
    order : ((L+1)²,) int64
        ``coeffs[..., order]`` is in slot order: m = 0 (l = 0..L), then for m = 1..L the
        (l, +m) rows (l = m..L, the cos mα slot) followed by the (l, −m) rows (sin mα slot).
    inverse : ((L+1)²,) int64
        Inverse permutation.
    ranges : list of (m, start, stop)
        Rows of order m in slot order (2(L−m+1) rows for m ≥ 1, cos block first).
    """
    order, ranges, start = [], [], 0
    for m in range(lmax + 1):
        ls = np.arange(m, lmax + 1)
        rows = [ls * ls + ls] if m == 0 else [ls * ls + ls + m, ls * ls + ls - m]
        for row in rows:
            order.extend(row.tolist())
        ranges.append((m, start, len(order)))
        start = len(order)
    order_arr = np.array(order, dtype=np.int64)
    return order_arr, np.argsort(order_arr), ranges


def folded_azimuth_tables(lmax: int, n_azimuth: int) -> dict[str, np.ndarray]:
    """Azimuthal tables on the folded rows k = 0..⌊n_azimuth/2⌋ (float64), column m = 0..L.

    Returns
    -------
    dict with
        ``cos``, ``sin`` : (n_fold, L+1), cos mα_k and sin mα_k (synthesis of C and Z);
        ``dcos``, ``dsin`` : (n_fold, L+1), m cos mα_k and −m sin mα_k (∂/∂α maps the sin
        terms to the even part and the cos terms to the odd part);
        ``cos_analysis``, ``sin_analysis`` : (L+1, n_fold), μ_k (2π/n_azimuth) cos mα_k and
        μ_k (2π/n_azimuth) sin mα_k, μ_k = 1 on self-paired rows, 2 otherwise; they
        integrate a folded product against cos mα and sin mα over [0, 2π), exactly for
        trigonometric polynomials of degree < n_azimuth − m.
    """
    n_fold = n_azimuth // 2 + 1
    alpha = 2.0 * np.pi * np.arange(n_fold) / n_azimuth
    m = np.arange(lmax + 1)
    cos, sin = np.cos(np.outer(alpha, m)), np.sin(np.outer(alpha, m))
    sin[0] = 0.0
    if n_azimuth % 2 == 0:
        sin[-1] = 0.0  # α = π
    mult = np.full(n_fold, 2.0)
    mult[0] = 1.0
    if n_azimuth % 2 == 0:
        mult[-1] = 1.0
    weight = mult * (2.0 * np.pi / n_azimuth)
    return {
        "cos": cos,
        "sin": sin,
        "dcos": cos * m,
        "dsin": -sin * m,
        "cos_analysis": (cos * weight[:, None]).T,
        "sin_analysis": (sin * weight[:, None]).T,
    }


class RingTransform:
    """Separable synthesis/analysis of degree ≤ ``lmax`` signals on one ring grid.

    Parameters
    ----------
    lmax : int
        Largest degree handled; signals and outputs may use any L ≤ lmax.
    n_azimuth : int
        Equispaced azimuths α_k = 2πk/n_azimuth.
    synthesis : dict of str to sequence of (n_rings, lmax−m+1) float64 arrays
        β synthesis matrices S_m per kind (e.g. ``"value"``, ``"dbeta"``): column l − m of
        ``synthesis[kind][m]`` is the β factor of Y_lm (or of a derivative) on the rings.
    analysis : sequence of (lmax−m+1, n_rings) float64 arrays
        β analysis matrices A_m: c_lm = Σ_j A_m[l−m, j] ĥ_m(β_j), where ĥ_m is the α
        integral of the values against trig_m.
    xp : module
        Array module of the tables (NumPy or CuPy).
    dtype : float32 or float64
        Working dtype; tables are cast once.
    """

    def __init__(
        self,
        lmax: int,
        n_azimuth: int,
        synthesis: dict[str, Sequence[np.ndarray]],
        analysis: Sequence[np.ndarray],
        *,
        xp: Any,
        dtype: Any,
    ):
        self.lmax, self.n_azimuth, self.xp, self.dtype = int(lmax), int(n_azimuth), xp, np.dtype(dtype)
        self.n_rings = int(analysis[0].shape[1])
        cast = lambda a: xp.asarray(np.ascontiguousarray(a), dtype=self.dtype)  # noqa: E731
        self.n_fold = self.n_azimuth // 2 + 1
        self.azimuth = {k: cast(v) for k, v in folded_azimuth_tables(lmax, n_azimuth).items()}
        self.synthesis = {kind: [cast(s) for s in mats] for kind, mats in synthesis.items()}
        self.analysis = [cast(a) for a in analysis]
        # per signal degree l: slot permutation, and every table already cut to degree l
        # (contiguous), so the per-chunk loops only slice the data
        self._slots, self._beta_synthesis, self._beta_analysis, self._azimuth = {}, {}, {}, {}
        for l in range(lmax + 1):
            order, inverse, ranges = slot_order(l)
            self._slots[l] = (xp.asarray(order), xp.asarray(inverse), ranges)
            self._beta_synthesis[l] = {kind: [cast(mats[m][:, : l - m + 1]) for m in range(l + 1)] for kind, mats in synthesis.items()}
            self._beta_analysis[l] = [cast(analysis[m][: l - m + 1]) for m in range(l + 1)]
            self._azimuth[l] = {
                "cos": cast(self.azimuth["cos"][:, : l + 1]),
                "sin": cast(self.azimuth["sin"][:, 1 : l + 1]),
                "dcos": cast(self.azimuth["dcos"][:, 1 : l + 1]),
                "dsin": cast(self.azimuth["dsin"][:, : l + 1]),
                "cos_analysis": cast(self.azimuth["cos_analysis"][: l + 1]),
                "sin_analysis": cast(self.azimuth["sin_analysis"][1 : l + 1]),
            }

    def _buffer(self, ws: Workspace | None, name: str, shape: tuple[int, ...]) -> Any:
        if ws is None:
            return self.xp.empty(shape, dtype=self.dtype)
        return ws.get(name, shape)

    def to_slots(self, coeffs: Any, lmax: int, *, ws: Workspace | None = None, name: str = "slots") -> Any:
        """(B, (L+1)²) coefficients in e3nn order → ((L+1)², B) in slot order (a copy)."""
        out = self._buffer(ws, name, ((lmax + 1) ** 2, coeffs.shape[0]))
        out[...] = coeffs.T[self._slots[lmax][0]]  # measured 2x faster than take(..., out=) here
        return out

    def from_slots(self, coeffs_t: Any, lmax: int, *, out: Any = None) -> Any:
        """((L+1)², B) in slot order → (B, (L+1)²) in e3nn order, written to ``out`` if given."""
        if out is None:
            return coeffs_t.T[:, self._slots[lmax][1]]
        out[...] = coeffs_t.T[:, self._slots[lmax][1]]
        return out

    def synthesize(
        self, coeffs_t: Any, lmax: int, kind: str = "value", trig: str = "value", *, ws: Workspace | None = None, name: str = "values"
    ) -> Any:
        """Folded values (2, n_fold, n_rings, B) of Σ c_lm S_lm(β)·trig_m(α) (or ∂/∂α of trig).

        Parameters
        ----------
        coeffs_t : ((lmax+1)², B) array in slot order (:meth:`to_slots`)
        lmax : int, ≤ self.lmax
        kind : key of the β synthesis matrices
        trig : {"value", "dalpha"}
            Azimuthal factor trig_m or its derivative ∂trig_m/∂α.
        ws, name : optional workspace and the name of the returned buffer in it
            (the buffer ``"scratch"`` is also used).

        Returns
        -------
        (2, n_fold, n_rings, B) array: even part C and odd part Z, f(β_j, ±α_k) = C ± Z.
        """
        mats, nb, batch = self._beta_synthesis[lmax][kind], self.n_rings, coeffs_t.shape[1]
        rings = self._buffer(ws, "scratch", (2, lmax + 1, nb, batch))
        matmul_into(mats[0], coeffs_t[: lmax + 1], rings[0, 0])
        for m, start, stop in self._slots[lmax][2][1:]:
            matmul_into(mats[m], coeffs_t[start:stop].reshape(2, lmax - m + 1, batch), rings[:, m])
        values = self._buffer(ws, name, (2, self.n_fold, nb, batch))
        cos_part = rings[0].reshape(lmax + 1, nb * batch)
        sin_part = rings[1, 1:].reshape(lmax, nb * batch)
        even, odd = values[0].reshape(self.n_fold, nb * batch), values[1].reshape(self.n_fold, nb * batch)
        az = self._azimuth[lmax]
        if trig == "value":
            matmul_into(az["cos"], cos_part, even)
            matmul_into(az["sin"], sin_part, odd)
        else:
            matmul_into(az["dcos"], sin_part, even)
            matmul_into(az["dsin"], cos_part, odd)
        return values

    def multiply(self, f: Any, g: Any, *, ws: Workspace | None = None, name: str = "product", overwrite: bool = False) -> Any:
        """Pointwise product of two folded signals, folded: (C1C2 + Z1Z2, C1Z2 + Z1C2).

        With ``overwrite`` the result replaces ``f`` (smaller working set, same passes);
        otherwise it goes to the buffer ``name``.
        """
        xp = self.xp
        tmp = self._buffer(ws, name + "_tmp", f.shape[1:])
        if overwrite:
            tmp2 = self._buffer(ws, name + "_tmp2", f.shape[1:])
            xp.multiply(f[0], g[1], out=tmp)  # C1 Z2
            xp.multiply(f[1], g[1], out=tmp2)  # Z1 Z2
            f[0] *= g[0]
            f[0] += tmp2
            f[1] *= g[0]
            f[1] += tmp
            return f
        out = self._buffer(ws, name, f.shape)
        xp.multiply(f[0], g[0], out=out[0])
        xp.multiply(f[1], g[1], out=tmp)
        out[0] += tmp
        xp.multiply(f[0], g[1], out=out[1])
        xp.multiply(f[1], g[0], out=tmp)
        out[1] += tmp
        return out

    def analyze(self, values: Any, lmax: int, *, ws: Workspace | None = None, name: str = "coeffs") -> Any:
        """Coefficients ((lmax+1)², B) in slot order of folded values (2, n_fold, n_rings, B)."""
        nb, batch = self.n_rings, values.shape[-1]
        hat = self._buffer(ws, "scratch", (2, lmax + 1, nb, batch))
        az, mats = self._azimuth[lmax], self._beta_analysis[lmax]
        matmul_into(az["cos_analysis"], values[0].reshape(self.n_fold, nb * batch), hat[0].reshape(lmax + 1, nb * batch))
        if lmax > 0:
            matmul_into(az["sin_analysis"], values[1].reshape(self.n_fold, nb * batch), hat[1, 1:].reshape(lmax, nb * batch))
        out = self._buffer(ws, name, ((lmax + 1) ** 2, batch))
        matmul_into(mats[0], hat[0, 0], out[: lmax + 1])
        for m, start, stop in self._slots[lmax][2][1:]:
            matmul_into(mats[m], hat[:, m], out[start:stop].reshape(2, lmax - m + 1, batch))
        return out

    def flops(self, lmax: int, batch: int) -> float:
        """Multiply-adds × 2 of one synthesis or analysis (same GEMM shapes) of degree ``lmax`` over ``batch`` items."""
        beta = 2.0 * self.n_rings * (lmax + 1) ** 2
        alpha = 2.0 * self.n_rings * self.n_fold * (2 * lmax + 1)
        return batch * (beta + alpha)
