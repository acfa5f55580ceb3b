# Ingest: biomolecules from files (charges from the file or a force field) and generated lattices.


rule ingest:
    output:
        result("structures/{structure}.nc"),
    params:
        source=lambda wildcards: STRUCTURES[wildcards.structure]["source"],
        options=ingest_args,
    wildcard_constraints:
        structure=id_constraint(SOURCE_IDS),
    log:
        log_path("ingest"),
    benchmark:
        benchmark_path("ingest")
    conda:
        conda_env("cpu")
    resources:
        mem_mb=lambda wildcards, attempt: 4000 * attempt,
        runtime=30,
    shell:
        "{PIPELINE} ingest {params.source:q} -o {output:q} {params.options} > {log:q} 2>&1"


rule lattice:
    output:
        result("structures/{structure}.nc"),
    params:
        options=lattice_args,
    wildcard_constraints:
        structure=id_constraint(LATTICE_IDS),
    log:
        log_path("lattice"),
    benchmark:
        benchmark_path("lattice")
    conda:
        conda_env("cpu")
    resources:
        mem_mb=lambda wildcards, attempt: 4000 * attempt,
        runtime=30,
    shell:
        "{PIPELINE} lattice -o {output:q} {params.options} > {log:q} 2>&1"
