"""``python -m pipeline compile``: compiles (or loads) every Numba kernel and writes its stamp atomically."""

from __future__ import annotations

import subprocess
import sys


def test_compile_writes_the_stamp_with_the_kernels_it_readied(tmp_path):
    stamp = tmp_path / "sub" / ".kernels_compiled"
    done = subprocess.run([sys.executable, "-m", "pipeline", "compile", "--stamp", str(stamp)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    fields = dict(line.split() for line in stamp.read_text().splitlines())
    # short range (targets, pair-once), its map kernel, spreading, interpolation, direct sums
    assert int(fields["kernels"]) >= 6 and float(fields["seconds"]) > 0
    assert [p.name for p in stamp.parent.iterdir()] == [stamp.name]  # no temporary left
