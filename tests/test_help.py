"""Every script's --help (README: "every option, with examples"): each example is a
command line the script's own parser accepts, and every option is in an example."""

import argparse
import contextlib
import importlib
import io
import shlex

import pytest
from test_layout import scripts

SCRIPTS = sorted(scripts())  # every top-level module that runs as a program


def test_the_scripts_are_all_here():
    assert SCRIPTS == ["analytics", "aws_setup", "bench", "create_tables", "demo", "etl", "sample_data"]


def parser_of(name):
    """The script's parser, as its main() builds it (build_parser), never running main."""
    return importlib.import_module(name).build_parser()


def examples(name, help_text):
    """The arguments of each `python <name>.py …` line of the help: shell comments and
    output redirections left out."""
    found = []
    for line in help_text.splitlines():
        if line.strip().startswith(f"python {name}.py"):
            arguments = shlex.split(line, comments=True)[2:]
            found.append(arguments[: arguments.index(">")] if ">" in arguments else arguments)
    return found


def parse_error(parser, arguments):
    """argparse's complaint about arguments, or None when it accepts them. No abbreviations:
    an example must spell each option out (`--fro` would pass for `--from`)."""
    parser.allow_abbrev = False
    complaint = io.StringIO()
    try:
        with contextlib.redirect_stderr(complaint):
            parser.parse_args(arguments)
    except SystemExit:
        return complaint.getvalue().strip().splitlines()[-1]
    return None


def options_and_choices(parser):
    """What the examples must show between them: every option (its first long spelling)
    and every choice of a positional argument, such as aws_setup.py's commands."""
    wanted = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if action.option_strings:
            wanted.append(next(o for o in action.option_strings if o.startswith("--")))
        elif action.choices:
            wanted += list(action.choices)
    return wanted


@pytest.mark.parametrize("name", SCRIPTS)
def test_help_is_the_parser_that_main_uses(name, run):
    code, out = run(importlib.import_module(name), "--help")
    assert code == 0
    assert out == parser_of(name).format_help()


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_example_in_the_help_parses(name):
    parser = parser_of(name)
    lines = examples(name, parser.format_help())
    assert lines, f"{name}.py --help has no example"
    refused = {shlex.join(arguments): parse_error(parser, arguments) for arguments in lines}
    assert {line: error for line, error in refused.items() if error} == {}


@pytest.mark.parametrize("name", SCRIPTS)
def test_help_shows_every_option_in_an_example(name):
    parser = parser_of(name)
    shown = {word.split("=")[0] for arguments in examples(name, parser.format_help()) for word in arguments}
    assert [option for option in options_and_choices(parser) if option not in shown] == []


def test_an_abbreviated_or_unknown_option_in_an_example_is_caught():
    parser = parser_of("etl")
    error = parse_error(parser, ["--fro", "2018-11-05"])
    assert error.endswith(": error: unrecognized arguments: --fro 2018-11-05")
    assert parse_error(parser, ["--from", "2018-11-05"]) is None
