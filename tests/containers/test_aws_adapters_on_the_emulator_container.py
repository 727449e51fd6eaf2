"""The aws adapters' contract suites and the multi-consumer lease test, once more against moto's
server in the emulator container (the image docker-compose.yml runs), started with testcontainers.

The test bodies are the ones in tests/contract and tests/aws, imported here; only the backends
change: the aws ones alone, with the emulator container as their endpoint (tests/awsenv.moto_at).
"""

from __future__ import annotations

import pytest

from tests.aws.test_leases import lease_env, test_two_tasks_split_the_shards_and_a_killed_ones_are_taken_over  # noqa: F401
from tests.awsenv import moto_at
from tests.containers.engine import configure_testcontainers
from tests.contract import backends
from tests.contract.conftest import _closing
from tests.contract.test_dead_letters import *  # noqa: F403
from tests.contract.test_lake import *  # noqa: F403
from tests.contract.test_store import *  # noqa: F403
from tests.contract.test_stream import *  # noqa: F403

EMULATOR_IMAGE = "shopstream/emulator:dev"  # built by docker-compose.yml (scripts/containers-build.sh)


@pytest.fixture(scope="module", autouse=True)
def emulator_container(images):
    configure_testcontainers()
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import HealthcheckWaitStrategy

    emulator = DockerContainer(EMULATOR_IMAGE).with_exposed_ports(4566).waiting_for(HealthcheckWaitStrategy())
    with emulator as container:  # the image's own HEALTHCHECK says when moto answers
        url = f"http://{container.get_container_host_ip()}:{container.get_exposed_port(4566)}"
        with moto_at(url):
            yield url


stream = pytest.fixture(params=["aws"])(_closing(backends.STREAMS))
lake = pytest.fixture(params=["aws"])(_closing(backends.LAKES))
store = pytest.fixture(params=["aws"])(_closing(backends.STORES))
dead_letters = pytest.fixture(params=["aws"])(_closing(backends.DEAD_LETTERS))


def test_the_endpoint_is_the_container(emulator_container):
    from tests.awsenv import moto_endpoint

    assert moto_endpoint() == emulator_container
