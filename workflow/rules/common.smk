# Configuration validation and input functions shared by every rule file.

import json
import re

from snakemake.utils import validate


validate(config, schema="../schemas/config.schema.yaml")

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
        args.append(f"--impurity-fraction {spec['impurity_fraction']} --impurity-charge {spec['impurity_charge']}")
    return " ".join(args)


def structure_files():
    return expand(result("structures/{structure}.nc"), structure=sorted(STRUCTURES))


def all_targets():
    """Every file the default target `all` asks for."""
    return [result("report.nc")]


POTENTIAL = config["potential"]
TENSOR_PRODUCTS = config["tensor_products"]
DESCRIPTORS = config["descriptors"]


def potential_plan_args(tolerance=None):
    """Options that fix the build plan: the same for `potential`, `potential-chunk` and `potential-gather`.

    `tolerance` replaces `potential.tolerance` (accuracy sweep).
    """
    args = [
        f"--tolerance {POTENTIAL['tolerance'] if tolerance is None else tolerance}",
        f"--device {POTENTIAL['device']}",
        f"--split {POTENTIAL['split']}",
    ]
    for key in ("alpha", "cutoff", "degree"):
        if POTENTIAL.get(key) is not None:
            args.append(f"--{key} {POTENTIAL[key]}")
    return " ".join(args)


def potential_args(tolerance=None):
    """Command-line options of `pipeline potential` (and `potential-gather`) from the config."""
    return (f"{potential_plan_args(tolerance)} --self-check {POTENTIAL['self_check']} --seed {POTENTIAL['seed']} "
            f"--max-storage {POTENTIAL['max_storage_bytes']}")


def accuracy_files():
    """Potentials of the accuracy sweep, one per (structure, tolerance) other than the main tolerance."""
    ids = known_ids(config["accuracy"]["structures"], "accuracy.structures")
    tolerances = [t for t in config["accuracy"]["tolerances"] if float(t) != float(POTENTIAL["tolerance"])]
    return expand(
        result("accuracy/{structure}/tol_{tolerance}.nc"),
        structure=ids,
        tolerance=[format(float(t), "g") for t in tolerances],
    )


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


def descriptors_args():
    d = DESCRIPTORS
    return (
        f"--lmax {d['lmax']} --cutoff {d['cutoff']} --n-radial {d['n_radial']} "
        f"--sphere-radius {d['sphere_radius']}"
    )


# Structure sets: one structure per file of each `structure_sets` glob. A member whose ingest ran
# and failed (no record, an ingest log newer than its file) is left out of the study; the report
# lists it as missing with the log's error line.

from pipeline.structures.sets import expand_structure_sets, failed_members

SET_MEMBERS = expand_structure_sets(config.get("structure_sets", {}), config["structures"])
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
    return f"--expected-structures {' '.join(EXPECTED_IDS)}" + (f" --failures {logs}" if logs else "")


# Trajectories: structures with a `trajectory` get the potential of every selected frame
# (workflow/rules/frames.smk), in blocks of `frames.frames_per_job` frames.

TRAJECTORY_IDS = sorted(sid for sid, spec in STRUCTURES.items() if spec.get("trajectory"))


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

        stop = count_frames(spec["source"], spec["trajectory"], trajectory_format=spec.get("trajectory_format"))
    selected = len(range(start, stop, step))
    if selected == 0:
        raise ValueError(f"config: structures.{structure}.frames selects no frame ({start}:{stop}:{step})")
    return -(-selected // per_job)


def frames_args(wildcards):
    """Options of `pipeline potential-frames` for one trajectory structure (without --block/--blocks)."""
    spec = STRUCTURES[wildcards.structure]
    start, stop, step = frame_selection(wildcards.structure)
    args = [f"--trajectory {spec['trajectory']}", f"--topology {spec['source']}",
            f"--frames {start}:{'' if stop is None else stop}:{step}"]
    if spec.get("trajectory_format"):
        args.append(f"--trajectory-format {spec['trajectory_format']}")
    self_check = spec.get("frames", {}).get("self_check")
    options = potential_args()
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
    ids = known_ids(DESCRIPTORS.get("frames", {}).get("structures", []), "descriptors.frames.structures")
    missing = [sid for sid in ids if sid not in TRAJECTORY_IDS]
    if missing:
        raise ValueError(f"config: descriptors.frames.structures names structure(s) without a trajectory: {', '.join(missing)}")
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
        f"--sphere-radius {d['sphere_radius']} {potential_args()}"
    )


def descriptor_frames_files():
    return expand(result("descriptors/frames/{structure}.nc"), structure=descriptor_frame_ids())
