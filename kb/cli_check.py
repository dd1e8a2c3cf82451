"""`kb check`: check an article's claims and citations against the knowledge base."""

from __future__ import annotations

import json
from typing import BinaryIO

import click

from kb.check import UNLIMITED
from kb.check.report import VERDICT_LABELS, to_html, to_markdown
from kb.check.result import CheckResult
from kb.check.segment import content_type_for
from kb.check.word import read_upload
from kb.knowledge_base import KnowledgeBase

# What --fail-on can name, and which results count as that failure.
FAILURES = ("contradicted", "unsupported", "partly", "citation", "reference", "placeholder", "none")


def failures(result: CheckResult, fail_on: tuple[str, ...]) -> list[str]:
    """The --fail-on conditions *result* meets (an empty list: exit 0)."""
    problems = {p.kind for p in result.problems}
    met = {
        "contradicted": result.counts.get("contradicted", 0) > 0,
        "unsupported": result.counts.get("unsupported", 0) > 0,
        "partly": result.counts.get("partly_supported", 0) > 0,
        "citation": bool(problems & {"citation_does_not_back", "citation_contradicts", "citation_retracted",
                                     "missing_reference"}),
        "reference": bool(problems & {"unresolved", "unreadable", "doi_mismatch"}),
        "placeholder": "placeholder" in problems,
    }
    return [name for name in fail_on if met.get(name)]


def _text_report(result: CheckResult) -> str:
    lines = []
    for number, sentence in enumerate(result.sentences, start=1):
        if not sentence.checkworthy:
            continue
        label = VERDICT_LABELS[sentence.verdict or "unsupported"].upper()
        lines.append(f"{number:3}. [{label}] {sentence.text}")
        lines.append(f"     {sentence.reason}")
        for check in sentence.citations:
            lines.append(f"     cites [{check.reference}]: {check.outcome.replace('_', ' ')} - {check.reason}")
        for problem in sentence.problems:
            lines.append(f"     problem: {problem}")
        for source in sentence.suggestions:
            lines.append(f"     cite: {source.citation}")
    for reference in result.references:
        if reference.problem and reference.problem != "uncited":
            lines.append(f"ref [{reference.id}] {reference.problem}: {reference.detail}")
    counts = result.counts
    lines.append(f"{counts['checkworthy']} of {counts['units']} sentences checked: "
                 + ", ".join(f"{counts[v]} {VERDICT_LABELS[v].lower()}" for v in VERDICT_LABELS)
                 + f"; {counts['references_resolved']} of {counts['references']} references resolved; "
                 f"{counts['problems']} problem(s) in {result.seconds} s")
    return "\n".join(lines)


@click.command()
@click.argument("article", type=click.File("rb"))
@click.option("--format", "fmt", type=click.Choice(["text", "json", "md", "html"]), default="text",
              show_default=True, help="text: a summary; json: what POST /api/v1/check returns; md, html: reports")
@click.option("--content-type", type=click.Choice(["auto", "text", "markdown", "html", "docx"]),
              default="auto", show_default=True,
              help="How to read the article (auto: from the file name, then the content)")
@click.option("--fail-on", default="contradicted,citation", show_default=True,
              help="Exit 1 when any of these is found (comma-separated): " + ", ".join(FAILURES))
@click.pass_context
def check_command(ctx: click.Context, article: BinaryIO, fmt: str, content_type: str, fail_on: str) -> None:
    """Check every claim of an article (text, Markdown, HTML or Word .docx; - reads stdin).

    Each sentence that makes a factual claim gets a verdict (supported, partly supported,
    contradicted, unsupported) with its evidence; the reference list and inline citations are
    resolved to sources, and each citation is checked against the source it names. A .docx is
    converted to Markdown first (headings, list items, table rows); offsets in --format json
    refer to that text, which the JSON's "text" holds.

    Exit status: 0 when none of the --fail-on conditions is met; 1 when one is (by default, a
    contradicted sentence or a citation that does not back its sentence); 2 for input errors
    (empty, binary or damaged file, over 200 KB).

    \b
    Example:
        kb check draft.md
        kb check draft.docx --format md > report.md
        kb check --format html draft.html > report.html
        cat draft.txt | kb check - --format json --fail-on none
    """
    wanted = tuple(part.strip() for part in fail_on.split(",") if part.strip())
    unknown = [name for name in wanted if name not in FAILURES]
    if unknown:
        raise click.BadParameter(f"unknown condition(s) {', '.join(unknown)}: use {', '.join(FAILURES)}",
                                 param_hint="--fail-on")
    kb = KnowledgeBase.open(ctx.obj)
    limit = kb.settings.max_upload_bytes
    hint = None if content_type == "auto" else content_type
    name = str(getattr(article, "name", "-"))
    if hint is None and name not in {"-", "<stdin>"}:
        hint = content_type_for(None, name)
    try:
        text, hint = read_upload(article.read(limit + 1), limit, hint, name)
    except Exception:
        kb.close()  # an unreadable file still releases the index
        raise
    try:
        # No caps on the command line: the caps protect a server's other clients, and a local
        # run has none (the web app applies KB_MAX_CHECK_UNITS and KB_CHECK_TIME_BUDGET).
        result = kb.check(text, hint, UNLIMITED)
    finally:
        kb.close()
    if fmt == "json":
        click.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    elif fmt == "md":
        click.echo(to_markdown(result), nl=False)
    elif fmt == "html":
        click.echo(to_html(result), nl=False)
    else:
        click.echo(_text_report(result))
    met = failures(result, wanted)
    if met:
        click.echo(f"Failing: {', '.join(met)} (see --fail-on)", err=True)
        ctx.exit(1)

