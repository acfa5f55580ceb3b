"""Running ``python -m pipeline`` from tests, and the shape of a refusal (shared by the CLI tests)."""

from __future__ import annotations

import subprocess
import sys


def run_pipeline(*args: str, cwd, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m pipeline ARGS`` in ``cwd`` with this interpreter; stdout and stderr captured."""
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def assert_refused(res: subprocess.CompletedProcess, *needles: str) -> None:
    """Exit status 1 and a last stderr line ``error: ...`` holding every needle, without a traceback."""
    assert res.returncode == 1, res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "Traceback" not in res.stderr
    for needle in needles:
        assert needle in last, last
