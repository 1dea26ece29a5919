"""The examples' shared command line: ``--quick``, one count (``--steps`` or ``--epochs``) and ``--help``.

``args = parse_args(__doc__, argv, full=600, quick=40)`` gives ``args.count``
(the count given on the command line, else ``quick`` with ``--quick`` or
``NNX_EXAMPLES_QUICK=1``, else ``full``), ``args.quick``, and ``args.full``
(at least the full count: the run may assert its full target). A bad flag or
value is answered with one line on stderr and exit status 2, as argparse
does, but without the usage block above it, so it reads as one clear error.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from typing import Callable, NoReturn, Sequence


class OneLineErrors(argparse.ArgumentParser):
    """An ArgumentParser whose errors are a single line (argparse prints usage first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer no smaller than ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value

    return parse


@dataclass(frozen=True)
class Args:
    count: int  # steps or epochs to run
    quick: bool  # the short run CI does
    full: bool  # at least the full count: the example may assert its full-run target


def parse_args(
    doc: str | None, argv: Sequence[str] | None = None, *, full: int, quick: int, count: str = "steps", minimum: int = 1
) -> Args:
    """Parse an example's command line (``sys.argv[1:]`` when ``argv`` is None); the count is at least ``minimum``."""
    parser = OneLineErrors(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(f"--{count}", type=at_least(minimum), default=None, metavar="N", dest="count",
                        help=f"{count} to run (default {full}; {quick} with --quick)")
    parser.add_argument("--quick", action="store_true", default=os.environ.get("NNX_EXAMPLES_QUICK") == "1",
                        help="a short run that only checks the metric improves (what CI runs; also NNX_EXAMPLES_QUICK=1)")
    ns = parser.parse_args(argv)
    chosen: int | None = ns.count
    n = chosen if chosen is not None else (quick if ns.quick else full)
    return Args(count=n, quick=ns.quick, full=n >= full)
