"""ListNumbering on numbering.xml and styles.xml fragments: the cases the fixture lacks."""

from __future__ import annotations

from typing import Any

from docx.oxml import parse_xml

from dscall.documents.docx_numbering import ListNumbering

W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'


def _numbering(*parts: str) -> Any:
    return parse_xml(f"<w:numbering {W}>{''.join(parts)}</w:numbering>")


def _styles(*parts: str) -> Any:
    return parse_xml(f"<w:styles {W}>{''.join(parts)}</w:styles>")


def _props(inner: str) -> Any:
    return parse_xml(f"<w:pPr {W}>{inner}</w:pPr>")


def _num_pr(num_id: str, ilvl: int | None = None) -> str:
    level = f'<w:ilvl w:val="{ilvl}"/>' if ilvl is not None else ""
    return f'<w:numPr>{level}<w:numId w:val="{num_id}"/></w:numPr>'


ABSTRACT = (
    '<w:abstractNum w:abstractNumId="1">'
    '<w:lvl w:ilvl="0"><w:start w:val="1"/><w:numFmt w:val="decimal"/><w:lvlText w:val="%1."/>'
    '<w:suff w:val="nothing"/></w:lvl>'
    '<w:lvl w:ilvl="1"><w:start w:val="1"/><w:numFmt w:val="upperLetter"/>'
    '<w:lvlText w:val="(%2)"/></w:lvl>'
    '<w:lvl w:ilvl="2"><w:numFmt w:val="none"/><w:lvlText w:val=""/></w:lvl>'
    "</w:abstractNum>"
)


def test_suffix_nothing_override_level_and_format_none() -> None:
    numbering = ListNumbering(
        _numbering(
            ABSTRACT,
            '<w:num w:numId="1"><w:abstractNumId w:val="1"/></w:num>',
            '<w:num w:numId="2"><w:abstractNumId w:val="1"/><w:lvlOverride w:ilvl="0">'
            '<w:lvl w:ilvl="0"><w:start w:val="5"/><w:numFmt w:val="lowerRoman"/>'
            '<w:lvlText w:val="%1:"/></w:lvl></w:lvlOverride></w:num>',
        ),
        None,
    )
    assert numbering.label(_props(_num_pr("1", 0))) == "1."  # suff nothing: no space
    assert numbering.label(_props(_num_pr("1", 1))) == "(A) "
    assert numbering.label(_props(_num_pr("1", 2))) == ""  # numFmt none
    assert numbering.label(_props(_num_pr("2", 0))) == "v: "  # a whole level overridden
    assert numbering.label(_props(_num_pr("2", 0))) == "vi: "  # its own counter
    assert numbering.label(_props(_num_pr("1", 0))) == "2."


def test_num_id_zero_removes_the_style_numbering_and_styles_inherit() -> None:
    styles = _styles(
        '<w:style w:type="paragraph" w:styleId="Base"><w:pPr>'
        + _num_pr("1", 1)
        + "</w:pPr></w:style>",
        '<w:style w:type="paragraph" w:styleId="Child"><w:basedOn w:val="Base"/></w:style>',
        '<w:style w:type="paragraph" w:styleId="Loop"><w:basedOn w:val="Loop"/></w:style>',
    )
    numbering = ListNumbering(
        _numbering(ABSTRACT, '<w:num w:numId="1"><w:abstractNumId w:val="1"/></w:num>'), styles
    )
    child = _props('<w:pStyle w:val="Child"/>')
    assert numbering.label(child) == "(A) "  # numId and level from the base style
    assert numbering.label(_props('<w:pStyle w:val="Child"/>' + _num_pr("0"))) == ""
    assert numbering.label(_props('<w:pStyle w:val="Loop"/>')) == ""  # a basedOn loop ends
    assert numbering.label(_props('<w:pStyle w:val="Missing"/>')) == ""
    assert numbering.label(child) == "(B) "


def test_without_numbering_or_with_unknown_lists_nothing_is_labelled() -> None:
    assert ListNumbering(None, None).label(_props(_num_pr("1", 0))) == ""
    numbering = ListNumbering(_numbering(ABSTRACT), None)  # no w:num instance
    assert numbering.label(_props(_num_pr("1", 0))) == ""
    assert numbering.label(None) == ""
    assert numbering.label(_props(_num_pr("1", 12))) == ""  # beyond Word's nine levels
