"""Draw the figures of a report Dataset as PNG files.

Every figure of :data:`FIGURES` is always written, under the fixed name ``<name>.png``, so
that the workflow's outputs do not depend on which inputs a study has: a figure whose data is
absent from the report shows a "no data" note instead. Figures are drawn on
:class:`matplotlib.figure.Figure` objects with the Agg canvas (no pyplot, no global state),
rendered to memory and written atomically.

========================  ===================================================================
name                      content
========================  ===================================================================
runtime_vs_lmax           tensor-product median runtime against L per method (log-log),
                          one line per method, pass and device; bars show the
                          interquartile range (tp_time_q25..q75) when recorded, else
                          half the spread (tp_time_spread) either side
error_vs_tolerance        potential self-check max and RMS relative error at the atoms and
                          max error at random points against the requested tolerance
                          (log-log), one colour per structure
ranks_vs_atoms            Tucker ranks against the atom count, and against the alpha of the stored
                          form when the potentials record it
runtime_vs_atoms          potential build time per step (and the Snakemake wall time of the
                          potential stage) against the atom count (log-log)
========================  ===================================================================
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Callable
from itertools import cycle, product
from pathlib import Path

import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from pipeline.storage import atomic_write_bytes

log = logging.getLogger(__name__)

#: File stems of the figures, in the order they are drawn.
FIGURES = ("runtime_vs_lmax", "error_vs_tolerance", "ranks_vs_atoms", "runtime_vs_atoms")

_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_LINESTYLES = ("-", "--", ":", "-.")


def _no_data(ax: Axes, what: str) -> None:
    ax.text(0.5, 0.5, f"no data:\n{what}", ha="center", va="center", transform=ax.transAxes, fontsize=11, color="0.35")
    ax.set_xticks([])
    ax.set_yticks([])


def _finite(x: np.ndarray, y: np.ndarray, *, positive: bool) -> np.ndarray:
    keep = np.isfinite(x) & np.isfinite(y)
    if positive:
        keep &= (x > 0) & (y > 0)
    return keep


def _sci(value: float) -> str:
    return np.format_float_scientific(value, precision=3, trim="-", exp_digits=1)


def _label(values) -> str:
    return ", ".join(str(v) for v in values)


def _runtime_bounds(report: xr.Dataset, time: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray] | None:
    """Lower and upper runtime bounds for error bars: quartiles, else median ± spread / 2, else None."""
    if "tp_time_q25" in report and "tp_time_q75" in report:
        low, high = report["tp_time_q25"], report["tp_time_q75"]
    elif "tp_time_spread" in report:
        low, high = time - report["tp_time_spread"] / 2, time + report["tp_time_spread"] / 2
    else:
        return None
    if set(low.dims) != set(time.dims) or set(high.dims) != set(time.dims):
        return None
    return low, high


def plot_runtime_vs_lmax(report: xr.Dataset, fig: Figure) -> bool:
    """Median tensor-product runtime against L, one line per (method, pass, device)."""
    ax = fig.add_subplot()
    ax.set_title("Tensor-product runtime against L")
    if "tp_time_median" not in report or not {"method", "lmax"} <= set(report["tp_time_median"].dims):
        _no_data(ax, "no tensor-product runtimes (tp_time_median) in the report")
        return False
    time = report["tp_time_median"]
    bounds = _runtime_bounds(report, time)
    others = [d for d in time.dims if d not in ("method", "lmax")]
    time = time.transpose("method", *others, "lmax")
    colors = {m: f"C{i % 10}" for i, m in enumerate(time["method"].values)}
    styles = dict(zip(time[others[0]].values, cycle(_LINESTYLES))) if others else {}
    lmax = np.asarray(time["lmax"].values, dtype=np.float64)
    drawn = 0
    for labels in product(*(time[d].values for d in others)):
        for method in time["method"].values:
            selection = {"method": method, **dict(zip(others, labels))}
            y = np.asarray(time.sel(selection).values, dtype=np.float64)
            keep = _finite(lmax, y, positive=True)
            if not keep.any():
                continue
            yerr = None
            if bounds is not None:
                low, high = (np.asarray(b.sel(selection).transpose("lmax").values, dtype=np.float64) for b in bounds)
                yerr = np.clip(np.stack([y - low, high - y])[:, keep], 0.0, None)
                yerr[~np.isfinite(yerr)] = 0.0
            ax.errorbar(
                lmax[keep], y[keep], yerr=yerr, color=colors.get(method), marker=_MARKERS[drawn % len(_MARKERS)],
                linestyle=styles.get(labels[0], "-") if labels else "-", capsize=2, label=_label([method, *labels]),
            )
            drawn += 1
    if not drawn:
        _no_data(ax, "tensor-product runtimes are all missing")
        return False
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("maximum degree L")
    ax.set_ylabel(f"median runtime ({time.attrs.get('units', 's')})")
    ticks = lmax[lmax > 0]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.minorticks_off()
    ax.legend(fontsize=7, title=_label(["method", *others]), title_fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
    return True


def plot_error_vs_tolerance(report: xr.Dataset, fig: Figure) -> bool:
    """Self-check max (filled) and RMS (open) error at atoms, max error at points (x), against the tolerance."""
    ax = fig.add_subplot()
    ax.set_title("Potential accuracy against the requested tolerance")
    if "potential_max_rel_error" not in report:
        _no_data(ax, "no potentials in the report")
        return False
    tolerance = np.asarray(report["potential_tolerance"].values, dtype=np.float64)
    drawn = False
    for i, structure in enumerate(report["structure"].values):
        for name, marker, fill, kind in (
            ("potential_max_rel_error", "o", f"C{i % 10}", "max, atoms"),
            ("potential_rms_rel_error", "o", "none", "RMS, atoms"),
            ("potential_max_rel_error_points", "x", f"C{i % 10}", "max, points"),
        ):
            y = np.asarray(report[name].sel({"structure": structure}).values, dtype=np.float64)
            keep = _finite(tolerance, y, positive=True)
            if keep.any():
                ax.plot(tolerance[keep], y[keep], linestyle="none", marker=marker, markersize=7, color=f"C{i % 10}",
                        markerfacecolor=fill, label=f"{structure} ({kind})")
                drawn = True
    if not drawn:
        _no_data(ax, "potentials carry no self-check errors")
        return False
    span = np.array([tolerance.min(), tolerance.max()]) * np.array([0.5, 2.0])
    ax.plot(span, span, color="0.4", linestyle="--", label="error = tolerance")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("requested tolerance")
    ax.set_ylabel("relative error against direct summation")
    ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
    return True


def _ranks_panel(ax: Axes, report: xr.Dataset, x: xr.DataArray, xlabel: str) -> bool:
    ranks = report["potential_ranks"]
    drawn = False
    for j, tolerance in enumerate(report["potential_tolerance"].values):
        for mode in ranks["mode"].values:
            column = x.sel({"potential_tolerance": tolerance}) if "potential_tolerance" in x.dims else x
            xs = np.asarray(column.values, dtype=np.float64)
            ys = np.asarray(ranks.sel({"potential_tolerance": tolerance, "mode": mode}).values, dtype=np.float64)
            keep = _finite(xs, ys, positive=False)
            if keep.any():
                # Each point is a different structure: markers only, labelled with the structure id.
                ax.plot(xs[keep], ys[keep], marker=_MARKERS[int(mode) % len(_MARKERS)], color=f"C{j % 10}",
                        linestyle="none", label=f"tol {_sci(tolerance)}, mode {mode}")
                if int(mode) == 0:
                    for sid, xv, yv in zip(report["structure"].values[keep], xs[keep], ys[keep]):
                        ax.annotate(str(sid), (xv, yv), textcoords="offset points", xytext=(4, 4), fontsize=7)
                drawn = True
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Tucker rank")
    if drawn:
        ax.legend(fontsize=7)
        ax.grid(True, alpha=0.3)
    return drawn


def plot_ranks_vs_atoms(report: xr.Dataset, fig: Figure) -> bool:
    """Tucker ranks against the atom count (left) and against the alpha they are stored at (right)."""
    left, right = fig.subplots(1, 2, sharey=True)
    fig.suptitle("Tucker ranks of the long-range part")
    if "potential_ranks" not in report:
        _no_data(left, "no potentials in the report")
        _no_data(right, "no potentials in the report")
        return False
    drawn = _ranks_panel(left, report, report["n_atoms"], "number of atoms N")
    if drawn:
        left.set_xscale("log")
    else:
        _no_data(left, "potentials carry no Tucker ranks")
    stored = report["potential_stored_alpha"]
    alpha = stored.fillna(report["potential_alpha"])  # a file without a stored alpha stores at alpha
    if not np.isfinite(alpha.values).any() or not _ranks_panel(right, report, alpha,
                                                               f"stored alpha ({stored.attrs['units']})"):
        right.cla()
        _no_data(right, "potentials record no alpha")
    return drawn


def plot_runtime_vs_atoms(report: xr.Dataset, fig: Figure) -> bool:
    """Potential build time per step, and the Snakemake wall time of the potential stage, against N."""
    ax = fig.add_subplot()
    ax.set_title("Potential build time against the atom count")
    n_atoms = np.asarray(report["n_atoms"].values, dtype=np.float64)
    drawn = 0

    def draw(xs: np.ndarray, ys: np.ndarray, **style) -> None:
        nonlocal drawn
        keep = _finite(xs, ys, positive=True)
        if keep.any():
            order = np.argsort(xs[keep])
            ax.plot(xs[keep][order], ys[keep][order], marker=_MARKERS[drawn % len(_MARKERS)], **style)
            drawn += 1

    if "potential_time" in report:
        for j, tolerance in enumerate(report["potential_tolerance"].values):
            for k, step in enumerate(report["step"].values):
                at = {"potential_tolerance": tolerance, "step": step}
                ys = np.asarray(report["potential_time"].sel(at).values, dtype=np.float64)
                draw(n_atoms, ys, color=f"C{k % 10}", linestyle=_LINESTYLES[j % len(_LINESTYLES)],
                     label=f"{step} (tol {_sci(tolerance)})")
    if "stage_wall_time" in report and "potential" in report["stage"].values:
        ys = np.asarray(report["stage_wall_time"].sel({"stage": "potential"}).values, dtype=np.float64)
        draw(n_atoms, ys, color="k", linestyle="--", label="potential stage (Snakemake wall time)")
    if not drawn:
        _no_data(ax, "no potential timings or benchmarks in the report")
        return False
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("number of atoms N")
    ax.set_ylabel("wall-clock time (s)")
    ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
    return True


_PLOTS: dict[str, tuple[Callable[[xr.Dataset, Figure], bool], tuple[float, float]]] = {
    "runtime_vs_lmax": (plot_runtime_vs_lmax, (7.0, 5.0)),
    "error_vs_tolerance": (plot_error_vs_tolerance, (6.5, 5.0)),
    "ranks_vs_atoms": (plot_ranks_vs_atoms, (10.0, 4.5)),
    "runtime_vs_atoms": (plot_runtime_vs_atoms, (7.0, 5.0)),
}


def render_png(report: xr.Dataset, name: str, *, dpi: int = 120) -> tuple[bytes, bool]:
    """Draw figure ``name`` (one of :data:`FIGURES`) of ``report``.

    Returns
    -------
    png : bytes
        The PNG file content.
    has_data : bool
        False when the figure only carries a "no data" note.
    """
    if name not in _PLOTS:
        raise ValueError(f"unknown figure {name!r}; expected one of {', '.join(FIGURES)}")
    plot, size = _PLOTS[name]
    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    has_data = plot(report, fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return buffer.getvalue(), has_data


def write_figures(report: xr.Dataset, directory: str | os.PathLike) -> dict[str, Path]:
    """Write every figure of :data:`FIGURES` as ``<directory>/<name>.png``, atomically.

    Parameters
    ----------
    report : xarray.Dataset
        A report from :func:`pipeline.reports.datasets.build_report` (or read back from file).
    directory : path-like
        Created if needed.

    Returns
    -------
    dict
        Figure name to written path.
    """
    directory = Path(directory)
    written = {}
    for name in FIGURES:
        png, has_data = render_png(report, name)
        written[name] = atomic_write_bytes(directory / f"{name}.png", png)
        log.info("figure %s: %s, %d bytes", written[name], "data" if has_data else "no data", len(png))
    return written
