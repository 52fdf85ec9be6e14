"""`dscall mock-server`: the DeepSeek simulator as a standalone server.

aiohttp and the simulator are imported inside the command, so that ``dscall --help`` does not
pay for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from dscall.cli.app import app, run
from dscall.errors import UsageError

if TYPE_CHECKING:
    from dscall.simulator.config import SimulatorConfig

_NET = "Network"
_TIME = "Latency"
_LIMITS = "Limits"
_FAULTS = "Faults"
_MISC = "Account and reproducibility"


@app.command("mock-server")
def mock_server(
    host: Annotated[
        str, typer.Option(help="Interface to listen on.", rich_help_panel=_NET)
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(help="Port to listen on; 0 picks a free one.", rich_help_panel=_NET)
    ] = 8089,
    latency_ms: Annotated[
        float,
        typer.Option(help="Base latency before the first byte, in ms.", rich_help_panel=_TIME),
    ] = 0.0,
    jitter: Annotated[
        float,
        typer.Option(
            help="Latency spread: sigma of a log-normal factor with mean 1 (0.3 = about ±30%).",
            rich_help_panel=_TIME,
        ),
    ] = 0.0,
    tokens_per_second: Annotated[
        float,
        typer.Option(help="Output generation rate; 0 = instant.", rich_help_panel=_TIME),
    ] = 0.0,
    max_concurrency: Annotated[
        int | None,
        typer.Option(
            help="Requests beyond N in flight get 429 with Retry-After.", rich_help_panel=_LIMITS
        ),
    ] = None,
    rpm: Annotated[
        int | None,
        typer.Option(
            help="Requests per rolling minute beyond N get 429 with Retry-After.",
            rich_help_panel=_LIMITS,
        ),
    ] = None,
    retry_after: Annotated[
        int,
        typer.Option(
            help="Retry-After seconds on 429s (an --rpm 429 says when a slot frees, if later).",
            rich_help_panel=_LIMITS,
        ),
    ] = 1,
    fail: Annotated[
        list[str] | None,
        typer.Option(
            metavar="STATUS=P",
            help="Answer HTTP STATUS with probability P; repeatable (--fail 503=0.05 "
            "--fail 500=0.01).",
            rich_help_panel=_FAULTS,
        ),
    ] = None,
    fail_retry_after: Annotated[
        int | None,
        typer.Option(help="Put Retry-After: S on injected 503s.", rich_help_panel=_FAULTS),
    ] = None,
    reset_rate: Annotated[
        float,
        typer.Option(
            help="Probability of dropping the connection mid-response (mid-stream when streaming).",
            rich_help_panel=_FAULTS,
        ),
    ] = 0.0,
    stall_rate: Annotated[
        float,
        typer.Option(
            help="Probability of never answering, until the client gives up (or --stall-max-s).",
            rich_help_panel=_FAULTS,
        ),
    ] = 0.0,
    stall_max_s: Annotated[
        float,
        typer.Option(
            help="Longest a stalled request is held before its connection is dropped.",
            rich_help_panel=_FAULTS,
        ),
    ] = 600.0,
    empty_rate: Annotated[
        float,
        typer.Option(
            help="Probability of a 200 with a whitespace-only body.", rich_help_panel=_FAULTS
        ),
    ] = 0.0,
    malformed_rate: Annotated[
        float,
        typer.Option(help="Probability of a 200 with broken JSON.", rich_help_panel=_FAULTS),
    ] = 0.0,
    insufficient_rate: Annotated[
        float,
        typer.Option(
            help="Probability of finish_reason insufficient_system_resource.",
            rich_help_panel=_FAULTS,
        ),
    ] = 0.0,
    schema_violations: Annotated[
        float,
        typer.Option(
            help="Probability that a first answer to a JSON Schema breaks it (a required field "
            "missing, a wrong type, or prose around the JSON); re-asks always get a valid one.",
            rich_help_panel=_FAULTS,
        ),
    ] = 0.0,
    keepalive_ms: Annotated[
        float,
        typer.Option(
            help="Send blank lines (': keep-alive' when streaming) for this long before the "
            "body, as DeepSeek does while a request is queued.",
            rich_help_panel=_FAULTS,
        ),
    ] = 0.0,
    keepalive_interval_ms: Annotated[
        float,
        typer.Option(help="Time between keep-alive lines, in ms.", rich_help_panel=_FAULTS),
    ] = 250.0,
    balance_tokens: Annotated[
        int | None,
        typer.Option(
            help="Once N tokens have been billed, every request gets 402.", rich_help_panel=_MISC
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            help="Require exactly this Bearer key (without it, any non-empty key is accepted).",
            rich_help_panel=_MISC,
        ),
    ] = None,
    seed: Annotated[
        int,
        typer.Option(
            help="Seed of the fault and jitter draws: the same seed replays the same faults.",
            rich_help_panel=_MISC,
        ),
    ] = 0,
    strict_models: Annotated[
        bool,
        typer.Option(
            "--strict-models",
            help="Answer 400 'Model Not Exist' for a model GET /models does not list.",
            rich_help_panel=_MISC,
        ),
    ] = False,
    reject_unknown_fields: Annotated[
        bool,
        typer.Option(
            "--reject-unknown-fields",
            help="Answer 400 (LiteLLM's UnsupportedParamsError) to a chat request with a field "
            "OpenAI's API does not define, such as `thinking`: a generic endpoint.",
            rich_help_panel=_MISC,
        ),
    ] = False,
) -> None:
    """Run a DeepSeek-compatible API simulator that can misbehave on purpose.

    Serves POST /chat/completions (also under /v1; streaming too), GET /models and GET
    /user/balance with Bearer auth, answers deterministically from each request's last user
    message (in JSON mode with a schema in the system prompt, an object that follows it), and
    counts everything at GET /stats (POST /stats/reset zeroes it). Ctrl-C stops it.
    """

    def command() -> int:
        from dscall.simulator.config import SimulatorConfig, parse_fail

        config = SimulatorConfig(
            latency_ms=latency_ms,
            jitter=jitter,
            tokens_per_second=tokens_per_second,
            max_concurrency=max_concurrency,
            rpm=rpm,
            retry_after_s=retry_after,
            fail=dict(parse_fail(spec) for spec in fail or ()),
            fail_retry_after_s=fail_retry_after,
            reset_rate=reset_rate,
            stall_rate=stall_rate,
            stall_max_s=stall_max_s,
            empty_rate=empty_rate,
            malformed_rate=malformed_rate,
            insufficient_rate=insufficient_rate,
            schema_violations=schema_violations,
            keepalive_ms=keepalive_ms,
            keepalive_interval_ms=keepalive_interval_ms,
            balance_tokens=balance_tokens,
            api_key=api_key,
            seed=seed,
            strict_models=strict_models,
            reject_unknown_fields=reject_unknown_fields,
        ).validate()
        if not 0 <= port <= 65535:
            raise UsageError(f"--port must be in 0..65535, got {port}")
        return serve(config, host, port)

    run(command)


def serve(config: SimulatorConfig, host: str, port: int) -> int:
    """Serve until SIGINT or SIGTERM; print the address first (flushed) so that a parent
    process can read it."""
    import asyncio
    import signal

    from dscall.simulator.server import Simulator

    async def main() -> int:
        sim = Simulator(config)
        try:
            await sim.start(host, port)
        except OSError as exc:
            raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        try:
            print(f"dscall mock-server listening on {sim.base_url}", flush=True)
            await stop.wait()
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
            await sim.close()
        received = sim.stats()["requests_received"]
        typer.echo(f"dscall mock-server stopped after {received} chat requests", err=True)
        return 0

    return asyncio.run(main())
