"""Separable transforms between SH coefficients and values on a ring grid, batch last.

A ring grid has ``n_rings`` rings at polar angles β_j and ``n_azimuth`` equispaced azimuths
α_k = 2πk/n_azimuth. With Y_lm(β, α) = leg_lm(β)·trig_m(α) (trig: 1, cos mα or sin mα; see
:mod:`pipeline.equivariant.spherical_harmonics`), synthesis of f = Σ c_lm Y_lm is two GEMM
stages:

1. β stage, per order m ≥ 0 (its cos and sin parts stacked):
   R_cos/sin[m, j, b] = Σ_l S_m[j, l] c[(l, ±m), b], with the (n_rings, L−m+1) matrix S_m,
   run as two stacked GEMMs over groups of orders (:func:`order_groups`);
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
rows. Coefficients ``(2, L+1, L+1, B)`` in padded slot order [cos/sin, m, l − m] (the orders
of :func:`slot_order`, each zero-padded to L+1 degrees, see :func:`padded_slots`), ring
coefficients ``(2, L+1, n_rings, B)`` (cos, sin; the sin row m = 0 is zero), folded values
``(2, n_fold, n_rings, B)``. The only transposes are at entry (:meth:`RingTransform.to_slots`)
and exit (:meth:`RingTransform.from_slots`). Temporaries come from a :class:`Workspace`
reused across the chunks of one call.

Two routes run the same stages (:func:`compiled_route`): NumPy arrays go through the
compiled kernels of :mod:`pipeline.equivariant.chunk_kernels`, which hold no GIL (the
products of :mod:`pipeline.equivariant.gaunt_products` make a whole chunk one such call, so
chunk threads run in parallel); other arrays (CuPy) go through the array-API expressions
below, which the tests also run on NumPy and compare with the compiled route.

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

from pipeline.equivariant import chunk_kernels

log = logging.getLogger(__name__)


def compiled_route(array: Any) -> bool:
    """Whether the stages on ``array`` run as the compiled kernels of
    :mod:`pipeline.equivariant.chunk_kernels` (NumPy arrays) or as array-API expressions
    (CuPy; tests also run NumPy arrays through those)."""
    return isinstance(array, np.ndarray)


def matmul_into(a: Any, b: Any, out: Any) -> None:
    """out[...] = a @ b. NumPy writes in place (BLAS takes strided and stacked ``out``);
    other backends go through a temporary."""
    if isinstance(out, np.ndarray):
        np.matmul(a, b, out=out)
    else:
        out[...] = a @ b


#: Shaped views a :class:`Workspace` caches before it starts afresh.
_MAX_VIEWS = 256


class Workspace:
    """Named scratch arrays reused across the chunks of a call.

    Fresh memory is expensive to fault in (about 0.3 ms per MiB measured on a virtualised
    CPU, comparable to the GEMMs of a chunk), so the product kernels take their temporaries
    from here; a buffer grows when a larger shape is requested. A workspace is used by one
    thread at a time; :func:`pipeline.equivariant.chunk_threads.thread_workspace` keeps a
    thread's workspace for its next call.

    Parameters
    ----------
    xp : module
    dtype : numpy dtype
    """

    def __init__(self, xp: Any, dtype: Any):
        self.xp, self.dtype = xp, np.dtype(dtype)
        self._buffers: dict[str, Any] = {}
        self._views: dict[tuple[str, tuple[int, ...]], Any] = {}

    @property
    def nbytes(self) -> int:
        """Bytes of all buffers."""
        return sum(int(buf.nbytes) for buf in self._buffers.values())

    def get(self, name: str, shape: tuple[int, ...]) -> Any:
        """A C-contiguous array of ``shape`` (contents undefined) backed by buffer ``name``."""
        view = self._views.get((name, shape))
        if view is not None:
            return view
        if len(self._views) >= _MAX_VIEWS:  # a workspace kept across calls of many batch sizes
            self._views.clear()
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


def padded_slots(lmax: int) -> tuple[np.ndarray, np.ndarray]:
    """Padded slot layout (2, L+1, L+1) [cos/sin, m, l − m] of degree-L coefficients.

    Order m takes the first L − m + 1 entries of its row (l = m..L); the rest, and the whole
    sin row of m = 0, are padding (zero in :meth:`RingTransform.to_slots`), so orders stack
    into one GEMM (see :func:`order_groups`).

    Returns
    -------
    rows : (2(L+1)²,) int64
        Flat e3nn index l² + l ± m held by each padded entry, −1 on padding.
    positions : ((L+1)²,) int64
        Padded entry of each e3nn index (``rows[positions] == arange((L+1)²)``).
    """
    n = lmax + 1
    rows = np.full((2, n, n), -1, dtype=np.int64)
    for m in range(n):
        ls = np.arange(m, n)
        rows[0, m, : n - m] = ls * ls + ls + m
        if m:
            rows[1, m, : n - m] = ls * ls + ls - m
    rows = rows.reshape(-1)
    positions = np.empty(n * n, dtype=np.int64)
    positions[rows[rows >= 0]] = np.flatnonzero(rows >= 0)
    return rows, positions


def order_groups(lmax: int) -> list[tuple[int, int, int]]:
    """Orders m stacked into one β GEMM: [(m_lo, m_hi, width)], orders m_lo ≤ m < m_hi padded
    to ``width`` = L + 1 − m_lo degrees.

    Two groups split at m = ⌊L/2⌋ + 1 pad about 1.4× the (L+1)² used entries, against
    1.9× for a single stack (L = 12), for one more GEMM call.
    """
    split = (lmax + 2) // 2
    return [(lo, hi, lmax + 1 - lo) for lo, hi in ((0, split), (split, lmax + 1)) if hi > lo]


def _stack(mats: list[np.ndarray], size: int, axis: int) -> np.ndarray:
    """Stack per-order β matrices along a new first axis, zero-padded to ``size`` along ``axis``
    (the degree axis)."""
    out = []
    for a in mats:
        pad = [(0, 0), (0, 0)]
        pad[axis] = (0, size - a.shape[axis])
        out.append(np.pad(a, pad))
    return np.stack(out)


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
        # per signal degree l: slot maps, and the β tables cut to degree l and stacked over m
        # in two groups of orders (see order_groups), so each β stage is two stacked GEMMs
        self._slots, self._beta_synthesis, self._beta_analysis, self._azimuth = {}, {}, {}, {}
        for l in range(lmax + 1):
            rows, positions = padded_slots(l)
            self._slots[l] = (rows, xp.asarray(positions), xp.asarray(np.flatnonzero(rows >= 0)), xp.asarray(rows[rows >= 0]))
            groups = order_groups(l)
            self._beta_synthesis[l] = {
                kind: [(lo, hi, w, cast(_stack([mats[m][:, : l - m + 1] for m in range(lo, hi)], w, axis=1))) for lo, hi, w in groups]
                for kind, mats in synthesis.items()
            }
            self._beta_analysis[l] = [(lo, hi, w, cast(_stack([analysis[m][: l - m + 1] for m in range(lo, hi)], w, axis=0))) for lo, hi, w in groups]
            self._azimuth[l] = {
                "cos": cast(self.azimuth["cos"][:, : l + 1]),
                "sin": cast(self.azimuth["sin"][:, 1 : l + 1]),
                "dcos": cast(self.azimuth["dcos"][:, 1 : l + 1]),
                "dsin": cast(self.azimuth["dsin"][:, : l + 1]),
                "cos_analysis": cast(self.azimuth["cos_analysis"][: l + 1]),
                "sin_analysis": cast(self.azimuth["sin_analysis"][: l + 1]),
            }
        self._compiled: dict[tuple, tuple] = {}

    def compiled_synthesis(self, lmax: int, kind: str = "value", trig: str = "value") -> tuple:
        """Tables of :func:`~pipeline.equivariant.chunk_kernels.synthesize_slots` (NumPy tables only):
        (slot rows of :func:`padded_slots`, (β matrices and first order of each order group,
        α tables of the even and odd parts, whether the even part comes from the sin terms))."""
        key = ("synthesis", lmax, kind, trig)
        if key not in self._compiled:
            (lo_a, mats_a), (lo_b, mats_b) = self._two_groups(self._beta_synthesis[lmax][kind], axis=2)
            az = self._azimuth[lmax]
            even, odd = (az["cos"], az["sin"]) if trig == "value" else (az["dcos"], az["dsin"])
            self._compiled[key] = (self._slots[lmax][0], (mats_a, lo_a, mats_b, lo_b, even, odd, trig != "value"))
        return self._compiled[key]

    def compiled_analysis(self, lmax: int) -> tuple:
        """Tables of :func:`~pipeline.equivariant.chunk_kernels.analyze_slots` (NumPy tables only):
        ((α analysis tables of cos and of sin from m = 1, β analysis matrices and first order
        of each order group), slot position of each e3nn index)."""
        key = ("analysis", lmax)
        if key not in self._compiled:
            (lo_a, mats_a), (lo_b, mats_b) = self._two_groups(self._beta_analysis[lmax], axis=1)
            az = self._azimuth[lmax]
            sin_from_1 = np.ascontiguousarray(az["sin_analysis"][1:])
            self._compiled[key] = ((az["cos_analysis"], sin_from_1, mats_a, lo_a, mats_b, lo_b), self._slots[lmax][1])
        return self._compiled[key]

    def _two_groups(self, groups: list, axis: int) -> list[tuple[int, Any]]:
        """(first order, stacked matrices) of the two order groups; an empty stack stands in for
        a missing second group (L = 0). ``axis`` is the degree axis of the stacked matrices."""
        pairs = [(lo, mats) for lo, _, _, mats in groups]
        if len(pairs) == 1:
            shape = list(pairs[0][1].shape)
            shape[0], shape[axis] = 0, 1
            pairs.append((pairs[0][0] + 1, np.zeros(shape, dtype=self.dtype)))
        return pairs

    def _buffer(self, ws: Workspace | None, name: str, shape: tuple[int, ...]) -> Any:
        if ws is None:
            return self.xp.empty(shape, dtype=self.dtype)
        return ws.get(name, shape)

    def to_slots(self, coeffs: Any, lmax: int, *, ws: Workspace | None = None, name: str = "slots") -> Any:
        """(B, (L+1)²) coefficients in e3nn order → (2, L+1, L+1, B) in padded slot order (a copy)."""
        batch = coeffs.shape[0]
        out = self._buffer(ws, name, (2, lmax + 1, lmax + 1, batch))
        rows, _, filled, sources = self._slots[lmax]
        if compiled_route(coeffs):
            chunk_kernels.gather_transpose(coeffs, rows, out.reshape(-1, batch))
        else:
            flat = out.reshape(-1, batch)
            flat[...] = 0.0
            flat[filled] = coeffs.T[sources]
        return out

    def from_slots(self, coeffs_t: Any, lmax: int, *, out: Any = None) -> Any:
        """(2, L+1, L+1, B) in padded slot order → (B, (L+1)²) in e3nn order, written to ``out`` if given."""
        batch = coeffs_t.shape[-1]
        flat, positions = coeffs_t.reshape(-1, batch), self._slots[lmax][1]
        if not compiled_route(coeffs_t):
            if out is None:
                return flat.T[:, positions]
            out[...] = flat.T[:, positions]
            return out
        if out is None:
            out = np.empty((batch, positions.shape[0]), dtype=coeffs_t.dtype)
        chunk_kernels.transpose_gather(flat, positions, out)
        return out

    def synthesize(
        self, coeffs_t: Any, lmax: int, kind: str = "value", trig: str = "value", *, ws: Workspace | None = None, name: str = "values"
    ) -> Any:
        """Folded values (2, n_fold, n_rings, B) of Σ c_lm S_lm(β)·trig_m(α) (or ∂/∂α of trig).

        Parameters
        ----------
        coeffs_t : (2, lmax+1, lmax+1, B) array in padded slot order (:meth:`to_slots`)
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
        nb, batch = self.n_rings, coeffs_t.shape[-1]
        if compiled_route(coeffs_t):
            values = self._buffer(ws, name, (2, self.n_fold, nb, batch))
            scratch = self._buffer(ws, "scratch", (2 * (lmax + 1) * nb * batch,))
            chunk_kernels.synthesize_slots(np.ascontiguousarray(coeffs_t), self.compiled_synthesis(lmax, kind, trig)[1], scratch, values)
            return values
        rings = self._buffer(ws, "scratch", (2, lmax + 1, nb, batch))
        for lo, hi, w, mats in self._beta_synthesis[lmax][kind]:
            matmul_into(mats, coeffs_t[:, lo:hi, :w], rings[:, lo:hi])
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

        With ``overwrite`` the result replaces ``f`` (smaller working set); otherwise it goes to
        the buffer ``name``. NumPy arrays take one compiled pass, other backends six.
        """
        xp = self.xp
        if compiled_route(f) and f.flags.c_contiguous and g.flags.c_contiguous:
            out = f if overwrite else self._buffer(ws, name, f.shape)
            fc, gc, oc = f.reshape(2, -1), g.reshape(2, -1), out.reshape(2, -1)
            chunk_kernels.folded_product(fc[0], fc[1], gc[0], gc[1], oc[0], oc[1])
            return out
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
        """Coefficients (2, lmax+1, lmax+1, B) in padded slot order (padding entries undefined) of
        folded values (2, n_fold, n_rings, B)."""
        nb, batch = self.n_rings, values.shape[-1]
        if compiled_route(values):
            out = self._buffer(ws, name, (2, lmax + 1, lmax + 1, batch))
            scratch = self._buffer(ws, "scratch", (2 * (lmax + 1) * nb * batch,))
            chunk_kernels.analyze_slots(np.ascontiguousarray(values), self.compiled_analysis(lmax)[0], scratch, out)
            return out
        hat = self._buffer(ws, "scratch", (2, lmax + 1, nb, batch))
        az = self._azimuth[lmax]
        matmul_into(az["cos_analysis"], values[0].reshape(self.n_fold, nb * batch), hat[0].reshape(lmax + 1, nb * batch))
        matmul_into(az["sin_analysis"], values[1].reshape(self.n_fold, nb * batch), hat[1].reshape(lmax + 1, nb * batch))
        out = self._buffer(ws, name, (2, lmax + 1, lmax + 1, batch))
        for lo, hi, w, mats in self._beta_analysis[lmax]:
            matmul_into(mats, hat[:, lo:hi], out[:, lo:hi, :w])  # the padding of the second group is left unwritten
        return out

    def flops(self, lmax: int, batch: int) -> float:
        """Multiply-adds × 2 of one synthesis or analysis (same GEMM shapes) of degree ``lmax`` over ``batch`` items."""
        beta = 4.0 * self.n_rings * sum((hi - lo) * w for lo, hi, w in order_groups(lmax))  # padding included
        alpha = 2.0 * self.n_rings * self.n_fold * (2 * lmax + 1)
        return batch * (beta + alpha)
