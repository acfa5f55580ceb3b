"""Report figures: every PNG is always written, valid, of the requested size, with or without data,
and each draws the report's values (read back from the matplotlib artists)."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from pipeline.reports.datasets import build_report
from pipeline.reports.figures import FIGURES, draw_figure, render_png, write_figures
from tests.reports_study import TP_DEVICES, TP_LMAX, TP_METHODS, TP_PASSES, make_study, tp_time

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from the IHDR chunk, which must follow the signature (PNG spec, section 5.3)."""
    assert data[:8] == PNG_SIGNATURE, "not a PNG signature"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return make_study(tmp_path_factory.mktemp("study"))


@pytest.fixture(scope="module")
def full(study):
    return build_report(**study)


@pytest.fixture(scope="module")
def bare(study):
    return build_report(study["structures"])


def test_all_figures_written_as_png(full, tmp_path):
    written = write_figures(full, tmp_path / "figures")
    assert list(written) == list(FIGURES)
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == sorted(f"{n}.png" for n in FIGURES)
    for name, path in written.items():
        data = path.read_bytes()
        width, height = png_size(data)
        assert width > 300 and height > 300, (name, width, height)
        assert data.endswith(b"IEND\xaeB`\x82"), f"{name}: PNG not terminated"


@pytest.mark.parametrize("name", FIGURES)
def test_figure_has_data_only_when_report_has_it(full, bare, name):
    png_full, has_full = render_png(full, name)
    png_bare, has_bare = render_png(bare, name)
    assert has_full and not has_bare
    assert png_size(png_full) == png_size(png_bare)  # same size, so report pages stay stable
    assert png_full != png_bare


def test_unknown_figure_is_refused(bare):
    with pytest.raises(ValueError, match="unknown figure 'nope'; expected one of runtime_vs_lmax"):
        render_png(bare, "nope")


# --- the data drawn, read back from the matplotlib artists --------------------------------------
# Values of tests/reports_study.py: alpha has 5 atoms, beta 8; at tolerance 1e-4 both have
# potentials (the study's tolerance), at 1e-6 only alpha (its accuracy sweep).


def data_lines(fig, prefix: str) -> dict[str, tuple[list, list]]:
    """{gid suffix: (x, y)} of the lines whose gid starts with ``prefix|``."""
    found = {}
    for ax in fig.axes:
        for line in ax.get_lines():
            gid = line.get_gid() or ""
            if gid.startswith(prefix + "|"):
                found[gid.removeprefix(prefix + "|")] = (list(line.get_xdata()), list(line.get_ydata()))
    return found


def legend_texts(fig) -> list[list[str]]:
    legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend() is not None)]
    return [[t.get_text() for t in legend.get_texts()] for legend in legends]


def test_runtime_vs_atoms_draws_each_step_once_at_the_study_tolerance(full):
    fig, has_data = draw_figure(full, "runtime_vs_atoms")
    assert has_data
    atoms = data_lines(fig, "atoms")
    assert atoms["total"] == ([5.0, 8.0], [2.25, 1.0])  # alpha's total as written, beta's time_total_s
    assert atoms["short_range"] == ([5.0], [0.5])  # beta records no steps
    assert atoms["long_range"] == ([5.0], [1.5])
    assert atoms["snakemake"] == ([5.0, 8.0], [6.5, 2.5])  # benchmarks/potential/<id>.tsv
    time = full["potential_time"].sel({"potential_tolerance": 1e-4})
    for step, (x, y) in atoms.items():
        if step != "snakemake":
            np.testing.assert_array_equal(y, time.sel({"step": step}).dropna("structure").sortby(full["n_atoms"]).values)
    # one legend entry per step and one per structure, not per combination
    assert legend_texts(fig) == [
        ["compress", "long_range", "short_range", "total", "potential job (Snakemake wall time)"], ["alpha", "beta"],
    ]


