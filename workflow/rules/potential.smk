# Range-separated Chebyshev–Tucker potential of each structure, with its self-check.


rule potential:
    input:
        result("structures/{structure}.nc"),
    output:
        result("potential/{structure}.nc"),
    params:
        options=potential_args(),
    log:
        log_path("potential"),
    benchmark:
        benchmark_path("potential")
    conda:
        "../../envs/gpu.yaml" if POTENTIAL["device"] == "cuda" else "../../envs/pipeline.yaml"
    threads: POTENTIAL["threads"]
    resources:
        mem_mb=lambda wildcards, attempt: POTENTIAL["mem_mb"] * attempt,
        runtime=60,
        **gpu_resources(POTENTIAL["device"]),
    shell:
        "OMP_NUM_THREADS={threads} OPENBLAS_NUM_THREADS={threads} MKL_NUM_THREADS={threads} "
        "python -m pipeline potential {input:q} -o {output:q} {params.options} > {log:q} 2>&1"
