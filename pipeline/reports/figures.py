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
ranks_vs_atoms            largest Tucker rank (bar down to the smallest mode) against the
                          atom count, and against the alpha of the stored form when the
                          potentials record it; colour = tolerance, marker = structure
runtime_vs_atoms          potential build time per step (and the Snakemake wall time of the
                          potential job) against the atom count at the study's tolerance
                          (log-log), and against the requested tolerance for the structures
                          of the accuracy sweep
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
from matplotlib.lines import Line2D

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


#: Largest shift (decades) of a structure's points along the tolerance axis of the accuracy figure.
_DODGE_DECADES = 0.1

#: Error kinds of the accuracy figure: (report variable, legend label, marker, filled).
_ERROR_KINDS = (
    ("potential_max_rel_error", "max, atoms", "o", True),
    ("potential_rms_rel_error", "RMS, atoms", "o", False),
    ("potential_max_rel_error_points", "max, points", "x", True),
)


def _dodge(present: np.ndarray) -> np.ndarray:
    """Offsets (decades) that spread the structures present at each tolerance, 0 for a lone one.

    ``present`` is a (structure, tolerance) boolean array; the result has its shape.
    """
    offsets = np.zeros(present.shape)
    for j in range(present.shape[1]):
        rows = np.flatnonzero(present[:, j])
        if len(rows) > 1:
            offsets[rows, j] = np.linspace(-_DODGE_DECADES, _DODGE_DECADES, len(rows))
    return offsets


def plot_error_vs_tolerance(report: xr.Dataset, fig: Figure) -> bool:
    """Self-check max (filled) and RMS (open) error at atoms, max error at points (x), against the tolerance.

    Colour is the structure and marker the kind of error, in two legends outside the axes. The
    points of structures built at the same tolerance are spread along x by up to
    ±:data:`_DODGE_DECADES` decades around it, so that they do not hide each other.
    """
    ax = fig.add_subplot()
    ax.set_title("Potential accuracy against the requested tolerance")
    if "potential_max_rel_error" not in report:
        _no_data(ax, "no potentials in the report")
        return False
    tolerance = np.asarray(report["potential_tolerance"].values, dtype=np.float64)
    colors = {str(sid): f"C{i % 10}" for i, sid in enumerate(report["structure"].values)}
    offsets = _dodge(np.isfinite(report["potential_max_rel_error"].transpose("structure", "potential_tolerance").values))
    drawn = set()
    for (structure, color), offset in zip(colors.items(), offsets):
        for name, kind, marker, filled in _ERROR_KINDS:
            if name not in report:
                continue
            y = np.asarray(report[name].sel({"structure": structure}).values, dtype=np.float64)
            keep = _finite(tolerance, y, positive=True)
            if keep.any():
                ax.plot(tolerance[keep] * 10.0 ** offset[keep], y[keep], linestyle="none", marker=marker, markersize=7, color=color,
                        markerfacecolor=color if filled else "none", gid=f"error|{structure}|{kind}")
                drawn.add(structure)
    if not drawn:
        _no_data(ax, "potentials carry no self-check errors")
        return False
    span = np.array([tolerance.min(), tolerance.max()]) * np.array([0.5, 2.0])
    ax.plot(span, span, color="0.4", linestyle="--", gid="error|diagonal")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("requested tolerance")
    ax.set_ylabel("relative error against direct summation")
    ax.grid(True, which="both", alpha=0.3)
    by_structure = [Line2D([], [], color=c, marker="o", linestyle="none", label=sid) for sid, c in colors.items() if sid in drawn]
    by_kind = [Line2D([], [], color="0.3", marker=m, markerfacecolor="0.3" if f else "none", linestyle="none", label=k)
               for _, k, m, f in _ERROR_KINDS]
    by_kind.append(Line2D([], [], color="0.4", linestyle="--", label="error = tolerance"))
    fig.legend(handles=by_structure, title="structure", loc="outside right upper", fontsize=7, title_fontsize=7)
    fig.legend(handles=by_kind, title="error", loc="outside right lower", fontsize=7, title_fontsize=7)
    return True


def _structure_markers(report: xr.Dataset) -> dict[str, str]:
    """One marker per structure, the same in every panel."""
    return {str(sid): _MARKERS[i % len(_MARKERS)] for i, sid in enumerate(report["structure"].values)}


def _tolerance_colors(tolerances: np.ndarray) -> dict[float, str]:
    """One colour per requested tolerance, from the loosest to the tightest."""
    return {float(t): f"C{i % 10}" for i, t in enumerate(sorted(tolerances, reverse=True))}


