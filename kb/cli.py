"""The `kb` command line: a thin adapter over the library (build, search, show, stats, ...).

Every command parses options, makes one library call and prints the result; `--json` prints
exactly the document the matching API endpoint returns. Errors are one line on stderr saying what
to do; exit status 2 for usage and input errors, 1 for failures.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from kb import __version__
from kb.build import build as build_index
from kb.build import check_corpus, resolve_build
from kb.cli_check import check_command
from kb.cli_ingest import add_command, import_command
from kb.config import Settings
from kb.errors import KBError
from kb.files import storage_error
from kb.knowledge_base import KnowledgeBase
from kb.progress import progress_bars
from kb.query import FILTER_KINDS, SORTS
from kb.responses import (
    claim_body,
    map_body,
    search_body,
    search_request,
    source_body,
    stats_body,
    vocabulary_body,
)
from kb.search import check_engine, engine_label


class KBGroup(click.Group):
    """Show a KBError as one line on stderr with its exit status, never as a traceback.

    A full disk, a missing permission or a read-only file system that no library call turned into
    a StorageError yet is shown the same way (exit 1), naming the file the OSError names.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KBError as error:
            click.echo(f"Error: {error}", err=True)
            ctx.exit(error.exit_code)
        except OSError as error:
            converted = storage_error(error, None, f"kb {ctx.invoked_subcommand or ''}".strip())
            if converted is None:
                raise
            click.echo(f"Error: {converted}", err=True)
            ctx.exit(converted.exit_code)


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


