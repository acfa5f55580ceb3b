"""One-command device check: every GPU path against the CPU path on the same inputs, timed.

Sections (each row: seconds on the CPU path, seconds on the device, speed-up, the largest
difference device vs CPU relative to the largest CPU value, the error against direct summation
where there is one, and the peak device memory of the step):

* ``potential``: a protein-like cloud and a rock-salt lattice at 10⁴, 10⁵, 10⁶ atoms (ε = 1e-6):
  the build, the potential at every atom (build + atoms is the "10⁶ atoms under 1 s" target)
  and a 129³ map of the full potential over the box;
* ``descriptors``: 10⁵ atoms, L = 2, 4 radial functions: the neighbour density (cutoff 6 Å;
  the array cell list on the device against the compiled kernel on the CPU), the long-range
  potential on every atom's sphere grid (ρ = 2 Å, the default band limit) through the Tucker
  form, projected on the spherical harmonics (CPU time measured on a sample of atoms and
  scaled), and the four descriptor products of the density and the sphere potential;
* ``tensor``: tensor products L = 1…10, batch 10⁴, float32, forward and backward (gradients of
  both inputs), our methods on the device against the same on the CPU (values) and against
  e3nn's FullTensorProduct on the same device (time; skipped when torch/e3nn are missing).

Sections run in this order; once ``--budget`` seconds have passed the remaining cases (and
tensor-product degrees) are skipped and listed, so the check ends in time whatever the machine.

Timings on the device synchronise it; the CPU path runs once (the reference), the device path
after a warm-up on a small case, medians of ``--repeats`` calls for the tensor products. Peak
device memory: the CuPy memory pool's size after the step, its cached blocks freed before
(torch: ``max_memory_allocated``). An out-of-memory step is recorded as such and the check goes on.

With ``--device cpu`` the "device" column runs the CuPy code paths of the package (its backend
checks made to answer "not numpy") with NumPy arrays, so CI exercises the same array code;
``--quick`` takes small sizes (well under a minute). Needs only numpy, scipy, xarray, numba
(and torch + e3nn for the peer, cupy for ``--device cuda``); nothing else is imported.

Usage::

    python benchmarks/gpu_check.py results/gpu_check.json                      # CuPy, full sizes
    python benchmarks/gpu_check.py results/gpu_check.json --device cpu --quick # NumPy, CI
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import logging
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np

# a bare GPU machine runs this from a checkout without installing it: import the package from here
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

from bench_potential import lattice, protein_cloud  # noqa: E402
from pipeline.backend import backend_name, synchronize, to_host, xp_for_device  # noqa: E402
from pipeline.descriptors.density_array import array_atom_density  # noqa: E402
from pipeline.descriptors.density_cells import atom_density_from_cells  # noqa: E402
from pipeline.descriptors.projection import pointwise_expansion  # noqa: E402
from pipeline.electrostatics import build_potential, direct_potential  # noqa: E402
from pipeline.equivariant.products import tensor_product, tensor_product_vjp  # noqa: E402

log = logging.getLogger("gpu_check")

#: Modules whose NumPy/other-backend switch is overridden for ``--device cpu``.
ARRAY_MODULES = ("gridding", "short_range", "long_range", "tucker", "direct", "potential", "blas")
STRUCTURES = {"protein_cloud": protein_cloud, "rock_salt": lattice}
TP_METHODS = ("cg", "gaunt_grid", "gaunt_fourier", "vector_gaunt")
DESCRIPTOR_METHODS = ("cg", "gaunt_fourier", "gaunt_grid", "vector_gaunt")
FULL = {"sizes": (10_000, 100_000, 1_000_000), "map": 129, "lmax": tuple(range(1, 11)), "batch": 10_000,
        "descriptor_atoms": 100_000, "descriptor_cpu_sample": 1000}
QUICK = {"sizes": (1000, 2500), "map": 17, "lmax": (1, 2, 3), "batch": 300, "descriptor_atoms": 1000,
         "descriptor_cpu_sample": 300}
TOLERANCE = 1e-6
#: Atoms sampled for the direct-summation error.
N_DIRECT = 200
#: Sphere-grid points per call of the potential in the descriptors section.
SPHERE_BATCH_POINTS = 2**21
#: Neighbour cutoff of the descriptors' density, Å.
DENSITY_CUTOFF = 6.0


class DeviceMemory:
    """Peak device memory of a step: CuPy's pool size (cached blocks freed first), or torch's counter."""

    def __init__(self, xp):
        self.pool = xp.get_default_memory_pool() if backend_name(xp) == "cupy" else None

    def reset(self) -> None:
        if self.pool is not None:
            self.pool.free_all_blocks()

    def peak_mb(self) -> float:
        return self.pool.total_bytes() / 2**20 if self.pool is not None else math.nan


@contextlib.contextmanager
def device_code_paths(xp):
    """For NumPy, make the package's backend checks answer "not numpy" (the CuPy code paths)."""
    if backend_name(xp) == "cupy":
        yield
        return
    saved = []
    for name in ARRAY_MODULES:
        module = importlib.import_module(f"pipeline.electrostatics.{name}")
        saved.append((module, module.backend_name))
        module.backend_name = lambda _: "array"
    try:
        yield
    finally:
        for module, original in saved:
            module.backend_name = original


