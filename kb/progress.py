"""Progress display for long jobs: tqdm bars on a terminal, nothing when output is piped."""

from __future__ import annotations

import sys
from collections.abc import Callable

from tqdm import tqdm


def progress_bars(stream: object = None) -> Callable[[str, int], Callable[[int], None]]:
    """Return a factory: (stage, total) -> advance(n). Bars show only on a terminal."""
    out = stream or sys.stderr

    def start(stage: str, total: int) -> Callable[[int], None]:
        bar = tqdm(total=total, desc=stage, unit=" items", file=out, leave=True,
                   disable=not getattr(out, "isatty", lambda: False)(), mininterval=0.2)

        def advance(n: int) -> None:
            bar.update(n)
            if bar.n >= total:
                bar.close()

        return advance

    return start
