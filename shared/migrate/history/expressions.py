"""Revision expressions as Alembic users type them: a full id or unique prefix, `head`/`heads`,
`X@head`, `base`, `X@base`, `X@<id>`, and relative steps (`+1`, `-1`, `X@-2`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared.migrate.errors import ConfigError, RevisionError, shown
from shared.migrate.history.graph import RevisionGraph
from shared.migrate.manifest import Module

RELATIVE = re.compile(r"([+-])(\d{1,6})\Z")


@dataclass(frozen=True)
class Expression:
    """A revision expression split into its module part and what follows it."""

    module: Module | None
    text: str


def parse(graph: RevisionGraph, text: str, module: Module | None) -> Expression:
    text = text.strip()
    if "@" in text:
        label, _, rest = text.partition("@")
        named = graph.manifest.module(label)
        if module is not None and named != module:
            raise ConfigError(
                f"--revision names module '{named.name}' but --branch names '{module.name}'; "
                "give one of them"
            )
        return Expression(named, rest)
    return Expression(module, text)


def resolve(graph: RevisionGraph, text: str, module: Module | None) -> str:
    """A revision id or unique prefix, within `module` when one is named."""
    if not text or not re.fullmatch(r"[0-9A-Za-z_]+", text):
        raise RevisionError(
            f"'{shown(text)}' is not a revision; give an id (or its first characters), "
            "head, base, or a step such as -1"
        )
    scope = f" in module '{module.name}'" if module else ""
    if text in graph.revisions:
        found = graph.revisions[text]
        if module is not None and found.module != module.name:
            raise RevisionError(
                f"revision {text} belongs to module '{found.module}', not '{module.name}'"
            )
        return text
    candidates = sorted(
        r.revision
        for r in graph.revisions.values()
        if r.revision.startswith(text) and (module is None or r.module == module.name)
    )
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        if text in graph.manifest.names:
            raise RevisionError(
                f"'{text}' is a module, not a revision; name the module with --branch {text} "
                f"(and a revision with -r, e.g. {text}@-1 or base)"
            )
        where = f" --branch {module.name}" if module else ""
        raise RevisionError(
            f"unknown revision '{shown(text)}'{scope}; `migrate history{where}` lists them"
        )
    raise RevisionError(
        f"revision '{text}'{scope} is ambiguous ({', '.join(candidates[:5])}); give more characters"
    )
