"""Strict reading of request input: JSON bodies, query strings and form fields.

Everything a client sends is decoded strictly, in one place, before a view sees it, so that a
malformed input is a 400 that says what is wrong and where, never a 500 further down:

* JSON is refused when nested deeper than ``MAX_JSON_DEPTH`` (measured by a scan of the raw bytes
  *before* parsing, because Python's json module recurses and a body of 100,000 ``[`` exhausts
  the stack), when it is not UTF-8, and when a string holds a lone surrogate (``"\\ud800"``: valid
  JSON, but not text; it breaks the first ``str.encode`` that meets it).
* Query strings and form fields must be UTF-8 once percent-decoded; werkzeug would otherwise keep
  invalid bytes percent-encoded (query, url-encoded form) or replace them (multipart fields).

``KBRequest`` is the app's request class, so ``request.get_json()`` anywhere gets these checks;
``check_text_encoding`` runs before every request.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote_to_bytes

from flask import Request, current_app
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from kb.errors import BadRequest

MAX_JSON_DEPTH = 32  # our bodies nest two levels; 32 leaves room for any honest client

# A JSON string, skipped whole so that brackets inside it do not count (possessive: linear, and
# an unterminated string costs one scan), and everything that is not a bracket.
_JSON_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"?', re.DOTALL)
_NOT_BRACKET = re.compile(rb"[^\[\]{}]++")
_PAIR = re.compile(rb"\[\]|\{\}")
_OPEN = frozenset(b"[{")
_SURROGATE = re.compile("[\ud800-\udfff]")


def too_deep(data: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether arrays and objects in *data* nest more than *limit* deep, without parsing it.

    Only the brackets outside strings are kept; then innermost pairs are removed one level per
    pass (a regex substitution, in C) for at most limit + 1 passes: a body still shrinking after them
    nests deeper than the limit. What no pass can pair up (an unbalanced or mismatched body,
    which json.loads will reject) is scanned with an early exit, counting the levels already
    removed. Linear in the size of *data*: a hostile body costs no more than an honest one.
    """
    skeleton = _NOT_BRACKET.sub(b"", _JSON_STRING.sub(b"", data))
    passes = 0
    while passes <= limit:
        shorter = _PAIR.sub(b"", skeleton)  # one scan: pairs it uncovers wait for the next pass
        if len(shorter) == len(skeleton):
            break
        skeleton, passes = shorter, passes + 1
    else:
        return True
    depth = 0
    for byte in skeleton:  # empty for any well-formed body
        depth += 1 if byte in _OPEN else -1
        if passes + depth > limit:
            return True
    return False


def _char_offset(data: bytes, byte: int) -> int:
    """The character offset of byte *byte* of UTF-8 *data* whose bytes before it decode cleanly."""
    return len(data[:byte].decode("utf-8", "replace"))


def _lone_surrogate(value: Any) -> tuple[str, int, str] | None:
    """(where, character offset, code point) of the first lone surrogate in a parsed JSON value;
    *where* is a path such as ``"text"`` or ``identifiers[2]``."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:  # iterative: the depth is bounded already, but a loop needs no stack frames
        item, path = stack.pop()
        if isinstance(item, str):
            match = _SURROGATE.search(item)
            if match:
                return path or "the body", match.start(), f"U+{ord(match.group()):04X}"
        elif isinstance(item, dict):
            for key, child in reversed(item.items()):
                stack.append((child, f"{path}.{key}" if path else f"{key!r}"))
                stack.append((key, f"a key of {path or 'the body'}"))
        elif isinstance(item, list):
            stack.extend((child, f"{path}[{n}]") for n, child in reversed(list(enumerate(item))))
    return None


def parse_json(data: bytes) -> Any:
    """Parse a JSON body strictly; BadRequest names the problem and its position."""
    if too_deep(data):
        raise BadRequest(f"The JSON body is nested more than {MAX_JSON_DEPTH} levels deep: send the "
                         "flat object the route expects (see /api/v1/openapi.json)")
    try:
        text = data.decode("utf-8-sig")  # RFC 8259: JSON exchanged between systems is UTF-8
    except UnicodeDecodeError as error:
        raise BadRequest(f"The JSON body is not valid UTF-8 at character {_char_offset(data, error.start)} "
                         f"(byte {error.start}): send it encoded as UTF-8") from None
    try:
        value = current_app.json.loads(text)
    except ValueError as error:  # JSONDecodeError, or an integer too long to convert
        if isinstance(error, json.JSONDecodeError):
            where = f" at line {error.lineno}, column {error.colno} (character {error.pos})"
            reason = error.msg
        else:
            where, reason = "", str(error)
        raise BadRequest(f"The body is not valid JSON: {reason}{where}; send the JSON object the "
                         "route expects (see /api/v1/openapi.json)") from None
    found = _lone_surrogate(value)
    if found is not None:
        where, offset, code = found
        raise BadRequest(f"The JSON body has a lone surrogate ({code}) in {where} at character {offset}: "
                         "send text as valid Unicode (a \\ud800-\\udbff escape must be followed by a "
                         "\\udc00-\\udfff one)")
    return value


class KBRequest(Request):
    """The app's request: ``get_json`` parses strictly (see ``parse_json``) and caches the result."""

    _kb_json: Any = Ellipsis

    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any | None:
        if not (force or self.is_json):
            if silent:
                return None
            return self.on_json_loading_failed(None)  # 415, in the error shape
        if self._kb_json is not Ellipsis:
            return self._kb_json
        try:
            value = parse_json(self.get_data(cache=cache))
        except BadRequest:
            if silent:
                return None
            raise
        if cache:
            self._kb_json = value
        return value


