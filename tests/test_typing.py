"""The shipped packages type-check: ``mypy producer api`` finds nothing.

Annotations are part of the library's interface (it ships ``py.typed``), so
a wrong one is a defect a user's own type checker reports in their code.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow  # a process of its own, about 15 s without mypy's cache
def test_mypy_finds_nothing_in_producer_and_api() -> None:
    pytest.importorskip("mypy", reason="mypy comes with the test extra: pip install -e '.[test]'")
    if tuple(int(part) for part in sqlalchemy.__version__.split(".")[:2]) < (2, 1):
        pytest.skip("the annotations follow SQLAlchemy 2.1's generic types (Select[Row])")
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "producer", "api"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
