"""``--budget-usd``: stop dispatching before finished + reserved spend would pass the limit.

Each request reserves its worst case when it is dispatched (every prompt token a cache miss,
the full ``max_tokens`` of output); the reservation is released when it finishes and the real
cost is added instead. So the limit holds even with hundreds of requests in flight.

A call is billed at the price in force when its answer arrives, so the reservation is the
dearest price between dispatch and ``lookahead_s`` later: a request sent just before peak
hours begin reserves the peak price. (A request still unanswered past the lookahead, after
many retries, can cost more than it reserved; the lookahead defaults to one attempt's
deadline.)
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from dscall.config import DEFAULT_ATTEMPT_TIMEOUT_S
from dscall.errors import BudgetExhausted, UsageError
from dscall.pricing import PriceTable
from dscall.types import CallRequest

# Output allowance for a request sent without max_tokens (the endpoint's own cap applies).
UNBOUNDED_OUTPUT_TOKENS = 8192

Clock = Callable[[], datetime]
# More budget for this run's share when a hold would pass it (a shard asking the cluster's
# board, ``dscall.executors.limit_board``): the amount granted, or raises BudgetExhausted.
TopUp = Callable[[float], float]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class Budget:
    def __init__(
        self,
        limit_usd: float,
        prices: PriceTable,
        model: str,
        *,
        clock: Clock = utc_now,
        lookahead_s: float = DEFAULT_ATTEMPT_TIMEOUT_S,
    ) -> None:
        if limit_usd <= 0:
            raise UsageError("--budget-usd must be greater than 0")
        self._prices = prices
        self._clock = clock
        self.check_model(model)
        self.limit_usd = limit_usd
        self.spent_usd = 0.0
        self.reserved_usd = 0.0
        self._lookahead = timedelta(seconds=lookahead_s)
        self.top_up: TopUp | None = None

    def check_model(self, model: str) -> None:
        """A model the budget cannot price is a usage error (its calls would be free to it)."""
        if self._prices.estimate(model, 1, 1, self._clock()) is None:
            raise UsageError(
                f"--budget-usd needs a price for model {model!r}; add it with --prices FILE"
            )

    def reserve(self, request: CallRequest) -> float:
        """Reserve the worst-case cost of ``request``; raises ``BudgetExhausted`` if it would
        take spent + reserved past the limit."""
        return self.hold(self.cost_of(request), "next request")

    def cost_of(self, request: CallRequest) -> float:
        output_tokens = request.max_tokens or UNBOUNDED_OUTPUT_TOKENS
        return self.worst_case(request.model, request.estimated_prompt_tokens, output_tokens)

    def worst_case(self, model: str, prompt_tokens: int, output_tokens: int) -> float:
        """The dearest cost of such a call between now and the lookahead."""
        now = self._clock()
        # There are two prices, so if the one now is the cheaper, the next change is to the
        # dearer: that instant is the only other one worth pricing.
        times = [now]
        change = self._prices.next_change(now)
        if change is not None and change <= now + self._lookahead:
            times.append(change)
        return max(
            self._prices.estimate(model, prompt_tokens, output_tokens, at) or 0.0 for at in times
        )

    def hold(self, amount: float, what: str) -> float:
        """Reserve ``amount``; raises ``BudgetExhausted`` if it would take spent + reserved
        past the limit. ``what`` names it in that message."""
        over = self.spent_usd + self.reserved_usd + amount - self.limit_usd
        if over > 0 and self.top_up is not None:
            self.limit_usd += self.top_up(over)
            over = self.spent_usd + self.reserved_usd + amount - self.limit_usd
        if over > 0:
            raise BudgetExhausted(
                f"budget of ${self.limit_usd:.4f} reached: ${self.spent_usd:.4f} spent, "
                f"${self.reserved_usd:.4f} in flight or held, {what} up to ${amount:.4f}"
            )
        self.reserved_usd += amount
        return amount

    def release(self, amount: float) -> None:
        self.reserved_usd = max(0.0, self.reserved_usd - amount)

    def spend(self, cost_usd: float) -> None:
        self.spent_usd += cost_usd


class BalanceWatch:
    """Warns once when the input cost of what was dispatched so far passes the balance the
    endpoint reported before the run: a 402 is then close, and the user should know early."""

    def __init__(
        self,
        balance_usd: float,
        prices: PriceTable,
        warn: Callable[[str], None],
        *,
        clock: Clock = utc_now,
    ) -> None:
        self.balance_usd = balance_usd
        self.input_usd = 0.0
        self._prices = prices
        self._clock = clock
        self._warn = warn
        self._warned = False

    def add(self, request: CallRequest) -> None:
        if self._warned:
            return
        cost = self._prices.estimate(
            request.model, request.estimated_prompt_tokens, 0, self._clock()
        )
        self.input_usd += cost or 0.0
        if self.input_usd > self.balance_usd:
            self._warned = True
            self._warn(
                f"warning: the prompts dispatched so far are estimated at ${self.input_usd:.4f}, "
                f"more than the ${self.balance_usd:.4f} balance reported before the run; "
                "expect the endpoint to answer 402 (insufficient balance) soon"
            )
