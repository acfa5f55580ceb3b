"""Read the runtime and memory records Snakemake writes for rules with a ``benchmark:`` entry.

Snakemake writes one tab-separated file per job with a header line and one row per repeat.
The columns used here are ``s`` (wall-clock seconds) and ``max_rss`` (maximum resident set
size, which Snakemake computes as bytes / 1024², i.e. MiB, and documents as "MB"). Values
Snakemake could not measure are written as ``NA`` or ``-`` and become NaN. The workflow
stores the files as ``<benchmarks_dir>/<rule>/<target>.tsv`` where ``<target>`` is a
structure id for per-structure rules.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

#: Columns every benchmark file must have.
REQUIRED_COLUMNS = ("s", "max_rss")


@dataclass(frozen=True)
class BenchmarkRecord:
    """Runtime and memory of one Snakemake job.

    Attributes
    ----------
    rule : str
        Rule name (first folder below the benchmarks folder).
    target : str
        File stem below the rule folder, e.g. the structure id.
    wall_s : float
        Median wall-clock time over the repeats, s (NaN when not measured).
    max_rss_mib : float
        Largest resident set size over the repeats, MiB (NaN when not measured).
    path : str
        The file read.
    """

    rule: str
    target: str
    wall_s: float
    max_rss_mib: float
    path: str


def _number(text: str) -> float:
    text = text.strip()
    if text in ("", "NA", "-"):
        return math.nan
    return float(text)


def read_benchmark_tsv(path: str | os.PathLike, *, rule: str = "", target: str = "") -> BenchmarkRecord:
    """Read one Snakemake benchmark file.

    Parameters
    ----------
    path : path-like
        A TSV file with the header Snakemake writes (``s``, ``h:m:s``, ``max_rss``, ...).
    rule, target : str
        Labels stored in the record.

    Returns
    -------
    BenchmarkRecord
        Median of ``s`` and maximum of ``max_rss`` over the data rows.

    Raises
    ------
    ValueError
        When the header lacks ``s`` or ``max_rss``, a row has the wrong number of fields or
        a value is not a number, naming the file, line and column.
    """
    path = Path(path)
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    if not lines:
        raise ValueError(f"{path}: empty benchmark file, expected a header line with columns {', '.join(REQUIRED_COLUMNS)}")
    header = lines[0].split("\t")
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        raise ValueError(
            f"{path}: benchmark header lacks column(s) {', '.join(missing)}; got {', '.join(header)}"
        )
    columns = {name: header.index(name) for name in REQUIRED_COLUMNS}
    walls, rss = [], []
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        if len(fields) != len(header):
            raise ValueError(f"{path}:{number}: expected {len(header)} tab-separated fields, got {len(fields)}")
        try:
            walls.append(_number(fields[columns["s"]]))
            rss.append(_number(fields[columns["max_rss"]]))
        except ValueError:
            raise ValueError(
                f"{path}:{number}: 's' and 'max_rss' must be numbers or NA, got "
                f"{fields[columns['s']]!r} and {fields[columns['max_rss']]!r}"
            ) from None
    wall = float(np.nanmedian(walls)) if walls and not np.all(np.isnan(walls)) else math.nan
    peak = float(np.nanmax(rss)) if rss and not np.all(np.isnan(rss)) else math.nan
    return BenchmarkRecord(rule=rule, target=target, wall_s=wall, max_rss_mib=peak, path=str(path))


def collect_benchmarks(directory: str | os.PathLike) -> list[BenchmarkRecord]:
    """Read every ``<rule>/<target>.tsv`` file below ``directory``, sorted by rule then target.

    Files deeper than one folder keep the rest of their relative path (without ``.tsv``) as
    target; files directly in ``directory`` get the rule name ``""``.

    Raises
    ------
    FileNotFoundError
        When ``directory`` does not exist or is not a folder.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: benchmarks folder does not exist")
    records = []
    for path in sorted(directory.rglob("*.tsv")):
        parts = path.relative_to(directory).with_suffix("").parts
        rule, target = (parts[0], "/".join(parts[1:])) if len(parts) > 1 else ("", parts[0])
        records.append(read_benchmark_tsv(path, rule=rule, target=target))
    log.info("benchmarks: %d file(s) from %s", len(records), directory)
    return records
