"""The manifest: defaults, and one clear error (exit code 2) for each kind of mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.migrate.errors import ConfigError
from shared.migrate.manifest import load_manifest
from tests.conftest import Project


def write(root: Path, text: str, modules: tuple[str, ...] = ("users", "agents")) -> Path:
    for name in modules:
        (root / "services" / name / "migrations").mkdir(parents=True, exist_ok=True)
    path = root / "migrations.yaml"
    path.write_text(text)
    return path


def test_defaults_follow_the_module_name(tmp_path: Path) -> None:
    manifest = load_manifest(
        write(tmp_path, "modules:\n  - users\n  - name: agents\n    depends_on: [users]\n")
    )
    agents = manifest.module("agents")
    assert agents.branch == "agents"
    assert agents.models == "services.agents.models"
    assert agents.versions == (tmp_path / "services/agents/migrations").resolve()
    assert agents.depends_on == ("users",)
    assert manifest.settings.version_table == "alembic_version"
    assert manifest.settings.database_url_env == "DATABASE_URL"


def test_branch_label_finds_the_module(tmp_path: Path) -> None:
    manifest = load_manifest(write(tmp_path, "modules:\n  - name: users\n    branch: people\n"))
    assert manifest.module("people").name == "users"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("modules:\n  - name: users\n    colour: red\n", "unknown key 'colour'"),
        ("modules:\n  - users\n  - users\n", "name 'users' is used by two modules"),
        (
            "modules:\n  - name: users\n    branch: x\n  - name: agents\n    branch: x\n",
            "branch 'x' is used by two modules",
        ),
        ("modules:\n  - name: Users\n", "must match [a-z][a-z0-9_]*"),
        ("modules:\n  - name: ../etc\n", "must match [a-z][a-z0-9_]*"),
        ("modules:\n  - name: billing\n", "'services/billing' is not a directory"),
        ("modules:\n  - name: users\n    depends_on: [nope]\n", "unknown module 'nope'"),
        (
            "modules:\n  - name: users\n    depends_on: [agents]\n"
            "  - name: agents\n    depends_on: [users]\n",
            "cycle (users -> agents -> users)",
        ),
        ("modules:\n  - name: users\n    versions: ../../x\n", "points outside the repository"),
        ("settings:\n  colour: red\nmodules: [users]\n", "unknown key 'colour'"),
        ("modules: [users\n", "not valid YAML"),
        ("modules: []\n", "'modules' must be a non-empty list"),
    ],
)
def test_bad_manifest_names_the_key(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_manifest(write(tmp_path, text))
    assert expected in str(error.value)
    assert "\n" not in str(error.value)


def test_cli_reports_bad_manifest_with_exit_2(project: Project) -> None:
    (project.root / "migrations.yaml").write_text("modules:\n  - name: users\n    colour: red\n")
    result = project.migrate("heads")
    assert result.code == 2
    assert result.err.strip().splitlines() == [
        "error: migrations.yaml modules[0]: unknown key 'colour'; allowed keys: branch, "
        "database_url_env, depends_on, lint, lint_from, models, name, path, schema, versions"
    ]
    assert "Traceback" not in result.err


def test_manifest_is_found_upwards_or_named_with_config(project: Project) -> None:
    at_root = project.migrate("heads")
    assert at_root.code == 0, at_root.err
    from_nested = Project(project.root / "services" / "agents", project.database_url)
    assert from_nested.migrate("heads").out == at_root.out
    elsewhere = Project(project.root.parent, project.database_url)
    explicit = elsewhere.migrate("--config", str(project.root / "migrations.yaml"), "heads")
    assert explicit.code == 0 and explicit.out == at_root.out
    missing = elsewhere.migrate("heads")
    assert missing.code == 2
    assert "no migrations.yaml found" in missing.err and "--config" in missing.err