@click.group(cls=KBGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kb")
@click.option("--corpus-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              envvar="KB_CORPUS_DIR", help="Corpus folder (default: the bundled corpus/)")
@click.option("--index-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              envvar="KB_INDEX_DIR", help="Index folder (default: index/ beside the corpus)")
@click.option("--engine", default=None, envvar="KB_ENGINE", metavar="URL",
              help="Build into and search a PostgreSQL database (postgresql://user@host:port/db) "
                   "instead of the index folder")
@click.pass_context
def cli(ctx: click.Context, corpus_dir: Path | None, index_dir: Path | None, engine: str | None) -> None:
    """Evidence KB: search research claims and the sources that back them."""
    settings = Settings.from_env().for_folders(corpus_dir, index_dir)
    if engine is not None:
        settings = replace(settings, engine=engine.strip())
    check_engine(settings.engine)
    ctx.obj = settings


def _kb(ctx: click.Context) -> KnowledgeBase:
    # Resolving first (opening resolves again, from the same process's checks) lets a damaged
    # index that falls back to an earlier build say so, rather than answer from it silently.
    if not ctx.obj.engine:
        served = resolve_build(ctx.obj.index_dir)
        if served.degraded:
            click.echo(f"Warning: {served.reason()}", err=True)
    return KnowledgeBase.open(ctx.obj)


@cli.command()
@click.option("--check", is_flag=True, help="Only report corpus problems (file:line: message); write nothing")
@click.option("--strict", is_flag=True, help="Fail on any corpus error instead of skipping the bad record")
@click.option("--quiet", "-q", is_flag=True, help="No progress display")
@click.pass_context
def build(ctx: click.Context, check: bool, strict: bool, quiet: bool) -> None:
    """Build the search index from the corpus, atomically.

    \b
    Example:
        kb build
        kb build --check
    """
    settings: Settings = ctx.obj
    if check:
        corpus = check_corpus(settings)
        for problem in corpus.problems:
            click.echo(f"{settings.corpus_dir.name}/{problem}", err=True)
        errors = len(corpus.errors)
        click.echo(f"{len(corpus.sources)} sources, {len(corpus.claims)} claims; "
                   f"{errors} error(s), {len(corpus.problems) - errors} warning(s)")
        ctx.exit(1 if errors else 0)
    report = build_index(settings, strict=strict, progress=None if quiet else progress_bars())
    for problem in report.corpus.problems:
        click.echo(f"{settings.corpus_dir.name}/{problem}", err=True)
    counts = report.manifest["counts"]
    click.echo(f"Built {counts['sources']} sources and {counts['claims']} claims in "
               f"{report.manifest['build_seconds']} s into "
               f"{engine_label(settings.engine) if settings.engine else settings.index_dir}")


def _search_options(function: Callable[..., Any]) -> Callable[..., Any]:
    for kind in reversed(FILTER_KINDS):
        function = click.option(f"--{kind}", multiple=True, help=f"Only claims tagged with this {kind} "
                                "(or a narrower term); repeatable")(function)
    return function


@cli.command()
@click.argument("query", required=False, default="")
@_search_options
@click.option("--source", multiple=True, help="Only claims of this source id; repeatable")
@click.option("--stance", multiple=True, help="supports, limits, contradicts or none; repeatable")
@click.option("--year-from", type=int, default=None)
@click.option("--year-to", type=int, default=None)
@click.option("--sort", type=click.Choice(SORTS), default="relevance", show_default=True)
@click.option("--page", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--limit", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--exclude-retracted", "exclude_retracted", flag_value="1", default=None,
              help="Leave out claims of retracted sources")
@click.option("--json", "as_json", is_flag=True, help="Print exactly what GET /api/v1/search returns")
@click.pass_context
def search(ctx: click.Context, query: str, as_json: bool, **options: Any) -> None:
    """Search claims; each hit shows its source.

    \b
    Example:
        kb search TRD --mechanism nmda-antagonism
        kb search "suicidal ideation" --sort evidence --json
    """
    params: dict[str, list[str]] = {"q": [query]}
    for name, value in options.items():
        if value is None or value == ():
            continue
        params[name] = [str(v) for v in value] if isinstance(value, tuple) else [str(value)]
    request = search_request(params)
    body = search_body(_kb(ctx), request)
    if as_json:
        _echo_json(body)
        return
    click.echo(f"{body['total']} claims match {query!r}" + (f" (did you mean {body['did_you_mean']!r}?)"
                                                          if body["did_you_mean"] else ""))
    for number, hit in enumerate(body["hits"], start=(body["page"] - 1) * body["limit"] + 1):
        stance = f"[{hit['stance']}] " if hit["stance"] and hit["stance"] != "supports" else ""
        source = hit["source"]
        level = f"L{source['evidence_level']}" if source["evidence_level"] else "--"
        click.echo(f"{number:3}. {stance}{hit['text']}")
        if source.get("retracted"):
            click.echo("     RETRACTED: this source was retracted; do not cite it as evidence")
        click.echo(f"     {level} {source['authors']} {source['year']} · {source['id']} · "
                   f"{hit['locator']['text']}" + (f" · doi:{source['doi']}" if source["doi"] else ""))


@cli.command()
@click.argument("source_id")
@click.option("--json", "as_json", is_flag=True, help="Print exactly what GET /api/v1/sources/<id> returns")
@click.pass_context
def show(ctx: click.Context, source_id: str, as_json: bool) -> None:
    """Show a source: citation, verification, summary and its claims.

    \b
    Example:
        kb show berman2000antidepressant
    """
    body = source_body(_kb(ctx), source_id)
    if as_json:
        _echo_json(body)
        return
    source = body["source"]
    click.echo(source["citation"]["vancouver"])
    for name, value in source["unconfirmed_identifiers"].items():
        click.echo(f"  {name.upper()} {value} (unconfirmed)")
    for name, url in source["links"].items():
        click.echo(f"  {name}: {url}")
    if source["design_label"]:
        click.echo(f"Design: {source['design_label']} (evidence level {source['evidence_level'] or 'unranked'})")
    if source["summary"]:
        click.echo("\n" + source["summary"])
    click.echo(f"\n{len(source['claims'])} claims:")
    for claim in source["claims"]:
        stance = claim["stance"] or "none"
        flag = "" if claim["confirmed"] else " (numbers unconfirmed)"
        click.echo(f"  - [{stance}] {claim['text']}{flag}  ({claim['locator']['text']}; {claim['id']})")


@cli.command()
@click.argument("claim_id")
@click.option("--json", "as_json", is_flag=True, help="Print exactly what GET /api/v1/claims/<id> returns")
@click.pass_context
def claim(ctx: click.Context, claim_id: str, as_json: bool) -> None:
    """Show a claim, its source and locator, and related claims of other sources.

    \b
    Example:
        kb claim zarate2006randomized-3c3b1b1f0e
    """
    body = claim_body(_kb(ctx), claim_id)
    if as_json:
        _echo_json(body)
        return
    data = body["claim"]
    click.echo(data["text"])
    click.echo(f"  {data['source']['citation']} ({data['locator']['text']})")
    for other in data["related"]:
        click.echo(f"  related [{other['stance'] or 'none'}] {other['text']} ({other['source']['id']})")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print exactly what GET /api/v1/stats returns")
@click.pass_context
def stats(ctx: click.Context, as_json: bool) -> None:
    """Count sources and claims, and claims per condition and mechanism.

    \b
    Example:
        kb stats --json
    """
    body = stats_body(_kb(ctx))
    if as_json:
        _echo_json(body)
        return
    click.echo(f"{body['sources']} sources, {body['claims']} claims; "
               f"{body['tagged_share']:.1%} tagged with a condition or mechanism")
    for kind in ("condition", "mechanism", "intervention"):
        click.echo(f"\nClaims per {kind}:")
        for term, data in body[f"claims_per_{kind}"].items():
            click.echo(f"  {data['claims']:5}  {data['label']} ({term})")


@cli.command()
@click.option("--kind", type=click.Choice(list(FILTER_KINDS)), default=None)
@click.option("--json", "as_json", is_flag=True, help="Print exactly what GET /api/v1/vocabulary returns")
@click.pass_context
def vocabulary(ctx: click.Context, kind: str | None, as_json: bool) -> None:
    """List vocabulary terms with their claim counts.

    \b
    Example:
        kb vocabulary --kind condition
    """
    body = vocabulary_body(_kb(ctx), kind)
    if as_json:
        _echo_json(body)
        return
    for term in body["terms"]:
        parents = f" < {', '.join(term['parents'])}" if term["parents"] else ""
        click.echo(f"{term['kind']:12} {term['id']:28} {term['claims_including_narrower']:5}  "
                   f"{term['label']}{parents}")


@cli.command(name="map")
@click.option("--rows", type=click.Choice(list(FILTER_KINDS)), default="condition", show_default=True)
@click.option("--columns", type=click.Choice(list(FILTER_KINDS)), default="mechanism", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print exactly what GET /api/v1/map returns")
@click.pass_context
def evidence_map(ctx: click.Context, rows: str, columns: str, as_json: bool) -> None:
    """Show the evidence map: claim counts by condition × mechanism (or other kinds).

    \b
    Example:
        kb map --rows condition --columns intervention
    """
    body = map_body(_kb(ctx), rows, columns)
    if as_json:
        _echo_json(body)
        return
    cells = {(c["row"], c["column"]): c for c in body["cells"]}
    columns_ = body["columns"][:8]
    click.echo(" " * 28 + "".join(f"{c['id'][:12]:>13}" for c in columns_))
    for row in body["rows"]:
        counts = "".join(f"{cells.get((row['id'], c['id']), {}).get('claims', ''):>13}" for c in columns_)
        click.echo(f"{row['label'][:27]:28}{counts}")


# Registered unconditionally: a broken dependency of one of these fails loudly at start-up
# instead of silently removing the command.
cli.add_command(import_command, "import")
cli.add_command(add_command, "add")
cli.add_command(check_command, "check")


def main() -> None:
    """Entry point of the `kb` console script."""
    cli(prog_name="kb")


if __name__ == "__main__":  # pragma: no cover
    main()
