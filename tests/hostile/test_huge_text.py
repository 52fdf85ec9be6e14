"""Text files too large to hold whole: decoded, chunked and read back in windows (bigtext).

The streamed path must give what the whole-file path gives (same encoding, same text, same
chunks), with memory that follows the window, and must notice a file that changes under it.
"""

from __future__ import annotations

import codecs
import hashlib
import itertools
import pickle
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dscall.chunking.splitter import split_text
from dscall.chunking.tokens import EstimateCounter, make_counter
from dscall.chunking.windows import split_stream
from dscall.config import STREAM_TEXT_MIN_BYTES, ChunkSettings, ExtractSettings
from dscall.documents.bigtext import StreamedChunks
from dscall.documents.pool import ExtractionPool
from dscall.documents.text import EncodingSniffer, decode_stream, decode_text
from dscall.documents.worker import process_source
from dscall.errors import UnreadableFile
from dscall.simulator import SimulatorThread
from dscall.types import ChunkedDocument, DocType, FailedDocument, SourceFile
from tests.integration.conftest import assert_rows_complete, document_text, invoke, read_rows

ESTIMATE = EstimateCounter()
CHUNKS = ChunkSettings(chunk_tokens=300, overlap_tokens=60, tokenizer="estimate")

# Pieces of text that exercise every kind of boundary, and the window edges between them.
WORDS = ["alpha", "beta.", "gamma,", "delta!", "3,000", "e\u0301te\u0301", "x" * 90, "中文"]
MARKS = ["。", "」", "、", "?", ";", "—", "😀", "\u200d"]
SPACES = [" ", " ", " ", "\n", "\n\n", "\r\n", "\t", "  \n \n", "\u3000", " " * 300]
token = st.one_of(st.sampled_from(WORDS), st.sampled_from(MARKS), st.sampled_from(SPACES))
long_texts = st.lists(token, min_size=0, max_size=1500).map("".join)


def _source(path: Path, doc_type: DocType = "txt") -> SourceFile:
    return SourceFile(path, path.name, doc_type, path.stat().st_size)


