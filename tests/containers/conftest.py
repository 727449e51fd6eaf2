from __future__ import annotations

from pathlib import Path

import pytest

from tests.containers.engine import images_ready


def pytest_collection_modifyitems(items):
    """The container tests run last: their images build in the background meanwhile."""
    here = Path(__file__).parent
    items.sort(key=lambda item: item.path.is_relative_to(here))


@pytest.fixture(scope="session")
def images() -> dict[str, str]:
    return images_ready()
