"""Options shared by every stage, the output metavar, and CLI defaults equal to the config schema's."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pytest
import yaml

from pipeline.cli import OUTPUT_METAVAR, STAGE_MODULES, build_parser, log_level, main, selected_stage, stage_name

SCHEMA = yaml.safe_load((Path(__file__).parents[1] / "workflow" / "schemas" / "config.schema.yaml").read_text())


def stage_parser(stage: str) -> argparse.ArgumentParser:
    parser = build_parser([stage])
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[stage]


def parse(argv: list[str]) -> argparse.Namespace:
    return build_parser(argv).parse_args(argv)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["summary", "r.nc"], "summary"),
        (["-v", "summary", "r.nc"], "summary"),
        (["--log-file", "report", "summary", "r.nc"], "summary"),  # `report` is the log file
        (["tensor-products", "-o", "x.nc"], "tensor_products"),
        (["tensor_products"], None),  # a module name, not a stage name
        (["--help"], None),
        (["nonsense"], None),
    ],
)
def test_selected_stage(argv, expected):
    assert selected_stage(argv) == expected


@pytest.mark.parametrize("where", ["before", "after"])
@pytest.mark.parametrize(("flag", "level"), [("-v", logging.DEBUG), ("--verbose", logging.DEBUG), ("-q", logging.WARNING), ("--quiet", logging.WARNING)])
def test_verbosity_before_or_after_the_stage(where, flag, level):
    argv = [flag, "summary", "r.nc"] if where == "before" else ["summary", "r.nc", flag]
    assert log_level(parse(argv)) == level
    assert log_level(parse(["summary", "r.nc"])) == logging.INFO


def test_verbose_before_the_stage_is_not_reset_by_the_stage_parser():
    args = parse(["-v", "--log-file", "a.log", "summary", "r.nc"])
    assert args.verbose and args.log_file == "a.log"


def test_verbose_and_quiet_exclude_each_other(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse(["summary", "r.nc", "-v", "-q"])
    assert exit_info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_log_file_receives_messages_and_the_error(tmp_path, capsys):
    log_file = tmp_path / "stage.log"
    missing = tmp_path / "missing.nc"
    before = list(logging.getLogger().handlers)
    assert main(["summary", str(missing), "-v", "--log-file", str(log_file)]) == 1
    text = log_file.read_text()
    assert "DEBUG pipeline: failure" in text  # -v after the stage reached the handler
    assert f"ERROR pipeline: {missing}: no such file" in text
    assert f"error: {missing}: no such file" in capsys.readouterr().err
    assert logging.getLogger().handlers == before, "main() must remove its handlers"


def test_unwritable_log_file_is_a_one_line_error(tmp_path, capsys):
    assert main(["summary", "r.nc", "--log-file", str(tmp_path / "no" / "such" / "dir.log")]) == 1
    assert "error: --log-file" in capsys.readouterr().err


@pytest.mark.parametrize("module", STAGE_MODULES)
def test_one_output_metavar(module):
    parser = stage_parser(stage_name(module))
    outputs = [a for a in parser._actions if "--output" in a.option_strings]
    for action in outputs:
        assert action.option_strings == ["-o", "--output"]
        assert action.metavar == OUTPUT_METAVAR
    usage = " ".join(parser.format_usage().split())  # argparse may wrap between "-o" and its metavar
    assert all(f"-o {OUTPUT_METAVAR}" in usage for _ in outputs)


def schema_default(section: str, key: str):
    return SCHEMA["properties"][section]["properties"][key]["default"]


@pytest.mark.parametrize(
    ("stage", "section", "keys"),
    [
        ("tensor-products", "tensor_products", {"lmax": "lmax", "batch": "batch", "channels": "channels", "repeats": "repeats", "dtype": "dtype", "device": "device"}),
        ("descriptors", "descriptors", {"lmax": "lmax", "cutoff": "cutoff", "n_radial": "n_radial", "sphere_radius": "sphere_radius"}),
    ],
)
def test_cli_defaults_equal_schema_defaults(stage, section, keys):
    defaults = {a.dest: a.default for a in stage_parser(stage)._actions}
    for dest, key in keys.items():
        assert defaults[dest] == schema_default(section, key), f"{stage} --{dest.replace('_', '-')}"


def test_descriptor_ranges_in_help_match_the_library():
    from pipeline.descriptors.compute import LMAX_MAX, N_RADIAL_MAX

    help_text = stage_parser("descriptors").format_help()
    assert f"0..{LMAX_MAX}" in help_text and f"1..{N_RADIAL_MAX}" in help_text
    assert SCHEMA["properties"]["descriptors"]["properties"]["lmax"]["maximum"] == LMAX_MAX
    assert SCHEMA["properties"]["descriptors"]["properties"]["n_radial"]["maximum"] == N_RADIAL_MAX


def test_tensor_product_methods_match_the_library():
    from pipeline.cli import tensor_products
    from pipeline.equivariant.products import METHODS

    assert tensor_products.METHODS == METHODS
