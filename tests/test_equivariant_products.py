"""Tensor products: explicit contractions, exactness of the grids, equivariance, parity, gradients."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from pipeline.backend import get_xp, to_host
from pipeline.equivariant.chunk_threads import chunk_starts
from pipeline.equivariant.clebsch_gordan import cg_block
from pipeline.equivariant.gaunt import gaunt_dense
from pipeline.equivariant.gaunt_products import GridGauntPlan
from pipeline.equivariant.products import METHODS, output_irreps, tensor_product, tensor_product_vjp
from pipeline.equivariant.wigner import parity_signs, random_rotations, wigner_D
from tests.conftest import requires_gpu

GAUNT_METHODS = ("gaunt_grid", "gaunt_fourier")
REPO = Path(__file__).resolve().parents[1]


def _pair(rng, lmax1, lmax2, batch=(5,), dtype=np.float64):
    return rng.normal(size=(*batch, (lmax1 + 1) ** 2)).astype(dtype), rng.normal(size=(*batch, (lmax2 + 1) ** 2)).astype(dtype)


def _cg_explicit(x, y, irreps):
    out = np.zeros((*x.shape[:-1], irreps.dim))
    for b in irreps.blocks:
        (l1, l2), = b.paths
        out[..., b.slice] = np.einsum("...i,...j,ijk->...k", x[..., l1 * l1 : (l1 + 1) ** 2], y[..., l2 * l2 : (l2 + 1) ** 2], cg_block(l1, l2, b.l))
    return out


@pytest.mark.parametrize(("lmax1", "lmax2", "lmax_out"), [(1, 1, 2), (2, 3, 5), (4, 2, 3), (8, 8, 16), (6, 3, 0)])
def test_grid_equals_fourier_equals_explicit_gaunt(rng, lmax1, lmax2, lmax_out):
    x, y = _pair(rng, lmax1, lmax2)
    ref = np.einsum("bi,bj,ijk->bk", x, y, gaunt_dense(lmax1, lmax2, lmax_out))
    for method in GAUNT_METHODS:
        out, irreps = tensor_product(x, y, method=method, lmax_out=lmax_out)
        assert out.shape == (5, (lmax_out + 1) ** 2) and irreps.dim == out.shape[-1]
        assert np.abs(out - ref).max() < 1e-12, method


def test_cg_matches_explicit_contraction_and_e3nn(rng):
    x, y = _pair(rng, 3, 2)
    out, irreps = tensor_product(x, y, method="cg")
    assert np.abs(out - _cg_explicit(x, y, irreps)).max() < 1e-13
    torch = pytest.importorskip("torch")
    o3 = pytest.importorskip("e3nn.o3")
    tp = o3.FullTensorProduct(o3.Irreps("0e+1o+2e+3o"), o3.Irreps("0e+1o+2e"))
    ref = tp(torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)).numpy()
    # e3nn sorts its output irreps; compare block by block through its instruction list
    for ins in tp.instructions:
        l1, l2 = ins.i_in1, ins.i_in2
        l3 = tp.irreps_out[ins.i_out].ir.l
        ours = next(b for b in irreps.blocks if b.paths == ((l1, l2),) and b.l == l3)
        assert np.abs(out[:, ours.slice] - ref[:, tp.irreps_out.slices()[ins.i_out]]).max() < 1e-5
    assert len(tp.instructions) == len(irreps.blocks)


def test_cross_product_conventions():
    x, y = np.array([0.0, 1.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0, 0.0])  # x̂ and ŷ as l = 1 blocks
    out, irreps = tensor_product(x, y, method="cg")
    block = next(b for b in irreps.blocks if b.label == "1e")
    np.testing.assert_allclose(out[block.slice], [0.0, 0.0, 1.0 / math.sqrt(2.0)], atol=1e-15)
    out, irreps = tensor_product(x, y, method="vector_gaunt")
    np.testing.assert_allclose(out[1:4], [0.0, 0.0, math.sqrt(3.0 / (4.0 * math.pi))], atol=1e-14)
    assert irreps.blocks[1].label == "1e"
    assert np.abs(tensor_product(x, y, method="gaunt_grid")[0][1:4]).max() < 1e-15  # 1o ⊗ 1o → 1e unreachable


def test_vector_gaunt_is_antisymmetric_and_odd(rng):
    x, y = _pair(rng, 4, 4)
    a = tensor_product(x, y, method="vector_gaunt")[0]
    b = tensor_product(y, x, method="vector_gaunt")[0]
    assert np.abs(a + b).max() < 1e-12
    assert np.abs(a[:, 0]).max() < 1e-12  # no l3 = 0 output
    irreps = output_irreps("vector_gaunt", 4, 4)
    assert all((l1 + l2 + b.l) % 2 == 1 and min(l1, l2, b.l) > 0 for b in irreps.blocks for l1, l2 in b.paths)


def test_minimal_grid_is_exact_and_one_less_is_not(rng):
    lmax1, lmax2, lmax_out = 4, 3, 7
    x, y = _pair(rng, lmax1, lmax2)
    ref = np.einsum("bi,bj,ijk->bk", x, y, gaunt_dense(lmax1, lmax2, lmax_out))
    plan = GridGauntPlan(lmax1, lmax2, lmax_out, xp=np, dtype=np.float64)
    assert (plan.n_rings, plan.n_azimuth) == (14 // 2 + 1, 15)
    assert np.abs(plan.forward(x, y) - ref).max() < 1e-12
    for rings, azimuth in [(plan.n_rings - 1, plan.n_azimuth), (plan.n_rings, plan.n_azimuth - 1)]:
        small = GridGauntPlan(lmax1, lmax2, lmax_out, xp=np, dtype=np.float64, n_rings=rings, n_azimuth=azimuth)
        err = np.abs(small.forward(x, y) - ref).max() / np.abs(ref).max()
        assert err > 1e-3, (rings, azimuth, err)


def _block_matrix(irreps, d, lmax):
    """Wigner matrix of the output: D^l of each block."""
    out = np.zeros((irreps.dim, irreps.dim))
    for b in irreps.blocks:
        out[b.slice, b.slice] = d[b.l * b.l : (b.l + 1) ** 2, b.l * b.l : (b.l + 1) ** 2]
    return out


@pytest.mark.parametrize("method", METHODS)
def test_equivariance_under_rotations(rng, method):
    lmax = 3
    x, y = _pair(rng, lmax, lmax, batch=(4,))
    out, irreps = tensor_product(x, y, method=method)
    for r in random_rotations(2, rng=rng):
        d = wigner_D(2 * lmax, r)
        dx = d[: (lmax + 1) ** 2, : (lmax + 1) ** 2]
        rotated, _ = tensor_product(x @ dx.T, y @ dx.T, method=method)
        assert np.abs(rotated - out @ _block_matrix(irreps, d, 2 * lmax).T).max() < 1e-11


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("parity", [(1, 1), (1, -1), (-1, -1)])
def test_parity(rng, method, parity):
    lmax = 3
    x, y = _pair(rng, lmax, lmax, batch=(3,))
    out, irreps = tensor_product(x, y, method=method, parity=parity)
    inv, _ = tensor_product(x * parity_signs(lmax, parity[0]), y * parity_signs(lmax, parity[1]), method=method, parity=parity)
    signs = np.concatenate([np.full(2 * b.l + 1, float(b.parity)) for b in irreps.blocks])
    assert np.abs(inv - out * signs).max() < 1e-12
    nonzero = [b for b in irreps.blocks if np.abs(out[:, b.slice]).max() > 1e-12]
    assert nonzero  # the check is not vacuous


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gradients_match_finite_differences(rng, method, dtype):
    lmax1, lmax2, lmax_out = 2, 3, 4
    x, y = _pair(rng, lmax1, lmax2, batch=(3,))
    out, irreps = tensor_product(x, y, method=method, lmax_out=lmax_out)
    g = rng.normal(size=out.shape)
    gx, gy = tensor_product_vjp(x.astype(dtype), y.astype(dtype), g.astype(dtype), method=method, lmax_out=lmax_out)
    assert gx.dtype == dtype and gx.shape == x.shape and gy.shape == y.shape
    h = 1e-6
    for arr, grad, which in ((x, gx, 0), (y, gy, 1)):
        fd = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            plus, minus = arr.copy(), arr.copy()
            plus[idx] += h
            minus[idx] -= h
            args_p = (plus, y) if which == 0 else (x, plus)
            args_m = (minus, y) if which == 0 else (x, minus)
            fd[idx] = np.sum(g * (tensor_product(*args_p, method=method, lmax_out=lmax_out)[0] - tensor_product(*args_m, method=method, lmax_out=lmax_out)[0])) / (2 * h)
        tol = 1e-7 if dtype == np.float64 else 1e-4 * max(1.0, np.abs(fd).max())
        assert np.abs(grad - fd).max() < tol, (which, np.abs(grad - fd).max())


@pytest.mark.parametrize("method", METHODS)
def test_broadcasting_chunking_and_float32(rng, method):
    x = rng.normal(size=(4, 1, 9))
    y = rng.normal(size=(3, 16))
    out, _ = tensor_product(x, y, method=method, lmax_out=3)
    chunked, _ = tensor_product(x, y, method=method, lmax_out=3, chunk_size=5)
    assert out.shape[:2] == (4, 3)
    assert np.abs(out - chunked).max() < 1e-13
    ref = tensor_product(np.broadcast_to(x, (4, 3, 9)).copy(), np.broadcast_to(y, (4, 3, 16)).copy(), method=method, lmax_out=3)[0]
    assert np.abs(out - ref).max() < 1e-13
    single, _ = tensor_product(x.astype(np.float32), y.astype(np.float32), method=method, lmax_out=3)
    assert single.dtype == np.float32 and np.abs(single - out).max() < 1e-4 * np.abs(out).max()
    g = rng.normal(size=out.shape)
    gx, gy = tensor_product_vjp(x, y, g, method=method, lmax_out=3)
    gx_full, gy_full = tensor_product_vjp(np.broadcast_to(x, (4, 3, 9)).copy(), np.broadcast_to(y, (4, 3, 16)).copy(), g, method=method, lmax_out=3)
    assert np.abs(gx - gx_full.sum(axis=1, keepdims=True)).max() < 1e-12
    assert np.abs(gy - gy_full.sum(axis=0)).max() < 1e-12


@pytest.mark.parametrize("method", METHODS)
def test_out_receives_the_product_cast_chunk_by_chunk(rng, method):
    x = rng.normal(size=(50, 3, 9))
    y = rng.normal(size=(50, 1, 9))
    full, irreps = tensor_product(x, y, method=method, lmax_out=2, chunk_size=7)
    same = np.empty_like(full)
    assert tensor_product(x, y, method=method, lmax_out=2, chunk_size=7, out=same)[0] is same
    np.testing.assert_array_equal(same, full)  # bit for bit: the same chunks, copied
    stored = np.empty(full.shape, dtype=np.float32)
    tensor_product(x, y, method=method, lmax_out=2, chunk_size=7, out=stored)
    np.testing.assert_array_equal(stored, full.astype(np.float32))  # each value rounded once
    wide = np.full((50, 3, irreps.dim + 4), np.nan, dtype=np.float32)  # a last-axis slice of a wider array
    tensor_product(x, y, method=method, lmax_out=2, out=wide[..., 2 : 2 + irreps.dim])
    np.testing.assert_array_equal(wide[..., 2 : 2 + irreps.dim], full.astype(np.float32))
    assert np.isnan(wide[..., :2]).all() and np.isnan(wide[..., 2 + irreps.dim :]).all()
    with pytest.raises(ValueError, match="out must have shape"):
        tensor_product(x, y, method=method, lmax_out=2, out=np.empty((50, 3, irreps.dim + 1)))
    with pytest.raises(ValueError, match="without a copy"):
        tensor_product(x, y, method=method, lmax_out=2, out=np.empty((3, 50, irreps.dim)).transpose(1, 0, 2))


@pytest.mark.parametrize("method", METHODS)
def test_threads_give_identical_results(rng, method):
    # chunks write disjoint rows with the same arithmetic as a serial run: equal bit for bit
    x, y = _pair(rng, 3, 2, batch=(101,), dtype=np.float32)
    serial, _ = tensor_product(x, y, method=method, chunk_size=7, threads=1)
    threaded, _ = tensor_product(x, y, method=method, chunk_size=7, threads=3)
    assert np.array_equal(serial, threaded)
    g = rng.normal(size=serial.shape).astype(np.float32)
    for a, b in zip(tensor_product_vjp(x, y, g, method=method, chunk_size=7, threads=1),
                    tensor_product_vjp(x, y, g, method=method, chunk_size=7, threads=3)):
        assert np.array_equal(a, b)


RING_METHODS = ("gaunt_grid", "gaunt_fourier", "vector_gaunt")


@pytest.mark.parametrize("method", RING_METHODS)
@pytest.mark.parametrize(("lmax1", "lmax2", "lmax_out"), [(0, 0, 0), (1, 1, 2), (3, 0, 3), (4, 2, 3), (6, 3, 0), (5, 5, 10)])
@pytest.mark.parametrize(("dtype", "tol"), [(np.float64, 1e-15), (np.float32, 2e-7)])  # measured: 1.4e-16 and 0
def test_compiled_route_equals_array_api_route(rng, monkeypatch, method, lmax1, lmax2, lmax_out, dtype, tol):
    # the one-call compiled chunks (NumPy) against the array-API expressions the CuPy route runs
    x, y = _pair(rng, lmax1, lmax2, batch=(37,), dtype=dtype)
    out, irreps = tensor_product(x, y, method=method, lmax_out=lmax_out, chunk_size=16)
    g = rng.normal(size=out.shape).astype(dtype)
    grads = tensor_product_vjp(x, y, g, method=method, lmax_out=lmax_out, chunk_size=16)
    from pipeline.equivariant import gaunt_products, ring_transform

    for module in (gaunt_products, ring_transform):
        monkeypatch.setattr(module, "compiled_route", lambda array: False)
    ref, _ = tensor_product(x, y, method=method, lmax_out=lmax_out, chunk_size=16)
    ref_grads = tensor_product_vjp(x, y, g, method=method, lmax_out=lmax_out, chunk_size=16)
    # relative to the largest value, at least 1 (inputs are O(1); a vector Gaunt product with a
    # degree-0 signal is zero up to rounding)
    for a, b in ((out, ref), *zip(grads, ref_grads)):
        assert np.abs(a - b).max() < tol * max(np.abs(b).max(), 1.0)
    monkeypatch.undo()
    # inputs and outputs of any layout: a Fortran-ordered x, a strided out
    plan = gaunt_products.GridGauntPlan(lmax1, lmax2, lmax_out, xp=np, dtype=dtype) if method == "gaunt_grid" else None
    if plan is not None:
        wide = np.zeros((37, irreps.dim + 3), dtype=dtype)
        assert plan.forward(np.asfortranarray(x), y, out=wide[:, 1 : 1 + irreps.dim]) is not None
        np.testing.assert_array_equal(wide[:, 1 : 1 + irreps.dim], plan.forward(x, y))
        assert not wide[:, 0].any() and not wide[:, 1 + irreps.dim :].any()


def test_every_blas_is_limited_to_one_thread_inside_chunks():
    # numba's np.dot calls the BLAS that SciPy ships, NumPy's matmul its own: the chunk threads
    # must limit both, so the threadpoolctl controller has to see SciPy's BLAS (loaded at import)
    script = """