def timed(fn, xp):
    synchronize(xp)
    start = time.perf_counter()
    out = fn()
    synchronize(xp)
    return out, time.perf_counter() - start


def rel_diff(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-300))


def row(section, case, n, step, cpu_s, dev_s, diff, err=math.nan, peak=math.nan, **extra):
    return {"section": section, "case": case, "n": int(n), "step": step, "cpu_s": cpu_s, "device_s": dev_s,
            "speedup": cpu_s / dev_s if dev_s and dev_s > 0 else math.nan, "max_rel_diff": diff,
            "max_rel_err_direct": err, "peak_device_MB": peak, **extra}


def out_of_memory(section, case, n, step, exc):
    log.warning("%s %s n=%d %s: out of device memory (%s)", section, case, n, step, exc)
    return row(section, case, n, step, math.nan, math.nan, math.nan, error=f"out of memory: {exc}")


# -- potential -------------------------------------------------------------------------------
def potential_case(name, n, xp, map_size, mem):
    rng = np.random.default_rng(7)
    pos, q = STRUCTURES[name](n, rng)
    n = pos.shape[0]
    axes = None
    cpu = {}
    pot_c, cpu["build"] = timed(lambda: build_potential(pos, q, tolerance=TOLERANCE)[0], np)
    cpu_atoms, cpu["atoms"] = timed(lambda: pot_c.at_atoms()[0], np)
    axes = [np.linspace(pot_c.box_lo[k], pot_c.box_hi[k], map_size) for k in range(3)]
    cpu_map, cpu["map"] = timed(lambda: pot_c.grid(*axes), np)
    sample = rng.choice(n, size=min(n, N_DIRECT), replace=False)
    ref = direct_potential(pos[sample], pos, q)
    rows = []
    pos_d, q_d = xp.asarray(pos), xp.asarray(q)
    with device_code_paths(xp):
        try:
            mem.reset()
            pot_d, t_build = timed(lambda: build_potential(pos_d, q_d, tolerance=TOLERANCE)[0], xp)
            rows.append(row("potential", name, n, "build", cpu["build"], t_build, math.nan, peak=mem.peak_mb(),
                            ranks=list(pot_d.ranks), alpha=pot_d.params["alpha"], cutoff=pot_d.params["cutoff"]))
            mem.reset()
            atoms, t_atoms = timed(lambda: pot_d.at_atoms()[0], xp)
            atoms = to_host(atoms)
            rows.append(row("potential", name, n, "atoms", cpu["atoms"], t_atoms, rel_diff(atoms, cpu_atoms),
                            rel_diff(atoms[sample], ref), mem.peak_mb()))
            rows.append(row("potential", name, n, "build+atoms", cpu["build"] + cpu["atoms"], t_build + t_atoms,
                            rel_diff(atoms, cpu_atoms), rel_diff(atoms[sample], ref), rows[-1]["peak_device_MB"]))
            del atoms
            mem.reset()
            dev_map, t_map = timed(lambda: pot_d.grid(*(xp.asarray(a) for a in axes)), xp)
            dev_map = to_host(dev_map)
            gx, gy, gz = np.meshgrid(*axes, indexing="ij")
            pick = rng.choice(gx.size, size=N_DIRECT, replace=False)
            pts = np.stack([gx.ravel()[pick], gy.ravel()[pick], gz.ravel()[pick]], axis=1)
            map_err = rel_diff(dev_map.ravel()[pick], direct_potential(pts, pos, q))
            rows.append(row("potential", name, n, f"map {map_size}^3", cpu["map"], t_map, rel_diff(dev_map, cpu_map),
                            map_err, mem.peak_mb()))
        except MemoryError as exc:
            rows.append(out_of_memory("potential", name, n, "build/atoms/map", exc))
    return rows


