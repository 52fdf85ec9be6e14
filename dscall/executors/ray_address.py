"""A quick look at ``--ray-address`` before ``ray.init`` is given it.

``ray.init(address="HOST:PORT")`` with nothing listening there retries the GCS connection for
ever, so a run from cron or CI never ends. One TCP connection, bounded by a timeout, tells
first whether anything listens at HOST:PORT; if nothing does, the run stops with a one-line
usage error. Only the plain ``HOST:PORT`` (and ``[v6]:PORT``) forms are checked: ``auto``,
``local``, a Ray Client address (``ray://...``) and an address without a port are Ray's to
resolve, and are left alone. Something listening is not proof it is Ray: that is left to Ray.
"""

from __future__ import annotations

import socket

from dscall.errors import UsageError

_RAY_RESOLVES = {"auto", "local"}


def split_address(address: str) -> tuple[str, str] | None:
    """``(host, port text)`` of ``HOST:PORT`` or ``[v6]:PORT``; None for what Ray resolves."""
    text = address.strip()
    if text.lower() in _RAY_RESOLVES or "://" in text:
        return None
    if text.startswith("["):  # [v6]:PORT
        host, bracket, rest = text[1:].partition("]")
        if not bracket or not rest.startswith(":"):
            return None  # no port (or not a form dscall knows): Ray's to read
        return host, rest[1:]
    if text.count(":") != 1:  # no port, or a bare IPv6 address: ambiguous, left to Ray
        return None
    host, _, port = text.partition(":")
    return host, port


def parse_port(address: str, text: str) -> int:
    port = int(text) if text.isascii() and text.isdigit() else 0
    if not 1 <= port <= 65535:
        raise UsageError(f"--ray-address HOST:PORT: {text!r} in {address!r} is not a port")
    return port


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Raise UsageError unless something accepts a TCP connection at ``address``'s HOST:PORT
    within ``timeout_s``; return at once for the addresses left to Ray (see the module)."""
    parts = split_address(address)
    if parts is None:
        return
    host, port_text = parts
    port = parse_port(address, port_text)
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as exc:
        raise UsageError(f"cannot reach Ray at {address}: {_reason(exc)}") from exc


def _reason(exc: OSError) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError):  # socket.timeout is TimeoutError from Python 3.10
        return "timed out"
    return exc.strerror or str(exc) or type(exc).__name__
