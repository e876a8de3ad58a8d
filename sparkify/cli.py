"""What create_tables.py and etl.py share: options, argument parsing, error handling."""

import argparse
import logging
import os
import sys
from pathlib import Path

from sparkify.errors import SparkifyError
from sparkify.output import configure_logging

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "dwh.cfg"
log = logging.getLogger("sparkify")


def parser_for(script_doc):
    """An ArgumentParser whose help is the script's docstring, with the common options."""
    summary, _, details = script_doc.strip().partition("\n")
    parser = argparse.ArgumentParser(
        description=summary,
        epilog=details.strip(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG,
        help="config file (default: dwh.cfg beside the scripts)",
    )
    parser.add_argument("--quiet", action="store_true", help="only warnings and errors")
    parser.add_argument("--verbose", action="store_true", help="also print each SQL statement")
    return parser


def positive_int(text):
    """argparse type: a whole number >= 1 (a bad one is a usage error, exit 2)."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, not {text!r}")
    return int(text)


def parse(parser, argv):
    """Parse without ever exiting the interpreter (Jupyter): returns (args, exit_code)."""
    try:
        return parser.parse_args(list(argv or [])), None
    except SystemExit as stop:  # --help, or a usage error already printed by argparse
        return None, stop.code if isinstance(stop.code, int) else 2


def run(body, args):
    """Run a script's body; user mistakes and known failures become one line and a code."""
    configure_logging(quiet=args.quiet, verbose=args.verbose)
    try:
        body(args)
    except SparkifyError as error:
        log.error("error: %s", error)
        return error.exit_code
    except KeyboardInterrupt:
        log.error("interrupted: nothing of this run was committed")
        return 130
    except BrokenPipeError:  # the reader went away (`etl.py --dry-run | head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return 0
