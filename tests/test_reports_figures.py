"""Report figures: every PNG is always written, valid, of the requested size, with or without data."""

from __future__ import annotations

import struct

import pytest

from pipeline.reports.datasets import build_report
from pipeline.reports.figures import FIGURES, render_png, write_figures
from tests.reports_study import make_study

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