def _ranks_panel(ax: Axes, report: xr.Dataset, x: xr.DataArray, xlabel: str) -> bool:
    """Largest Tucker rank of the three modes (bar down to the smallest) against ``x``.

    Colour: requested tolerance; marker: structure. Each point is one potential file.
    """
    ranks = report["potential_ranks"]
    tolerances = np.asarray(report["potential_tolerance"].values, dtype=np.float64)
    colors, markers = _tolerance_colors(tolerances), _structure_markers(report)
    drawn = False
    for tolerance in tolerances:
        at = {"potential_tolerance": tolerance}
        xs = np.asarray((x.sel(at) if "potential_tolerance" in x.dims else x).values, dtype=np.float64)
        r = np.asarray(ranks.sel(at).transpose("structure", "mode").values, dtype=np.float64)
        high, low = np.full(len(r), np.nan), np.full(len(r), np.nan)
        some = np.isfinite(r).any(axis=1)
        high[some], low[some] = np.nanmax(r[some], axis=1), np.nanmin(r[some], axis=1)
        for i, sid in enumerate(report["structure"].values):
            if not (np.isfinite(xs[i]) and np.isfinite(high[i])):
                continue
            ax.errorbar(
                [xs[i]], [high[i]], yerr=[[high[i] - low[i]], [0.0]], marker=markers[str(sid)], color=colors[float(tolerance)],
                linestyle="none", capsize=2, markersize=6, gid=f"ranks|{sid}|{_sci(tolerance)}",
            )
            drawn = True
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Tucker rank (largest mode; bar: smallest)")
    if drawn:
        ax.grid(True, alpha=0.3)
    return drawn


def _legend_handles(colors: dict[float, str], markers: dict[str, str]) -> tuple[list[Line2D], list[Line2D]]:
    """Legend entries for the colours (tolerances) and the markers (structures), drawn once each."""
    by_color = [Line2D([], [], color=c, marker="o", linestyle="none", label=_sci(t)) for t, c in colors.items()]
    by_marker = [Line2D([], [], color="0.3", marker=m, linestyle="none", label=sid) for sid, m in markers.items()]
    return by_color, by_marker


def plot_ranks_vs_atoms(report: xr.Dataset, fig: Figure) -> bool:
    """Tucker ranks against the atom count (left) and against the alpha they are stored at (right).

    Colour is the requested tolerance and marker the structure, in two small legends, so the
    figure needs no per-point labels whatever the number of potentials.
    """
    left, right = fig.subplots(1, 2, sharey=True)
    fig.suptitle("Tucker ranks of the long-range part")
    if "potential_ranks" not in report:
        _no_data(left, "no potentials in the report")
        _no_data(right, "no potentials in the report")
        return False
    drawn = _ranks_panel(left, report, report["n_atoms"], "number of atoms N")
    if drawn:
        left.set_xscale("log")
        tolerances = np.asarray(report["potential_tolerance"].values, dtype=np.float64)
        by_color, by_marker = _legend_handles(_tolerance_colors(tolerances), _structure_markers(report))
        fig.legend(handles=by_color, title="tolerance", loc="outside right upper", fontsize=7, title_fontsize=7)
        fig.legend(handles=by_marker, title="structure", loc="outside right lower", fontsize=7, title_fontsize=7)
    else:
        _no_data(left, "potentials carry no Tucker ranks")
    stored = report["potential_stored_alpha"]
    alpha = stored.fillna(report["potential_alpha"])  # a file without a stored alpha stores at alpha
    if not np.isfinite(alpha.values).any() or not _ranks_panel(right, report, alpha, f"stored alpha ({stored.attrs['units']})"):
        right.cla()
        _no_data(right, "potentials record no alpha")
    right.set_ylabel("")
    return drawn


def _main_tolerance(times: xr.DataArray) -> float:
    """The tolerance with timings for the most structures (the study's own; the sweep adds a few)."""
    counts = np.isfinite(times).any("step").sum("structure")
    return float(times["potential_tolerance"].values[int(np.argmax(counts.values))])


def _step_colors(steps) -> dict[str, str]:
    return {str(step): "k" if step == "total" else f"C{k % 10}" for k, step in enumerate(steps)}


