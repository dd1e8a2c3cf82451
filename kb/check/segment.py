"""Reading an article: decoding, HTML reduced to text, and cutting the text into units.

A unit is a sentence, a heading or a list item, with character offsets into the analysed text.
Markdown structure is honoured without rendering it: a heading line (``# ...`` or underlined with
``===``/``---``) and a bullet or numbered item are units of their own and never merge with their
neighbours; paragraphs go through the shared sentence splitter (``kb.text.split_sentences``,
pysbd), which knows "et al.", "Dr.", "vs.", "e.g.", decimals and symbols such as ®.

HTML is reduced to text with the standard library's parser (no network, no entity tricks):
script, style and other non-content elements are dropped with their content, entities are
decoded, block elements become paragraphs, ``<h1>``-``<h6>`` become ``#`` headings, ``<li>``
become ``-`` items and ``<sup>1,2</sup>`` becomes ``[1,2]`` so it reads as a citation. Offsets
then refer to that text, which the checker returns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser

from kb.check.word import DOCX_MIME
from kb.check.worthiness import has_verb, is_title
from kb.errors import BadRequest, PayloadTooLarge
from kb.text import Span, split_sentences

# "docx": a Word document already converted to Markdown by kb.check.word (read as Markdown).
CONTENT_TYPES: tuple[str, ...] = ("text", "markdown", "html", "docx")

_HTML_HINT = re.compile(r"<(?:!doctype\s+html|html|body|p|div|h[1-6]|ul|ol|li|article|section|br|sup|"
                        r"span|a\s|em|strong|table|main)\b", re.IGNORECASE)
_HEADING = re.compile(r"^(#{1,6})[ \t]+(.*?)[ \t#]*$")
_SETEXT = re.compile(r"^[ \t]*(=+|-+)[ \t]*$")
_ITEM = re.compile(r"^[ \t]*(?:[-*+\u2022\u2023\u25e6\u2043]|\d{1,3}[.)]|\[\d{1,3}\]|\[\^[\w-]+\]:)[ \t]+")
_FENCE = re.compile(r"^[ \t]*(```|~~~)")
_RULE = re.compile(r"^([-*_])(?:[ \t]*\1){2,}$")
_TABLE_RULE = re.compile(r"^[ \t]*\|?[ \t:]*-{3,}")
# "...within hours.It also ...": two sentences glued without a space, which pysbd keeps as one. A
# stop after two lower-case letters, a digit, "%" or a closing bracket, then a capitalised word,
# is a boundary; abbreviations ("e.g.", "U.S.") and decimals ("0.5") are not matched, and the
# few lower-case abbreviations that may precede a name are left out below.
_GLUED = re.compile(r"(?:(?<=[a-z]{2}[.!?])|(?<=[0-9%)\]][.!?]))(?=[A-Z][a-z])")
_GLUED_ABBREVIATIONS = frozenset("""vs al etc approx incl fig figs ca cf resp eq ref refs no nos vol pp ed
eds dr mr mrs ms prof st jr sr inc ltd co corp dept univ est""".split())


def content_type_for(hint: str | None, filename: str | None = None) -> str | None:
    """Map a MIME type, a format name or a file name to "text", "markdown", "html" or "docx" (None: detect).

    >>> content_type_for("text/html"), content_type_for(None, "draft.md"), content_type_for("plain")
    ('html', 'markdown', 'text')
    >>> content_type_for(None, "Draft v2.DOCX")
    'docx'
    """
    for value in (hint or "", filename or ""):
        value = value.lower().split(";")[0].strip()
        if not value:
            continue
        if value in {"docx", DOCX_MIME} or value.endswith(".docx"):
            return "docx"
        if "html" in value or value.endswith((".htm", ".xhtml")):
            return "html"
        if "markdown" in value or value in {"md", "text/x-markdown"} or value.endswith((".md", ".markdown")):
            return "markdown"
        if value in {"text", "plain", "txt", "text/plain"} or value.endswith(".txt"):
            return "text"
    return None


def detect_content_type(text: str, hint: str | None = None) -> str:
    """The content type to read *text* as: the hint if it names one, else a look at the text."""
    named = content_type_for(hint)
    if named:
        return named
    head = text[:5000]
    if head.lstrip().lower().startswith(("<!doctype html", "<html")) or len(_HTML_HINT.findall(head)) >= 2:
        return "html"
    if re.search(r"^#{1,6} |^[-*] |\]\(https?://", text, re.MULTILINE):
        return "markdown"
    return "text"


def decode_upload(data: bytes, limit: int) -> str:
    """Bytes of an uploaded article as text; BadRequest for binary data, PayloadTooLarge over *limit*.

    Only UTF-8 (with or without a byte-order mark) and UTF-16 with a byte-order mark are read:
    guessing other encodings would turn binary files into nonsense text instead of an error.
    """
    if len(data) > limit:
        raise PayloadTooLarge(f"The article is {len(data):,} bytes; the limit is {limit:,} bytes "
                              "(about 30,000 words): check it in parts")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as error:
            raise BadRequest("The file could not be read as UTF-16 text; save it as UTF-8 text, "
                             "Markdown or HTML") from error
    if b"\x00" in data[:8192]:
        raise BadRequest("The file looks binary (it contains NUL bytes); upload plain text, Markdown, "
                         "HTML or a Word .docx (save an older .doc or a PDF as .docx or .txt first)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise BadRequest(f"The file is not UTF-8 text (undecodable byte at position {error.start}); "
                         "upload plain text, Markdown or HTML saved as UTF-8") from error
    controls = sum(1 for c in text[:8192] if ord(c) < 32 and c not in "\n\r\t\f")
    if controls > 8:
        raise BadRequest("The file looks binary (it contains control characters); upload plain "
                         "text, Markdown or HTML")
    return text


# --- HTML to text ---------------------------------------------------------------------------

_DROP = {"script", "style", "noscript", "template", "head", "svg", "math", "iframe", "object",
         "canvas", "select", "button", "form", "nav", "title"}
_BLOCK = {"p", "div", "section", "article", "main", "header", "footer", "aside", "blockquote",
          "pre", "table", "tr", "ul", "ol", "dl", "dt", "dd", "figure", "figcaption", "address",
          "hr", "body", "html", "caption", "details", "summary"}
_VOID = {"br", "hr", "img", "input", "meta", "link", "wbr", "col", "area", "base", "source", "embed"}


class _TextExtractor(HTMLParser):
    """Collects the readable text of an HTML document with paragraph, heading and item breaks."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.drop_depth = 0
        self.sup: list[str] | None = None
        self.lists: list[list[int]] = []  # open lists: [] for <ul>, [count] for <ol>

    def _newline(self, count: int = 2) -> None:
        text = "".join(self.parts[-3:])
        have = len(text) - len(text.rstrip("\n"))
        if self.parts and have < count:
            self.parts.append("\n" * (count - have))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _DROP:
            if tag not in _VOID:
                self.drop_depth += 1
            return
        if self.drop_depth:
            return
        if tag in {"ul", "ol"}:
            start = dict(attrs).get("start") or "1"
            self.lists.append([int(start) - 1] if tag == "ol" and start.isdigit() else [])
        if tag == "br":
            self.parts.append("\n")
        elif tag in _BLOCK:
            self._newline()
        elif re.fullmatch(r"h[1-6]", tag):
            self._newline()
            self.parts.append("#" * int(tag[1]) + " ")
        elif tag == "li":
            self._newline(1)
            numbered = self.lists[-1] if self.lists else []
            if numbered:  # an <ol> item keeps its number, so "[2]" can find reference 2
                numbered[0] += 1
                self.parts.append(f"{numbered[0]}. ")
            else:
                self.parts.append("- ")
        elif tag == "sup":
            self.sup = []
        elif tag in {"td", "th"}:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _DROP:
            self.drop_depth = max(0, self.drop_depth - 1)
            return
        if self.drop_depth:
            return
        if tag == "sup" and self.sup is not None:
            inner = "".join(self.sup).strip()
            # A superscript of reference numbers is a citation; anything else (m², 10⁶) stays text.
            before = re.search(r"(\S*)$", "".join(self.parts[-3:]))
            unit = bool(before and re.fullmatch(r"\d*(?:m|cm|mm|km|ft|in|s)|\d+", before.group(1)))
            if not unit and re.fullmatch(r"\[?\d{1,3}(?:\s*[,\u2013\u2014-]\s*\d{1,3})*\]?", inner):
                self.parts.append("[" + inner.strip("[]") + "]")
            else:
                self.parts.append(inner)
            self.sup = None
        elif tag in _BLOCK or re.fullmatch(r"h[1-6]", tag):
            if tag in {"ul", "ol"} and self.lists:
                self.lists.pop()
            self._newline()
        elif tag == "li":
            self._newline(1)

    def handle_data(self, data: str) -> None:
        if self.drop_depth:
            return
        # HTML collapses runs of white space; so does the text we analyse.
        data = re.sub(r"\s+", " ", data)
        if self.sup is not None:
            self.sup.append(data)
            return
        if self.parts and re.search(r"(?:\n|# |- |\d\. )$", self.parts[-1]):
            data = data.lstrip()
        self.parts.append(data)


