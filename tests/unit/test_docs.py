"""Docs that drift from the code fail here.

- README's configuration table is exactly what ``genyard.config.settings_table()`` renders.
- Every ``genyard <command>`` shown in a code block of README or docs/ exists.
- docs/api.md names every route the app serves, every error code and every job error code.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from genyard.api import errors as api_errors
from genyard.app import create_app
from genyard.cli import app as cli_app
from genyard.config import Settings, settings_table
from genyard.errors import GenyardError, JobErrorCode

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
API_DOC = ROOT / "docs" / "api.md"
START, END = "<!-- settings-table:start -->", "<!-- settings-table:end -->"
CODE_BLOCK = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
# `genyard users create`, `.venv/bin/genyard serve`; not `genyard/diagnostic` nor `GENYARD_X`.
COMMAND = re.compile(
    r"(?<![\w/.-])(?:\.venv/bin/)?genyard[ \t]+([a-z][a-z-]*)(?:[ \t]+([a-z][a-z-]*))?"
)


def readme_table() -> str:
    text = README.read_text(encoding="utf-8")
    assert text.count(START) == 1 and text.count(END) == 1, "README needs both table markers once"
    return text.split(START, 1)[1].split(END, 1)[0]


def test_readme_settings_table_is_generated_from_settings() -> None:
    expected = settings_table()
    assert readme_table().strip("\n") == expected.strip("\n"), (
        "README's configuration table differs from genyard.config.Settings; paste the output "
        "of `python -c 'from genyard.config import settings_table; print(settings_table())'` "
        f"between the {START} markers"
    )


def test_settings_table_has_one_row_per_field_with_help_text() -> None:
    rows = settings_table().strip().splitlines()[2:]
    assert len(rows) == len(Settings.model_fields)
    for name, field in Settings.model_fields.items():
        assert field.description, f"Settings.{name} has no description"
        assert any(row.startswith(f"| `GENYARD_{name.upper()}` |") for row in rows)


def documented_commands() -> set[tuple[str, ...]]:
    found: set[tuple[str, ...]] = set()
    for path in [README, *sorted((ROOT / "docs").glob("*.md"))]:
        for block in CODE_BLOCK.findall(path.read_text(encoding="utf-8")):
            for match in COMMAND.finditer(block):
                found.add(tuple(word for word in match.groups() if word))
    return found


def resolve(words: tuple[str, ...]) -> list[str]:
    """The command path the words name: a group's subcommand, or a command and its argument."""
    commands: dict[str, Any] = getattr(typer.main.get_command(cli_app), "commands", {})
    command = commands.get(words[0])
    assert command is not None, f"README/docs show `genyard {words[0]}`, which does not exist"
    subcommands: dict[str, Any] | None = getattr(command, "commands", None)
    if subcommands is None:  # a command; a second word is its argument
        return [words[0]]
    assert len(words) > 1, f"`genyard {words[0]}` needs a subcommand in the docs"
    assert words[1] in subcommands, f"`genyard {' '.join(words)}` does not exist"
    return list(words[:2])


def test_docs_show_cli_commands() -> None:
    names = {words[0] for words in documented_commands()}
    assert {"serve", "users", "keys"} <= names, names


@pytest.mark.parametrize("words", sorted(documented_commands()), ids=" ".join)
def test_documented_cli_command_exists(words: tuple[str, ...]) -> None:
    path = resolve(words)
    result = CliRunner().invoke(cli_app, [*path, "--help"])
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def api_doc() -> str:
    return API_DOC.read_text(encoding="utf-8")


def test_api_doc_names_every_route(tmp_path_factory: pytest.TempPathFactory, api_doc: str) -> None:
    settings = Settings(data_dir=tmp_path_factory.mktemp("data"))
    app = create_app(settings)  # builds routes only; the lifespan (and its database) never runs
    paths = app.openapi()["paths"]  # routers nest: the schema is where full paths are listed
    assert "/v1/predictions" in paths
    documented = [f"{method.upper()} {path}" for path, ops in paths.items() for method in ops]
    missing = [route for route in documented if route not in api_doc]
    assert not missing, f"docs/api.md does not document: {missing}"


def all_subclasses(cls: type) -> list[type]:
    return [sub for child in cls.__subclasses__() for sub in (child, *all_subclasses(child))]


def test_api_doc_lists_every_error_code(api_doc: str) -> None:
    codes = {(c.status, c.code) for c in [GenyardError, *all_subclasses(GenyardError)]}
    codes |= set(getattr(api_errors, "_HTTP_CODES", {}).items())
    for status, code in sorted(codes):
        row = f"| {status} | `{code}` |"
        assert row in api_doc, f"docs/api.md's error table has no row {row!r}"


def test_api_doc_lists_every_job_error_code(api_doc: str) -> None:
    for code in JobErrorCode:
        assert f"`{code.value}`" in api_doc, f"job error code {code.value} undocumented"
