# Per-atom equivariant electrostatic descriptors from the structure and its potential.


rule descriptors:
    input:
        structure=result("structures/{structure}.nc"),
        potential=result("potential/{structure}.nc"),
    output:
        result("descriptors/{structure}.nc"),
    log:
        log_path("descriptors"),
    benchmark:
        benchmark_path("descriptors")
    conda:
        conda_env(DESCRIPTORS["device"])
    threads: 2
    resources:
        **gpu_resources(DESCRIPTORS["device"]),
        mem_mb=lambda wildcards, attempt: 8000 * attempt,
        runtime=60,
    params:
        options=descriptors_args(),
    shell:
        "python -m pipeline descriptors {input.structure:q} --potential {input.potential:q} "
        "-o {output:q} {params.options} > {log:q} 2>&1"