def html_to_text(html: str) -> str:
    """The readable text of an HTML document; headings become ``#`` lines, items ``-`` lines.

    >>> html_to_text("<h2>Results</h2><p>Mood &amp; sleep improved<sup>1</sup>.<script>x()</script></p>")
    '## Results\\n\\nMood & sleep improved[1].'
    """
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    text = "".join(parser.parts)
    lines = [line.strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


# --- units ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Unit:
    """A sentence, heading or list item, with offsets into the analysed text."""

    text: str
    start: int
    end: int
    kind: str  # "sentence", "heading" or "item"
    level: int = 0  # heading level (1-6), 0 for other units


@dataclass(frozen=True, slots=True)
class _Line:
    text: str
    start: int


def _lines(text: str) -> list[_Line]:
    lines, position = [], 0
    for line in text.split("\n"):
        lines.append(_Line(line, position))
        position += len(line) + 1
    return lines


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _is_plain_heading(line: str, before_blank: bool, after_blank: bool) -> bool:
    """A short line standing alone with no closing punctuation reads as a heading in plain text,
    unless it is a sentence without its full stop ("Mitochondria play a major role in apoptosis"):
    a line with a verb is a heading only in Title Case."""
    words = line.split()
    return (before_blank and after_blank and 0 < len(words) <= 10 and not line.rstrip().endswith(
        (".", "!", "?", ":", ";", ",", ")", "]")) and line[:1].isupper()
        and (is_title(line) or not has_verb(line)))


def _unglued(spans: list[Span]) -> list[Span]:
    """*spans* with sentences glued without a space ("hours.It") cut apart, offsets kept."""
    result: list[Span] = []
    for span in spans:
        cuts = []
        for match in _GLUED.finditer(span.text):
            before = re.search(r"(\w+)[.!?]$", span.text[:match.start()])
            if before is None or before.group(1).casefold() not in _GLUED_ABBREVIATIONS:
                cuts.append(match.start())
        begin = 0
        for cut in [*cuts, len(span.text)]:
            piece = span.text[begin:cut]
            lead = len(piece) - len(piece.lstrip())
            piece = piece.strip()
            if piece:
                start = span.start + begin + lead
                result.append(Span(piece, start, start + len(piece)))
            begin = cut
    return result


def segment(text: str) -> list[Unit]:
    """Cut *text* into units: headings and list items whole, paragraphs into sentences.

    >>> [(u.kind, u.text) for u in segment("# Ketamine\\n\\nIt works fast. Dr. Lee agrees.\\n- A point")]
    [('heading', 'Ketamine'), ('sentence', 'It works fast.'), ('sentence', 'Dr. Lee agrees.'), ('item', 'A point')]
    """
    lines = _lines(text)
    units: list[Unit] = []
    paragraph: list[_Line] = []
    in_fence = False

    def flush() -> None:
        if not paragraph:
            return
        start = paragraph[0].start
        end = paragraph[-1].start + len(paragraph[-1].text)
        for span in _unglued(split_sentences(text[start:end], offset=start)):
            units.append(Unit(span.text, span.start, span.end, "sentence"))
        paragraph.clear()

    def blank(index: int) -> bool:
        return index < 0 or index >= len(lines) or not lines[index].text.strip()

    index = 0
    while index < len(lines):
        line = lines[index]
        stripped = line.text.strip()
        if _FENCE.match(line.text):
            flush()
            in_fence = not in_fence
        elif in_fence:
            pass  # code is not prose
        elif not stripped or _RULE.match(stripped) or not re.search(r"\w", stripped):
            flush()  # blank lines, thematic breaks ("---") and lines of bare symbols hold no prose
        elif heading := _HEADING.match(stripped):
            flush()
            offset = line.start + line.text.index(heading.group(2)) if heading.group(2) else line.start
            if heading.group(2):
                units.append(Unit(heading.group(2), offset, offset + len(heading.group(2)), "heading",
                                  len(heading.group(1))))
        elif (index + 1 < len(lines) and _SETEXT.match(lines[index + 1].text) and not paragraph
              and not _ITEM.match(line.text)):
            flush()
            start, end = _trimmed(text, line.start, line.start + len(line.text))
            level = 1 if lines[index + 1].text.strip().startswith("=") else 2
            units.append(Unit(text[start:end], start, end, "heading", level))
            index += 1  # the underline
        elif stripped.startswith("|") or _TABLE_RULE.match(line.text) and "|" in line.text:
            flush()  # tables hold figures out of context; not prose to check
        elif item := _ITEM.match(line.text):
            flush()
            # An item runs on over indented continuation lines.
            end = line.start + len(line.text)
            while (index + 1 < len(lines) and lines[index + 1].text[:1] in {" ", "\t"}
                   and lines[index + 1].text.strip() and not _ITEM.match(lines[index + 1].text)):
                index += 1
                end = lines[index].start + len(lines[index].text)
            start = line.start + item.end()
            start, end = _trimmed(text, start, end)
            if start < end:
                spans = _unglued(split_sentences(text[start:end], offset=start))
                for number, span in enumerate(spans):
                    units.append(Unit(span.text, span.start, span.end, "item" if number == 0 else "sentence"))
        elif (not paragraph and _is_plain_heading(stripped, blank(index - 1), blank(index + 1))):
            start, end = _trimmed(text, line.start, line.start + len(line.text))
            units.append(Unit(text[start:end], start, end, "heading", 2))
        else:
            paragraph.append(line)
        index += 1
    flush()
    return units


def prepare(text: str, content_type: str | None = None) -> tuple[str, str]:
    """The text to analyse and how it was read: (analysed text, "text"|"markdown"|"html")."""
    kind = detect_content_type(text, content_type)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if kind == "html":
        text = html_to_text(text)
    return text, kind
