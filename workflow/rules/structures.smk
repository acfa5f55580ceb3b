# Ingest: biomolecules from files (charges from the file or a force field) and generated lattices.


rule ingest:
    output:
        result("structures/{structure}.nc"),
    log:
        log_path("ingest"),
    benchmark:
        benchmark_path("ingest")
    wildcard_constraints:
        structure=id_constraint(SOURCE_IDS),
    conda:
        conda_env("cpu")
    resources:
        mem_mb=lambda wildcards, attempt: 4000 * attempt,
        runtime=30,
    params:
        source=lambda wildcards: STRUCTURES[wildcards.structure]["source"],
        options=ingest_args,
    shell:
        "python -m pipeline ingest {params.source:q} -o {output:q} {params.options} > {log:q} 2>&1"


rule lattice:
    output:
        result("structures/{structure}.nc"),
    log:
        log_path("lattice"),
    benchmark:
        benchmark_path("lattice")
    wildcard_constraints:
        structure=id_constraint(LATTICE_IDS),
    conda:
        conda_env("cpu")
    resources:
        mem_mb=lambda wildcards, attempt: 4000 * attempt,
        runtime=30,
    params:
        options=lattice_args,
    shell:
        "python -m pipeline lattice -o {output:q} {params.options} > {log:q} 2>&1"