def _strict_pairs(raw: bytes, what: str) -> None:
    """Refuse url-encoded *raw* (a query string or form body) whose names or values are not UTF-8."""
    for part in raw.split(b"&"):
        name, _, value = part.partition(b"=")
        label = unquote_to_bytes(name.replace(b"+", b" ")).decode("utf-8", "replace")
        for piece, field in ((name, None), (value, label)):
            data = unquote_to_bytes(piece.replace(b"+", b" "))
            try:
                data.decode("utf-8")
            except UnicodeDecodeError as error:
                where = f"the value of {field!r}" if field is not None else "a parameter name"
                raise BadRequest(
                    f"The {what} is not valid UTF-8: {where} has a broken character or a lone "
                    f"surrogate at character {_char_offset(data, error.start)}: percent-encode text "
                    "as UTF-8") from None


def _strict_multipart(body: bytes, boundary: bytes) -> None:
    """Refuse multipart text fields that are not UTF-8 (files are decoded, strictly, by their views)."""
    decoder = MultipartDecoder(boundary)
    decoder.receive_data(body)
    decoder.receive_data(None)
    name: str | None = None
    chunks: list[bytes] = []
    try:
        event = decoder.next_event()
        while not isinstance(event, Epilogue | NeedData):
            if isinstance(event, Field):
                name, chunks = event.name, []
                charset = parse_options_header(event.headers.get("content-type", ""))[1].get("charset", "")
                if charset.lower() in {"iso-8859-1", "latin-1"}:
                    name = None  # declared Latin-1: every byte is a character
            elif isinstance(event, File):
                name = None
            elif isinstance(event, Data) and name is not None:
                chunks.append(event.data)
                if not event.more_data:
                    data = b"".join(chunks)
                    try:
                        data.decode("utf-8")
                    except UnicodeDecodeError as error:
                        raise BadRequest(
                            f"The form field {name!r} is not valid UTF-8: it has a broken character or "
                            f"a lone surrogate at character {_char_offset(data, error.start)}; send the "
                            "form as UTF-8") from None
            event = decoder.next_event()
    except ValueError:
        return  # malformed multipart: werkzeug finds no fields, and the view says what it needs


def check_text_encoding(request: Request) -> None:
    """Refuse a request whose query string or form text is not valid UTF-8 (a 400 naming where)."""
    if request.query_string:
        _strict_pairs(request.query_string, "query string")
    if request.method not in {"POST", "PUT", "PATCH"}:
        return
    if request.mimetype == "application/x-www-form-urlencoded":
        _strict_pairs(request.get_data(), "form")  # cached: werkzeug parses the form from the copy
    elif request.mimetype == "multipart/form-data":
        boundary = request.mimetype_params.get("boundary", "").encode("latin-1", "replace")
        if boundary:
            _strict_multipart(request.get_data(), boundary)
