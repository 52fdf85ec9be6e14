"""Chunking throughput, and how well the rule-of-thumb estimate tracks the exact tokenizer.

    .venv/bin/python -m bench.bench_chunking

Throughput is in MB/s of UTF-8 text on one core (10^6 bytes), for ``split_text`` with the
default settings (2000-token chunks, 200-token overlap). The estimate counter must reach
5 MB/s on English and on Chinese; the exact tokenizer's figures are printed without a target.

Margin adequacy: for English, Chinese and mixed prose, the ratio of exact tokens to the raw rule
of thumb (above 1 means the rule undercounts), and the largest exact count of any chunk cut to
the default budget with the estimate counter (the margin is adequate while that stays within
the budget).
"""

from __future__ import annotations

import random
import re
import time
from typing import Any

from dscall.chunking.splitter import split_text
from dscall.chunking.tokens import EstimateCounter, TokenCounter, estimate_tokens, make_counter
from dscall.config import ESTIMATE_SAFETY_MARGIN, ChunkSettings

TARGET_MB_S = 5.0
ESTIMATE_MB = 4_000_000
EXACT_MB = 1_000_000

ENGLISH = """\
The quarterly report shows that revenue in the Asia-Pacific region grew by 14.2% year over \
year, driven mainly by strong demand for cloud services in Japan, Singapore and Australia. \
Operating margin, however, fell to 18.7% from 21.3% a year earlier, as the company continued \
to invest heavily in new data centres and hired more than 2,400 engineers. Management expects \
growth to slow in the second half of 2025, citing currency headwinds and a more cautious \
outlook among enterprise customers.

Analysts at several banks said the guidance was conservative but reasonable. "We think the \
market has already priced in a slowdown," one of them wrote in a note to clients on Tuesday. \
Shares rose 3% in early trading before giving up most of their gains by the close.

The tenant shall keep the premises in good repair and shall not, without the prior written \
consent of the landlord, make any structural alteration to them. Any notice under this \
agreement must be given in writing and delivered by hand or sent by recorded post to the \
address stated above. This agreement is governed by the laws of England and Wales.

To reproduce the failure, start the server with the default configuration, send two requests \
concurrently and wait for the first to time out. The second request then hangs until the \
connection pool is exhausted. We believe the lock is released too late when a handler raises; \
moving the release into a finally block fixes it in our tests.
"""

CHINESE = """\
近年来，随着人工智能技术的快速发展，大型语言模型在自然语言处理领域取得了显著进展。这些模型通过在海量\
文本数据上进行预训练，学会了理解和生成人类语言的能力，并在机器翻译、文本摘要、问答系统等任务中表现出色。\
然而，模型规模的不断扩大也带来了新的挑战：训练成本高昂，推理延迟增加，能源消耗巨大。为了解决这些问题，\
研究人员提出了混合专家架构、稀疏注意力机制以及模型蒸馏等多种方法。

据国家统计局发布的数据，2024年全国居民人均可支配收入为41314元，比上年名义增长5.3%。其中，城镇居民人均\
可支配收入54188元，农村居民人均可支配收入23119元。从消费结构看，食品烟酒、居住和交通通信支出占比最高，\
教育文化娱乐支出增长较快。专家认为，收入稳步增长为扩大内需提供了有力支撑，但城乡之间、地区之间的收入\
差距仍需进一步缩小。

清晨的江南小镇笼罩在一层薄薄的雾气中。石板路被昨夜的细雨打湿，泛着青灰色的光。老人们早早地坐在茶馆里，\
一边喝着碧螺春，一边谈论着今年的收成和村里的新鲜事。远处传来几声鸡鸣，河面上的乌篷船慢慢地划过，船夫\
哼着不知名的小调。“今年的雨水多，稻子长得好。”一位老伯笑着说。

承租人应当按照约定的方法使用租赁物，并妥善保管。未经出租人同意，承租人不得对租赁物进行改善或者增设他物。\
租赁期限届满，承租人应当返还租赁物，返还的租赁物应当符合按照约定或者根据租赁物的性质使用后的状态。\
因不可抗力致使合同目的不能实现的，当事人可以解除合同。
"""

