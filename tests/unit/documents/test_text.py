from __future__ import annotations

import codecs

import pytest

from dscall.documents.text import decode_text, describe_content, extract_text, normalise

CHINESE = "长江物流第三季度货运量增长百分之十二，集装箱业务增长最快。"


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (b"plain ascii\n", "utf-8"),
        ("naïve café 中文\n".encode(), "utf-8"),
        (codecs.BOM_UTF8 + "with bom 中文".encode(), "utf-8"),
        (codecs.BOM_UTF16_LE + "utf16 le 中文".encode("utf-16-le"), "utf-16"),
        (codecs.BOM_UTF16_BE + "utf16 be 中文".encode("utf-16-be"), "utf-16"),
        (codecs.BOM_UTF32_LE + "utf32 中文".encode("utf-32-le"), "utf-32"),
    ],
)
def test_unicode_encodings_are_detected(data: bytes, encoding: str) -> None:
    text, found = decode_text(data)
    assert found == encoding
    assert not text.startswith("\ufeff")
    assert text.strip().split()[0] in {"plain", "naïve", "with", "utf16", "utf32"}


def test_bom_less_utf16_of_mostly_latin_text() -> None:
    text, encoding = decode_text("Meeting notes, Monday\nAll present.\n".encode("utf-16-le"))
    assert encoding == "utf-16-le"
    assert text == "Meeting notes, Monday\nAll present.\n"


def test_gbk_chinese_comes_out_right() -> None:
    text, encoding = decode_text((CHINESE + "\nQ3 report 2025\n").encode("gbk"))
    assert encoding == "gb18030"
    assert text == CHINESE + "\nQ3 report 2025\n"


def test_gb2312_only_text_decodes_as_gb18030() -> None:
    text, _ = decode_text("简体中文测试：一、二、三。".encode("gb2312"))
    assert text == "简体中文测试：一、二、三。"


def test_western_cp1252_is_not_taken_for_gbk() -> None:
    # "é" followed by an ASCII letter decodes as GBK too; the GB2312-range check rejects it.
    data = "Résumé of the café meeting, naïve approach.\n".encode("cp1252")
    text, encoding = decode_text(data)
    assert encoding == "cp1252"
    assert text == "Résumé of the café meeting, naïve approach.\n"


def test_cp1252_specials_and_latin1_fallback() -> None:
    assert decode_text("“quoted” – €5".encode("cp1252")) == ("“quoted” – €5", "cp1252")
    # 0x81 is undefined in cp1252: only latin-1 takes it.
    assert decode_text(b"abc\x81def ")[1] == "latin-1"


def test_normalise_line_ends_controls_and_surrogates() -> None:
    raw = "a\r\nb\rc\x0cd\x0be\x00f\x1b[31mg\x7f\th\ud800i"
    assert normalise(raw) == "a\nb\nc\nd\nef[31mg\th\ufffdi"


def test_normalise_keeps_hyphenation_and_unicode_as_is() -> None:
    assert normalise("co-\noperative ﬁ café") == "co-\noperative ﬁ café"


def test_extract_text_warns_only_for_legacy_encodings() -> None:
    assert extract_text(b"utf-8 text") == ("utf-8 text", ())
    text, warnings = extract_text(CHINESE.encode("gbk"))
    assert text == CHINESE
    assert warnings == ("not UTF-8: decoded as gb18030",)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"<!DOCTYPE html><html><body>404</body></html>", "HTML"),
        (b"\n  <html lang='en'>", "HTML"),
        (b"<?xml version='1.0'?><root/>", "XML"),
        (b"PK\x03\x04rest", "ZIP"),
        (b"%PDF-1.7\n...", "PDF"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1rest", "OLE2"),
        (b"\x89PNG\r\n\x1a\n", "image"),
        (b"{\\rtf1\\ansi hello}", "RTF"),
        (b"just some words\n", "plain text"),
        (b"\x00\x01\x02\x03binary", "starts with"),
    ],
)
def test_describe_content(data: bytes, expected: str) -> None:
    assert expected in describe_content(data)
