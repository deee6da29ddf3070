"""The documentation site builds strictly and says what the code does.

The reference pages are generated (OpenAPI, docstrings, the CLI, the
settings); these tests build the site as CI does and check that the generated
parts cover everything, that the checked-in OpenAPI document is the app's
current one, and that the hand-written retry table matches the policy.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from api import openapi_document
from producer import Settings
from producer.retry import DEFAULT_SCHEDULE, RetryPolicy

ROOT = Path(__file__).resolve().parents[1]
OPENAPI = ROOT / "docs" / "reference" / "openapi.json"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site as ``mkdocs build --strict`` makes it: any warning fails."""
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return out


def _text(site: Path, page: str) -> str:
    html = (site / page / "index.html").read_text()
    return re.sub(r"<[^>]+>", "", html)


def test_the_checked_in_openapi_document_is_the_apps():
    assert json.loads(OPENAPI.read_text()) == openapi_document(), (
        "docs/reference/openapi.json is stale: run `webhooks openapi > docs/reference/openapi.json`"
    )


@pytest.mark.slow
def test_the_rest_reference_documents_every_operation(site):
    text = _text(site, "reference/rest-api")
    for path, operations in openapi_document()["paths"].items():
        for method in operations:
            assert f"{method.upper()} {path}" in text, (method, path)


@pytest.mark.slow
def test_the_configuration_reference_lists_every_setting(site):
    text = _text(site, "reference/configuration")
    for name, field in Settings.model_fields.items():
        assert f"WEBHOOKS_{name.upper()}" in text
        assert field.description, f"setting {name} has no docstring"


@pytest.mark.slow
def test_the_cli_reference_lists_every_command(site):
    from producer.cli import main

    text = _text(site, "cli")
    for name, command in main.commands.items():
        assert f"webhooks {name}" in text
        for sub in getattr(command, "commands", {}):
            assert f"webhooks {name} {sub}" in text


@pytest.mark.slow
def test_the_python_reference_documents_the_public_api(site):
    import producer

    text = _text(site, "reference/python")
    for name in producer.__all__:
        if not name.startswith("_"):
            assert name in text, name
    for method in ("send", "send_many", "asend", "create_endpoint", "start_worker_thread"):
        assert f"{method}(" in text, method


def _retry_table() -> list[tuple[int, str]]:
    page = (ROOT / "docs" / "delivery.md").read_text()
    section = page.split("## Retry schedule", 1)[1]
    return [
        (int(number), delay.strip())
        for number, delay in re.findall(r"^\| (\d+) \| ([^|]+) \|", section, flags=re.M)
    ]


def _spoken(seconds: float) -> str:
    if seconds == 0:
        return "immediately"
    for unit, size in (("h", 3600), ("min", 60), ("s", 1)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)} {unit}"
    raise AssertionError(seconds)


def test_the_documented_retry_schedule_is_the_default_policy():
    assert _retry_table() == [
        (number, _spoken(delay)) for number, delay in enumerate(DEFAULT_SCHEDULE, start=1)
    ]
    page = (ROOT / "docs" / "delivery.md").read_text()
    assert f"± {round(RetryPolicy().jitter * 100)} % jitter" in page
    total = int(sum(DEFAULT_SCHEDULE))
    last_row = f"| {len(DEFAULT_SCHEDULE)} | {_spoken(DEFAULT_SCHEDULE[-1])} |"
    assert f"{last_row} {total // 3600} h {total % 3600 // 60} min |" in page