MIXED = """\
在部署 DeepSeek-V3 模型时，我们使用了 vLLM 作为推理引擎，并将 tensor_parallel_size 设置为 8。\
测试结果显示，在 batch size 为 32 的情况下，吞吐量达到每秒 1,250 个 token，P99 延迟约为 850ms。\
如果启用 FP8 量化，显存占用可以降低约 40%，但需要注意 accuracy 的轻微下降。

本季度公司在 Asia-Pacific 市场的营收同比增长 14.2%，主要得益于 cloud services 的强劲需求。\
CEO 在财报电话会议上表示："We remain confident in our long-term strategy." \
分析师普遍认为，这一业绩符合预期（in line with expectations），\
但 operating margin 从 21.3% 下降至 18.7% 值得关注。

使用方法：运行 pip install dscall 安装后，执行 dscall process docs/ --out results.parquet 即可。\
默认模型为 deepseek-flash，每百万 input tokens 的价格为 0.30 美元（cache miss）。\
如需自定义 prompt，请使用 --prompt-file 参数。
"""

_SENTENCE = re.compile(r"[^.!?。！？]+[.!?。！？]+[”\"]?")


def synthetic(sample: str, size: int, seed: int = 7) -> str:
    """About ``size`` bytes of text: the sample's sentences, shuffled into paragraphs of 2 to 8
    sentences, with a single newline (a page join) now and then."""
    sentences = [s.strip() for s in _SENTENCE.findall(sample.replace("\n", " ")) if s.strip()]
    joiner = "" if sample is CHINESE else " "
    rng = random.Random(seed)
    paragraphs: list[str] = []
    total = 0
    while total < size:
        body = joiner.join(rng.choice(sentences) for _ in range(rng.randint(2, 8)))
        if rng.random() < 0.1:
            body += "\n" + rng.choice(sentences)
        paragraphs.append(body)
        total += len(body.encode()) + 2
    return "\n\n".join(paragraphs)


def throughput(text: str, counter: TokenCounter) -> float:
    started = time.perf_counter()
    split_text(text, ChunkSettings(), counter)
    return len(text.encode()) / (time.perf_counter() - started) / 1e6


def adequacy(sample: str, exact: TokenCounter) -> dict[str, float]:
    text = synthetic(sample, 300_000)
    settings = ChunkSettings()
    spans = split_text(text, settings, EstimateCounter())
    worst = max(exact.count(text[start:end]) for start, end, _ in spans)
    return {
        "exact_over_rule": round(exact.count(sample) / estimate_tokens(sample), 3),
        "worst_chunk_exact_tokens": worst,
        "worst_chunk_fill": round(worst / settings.chunk_tokens, 3),
    }


def main() -> dict[str, Any]:
    results: dict[str, Any] = {"target_mb_s": TARGET_MB_S, "margin": ESTIMATE_SAFETY_MARGIN}
    estimate = EstimateCounter()
    exact = make_counter("exact")
    exact.count("warm up: load the tokenizer before timing")
    for name, sample in (("english", ENGLISH), ("chinese", CHINESE)):
        mb_s = throughput(synthetic(sample, ESTIMATE_MB), estimate)
        exact_mb_s = throughput(synthetic(sample, EXACT_MB), exact)
        passed = mb_s >= TARGET_MB_S
        results[f"estimate_mb_s_{name}"] = round(mb_s, 2)
        results[f"exact_mb_s_{name}"] = round(exact_mb_s, 2)
        results[f"pass_{name}"] = passed
        print(
            f"chunking {name:8s} estimate {mb_s:6.2f} MB/s (target >= {TARGET_MB_S}: "
            f"{'PASS' if passed else 'FAIL'})   exact tokenizer {exact_mb_s:5.2f} MB/s"
        )
    for name, sample in (("english", ENGLISH), ("chinese", CHINESE), ("mixed", MIXED)):
        figures = adequacy(sample, exact)
        results[f"adequacy_{name}"] = figures
        print(
            f"margin   {name:8s} exact/rule-of-thumb {figures['exact_over_rule']:.3f}   "
            f"worst estimate-sized chunk {figures['worst_chunk_exact_tokens']} exact tokens "
            f"({figures['worst_chunk_fill']:.0%} of budget, margin {ESTIMATE_SAFETY_MARGIN})"
        )
    return results


if __name__ == "__main__":
    main()
