"""Pure parsers, one module per input format: text in, Sources and problems out.

Every parser has the signature ``parse(text: str, origin: str) -> ParseResult``. It touches no
disk and no network; *origin* names the file in problem messages. A malformed record becomes a
``CorpusProblem`` naming its line (or record number) and the rest of the input still loads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from kb.models import CorpusProblem, Source


@dataclass(slots=True)
class ParseResult:
    """What a parser read: the records, the raw payload of each, and the problems it met."""

    sources: list[Source] = field(default_factory=list)
    problems: list[CorpusProblem] = field(default_factory=list)
    raw: dict[str, str] = field(default_factory=dict)  # source id -> raw text of its record

    def extend(self, other: ParseResult) -> None:
        self.sources.extend(other.sources)
        self.problems.extend(other.problems)
        self.raw.update(other.raw)


Parser = Callable[[str, str], ParseResult]
