"""``--ray-address`` is checked with one TCP connection before ``ray.init`` gets it
(``dscall.executors.ray_address``): real sockets on loopback."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from dscall.errors import UsageError
from dscall.executors import ray_address
from dscall.executors.ray_address import check_reachable


@pytest.fixture
def listening() -> Iterator[int]:
    """The port of a socket listening on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


def closed_port(family: socket.AddressFamily = socket.AF_INET, host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago and that nothing listens on now."""
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
    return port


def test_an_address_where_something_listens_passes(listening: int) -> None:
    check_reachable(f"127.0.0.1:{listening}", timeout_s=5.0)
    check_reachable(f" 127.0.0.1:{listening} ")


def test_a_closed_port_is_a_one_line_usage_error_naming_the_address() -> None:
    address = f"127.0.0.1:{closed_port()}"
    with pytest.raises(UsageError) as raised:
        check_reachable(address, timeout_s=5.0)
    assert str(raised.value) == f"cannot reach Ray at {address}: connection refused"
    assert raised.value.exit_code == 2
    assert "\n" not in str(raised.value)


def test_an_ipv6_address_in_brackets_is_checked() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        port = closed_port(socket.AF_INET6, "::1")
    except OSError:
        pytest.skip("no ::1 on this machine")
    with pytest.raises(UsageError, match=r"cannot reach Ray at \[::1\]:\d+: connection refused"):
        check_reachable(f"[::1]:{port}")


@pytest.mark.parametrize(
    "address",
    ["auto", "AUTO", "local", "ray://127.0.0.1:10001", "127.0.0.1", "[::1]", "::1", "fe80::1:80"],
)
def test_addresses_left_to_ray_are_not_checked(
    address: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def connect(*args: object, **kwargs: object) -> socket.socket:
        raise AssertionError(f"{address} was checked")

    monkeypatch.setattr(ray_address.socket, "create_connection", connect)
    check_reachable(address)


@pytest.mark.parametrize(
    ("address", "port"),
    [
        ("127.0.0.1:abc", "abc"),
        ("127.0.0.1:70000", "70000"),
        ("127.0.0.1:0", "0"),
        ("127.0.0.1:", ""),
        ("127.0.0.1:-1", "-1"),
        ("[::1]:abc", "abc"),
        ("127.0.0.1:\N{SUPERSCRIPT TWO}", "\N{SUPERSCRIPT TWO}"),
    ],
)
def test_a_port_that_is_not_a_number_in_range_is_a_usage_error(address: str, port: str) -> None:
    with pytest.raises(UsageError) as raised:
        check_reachable(address)
    assert str(raised.value).startswith(f"--ray-address HOST:PORT: {port!r} ")
    assert str(raised.value).endswith("is not a port")


def test_a_timeout_says_timed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[object] = []

    def connect(where: tuple[str, int], timeout: float) -> socket.socket:
        seen.append((where, timeout))
        raise TimeoutError("timed out")

    monkeypatch.setattr(ray_address.socket, "create_connection", connect)
    with pytest.raises(UsageError, match=r"^cannot reach Ray at 10\.0\.0\.1:6379: timed out$"):
        check_reachable("10.0.0.1:6379", timeout_s=0.5)
    assert seen == [(("10.0.0.1", 6379), 0.5)]


def test_an_unknown_host_gives_the_resolvers_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    def connect(where: tuple[str, int], timeout: float) -> socket.socket:
        raise socket.gaierror(-2, "Name or service not known")  # no real DNS in a unit test

    monkeypatch.setattr(ray_address.socket, "create_connection", connect)
    with pytest.raises(UsageError, match=r"^cannot reach Ray at nowhere:6379: Name or service"):
        check_reachable("nowhere:6379")
