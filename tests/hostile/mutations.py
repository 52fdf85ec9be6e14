"""Hostile inputs: seeded mutations of real PDF and DOCX files, and hand-made bombs.

Shared by the hostile tests (a few hundred files) and ``bench/bench_huge.py --fuzz N``
(thousands). Everything is deterministic for a given seed, so a failure can be replayed from
the file name alone (``m<index>-<kind>.<ext>`` with the seed of the run).
"""

from __future__ import annotations

import io
import random
import zipfile
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

from tests.unit.documents.builders import (
    _CATALOG,
    _FONT,
    _stream,
    make_docx,
    make_pdf,
    pdf_bomb,
    raw_pdf,
)

W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
Mutator = Callable[[bytes, random.Random], bytes]


# --- byte-level mutations ---------------------------------------------------------------------


def flip_bytes(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 24)):
        out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
    return bytes(out)


def truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(len(data))]


def duplicate_chunk(data: bytes, rng: random.Random) -> bytes:
    start = rng.randrange(len(data))
    piece = data[start : start + rng.randint(1, 8192)]
    at = rng.randrange(len(data))
    return data[:at] + piece * rng.randint(1, 4) + data[at:]


def remove_chunk(data: bytes, rng: random.Random) -> bytes:
    start = rng.randrange(len(data))
    return data[:start] + data[start + rng.randint(1, 8192) :]


def random_overwrite(data: bytes, rng: random.Random) -> bytes:
    start = rng.randrange(len(data))
    noise = rng.randbytes(rng.randint(1, 512))
    return data[:start] + noise + data[start + len(noise) :]


# --- ZIP-level mutations (DOCX) -----------------------------------------------------------------


def _rezip(data: bytes, change: Callable[[list[tuple[str, bytes]]], None]) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as old:
        entries = [(name, old.read(name)) for name in old.namelist()]
    change(entries)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as new:
        for name, body in entries:
            new.writestr(name, body)
    return buffer.getvalue()


def corrupt_entry(data: bytes, rng: random.Random) -> bytes:
    """One part's content damaged (flipped bytes), the ZIP itself consistent."""

    def change(entries: list[tuple[str, bytes]]) -> None:
        index = rng.randrange(len(entries))
        name, body = entries[index]
        if body:
            body = flip_bytes(body, rng)
        entries[index] = (name, body)

    return _rezip(data, change)


def truncate_entry(data: bytes, rng: random.Random) -> bytes:
    def change(entries: list[tuple[str, bytes]]) -> None:
        index = rng.randrange(len(entries))
        name, body = entries[index]
        entries[index] = (name, body[: rng.randrange(len(body) + 1)])

    return _rezip(data, change)


def replace_entry(data: bytes, rng: random.Random) -> bytes:
    """One part replaced by another part's bytes, random bytes, or nothing at all."""

    def change(entries: list[tuple[str, bytes]]) -> None:
        index = rng.randrange(len(entries))
        name, _ = entries[index]
        choice = rng.randrange(3)
        if choice == 0:
            entries[index] = (name, entries[rng.randrange(len(entries))][1])
        elif choice == 1:
            entries[index] = (name, rng.randbytes(rng.randint(0, 4096)))
        else:
            del entries[index]

    return _rezip(data, change)