import json, numpy as np
from threadpoolctl import threadpool_info
from pipeline.equivariant import chunk_threads, products
seen = []
original = chunk_threads.Workspace
class Spy(original):
    def get(self, name, shape):
        seen.append([(i["filepath"], i["num_threads"]) for i in threadpool_info() if i["user_api"] == "blas"])
        return super().get(name, shape)
chunk_threads.Workspace = Spy
x = np.random.default_rng(0).normal(size=(64, 16))
products.tensor_product(x, x, method="gaunt_grid", chunk_size=8, threads=2)
print(json.dumps(seen))
"""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "2"}
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=REPO, check=True)
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    libraries = {path for snapshot in seen for path, _ in snapshot}
    assert len(libraries) >= 2  # NumPy's and SciPy's OpenBLAS
    assert seen and all(threads == 1 for snapshot in seen for _, threads in snapshot)


def test_a_slow_thread_does_not_hold_up_the_others():
    # chunk 0 blocks until every other chunk is done: only if the free thread takes all the
    # remaining chunks (not a fixed share) does the call finish without the timeout
    from pipeline.equivariant.chunk_threads import run_chunks

    done, others_finished, lock = [], threading.Event(), threading.Lock()

    def body(rows: slice, ws) -> None:
        if rows.start == 0:
            assert others_finished.wait(timeout=60), "the other chunks were left to the blocked thread"
        with lock:
            done.append(rows.start)
            if len(done) == 7:
                others_finished.set()

    run_chunks(80, 10, body, xp=np, dtype=np.float64, threads=2)
    assert sorted(done) == list(range(0, 80, 10)) and done[-1] == 0


def test_a_thread_keeps_its_workspace_between_calls_but_not_inside_a_nested_one():
    from pipeline.equivariant.chunk_threads import KEPT_WORKSPACE_BYTES, run_chunks

    seen = []

    def body(rows: slice, ws) -> None:
        seen.append(ws)
        ws.get("a", (rows.stop - rows.start, 4))

    for dtype in (np.float64, np.float64, np.float32):
        run_chunks(8, 8, body, xp=np, dtype=dtype, threads=1)
    assert seen[0] is seen[1] and seen[2] is not seen[1]  # one per dtype

    inner = []

    def outer(rows: slice, ws) -> None:
        run_chunks(4, 4, lambda r, w: inner.append(w), xp=np, dtype=np.float64, threads=1)
        assert inner[-1] is not ws  # the nested call must not share the outer call's buffers

    run_chunks(8, 8, outer, xp=np, dtype=np.float64, threads=1)

    def big(rows: slice, ws) -> None:
        seen.append(ws)
        ws.get("big", (KEPT_WORKSPACE_BYTES // 8 + 1,))

    run_chunks(1, 1, big, xp=np, dtype=np.float64, threads=1)
    run_chunks(1, 1, big, xp=np, dtype=np.float64, threads=1)
    assert seen[-1] is not seen[-2]  # a workspace over the limit is freed, not kept


@pytest.mark.parametrize("method", METHODS)
def test_reused_workspaces_give_the_same_products(rng, method):
    # the second call of a thread finds buffers left dirty by a call on other data and sizes
    x, y = _pair(rng, 3, 2, batch=(50,))
    first = tensor_product(x, y, method=method, chunk_size=16, threads=2)[0]
    g = rng.normal(size=first.shape)
    first_grads = tensor_product_vjp(x, y, g, method=method, chunk_size=16, threads=2)
    a, b = _pair(rng, 3, 2, batch=(300,))
    tensor_product(a, b, method=method, chunk_size=64, threads=2)
    tensor_product_vjp(a, b, rng.normal(size=(300, first.shape[1])), method=method, chunk_size=64, threads=2)
    np.testing.assert_array_equal(tensor_product(x, y, method=method, chunk_size=16, threads=2)[0], first)
    for got, want in zip(tensor_product_vjp(x, y, g, method=method, chunk_size=16, threads=2), first_grads):
        np.testing.assert_array_equal(got, want)


def test_chunk_starts_give_every_thread_work():
    assert chunk_starts(10, 4, 1) == [0, 4, 8]
    assert chunk_starts(10, 4, 5) == [0, 2, 4, 6, 8]
    assert chunk_starts(0, 4, 2) == []
    # aligned chunks: sub-batches of 16 rows fall on the same rows for 1 and 2 threads
    assert chunk_starts(531, 256, 1, align=16) == [0, 192, 384]
    assert chunk_starts(531, 256, 2, align=16) == [0, 144, 288, 432]


def test_bad_input(rng):
    x, y = _pair(rng, 2, 2)
    with pytest.raises(ValueError, match=r"x last axis must have size \(L\+1\)\*\*2"):
        tensor_product(x[:, :8], y)
    with pytest.raises(TypeError, match="same dtype"):
        tensor_product(x.astype(np.float32), y)
    with pytest.raises(TypeError, match="float32 or float64"):
        tensor_product(x.astype(np.int64), y.astype(np.int64))
    with pytest.raises(ValueError, match=r"lmax_out must be an integer in \[0, L1\+L2\] = \[0, 4\], got 5"):
        tensor_product(x, y, method="gaunt_grid", lmax_out=5)
    with pytest.raises(ValueError, match="method must be one of"):
        tensor_product(x, y, method="sparse")
    with pytest.raises(ValueError, match="parity"):
        tensor_product(x, y, parity=(1, 0))
    with pytest.raises(ValueError, match="do not broadcast"):
        tensor_product(x, y[:3])
    with pytest.raises(ValueError, match="grad_out must have shape"):
        tensor_product_vjp(x, y, np.zeros((5, 3)), method="gaunt_grid")
    with pytest.raises(ValueError, match="threads must be >= 1, got 0"):
        tensor_product(x, y, chunk_size=2, threads=0)


@requires_gpu
@pytest.mark.parametrize("method", METHODS)
def test_cupy_equals_numpy(rng, method):
    cp = get_xp("cupy")
    x, y = _pair(rng, 4, 4, batch=(6,))
    out, _ = tensor_product(x, y, method=method)
    out_gpu, _ = tensor_product(cp.asarray(x), cp.asarray(y), method=method)
    assert np.abs(to_host(out_gpu) - out).max() < 1e-12
    g = rng.normal(size=out.shape)
    gx, gy = tensor_product_vjp(x, y, g, method=method)
    gx_gpu, gy_gpu = tensor_product_vjp(cp.asarray(x), cp.asarray(y), cp.asarray(g), method=method)
    assert np.abs(to_host(gx_gpu) - gx).max() < 1e-12 and np.abs(to_host(gy_gpu) - gy).max() < 1e-12
    with pytest.raises(TypeError, match="mixed"):
        tensor_product(cp.asarray(x), y, method=method)
