"""The examples run as written, against a local receiver."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_embed_example_delivers_a_signed_webhook(tmp_path, receiver):
    result = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "embed.py"),
            receiver.url("/hooks"),
            f"sqlite:///{tmp_path / 'example.db'}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    [request] = receiver.received()
    secret = result.stdout.split("secret ")[1].split()[0]
    request.verify(secret)
    assert json.loads(request.body)["type"] == "invoice.paid"
    assert "succeeded 200" in result.stdout
