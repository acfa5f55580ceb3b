# Configuration validation and input functions shared by every rule file.

import json
import os
import re
import shlex

from snakemake.utils import validate

validate(config, schema="../schemas/config.schema.yaml")

# Every job runs this workflow's own `pipeline` package: the folder of the Snakefile goes first on
# PYTHONPATH, and the active environment provides the dependencies (the virtual environment, or the
# rule's conda env with `--software-deployment-method conda`: envs/*.yaml install the dependencies,
# not the package). So `python -m pipeline` works from any `--directory` in both routes.
# shell.prefix replaces Snakemake's default prefix (set -euo pipefail) and formats its argument,
# so the braces of the shell expansion are doubled.
WORKFLOW_DIR = (
    shlex.quote(os.path.abspath(workflow.basedir)).replace("{", "{{").replace("}", "}}")
)
shell.prefix(
    "set -euo pipefail; "
    f"export PYTHONPATH={WORKFLOW_DIR}${{{{PYTHONPATH:+:$PYTHONPATH}}}}; "
)

RESULTS = config["results_dir"]
STRUCTURES = config["structures"]
SOURCE_IDS = sorted(sid for sid, spec in STRUCTURES.items() if "source" in spec)
LATTICE_IDS = sorted(sid for sid, spec in STRUCTURES.items() if "lattice" in spec)


def id_constraint(ids):
    """Regular expression matching exactly the given structure ids (nothing if empty)."""
    return "|".join(re.escape(sid) for sid in ids) if ids else "(?!)"


def result(path):
    """Path under the results folder."""
    return f"{RESULTS}/{path}"


def log_path(rule_name, stem="{structure}"):
    return f"{RESULTS}/logs/{rule_name}/{stem}.log"


def benchmark_path(rule_name, stem="{structure}"):
    return f"{RESULTS}/benchmarks/{rule_name}/{stem}.tsv"


def ingest_args(wildcards):
    """Command-line options of `pipeline ingest` for one structure of the config."""
    spec = STRUCTURES[wildcards.structure]
    args = [f"--id {wildcards.structure}"]
    if spec.get("coordinates"):
        args.append(f"--coordinates {spec['coordinates']}")
    if spec.get("forcefield"):
        args.append(f"--forcefield {spec['forcefield']}")
    if spec.get("format"):
        args.append(f"--format {spec['format']}")
    if spec.get("ph") is not None:
        args.append(f"--ph {spec['ph']}")
    if spec.get("ffout"):
        args.append(f"--ffout {spec['ffout']}")
    if spec.get("pqr"):
        pqr = result(f"structures/{wildcards.structure}.pqr")
        args.append(f"--pqr {pqr}")
    return " ".join(args)


def lattice_args(wildcards):
    """Command-line options of `pipeline lattice` for one lattice of the config."""
    spec = STRUCTURES[wildcards.structure]["lattice"]
    args = [
        f"--id {wildcards.structure}",
        f"--type {spec['type']}",
        f"--cells {spec['cells']}",
        f"--lattice-constant {spec['lattice_constant']}",
        f"--seed {spec.get('seed', 0)}",
    ]
    if spec.get("vacancy_fraction"):
        args.append(f"--vacancy-fraction {spec['vacancy_fraction']}")
    if spec.get("impurity_fraction"):
        args.append(
            f"--impurity-fraction {spec['impurity_fraction']} --impurity-charge {spec['impurity_charge']}"
        )
    if spec.get("periodic"):
        args.append("--periodic")
    if spec.get("cell", "conventional") != "conventional":
        args.append(f"--cell {spec['cell']}")
    if spec["type"] in ("evjen_cscl", "evjen_zincblende"):
        args.append(f"--termination {spec.get('termination', 'mixed')}")
    return " ".join(args)


def structure_files():
    return expand(result("structures/{structure}.nc"), structure=sorted(STRUCTURES))


def all_targets():
    """Every file the default target `all` asks for."""
    return [result("report.nc"), *map_files()]


