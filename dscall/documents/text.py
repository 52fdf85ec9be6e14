"""Plain text (.txt, .md): bytes -> str with encoding detection, and the text normalisation
every extractor shares.

Detection order, first match wins:

1. a byte-order mark: UTF-8, UTF-32 (checked before UTF-16, whose BOM is its prefix), UTF-16;
2. UTF-16 without a BOM, when every other byte of an even-length file is mostly NUL (text
   files never hold NULs otherwise, and UTF-16 ASCII would pass for UTF-8 with NULs);
3. strict UTF-8 (by far the most common encoding, and it almost never decodes by accident);
4. GB18030 (a superset of GBK and GB2312), accepted only when it decodes strictly *and* most
   double-byte characters lie in the GB2312 range (both bytes 0xA1-0xFE) where common Chinese
   text lives. Without that check, Western text in cp1252 (``résumé``: ``E9 73``) would decode
   as GBK nonsense;
5. cp1252, then latin-1, which decodes anything.

No detection library is used: this order gets the cases dscall's users meet (UTF-8 with or
without BOM, Windows UTF-16, GBK Chinese, Western legacy files) right, and the GB2312 test is
what distinguishes the two legacy families that matter. Big5, Shift-JIS and EUC-KR are not
detected (they come out as cp1252 mojibake).

Normalisation (``normalise``, shared with the PDF and DOCX extractors): ``\\r\\n`` and ``\\r``
become ``\\n``; form feed and vertical tab become ``\\n``; NUL and the other C0 control
characters except ``\\t`` and ``\\n`` are removed, as is DEL; lone surrogates (from broken
PDF text maps) become U+FFFD so the text can always be written as UTF-8. Hyphenation, spacing
and Unicode normal form are left as the file has them.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_CONTROL = re.compile("[\x00-\x08\x0e-\x1f\x7f]")
_NEWLINES = re.compile("\r\n?|[\x0b\x0c]")
_SURROGATE = re.compile("[\ud800-\udfff]")
# Below this share of double-byte characters in the GB2312 range, a GB18030 decode is taken
# for an accident of a Western encoding.
_GB2312_MIN_SHARE = 0.8
# Share of NUL bytes at odd (or even) offsets that marks BOM-less UTF-16 of mostly-ASCII text.
_UTF16_NUL_SHARE = 0.4
# The GB2312-range test reads this much: a byte loop in Python, and a sample decides as well.
_GB_SAMPLE_BYTES = 1 << 20
_SNIFF_BYTES = 1024


def normalise(text: str) -> str:
    """Line ends to ``\\n``, control characters and lone surrogates out (see module doc)."""
    # Each step looks before it rewrites: most text needs none of them, and this runs on
    # every PDF page.
    if "\r" in text or "\x0b" in text or "\x0c" in text:
        text = _NEWLINES.sub("\n", text)
    if _CONTROL.search(text):
        text = _CONTROL.sub("", text)
    if _SURROGATE.search(text):
        text = _SURROGATE.sub("\ufffd", text)
    return text


def decode_text(data: bytes) -> tuple[str, str]:
    """Decode ``data`` and normalise it; returns ``(text, encoding)``."""
    text, encoding = _decode(data)
    return normalise(text), encoding


def _decode(data: bytes) -> tuple[str, str]:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            # Declared by its BOM: a stray bad byte is replaced rather than failing the file.
            return data.decode(encoding, errors="replace"), encoding.replace("-sig", "")
    # Before UTF-8: UTF-16 of ASCII text is valid UTF-8 too, with a NUL after every letter.
    utf16 = _bomless_utf16(data)
    if utf16 is not None:
        return utf16
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    if _looks_like_gb(data):
        return data.decode("gb18030"), "gb18030"
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


def _bomless_utf16(data: bytes) -> tuple[str, str] | None:
    if len(data) < 4 or len(data) % 2:
        return None
    half = len(data) // 2
    odd_nuls = data[1::2].count(0) / half
    even_nuls = data[0::2].count(0) / half
    encoding = None
    if odd_nuls >= _UTF16_NUL_SHARE and even_nuls < odd_nuls / 4:
        encoding = "utf-16-le"
    elif even_nuls >= _UTF16_NUL_SHARE and odd_nuls < even_nuls / 4:
        encoding = "utf-16-be"
    if encoding is None:
        return None
    try:
        return data.decode(encoding), encoding
    except UnicodeDecodeError:
        return None


def _looks_like_gb(data: bytes) -> bool:
    """True when ``data`` decodes as GB18030 and reads like GB2312-range Chinese."""
    try:
        data.decode("gb18030")
    except UnicodeDecodeError:
        return False
    return _reads_like_gb2312(data[:_GB_SAMPLE_BYTES])


def _reads_like_gb2312(data: bytes) -> bool:
    pairs = in_range = 0
    i, n = 0, len(data)
    while i < n:
        lead = data[i]
        if lead < 0x80:
            i += 1
            continue
        if i + 1 < n and 0x30 <= data[i + 1] <= 0x39:  # a GB18030 four-byte sequence
            i += 4
            pairs += 1
            continue
        pairs += 1
        if i + 1 < n and lead >= 0xA1 and data[i + 1] >= 0xA1:
            in_range += 1
        i += 2
    return pairs > 0 and in_range / pairs >= _GB2312_MIN_SHARE


@dataclass(frozen=True, slots=True)
class Encoding:
    """How to decode a text file: the codec and error mode, and the name reported."""

    codec: str
    errors: str
    name: str

    def decoder(self) -> codecs.IncrementalDecoder:
        return codecs.getincrementaldecoder(self.codec)(self.errors)


class EncodingSniffer:
    """``_decode``'s choice of encoding for a file read block by block, never held whole.

    ``feed`` every block of one read of the file, then ``choose``: the rare encodings that need
    the whole file to be tried (BOM-less UTF-16, GB18030, cp1252) are checked in further reads
    through ``reread``, one decoder's state at a time.
    """

    def __init__(self) -> None:
        self.size = 0
        self._head = bytearray()  # the first _GB_SAMPLE_BYTES, for the BOM and the GB test
        self._nuls = [0, 0]  # NUL bytes at even and at odd offsets
        self._utf8: codecs.IncrementalDecoder | None = codecs.getincrementaldecoder("utf-8")()

    def feed(self, block: bytes) -> None:
        if len(self._head) < _GB_SAMPLE_BYTES:
            self._head += block[: _GB_SAMPLE_BYTES - len(self._head)]
        first = self.size % 2  # parity of this block's first byte in the file
        self._nuls[first] += block[0::2].count(0)
        self._nuls[1 - first] += block[1::2].count(0)
        self.size += len(block)
        if self._utf8 is not None:
            try:
                self._utf8.decode(block)
            except UnicodeDecodeError:
                self._utf8 = None

    def choose(self, reread: Callable[[], Iterable[bytes]]) -> Encoding:
        head = bytes(self._head)
        for bom, codec in _BOMS:
            if head.startswith(bom):
                return Encoding(codec, "replace", codec.replace("-sig", ""))
        utf16 = self._utf16()
        if utf16 is not None and _decodes(utf16, reread()):
            return Encoding(utf16, "strict", utf16)
        if self._utf8 is not None and _decodes("utf-8", [], self._utf8):
            return Encoding("utf-8", "strict", "utf-8")
        if _decodes("gb18030", reread()) and _reads_like_gb2312(head):
            return Encoding("gb18030", "strict", "gb18030")
        if _decodes("cp1252", reread()):
            return Encoding("cp1252", "strict", "cp1252")
        return Encoding("latin-1", "strict", "latin-1")

    def _utf16(self) -> str | None:
        if self.size < 4 or self.size % 2:
            return None
        half = self.size // 2
        even_nuls, odd_nuls = self._nuls[0] / half, self._nuls[1] / half
        if odd_nuls >= _UTF16_NUL_SHARE and even_nuls < odd_nuls / 4:
            return "utf-16-le"
        if even_nuls >= _UTF16_NUL_SHARE and odd_nuls < even_nuls / 4:
            return "utf-16-be"
        return None


def _decodes(
    codec: str, blocks: Iterable[bytes], decoder: codecs.IncrementalDecoder | None = None
) -> bool:
    """Whether the concatenation of ``blocks`` decodes strictly (``decoder``: one already fed
    the blocks before)."""
    decoder = decoder or codecs.getincrementaldecoder(codec)()
    try:
        for block in blocks:
            decoder.decode(block)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def decode_stream(blocks: Iterable[bytes], encoding: Encoding) -> Iterator[str]:
    """The normalised text of a file read block by block: the same characters, in pieces,
    that ``decode_text`` gives for the whole file."""
    decoder = encoding.decoder()
    carry = ""  # a trailing \r, held back in case the next piece starts with \n
    for block in blocks:
        piece = carry + decoder.decode(block)
        carry = ""
        if piece.endswith("\r"):
            piece, carry = piece[:-1], "\r"
        if piece:
            yield normalise(piece)
    piece = carry + decoder.decode(b"", final=True)
    if piece:
        yield normalise(piece)


def extract_text(data: bytes) -> tuple[str, tuple[str, ...]]:
    """Text of a .txt/.md file and the warnings worth telling the user (a legacy encoding)."""
    text, encoding = decode_text(data)
    return text, encoding_warnings(encoding)


def encoding_warnings(encoding: str) -> tuple[str, ...]:
    """What to tell the user about a text file's encoding: a legacy one is worth a word."""
    if encoding in ("utf-8", "utf-16", "utf-32"):
        return ()
    return (f"not UTF-8: decoded as {encoding}",)


def describe_content(data: bytes) -> str:
    """A short guess at what ``data`` really is, for "not a PDF/DOCX" messages."""
    head = data[:_SNIFF_BYTES].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or b"<html" in head:
        return "the content is HTML, e.g. a web page or an error page saved under this name"
    if head.startswith(b"<?xml") or head.startswith(b"<"):
        return "the content is XML or markup"
    if b"%PDF-" in data[:_SNIFF_BYTES]:
        return "the content is a PDF"
    if data.startswith(b"PK\x03\x04"):
        return "the content is a ZIP archive (an Office file?)"
    if data.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return "the content is an OLE2 container (legacy Office file)"
    if data.startswith((b"\x89PNG", b"\xff\xd8\xff", b"GIF8")):
        return "the content is an image"
    if data.startswith(b"{\\rtf"):
        return "the content is RTF"
    sample = data[:_SNIFF_BYTES]
    if sample and not any(byte < 9 or 13 < byte < 32 for byte in sample):
        return "the content is plain text"
    return f"it starts with {data[:8]!r}"
