"""Figures of the trajectory part of a report (:mod:`pipeline.reports.frames`), always written.

===================  ============================================================================
name                 content
===================  ============================================================================
energy_vs_time       electrostatic energy of every frame against simulation time, one line per
                     trajectory
frame_runtime        wall time of every frame (build, atom values, self-check) against the frame
                     position in the job's selection, one line per trajectory
residue_potential    per-residue potential, mean over frames with ± one standard deviation band,
                     against the residue number, one panel row per trajectory
===================  ============================================================================

Like :mod:`pipeline.reports.figures`, a figure without data shows a "no data" note, so the
workflow's outputs do not depend on whether a study has trajectories.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import xarray as xr
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from pipeline.storage import atomic_write_bytes

log = logging.getLogger(__name__)

#: File stems of the trajectory figures.
FRAME_FIGURES = ("energy_vs_time", "frame_runtime", "residue_potential")


def _no_data(ax, what: str) -> None:
    ax.text(0.5, 0.5, f"no data:\n{what}", ha="center", va="center", transform=ax.transAxes, fontsize=11, color="0.35")
    ax.set_xticks([])
    ax.set_yticks([])


def _has_frames(report: xr.Dataset) -> bool:
    return "trajectory_energy" in report and report.sizes.get("trajectory", 0) > 0


def plot_energy_vs_time(report: xr.Dataset, fig: Figure) -> bool:
    ax = fig.add_subplot()
    if not _has_frames(report):
        _no_data(ax, "no trajectory in the study")
        return False
    for i, sid in enumerate(report["trajectory"].values):
        t, e = report["trajectory_time"].values[i], report["trajectory_energy"].values[i]
        keep = np.isfinite(t) & np.isfinite(e)
        ax.plot(t[keep], e[keep], marker=".", label=str(sid))
    ax.set_xlabel("time (ps)")
    ax.set_ylabel("electrostatic energy (e²/Å)")
    ax.set_title("Energy against time")
    ax.legend(fontsize=8)
    return True


def plot_frame_runtime(report: xr.Dataset, fig: Figure) -> bool:
    ax = fig.add_subplot()
    if not _has_frames(report):
        _no_data(ax, "no trajectory in the study")
        return False
    for i, sid in enumerate(report["trajectory"].values):
        r = report["trajectory_runtime"].values[i]
        r = r[np.isfinite(r)]
        ax.plot(np.arange(r.size), r, marker=".", label=f"{sid} (median {np.median(r):.2f} s)")
    ax.set_xlabel("frame (position in the selection)")
    ax.set_ylabel("wall time per frame (s)")
    ax.set_yscale("log")
    ax.set_title("Per-frame runtime (the first frame of each job also loads the compiled kernels)")
    ax.legend(fontsize=8)
    return True


def plot_residue_potential(report: xr.Dataset, fig: Figure) -> bool:
    if not _has_frames(report):
        _no_data(fig.add_subplot(), "no trajectory in the study")
        return False
    ids = report["trajectory"].values
    axes = fig.subplots(len(ids), 1, squeeze=False)[:, 0]
    for ax, i in zip(axes, range(len(ids))):
        rid = report["trajectory_residue_id"].values[i]
        mean = report["trajectory_residue_potential_mean"].values[i]
        std = report["trajectory_residue_potential_std"].values[i]
        keep = rid >= 0
        x = np.arange(int(keep.sum()))
        ax.plot(x, mean[keep], lw=1, label="mean over frames")
        ax.fill_between(x, mean[keep] - std[keep], mean[keep] + std[keep], alpha=0.35, label="± 1 std")
        ax.set_ylabel("potential (e/Å)")
        ax.set_title(f"{ids[i]}: per-residue potential over frames")
        ticks = x[:: max(1, x.size // 12)]
        ax.set_xticks(ticks, [str(v) for v in rid[keep][ticks]])
        ax.legend(fontsize=8)
    axes[-1].set_xlabel("residue number")
    return True


_PLOTS = {
    "energy_vs_time": (plot_energy_vs_time, (7.0, 4.5)),
    "frame_runtime": (plot_frame_runtime, (7.0, 4.5)),
    "residue_potential": (plot_residue_potential, (10.0, 4.0)),
}


def write_frames_figures(report: xr.Dataset, directory: str | os.PathLike) -> dict[str, Path]:
    """Write every figure of :data:`FRAME_FIGURES` as ``<directory>/<name>.png``, atomically."""
    import io

    directory = Path(directory)
    written = {}
    for name in FRAME_FIGURES:
        plot, (width, height) = _PLOTS[name]
        rows = report.sizes.get("trajectory", 1) if name == "residue_potential" else 1
        fig = Figure(figsize=(width, height * max(rows, 1)), layout="constrained")
        FigureCanvasAgg(fig)
        has_data = plot(report, fig)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=120, metadata={"Software": None})
        written[name] = atomic_write_bytes(directory / f"{name}.png", buffer.getvalue())
        log.info("figure %s: %s", written[name], "data" if has_data else "no data")
    return written
