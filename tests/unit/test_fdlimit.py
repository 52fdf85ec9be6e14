"""The open-file budget (a pure table), the soft-limit raise (in a child process, on the real
limit) and the retry rule for a descriptor that is not free."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys

import pytest

from dscall.config import (
    DEFAULT_MAX_CONCURRENCY,
    FD_PER_WORKER,
    FD_RESERVED,
    FD_RETRY_MAX_S,
    FD_RETRY_TOTAL_S,
    CallSettings,
    ExtractSettings,
    ProcessSettings,
)
from dscall.fdlimit import (
    fd_retry_delays,
    fit_to_fd_limit,
    out_of_fds,
    plan_fd_budget,
    retry_out_of_fds,
)

resource = pytest.importorskip("resource")

# limit, concurrency, max_concurrency, workers, mock -> concurrency, max, workers, note expected
PLANS = [
    # Plenty of descriptors: nothing changes, nothing is said.
    (1_048_576, 2000, 2000, 8, False, 2000, 2000, 8, None),
    (1024, 32, 256, 2, False, 32, 256, 2, None),
    # 1,024 - 64 reserved - 2 workers * 8 = 944 sockets.
    (1024, 2000, 2000, 2, False, 944, 944, 2, "--concurrency 2000 capped at 944"),
    (256, 500, 500, 2, False, 176, 176, 2, "--concurrency 500 capped at 176"),
    # --mock: the in-process simulator holds the other end of every connection.
    (256, 500, 500, 2, True, 88, 88, 2, "--concurrency 500 capped at 88"),
    # Only the adaptive ceiling is too high: it is the one named.
    (256, 32, 256, 2, False, 32, 176, 2, "--max-concurrency 256 capped at 176"),
    # Many CPUs, few descriptors: workers take at most half of what is spare.
    (256, 32, 256, 64, False, 32, 96, 12, "--workers 64 capped at 12"),
    # Too few to do anything sensible: one of each, still a run.
    (40, 8, 8, 4, False, 1, 1, 1, "--concurrency 8 capped at 1"),
    (0, 8, 8, 4, True, 1, 1, 1, "--concurrency 8 capped at 1"),
]


@pytest.mark.parametrize(
    ("limit", "concurrency", "maximum", "workers", "mock", "want_c", "want_m", "want_w", "note"),
    PLANS,
)
def test_plan_fits_connections_and_workers_into_the_limit(
    limit: int,
    concurrency: int,
    maximum: int,
    workers: int,
    mock: bool,
    want_c: int,
    want_m: int,
    want_w: int,
    note: str | None,
) -> None:
    plan = plan_fd_budget(
        limit, concurrency=concurrency, max_concurrency=maximum, workers=workers, mock=mock
    )
    assert (plan.concurrency, plan.max_concurrency, plan.workers) == (want_c, want_m, want_w)
    if note is None:
        assert plan.note is None
        return
    assert plan.note is not None
    assert plan.note.startswith("note: ")
    assert note in plan.note
    assert f"{limit} open files allowed (ulimit -n" in plan.note
    assert "\n" not in plan.note
    if limit > 64:  # the budget holds whenever it can hold at all
        per_request = 2 if mock else 1
        used = FD_RESERVED + plan.workers * FD_PER_WORKER + plan.max_concurrency * per_request
        assert used <= limit


def test_defaults_are_lowered_without_a_note_naming_an_option_nobody_gave() -> None:
    plan = plan_fd_budget(
        256,
        concurrency=8,
        max_concurrency=256,
        workers=64,
        mock=False,
        default_max=True,
        default_workers=True,
    )
    assert (plan.concurrency, plan.max_concurrency, plan.workers) == (8, 96, 12)
    assert plan.note is None
    # What the user did ask for is still named, and only that.
    plan = plan_fd_budget(
        256,
        concurrency=500,
        max_concurrency=500,
        workers=64,
        mock=False,
        default_max=False,
        default_workers=True,
    )
    assert plan.note is not None
    assert "--concurrency 500 capped at 96" in plan.note
    assert "--workers" not in plan.note


def test_fit_lowers_the_default_ceiling_quietly() -> None:
    settings = ProcessSettings(
        inputs=("docs",), call=CallSettings(concurrency=8), extract=ExtractSettings(workers=2)
    )
    assert settings.call.max_concurrency == DEFAULT_MAX_CONCURRENCY
    notes: list[str] = []
    fitted = fit_to_fd_limit(settings, notes.append, limit=256)
    assert (fitted.call.concurrency, fitted.call.max_concurrency) == (8, 176)
    assert notes == []


def test_fit_leaves_settings_alone_and_says_nothing_when_they_fit() -> None:
    settings = ProcessSettings(inputs=("docs",), extract=ExtractSettings(workers=2))
    notes: list[str] = []
    assert fit_to_fd_limit(settings, notes.append, limit=1_000_000) is settings
    assert notes == []


def test_fit_caps_the_call_settings_and_tells_it_once() -> None:
    settings = ProcessSettings(
        inputs=("docs",),
        call=CallSettings(concurrency=500, max_concurrency=500),
        extract=ExtractSettings(workers=2),
        mock=True,
    )
    notes: list[str] = []
    fitted = fit_to_fd_limit(settings, notes.append, limit=256)
    assert (fitted.call.concurrency, fitted.call.max_concurrency) == (88, 88)
    assert fitted.extract is settings.extract  # the workers fitted already
    assert fitted.call.base_url == settings.call.base_url
    assert len(notes) == 1
    assert "--concurrency 500 capped at 88" in notes[0]


def test_retry_delays_back_off_and_stop_within_the_total() -> None:
    delays = list(fd_retry_delays())
    assert delays[0] < delays[1] < delays[2]
    assert max(delays) == FD_RETRY_MAX_S
    assert FD_RETRY_TOTAL_S - FD_RETRY_MAX_S <= sum(delays) <= FD_RETRY_TOTAL_S


def test_retry_waits_out_emfile_and_enfile_but_not_other_errors() -> None:
    failures = [OSError(errno.EMFILE, "Too many open files"), OSError(errno.ENFILE, "x")]
    slept: list[float] = []

    def flaky() -> str:
        if failures:
            raise failures.pop(0)
        return "opened"

    assert retry_out_of_fds(flaky, sleep=slept.append, delays=[0.1, 0.2, 0.4]) == "opened"
    assert slept == [0.1, 0.2]

    def denied() -> str:
        raise PermissionError(errno.EACCES, "Permission denied")

    with pytest.raises(PermissionError):
        retry_out_of_fds(denied, sleep=slept.append, delays=[0.1])
    assert slept == [0.1, 0.2]  # no wait for an error that waiting cannot fix


def test_retry_gives_up_with_the_last_error_after_its_delays() -> None:
    def exhausted() -> None:
        raise OSError(errno.EMFILE, "Too many open files")

    with pytest.raises(OSError, match="Too many open files") as caught:
        retry_out_of_fds(exhausted, sleep=lambda _: None, delays=[0.0, 0.0])
    assert out_of_fds(caught.value)


_RAISE = """
import json, resource
from dscall.fdlimit import raise_soft_limit
got = raise_soft_limit()
print(json.dumps([got, *resource.getrlimit(resource.RLIMIT_NOFILE)]))
"""


@pytest.mark.parametrize(("soft", "hard"), [(100, 300), (128, 256), (300, 300)])
def test_raise_soft_limit_goes_up_to_the_hard_limit_and_never_past_it(soft: int, hard: int) -> None:
    current_hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if current_hard != resource.RLIM_INFINITY and current_hard < hard:
        pytest.skip(f"the hard limit here is {current_hard}")
    # The limit is set in a wrapper that then execs the child: no preexec_fn in a process
    # that may run threads.
    limited = (
        "import os, resource, sys; "
        f"resource.setrlimit(resource.RLIMIT_NOFILE, ({soft}, {hard})); "
        "os.execv(sys.executable, [sys.executable, '-c', sys.argv[1]])"
    )
    result = subprocess.run(
        [sys.executable, "-c", limited, _RAISE],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=dict(os.environ),
    )
    assert json.loads(result.stdout) == [hard, hard, hard]
