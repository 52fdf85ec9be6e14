"""A DeepSeek-compatible HTTP server with fault injection, for demos, tests and benchmarks.

    async with start_simulator(SimulatorConfig(fail={503: 0.1})) as sim:   # in a coroutine
        ...
    with SimulatorThread(SimulatorConfig()) as sim:                       # from sync code
        ...

Modules: ``config`` (the behaviour controls), ``answers`` (deterministic answers, token
counts), ``structured`` (answers that follow a JSON Schema, and break it on purpose),
``prefix_cache``, ``faults`` (fault draws, latency, rpm window), ``stats`` (GET /stats),
``protocol`` (validation and bodies), ``plan`` (what to answer, decided at once), ``delivery``
(sending it: waits, keep-alive, streams, resets), ``server`` (aiohttp, life cycle, dispatch),
``runner`` (a thread for synchronous callers).
Importing this package imports aiohttp: CLI modules import it inside their commands.
"""

from dscall.simulator.answers import (
    Answer,
    build_answer,
    count_prompt_tokens,
    expected_answer,
    expected_reasoning,
)
from dscall.simulator.config import DEFAULT_MODELS, SimulatorConfig, parse_fail
from dscall.simulator.runner import SimulatorThread
from dscall.simulator.server import Simulator, start_simulator
from dscall.simulator.structured import expected_schema_answer

__all__ = [
    "DEFAULT_MODELS",
    "Answer",
    "Simulator",
    "SimulatorConfig",
    "SimulatorThread",
    "build_answer",
    "count_prompt_tokens",
    "expected_answer",
    "expected_reasoning",
    "expected_schema_answer",
    "parse_fail",
    "start_simulator",
]