def _split(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def _big_text(paragraphs: int) -> str:
    """About 500 bytes a paragraph; every seventh paragraph Chinese, every fifth a list."""
    out = []
    for index in range(paragraphs):
        if index % 7 == 6:
            out.append("北部通道的货运量继续增长，海关查验时间缩短。成本下降百分之四。" * 4)
        elif index % 5 == 4:
            out.append("\n".join(f"- item {index}.{k}: {k * 37} units" for k in range(6)))
        else:
            out.append(document_text(index))
    return "\n\n".join(out) + "\n"


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "big.txt"
    text = _big_text(2_000)
    data = (text * (STREAM_TEXT_MIN_BYTES // len(text.encode()) + 1)).encode()
    path.write_bytes(data.replace(b"\n", b"\r\n", 500))  # some CRLF too
    return path


# --- decoding --------------------------------------------------------------------------------

SAMPLE = "Ünïcode tëxt, 中文内容。\r\nLine two\r\n\x00\x07end\rlast"
ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "gb18030"]


@settings(max_examples=200, deadline=None)
@given(
    data=st.one_of(
        st.binary(max_size=300),
        st.tuples(st.sampled_from(ENCODINGS), st.text(max_size=80)).map(
            lambda pair: pair[1].encode(pair[0], errors="replace")
        ),
        st.sampled_from([SAMPLE.encode(e, errors="replace") for e in [*ENCODINGS, "cp1252"]]),
    ),
    block=st.integers(min_value=1, max_value=64),
)
def test_streamed_decoding_matches_whole_file_decoding(data: bytes, block: int) -> None:
    blocks = [data[i : i + block] for i in range(0, len(data), block)]
    sniffer = EncodingSniffer()
    for piece in blocks:
        sniffer.feed(piece)
    encoding = sniffer.choose(lambda: iter(blocks))
    text, name = decode_text(data)
    assert encoding.name == name
    assert "".join(decode_stream(blocks, encoding)) == text


def test_a_crlf_split_between_two_blocks_becomes_one_newline() -> None:
    encoding = EncodingSniffer().choose(lambda: iter([]))
    assert "".join(decode_stream([b"one\r", b"\ntwo\r", b"\r\nthree\r"], encoding)) == (
        "one\ntwo\n\nthree\n"
    )


def test_a_byte_order_mark_is_decoded_with_replacement_like_a_whole_file() -> None:
    data = codecs.BOM_UTF16_LE + "bad \ud800 surrogate".encode("utf-16-le", "surrogatepass")
    sniffer = EncodingSniffer()
    sniffer.feed(data)
    encoding = sniffer.choose(lambda: iter([data]))
    assert (encoding.codec, encoding.errors) == ("utf-16", "replace")
    assert "".join(decode_stream([data[:5], data[5:]], encoding)) == decode_text(data)[0]


# --- chunking in windows ---------------------------------------------------------------------


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=long_texts,
    budget=st.integers(min_value=16, max_value=200),
    window=st.integers(min_value=40, max_value=3000),
    piece=st.integers(min_value=1, max_value=700),
    data=st.data(),
)
def test_windowed_chunks_equal_whole_text_chunks(
    text: str, budget: int, window: int, piece: int, data: st.DataObject
) -> None:
    overlap = data.draw(st.integers(min_value=0, max_value=(budget - 1) // 2))
    chunk_settings = ChunkSettings(chunk_tokens=budget, overlap_tokens=overlap)
    whole = split_text(text, chunk_settings, ESTIMATE)
    streamed = split_stream(_split(text, piece), chunk_settings, ESTIMATE, window_chars=window)
    assert list(streamed) == whole


@pytest.mark.parametrize(
    "text",
    [
        _big_text(150),
        _big_text(150).replace("\n\n", "\n"),  # no paragraph break to cut a window at
        _big_text(150).replace(". ", " ").replace("\n", " "),  # one endless sentence
        "长" * 60_000,  # no whitespace at all: windows are cut anywhere
    ],
    ids=["paragraphs", "lines", "one-sentence", "no-space"],
)
def test_windowed_chunks_with_the_exact_tokenizer_stay_in_budget_and_stable(text: str) -> None:
    counter = make_counter("exact")
    chunk_settings = ChunkSettings(chunk_tokens=400, overlap_tokens=80)
    first = list(split_stream(_split(text, 5000), chunk_settings, counter, window_chars=8000))
    again = list(split_stream(_split(text, 777), chunk_settings, counter, window_chars=8000))
    assert first == again
    assert first[0][0] == 0
    assert first[-1][1] == len(text.rstrip())
    for (start, end, _), (next_start, _, _) in itertools.pairwise(first):
        assert next_start > start
        assert next_start <= end or not text[end:next_start].strip()
    for start, end, tokens in first:
        assert tokens == counter.count(text[start:end]) <= 400


def test_whitespace_only_windows_are_skipped() -> None:
    text = " \n" * 5000 + "The only sentence." + "\n\n " * 5000
    spans = list(split_stream(_split(text, 100), CHUNKS, ESTIMATE, window_chars=500))
    assert [text[s:e] for s, e, _ in spans] == ["The only sentence."]


# --- the worker's streamed path ----------------------------------------------------------------


def test_a_big_text_file_is_chunked_as_if_it_were_read_whole(big_file: Path) -> None:
    outcome = process_source(_source(big_file), ExtractSettings(), CHUNKS, ESTIMATE)
    assert isinstance(outcome, ChunkedDocument)
    assert isinstance(outcome.chunks, StreamedChunks)
    data = big_file.read_bytes()
    text = decode_text(data)[0]
    assert outcome.doc_id == hashlib.sha256(data).hexdigest()
    assert outcome.char_count == len(text)
    spans = split_text(text, CHUNKS, ESTIMATE)
    chunks = list(outcome.chunks)
    assert [(c.char_start, c.char_end, c.tokens) for c in chunks] == spans
    assert all(c.text == text[c.char_start : c.char_end] for c in chunks)
    assert {c.count for c in chunks} == {len(outcome.chunks)}
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert outcome.chunks[-1] == chunks[-1]
    assert outcome.chunks[1:3] == tuple(chunks[1:3])


def test_a_legacy_encoding_is_found_and_reported_when_streamed(tmp_path: Path) -> None:
    path = tmp_path / "western.txt"
    line = "Café, résumé and naïve façades — “quoted” text.\n"
    path.write_bytes((line * (STREAM_TEXT_MIN_BYTES // len(line) + 10)).encode("cp1252"))
    outcome = process_source(_source(path), ExtractSettings(), CHUNKS, ESTIMATE)
    assert isinstance(outcome, ChunkedDocument)
    assert outcome.warnings == ("not UTF-8: decoded as cp1252",)
    first = next(iter(outcome.chunks))
    assert first.text.startswith(line.strip())


def test_a_file_changed_after_it_was_chunked_is_noticed_not_misread(
    big_file: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "changing.txt"
    copy.write_bytes(big_file.read_bytes())
    outcome = process_source(_source(copy), ExtractSettings(), CHUNKS, ESTIMATE)
    assert isinstance(outcome, ChunkedDocument)
    with open(copy, "r+b") as handle:  # same size, one byte different, near the end
        handle.seek(-100, 2)
        handle.write(b"#")
    chunks = iter(outcome.chunks)
    assert next(chunks).index == 0  # the blocks read so far are still the scanned ones
    with pytest.raises(UnreadableFile, match="changed while dscall was reading it"):
        list(chunks)
    with open(copy, "ab") as handle:
        handle.write(b"appended")
    with pytest.raises(UnreadableFile, match="changed"):
        next(iter(outcome.chunks))


def test_a_big_whitespace_file_is_an_empty_document(tmp_path: Path) -> None:
    path = tmp_path / "blank.txt"
    path.write_bytes(b" \r\n\t" * (STREAM_TEXT_MIN_BYTES // 4 + 1))
    outcome = process_source(_source(path), ExtractSettings(), CHUNKS, ESTIMATE)
    assert isinstance(outcome, FailedDocument)
    assert outcome.error_type == "EmptyDocument"


async def test_progress_keeps_a_big_file_alive_past_the_time_limit(tmp_path: Path) -> None:
    path = tmp_path / "long.txt"
    text = _big_text(4_000)
    with open(path, "w", encoding="utf-8") as handle:
        for _ in range(64 * 2**20 // len(text.encode()) + 1):
            handle.write(text)
    # A 1M-character window takes up to 0.3 s on a quiet machine: 1.5 s leaves room for a busy
    # one, and the whole file (64 MB) still takes about twice that on a quiet one.
    timeout = 1.5
    async with ExtractionPool(ExtractSettings(timeout_s=timeout), CHUNKS, workers=1) as pool:
        outcome = await pool.process(_source(path))
        reports = pool.progress_reports
    assert isinstance(outcome, ChunkedDocument)
    assert len(outcome.chunks) > 1000
    # Reports come at most every 0.25 s: this many mean the file took longer than the limit,
    # and it went through because each report restarted the clock.
    assert reports * 0.25 > timeout + 0.25, reports


async def test_a_streamed_document_travels_from_the_worker_as_boundaries_only(
    big_file: Path,
) -> None:
    async with ExtractionPool(ExtractSettings(), CHUNKS, workers=1) as pool:
        outcome = await pool.process(_source(big_file))
        assert pool.workers_started == 1
    assert isinstance(outcome, ChunkedDocument)
    assert isinstance(outcome.chunks, StreamedChunks)
    # 24 bytes a chunk of about 600 characters here, instead of the texts themselves.
    assert len(pickle.dumps(outcome)) < big_file.stat().st_size / 10
    texts = [chunk.text for chunk in outcome.chunks]
    assert sum(map(len, texts)) >= outcome.char_count


def test_iterating_twice_reads_the_file_twice_and_gives_the_same_chunks(big_file: Path) -> None:
    outcome = process_source(_source(big_file), ExtractSettings(), CHUNKS, ESTIMATE)
    assert isinstance(outcome, ChunkedDocument)
    first = list(outcome.chunks)
    assert list(outcome.chunks) == first


def test_process_and_chunks_write_every_chunk_of_a_streamed_file(
    big_file: Path, tmp_path: Path, sim: SimulatorThread
) -> None:
    budget = ["--chunk-tokens", "4000", "--overlap-tokens", "100", "--tokenizer", "estimate"]
    chunks_out = tmp_path / "chunks.parquet"
    result = invoke(["chunks", str(big_file), "--out", str(chunks_out), *budget])
    assert result.exit_code == 0, result.stderr
    out = tmp_path / "results.parquet"
    docs_out = tmp_path / "docs.parquet"
    args = ["process", str(big_file), "--out", str(out), "--documents-out", str(docs_out)]
    args += ["--base-url", sim.base_url, "--cache-dir", str(tmp_path / "cache"), *budget]
    result = invoke([*args, "--quiet"])
    assert result.exit_code == 0, result.stderr
    text = decode_text(big_file.read_bytes())[0]
    rows = read_rows(out)
    assert_rows_complete(rows)
    assert len(rows) == rows[0]["chunk_count"] > 100
    assert all(row["chunk_text"] == text[row["char_start"] : row["char_end"]] for row in rows)
    assert all(row["status"] == "ok" for row in rows)
    keys = ["chunk_index", "char_start", "char_end", "chunk_tokens", "chunk_text"]
    assert [{k: r[k] for k in keys} for r in read_rows(chunks_out)] == [
        {k: r[k] for k in keys} for r in rows
    ]
    (document,) = read_rows(docs_out)
    assert (document["status"], document["chunk_count"]) == ("ok", len(rows))
