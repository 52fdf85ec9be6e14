"""A real Ray cluster on this machine for the tests of ``--executor ray``: two nodes of Ray's
own ``ray.cluster_utils.Cluster``, loopback only, one per test module, stopped after (by the
handles of the processes it started). Its workers get a fixed environment at start: the test
key, no settings files, no usage reporting."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TEST_API_KEY
from tests.integration.conftest import sim as sim  # the simulator and workspace fixtures
from tests.integration.conftest import workspace as workspace

# Read by Ray when it is imported (ray_constants): "localhost" stays 127.0.0.1 instead of the
# machine's network address; no usage statistics sent; no token files under a test's HOME.
RAY_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "disabled",
}
os.environ.update(RAY_ENV)

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The address of a two-node cluster, one CPU per node."""
    home = tmp_path_factory.mktemp("ray-home")
    with pytest.MonkeyPatch.context() as patch:  # inherited by every node's processes
        patch.setenv("HOME", str(home))
        patch.setenv("DEEPSEEK_API_KEY", TEST_API_KEY)
        patch.setenv("DSCALL_NO_CONFIG", "1")
        node = {"num_cpus": 1, "include_dashboard": False, "node_ip_address": "127.0.0.1"}
        cluster = Cluster(initialize_head=True, head_node_args=node)
        try:
            cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
            cluster.wait_for_nodes()
            yield str(cluster.address)
        finally:
            cluster.shutdown()


def ray_env(root: Path) -> dict[str, str]:
    """The environment of a ``dscall`` driver process started by a test."""
    env = dict(os.environ)
    env.update(RAY_ENV)
    env["HOME"] = str(root)
    return env
