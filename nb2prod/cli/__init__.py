"""The `nb2prod` command line: the one place that prints to the terminal and picks exit codes."""

from nb2prod.cli.main import main

__all__ = ["main"]
