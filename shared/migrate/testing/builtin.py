"""The standard migration tests, one of each per module (`test_stairway[agents]`, ...).

Collected by the pytest plugin when a run asks for them (`--migrate-tests`, or the ini
setting `migrate_tests = true`). Each test gets a fresh database on a real PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import pytest

from shared.migrate.manifest import Manifest
from shared.migrate.testing.migrator import Migrator

pytestmark = pytest.mark.migrate


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "module" in metafunc.fixturenames:
        from shared.migrate.manifest import find_manifest, load_manifest

        config = metafunc.config
        given = config.getoption("--migrate-config") or config.getini("migrate_config")
        path = given or find_manifest(config.rootpath)
        metafunc.parametrize("module", load_manifest(type(config.rootpath)(path)).names)


def test_single_head(module: str, migrate_manifest: Manifest) -> None:
    """The module's history has one head (two people's parallel work needs a merge)."""
    from shared.migrate.history.graph import load_graph

    heads = load_graph(migrate_manifest).heads(module)
    if len(heads) > 1:
        pytest.fail(
            f"module '{module}' has {len(heads)} heads ({', '.join(heads)}); "
            f"merge them: migrate merge --module {module}",
            pytrace=False,
        )


def test_upgrade(module: str, migrator: Migrator) -> None:
    """From an empty database to the module's head, applying only what its revisions
    declare they need (a missing depends_on fails here, on the revision that needs it)."""
    from shared.migrate.database.executor import RevisionFailed

    try:
        migrator.up(module=module)
    except RevisionFailed as exc:
        pytest.fail(str(exc), pytrace=False)
    head = migrator.graph.heads(module)
    assert migrator.current(module) == tuple(head), migrator.current(module)


def test_models_match_migrations(module: str, migrator: Migrator) -> None:
    """The module's models and what its migrations build agree (autogenerate finds nothing)."""
    drift = migrator.drift(module)
    if drift:
        pytest.fail(
            f"module '{module}': models differ from migrations: {'; '.join(drift)}; run: "
            f"migrate create MESSAGE --module {module}",
            pytrace=False,
        )


def test_stairway(module: str, migrator: Migrator, migrate_revision_data: dict[str, Any]) -> None:
    """Every revision of the module: up, down (the schema exactly as before: a downgrade
    leaves no trace), up again."""
    from shared.migrate.database.executor import RevisionFailed

    try:
        built = migrator.stairway(module, migrate_revision_data)
    except RevisionFailed as exc:  # a revision that cannot go up at all
        pytest.fail(str(exc), pytrace=False)
    if built.findings:
        pytest.fail("\n".join(f.detail for f in built.findings), pytrace=False)
    assert built.complete


def test_dependencies_declared(module: str, migrate_manifest: Manifest) -> None:
    """Django's rule: the module's revisions depend only on modules it declares in
    depends_on, and its models reference only their tables."""
    from shared.migrate.history.graph import load_graph
    from shared.migrate.schema import checks
    from shared.migrate.schema.discovery import discover
    from shared.migrate.schema.ownership import undeclared_references

    manifest = migrate_manifest
    revisions = checks.revision_dependency_findings(load_graph(manifest))
    found = [f.detail for f in revisions if f.module == module]
    discovery = discover(manifest)
    allowed = {
        m.name: {d.name for d in manifest.dependency_closure(m.name)} for m in manifest.modules
    }
    found += [
        f.detail
        for f in checks.dependency_findings(
            undeclared_references(discovery.metadata, discovery.owners, allowed)
        )
        if f.module == module
    ]
    if found:
        pytest.fail("\n".join(found), pytrace=False)


def test_lint(module: str, migrator: Migrator) -> None:
    """`migrate lint` over the module's revisions (from its lint_from), measured on a shadow
    database: an error fails the test, a warning is reported as a pytest warning."""
    import warnings

    from shared.migrate.commands.lint import LintOptions, lint

    report = lint(migrator.target, LintOptions(module=module, all_revisions=True))
    for finding in report.warnings:
        warnings.warn(
            f"{finding.rule} at {finding.where}: {finding.detail}", UserWarning, stacklevel=1
        )
    if report.errors:
        pytest.fail(
            "\n".join(
                f"{f.rule} at {f.where}: {f.detail}; safe: {f.recipe}" for f in report.errors
            ),
            pytrace=False,
        )
