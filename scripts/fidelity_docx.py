"""The DOCX fixtures of tests/fixtures/documents/ (written by make_fidelity_fixtures.py):
python-docx documents with WordprocessingML written as XML where python-docx has no API."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import docx
from docx.oxml import parse_xml

W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_W = f'xmlns:w="{W_NS}"'
_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_TYPES = "application/vnd.openxmlformats-officedocument.wordprocessingml"


def _xml(fragment: str) -> Any:
    """A ``w:`` fragment as an lxml element (the namespace declared on its root)."""
    name_end = min(i for i in (fragment.find(" "), fragment.find(">"), fragment.find("/")) if i > 0)
    return parse_xml(f"{fragment[:name_end]} {_W}{fragment[name_end:]}")


def _run(text: str) -> str:
    return f'<w:r><w:t xml:space="preserve">{text}</w:t></w:r>'


def _paragraph(inner: str, properties: str = "") -> str:
    return f"<w:p>{'<w:pPr>' + properties + '</w:pPr>' if properties else ''}{inner}</w:p>"


def _body(document: Any, *paragraphs: str) -> None:
    body = document.element.body
    section = body[-1]  # w:sectPr stays last
    for xml in paragraphs:
        section.addprevious(_xml(xml))


def _save(document: Any, path: Path) -> None:
    document.core_properties.author = "dscall tests"
    document.save(str(path))


def tracked_changes(path: Path) -> None:
    """A sentence moved from the first paragraph to the second, a deletion and an insertion,
    and a deleted table row: read as if every change were accepted."""
    document = docx.Document()
    _body(
        document,
        _paragraph(
            _run("Intro. ")
            + '<w:moveFromRangeStart w:id="1" w:name="move1" w:author="a"/>'
            + '<w:moveFrom w:id="2" w:author="a">'
            + _run("Moved sentence. ")
            + "</w:moveFrom>"
            + '<w:moveFromRangeEnd w:id="1"/>'
            + _run("Middle.")
        ),
        _paragraph(
            _run("End. ")
            + '<w:moveToRangeStart w:id="3" w:name="move1" w:author="a"/>'
            + '<w:moveTo w:id="4" w:author="a">'
            + _run("Moved sentence.")
            + "</w:moveTo>"
            + '<w:moveToRangeEnd w:id="3"/>'
        ),
        _paragraph(
            _run("Kept ")
            + '<w:del w:id="5" w:author="a"><w:r><w:delText>removed </w:delText></w:r></w:del>'
            + '<w:ins w:id="6" w:author="a">'
            + _run("added")
            + "</w:ins>"
            + _run(".")
        ),
        "<w:tbl><w:tr><w:tc><w:p>" + _run("kept row") + "</w:p></w:tc></w:tr>"
        '<w:tr><w:trPr><w:del w:id="7" w:author="a"/></w:trPr><w:tc><w:p>'
        + _run("deleted row")
        + "</w:p></w:tc></w:tr></w:tbl>",
    )
    _save(document, path)


def _notes_part(kind: str, notes: dict[int, str]) -> bytes:
    separators = (
        f'<w:{kind} w:type="separator" w:id="-1"><w:p><w:r><w:separator/></w:r></w:p></w:{kind}>'
        f'<w:{kind} w:type="continuationSeparator" w:id="0"><w:p><w:r>'
        f"<w:continuationSeparator/></w:r></w:p></w:{kind}>"
    )
    ref = "footnoteRef" if kind == "footnote" else "endnoteRef"
    bodies = "".join(
        f'<w:{kind} w:id="{note_id}"><w:p><w:r><w:{ref}/></w:r>{_run(" " + text)}</w:p></w:{kind}>'
        for note_id, text in notes.items()
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<w:{kind}s {_W}>'
        f"{separators}{bodies}</w:{kind}s>"
    ).encode()


def notes(path: Path) -> None:
    """Two footnotes (ids 7 and 3, referred to in that order) and an endnote."""
    document = docx.Document()
    _body(
        document,
        _paragraph(
            _run("Freight rose.")
            + '<w:r><w:footnoteReference w:id="7"/></w:r>'
            + _run(" Costs fell.")
            + '<w:r><w:footnoteReference w:id="3"/></w:r>'
        ),
        _paragraph(_run("See the sources.") + '<w:r><w:endnoteReference w:id="2"/></w:r>'),
    )
    buffer = io.BytesIO()
    document.save(buffer)
    _add_parts(
        buffer.getvalue(),
        path,
        {
            "word/footnotes.xml": (
                "footnotes",
                _notes_part("footnote", {3: "Costs per container.", 7: "Measured in TEU."}),
            ),
            "word/endnotes.xml": (
                "endnotes",
                _notes_part("endnote", {2: "Port authority statistics, 2025."}),
            ),
        },
    )


def _add_parts(data: bytes, path: Path, parts: dict[str, tuple[str, bytes]]) -> None:
    """Add parts related to the main document (name -> (relationship/content kind, bytes))."""
    with zipfile.ZipFile(io.BytesIO(data)) as old, zipfile.ZipFile(path, "w") as new:
        for info in old.infolist():
            member = old.read(info.filename)
            if info.filename == "[Content_Types].xml":
                overrides = "".join(
                    f'<Override PartName="/{name}" ContentType="{_TYPES}.{kind}+xml"/>'
                    for name, (kind, _) in parts.items()
                )
                member = member.replace(b"</Types>", overrides.encode() + b"</Types>")
            elif info.filename == "word/_rels/document.xml.rels":
                rels = "".join(
                    f'<Relationship Id="rIdFixture{number}" Type="{_RELS}/{kind}" '
                    f'Target="{name.removeprefix("word/")}"/>'
                    for number, (name, (kind, _)) in enumerate(parts.items())
                )
                member = member.replace(b"</Relationships>", rels.encode() + b"</Relationships>")
            new.writestr(info, member)
        for name, (_, content) in parts.items():
            new.writestr(name, content)


def _level(ilvl: int, fmt: str, text: str, start: int = 1) -> str:
    return (
        f'<w:lvl w:ilvl="{ilvl}"><w:start w:val="{start}"/><w:numFmt w:val="{fmt}"/>'
        f'<w:lvlText w:val="{text}"/></w:lvl>'
    )


def lists(path: Path) -> None:
    """Numbered lists two levels deep, a bullet list (Symbol font's private-use bullet), a
    list starting at III via an override, legal numbering "%1.%2.", and python-docx's own
    "List Number" / "List Bullet" styles, which number through the style."""
    document = docx.Document()
    numbering = document.part.numbering_part.element
    first = numbering[0]  # abstractNum definitions must come before num instances
    for xml in (
        '<w:abstractNum w:abstractNumId="90">'
        + _level(0, "decimal", "%1.")
        + _level(1, "lowerLetter", "%2.")
        + _level(2, "lowerRoman", "%3)")
        + "</w:abstractNum>",
        '<w:abstractNum w:abstractNumId="91">'
        + _level(0, "bullet", "\uf0b7")
        + _level(1, "bullet", "o")
        + "</w:abstractNum>",
        '<w:abstractNum w:abstractNumId="92">'
        + _level(0, "upperRoman", "%1.")
        + "</w:abstractNum>",
        '<w:abstractNum w:abstractNumId="93">'
        + _level(0, "decimal", "%1.")
        + _level(1, "decimal", "%1.%2.")
        + "</w:abstractNum>",
    ):
        first.addprevious(_xml(xml))
    for xml in (
        '<w:num w:numId="90"><w:abstractNumId w:val="90"/></w:num>',
        '<w:num w:numId="91"><w:abstractNumId w:val="91"/></w:num>',
        '<w:num w:numId="92"><w:abstractNumId w:val="92"/>'
        '<w:lvlOverride w:ilvl="0"><w:startOverride w:val="3"/></w:lvlOverride></w:num>',
        '<w:num w:numId="93"><w:abstractNumId w:val="93"/></w:num>',
    ):
        numbering.append(_xml(xml))

    def item(text: str, num_id: int, ilvl: int = 0) -> str:
        props = f'<w:numPr><w:ilvl w:val="{ilvl}"/><w:numId w:val="{num_id}"/></w:numPr>'
        return _paragraph(_run(text), props)

    _body(
        document,
        item("one", 90),
        item("two", 90),
        item("two a", 90, 1),
        item("two b", 90, 1),
        item("two b i", 90, 2),
        item("three", 90),
        item("three a", 90, 1),  # restarts at a: a deeper level restarts after its parent
        _paragraph(_run("Not a list item.")),
        item("bullet", 91),
        item("sub-bullet", 91, 1),
        item("third", 92),
        item("fourth", 92),
        item("chapter", 93),
        item("section", 93, 1),
        item("section", 93, 1),
    )
    document.add_paragraph("styled one", style="List Number")
    document.add_paragraph("styled two", style="List Number")
    document.add_paragraph("styled bullet", style="List Bullet")
    _save(document, path)


def drop_cap_and_symbols(path: Path) -> None:
    """A drop cap frame paragraph, and w:sym characters: Wingdings check mark and box,
    Symbol arrow and alpha, a Wingdings code with no Unicode equivalent known, and a w:sym in
    a text font."""

    def sym(font: str, char: str) -> str:
        return f'<w:r><w:sym w:font="{font}" w:char="{char}"/></w:r>'

    document = docx.Document()
    _body(
        document,
        _paragraph(
            _run("D"), '<w:framePr w:dropCap="drop" w:lines="3" w:wrap="around" w:vAnchor="text"/>'
        ),
        _paragraph(_run("rop cap opens this paragraph.")),
        _paragraph(
            _run("Done ")
            + sym("Wingdings", "F0FC")
            + _run(" boxes ")
            + sym("Wingdings", "F0FE")
            + _run(" next ")
            + sym("Symbol", "F0AE")
            + _run(" alpha ")
            + sym("Symbol", "F061")
            + _run(" unknown ")
            + sym("Wingdings", "F0B0")
            + _run(" text font ")
            + sym("Times New Roman", "F0E9")
        ),
    )
    _save(document, path)


def headers_and_notes(path: Path) -> None:
    """A header, a footer and a body paragraph: the --headers option's document."""
    document = docx.Document()
    section = document.sections[0]
    section.header.paragraphs[0].text = "ACME Logistics - confidential"
    section.footer.paragraphs[0].text = "Quarterly report footer"
    document.add_paragraph("Freight volumes rose in the third quarter.")
    _save(document, path)


def write_docx_fixtures(out: Path) -> None:
    """Write each DOCX fixture into ``out``."""
    tracked_changes(out / "tracked_changes.docx")
    notes(out / "notes.docx")
    lists(out / "lists.docx")
    drop_cap_and_symbols(out / "drop_cap_symbols.docx")
    headers_and_notes(out / "headers_footers.docx")
