"""Progress display for long jobs: tqdm bars on a terminal; when output is piped, nothing, or
(with ``lines=True``) a plain line every tenth of the way.

The server asks for lines: its first start builds the index, and a service manager or a log file
shows no bar, so without lines the first minutes looked like a hung process.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from tqdm import tqdm

LINE_STEPS = 10  # lines per stage when output is not a terminal: one every 10%


def progress_bars(stream: object = None, lines: bool = False
                  ) -> Callable[[str, int], Callable[[int], None]]:
    """Return a factory: (stage, total) -> advance(n).

    Bars show only on a terminal. Elsewhere *lines* prints "stage: 40% (400/1000)" lines as the
    stage passes each tenth, and a last one at 100%; without *lines* nothing is printed.
    """
    out = stream or sys.stderr
    terminal = bool(getattr(out, "isatty", lambda: False)())

    def start(stage: str, total: int) -> Callable[[int], None]:
        if not terminal and lines:
            return _line_printer(out, stage, total)
        bar = tqdm(total=total, desc=stage, unit=" items", file=out, leave=True,
                   disable=not terminal, mininterval=0.2)

        def advance(n: int) -> None:
            bar.update(n)
            if bar.n >= total:
                bar.close()

        return advance

    return start


def _line_printer(out: object, stage: str, total: int) -> Callable[[int], None]:
    """advance(n) that prints a line each time the count passes another tenth of *total*."""
    done = 0
    printed = 0  # tenths already reported
    print(f"{stage}: 0% (0/{total})", file=out, flush=True)  # type: ignore[call-overload]

    def advance(n: int) -> None:
        nonlocal done, printed
        done = min(total, done + n)
        reached = LINE_STEPS if total <= 0 or done >= total else done * LINE_STEPS // total
        if reached > printed:
            printed = reached
            print(f"{stage}: {reached * 100 // LINE_STEPS}% ({done}/{total})", file=out,  # type: ignore[call-overload]
                  flush=True)

    return advance
