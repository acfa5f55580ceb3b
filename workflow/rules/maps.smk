# Potential maps on regular grids (config section `maps`): netCDF, and OpenDX for VMD, PyMOL and
# ChimeraX, evaluated from each structure's stored potential.


rule map:
    input:
        potential=result("potential/{structure}.nc"),
        kernels=result(".kernels_compiled"),
    output:
        **map_outputs(),
    log:
        log_path("map"),
    benchmark:
        benchmark_path("map")
    conda:
        conda_env(MAPS["device"])
    threads: 2
    resources:
        **gpu_resources(MAPS["device"]),
        mem_mb=lambda wildcards, attempt: 4000 * attempt,
        runtime=30,
    params:
        options=map_args,
    shell:
        "python -m pipeline evaluate {input.potential:q} -o {output.nc:q} {params.options} > {log:q} 2>&1"