def conda_env(device):
    """Conda environment file for `device`, relative to workflow/rules/; the GPU env for cuda."""
    return "../../envs/gpu.yaml" if device == "cuda" else "../../envs/pipeline.yaml"


POTENTIAL = config["potential"]
TENSOR_PRODUCTS = config["tensor_products"]
DESCRIPTORS = config["descriptors"]


#: Options of `pipeline potential` that fix the build plan: every job of one structure's potential
#: (potential, potential_chunk, potential_gather) passes the same. Keys of the merged settings.
POTENTIAL_PLAN_OPTIONS = (
    "tolerance",
    "device",
    "split",
    "alpha",
    "cutoff",
    "degree",
    "dielectric",
    "ionic_strength",
    "temperature",
    "periodic",
)
#: Options of the finishing step (self-check and storage): config key and command-line flag.
POTENTIAL_FINISH_OPTIONS = {
    "self_check": "--self-check",
    "seed": "--seed",
    "max_storage_bytes": "--max-storage",
}


def potential_settings(structure, tolerance=None):
    """Potential settings of one structure: the study-wide `potential:` section merged with the
    structure's own `potential:` overrides (the schema lists the keys a structure may replace).

    `tolerance` (the accuracy sweep's) replaces both. YAML reads an unquoted on or off as true or
    false; they become the `periodic` choices on and off.
    """
    settings = {**POTENTIAL, **STRUCTURES[structure].get("potential", {})}
    if tolerance is not None:
        settings["tolerance"] = tolerance
    if isinstance(settings["periodic"], bool):
        settings["periodic"] = "on" if settings["periodic"] else "off"
    return settings


def potential_plan_args(wildcards):
    """Plan options (POTENTIAL_PLAN_OPTIONS) of the structure `wildcards.structure`, at the
    accuracy sweep's `wildcards.tolerance` where the rule has that wildcard."""
    settings = potential_settings(
        wildcards.structure, getattr(wildcards, "tolerance", None)
    )
    return " ".join(
        f"--{key.replace('_', '-')} {settings[key]}"
        for key in POTENTIAL_PLAN_OPTIONS
        if settings.get(key) is not None
    )


def potential_args(wildcards):
    """Command-line options of `pipeline potential` (and `potential-gather`) for one structure."""
    finish = " ".join(
        f"{flag} {POTENTIAL[key]}" for key, flag in POTENTIAL_FINISH_OPTIONS.items()
    )
    return f"{potential_plan_args(wildcards)} {finish}"


def accuracy_files():
    """Potentials of the accuracy sweep, one per (structure, tolerance) other than the structure's own tolerance."""
    ids = known_ids(config["accuracy"]["structures"], "accuracy.structures")
    return [
        result(f"accuracy/{sid}/tol_{float(t):g}.nc")
        for sid in ids
        for t in config["accuracy"]["tolerances"]
        if float(t) != float(potential_settings(sid)["tolerance"])
    ]


def potential_chunk_files(wildcards):
    """Chunk files of the scatter-gather build of one structure (`potential.chunks` > 1)."""
    return expand(
        result("potential/chunks/{structure}/chunk_{chunk}.nc"),
        structure=wildcards.structure,
        chunk=range(POTENTIAL["chunks"]),
    )


def gpu_resources(device):
    """Scheduler resources of a stage on `device`: one GPU (and its model if configured) for cuda."""
    if device != "cuda":
        return {}
    resources = {"gpu": 1}
    if POTENTIAL.get("gpu_model"):
        resources["gpu_model"] = POTENTIAL["gpu_model"]
    return resources


def thread_env(wildcards, threads):
    """Environment prefix of a job's shell command that sizes numba's thread pool (the compiled
    short range) to the job's threads; Snakemake itself sets OMP_NUM_THREADS, OPENBLAS_NUM_THREADS
    and MKL_NUM_THREADS for every shell command."""
    return f"NUMBA_NUM_THREADS={threads}"


def potential_resources():
    """Scheduler resources of every potential job: memory (times the attempt), runtime (min), GPU on cuda."""
    return {
        "mem_mb": lambda wildcards, attempt: POTENTIAL["mem_mb"] * attempt,
        "runtime": 60,
        **gpu_resources(POTENTIAL["device"]),
    }


