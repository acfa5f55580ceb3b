"""Tensor products against e3nn ``o3.FullTensorProduct`` (CPU torch) in the same process.

Inputs: one copy of each l ≤ L for both operands (irreps 0e + 1o + 2e + …), batch B, single
channel, float32, output degree 2L. Paths computed:

* e3nn FullTensorProduct and our ``cg``: every admissible path (L(L+1)(2L+1)/3 + (L+1)²);
* ``gaunt_grid`` and ``gaunt_fourier``: the even paths only, summed per l3 with Gaunt weights;
* ``vector_gaunt``: the odd paths only.

Forward = one product; backward = gradients with respect to both inputs given an upstream
gradient (our hand-written adjoints; e3nn via torch.autograd.grad on a retained graph, the
forward excluded from the timing). Each measurement: one warm-up call, then the median of
``--repeats`` calls. BLAS/FFT/torch threads are limited to ``--threads`` (default 1).

Usage: python benchmarks/bench_tensor_products.py results/bench_tensor_products.json
           [--lmax 1 2 ... 10] [--batch 10000] [--repeats 3] [--threads 1] [--no-e3nn]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", help="JSON file for the results")
    parser.add_argument("--lmax", type=int, nargs="+", default=list(range(1, 11)))
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-e3nn", action="store_true", help="skip the peer")
    parser.add_argument("--max-e3nn-lmax", type=int, default=10, help="largest L run with e3nn")
    return parser.parse_args()


ARGS = _parse()
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402

from pipeline.equivariant.expressivity import cg_path_count, even_path_count  # noqa: E402
from pipeline.equivariant.products import tensor_product, tensor_product_vjp  # noqa: E402

METHODS = ("cg", "gaunt_grid", "gaunt_fourier", "vector_gaunt")


def timed(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def expressivity_of(name: str, lmax: int) -> int:
    if name in ("cg", "e3nn"):
        return cg_path_count(lmax)
    if name == "vector_gaunt":
        return 4 * lmax - 3
    return 4 * lmax + 1


def run_e3nn(lmax: int, x: np.ndarray, y: np.ndarray, g: np.ndarray, repeats: int) -> tuple[float, float, float]:
    import torch
    from e3nn import o3

    torch.set_num_threads(ARGS.threads)
    irreps = o3.Irreps("+".join(f"1x{l}{'e' if l % 2 == 0 else 'o'}" for l in range(lmax + 1)))
    start = time.perf_counter()
    tp = o3.FullTensorProduct(irreps, irreps)
    build = time.perf_counter() - start
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.tensor(y, requires_grad=True)
    with torch.no_grad():
        fwd = timed(lambda: tp(tx, ty), repeats)
    out = tp(tx, ty)
    tg = torch.tensor(g[:, : out.shape[1]]) if g.shape[1] >= out.shape[1] else torch.randn_like(out)
    bwd = timed(lambda: torch.autograd.grad(out, (tx, ty), tg, retain_graph=True), repeats)
    return fwd, bwd, build


def main() -> int:
    rng = np.random.default_rng(0)
    rows = []
    for lmax in ARGS.lmax:
        n = (lmax + 1) ** 2
        x = rng.normal(size=(ARGS.batch, n)).astype(np.float32)
        y = rng.normal(size=(ARGS.batch, n)).astype(np.float32)
        row = {"lmax": lmax, "batch": ARGS.batch}
        for method in METHODS:
            out, _ = tensor_product(x, y, method=method)
            g = rng.normal(size=out.shape).astype(np.float32)
            row[f"{method}_forward_s"] = timed(lambda: tensor_product(x, y, method=method), ARGS.repeats)
            row[f"{method}_backward_s"] = timed(lambda: tensor_product_vjp(x, y, g, method=method), ARGS.repeats)
            del out, g
        if not ARGS.no_e3nn and lmax <= ARGS.max_e3nn_lmax:
            g = rng.normal(size=(ARGS.batch, (lmax + 1) ** 4)).astype(np.float32)
            row["e3nn_forward_s"], row["e3nn_backward_s"], row["e3nn_build_s"] = run_e3nn(lmax, x, y, g, ARGS.repeats)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)

    names = list(METHODS) + ([] if ARGS.no_e3nn else ["e3nn"])
    header = f"{'L':>3} {'pass':>8} " + " ".join(f"{m:>13}" for m in names) + f" {'e3nn/grid':>10} {'e3nn/cg':>8} {'cg/grid':>8} {'four/grid':>9}"
    print(f"float32, batch {ARGS.batch}, one channel, median of {ARGS.repeats} (seconds); threads={ARGS.threads}")
    print(header)
    for row in rows:
        for p in ("forward", "backward"):
            t = {m: row.get(f"{m}_{p}_s", math.nan) for m in names}
            ratios = (t.get("e3nn", math.nan) / t["gaunt_grid"], t.get("e3nn", math.nan) / t["cg"], t["cg"] / t["gaunt_grid"], t["gaunt_fourier"] / t["gaunt_grid"])
            print(f"{row['lmax']:>3} {p:>8} " + " ".join(f"{t[m]:>13.3e}" for m in names) + " " + " ".join(f"{r:>9.2f}" for r in ratios))
    summary = {"scaling_exponent": {}, "seconds_per_expressivity_L_max": {}}
    lmaxs = np.array([r["lmax"] for r in rows], dtype=float)
    fit = lmaxs >= 3
    for m in names:
        for p in ("forward", "backward"):
            t = np.array([r.get(f"{m}_{p}_s", math.nan) for r in rows])
            ok = fit & np.isfinite(t)
            if ok.sum() >= 2:
                summary["scaling_exponent"][f"{m}_{p}"] = float(np.polyfit(np.log(lmaxs[ok]), np.log(t[ok]), 1)[0])
            last = rows[-1]
            summary["seconds_per_expressivity_L_max"][f"{m}_{p}"] = last.get(f"{m}_{p}_s", math.nan) / expressivity_of(m, last["lmax"])
    print("scaling exponents (fit of log t vs log L for L >= 3):")
    for k, v in summary["scaling_exponent"].items():
        print(f"  {k:>24}: {v:5.2f}")
    print(f"seconds per unit of expressivity at L = {rows[-1]['lmax']} (cg/e3nn {cg_path_count(rows[-1]['lmax'])}, gaunt 4L+1, vector 4L-3; even paths {even_path_count(rows[-1]['lmax'])}):")
    for k, v in summary["seconds_per_expressivity_L_max"].items():
        print(f"  {k:>24}: {v:.3e}")
    with open(ARGS.output, "w") as fh:
        json.dump({"rows": rows, "summary": summary, "threads": ARGS.threads, "dtype": "float32"}, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
