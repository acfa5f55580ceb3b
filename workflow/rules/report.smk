# The aggregated study: one netCDF report, figures for `snakemake --report`, and the study config.

#: Figures written by `pipeline report` (one caption each in workflow/report/fig_<name>.rst).
REPORT_FIGURES = [
    "runtime_vs_lmax",
    "error_vs_tolerance",
    "ranks_vs_atoms",
    "runtime_vs_atoms",
]
#: Trajectory figures (pipeline.reports.frames_figures), written also when the study has no trajectory.
REPORT_FIGURES += ["energy_vs_time", "frame_runtime", "residue_potential"]


rule study_config:
    output:
        result("config.json"),
    log:
        log_path("study_config", "study_config"),
    localrule: True
    params:
        config=config,
    run:
        from pipeline.storage import atomic_write_bytes

        atomic_write_bytes(
            output[0], json.dumps(params.config, indent=2, sort_keys=True).encode()
        )


rule report:
    input:
        config=result("config.json"),
        structures=structure_files(),
        potentials=expand(
            result("potential/{structure}.nc"), structure=sorted(STRUCTURES)
        ),
        accuracy=accuracy_files(),
        tensor_products=result("tensor_products.nc"),
        descriptors=expand(
            result("descriptors/{structure}.nc"), structure=descriptor_ids()
        ),
        frames=frames_files(),
        descriptor_frames=descriptor_frames_files(),
    output:
        report=result("report.nc"),
        figures=[
            report(
                result(f"figures/{name}.png"),
                caption=f"../report/fig_{name}.rst",
                category="Figures",
                labels={"figure": name},
            )
            for name in REPORT_FIGURES
        ],
    log:
        log_path("report", "report"),
    benchmark:
        benchmark_path("report", "report")
    conda:
        conda_env("cpu")
    resources:
        mem_mb=lambda wildcards, attempt: 4000 * attempt,
        runtime=20,
    params:
        benchmarks=result("benchmarks"),
        missing=missing_args(),
        figures_dir=lambda wildcards, output: os.path.dirname(output.figures[0]),
    shell:
        "python -m pipeline report --config {input.config:q} --structures {input.structures:q} "
        "--potentials {input.potentials:q} {input.accuracy:q} --tensor-products {input.tensor_products:q} "
        "--descriptors {input.descriptors:q} --frames {input.frames:q} --descriptors-frames {input.descriptor_frames:q} {params.missing} --benchmarks {params.benchmarks:q} "
        "-o {output.report:q} --figures-dir {params.figures_dir:q} > {log:q} 2>&1"