def plot_runtime_vs_atoms(report: xr.Dataset, fig: Figure) -> bool:
    """Potential build time per step against N at the study's tolerance (left) and against the tolerance (right).

    Left: one line per build step over the structures at the tolerance most structures were
    built with, and the Snakemake wall time of the potential job; colour = step, marker =
    structure. Right: the same steps against the requested tolerance for each structure of the
    accuracy sweep (line style per structure). Legends list steps and structures, not their
    combinations.
    """
    left, right = fig.subplots(1, 2, sharey=True)
    fig.suptitle("Potential build time")
    n_atoms = np.asarray(report["n_atoms"].values, dtype=np.float64)
    has_times = "potential_time" in report and np.isfinite(report["potential_time"].values).any()
    has_wall = "stage_wall_time" in report and "potential" in report["stage"].values
    if not (has_times or has_wall):
        _no_data(left, "no potential timings or benchmarks in the report")
        _no_data(right, "no potential timings in the report")
        return False
    colors = _step_colors(report["step"].values) if has_times else {}
    markers = _structure_markers(report)
    structures = np.asarray([str(sid) for sid in report["structure"].values])
    series = []  # (label, colour, linestyle, width, gid, times per structure)
    if has_times:
        times = report["potential_time"]
        tolerance = _main_tolerance(times)
        for step in report["step"].values:
            ys = np.asarray(times.sel({"potential_tolerance": tolerance, "step": step}).values, dtype=np.float64)
            series.append((str(step), colors[str(step)], "-", 2.0 if step == "total" else 1.2, f"atoms|{step}", ys))
        left.set_title(f"against N at tolerance {_sci(tolerance)}", fontsize=9)
    if has_wall:
        ys = np.asarray(report["stage_wall_time"].sel({"stage": "potential"}).values, dtype=np.float64)
        series.append(("potential job (Snakemake wall time)", "0.5", "--", 1.2, "atoms|snakemake", ys))
    handles, drawn = [], set()
    for label, color, style, width, gid, ys in series:
        keep = _finite(n_atoms, ys, positive=True)
        if not keep.any():
            continue
        order = np.argsort(n_atoms[keep])
        left.plot(n_atoms[keep][order], ys[keep][order], color=color, linestyle=style, linewidth=width, alpha=0.8, gid=gid)
        for sid, x, y in zip(structures[keep], n_atoms[keep], ys[keep]):
            left.plot([x], [y], marker=markers[sid], color=color, linestyle="none")
            drawn.add(sid)
        handles.append(Line2D([], [], color=color, linestyle=style, linewidth=width, label=label))
    if drawn:
        left.set_xscale("log")
        left.set_yscale("log")
        left.set_xlabel("number of atoms N")
        left.set_ylabel("wall-clock time (s)")
        left.grid(True, which="both", alpha=0.3)
        fig.legend(handles=handles, title="step", loc="outside right upper", fontsize=7, title_fontsize=7)
        by_marker = [Line2D([], [], color="0.3", marker=markers[sid], linestyle="none", label=sid) for sid in markers if sid in drawn]
        fig.legend(handles=by_marker, title="structure", loc="outside right lower", fontsize=7, title_fontsize=7)
    else:
        _no_data(left, "potential timings are all missing")
    if not has_times or not _sweep_panel(right, report, colors):
        right.cla()
        _no_data(right, "no structure built at several tolerances")
    return bool(drawn)


def _sweep_panel(ax: Axes, report: xr.Dataset, colors: dict[str, str]) -> bool:
    """Build time per step against the requested tolerance, for structures built at several tolerances."""
    times = report["potential_time"]
    tolerance = np.asarray(report["potential_tolerance"].values, dtype=np.float64)
    swept = [sid for sid in report["structure"].values
             if (np.isfinite(times.sel({"structure": sid}).values).any(axis=-1)).sum() >= 2]
    styles = dict(zip(swept, cycle(_LINESTYLES)))
    for sid in swept:
        for step in report["step"].values:
            ys = np.asarray(times.sel({"structure": sid, "step": step}).values, dtype=np.float64)
            keep = _finite(tolerance, ys, positive=True)
            if keep.any():
                order = np.argsort(tolerance[keep])
                ax.plot(tolerance[keep][order], ys[keep][order], marker="o", color=colors[str(step)],
                        linestyle=styles[sid], linewidth=2.0 if step == "total" else 1.2, gid=f"tolerance|{sid}|{step}")
    if not swept:
        return False
    ax.set_xscale("log")
    ax.invert_xaxis()  # tighter tolerances to the right, as the cost grows
    ax.set_xlabel("requested tolerance")
    ax.set_title("accuracy sweep: against the tolerance", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    if len(swept) > 1:
        handles = [Line2D([], [], color="0.3", linestyle=styles[sid], label=str(sid)) for sid in swept]
        ax.legend(handles=handles, fontsize=7, title="structure", title_fontsize=7)
    else:
        ax.text(0.02, 0.98, f"structure {swept[0]}", transform=ax.transAxes, va="top", fontsize=8)
    return True


_PLOTS: dict[str, tuple[Callable[[xr.Dataset, Figure], bool], tuple[float, float]]] = {
    "runtime_vs_lmax": (plot_runtime_vs_lmax, (7.0, 5.0)),
    "error_vs_tolerance": (plot_error_vs_tolerance, (7.5, 5.0)),
    "ranks_vs_atoms": (plot_ranks_vs_atoms, (10.0, 4.5)),
    "runtime_vs_atoms": (plot_runtime_vs_atoms, (12.0, 4.8)),
}


def draw_figure(report: xr.Dataset, name: str) -> tuple[Figure, bool]:
    """Draw figure ``name`` (one of :data:`FIGURES`) of ``report`` on a new Agg figure.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure, whose artists carry the plotted data (tests read it back).
    has_data : bool
        False when the figure only carries a "no data" note.
    """
    if name not in _PLOTS:
        raise ValueError(f"unknown figure {name!r}; expected one of {', '.join(FIGURES)}")
    plot, size = _PLOTS[name]
    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, plot(report, fig)


def render_png(report: xr.Dataset, name: str, *, dpi: int = 120) -> tuple[bytes, bool]:
    """Draw figure ``name`` (one of :data:`FIGURES`) of ``report``.

    Returns
    -------
    png : bytes
        The PNG file content.
    has_data : bool
        False when the figure only carries a "no data" note.
    """
    fig, has_data = draw_figure(report, name)
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
