# Range-separated electrostatics and equivariant descriptors: the workflow's table of contents.
# Run `snakemake --cores all` for the default study in config/config.yaml; see README.md.

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/structures.smk"
include: "workflow/rules/potential.smk"
include: "workflow/rules/frames.smk"
include: "workflow/rules/tensor_products.smk"
include: "workflow/rules/descriptors.smk"
include: "workflow/rules/maps.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        all_targets(),