# -- tensor products -------------------------------------------------------------------------
def _median_time(fn, xp, repeats):
    fn()
    times = [timed(fn, xp)[1] for _ in range(repeats)]
    return float(np.median(times))


def _e3nn(lmax, x, y, g, device, repeats):
    """(forward s, backward s, peak MB) of e3nn's FullTensorProduct on ``device``, or None."""
    try:
        torch = importlib.import_module("torch")
        o3 = importlib.import_module("e3nn.o3")
    except ImportError:
        return None
    irreps = o3.Irreps("+".join(f"1x{l}{'e' if l % 2 == 0 else 'o'}" for l in range(lmax + 1)))
    tp = o3.FullTensorProduct(irreps, irreps).to(device)
    tx = torch.tensor(x, device=device, requires_grad=True)
    ty = torch.tensor(y, device=device, requires_grad=True)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    out = tp(tx, ty)
    tg = torch.tensor(g[:, : out.shape[1]], device=device)

    def forward():
        with torch.no_grad():
            tp(tx, ty)

    def backward():
        torch.autograd.grad(out, (tx, ty), tg, retain_graph=True)

    result = []
    for fn in (forward, backward):
        fn()
        times = []
        for _ in range(repeats):
            sync()
            start = time.perf_counter()
            fn()
            sync()
            times.append(time.perf_counter() - start)
        result.append(float(np.median(times)))
    peak = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else math.nan
    return result[0], result[1], peak


def tensor_rows(xp, lmaxs, batch, repeats, mem, torch_device, within_budget):
    rows = []
    rng = np.random.default_rng(1)
    for lmax in lmaxs:
        if not within_budget(f"tensor products L={lmax}"):
            continue
        dim = (lmax + 1) ** 2
        x = rng.normal(size=(batch, dim)).astype(np.float32)
        y = rng.normal(size=(batch, dim)).astype(np.float32)
        g_any = rng.normal(size=(batch, dim * dim)).astype(np.float32)  # the widest output: all CG paths
        try:
            peer = _e3nn(lmax, x, y, g_any, torch_device, repeats)
        except Exception as exc:  # noqa: BLE001 - the peer's failure is recorded, ours still run
            log.warning("e3nn L=%d failed: %s", lmax, exc)
            peer = None
        x_d, y_d = xp.asarray(x), xp.asarray(y)
        for method in TP_METHODS:
            try:
                tensor_product_vjp(x[:2], y[:2], tensor_product(x[:2], y[:2], method=method)[0], method=method)  # tables
                cpu_out, cpu_f = timed(lambda: tensor_product(x, y, method=method)[0], np)
                g = g_any[:, : cpu_out.shape[1]].copy()
                cpu_grads, cpu_b = timed(lambda: tensor_product_vjp(x, y, g, method=method), np)
                g_d = xp.asarray(g)
                mem.reset()
                dev_f = _median_time(lambda: tensor_product(x_d, y_d, method=method), xp, repeats)
                dev_out = to_host(tensor_product(x_d, y_d, method=method)[0])
                peak_f = mem.peak_mb()
                mem.reset()
                dev_b = _median_time(lambda: tensor_product_vjp(x_d, y_d, g_d, method=method), xp, repeats)
                dev_grads = [to_host(a) for a in tensor_product_vjp(x_d, y_d, g_d, method=method)]
                peak_b = mem.peak_mb()
            except MemoryError as exc:
                rows.append(out_of_memory("tensor", method, lmax, "forward/backward", exc))
                continue
            for step, cpu_s, dev_s, diff, peak, idx in (
                ("forward", cpu_f, dev_f, rel_diff(dev_out, cpu_out), peak_f, 0),
                ("backward", cpu_b, dev_b, max(rel_diff(a, b) for a, b in zip(dev_grads, cpu_grads)), peak_b, 1),
            ):
                extra = {"dtype": "float32", "batch": batch}
                if peer is not None:
                    extra.update(e3nn_s=peer[idx], vs_e3nn=peer[idx] / dev_s, e3nn_peak_MB=peer[2])
                rows.append(row("tensor", method, lmax, step, cpu_s, dev_s, diff, peak=peak, **extra))
    return rows