def test_runtime_vs_atoms_sweep_panel_draws_time_against_tolerance(full):
    fig, _ = draw_figure(full, "runtime_vs_atoms")
    sweep = data_lines(fig, "tolerance")
    assert set(sweep) == {f"alpha|{step}" for step in ("compress", "long_range", "short_range", "total")}
    x, y = sweep["alpha|short_range"]
    assert x == [1e-6, 1e-4] and y == [0.75, 0.5]
    x, y = sweep["alpha|total"]
    assert x == [1e-6, 1e-4] and y == pytest.approx([0.75 + 3.0 + 0.5, 2.25], rel=1e-12)  # 1e-6: the report sums the steps


def test_ranks_vs_atoms_draws_the_mode_range_once_per_potential(full):
    fig, has_data = draw_figure(full, "ranks_vs_atoms")
    assert has_data
    left, right = fig.axes[:2]
    points = {}
    for container in left.containers:
        data, _, (bars,) = container.lines
        (x0, low), (x1, high) = bars.get_segments()[0]
        points[data.get_gid()] = (float(data.get_xdata()[0]), float(data.get_ydata()[0]), low, high)
    # (N, largest rank, smallest rank, top of the bar) per potential file of reports_study.POTENTIALS
    assert points == {
        "ranks|alpha|1e-4": (5.0, 6.0, 4.0, 6.0),
        "ranks|alpha|1e-6": (5.0, 9.0, 7.0, 9.0),
        "ranks|beta|1e-4": (8.0, 3.0, 3.0, 3.0),
    }
    alphas = {c.lines[0].get_gid(): float(c.lines[0].get_xdata()[0]) for c in right.containers}
    assert alphas == {"ranks|alpha|1e-4": 0.31, "ranks|alpha|1e-6": 0.35}  # beta records no alpha
    # two small legends (tolerances, structures), no per-point labels
    assert legend_texts(fig) == [["1e-4", "1e-6"], ["alpha", "beta"]]
    assert not [t for ax in fig.axes for t in ax.texts]


def test_runtime_vs_lmax_draws_the_tensor_product_medians(full):
    fig, _ = draw_figure(full, "runtime_vs_lmax")
    (ax,) = fig.axes
    drawn = {c.get_label(): (list(c.lines[0].get_xdata()), list(c.lines[0].get_ydata())) for c in ax.containers}
    assert len(drawn) == len(TP_METHODS) * len(TP_PASSES) * len(TP_DEVICES)
    for i, method in enumerate(TP_METHODS):
        for k, name in enumerate(TP_PASSES):
            x, y = drawn[f"{method}, {name}, cpu"]
            assert x == TP_LMAX
            assert y == pytest.approx([tp_time(i, lmax, k) for lmax in TP_LMAX], rel=1e-12)


def test_error_vs_tolerance_draws_the_self_check_errors(full):
    fig, has_data = draw_figure(full, "error_vs_tolerance")
    assert has_data
    drawn = {k: sorted(zip(*v)) for k, v in data_lines(fig, "error").items() if k != "diagonal"}
    shift = 10.0**0.1  # alpha and beta share tolerance 1e-4, so their points are spread by ±0.1 decade
    expected = {  # reports_study.POTENTIALS
        "alpha|max, atoms": [(1e-6, 2.5e-6), (1e-4 / shift, 3.5e-5)],
        "alpha|RMS, atoms": [(1e-6, 7.5e-7), (1e-4 / shift, 1.25e-5)],
        "alpha|max, points": [(1e-6, 4.0e-6)],
        "beta|max, atoms": [(1e-4 * shift, 8.0e-5)],
        "beta|RMS, atoms": [(1e-4 * shift, 2.0e-5)],
    }
    assert set(drawn) == set(expected)
    for key, points in expected.items():
        np.testing.assert_allclose(drawn[key], points, rtol=1e-12, err_msg=key)
    assert legend_texts(fig) == [["alpha", "beta"], ["max, atoms", "RMS, atoms", "max, points", "error = tolerance"]]
