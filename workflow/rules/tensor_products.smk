# Runtime and expressivity of the tensor products (independent of the structures).


rule tensor_products:
    output:
        result("tensor_products.nc"),
    log:
        log_path("tensor_products", "tensor_products"),
    benchmark:
        benchmark_path("tensor_products", "tensor_products")
    conda:
        conda_env(TENSOR_PRODUCTS["device"])
    threads: 2
    resources:
        **gpu_resources(TENSOR_PRODUCTS["device"]),
        mem_mb=lambda wildcards, attempt: 4000 * attempt,
        runtime=60,
    params:
        options=tensor_products_args(),
    shell:
        "python -m pipeline tensor-products -o {output:q} {params.options} > {log:q} 2>&1"
