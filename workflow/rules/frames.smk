# Potential of every selected frame of the structures that have a `trajectory`. A trajectory with
# frames.frames_per_job = 0 runs in one job (potential_frames); otherwise its selection is split
# into blocks of that many frames, one job each (potential_frames_block), joined in frame order by
# potential_frames_gather, which checks that every frame is present exactly once. Blocks are
# ordinary outputs written atomically, so a killed run keeps the finished ones.


rule potential_frames:
    input:
        structure=result("structures/{structure}.nc"),
        kernels=result(".kernels_compiled"),
    output:
        result("frames/{structure}.nc"),
    log:
        log_path("potential_frames"),
    benchmark:
        benchmark_path("potential_frames")
    wildcard_constraints:
        structure=id_constraint(
            [sid for sid in TRAJECTORY_IDS if FRAME_BLOCKS[sid] == 1]
        ),
    conda:
        conda_env(POTENTIAL["device"])
    threads: frames_threads
    resources:
        **gpu_resources(POTENTIAL["device"]),
        mem_mb=lambda wildcards, attempt: POTENTIAL["mem_mb"] * attempt,
        runtime=240,
    params:
        options=frames_args,
    shell:
        "NUMBA_NUM_THREADS={threads} python -m pipeline potential-frames {input.structure:q} -o {output:q} "
        "{params.options} > {log:q} 2>&1"


use rule potential_frames as potential_frames_block with:
    output:
        temp(result("frames/blocks/{structure}/block_{block}.nc")),
    log:
        log_path("potential_frames_block", "{structure}/block_{block}"),
    benchmark:
        benchmark_path("potential_frames_block", "{structure}/block_{block}")
    wildcard_constraints:
        structure=id_constraint(
            [sid for sid in TRAJECTORY_IDS if FRAME_BLOCKS[sid] > 1]
        ),
        block=r"\d+",
    params:
        options=lambda wildcards: f"{frames_args(wildcards)} --block {wildcards.block} --blocks {FRAME_BLOCKS[wildcards.structure]}",


rule potential_frames_gather:
    input:
        frame_block_files,
    output:
        result("frames/{structure}.nc"),
    log:
        log_path("potential_frames_gather"),
    benchmark:
        benchmark_path("potential_frames_gather")
    wildcard_constraints:
        structure=id_constraint(
            [sid for sid in TRAJECTORY_IDS if FRAME_BLOCKS[sid] > 1]
        ),
    conda:
        "../../envs/pipeline.yaml"
    resources:
        mem_mb=lambda wildcards, attempt: 4000 * attempt,
        runtime=30,
    shell:
        "python -m pipeline potential-frames-gather {input:q} -o {output:q} > {log:q} 2>&1"


rule descriptors_frames:
    input:
        structure=result("structures/{structure}.nc"),
        kernels=result(".kernels_compiled"),
    output:
        result("descriptors/frames/{structure}.nc"),
    log:
        log_path("descriptors_frames"),
    benchmark:
        benchmark_path("descriptors_frames")
    conda:
        "../../envs/pipeline.yaml"
    threads: frames_threads
    resources:
        mem_mb=lambda wildcards, attempt: 8000 * attempt,
        runtime=120,
    params:
        options=descriptors_frames_args,
    shell:
        "NUMBA_NUM_THREADS={threads} python -m pipeline descriptors-frames {input.structure:q} -o {output:q} "
        "{params.options} > {log:q} 2>&1"
