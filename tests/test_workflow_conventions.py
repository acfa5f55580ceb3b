"""Static checks of the workflow's files: conda envs against pyproject.toml, schema entries, rules.

conda is not needed: the environment files are read as YAML and compared with the dependencies
that pip installs, so the two routes (pip + venv, Snakemake's conda envs) cannot drift apart.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
PYPROJECT_PYTHON = Requirement(f"python{PYPROJECT['requires-python']}").specifier
SCHEMA = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())

#: conda-forge names of PyPI distributions whose names differ.
CONDA_NAMES = {"matplotlib": "matplotlib-base", "cupy-cuda12x": "cupy"}
#: Runtime dependencies that the rules do not need inside their environment.
NOT_IN_ENVS = {"snakemake"}
#: Packages of the environments that are not Python dependencies of the package.
ENV_ONLY = {"python", "pip", "cuda-version"}


#: A conda or pip entry: name, then a pin (``=1.2``, ``==1.2``) or a range whose first bound is
#: taken as its version (``>=12,<14``: 12, the oldest release the environment may resolve to).
ENTRY = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*(?:==?|>=)?\s*([0-9][^,\s]*)?")


def env_pins(path: Path) -> dict[str, str]:
    """{canonical name: pinned version (or lower bound)} of a conda environment file, conda and pip sections."""
    pins = {}
    for entry in yaml.safe_load(path.read_text())["dependencies"]:
        for line in entry["pip"] if isinstance(entry, dict) else [entry]:
            name, version = ENTRY.match(line).groups()
            pins[canonicalize_name(name)] = version or ""
    return pins


def requirements(extra: str | None = None) -> dict[str, Requirement]:
    lines = PYPROJECT["optional-dependencies"][extra] if extra else PYPROJECT["dependencies"]
    reqs = (Requirement(line) for line in lines)
    return {canonicalize_name(CONDA_NAMES.get(r.name.lower(), r.name)): r for r in reqs}


@pytest.mark.parametrize("env", ["pipeline.yaml", "gpu.yaml"])
def test_env_holds_the_runtime_dependencies_at_allowed_versions(env):
    pins = env_pins(REPO / "envs" / env)
    needed = {name: req for name, req in requirements().items() if name not in NOT_IN_ENVS}
    if env == "gpu.yaml":
        needed.update(requirements("gpu"))
    missing = sorted(set(needed) - set(pins))
    extra = sorted(set(pins) - set(needed) - ENV_ONLY)
    assert not missing, f"envs/{env} lacks runtime dependencies of pyproject.toml: {missing}"
    assert not extra, f"envs/{env} has packages that pyproject.toml does not declare: {extra}"
    for name, req in needed.items():
        assert req.specifier.contains(Version(pins[name]), prereleases=True), (
            f"envs/{env} pins {name}={pins[name]}, pyproject.toml requires {req.specifier}"
        )
    python = Version(pins["python"])
    assert python in PYPROJECT_PYTHON, f"envs/{env} python={python}, pyproject requires-python {PYPROJECT['requires-python']}"


def test_gpu_env_is_the_cpu_env_plus_cupy():
    cpu, gpu = env_pins(REPO / "envs" / "pipeline.yaml"), env_pins(REPO / "envs" / "gpu.yaml")
    assert {k: v for k, v in gpu.items() if k not in {"cupy", "cuda-version"}} == cpu


def resolved(entry: dict) -> dict:
    """A schema entry with the definition its ``$ref`` names merged in (the entry's own keys win)."""
    ref = entry.get("$ref")
    if ref is None:
        return entry
    definition = SCHEMA
    for part in ref.removeprefix("#/").split("/"):
        definition = definition[part]
    return {**resolved(definition), **{k: v for k, v in entry.items() if k != "$ref"}}


def schema_leaves(node: dict, path: str = ""):
    """(dotted path, entry with its ``$ref`` resolved) of every property of the config schema."""
    for key, entry in node.get("properties", {}).items():
        entry = resolved(entry)
        yield f"{path}{key}", entry
        yield from schema_leaves(entry, f"{path}{key}.")


@pytest.mark.parametrize("section", ["maps", "descriptors", "tensor_products"])
def test_schema_entries_have_type_description_and_default(section):
    for key, entry in schema_leaves(SCHEMA["properties"][section], f"{section}."):
        assert {"type", "description", "default"} <= set(entry), f"schema {key}: needs type, description and default"


def test_schema_lengths_and_spacings_state_their_unit():
    for key, entry in schema_leaves(SCHEMA):
        if re.search(r"(spacing|radius|cutoff|lattice_constant)$", key):
            assert "Å" in entry["description"], f"schema {key}: the description must give the unit"


def test_every_rule_logs_benchmarks_and_names_a_conda_env():
    checked = []
    for path in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        text = path.read_text()
        for rule, body in re.findall(r"^\s*rule (\w+):\n((?:\s{4,}.*\n|\n)+)", text, flags=re.M):
            if "localrule: True" in body:
                continue
            for directive in ("log:", "benchmark:", "conda:"):
                assert directive in body, f"{path.name}: rule {rule} has no {directive}"
            checked.append(rule)
    assert {"ingest", "lattice", "potential", "map", "descriptors", "tensor_products", "report"} <= set(checked), checked