def corrupt_zip_stream(data: bytes, rng: random.Random) -> bytes:
    """Bytes flipped inside the compressed data of one member (CRC and inflate errors)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        member = rng.choice(archive.infolist())
    start = member.header_offset + 30 + len(member.filename.encode()) + len(member.extra)
    end = start + member.compress_size
    if end <= start:
        return flip_bytes(data, rng)
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        out[rng.randrange(start, end)] ^= 0xFF
    return bytes(out)


BYTE_MUTATORS: dict[str, Mutator] = {
    "flip": flip_bytes,
    "truncate": truncate,
    "duplicate": duplicate_chunk,
    "remove": remove_chunk,
    "overwrite": random_overwrite,
}
ZIP_MUTATORS: dict[str, Mutator] = {
    "zip-corrupt-entry": corrupt_entry,
    "zip-truncate-entry": truncate_entry,
    "zip-replace-entry": replace_entry,
    "zip-corrupt-stream": corrupt_zip_stream,
}


def mutated_corpus(seeds: Sequence[Path], count: int, seed: int, out: Path) -> list[Path]:
    """``count`` mutated copies of ``seeds`` (PDF and DOCX files) written under ``out``."""
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    originals = [(path.suffix, path.read_bytes()) for path in seeds]
    written = []
    for index in range(count):
        suffix, data = rng.choice(originals)
        mutators = dict(BYTE_MUTATORS)
        if suffix == ".docx":
            mutators.update(ZIP_MUTATORS)
        kind = rng.choice(sorted(mutators))
        # Stack a second mutation now and then: real damage rarely comes alone.
        mutated = mutators[kind](data, rng)
        if mutated and rng.random() < 0.2:
            mutated = flip_bytes(mutated, rng)
        path = out / f"m{index:05d}-{kind}{suffix}"
        path.write_bytes(mutated)
        written.append(path)
    return written


# --- seeds -----------------------------------------------------------------------------------


def seed_documents(folder: Path, samples: Path) -> list[Path]:
    """The samples plus generated files with more structure to break: several pages, tables
    nested in tables, headers, a CJK page."""
    folder.mkdir(parents=True, exist_ok=True)
    seeds = sorted(p for p in samples.iterdir() if p.suffix in (".pdf", ".docx"))
    body = "Sales grew and costs fell. " * 30
    pages: list[str | None] = [f"Page {n}. {body}" for n in range(1, 6)]
    pages += ["第六页。销售增长，成本下降。", None]  # a CJK page, and one without text
    seeds.append(make_pdf(folder / "seed-pages.pdf", pages))

    def build(document: object) -> None:
        from docx.document import Document

        assert isinstance(document, Document)
        document.add_heading("Quarterly review", level=1)
        document.add_paragraph("The committee met twice. " * 20)
        table = document.add_table(rows=3, cols=3)
        for row in table.rows:
            for cell in row.cells:
                cell.text = "cell text"
        table.cell(0, 0).add_table(rows=2, cols=2).cell(1, 1).text = "nested"
        document.sections[0].header.paragraphs[0].text = "Header line"

    seeds.append(make_docx(folder / "seed-tables.docx", build))
    return seeds


# --- bombs -------------------------------------------------------------------------------------


def _docx_with_body(base: Path, path: Path, body_xml: str, prolog: str = "") -> Path:
    with zipfile.ZipFile(base) as archive:
        entries = [(name, archive.read(name)) for name in archive.namelist()]
    document = (
        "<?xml version='1.0' encoding='UTF-8' standalone='yes'?>"
        f'{prolog}<w:document xmlns:w="{W_NS}"><w:body>{body_xml}</w:body></w:document>'
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as new:
        for name, content in entries:
            new.writestr(name, document.encode() if name == "word/document.xml" else content)
    return path


def billion_laughs_docx(base: Path, path: Path, levels: int = 10) -> Path:
    """word/document.xml whose one word is an entity that expands 10**levels-fold."""
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, levels)
    ]
    prolog = f"<!DOCTYPE w:document [{''.join(entities)}]>"
    body = f"<w:p><w:r><w:t>&lol{levels - 1};</w:t></w:r></w:p>"
    return _docx_with_body(base, path, body, prolog)


def nested_tables_docx(base: Path, path: Path, depth: int) -> Path:
    """Tables nested ``depth`` deep, each cell holding a label and the next table."""
    inner = "<w:p><w:r><w:t>innermost</w:t></w:r></w:p>"
    for level in range(depth):
        label = f"<w:p><w:r><w:t>level {level}</w:t></w:r></w:p>"
        inner = f"<w:tbl><w:tr><w:tc>{label}{inner}</w:tc></w:tr></w:tbl><w:p/>"
    return _docx_with_body(base, path, inner)


def zip_bomb_docx(base: Path, path: Path, megabytes: int = 48) -> Path:
    """A DOCX carrying a part of ``megabytes`` MB of zeros (it compresses about 1000-fold)."""
    with zipfile.ZipFile(base) as archive:
        entries = [(name, archive.read(name)) for name in archive.namelist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as new:
        for name, content in entries:
            new.writestr(name, content)
        with new.open("word/media/padding.bin", "w") as member:
            zeros = bytes(1 << 20)
            for _ in range(megabytes):
                member.write(zeros)
    return path


def many_pages_pdf(path: Path, pages: int, broken: bool = False) -> Path:
    """One page object listed ``pages`` times in the page tree (a few bytes per page); with
    ``broken`` that object is not a page at all, so every page fails."""
    page = (
        b"[1 2 3]"
        if broken
        else b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>"
    )
    kids = b" ".join([b"3 0 R"] * pages)
    path.write_bytes(
        raw_pdf(
            [
                _CATALOG,
                b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % pages,
                page,
                _stream(b"BT /F1 12 Tf 72 700 Td (The same page again.) Tj ET"),
                _FONT,
            ]
        )
    )
    return path


def deflate_bomb_pdf(path: Path, megabytes: int = 64) -> Path:
    """A page content stream that inflates from about 64 KB to ``megabytes`` MB of spaces."""
    compressor = zlib.compressobj(9)
    spaces = b" " * (1 << 20)
    body = b"".join(compressor.compress(spaces) for _ in range(megabytes)) + compressor.flush()
    page = (
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>"
    )
    stream = b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(body) + body + b"\nendstream"
    path.write_bytes(
        raw_pdf([_CATALOG, b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>", page, stream, _FONT])
    )
    return path


def bombs(folder: Path, docx_base: Path) -> dict[str, Path]:
    """Every hand-made hostile file, by name."""
    folder.mkdir(parents=True, exist_ok=True)
    operators = folder / "operators-bomb.pdf"
    operators.write_bytes(pdf_bomb())
    return {
        "billion-laughs": billion_laughs_docx(docx_base, folder / "billion-laughs.docx"),
        "zip-bomb": zip_bomb_docx(docx_base, folder / "zip-bomb.docx"),
        "nested-80": nested_tables_docx(docx_base, folder / "nested-80.docx", 80),
        "nested-300": nested_tables_docx(docx_base, folder / "nested-300.docx", 300),
        "many-pages": many_pages_pdf(folder / "many-pages.pdf", 300_000),
        "broken-pages": many_pages_pdf(folder / "broken-pages.pdf", 5_000, broken=True),
        "deflate-bomb": deflate_bomb_pdf(folder / "deflate-bomb.pdf"),
        "operators-bomb": operators,
    }
