"""`create` and `merge`: the verbs that write revision files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from shared.migrate.database.target import Target
from shared.migrate.errors import ConfigError
from shared.migrate.history.graph import load_graph
from shared.migrate.manifest import Manifest

if TYPE_CHECKING:
    from shared.migrate.schema.lint.findings import Finding as LintFinding

T = TypeVar("T")


@dataclass(frozen=True)
class CreateResult:
    module: str
    path: Path | None
    revision: str | None
    depends_on: tuple[str, ...] = ()
    changes: tuple[str, ...] = ()  # what the revision does, one line per operation
    lint: tuple[LintFinding, ...] = ()  # what `migrate lint` says of the file written


# ---- writing revisions -------------------------------------------------------------------


def create(
    target: Target,
    message: str,
    module_name: str,
    *,
    autogenerate: bool = True,
    shadow_url: str | None = None,
) -> CreateResult:
    """`migrate create`: a new revision on the module's head, in its versions directory."""
    from shared.migrate.history import revisionfile

    manifest = target.manifest
    module = manifest.module(module_name)
    if not message.strip():
        raise ConfigError("the revision message is empty; describe the change in a few words")
    graph = load_graph(manifest)  # every file read (cheap, cached): a broken one stops create
    if not autogenerate:
        written = revisionfile.write(manifest, module, message, head=graph.head(module))
        return CreateResult(module.name, written.path, written.revision)
    from shared.migrate.schema import autogen

    head = graph.head(module)
    created = autogen.create_revision(
        graph, module, head, message, target.shadow_server(shadow_url, module)
    )
    if created is None:
        return CreateResult(module.name, None, None)
    return CreateResult(
        module.name,
        created.path,
        created.revision,
        created.depends_on,
        created.changes,
        _lint_written(target, created.revision, shadow_url),
    )


def _lint_written(target: Target, revision: str, shadow_url: str | None) -> tuple[LintFinding, ...]:
    """Lint of the revision just written, measured on a shadow built from what it follows."""
    from shared.migrate.schema.lint.engine import lint

    graph = load_graph(target.manifest)
    return lint(graph, {revision}, target.shadow_server(shadow_url), "create").findings


def merge(manifest: Manifest, module_name: str, message: str | None = None) -> CreateResult:
    """`migrate merge`: one revision joining the module's heads, in its versions directory."""
    from shared.migrate.history import revisionfile

    module = manifest.module(module_name)
    graph = load_graph(manifest)
    module_heads = graph.heads(module.name)
    if len(module_heads) < 2:
        return CreateResult(module.name, None, None)
    written = revisionfile.write(
        manifest, module, message or f"merge {module.name} heads", head=tuple(sorted(module_heads))
    )
    return CreateResult(module.name, written.path, written.revision)
