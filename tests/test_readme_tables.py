"""The README's tables agree with the code: every route it lists exists in the
OpenAPI document, and the configuration table names every environment
variable and every flag of ``sandcat serve``."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path

import pytest

from sandcat.api.openapi import openapi_document
from sandcat.cli import _parser
from sandcat.config import ENVIRONMENT, Config

README = (Path(__file__).parent.parent / "README.md").read_text()
_METHOD = re.compile(r"^[A-Z]+$")
_ROUTE = re.compile(r"^(?:([A-Z]+) )?(/\S*)$")


def _table(header: str) -> list[list[str]]:
    start = README.index(header)
    rows = []
    for line in README[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return rows


def _normal(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


def readme_routes() -> set[tuple[str, str]]:
    """(method, path) of every route in the README's "area | routes" table."""
    routes: set[tuple[str, str]] = set()
    for _, cell in _table("| area | routes |"):
        pending: list[str] = []
        last: list[str] = []
        for span in re.findall(r"`([^`]*)`", cell):
            if _METHOD.match(span):
                pending.append(span)
                continue
            found = _ROUTE.match(span)
            if found is None:
                continue  # a setting named in passing
            method, path = found.groups()
            methods = [*pending, method] if method else last
            pending, last = [], methods
            path = path.partition("?")[0]
            head, _, tail = path.rpartition("/")
            for leaf in tail.replace("\\|", "|").split("|"):
                routes.update((m, _normal(f"/api/v1{head}/{leaf}")) for m in methods)
    return routes


def test_every_route_in_the_readme_exists() -> None:
    documented = {
        (method.upper(), _normal(path))
        for path, operations in openapi_document()["paths"].items()
        for method in operations
    }
    listed = readme_routes()
    assert len(listed) > 60
    assert listed - documented == set()
    assert ("POST", "/api/v1/groups/{}/leave") in listed
    # ... and the table is the whole API but for what README names elsewhere.
    elsewhere = {
        "/api/v1/auth/oauth/github/callback",
        "/api/v1/openapi.json",
        "/healthz",
        "/metrics",
    }
    assert {route for route in documented - listed if route[1] not in elsewhere} == set()


def test_the_configuration_table_names_every_variable_and_flag() -> None:
    rows = _table("| flag | environment | TOML key | default |")
    flags = {flag.strip("`") for row in rows for flag in row[0].split(", ") if flag}
    variables = {row[1].strip("`") for row in rows if row[1]}
    # Secrets are named beside their key in the TOML example instead.
    for name in set(ENVIRONMENT) - variables:
        assert f"or {name}" in README, name
    serve = _parser()._subparsers._group_actions[0].choices["serve"]  # type: ignore[union-attr]
    options = {
        option
        for action in serve._actions
        if action.help != "==SUPPRESS==" and action.option_strings != ["-h", "--help"]
        for option in action.option_strings
    }
    assert options <= flags


@pytest.mark.parametrize("name", ["PROTOCOL", "DESIGN", "STYLE", "TESTING"])
def test_nothing_cites_a_design_file_that_is_not_in_the_repository(name: str) -> None:
    root = Path(__file__).parent.parent
    missing = name + ".md"  # spelled apart: this file must not cite it either
    assert not (root / missing).exists()
    citing = [
        str(path.relative_to(root))
        for path in _project_files(root)
        if missing in path.read_text(encoding="utf-8")
    ]
    assert citing == []
    assert missing not in README


def _project_files(root: Path) -> list[Path]:
    return [
        path
        for folder in ("src", "tests", "bench", "compose", "protocol", "docs", "sdk")
        for path in (root / folder).rglob("*")
        # Applied migrations are history: their comments stay as written.
        if path.suffix in {".py", ".md", ".toml", ".yml"} and "node_modules" not in path.parts
    ]


def test_nothing_cites_the_steering_folder_outside_the_repository() -> None:
    root = Path(__file__).parent.parent
    outside = "../" + "shared"  # spelled apart: this file must not cite it either
    citing = [
        str(path.relative_to(root))
        for path in _project_files(root)
        if outside in path.read_text(encoding="utf-8")
    ]
    assert citing == []
    assert outside not in README


_SECTIONS = {field.name: field for field in dataclasses.fields(Config)}
_SETTING = re.compile(rf"`((?:{'|'.join(_SECTIONS)})\.[a-z_0-9]+)`")


def _settings() -> dict[str, object]:
    """Every ``section.key`` of the configuration, with its default."""
    config = Config()
    return {
        f"{section}.{field.name}": getattr(getattr(config, section), field.name)
        for section in _SECTIONS
        for field in dataclasses.fields(getattr(config, section))
    }


def test_the_toml_example_names_real_settings_with_their_defaults() -> None:
    example = README.partition("Everything else lives in the TOML file.")[2]
    document = tomllib.loads(example.partition("```toml")[2].partition("```")[0])
    settings = _settings()
    shown = {
        f"{section}.{key}": value
        for section, keys in document.items()
        for key, value in keys.items()
    }
    assert len(shown) > 100
    assert {key: value for key, value in shown.items() if settings.get(key, ...) != value} == {}


@pytest.mark.parametrize("name", ["README.md", "protocol/SPEC.md"])
def test_every_setting_the_docs_name_exists(name: str) -> None:
    text = (Path(__file__).parent.parent / name).read_text()
    named = set(_SETTING.findall(text))
    assert named - set(_settings()) == set()


def test_every_guarantee_the_project_cites_is_defined_in_the_readme() -> None:
    """Code, tests and docs cite the guarantees by number (G1-G8): each number
    cited must be a row of the README's "Guarantees" table, so a reader can
    look it up without any file outside the repository."""
    root = Path(__file__).parent.parent
    defined = {row[0] for row in _table("| | guarantee |")}
    assert defined == {f"G{n}" for n in range(1, 9)}
    cited = {
        number
        for path in [*_project_files(root), root / "README.md"]
        for number in re.findall(r"\bG[1-9][0-9]*\b", path.read_text(encoding="utf-8"))
    }
    assert {"G1", "G2", "G3"} <= cited
    assert cited - defined == set()