def tensor_products_args():
    """Command-line options of `pipeline tensor-products` from the config."""
    tp = TENSOR_PRODUCTS
    lmax = " ".join(str(l) for l in tp["lmax"])
    return (
        f"--lmax {lmax} --batch {tp['batch']} --channels {tp['channels']} "
        f"--repeats {tp['repeats']} --dtype {tp['dtype']} --device {tp['device']}"
    )


def known_ids(ids, key):
    """`ids` after checking that each is a structure of the study; `key` names the config field."""
    unknown = sorted(set(ids) - set(STRUCTURES))
    if unknown:
        raise ValueError(
            f"config: {key} names unknown structure id(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(STRUCTURES))}"
        )
    return list(ids)


def descriptor_ids():
    """Structure ids that get descriptors; each must be a structure of the study."""
    return known_ids(DESCRIPTORS["structures"], "descriptors.structures")


MAPS = config["maps"]


def map_ids():
    """Structure ids that get a potential map; each must be a structure of the study."""
    return known_ids(MAPS["structures"], "maps.structures")


def map_files():
    """Map files of the study: netCDF, and OpenDX with `maps.dx`."""
    files = expand(result("maps/{structure}.nc"), structure=map_ids())
    if MAPS["dx"]:
        files += expand(result("maps/{structure}.dx"), structure=map_ids())
    return files


def map_outputs():
    """Named outputs of the `map` rule (the netCDF map, and the OpenDX map with `maps.dx`)."""
    outputs = {"nc": result("maps/{structure}.nc")}
    if MAPS["dx"]:
        outputs["dx"] = result("maps/{structure}.dx")
    return outputs


def map_args(wildcards, output):
    """Command-line options of `pipeline evaluate` for a map from the config."""
    m = MAPS
    args = [f"--spacing {m['spacing']}" if m.get("spacing") else f"--grid {m['grid']}"]
    args.append(f"--units {shlex.quote(m['units'])} --device {m['device']}")
    if m.get("padding") is not None:
        args.append(f"--padding {m['padding']}")
    if m["field"]:
        args.append("--field")
    if m["dx"]:
        args.append(f"--dx {shlex.quote(output.dx)}")
    return " ".join(args)


def descriptors_args():
    d = DESCRIPTORS
    return (
        f"--lmax {d['lmax']} --cutoff {d['cutoff']} --n-radial {d['n_radial']} "
        f"--sphere-radius {d['sphere_radius']} --device {d['device']}"
    )


# Structure sets: one structure per file of each `structure_sets` glob. A member whose ingest ran
# and failed (no record, an ingest log newer than its file) is left out of the study; the report
# lists it as missing with the log's error line.

from pipeline.structures.sets import expand_structure_sets, failed_members

SET_MEMBERS = expand_structure_sets(
    config.get("structure_sets", {}), config["structures"]
)
FAILED_SET_MEMBERS = failed_members(
    SET_MEMBERS,
    record_path=lambda sid: result(f"structures/{sid}.nc"),
    log_path=lambda sid: log_path("ingest", sid),
)
EXPECTED_IDS = sorted({**config["structures"], **SET_MEMBERS})
STRUCTURES = {
    **config["structures"],
    **{sid: spec for sid, spec in SET_MEMBERS.items() if sid not in FAILED_SET_MEMBERS},
}
SOURCE_IDS = sorted(sid for sid, spec in STRUCTURES.items() if "source" in spec)


def missing_args():
    """Options of `pipeline report` naming the expected structures and the failure logs of the missing ones."""
    if not SET_MEMBERS:
        return ""
    logs = " ".join(log_path("ingest", sid) for sid in sorted(FAILED_SET_MEMBERS))
    return f"--expected-structures {' '.join(EXPECTED_IDS)}" + (
        f" --failures {logs}" if logs else ""
    )


# Trajectories: structures with a `trajectory` get the potential of every selected frame
# (workflow/rules/frames.smk), in blocks of `frames.frames_per_job` frames.

