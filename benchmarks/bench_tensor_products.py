"""Tensor products against e3nn ``o3.FullTensorProduct`` (CPU torch) in the same process.

Inputs: one copy of each l ≤ L for both operands (irreps 0e + 1o + 2e + …), batch B, single
channel, float32, the same arrays for every method, output degree 2L for every method.
Paths computed:

* e3nn FullTensorProduct and our ``cg``: every admissible path (L(L+1)(2L+1)/3 + (L+1)²);
* ``gaunt_grid`` and ``gaunt_fourier``: the even paths only, summed per l3 with Gaunt weights;
* ``vector_gaunt``: the odd paths only.

``cg+out`` is ``cg`` with its forward written into one output array made before the rounds
(``out=``, as a training loop reusing its buffers would); its backward is ``cg``'s. cg's output
is (L+1)⁴ values per item (96 MB at L = 6, batch 10⁴), so a fresh array costs first-touch page
faults on every call; the pair of rows separates that cost from the product's. Minor page
faults per call (median) are reported for every (method, pass).

Forward = one product; backward = gradients with respect to both inputs given an upstream
gradient (our hand-written adjoints; e3nn via torch.autograd.grad on a retained graph, the
forward excluded from the timing). Measurement: one warm-up call of everything, then
``--repeats`` rounds; in each round every (method, pass) is called once, the peer interleaved
with ours and the order rotated between rounds, so load changes on a shared machine hit all
methods alike. Each timed call comes right after an untimed call of the same (method, pass,
thread count), as in a loop that calls one product over and over (``--cold-calls``: without
it). On a virtual machine a core that has idled for a few ms can take ms to wake: here a
2-thread gaunt_grid call at L = 6 took 3.5 ms after another 2-thread call, 4.6 ms after a
1-thread call and 7-8 ms after a 15 ms sleep (its helper thread joined late). Reported: medians over the rounds. BLAS (threadpoolctl), torch intra-op and
FFT threads are all limited to the largest of ``--threads`` (default 1); with several thread
counts (``--threads 1 2``) every method runs at each count in the same interleaved rounds
(ours through ``threads=``, e3nn through ``torch.set_num_threads``), and the table gains the
speed-up of each count over the first. The load average of the machine is printed at the
start and the end.

Derived numbers: speed-up ratios per L (from wall time, and again from process CPU time,
which other load on a shared machine disturbs less), the scaling exponent p of t ∝ L^p
fitted over ``--fit-min`` ≤ L (default 4, where fixed per-call overheads no longer dominate
at batch 10⁴) beside the exponent of our kernels' FLOP count, and seconds per unit of
expressivity (CG/e3nn: L(L+1)(2L+1)/3 + (L+1)²; Gaunt
single channel: 4L + 1; vector Gaunt: 4L − 3; see :mod:`pipeline.equivariant.expressivity`).

Usage: python benchmarks/bench_tensor_products.py results/bench_tensor_products.json
           [--lmax 1 2 ... 10] [--batch 10000] [--repeats 5] [--threads 1 [2 ...]] [--no-e3nn]
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
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds per L (median reported)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1], help="thread counts, each measured in the same rounds")
    parser.add_argument("--fit-min", type=int, default=4, help="smallest L in the scaling-exponent fit")
    parser.add_argument("--methods", nargs="+", default=["cg", "cg+out", "gaunt_grid", "gaunt_fourier", "vector_gaunt"])
    parser.add_argument("--no-e3nn", action="store_true", help="skip the peer")
    parser.add_argument("--max-e3nn-lmax", type=int, default=10, help="largest L run with e3nn")
    parser.add_argument("--cold-calls", action="store_true",
                        help="time every call without the untimed call of the same kind just before it")
    return parser.parse_args()


ARGS = _parse()
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(max(ARGS.threads))

import numpy as np  # noqa: E402
import resource  # noqa: E402
from threadpoolctl import threadpool_info, threadpool_limits  # noqa: E402

from pipeline.equivariant.expressivity import cg_path_count, even_path_count  # noqa: E402
from pipeline.equivariant.products import flop_estimate, tensor_product, tensor_product_vjp  # noqa: E402

PASSES = ("forward", "backward")
SHORT = {"cg": "cg", "cg+out": "cg+out", "gaunt_grid": "grid", "gaunt_fourier": "fourier", "vector_gaunt": "vector", "e3nn": "e3nn"}


def base_method(name: str) -> str:
    """The product a benchmark name runs (``cg+out`` runs ``cg``)."""
    return name.removesuffix("+out")


def expressivity_of(name: str, lmax: int) -> int:
    if base_method(name) in ("cg", "e3nn"):
        return cg_path_count(lmax)
    if name == "vector_gaunt":
        return 4 * lmax - 3
    return 4 * lmax + 1


def e3nn_calls(lmax: int, x: np.ndarray, y: np.ndarray, rng: np.random.Generator, threads: int) -> tuple[dict, float]:
    """Forward and backward closures of e3nn FullTensorProduct, and its build time.

    The closures run on (x, y) with ``threads`` torch threads.
    """
    import torch
    from e3nn import o3

    irreps = o3.Irreps("+".join(f"1x{l}{'e' if l % 2 == 0 else 'o'}" for l in range(lmax + 1)))
    start = time.perf_counter()
    tp = o3.FullTensorProduct(irreps, irreps)
    build = time.perf_counter() - start
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.tensor(y, requires_grad=True)
    out = tp(tx, ty)
    tg = torch.tensor(rng.normal(size=tuple(out.shape)).astype(np.float32))

    def forward() -> None:
        torch.set_num_threads(threads)
        with torch.no_grad():
            tp(tx, ty)

    def backward() -> None:
        torch.set_num_threads(threads)
        torch.autograd.grad(out, (tx, ty), tg, retain_graph=True)

    return {"forward": forward, "backward": backward}, build


def our_calls(name: str, x: np.ndarray, y: np.ndarray, rng: np.random.Generator, threads: int) -> dict:
    """Forward and backward closures of one of our products.

    A ``+out`` name writes its forward into one output array made (and touched) here.
    """
    method = base_method(name)
    out, _ = tensor_product(x, y, method=method, threads=threads)
    g = rng.normal(size=out.shape).astype(np.float32)
    kwargs = {"out": out} if name.endswith("+out") else {}
    return {
        "forward": lambda: tensor_product(x, y, method=method, threads=threads, **kwargs),
        "backward": lambda: tensor_product_vjp(x, y, g, method=method, threads=threads),
    }


def key_of(method: str, threads: int) -> str:
    """Name of a (method, thread count) in the rows: the method alone when one count is measured."""
    return method if len(ARGS.threads) == 1 else f"{method}@{threads}"


def measure(calls: dict[str, dict], repeats: int) -> tuple[dict[str, list[float]], dict[str, list[float]], dict[str, list[int]]]:
    """Interleaved timing: warm-up, then ``repeats`` rounds over every (name, pass), rotated.

    Returns wall-clock and process CPU times per call (with one thread they agree unless
    the process was descheduled by other load) and the process's minor page faults per call.
    """
    keys = [(name, p) for name in calls for p in PASSES]
    for name, p in keys:
        calls[name][p]()
    wall = {f"{name}_{p}": [] for name, p in keys}
    cpu = {f"{name}_{p}": [] for name, p in keys}
    faults = {f"{name}_{p}": [] for name, p in keys}
    for r in range(repeats):
        shift = r % len(keys)
        for name, p in keys[shift:] + keys[:shift]:
            if not ARGS.cold_calls:
                calls[name][p]()
            start_faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            start, start_cpu = time.perf_counter(), time.process_time()
            calls[name][p]()
            wall[f"{name}_{p}"].append(time.perf_counter() - start)
            cpu[f"{name}_{p}"].append(time.process_time() - start_cpu)
            faults[f"{name}_{p}"].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start_faults)
    return wall, cpu, faults


def fit_exponent(lmaxs: np.ndarray, t: np.ndarray, fit_min: int) -> float:
    ok = (lmaxs >= fit_min) & np.isfinite(t)
    if ok.sum() < 2:
        return math.nan
    return float(np.polyfit(np.log(lmaxs[ok]), np.log(t[ok]), 1)[0])


def main() -> int:
    rng = np.random.default_rng(0)
    use_e3nn = not ARGS.no_e3nn
    counts = list(ARGS.threads)
    if use_e3nn:
        import torch

        torch.set_num_threads(max(counts))
    load_start = os.getloadavg()
    rows = []
    with threadpool_limits(limits=max(counts)):
        pools = [(p.get("internal_api"), p.get("num_threads")) for p in threadpool_info()]
        for lmax in ARGS.lmax:
            n = (lmax + 1) ** 2
            x = rng.normal(size=(ARGS.batch, n)).astype(np.float32)
            y = rng.normal(size=(ARGS.batch, n)).astype(np.float32)
            row = {"lmax": lmax, "batch": ARGS.batch, "load_before": os.getloadavg()[0]}
            calls = {key_of(m, t): our_calls(m, x, y, rng, t) for t in counts for m in ARGS.methods}
            if use_e3nn and lmax <= ARGS.max_e3nn_lmax:
                for t in counts:
                    calls[key_of("e3nn", t)], row["e3nn_build_s"] = e3nn_calls(lmax, x, y, rng, t)
            wall, cpu, faults = measure(calls, ARGS.repeats)
            for key, t in wall.items():
                row[f"{key}_s"] = float(np.median(t))
                row[f"{key}_cpu_s"] = float(np.median(cpu[key]))
                row[f"{key}_minflt"] = float(np.median(faults[key]))
                row[f"{key}_all_s"] = [float(v) for v in t]
            row["load_after"] = os.getloadavg()[0]
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if not k.endswith(("_all_s", "_cpu_s", "_minflt"))}), file=sys.stderr, flush=True)
    load_end = os.getloadavg()

    methods = list(ARGS.methods) + (["e3nn"] if use_e3nn else [])
    pairs = [("e3nn", "gaunt_grid"), ("e3nn", "cg"), ("cg", "gaunt_grid"), ("gaunt_fourier", "gaunt_grid")]
    pairs = [(a, b) for a, b in pairs if a in methods and b in methods]
    lines = [
        f"float32, batch {ARGS.batch}, one channel, output degree 2L, median of {ARGS.repeats} interleaved rounds (seconds), "
        f"{'each call timed cold' if ARGS.cold_calls else 'each timed call right after an untimed one of the same kind'}; "
        f"thread counts {counts} measured in the same rounds (BLAS limit {', '.join(f'{a}={b}' for a, b in pools)}; "
        "ours: threads= with one BLAS thread per chunk; torch: set_num_threads)",
        f"load average (1, 5, 15 min) at start {tuple(round(v, 2) for v in load_start)}, at end {tuple(round(v, 2) for v in load_end)}; "
        f"{os.cpu_count()} CPUs",
    ]
    for clock, suffix in (("wall", "_s"), ("process CPU time (robust to other load on the machine)", "_cpu_s")):
        for t_count in counts:
            lines.append(f"threads={t_count}, {clock}:")
            lines.append(f"{'L':>3} {'pass':>8} " + " ".join(f"{m:>13}" for m in methods) + " "
                         + " ".join(f"{SHORT[a] + '/' + SHORT[b]:>12}" for a, b in pairs))
            for row in rows:
                for p in PASSES:
                    t = {m: row.get(f"{key_of(m, t_count)}_{p}{suffix}", math.nan) for m in methods}
                    ratios = [t[a] / t[b] for a, b in pairs]
                    lines.append(f"{row['lmax']:>3} {p:>8} " + " ".join(f"{t[m]:>13.3e}" for m in methods) + " "
                                 + " ".join(f"{r:>12.2f}" for r in ratios))
        if suffix == "_cpu_s":
            break
        for t_count in counts[1:]:
            lines.append(f"speed-up of {t_count} threads over {counts[0]} (wall, same rounds):")
            lines.append(f"{'L':>3} {'pass':>8} " + " ".join(f"{m:>13}" for m in methods))
            for row in rows:
                for p in PASSES:
                    sp = [row.get(f"{key_of(m, counts[0])}_{p}_s", math.nan) / row.get(f"{key_of(m, t_count)}_{p}_s", math.nan)
                          for m in methods]
                    lines.append(f"{row['lmax']:>3} {p:>8} " + " ".join(f"{v:>13.2f}" for v in sp))
        lines.append(f"minor page faults per call (median), threads={counts[-1]}:")
        lines.append(f"{'L':>3} {'pass':>8} " + " ".join(f"{m:>13}" for m in methods))
        for row in rows:
            for p in PASSES:
                lines.append(f"{row['lmax']:>3} {p:>8} "
                             + " ".join(f"{row.get(f'{key_of(m, counts[-1])}_{p}_minflt', math.nan):>13.0f}" for m in methods))
    lmaxs = np.array([r["lmax"] for r in rows], dtype=float)
    names = [key_of(m, t) for t in counts for m in methods]
    summary = {"scaling_exponent": {}, "seconds_per_expressivity": {}, "fit_min_lmax": ARGS.fit_min}
    lines.append(
        f"scaling exponent p of t ∝ L^p (least squares in log-log over {ARGS.fit_min} <= L <= {int(lmaxs.max())}), "
        "measured time and our kernels' FLOP count (pipeline.equivariant.products.flop_estimate):"
    )
    summary["flop_exponent"] = {}
    for m in names:
        base = base_method(m.split("@")[0])
        for p in PASSES:
            t = np.array([r.get(f"{m}_{p}_s", math.nan) for r in rows])
            summary["scaling_exponent"][f"{m}_{p}"] = fit_exponent(lmaxs, t, ARGS.fit_min)
            summary["seconds_per_expressivity"][f"{m}_{p}"] = [float(ti / expressivity_of(base, int(l))) for ti, l in zip(t, lmaxs)]
            if base != "e3nn":
                flops = np.array([flop_estimate(base, int(l), int(l), 2 * int(l), ARGS.batch, backward=p == "backward") for l in lmaxs])
                summary["flop_exponent"][f"{m}_{p}"] = fit_exponent(lmaxs, flops, ARGS.fit_min)
    lines.append(f"{'':>16} {'forward':>8} {'backward':>8} {'flops fwd':>10} {'flops bwd':>10}")
    for m in names:
        fwd, bwd = (summary["scaling_exponent"][f"{m}_{p}"] for p in PASSES)
        ffwd, fbwd = (summary["flop_exponent"].get(f"{m}_{p}", math.nan) for p in PASSES)
        lines.append(f"{m:>16} {fwd:>8.2f} {bwd:>8.2f} {ffwd:>10.2f} {fbwd:>10.2f}")
    last = int(lmaxs[-1])
    lines.append(
        f"seconds per unit of expressivity (cg/e3nn L(L+1)(2L+1)/3+(L+1)^2 = {cg_path_count(last)} at L={last}, "
        f"gaunt 4L+1, vector 4L-3; even paths {even_path_count(last)}):"
    )
    lines.append(f"{'L':>3} {'pass':>8} " + " ".join(f"{m:>16}" for m in names))
    for i, row in enumerate(rows):
        for p in PASSES:
            lines.append(f"{row['lmax']:>3} {p:>8} " + " ".join(f"{summary['seconds_per_expressivity'][f'{m}_{p}'][i]:>16.3e}" for m in names))
    print("\n".join(lines))
    with open(ARGS.output, "w") as fh:
        json.dump(
            {"rows": rows, "summary": summary, "threads": counts, "dtype": "float32", "cold_calls": ARGS.cold_calls,
             "load_start": load_start, "load_end": load_end, "table": lines},
            fh,
            indent=1,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