# -- descriptors -----------------------------------------------------------------------------
def descriptor_rows(xp, n, mem, lmax=2, n_radial=4, radius=2.0, cpu_sample=1000):
    rng = np.random.default_rng(3)
    pos, q = protein_cloud(n, rng)
    pot_c, _ = build_potential(pos, q, tolerance=TOLERANCE)
    sample = rng.choice(n, size=min(n, cpu_sample), replace=False)
    cpu_sh, cpu_s = timed(lambda: pointwise_expansion(pot_c.long_range, pos[sample], lmax=lmax, sphere_radius_A=radius,
                                                         max_points=SPHERE_BATCH_POINTS), np)
    rows = []
    cpu_density, cpu_t = timed(lambda: atom_density_from_cells(pos, q, n_centres=n, lmax=lmax, cutoff_A=DENSITY_CUTOFF,
                                                               n_radial=n_radial)[0], np)
    try:
        mem.reset()
        dev_density, dev_t = timed(lambda: array_atom_density(xp.asarray(pos), xp.asarray(q), n_centres=n, lmax=lmax,
                                                              cutoff_A=DENSITY_CUTOFF, n_radial=n_radial)[0], xp)
        rows.append(row("descriptors", "density", n, f"L={lmax} N={n_radial} rc={DENSITY_CUTOFF:g}", cpu_t, dev_t,
                        rel_diff(to_host(dev_density), cpu_density), peak=mem.peak_mb()))
    except MemoryError as exc:
        rows.append(out_of_memory("descriptors", "density", n, f"L={lmax}", exc))
    with device_code_paths(xp):
        try:
            pot_d, _ = build_potential(xp.asarray(pos), xp.asarray(q), tolerance=TOLERANCE)
            mem.reset()
            dev_sh, dev_s = timed(lambda: pointwise_expansion(pot_d.long_range, xp.asarray(pos), lmax=lmax, sphere_radius_A=radius,
                                                             max_points=SPHERE_BATCH_POINTS), xp)
            dev_sh = to_host(dev_sh)
            rows.append(row("descriptors", "sphere potential", n, f"L={lmax} rho={radius}", cpu_s * n / sample.size,
                            dev_s, rel_diff(dev_sh[sample], cpu_sh), peak=mem.peak_mb(),
                            note=f"CPU time from {sample.size} atoms, scaled"))
        except MemoryError as exc:
            rows.append(out_of_memory("descriptors", "sphere potential", n, f"L={lmax}", exc))
            dev_sh = np.zeros((n, (lmax + 1) ** 2))
    potential_sh = np.asarray(dev_sh)
    d_d, p_d = xp.asarray(cpu_density), xp.asarray(potential_sh)
    for method in DESCRIPTOR_METHODS:
        cpu_out, cpu_t = timed(lambda: tensor_product(cpu_density, potential_sh[:, None, :], method=method, lmax_out=lmax)[0], np)
        try:
            mem.reset()
            dev_out, dev_t = timed(lambda: tensor_product(d_d, p_d[:, None, :], method=method, lmax_out=lmax)[0], xp)
            rows.append(row("descriptors", f"product {method}", n, f"L={lmax} N={n_radial} float64", cpu_t, dev_t,
                            rel_diff(to_host(dev_out), cpu_out), peak=mem.peak_mb()))
        except MemoryError as exc:
            rows.append(out_of_memory("descriptors", f"product {method}", n, f"L={lmax}", exc))
    return rows


