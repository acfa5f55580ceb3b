# Range-separated Chebyshev–Tucker potential of each structure, with its self-check.
# potential.chunks = 1: one job per structure (rule potential). chunks > 1: scatter-gather, the
# long-range coefficients of each atom chunk in its own job (potential_chunk), summed, compressed
# and checked by potential_gather, which writes the same file. potential_accuracy builds the extra
# potentials of the accuracy sweep (config section `accuracy`). Each job's options are the
# study-wide `potential:` settings merged with the structure's own (potential_settings in
# common.smk); conda environment, threads, thread variables and resources are the same for all
# four rules (helpers in common.smk). Every job needing the compiled kernels waits for
# compile_kernels, which compiles them once per install (cached next to the package), so no job
# compiles them in parallel with another and no recorded runtime includes compiling.


rule compile_kernels:
    output:
        result(".kernels_compiled"),
    log:
        log_path("compile_kernels", "kernels"),
    benchmark:
        benchmark_path("compile_kernels", "kernels")
    conda:
        conda_env("cpu")
    shell:
        "python -m pipeline compile --stamp {output:q} > {log:q} 2>&1"


if POTENTIAL["chunks"] == 1:

    rule potential:
        input:
            structure=result("structures/{structure}.nc"),
            kernels=result(".kernels_compiled"),
        output:
            result("potential/{structure}.nc"),
        log:
            log_path("potential"),
        benchmark:
            benchmark_path("potential")
        conda:
            conda_env(POTENTIAL["device"])
        threads: POTENTIAL["threads"]
        resources:
            **potential_resources(),
        params:
            env=thread_env,
            options=potential_args,
        shell:
            "{params.env} python -m pipeline potential {input.structure:q} -o {output:q} {params.options} > {log:q} 2>&1"

else:

    rule potential_chunk:
        input:
            structure=result("structures/{structure}.nc"),
            kernels=result(".kernels_compiled"),
        output:
            temp(result("potential/chunks/{structure}/chunk_{chunk}.nc")),
        log:
            log_path("potential_chunk", "{structure}/chunk_{chunk}"),
        benchmark:
            benchmark_path("potential_chunk", "{structure}/chunk_{chunk}")
        wildcard_constraints:
            chunk=r"\d+",
        conda:
            conda_env(POTENTIAL["device"])
        threads: POTENTIAL["threads"]
        resources:
            **potential_resources(),
        params:
            env=thread_env,
            chunks=POTENTIAL["chunks"],
            options=potential_plan_args,
        shell:
            "{params.env} python -m pipeline potential-chunk {input.structure:q} --chunk {wildcards.chunk} "
            "--chunks {params.chunks} -o {output:q} {params.options} > {log:q} 2>&1"

    rule potential_gather:
        input:
            structure=result("structures/{structure}.nc"),
            chunks=potential_chunk_files,
            kernels=result(".kernels_compiled"),
        output:
            result("potential/{structure}.nc"),
        log:
            log_path("potential_gather"),
        benchmark:
            benchmark_path("potential_gather")
        conda:
            conda_env(POTENTIAL["device"])
        threads: POTENTIAL["threads"]
        resources:
            **potential_resources(),
        params:
            env=thread_env,
            options=potential_args,
        shell:
            "{params.env} python -m pipeline potential-gather {input.structure:q} {input.chunks:q} "
            "-o {output:q} {params.options} > {log:q} 2>&1"


rule potential_accuracy:
    input:
        structure=result("structures/{structure}.nc"),
        kernels=result(".kernels_compiled"),
    output:
        result("accuracy/{structure}/tol_{tolerance}.nc"),
    log:
        log_path("potential_accuracy", "{structure}/tol_{tolerance}"),
    benchmark:
        benchmark_path("potential_accuracy", "{structure}/tol_{tolerance}")
    wildcard_constraints:
        tolerance=r"[0-9.]+(e[-+]?[0-9]+)?",
    conda:
        conda_env(POTENTIAL["device"])
    threads: POTENTIAL["threads"]
    resources:
        **potential_resources(),
    params:
        env=thread_env,
        options=potential_args,
    shell:
        "{params.env} python -m pipeline potential {input.structure:q} -o {output:q} {params.options} > {log:q} 2>&1"
