"""HTML pages: the same library calls as the API, rendered with templates (no JavaScript needed)."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from kb.errors import BadQuery
from kb.responses import search_request
from kb.web.state import knowledge_base

bp = Blueprint("pages", __name__)


@bp.get("/")
@bp.get("/search")
def search() -> str:
    kb = knowledge_base()
    params = {key: request.args.getlist(key) for key in request.args}
    has_query = any(v for k, vs in params.items() for v in vs if k not in {"sort", "page", "limit"})
    page = None
    error = None
    if has_query:
        try:
            page = kb.search(search_request(params, kb.settings.page_size))
        except BadQuery as problem:
            error = str(problem)
    return render_template("search.html", page=page, error=error, args=request.args,
                           manifest=kb.status(), vocabulary=kb.vocabulary)


@bp.get("/sources/<path:source_id>")
def source(source_id: str) -> str:
    kb = knowledge_base()
    return render_template("source.html", source=kb.source_view(source_id))


@bp.get("/claims/<claim_id>")
def claim(claim_id: str) -> str:
    return render_template("claim.html", claim=knowledge_base().claim_view(claim_id))
