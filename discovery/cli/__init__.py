"""The `disco` command line: argument parsing and printing over `disco_rules.api`, one
module per group of commands (run, inspect, export, score), every error one line."""

from disco_rules.discovery.cli.errors import CliError
from disco_rules.discovery.cli.main import main
from disco_rules.discovery.cli.parser import build_parser, parse_arguments

__all__ = ["CliError", "build_parser", "main", "parse_arguments"]