# -- driver ----------------------------------------------------------------------------------
def table(rows) -> str:
    head = (f"{'section':11s} {'case':16s} {'n':>8s} {'step':22s} {'cpu s':>9s} {'device s':>9s} {'x cpu':>7s} "
            f"{'e3nn s':>9s} {'x e3nn':>7s} {'rel diff':>8s} {'err dir':>8s} {'peak MB':>8s}")
    lines = [head]
    for r in rows:
        lines.append(
            f"{r['section']:11s} {r['case'][:16]:16s} {r['n']:8d} {r['step'][:22]:22s} {r['cpu_s']:9.3g} {r['device_s']:9.3g} "
            f"{r['speedup']:7.2f} {r.get('e3nn_s', math.nan):9.3g} {r.get('vs_e3nn', math.nan):7.2f} "
            f"{r['max_rel_diff']:8.1e} {r['max_rel_err_direct']:8.1e} {r['peak_device_MB']:8.0f}"
            + (f"  {r['error']}" if "error" in r else "")
        )
    return "\n".join(lines)


def _strict(value):
    """NaN → null, NumPy scalars → Python numbers (strict JSON)."""
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", help="JSON file for the results (written at the end)")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda",
                        help="cuda: CuPy on the GPU (default); cpu: the CuPy code paths on NumPy")
    parser.add_argument("--quick", action="store_true", help="small sizes (CI)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per tensor product (median)")
    parser.add_argument("--sections", nargs="+", choices=("potential", "tensor", "descriptors"),
                        default=["potential", "tensor", "descriptors"])
    parser.add_argument("--budget", type=float, default=330.0,
                        help="seconds after which the remaining cases are skipped (default 330)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        xp = xp_for_device(args.device)  # no CuPy, or no device: RuntimeError saying what to do
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    sizes = QUICK if args.quick else FULL
    mem = DeviceMemory(xp)
    start = time.perf_counter()
    info = {"device": args.device, "quick": args.quick, "python": platform.python_version(), "numpy": np.__version__,
            "tolerance": TOLERANCE}
    if backend_name(xp) == "cupy":
        props = xp.cuda.runtime.getDeviceProperties(0)
        name = props["name"]
        info.update(gpu=name.decode() if isinstance(name, bytes) else str(name), cupy=xp.__version__,
                    gpu_memory_GB=props["totalGlobalMem"] / 1e9)
    warm_pos, warm_q = protein_cloud(300, np.random.default_rng(0))
    for arr in (np, xp):  # warm-up: compiled kernels and device code loaded outside the timings
        with device_code_paths(arr) if arr is xp else contextlib.nullcontext():
            pot, _ = build_potential(arr.asarray(warm_pos), arr.asarray(warm_q), tolerance=TOLERANCE)
            pot.at_atoms()
            pot.grid(*(arr.linspace(pot.box_lo[k], pot.box_hi[k], 5) for k in range(3)))
    atom_density_from_cells(warm_pos, warm_q, n_centres=300, lmax=2, cutoff_A=DENSITY_CUTOFF, n_radial=4)
    array_atom_density(xp.asarray(warm_pos), xp.asarray(warm_q), n_centres=300, lmax=2, cutoff_A=DENSITY_CUTOFF, n_radial=4)
    synchronize(xp)
    rows = []
    skipped = []

    def within_budget(what):
        if time.perf_counter() - start > args.budget:
            skipped.append(what)
            return False
        return True

    if "potential" in args.sections:
        for n in sizes["sizes"]:
            for name in STRUCTURES:
                if within_budget(f"potential {name} {n}"):
                    rows += potential_case(name, n, xp, sizes["map"], mem)
                    print(table(rows[-4:]).split("\n", 1)[1], file=sys.stderr, flush=True)
    if "descriptors" in args.sections and within_budget("descriptors"):
        rows += descriptor_rows(xp, sizes["descriptor_atoms"], mem, cpu_sample=sizes["descriptor_cpu_sample"])
    if "tensor" in args.sections:
        torch_device = "cuda" if backend_name(xp) == "cupy" else "cpu"
        rows += tensor_rows(xp, sizes["lmax"], sizes["batch"], args.repeats if not args.quick else 2, mem, torch_device,
                            within_budget)
    info["seconds"] = time.perf_counter() - start
    info["skipped_over_budget"] = skipped
    print(table(rows))
    if skipped:
        print(f"skipped after {args.budget:.0f} s: {', '.join(skipped)}")
    print(f"total {info['seconds']:.1f} s")
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    tmp.write_text(json.dumps(_strict({"info": info, "rows": rows}), indent=1))
    tmp.replace(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