TRAJECTORY_IDS = sorted(
    sid for sid, spec in STRUCTURES.items() if spec.get("trajectory")
)


def frame_selection(structure):
    """(start, stop, step) of a trajectory structure; stop None means the end of the trajectory."""
    frames = STRUCTURES[structure].get("frames", {})
    return frames.get("start", 0), frames.get("stop"), frames.get("step", 1)


def frame_blocks(structure):
    """Number of frame blocks (jobs) of a trajectory structure; reads the trajectory length only when `stop` is null."""
    spec = STRUCTURES[structure]
    per_job = spec.get("frames", {}).get("frames_per_job", 0)
    if not per_job:
        return 1
    start, stop, step = frame_selection(structure)
    if stop is None:
        from pipeline.structures.trajectory import count_frames

        stop = count_frames(
            spec["source"],
            spec["trajectory"],
            trajectory_format=spec.get("trajectory_format"),
        )
    selected = len(range(start, stop, step))
    if selected == 0:
        raise ValueError(
            f"config: structures.{structure}.frames selects no frame ({start}:{stop}:{step})"
        )
    return -(-selected // per_job)


def frames_args(wildcards):
    """Options of `pipeline potential-frames` for one trajectory structure (without --block/--blocks)."""
    spec = STRUCTURES[wildcards.structure]
    start, stop, step = frame_selection(wildcards.structure)
    args = [
        f"--trajectory {spec['trajectory']}",
        f"--topology {spec['source']}",
        f"--frames {start}:{'' if stop is None else stop}:{step}",
    ]
    if spec.get("trajectory_format"):
        args.append(f"--trajectory-format {spec['trajectory_format']}")
    self_check = spec.get("frames", {}).get("self_check")
    options = potential_args(wildcards)
    if self_check is not None:
        options = re.sub(r"--self-check \d+", f"--self-check {self_check}", options)
    return f"{' '.join(args)} {options}"


FRAME_BLOCKS = {sid: frame_blocks(sid) for sid in TRAJECTORY_IDS}


def frames_threads(wildcards):
    """Threads of a frames job: `frames.threads` of the structure, else `potential.threads`."""
    threads = STRUCTURES[wildcards.structure].get("frames", {}).get("threads")
    return POTENTIAL["threads"] if threads is None else threads


def frame_block_files(wildcards):
    """Block files of one trajectory structure, in block order."""
    return expand(
        result("frames/blocks/{structure}/block_{block}.nc"),
        structure=wildcards.structure,
        block=range(FRAME_BLOCKS[wildcards.structure]),
    )


def frames_files():
    """The frames file of every trajectory structure."""
    return expand(result("frames/{structure}.nc"), structure=TRAJECTORY_IDS)


def descriptor_frame_ids():
    """Trajectory structures whose frames get descriptors (`descriptors.frames.structures`)."""
    ids = known_ids(
        DESCRIPTORS.get("frames", {}).get("structures", []),
        "descriptors.frames.structures",
    )
    missing = [sid for sid in ids if sid not in TRAJECTORY_IDS]
    if missing:
        raise ValueError(
            f"config: descriptors.frames.structures names structure(s) without a trajectory: {', '.join(missing)}"
        )
    return ids


def descriptors_frames_args(wildcards):
    """Options of `pipeline descriptors-frames` for one trajectory structure."""
    spec = STRUCTURES[wildcards.structure]
    frames = DESCRIPTORS.get("frames", {})
    stop = frames.get("stop")
    d = DESCRIPTORS
    return (
        f"--trajectory {spec['trajectory']} --topology {spec['source']} "
        f"--frames {frames.get('start', 0)}:{'' if stop is None else stop}:{frames.get('step', 1)} "
        f"--lmax {d['lmax']} --density-cutoff {d['cutoff']} --n-radial {d['n_radial']} "
        f"--sphere-radius {d['sphere_radius']} {potential_args(wildcards)}"
    )


def descriptor_frames_files():
    return expand(
        result("descriptors/frames/{structure}.nc"), structure=descriptor_frame_ids()
    )
