"""The browser layer: the whole system of `make run` (tests/e2e's stack on the session's Kafka and FerretDB),
and a headless Chromium per scenario with its own cookies."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.browser.harness import ARTEFACTS, AXE, CHROMEDRIVER, CHROMIUM, Browser, chromium
from tests.e2e.conftest import otlp, stack, staff_of  # noqa: F401 - the e2e fixtures, shared as they are

pytestmark = pytest.mark.browser


@pytest.fixture(scope="session", autouse=True)
def browser_tools() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER, AXE) if not p.exists()]
    if missing:
        pytest.fail(f"browser tools missing ({', '.join(missing)}): run `make provision`")


@pytest.fixture(scope="session", autouse=True)
def fresh_artefacts() -> None:
    shutil.rmtree(ARTEFACTS, ignore_errors=True)
    ARTEFACTS.mkdir(parents=True, exist_ok=True)


@pytest.fixture
def browser(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    driver = chromium()
    name = request.node.name.removeprefix("test_")
    try:
        yield Browser(driver, name, tmp_path_factory.mktemp(name[:40]))
    finally:
        driver.quit()


@pytest.fixture
def second_browser(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """Another person's browser, in the same scenario (e.g. the applicant, then the staff member)."""
    driver = chromium()
    name = request.node.name.removeprefix("test_") + "-2"
    try:
        yield Browser(driver, name, tmp_path_factory.mktemp(name[:40]))
    finally:
        driver.quit()
