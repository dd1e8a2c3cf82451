"""The article checker on the web: POST /api/v1/check (JSON) and the /check page (no JavaScript).

Both take the article as text (JSON ``{"text": ...}`` or a form field ``text``) or as an uploaded
file (multipart field ``file``: plain text, Markdown or HTML in UTF-8, or a Word .docx, which
``kb.check.word`` converts to Markdown first, so offsets refer to that text), and make one call to
``KnowledgeBase.check``. Empty text is a 400, text over ``settings.max_upload_bytes`` a 413, a
binary or undecodable file a 400; text without any sentence gives an empty result.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, jsonify, render_template, request
from werkzeug.datastructures import FileStorage

from kb.check.report import report_context, to_html, to_markdown
from kb.check.segment import content_type_for
from kb.check.word import read_upload
from kb.errors import BadRequest, KBError
from kb.web.openapi import error_responses
from kb.web.state import knowledge_base

bp = Blueprint("checker", __name__)

FORMATS = ("json", "md", "html")
# An explicit content_type; absent or "" detects it. "docx" is for a file upload only.
CONTENT_TYPES = ("text", "markdown", "html", "docx")


def _read_upload(upload: FileStorage, limit: int, chosen: str | None) -> tuple[str, str | None]:
    """The text of an uploaded file and its content type: *chosen*, else what its name or MIME
    type suggests; a .docx is converted to Markdown (and reported as "docx")."""
    data = upload.stream.read(limit + 1)  # one byte over is enough to know it is too large
    hint = chosen or content_type_for(
        upload.mimetype if upload.mimetype != "application/octet-stream" else None, upload.filename)
    return read_upload(data, limit, hint, upload.filename or "The file")


def _text_content_type(value: object) -> str | None:
    """An explicit content_type for pasted text or JSON: "docx" is refused, as text is no .docx."""
    named = _content_type(value)
    if named == "docx":
        raise BadRequest('content_type "docx" needs the Word document itself: upload the .docx file in '
                         'the multipart field "file", or send its text as text, markdown or html')
    return named


def _content_type(value: object) -> str | None:
    """An explicit content_type as "text", "markdown" or "html" (None: detect); a 400 otherwise.

    Its MIME type ("text/html") or a short name ("md", "plain") is read as the same type, as it
    always was; anything else ("pdf") is refused rather than silently detected.
    """
    if value is None or value == "":
        return None
    named = content_type_for(value) if isinstance(value, str) and len(value) <= 100 else None
    if named is None:
        raise BadRequest(f"Unknown content_type {value!r:.60}: use one of {', '.join(CONTENT_TYPES)} "
                         "(or its MIME type, such as text/html), or leave it out to detect it")
    return named


def _choice(name: str, value: object, valid: tuple[str, ...], default: str | None) -> str | None:
    """*value* if it is one of *valid*; *default* when absent or empty; else a 400 listing them.

    Enums are enforced, never guessed: an unknown format ("xml") answered as JSON would look
    like a success to a client that asked for something else.
    """
    if value is None or value == "":
        return default
    if not isinstance(value, str) or value not in valid:
        raise BadRequest(f"Unknown {name} {value!r}: use one of {', '.join(valid)}")
    return value


def _article() -> tuple[str, str | None, str]:
    """(text, content type hint, output format) of the request, from JSON, a form or a file."""
    limit = knowledge_base().settings.max_upload_bytes
    fmt = request.args.get("format", "json")
    upload = request.files.get("file")
    if upload is not None and upload.filename:
        text, hint = _read_upload(upload, limit, _content_type(request.form.get("content_type")))
        return text, hint, str(_choice("format", request.form.get("format"), FORMATS, fmt))
    if request.is_json:
        body = request.get_json()  # strict: a malformed body is a 400 saying where (kb.web.inputs)
        if not isinstance(body, dict) or not isinstance(body.get("text"), str):
            raise BadRequest('Send a JSON object with the article as a string: {"text": "..."}')
        hint = _text_content_type(body.get("content_type"))
        return body["text"], hint, str(_choice("format", body.get("format"), FORMATS, fmt))
    if "text" in request.form:
        hint = _text_content_type(request.form.get("content_type"))
        return request.form["text"], hint, str(_choice("format", request.form.get("format"), FORMATS, fmt))
    raise BadRequest('Send the article as JSON {"text": "..."}, as a form field "text", or as a '
                     'file upload in the field "file"')


_YES = ("1", "true", "yes", "on")
_NO = ("0", "false", "no", "off")


def _exclude_retracted() -> bool:
    """Whether retracted sources are left out of the evidence shown (default: yes).

    From the JSON body (a boolean), the form (the page sends a hidden "0" before its checkbox, so
    the last value is the box's) or the query string; anything else is a 400 that says so.
    """
    value: object = request.args.get("exclude_retracted")
    if request.is_json:
        body = request.get_json()
        if isinstance(body, dict) and "exclude_retracted" in body:
            value = body["exclude_retracted"]
            if not isinstance(value, bool):
                raise BadRequest("exclude_retracted must be true or false")
            return value
    elif request.form.getlist("exclude_retracted"):
        value = request.form.getlist("exclude_retracted")[-1]
    if value is None or value == "":
        return True
    if isinstance(value, str) and value.lower() in _YES + _NO:
        return value.lower() in _YES
    raise BadRequest(f"exclude_retracted {value!r} is not a yes or no: use 1 or 0")


@bp.post("/api/v1/check")
def api_check() -> Response:
    """Check an article: every sentence's verdict and evidence, the references and the problems."""
    _choice("format", request.args.get("format"), FORMATS, "json")  # refused before any work
    exclude = _exclude_retracted()
    text, hint, fmt = _article()
    result = knowledge_base().check(text, hint, exclude_retracted=exclude)
    if fmt == "md":
        return Response(to_markdown(result), mimetype="text/markdown")
    if fmt == "html":
        return Response(to_html(result), mimetype="text/html")
    return jsonify(result.to_dict())


@bp.route("/check", methods=["GET", "POST"], endpoint="page")
def page() -> tuple[str, int] | str:
    """The checker page: a paste box and a file upload; on POST, the report below the form."""
    kb = knowledge_base()
    context: dict[str, Any] = {"limit": kb.settings.max_upload_bytes, "text": "", "content_type": "",
                               "exclude_retracted": True, "result": None, "error": None}
    if request.method == "GET":
        return render_template("check.html", **context)
    context["content_type"] = request.form.get("content_type", "")
    context["text"] = request.form.get("text", "")
    try:
        context["exclude_retracted"] = exclude = _exclude_retracted()
        text, hint, _ = _article()
        context["text"] = text
        result = kb.check(text, hint, exclude_retracted=exclude)
    except KBError as error:
        context["error"] = str(error)
        return render_template("check.html", **context), error.status
    context.update(report_context(result))
    return render_template("check.html", **context)


_NULLABLE_STRING = {"type": ["string", "null"]}
_SOURCE = {
    "type": "object",
    "required": ["id", "doi", "pmid", "title", "year", "citation"],
    "properties": {
        "id": {"type": "string"}, "doi": _NULLABLE_STRING, "pmid": _NULLABLE_STRING,
        "title": {"type": "string"}, "year": {"type": ["integer", "null"]}, "citation": {"type": "string"},
        "apa": _NULLABLE_STRING, "authors": {"type": "string"},
        "evidence_level": {"type": ["integer", "null"]}, "design": _NULLABLE_STRING,
        "retracted": {"type": "boolean", "description": "the source is retracted: shown, never counted"},
    },
}
_CHECK_RESULT = {
    "type": "object",
    "required": ["ok", "claims", "references", "problems", "text"],
    "properties": {
        "ok": {"const": True},
        "content_type": {"type": "string", "enum": ["text", "markdown", "html", "docx"],
                         "description": "how the input was read; docx: a Word upload converted to "
                                        "Markdown, which `text` holds"},
        "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
        "claims": {"type": "array", "items": {
            "type": "object",
            "required": ["text", "start", "end", "checkworthy", "verdict", "reason", "cited", "evidence"],
            "properties": {
                "text": {"type": "string"}, "start": {"type": "integer"}, "end": {"type": "integer"},
                "kind": {"type": "string", "enum": ["sentence", "heading", "item"]},
                "checkworthy": {"type": "boolean"}, "category": _NULLABLE_STRING,
                "verdict": {"enum": ["supported", "partly_supported", "contradicted", "unsupported", None]},
                "reason": {"type": "string"},
                "cited": {"type": "array", "items": {"type": "string"}},
                "evidence": {"type": "array", "items": {
                    "type": "object", "required": ["claim_id", "text", "score", "stance", "source"],
                    "properties": {
                        "claim_id": {"type": "string"}, "text": {"type": "string"},
                        "score": {"type": "number", "minimum": 0, "maximum": 1},
                        "match_score": {"type": "number"}, "stance": _NULLABLE_STRING,
                        "agrees": {"type": "boolean"},
                        "shared_terms": {"type": "array", "items": {"type": "string"}},
                        "source": _SOURCE,
                    },
                }},
                "citations": {"type": "array", "items": {
                    "type": "object", "required": ["reference", "source", "outcome", "reason"],
                    "properties": {
                        "reference": {"type": "string"}, "source": _NULLABLE_STRING,
                        "outcome": {"enum": ["backs", "partly_backs", "does_not_back", "contradicts", "unknown"]},
                        "score": {"type": "number"}, "reason": {"type": "string"},
                        "claim_id": _NULLABLE_STRING,
                    },
                }},
                "suggestions": {"type": "array", "items": _SOURCE},
                "problems": {"type": "array", "items": {"type": "string"}},
            },
        }},
        "references": {"type": "array", "items": {
            "type": "object", "required": ["id", "text", "resolved", "problem"],
            "properties": {
                "id": {"type": "string"}, "text": {"type": "string"},
                "start": {"type": ["integer", "null"]}, "end": {"type": ["integer", "null"]},
                "resolved": {"anyOf": [{"type": "null"}, {
                    "type": "object", "required": ["id", "doi", "title", "year"],
                    "properties": {"id": {"type": "string"}, "doi": _NULLABLE_STRING,
                                   "pmid": _NULLABLE_STRING, "title": {"type": "string"},
                                   "year": {"type": ["integer", "null"]}, "citation": {"type": "string"},
                                   "match": {"enum": ["doi", "pmid", "title", "author-year"]},
                                   "confidence": {"type": "number"}},
                }]},
                "problem": {"enum": ["placeholder", "unresolved", "unreadable", "doi_mismatch", "uncited", None]},
                "detail": _NULLABLE_STRING,
            },
        }},
        "problems": {"type": "array", "items": {
            "type": "object", "required": ["kind", "message"],
            "properties": {"kind": {"type": "string"}, "message": {"type": "string"},
                           "sentence": {"type": ["integer", "null"]}, "reference": _NULLABLE_STRING},
        }},
        "reference_section": {"anyOf": [{"type": "null"}, {"type": "object"}]},
        "text": {"type": "string", "description": "the analysed text; every offset refers to it"},
        "seconds": {"type": "number"},
        "truncated": {"anyOf": [{"type": "null"}, {
            "type": "object",
            "description": "set when a per-request cap stopped the check before the end: `claims` "
                           "then covers the first units_checked units only",
            "required": ["reason", "units_checked", "units_total", "references_checked",
                         "references_total", "message"],
            "properties": {
                "reason": {"enum": ["max_units", "max_references", "time_budget"]},
                "units_checked": {"type": "integer", "minimum": 0},
                "units_total": {"type": "integer", "minimum": 0},
                "references_checked": {"type": "integer", "minimum": 0},
                "references_total": {"type": "integer", "minimum": 0},
                "message": {"type": "string"},
            },
        }]},
    },
}
_ARTICLE_FIELDS = {
    "text": {"type": "string", "description": "the article: plain text, Markdown or HTML, up to 200 KB"},
    "content_type": {"type": "string", "enum": ["text", "markdown", "html"],
                     "description": "how to read it (its MIME type, such as text/html, is read the "
                                    "same); detected when left out; anything else is a 400"},
    "exclude_retracted": {"type": "boolean", "default": True,
                          "description": "leave claims of retracted sources out of the evidence "
                                         "(default true); a retracted source never backs a verdict "
                                         "either way, and citing one is a problem"},
}
_UPLOAD_FIELDS = {
    "file": {"type": "string", "format": "binary",
             "description": "a UTF-8 text, Markdown or HTML file, or a Word .docx (converted to Markdown: "
                            "headings as #, list items as -, tables as | rows |; offsets refer to the "
                            "returned `text`), up to 200 KB"},
    "text": _ARTICLE_FIELDS["text"],
    "content_type": {"type": "string", "enum": list(CONTENT_TYPES),
                     "description": "how to read the file (detected from its name, MIME type and bytes "
                                    "when left out); docx only with a file"},
    "exclude_retracted": {"type": "string", "enum": ["1", "0", "true", "false", "yes", "no", "on", "off"],
                          "description": "1 (default) leaves claims of retracted sources out of the "
                                         "evidence; 0 shows them, marked (they never back a verdict)"},
}

OPENAPI_PATHS: dict[str, Any] = {
    "/api/v1/check": {
        "post": {
            "summary": "Check an article against the knowledge base",
            "description": (
                "Splits the article into sentences, decides which make a checkable claim, finds each "
                "claim's evidence and gives it a verdict (supported, partly_supported, contradicted, "
                "unsupported), resolves the reference list and inline citations to sources, and checks "
                "that each cited source backs the sentence citing it. Offsets refer to the returned "
                "`text` (HTML is reduced to text first). The work is capped per request (sentences, "
                "references, seconds): a capped check answers with the part it checked and says so in "
                "`truncated` (and in the md and html reports). A Word .docx upload is converted to "
                "Markdown first and `text` is that Markdown. Errors: 400 for empty text, a binary or "
                "undecodable file, a damaged .docx or one that would inflate past 16 MB, an unknown "
                "content_type or format, or a malformed request; 413 over "
                "200 KB; 429 over the rate limit and 503 when no sentence could be checked in time, both "
                "with Retry-After."),
            "operationId": "checkArticle",
            "parameters": [{
                "name": "format", "in": "query", "required": False,
                "description": "json (default), md (a Markdown report) or html (an HTML report)",
                "schema": {"type": "string", "enum": list(FORMATS), "default": "json"},
            }],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"type": "object", "required": ["text"],
                                                    "properties": _ARTICLE_FIELDS}},
                    "multipart/form-data": {"schema": {"type": "object", "properties": _UPLOAD_FIELDS}},
                },
            },
            "responses": {
                "200": {
                    "description": "the check; with format=md or format=html, a report instead",
                    "content": {
                        "application/json": {"schema": _CHECK_RESULT},
                        "text/markdown": {"schema": {"type": "string"}},
                        "text/html": {"schema": {"type": "string"}},
                    },
                },
                **error_responses(400, 413, 429, 503),
            },
        }
    }
}


def register(app: Flask) -> None:
    """Add the checker's routes (the API route and the page) to *app*."""
    app.register_blueprint(bp)
