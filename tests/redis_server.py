"""A real `redis-server` (Debian's package) for the shared cache tier's tests: on a free loopback
port, with no persistence, in its own temporary folder, killed afterwards.

Tests that need one skip, with the reason, only where `redis-server` is not installed; CI
(`.ci/run`) installs it.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

REDIS_SERVER = shutil.which("redis-server")
needs_redis = pytest.mark.skipif(
    REDIS_SERVER is None, reason="redis-server is not installed (apt-get install redis-server)"
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _ping(port: int, password: str | None) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            if password:
                conn.sendall(f"AUTH {password}\r\n".encode())
                conn.recv(64)
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class RedisServer:
    proc: subprocess.Popen[bytes]
    port: int
    password: str | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def client(self) -> object:
        """A synchronous redis-py client, to look at what the runs stored."""
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password)

    def items(self) -> dict[bytes, bytes]:
        """Every key and its value (strings: all dscall stores)."""
        client = self.client()
        found = {}
        for key in client.scan_iter(count=1000):  # type: ignore[attr-defined]
            value = client.get(key)  # type: ignore[attr-defined]
            if value is not None:
                found[key] = value
        client.close()  # type: ignore[attr-defined]
        return found

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def freeze(self) -> None:
        """SIGSTOP: connections stay open and nothing answers (a hung Redis)."""
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.proc.send_signal(signal.SIGCONT)


@contextlib.contextmanager
def running_redis(password: str | None = None, *options: str) -> Iterator[RedisServer]:
    """A redis-server on a free 127.0.0.1 port (a few tries: another process may take it)."""
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    with tempfile.TemporaryDirectory(prefix="dscall-redis-") as folder:
        for _ in range(5):
            port = _free_port()
            args = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
            args += ["--appendonly", "no", "--dir", folder, "--loglevel", "warning"]
            if password:
                args += ["--requirepass", password]
            args += options
            proc = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            deadline = time.monotonic() + 10
            while proc.poll() is None and time.monotonic() < deadline:
                if _ping(port, password):
                    break
                time.sleep(0.02)
            if proc.poll() is None and _ping(port, password):
                server = RedisServer(proc, port, password)
                try:
                    yield server
                finally:
                    server.thaw()
                    server.kill()
                    if proc.stderr is not None:
                        proc.stderr.close()
                return
            proc.kill()
            proc.communicate(timeout=10)
        raise RuntimeError("redis-server did not start on a free port in 5 tries")
