"""The tiny test study on a real SLURM cluster, through snakemake-executor-plugin-slurm.

Tests marked `slurm` need a controller that answers `sinfo`; start a one-node cluster on this
machine with `bash scripts/slurm_local.sh start` (root, Debian/Ubuntu; `.ci/run` does it). Without
one they are skipped and say why. Every job goes through `sbatch` with the workflow's SLURM profile;
each costs about 5-10 s of scheduling and status polling, so this module takes a few minutes.

The other tests here need no cluster: they check that the SLURM profile loads and that GPU stages
request a GPU the way the plugin turns into `sbatch --gpus`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import xarray as xr
import yaml

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "profiles" / "slurm"
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile")]
#: Plugin options for a cluster without an accounting database (see scripts/slurm_local.sh):
#: `sacct` would never answer, so poll with squeue; poll early; there are no accounts.
SLURM_TEST_FLAGS = (
    "--slurm-status-command",
    "squeue",
    "--slurm-init-seconds-before-status-checks",
    "5",
    "--slurm-no-account",
)
#: Rules of the workflow, for capping their memory on small CI nodes.
RULES = (
    "ingest",
    "lattice",
    "potential",
    "tensor_products",
    "descriptors",
    "report",
    "study_config",
)
#: Largest memory request of a rule (MB, first attempt); memory every job of the tiny study fits in.
LARGEST_RULE_MEM_MB = 8000
TINY_MEM_MB = 1000
#: Names of variables and attributes that hold timings, dates or host facts, not results.
VOLATILE_MARKERS = ("time", "seconds", "rss", "history", "date", "host", "speed", "flops_per")


# ----------------------------------------------------------------------------------------- helpers


def _slurm_node() -> SimpleNamespace:
    """CPUs and memory (MB) of the first idle SLURM node, or skip with the reason none is usable."""
    if shutil.which("sinfo") is None:
        pytest.skip(
            "no SLURM client (sinfo not found); "
            "start a test cluster: bash scripts/slurm_local.sh start"
        )
    try:
        answer = subprocess.run(
            ["sinfo", "--noheader", "--format=%T %c %m"], capture_output=True, text=True, timeout=20
        )
    except subprocess.TimeoutExpired:
        pytest.skip("no SLURM controller answers (sinfo timed out after 20 s)")
    if answer.returncode != 0:
        pytest.skip(
            f"no SLURM controller answers (sinfo: {' '.join(answer.stderr.split())[:300]}); "
            "start a test cluster: bash scripts/slurm_local.sh start"
        )
    for line in answer.stdout.splitlines():
        state, cpus, mem = line.split()
        if state.startswith(("idle", "mixed")):
            return SimpleNamespace(cpus=int(cpus), mem_mb=int(mem.rstrip("+")))
    pytest.skip(
        f"SLURM answers but no node is idle or mixed (sinfo: {answer.stdout.strip()[:200]})"
    )


@pytest.fixture(scope="module")
def slurm_node() -> SimpleNamespace:
    node = _slurm_node()
    pytest.importorskip("snakemake_executor_plugin_slurm", reason='pip install -e ".[slurm]"')
    return node


def _make_study(root: Path, extra_structures: dict | None = None) -> Path:
    """The .test study in `root` (its own results/), optionally with more structures."""
    config = yaml.safe_load((REPO / ".test" / "config" / "config.yaml").read_text())
    config["structures"].update(extra_structures or {})
    (root / "config").mkdir(parents=True)
    (root / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return root


def _env() -> dict[str, str]:
    """Environment with this interpreter first on PATH, so jobs (sbatch --export=ALL) run it."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _slurm_job_ids(log: str) -> dict[str, list[str]]:
    """Snakemake job id -> SLURM job ids it was submitted as (one per attempt), from the log."""
    submitted: dict[str, list[str]] = {}
    for job, slurm_id in re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", log):
        submitted.setdefault(job, []).append(slurm_id)
    return submitted


def _cluster_job_ids(log: str) -> dict[str, str]:
    """Snakemake job id -> rule, for every job the log shows as a cluster (not local) job."""
    return {
        job: rule
        for rule, job in re.findall(r"^rule (\w+):\n(?:    .*\n)*?    jobid: (\d+)$", log, re.M)
    }


