"""Word drafts (.docx) read as Markdown, so the checker sees the structure the writer gave them.

A .docx is a zip of XML parts. Before python-docx opens one, its zip directory is read and the
file is refused (a 400 saying what to do) when it is not a zip, has no ``word/document.xml``,
holds too many members, or declares more uncompressed bytes than ``MAX_UNCOMPRESSED_BYTES``: a
zip bomb is refused from its directory alone, before anything is inflated. The declared sizes
can be trusted as an upper bound because Python's zipfile stops inflating a member at its
declared size and fails its CRC check if the data is longer. python-docx parses the XML with
entity resolution off, so a part cannot expand entities or fetch external ones either.

The body is converted in document order: a paragraph styled "Title" or "Heading N" becomes a
Markdown heading (``#`` x N), a list paragraph (a "List ..." style or Word numbering) a ``-``
item indented by its level, a table one ``| cell | cell |`` line per row, and every other
paragraph a paragraph of its own, blocks separated by a blank line. Line breaks inside a
paragraph become spaces, so one paragraph never splits into two. Headers, footers, footnotes,
comments and text boxes are not read. The checker's offsets then refer to this text, which it
returns as ``text``.
"""

from __future__ import annotations

import io
import re
import zipfile
from typing import Any

from kb.errors import BadRequest

DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
MAX_UNCOMPRESSED_BYTES = 16 * 1024 * 1024  # an honest 200 KB draft inflates to a few MB at most
MAX_MEMBERS = 1000  # a draft has a few dozen parts; thousands are a crafted file
_ZIP_MAGIC = b"PK\x03\x04"
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_HEADING_STYLE = re.compile(r"^heading\s*([1-6])$", re.IGNORECASE)
_SAVE_AS = "save it again from Word (File > Save As > Word Document), or as .txt or .html"


def looks_like_docx(data: bytes) -> bool:
    """True when *data* starts like a zip archive, the container every .docx is.

    >>> looks_like_docx(b"PK\\x03\\x04..."), looks_like_docx(b"# A draft")
    (True, False)
    """
    return data.startswith(_ZIP_MAGIC)


def _checked_zip(data: bytes, name: str) -> None:
    """Refuse *data* unless it is a zip with a Word body and bounded uncompressed size."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raise BadRequest(f"{name} is not a readable Word document (the zip container is damaged): "
                         f"{_SAVE_AS}") from None
    if len(members) > MAX_MEMBERS:
        raise BadRequest(f"{name} has {len(members):,} parts (the limit is {MAX_MEMBERS:,}): it is not "
                         f"an ordinary Word draft; {_SAVE_AS}")
    if not any(m.filename == "word/document.xml" for m in members):
        raise BadRequest(f"{name} is a zip file but not a Word document (no word/document.xml); upload "
                         "a .docx, or the text as .txt, .md or .html")
    inflated = sum(m.file_size for m in members)
    if inflated > MAX_UNCOMPRESSED_BYTES:
        raise BadRequest(f"{name} would inflate to {inflated:,} bytes (the limit is "
                         f"{MAX_UNCOMPRESSED_BYTES:,}): remove images and embedded files, or {_SAVE_AS}")


def _style_name(paragraph: Any) -> str:
    try:
        style = paragraph.style
    except (KeyError, ValueError):  # a style id the styles part does not define
        return ""
    return str(style.name or "") if style is not None else ""


def _list_level(paragraph: Any, style: str) -> int | None:
    """The 0-based list level of a list paragraph, or None when it is not a list item."""
    props = paragraph._p.pPr
    numbering = props.find(f"{_W}numPr") if props is not None else None
    if numbering is not None:
        level = numbering.find(f"{_W}ilvl")
        value = level.get(f"{_W}val") if level is not None else "0"
        return int(value) if value and value.isdigit() else 0
    if style.lower().startswith("list"):
        found = re.search(r"(\d)$", style)
        return int(found.group(1)) - 1 if found and found.group(1) != "0" else 0
    return None


def _clean(text: str) -> str:
    """One line: Word's line breaks and tabs inside a paragraph become single spaces."""
    return re.sub(r"[ \t\r\n\v\f\u00a0]+", " ", text).strip()


def _paragraph_block(paragraph: Any) -> tuple[str, bool]:
    """(Markdown for one paragraph, whether it is a list item) - "" for an empty paragraph."""
    text = _clean(paragraph.text)
    if not text:
        return "", False
    style = _style_name(paragraph)
    heading = _HEADING_STYLE.match(style)
    if heading:
        return f"{'#' * int(heading.group(1))} {text}", False
    if style.lower() == "title":
        return f"# {text}", False
    level = _list_level(paragraph, style)
    if level is not None:
        return f"{'  ' * min(level, 8)}- {text}", True
    return text, False


def _table_lines(table: Any) -> list[str]:
    lines = []
    for number, row in enumerate(table.rows):
        cells = [_clean(cell.text).replace("|", "/") for cell in row.cells]
        lines.append("| " + " | ".join(cells) + " |")
        if number == 0:
            lines.append("|" + "---|" * len(cells))
    return lines


def docx_to_text(data: bytes, name: str = "The file") -> str:
    """The body of a .docx as Markdown text; BadRequest (naming *name*) for a damaged or hostile file."""
    _checked_zip(data, name)
    import docx  # python-docx: imported here, so a server that never sees a .docx never loads it
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(io.BytesIO(data))
        blocks: list[str] = []
        items: list[str] = []  # consecutive list items stay one block, one item per line
        for child in document.element.body.iterchildren():
            if child.tag == f"{_W}p":
                block, is_item = _paragraph_block(Paragraph(child, document))
                if is_item:
                    items.append(block)
                    continue
                lines = [block] if block else []
            elif child.tag == f"{_W}tbl":
                lines = ["\n".join(_table_lines(Table(child, document)))]
            else:
                continue
            if items:
                blocks.append("\n".join(items))
                items = []
            blocks.extend(lines)
        if items:
            blocks.append("\n".join(items))
    except BadRequest:
        raise
    except Exception:  # noqa: BLE001 - python-docx and lxml raise many kinds for a broken part
        raise BadRequest(f"{name} is not a readable Word document (its XML is damaged or it is not a "
                         f".docx): {_SAVE_AS}") from None
    return "\n\n".join(blocks) + "\n" if blocks else ""


def read_upload(data: bytes, limit: int, hint: str | None, name: str) -> tuple[str, str | None]:
    """(text, content type) of an uploaded article's bytes, a .docx converted to Markdown first.

    A zip is read as a .docx whatever its name says (Word drafts are often renamed), and a
    "docx" hint on bytes that are no zip is refused by ``docx_to_text``. The .docx file itself,
    like any upload, may be at most *limit* bytes; so may the text taken out of it (the
    checker's own limit). Anything else goes through ``decode_upload`` unchanged.
    """
    from kb.check.segment import decode_upload
    from kb.errors import PayloadTooLarge

    if hint == "docx" or looks_like_docx(data):
        if len(data) > limit:
            raise PayloadTooLarge(f"{name} is over {limit:,} bytes (the upload limit): save it without "
                                  "images, or check it in parts")
        return docx_to_text(data, name), "docx"
    return decode_upload(data, limit), hint
