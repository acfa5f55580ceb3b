"""The config schema (workflow/schemas/config.schema.yaml): defaults, per-structure potential overrides.

Validation goes through `snakemake.utils.validate`, the function the workflow calls in
common.smk, so the messages checked here are the ones a user sees.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from pathlib import Path

import pytest
import yaml

from pipeline.electrostatics.settings import PotentialSettings

REPO = Path(__file__).resolve().parents[1]
SCHEMA_PATH = REPO / "workflow" / "schemas" / "config.schema.yaml"
#: Keys of the schema's `potential:` section and the PotentialSettings field each one sets.
SCHEMA_TO_FIELD = {
    "tolerance": "tolerance",
    "device": "device",
    "split": "split",
    "alpha": "alpha",
    "cutoff": "cutoff",
    "degree": "degree",
    "dielectric": "dielectric",
    "ionic_strength": "ionic_strength",
    "temperature": "temperature",
    "periodic": "periodic",
    "max_storage_bytes": "max_storage_bytes",
    "self_check": "self_check",
    "seed": "seed",
}
#: Keys of `potential:` that size the jobs, not the build (no PotentialSettings field).
WORKFLOW_ONLY = {"threads", "mem_mb", "gpu_model", "chunks"}
#: PotentialSettings fields the workflow leaves at their defaults (command line only).
COMMAND_LINE_ONLY = {"padding", "ranks", "hooi_sweeps", "accuracy_level", "allow_exceeded", "max_memory", "allow_large_span"}


@pytest.fixture(scope="module")
def schema() -> dict:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def _validate(config: dict) -> dict:
    """`config` validated (and filled with defaults) as the workflow does; WorkflowError when invalid."""
    from snakemake.utils import validate

    config = copy.deepcopy(config)
    validate(config, schema=str(SCHEMA_PATH))
    return config


def _study(**potential_overrides) -> dict:
    """A one-structure study whose structure carries ``potential_overrides``."""
    return {"structures": {"adk": {"source": "adk.pqr", "potential": potential_overrides}}}


def test_every_potential_default_equals_the_settings_default(schema):
    potential = schema["properties"]["potential"]["properties"]
    fields = {f.name for f in dataclasses.fields(PotentialSettings)}
    assert set(potential) == set(SCHEMA_TO_FIELD) | WORKFLOW_ONLY, "a new `potential:` key needs a place here"
    assert set(SCHEMA_TO_FIELD.values()) | COMMAND_LINE_ONLY == fields, "a new setting needs a schema key"
    defaults = PotentialSettings()
    for key, field in SCHEMA_TO_FIELD.items():
        assert "default" in potential[key], f"potential.{key} has no default"
        expected = getattr(defaults, field)
        assert potential[key]["default"] == expected and type(potential[key]["default"]) in (type(expected), int, float), (
            f"schema potential.{key} default {potential[key]['default']!r} != PotentialSettings.{field} {expected!r}"
        )


def test_validated_config_carries_the_settings_defaults():
    potential = _validate(_study())["potential"]
    defaults = PotentialSettings()
    for key, field in SCHEMA_TO_FIELD.items():
        assert potential[key] == getattr(defaults, field), key


def test_override_keys_are_study_wide_keys_without_defaults(schema):
    overrides = schema["$defs"]["potential_overrides"]["properties"]
    assert set(overrides) == {"dielectric", "ionic_strength", "temperature", "periodic", "tolerance", "split", "alpha",
                              "cutoff", "degree"}
    assert set(overrides) <= set(schema["properties"]["potential"]["properties"])
    # a default on an override would replace the study-wide value for every structure
    assert not any("default" in entry for entry in overrides.values())


def test_salt_and_periodic_overrides_validate_and_stay_as_written():
    overrides = {"dielectric": 78.5, "ionic_strength": 0.15, "temperature": 310.0, "periodic": "off",
                 "tolerance": 1e-4, "split": "ewald", "alpha": 0.3, "cutoff": 10.0, "degree": 40}
    config = _validate(_study(**overrides))
    assert config["structures"]["adk"]["potential"] == overrides  # no defaults filled in
    assert config["potential"]["dielectric"] == 1.0  # the study-wide default


@pytest.mark.parametrize("written", ["on", "off", '"on"', "auto"])
def test_periodic_accepts_yaml_on_off(written):
    value = yaml.safe_load(f"periodic: {written}")["periodic"]  # unquoted on/off are YAML booleans
    assert value == {"on": True, "off": False, '"on"': "on", "auto": "auto"}[written]
    _validate(_study(periodic=value))


@pytest.mark.parametrize(
    "overrides, names",
    [
        ({"dielectic": 78.5}, ["dielectic", "adk", "potential"]),  # misspelt key
        ({"device": "cuda"}, ["device", "adk"]),  # study-wide only
        ({"ionic_strength": -0.1}, ["ionic_strength", "-0.1", "adk"]),
        ({"dielectric": 0}, ["dielectric", "adk"]),
        ({"temperature": -5.0}, ["temperature", "-5.0"]),
        ({"periodic": "yes"}, ["periodic", "yes"]),
        ({"tolerance": 0.5}, ["tolerance", "0.5"]),
    ],
)
def test_bad_override_names_the_key(overrides, names):
    from snakemake.exceptions import WorkflowError

    with pytest.raises(WorkflowError) as info:
        _validate(_study(**overrides))
    message = str(info.value)
    for name in names:
        assert name in message, f"{name!r} missing from:\n{message}"


@pytest.mark.parametrize("key, value", [("ionic_strength", -0.1), ("dielectric", 0.0), ("temperature", 0.0)])
def test_bad_study_wide_medium_names_the_key(key, value):
    from snakemake.exceptions import WorkflowError

    with pytest.raises(WorkflowError, match=key):
        _validate({"structures": {"adk": {"source": "adk.pqr"}}, "potential": {key: value}})


def test_schema_units_are_stated(schema):
    defs = schema["$defs"]
    for key, unit in (("ionic_strength", "mol/L"), ("temperature", " K"), ("alpha", "1/Å"), ("cutoff", "Å")):
        assert unit in defs[key]["description"], key
    assert "dimensionless" in defs["dielectric"]["description"]
    assert math.isclose(schema["properties"]["potential"]["properties"]["temperature"]["default"], 298.15)
