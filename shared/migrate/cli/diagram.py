"""`migrate graph`: the modules and their depends_on (and, with --revisions, each module's
chain and the cross-module dependencies) as Mermaid, which GitHub renders, or Graphviz dot."""

from __future__ import annotations

from shared.migrate.history.graph import RevisionGraph
from shared.migrate.manifest import Manifest


def render(manifest: Manifest, graph: RevisionGraph | None, kind: str) -> str:
    return _dot(manifest, graph) if kind == "dot" else _mermaid(manifest, graph)


def _mermaid(manifest: Manifest, graph: RevisionGraph | None) -> str:
    lines = ["flowchart BT"]
    if graph is None:
        for module in manifest.modules:
            label = module.name + (f" (schema {module.schema})" if module.schema else "")
            lines.append(f'    {module.name}["{label}"]')
        for module in manifest.modules:
            lines += [f"    {module.name} --> {dep}" for dep in module.depends_on]
        return "\n".join(lines) + "\n"
    for module in manifest.modules:
        revisions = list(reversed(graph.of_module(module.name)))
        lines.append(f'    subgraph {module.name}["{module.name}"]')
        lines += [f'        r{r.revision}["{r.revision}"]' for r in revisions]
        lines.append("    end")
    for rev in graph.revisions.values():
        lines += [f"    r{rev.revision} --> r{parent}" for parent in rev.parents]
        lines += [f"    r{rev.revision} -.-> r{dep}" for dep in rev.depends_on]
    return "\n".join(lines) + "\n"


def _dot(manifest: Manifest, graph: RevisionGraph | None) -> str:
    lines = ["digraph migrate {", "    rankdir=BT;", "    node [shape=box];"]
    if graph is None:
        lines += [f'    "{m.name}";' for m in manifest.modules]
        for module in manifest.modules:
            lines += [f'    "{module.name}" -> "{dep}";' for dep in module.depends_on]
        return "\n".join([*lines, "}"]) + "\n"
    for module in manifest.modules:
        lines.append(f'    subgraph "cluster_{module.name}" {{')
        lines.append(f'        label="{module.name}";')
        lines += [f'        "{r.revision}";' for r in graph.of_module(module.name)]
        lines.append("    }")
    for rev in graph.revisions.values():
        lines += [f'    "{rev.revision}" -> "{parent}";' for parent in rev.parents]
        lines += [f'    "{rev.revision}" -> "{dep}" [style=dashed];' for dep in rev.depends_on]
    return "\n".join([*lines, "}"]) + "\n"
