# The aggregated study: one netCDF report, figures for `snakemake --report`, and the study config.


rule study_config:
    output:
        result("config.json"),
    params:
        config=config,
    log:
        log_path("study_config", "study_config"),
    run:
        from pipeline.storage import atomic_write_bytes

        atomic_write_bytes(output[0], json.dumps(params.config, indent=2, sort_keys=True).encode())


rule report:
    input:
        config=result("config.json"),
        structures=structure_files(),
        potentials=expand(result("potential/{structure}.nc"), structure=sorted(STRUCTURES)),
        tensor_products=result("tensor_products.nc"),
        descriptors=expand(result("descriptors/{structure}.nc"), structure=descriptor_ids()),
    output:
        report=result("report.nc"),
        figures=report(
            directory(result("figures")),
            patterns=["{name}.png"],
            caption="../report/figures.rst",
            category="Figures",
        ),
    params:
        benchmarks=result("benchmarks"),
    log:
        log_path("report", "report"),
    benchmark:
        benchmark_path("report", "report")
    conda:
        "../../envs/pipeline.yaml"
    resources:
        mem_mb=4000,
        runtime=20,
    shell:
        "python -m pipeline report --config {input.config:q} --structures {input.structures:q} "
        "--potentials {input.potentials:q} --tensor-products {input.tensor_products:q} "
        "--descriptors {input.descriptors:q} --benchmarks {params.benchmarks:q} "
        "-o {output.report:q} --figures-dir {output.figures:q} > {log:q} 2>&1"
