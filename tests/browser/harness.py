"""A headless Chromium driven by Selenium, with an axe-core accessibility check and full-page screenshots
of every page a scenario looks at, on a desktop and on a phone width.

Chromium and its driver come from Debian's packages and axe-core from the npm registry, both installed by
`make provision` (scripts/ensure-browser.sh). Screenshots go to the test's temporary folder and to
`.local/artefacts/screenshots/<scenario>/`, where CI keeps them.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / ".local" / "npm" / "node_modules" / "axe-core" / "axe.min.js"
ARTEFACTS = ROOT / ".local" / "artefacts" / "screenshots"
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
DESKTOP, PHONE = (1280, 900), (390, 844)
# What the accessibility check refuses (axe's impact levels: minor, moderate, serious, critical).
REFUSED_IMPACTS = {"serious", "critical"}


def chromium() -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={DESKTOP[0]},{DESKTOP[1]}",
        "--lang=fr-FR",
    ):
        options.add_argument(argument)
    options.add_experimental_option("prefs", {"intl.accept_languages": "fr-FR,fr"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(60)
    return driver


@dataclass
class AxeReport:
    url: str
    violations: list[dict[str, Any]]

    @property
    def refused(self) -> list[dict[str, Any]]:
        return [v for v in self.violations if v.get("impact") in REFUSED_IMPACTS]

    def describe(self) -> str:
        return "; ".join(
            f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}" for v in self.refused
        )


@dataclass
class Browser:
    """One person's browser (its own cookies) in one scenario."""

    driver: webdriver.Chrome
    scenario: str
    out_dir: Path
    shots: list[Path] = field(default_factory=list)
    reports: list[AxeReport] = field(default_factory=list)

    # --- navigation ---------------------------------------------------------------------------------------

    def open(self, url: str) -> None:
        self.driver.get(url)

    @property
    def url(self) -> str:
        return self.driver.current_url

    @property
    def title(self) -> str:
        return self.driver.title

    def text(self, css: str = "main") -> str:
        found = self.driver.find_elements(By.CSS_SELECTOR, css)
        if not found:
            body = self.driver.find_element(By.TAG_NAME, "body").text[:500]
            raise AssertionError(f"no {css} on {self.url} ({self.title!r}): {body}")
        return found[0].text

    def link(self, text: str) -> None:
        self.driver.find_element(By.LINK_TEXT, text).click()

    def field(self, name: str, form: WebElement | None = None) -> WebElement:
        return (form or self.driver).find_element(By.NAME, name)

    def form(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def fill(self, values: dict[str, str], form: WebElement | None = None) -> None:
        """Type into text fields, pick options of lists, tick boxes ("oui") and radio buttons (their value)."""
        for name, value in values.items():
            elements = (form or self.driver).find_elements(By.NAME, name)
            assert elements, f"no field named {name}"
            element = elements[0]
            kind = element.get_attribute("type")
            if element.tag_name == "select":
                Select(element).select_by_value(value)
            elif kind == "checkbox":
                if element.is_selected() != bool(value):
                    self.click(element)
            elif kind == "radio":
                self.click(next(e for e in elements if e.get_attribute("value") == value))
            elif kind in ("date", "datetime-local"):
                self.driver.execute_script("arguments[0].value = arguments[1]", element, value)
            else:
                element.clear()
                element.send_keys(value)

    def click(self, element: WebElement) -> None:
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
        element.click()

    def submit(self, form: WebElement | None = None, button: str | None = None) -> None:
        """Press the form's submit button (the one whose text is `button`, if given), wait for the next page."""
        scope = form or self.driver.find_element(By.CSS_SELECTOR, "main form[method='post']")
        buttons = scope.find_elements(By.CSS_SELECTOR, "button[type='submit']")
        chosen = next(b for b in buttons if button is None or b.text.strip() == button)
        old = self.driver.find_element(By.TAG_NAME, "html")
        self.click(chosen)
        self.wait(lambda: _stale(old), "the next page")

    def wait(self, condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what} on {self.url}")

    def reload_until(self, condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
        """Reload the page until it shows what an event elsewhere brings (a case routed, a volunteer added)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.5)
            self.driver.refresh()
        raise AssertionError(f"timed out waiting for {what} on {self.url}")

    # --- checks and artefacts -----------------------------------------------------------------------------

    def check(self, name: str) -> AxeReport:
        """The page as people see it: no serious or critical accessibility violation (axe-core), and
        full-page screenshots on a desktop and on a phone."""
        report = self.axe()
        self.screenshot(name)
        self.record(name, report)
        assert not report.refused, f"{name}: {report.describe()}"
        return report

    def record(self, name: str, report: AxeReport) -> None:
        """Every violation axe found, whatever its impact, beside the screenshots (`axe.json`)."""
        path = ARTEFACTS / self.scenario / "axe.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        found = json.loads(path.read_text()) if path.exists() else {}
        found[name] = [
            {"id": v["id"], "impact": v.get("impact"), "help": v["help"], "nodes": len(v["nodes"])}
            for v in report.violations
        ]
        path.write_text(json.dumps(found, ensure_ascii=False, indent=1))

    def axe(self) -> AxeReport:
        self.driver.execute_script(AXE.read_text())
        result = self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "axe.run(document, {resultTypes: ['violations']})"
            ".then(r => done(r.violations)).catch(e => done({error: String(e)}));"
        )
        assert not isinstance(result, dict), f"axe-core failed: {result}"
        report = AxeReport(self.url, result)
        self.reports.append(report)
        return report

    def screenshot(self, name: str) -> list[Path]:
        slug = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
        saved = []
        for label, (width, height), mobile in (("bureau", DESKTOP, False), ("telephone", PHONE, True)):
            self.driver.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
            )
            metrics = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
            size = metrics.get("cssContentSize") or metrics["contentSize"]
            shot = self.driver.execute_cdp_cmd(
                "Page.captureScreenshot",
                {
                    "format": "png",
                    "captureBeyondViewport": True,
                    "clip": {"x": 0, "y": 0, "width": width, "height": min(size["height"], 6000), "scale": 1},
                },
            )
            path = self.out_dir / f"{len(self.shots) // 2 + 1:02d}-{slug}-{label}.png"
            path.write_bytes(base64.b64decode(shot["data"]))
            saved.append(path)
            self.shots.append(path)
        self.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        copy = ARTEFACTS / self.scenario
        copy.mkdir(parents=True, exist_ok=True)
        for path in saved:
            shutil.copy2(path, copy / path.name)
        return saved


def _stale(element: WebElement) -> bool:
    try:
        element.is_enabled()
    except WebDriverException:
        return True
    return False