def _scontrol(slurm_id: str) -> dict[str, str]:
    """Fields of `scontrol show job` (kept by the controller for MinJobAge after the job ends)."""
    out = subprocess.run(
        ["scontrol", "--oneliner", "show", "job", slurm_id],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert out.returncode == 0, f"scontrol show job {slurm_id}: {out.stderr}"
    return dict(re.findall(r"(\S+?)=(\S*)", out.stdout))


def _run_slurm(
    workdir: Path, node: SimpleNamespace, *targets: str, timeout: float
) -> tuple[int, str, float]:
    """Run the study with the SLURM profile; return exit status, log and seconds taken."""
    command = [
        *SNAKEMAKE,
        "--directory",
        str(workdir),
        "--workflow-profile",
        str(PROFILE),
        *SLURM_TEST_FLAGS,
        "--max-threads",
        str(node.cpus),
        *targets,
    ]
    if _memory_capped(node):
        # Last: --set-resources takes every following word.
        command += ["--set-resources", *(f"{rule}:mem_mb={TINY_MEM_MB}" for rule in RULES)]
    start = time.monotonic()
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, cwd=workdir, env=_env()
        )
    except subprocess.TimeoutExpired as err:
        log = (err.stdout or b"").decode() + (err.stderr or b"").decode()
        leftover = [i for ids in _slurm_job_ids(log).values() for i in ids]
        if leftover:
            subprocess.run(["scancel", *leftover], capture_output=True, timeout=20)
        pytest.fail(
            f"SLURM run did not finish within {timeout:.0f} s (hang?); log tail:\n{log[-4000:]}"
        )
    return done.returncode, done.stdout + done.stderr, time.monotonic() - start


def _memory_capped(node: SimpleNamespace) -> bool:
    """Whether jobs get TINY_MEM_MB: on nodes too small for the rules' requests and retries."""
    return node.mem_mb < 2 * LARGEST_RULE_MEM_MB


def _is_volatile(name: str) -> bool:
    return any(marker in name.lower() for marker in VOLATILE_MARKERS)


def _stable_value(value):
    """`value` without volatile keys, looking into dicts, lists and JSON-encoded dicts."""
    if isinstance(value, str) and value.startswith("{"):
        try:
            return json.dumps(_stable_value(json.loads(value)), sort_keys=True)
        except ValueError:
            return value
    if isinstance(value, dict):
        return {k: _stable_value(v) for k, v in value.items() if not _is_volatile(str(k))}
    if isinstance(value, list):
        return [_stable_value(v) for v in value]
    return value


def _stable_part(dataset: xr.Dataset) -> xr.Dataset:
    """The dataset without timing variables and attributes (what must not depend on the host)."""
    dataset = dataset.drop_vars([name for name in dataset.variables if _is_volatile(str(name))])
    dataset.attrs = _stable_value(dict(dataset.attrs))
    for variable in dataset.variables.values():
        variable.attrs = _stable_value(dict(variable.attrs))
    return dataset


# ------------------------------------------------------------------------------- no cluster needed


def test_slurm_profile_loads_and_scales_memory_with_attempt(tmp_path):
    """A dry run with the SLURM profile parses every profile key and shows the rules' resources."""
    workdir = _make_study(tmp_path)
    done = subprocess.run(
        [*SNAKEMAKE, "--directory", str(workdir), "--workflow-profile", str(PROFILE), "-n"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=workdir,
        env=_env(),
    )
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-4000:]
    assert "Using workflow specific profile" in log and str(PROFILE) in log
    # First attempt: the rules' base requests (retries double them: mem_mb = base * attempt).
    lattice = re.search(r"rule lattice:\n(?:    .*\n)*?    resources: (.*)", log)
    assert lattice and re.search(r"\bmem_mb=4000\b", lattice.group(1)), log[-4000:]


