"""MkDocs hooks: reference tables generated from the code, so they cannot drift.

``<!-- settings-table -->`` in a page becomes the table of every setting of
:class:`producer.Settings`: its environment variable, default and meaning
(the field's docstring).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from producer.settings import Settings

SETTINGS_MARKER = "<!-- settings-table -->"


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value: Any = field.default_factory()  # type: ignore[call-arg]
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    if value is None:
        return "unset"
    if value == []:
        return "empty"
    if isinstance(value, bool):
        return "`1`" if value else "`0`"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"`{json.dumps(value) if isinstance(value, str) else value}`"


def _cell(text: str | None) -> str:
    # Docstrings use reST double backticks; one line per table cell.
    return " ".join((text or "").replace("``", "`").split()).replace("|", "\\|")


def settings_table() -> str:
    """The Markdown table of every setting."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        rows.append(
            f"| `WEBHOOKS_{name.upper()}` | {_default(field)} | {_cell(field.description)} |"
        )
    return "\n".join(rows)


def on_page_markdown(markdown: str, **_: Any) -> str:
    """Replace the markers of generated tables."""
    if SETTINGS_MARKER in markdown:
        markdown = markdown.replace(SETTINGS_MARKER, settings_table())
    return markdown
