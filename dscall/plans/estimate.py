"""What the later steps of a chain will ask for, before their inputs exist (SPEC §9).

A reduce's or refine's input is made of answers not written yet, so its size is estimated from
the answers' allowance: each answer at most its step's ``max_tokens`` (``UNBOUNDED_OUTPUT_TOKENS``
without one). The dry run prints these figures per step; the budget reserves them for a
document's later steps when its first call is dispatched, so that a chain started is a chain
the budget can finish.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from dscall.pipeline.budget import UNBOUNDED_OUTPUT_TOKENS
from dscall.plans.steps import Step
from dscall.pricing import PriceTable


@dataclass(slots=True)
class StepEstimate:
    name: str
    calls: int = 0
    prompt_tokens: int = 0  # every prompt token a cache miss
    output_tokens: int = 0  # the full allowance of every call

    def cost(self, prices: PriceTable, model: str, at: datetime) -> float | None:
        return prices.estimate(model, self.prompt_tokens, self.output_tokens, at)


def output_allowance(step: Step) -> int:
    return step.requests.prompt.max_tokens or UNBOUNDED_OUTPUT_TOKENS


def later_steps(steps: tuple[Step, ...], chunk_tokens: list[int]) -> list[StepEstimate]:
    """The calls, prompt and output tokens of every step but the map steps (whose requests
    are built for real) of a document whose chunks have ``chunk_tokens``."""
    count = len(chunk_tokens)
    by_name = {step.name: step for step in steps}
    estimates: list[StepEstimate] = []
    for step in steps:
        estimate = StepEstimate(step.name)
        allowance = output_allowance(step)
        if step.kind == "refine":
            assert step.first is not None
            previous = allowance
            for index, tokens in enumerate(chunk_tokens):
                builder = step.first if index == 0 else step.requests
                content = tokens + (previous if index else 0)
                estimate.prompt_tokens += builder.estimated_prompt_tokens(content)
            estimate.calls = count
            estimate.output_tokens = count * allowance
        elif step.kind == "reduce":
            answer = output_allowance(by_name[step.reads[0]])
            _reduce_tree(estimate, step, count, answer, allowance)
        elif step.kind == "document":
            content = sum(output_allowance(by_name[name]) for name in step.reads)
            estimate.calls = 1
            estimate.prompt_tokens = step.requests.estimated_prompt_tokens(content)
            estimate.output_tokens = allowance
        else:
            continue
        estimates.append(estimate)
    return estimates


def chain_worst_case(
    steps: tuple[Step, ...], chunk_tokens: list[int], price: Callable[[str, int, int], float]
) -> float:
    """The dearest a document's whole chain can cost: its map calls at their built size, its
    later steps as ``later_steps`` estimates them, each priced by ``price(model, prompt
    tokens, output tokens)`` (``Budget.worst_case``)."""
    amount = 0.0
    for step in steps:
        if step.kind == "map":
            model, allowance = step.requests.prompt.model, output_allowance(step)
            for tokens in chunk_tokens:
                prompt = step.requests.estimated_prompt_tokens(tokens)
                amount += price(model, prompt, allowance)
    model_of = {step.name: step.requests.prompt.model for step in steps}
    for each in later_steps(steps, chunk_tokens):
        amount += price(model_of[each.name], each.prompt_tokens, each.output_tokens)
    return amount


def _reduce_tree(
    estimate: StepEstimate, step: Step, answers: int, answer_tokens: int, allowance: int
) -> None:
    """A tree of groups of as many answers as fit ``reduce_tokens`` (at least two)."""
    while answers > 1:
        per_group = max(2, step.reduce_tokens // max(answer_tokens, 1))
        groups, rest = divmod(answers, per_group)
        calls = groups + (1 if rest > 1 else 0)
        estimate.calls += calls
        estimate.prompt_tokens += calls * step.requests.estimated_prompt_tokens(
            per_group * answer_tokens
        )
        estimate.output_tokens += calls * allowance
        answers = calls + (1 if rest == 1 else 0)
        answer_tokens = allowance