def test_gpu_stage_requests_gpus_from_slurm(tmp_path):
    """With device cuda, potential asks for gpu=1 and gpu_model, which the plugin maps to --gpus."""
    plugin_utils = pytest.importorskip(
        "snakemake_executor_plugin_slurm.utils", reason='pip install -e ".[slurm]"'
    )
    workdir = _make_study(tmp_path)
    config = yaml.safe_load((workdir / "config" / "config.yaml").read_text())
    config["potential"].update(device="cuda", gpu_model="a100")
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    done = subprocess.run(
        [*SNAKEMAKE, "--directory", str(workdir), "-n", "results/potential/nacl_small.nc"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=workdir,
        env=_env(),
    )
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-4000:]
    block = re.search(r"rule potential:\n(?:    .*\n)*?    resources: (.*)", log)
    assert block, log[-4000:]
    resources = dict(item.split("=", 1) for item in block.group(1).split(", "))
    assert resources["gpu"] == "1" and resources["gpu_model"] == "a100", resources

    class Resources(dict):
        __getattr__ = dict.__getitem__

    job = SimpleNamespace(
        resources=Resources(gpu=int(resources["gpu"]), gpu_model=resources["gpu_model"])
    )
    assert plugin_utils.set_gres_string(job).strip() == "--gpus=a100:1"


# ------------------------------------------------------------------------------ real SLURM cluster


@pytest.mark.slurm
@pytest.mark.workflow
@pytest.mark.slow
def test_study_on_slurm_matches_local_run(slurm_node, tmp_path):
    """Every cluster job of the study goes through sbatch and completes; results equal local."""
    local = _make_study(tmp_path / "local")
    on_slurm = _make_study(tmp_path / "slurm")
    # The local reference runs meanwhile: the SLURM run mostly waits between status checks.
    local_log = tmp_path / "local.log"
    with (
        local_log.open("w") as sink,
        subprocess.Popen(
            [*SNAKEMAKE, "--directory", str(local), "--cores", str(slurm_node.cpus)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            cwd=local,
            env=_env(),
        ) as reference,
    ):
        try:
            status, log, seconds = _run_slurm(on_slurm, slurm_node, timeout=480)
            reference.wait(timeout=480)
        finally:
            reference.kill()
    assert status == 0, log[-6000:]
    assert reference.returncode == 0, local_log.read_text()[-6000:]

    cluster_jobs = _cluster_job_ids(log)
    submitted = _slurm_job_ids(log)
    assert cluster_jobs, log[-4000:]
    not_submitted = set(cluster_jobs) - set(submitted)
    assert not not_submitted and set(submitted) == set(cluster_jobs), not_submitted
    for job, slurm_ids in submitted.items():
        fields = _scontrol(slurm_ids[-1])
        assert fields["JobState"] == "COMPLETED", (cluster_jobs[job], fields)
        assert Path(fields["WorkDir"]).resolve() == on_slurm.resolve(), fields
    print(f"SLURM run: {len(submitted)} jobs through sbatch in {seconds:.0f} s")

    files = sorted(p.relative_to(local) for p in (local / "results").rglob("*.nc"))
    assert files == sorted(p.relative_to(on_slurm) for p in (on_slurm / "results").rglob("*.nc"))
    for name in files:
        with (
            xr.open_dataset(local / name, decode_timedelta=False) as expected,
            xr.open_dataset(on_slurm / name, decode_timedelta=False) as actual,
        ):
            xr.testing.assert_identical(_stable_part(actual.load()), _stable_part(expected.load()))


@pytest.mark.slurm
@pytest.mark.workflow
@pytest.mark.slow
def test_failing_job_on_slurm_exits_nonzero_without_hanging(slurm_node, tmp_path):
    """A structure file that does not exist: the job fails on SLURM, is retried once with twice the
    memory, and Snakemake exits non-zero well within the time limit."""
    workdir = _make_study(tmp_path, {"broken": {"source": str(tmp_path / "missing.pqr")}})
    status, log, seconds = _run_slurm(
        workdir, slurm_node, "results/structures/broken.nc", timeout=240
    )
    assert status != 0, log[-4000:]
    assert "Error in rule ingest" in log, log[-4000:]
    (slurm_ids,) = _slurm_job_ids(log).values()
    assert len(slurm_ids) == 2, f"expected one retry (profile: retries: 1), got {slurm_ids}"
    fields = [_scontrol(i) for i in slurm_ids]
    assert [f["JobState"] for f in fields] == ["FAILED", "FAILED"], fields
    if not _memory_capped(slurm_node):  # the rule's own request, doubled on the retry
        assert [f["MinMemoryNode"] for f in fields] == ["4000M", "8000M"], fields
    assert not (workdir / "results" / "structures" / "broken.nc").exists()
    print(f"failing SLURM run: exit {status} after {seconds:.0f} s")
