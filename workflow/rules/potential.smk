# Range-separated Chebyshev–Tucker potential of each structure, with its self-check.
# potential.chunks = 1: one job per structure (rule potential). chunks > 1: scatter-gather, the
# long-range coefficients of each atom chunk in its own job (potential_chunk), summed, compressed
# and checked by potential_gather, which writes the same file. potential_accuracy builds the extra
# potentials of the accuracy sweep (config section `accuracy`).


if POTENTIAL["chunks"] == 1:

    rule potential:
        input:
            result("structures/{structure}.nc"),
        output:
            result("potential/{structure}.nc"),
        log:
            log_path("potential"),
        benchmark:
            benchmark_path("potential")
        conda:
            "../../envs/gpu.yaml"
            if POTENTIAL["device"] == "cuda"
            else "../../envs/pipeline.yaml"
        threads: POTENTIAL["threads"]
        resources:
            **gpu_resources(POTENTIAL["device"]),
            mem_mb=lambda wildcards, attempt: POTENTIAL["mem_mb"] * attempt,
            runtime=60,
        params:
            options=potential_args(),
        shell:
            "OMP_NUM_THREADS={threads} OPENBLAS_NUM_THREADS={threads} MKL_NUM_THREADS={threads} NUMBA_NUM_THREADS={threads} "
            "python -m pipeline potential {input:q} -o {output:q} {params.options} > {log:q} 2>&1"

else:

    rule potential_chunk:
        input:
            result("structures/{structure}.nc"),
        output:
            temp(result("potential/chunks/{structure}/chunk_{chunk}.nc")),
        log:
            log_path("potential_chunk", "{structure}/chunk_{chunk}"),
        benchmark:
            benchmark_path("potential_chunk", "{structure}/chunk_{chunk}")
        wildcard_constraints:
            chunk=r"\d+",
        conda:
            "../../envs/gpu.yaml"
            if POTENTIAL["device"] == "cuda"
            else "../../envs/pipeline.yaml"
        threads: POTENTIAL["threads"]
        resources:
            **gpu_resources(POTENTIAL["device"]),
            mem_mb=lambda wildcards, attempt: POTENTIAL["mem_mb"] * attempt,
            runtime=60,
        params:
            chunks=POTENTIAL["chunks"],
            options=potential_plan_args(),
        shell:
            "OMP_NUM_THREADS={threads} OPENBLAS_NUM_THREADS={threads} MKL_NUM_THREADS={threads} NUMBA_NUM_THREADS={threads} "
            "python -m pipeline potential-chunk {input:q} --chunk {wildcards.chunk} "
            "--chunks {params.chunks} -o {output:q} {params.options} > {log:q} 2>&1"

    rule potential_gather:
        input:
            structure=result("structures/{structure}.nc"),
            chunks=potential_chunk_files,
        output:
            result("potential/{structure}.nc"),
        log:
            log_path("potential_gather"),
        benchmark:
            benchmark_path("potential_gather")
        conda:
            "../../envs/gpu.yaml"
            if POTENTIAL["device"] == "cuda"
            else "../../envs/pipeline.yaml"
        threads: POTENTIAL["threads"]
        resources:
            **gpu_resources(POTENTIAL["device"]),
            mem_mb=lambda wildcards, attempt: POTENTIAL["mem_mb"] * attempt,
            runtime=60,
        params:
            options=potential_args(),
        shell:
            "OMP_NUM_THREADS={threads} OPENBLAS_NUM_THREADS={threads} MKL_NUM_THREADS={threads} NUMBA_NUM_THREADS={threads} "
            "python -m pipeline potential-gather {input.structure:q} {input.chunks:q} "
            "-o {output:q} {params.options} > {log:q} 2>&1"


rule potential_accuracy:
    input:
        result("structures/{structure}.nc"),
    output:
        result("accuracy/{structure}/tol_{tolerance}.nc"),
    log:
        log_path("potential_accuracy", "{structure}/tol_{tolerance}"),
    benchmark:
        benchmark_path("potential_accuracy", "{structure}/tol_{tolerance}")
    wildcard_constraints:
        tolerance=r"[0-9.]+(e[-+]?[0-9]+)?",
    conda:
        "../../envs/gpu.yaml"
        if POTENTIAL["device"] == "cuda"
        else "../../envs/pipeline.yaml"
    threads: POTENTIAL["threads"]
    resources:
        **gpu_resources(POTENTIAL["device"]),
        mem_mb=lambda wildcards, attempt: POTENTIAL["mem_mb"] * attempt,
        runtime=60,
    params:
        options=lambda wildcards: potential_args(wildcards.tolerance),
    shell:
        "OMP_NUM_THREADS={threads} OPENBLAS_NUM_THREADS={threads} MKL_NUM_THREADS={threads} NUMBA_NUM_THREADS={threads} "
        "python -m pipeline potential {input:q} -o {output:q} {params.options} > {log:q} 2>&1"
