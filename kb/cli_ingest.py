"""``kb import`` and ``kb add``: grow the corpus from files and from the literature services.

Both print what they added, merged and skipped (``--json``: the ImportReport as JSON), and both
leave the index alone: run ``kb build`` afterwards to make the new sources searchable.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from kb.config import Settings
from kb.corpus.importer import ImportReport
from kb.ingest.detect import BINARY_FORMATS, FORMATS

_SHOWN = 20  # items listed per category before "... and N more"


@click.command("import")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(sorted([*FORMATS, *BINARY_FORMATS])), default=None,
              help="Read every file as this format (default: told from each file's content)")
@click.option("--offline", is_flag=True,
              help="Do not look up a PDF's DOI at Crossref; keep its own metadata, marked unverified")
@click.option("--dry-run", is_flag=True, help="Report what would change; write nothing")
@click.option("--corpus-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Corpus to import into (default: the one the kb command uses)")
@click.option("--json", "as_json", is_flag=True, help="Print the import report as JSON")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar")
@click.pass_context
def import_command(ctx: click.Context, files: tuple[Path, ...], fmt: str | None, offline: bool,
                   dry_run: bool, corpus_dir: Path | None, as_json: bool, quiet: bool) -> None:
    """Import records from BibTeX, RIS, PubMed XML, MEDLINE, CSL-JSON, Crossref, OpenAlex or
    SciFact files, or papers' PDFs, into the corpus, one source per work.

    A PDF gives its full text: the sentences of its abstract, methods, results, discussion and
    conclusion become claims located by page and paragraph. Its metadata comes from Crossref when
    it prints a DOI (unless --offline), else from the PDF itself, marked unverified. An encrypted,
    scanned (no text) or damaged PDF is refused with what to do; the other files still import.

    A record that duplicates a source already in the corpus (same DOI, PMID, or title, first
    author and year) only adds the fields the corpus lacks. Malformed records are reported
    with their file and line; the rest still import.

    \b
    Example:
        kb import pubmed_result.xml refs.ris --dry-run
        kb import scifact/corpus.jsonl --corpus-dir my-kb
        kb import paper.pdf --offline
    """
    from kb.corpus.importer import import_files

    settings: Settings = ctx.obj
    if corpus_dir is not None:
        settings = settings.with_dirs(corpus_dir=corpus_dir)
    report = import_files(files, settings, fmt=fmt, dry_run=dry_run,
                          progress=not quiet and not as_json, lookup=not offline)
    _print(report, as_json, settings)
    if report.refused and len(report.refused) == len(files):
        # Nothing was read at all: a script must not mistake that for an import that found
        # nothing new. When some files imported, the refusals are listed above and it exits 0.
        click.echo(f"Error: nothing imported: every file was refused ({', '.join(report.refused)}); "
                   "fix or convert them (see the problems above) and import again", err=True)
        ctx.exit(1)


@click.command("add")
@click.argument("identifiers", nargs=-1, required=True)
@click.option("--dry-run", is_flag=True, help="Fetch and report what would change; write nothing")
@click.option("--corpus-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Corpus to add to (default: the one the kb command uses)")
@click.option("--json", "as_json", is_flag=True, help="Print the import report as JSON")
@click.pass_context
def add_command(ctx: click.Context, identifiers: tuple[str, ...], dry_run: bool,
                corpus_dir: Path | None, as_json: bool) -> None:
    """Fetch works by DOI (Crossref), PMID (PubMed) or OpenAlex id and add them to the corpus.

    Every identifier is fetched before anything is written: an unknown one, or a service that
    stays down, leaves the corpus unchanged. Responses are cached in KB_CACHE_DIR when set;
    KB_CONTACT_EMAIL is sent to the services, KB_NCBI_API_KEY raises PubMed's rate limit.

    \b
    Example:
        kb add doi:10.1073/pnas.2305772120 pmid:29768149 openalex:W2741809807
    """
    from kb.corpus.identifiers import add_identifiers

    settings: Settings = ctx.obj
    if corpus_dir is not None:
        settings = settings.with_dirs(corpus_dir=corpus_dir)
    report = add_identifiers(list(identifiers), settings, dry_run=dry_run)
    _print(report, as_json, settings)


def _print(report: ImportReport, as_json: bool, settings: Settings) -> None:
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
        return
    for problem in report.problems:
        click.echo(problem, err=True)
    for conflict in report.conflicts:
        click.echo(f"conflict: {conflict}", err=True)
    for label, items in (("added", report.added), ("merged", report.merged),
                         ("skipped", report.skipped)):
        for item in items[:_SHOWN]:
            detail = f" ({item.detail})" if item.detail else ""
            click.echo(f"  {label:8}{item.id}  {item.title[:70]}{detail}")
        if len(items) > _SHOWN:
            click.echo(f"  {label:8}... and {len(items) - _SHOWN} more")
    where = f" in {settings.corpus_dir}" if not report.dry_run else " (dry run: nothing written)"
    click.echo(f"{report.summary().capitalize()}{where}.")
    if not report.dry_run and (report.added or report.merged):
        click.echo("Run 'kb build' to index them.")
