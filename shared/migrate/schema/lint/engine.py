"""Lint, from revisions to findings: render each upgrade offline, parse it, judge it, let the
measured pass settle what it can, then apply silences and the manifest's levels."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from shared.migrate.errors import ConfigError, shown
from shared.migrate.history.graph import RevisionGraph
from shared.migrate.schema.lint import render, rules, silences
from shared.migrate.schema.lint.findings import (
    LEVELS,
    STATEMENT_LIMIT,
    Finding,
    Linted,
    Measured,
    Report,
    Statement,
)
from shared.migrate.schema.lint.measure import Measurement, Sample, measure
from shared.migrate.schema.lint.rules import RULES, WRITE_BLOCKING_LOCKS, Hit

if TYPE_CHECKING:
    from shared.db.url import DatabaseURL

OFF_REASON = "set to off in migrations.yaml"
DETAIL_LIMIT = 100  # characters of the statement quoted in a finding's detail


def lint(
    graph: RevisionGraph,
    revisions: set[str],
    server: DatabaseURL | None = None,
    command: str = "lint",
) -> Report:
    """Lint `revisions`; with `server`, measure them on a shadow database there."""
    levels = levels_of(graph)
    order = graph.ordered(revisions)
    if not order:
        return Report((), (), (), False)
    rendered = render.render(graph, order)
    per_revision = [render.statements(graph, r) for r in rendered]
    measured = None
    if server is not None:
        measured = measure(server, graph, set(order), command)
        per_revision = [
            _attach(graph, s, r, measured) for s, r in zip(per_revision, rendered, strict=True)
        ]
    hits = rules.judge(per_revision, graph.manifest.settings.lock_timeout > 0)
    if measured is not None:
        hits = _settle(hits, per_revision)
    findings = [_finding(hit) for hit in hits]
    if measured is not None:
        findings += _failures(graph, measured)
    files = {r: silences.read(graph.revisions[r].path, set(RULES)) for r in order}
    findings += _silence_problems(graph, files)
    position = {revision: number for number, revision in enumerate(order)}
    findings.sort(key=lambda f: (position[f.revision], f.line or 0))
    active, silenced = _apply_silences(findings, levels, files)
    linted = tuple(
        Linted(info.module, info.revision, render.relative(graph, info.location), tuple(statements))
        for statements, info in zip(per_revision, (graph.revisions[r] for r in order), strict=True)
    )
    return Report(tuple(active), tuple(silenced), linted, measured is not None)


# ---- levels ----------------------------------------------------------------------------------


def levels_of(graph: RevisionGraph) -> dict[str, dict[str, str]]:
    """Each module's rule levels: the manifest's project levels, then the module's own."""
    manifest = graph.manifest
    project = dict(manifest.lint)
    result = {}
    for module in manifest.modules:
        levels = {**project, **dict(module.lint)}
        for rule, level in levels.items():
            if rule not in RULES:
                raise ConfigError(
                    f"migrations.yaml: lint rule '{shown(rule)}' (module '{module.name}') is not "
                    f"a rule{silences.suggest(rule, set(RULES))}"
                )
            if level not in LEVELS:
                raise ConfigError(
                    f"migrations.yaml: lint level of '{rule}' must be error, warning or off"
                )
        result[module.name] = levels
    return result


# ---- measurements -----------------------------------------------------------------------------


def _attach(
    graph: RevisionGraph,
    statements: list[Statement],
    rendered: render.Rendered,
    measurement: Measurement,
) -> list[Statement]:
    """Each statement with what the shadow measured for the call that emitted it. An upgrade
    that could not run offline is judged on the statements it ran online."""
    samples = [s for s in measurement.samples if s.revision == rendered.revision]
    if rendered.error is not None and samples:
        return _from_samples(graph, rendered.revision, samples)
    by_line: dict[int, list[Sample]] = {}
    for sample in samples:
        by_line.setdefault(sample.line, []).append(sample)
    taken: dict[tuple[int | None, int], Measured] = {}
    result = []
    for statement in statements:
        key = (statement.line, statement.call)
        if key not in taken and statement.line in by_line:
            queue = by_line[statement.line]
            kind = type(statement.node).__name__
            while queue:
                sample = queue.pop(0)
                if _kind(sample.sql) == kind:
                    taken[key] = sample.measured
                    break
        found = taken.get(key)
        if found is not None and kind_of(statement) == "TruncateStmt":
            # TRUNCATE gives the table a new, empty file: nothing is copied
            found = replace(found, rewrites=(), indexes=())
        result.append(replace(statement, measured=found))
    return result


def kind_of(statement: Statement) -> str:
    return type(statement.node).__name__


def _kind(sql: str) -> str:
    from pglast.parser import ParseError, parse_sql

    try:
        parsed = parse_sql(sql)
    except ParseError:
        return ""
    return type(parsed[0].stmt).__name__ if parsed else ""


def _from_samples(graph: RevisionGraph, revision: str, samples: list[Sample]) -> list[Statement]:
    from pglast.parser import ParseError, parse_sql

    info = graph.revisions[revision]
    file = render.relative(graph, info.location)
    result: list[Statement] = []
    for sample in samples:
        try:
            nodes = [raw.stmt for raw in parse_sql(sample.sql)]
        except ParseError:
            continue  # PostgreSQL ran it: it parses; a driver-specific form is skipped
        for node in nodes:
            result.append(
                Statement(
                    info.module,
                    revision,
                    file,
                    len(result) + 1,
                    sample.line,
                    sample.sql.strip(),
                    sample.in_transaction,
                    0,
                    node,
                    measured=sample.measured,
                )
            )
    return result


def _settle(hits: list[Hit], per_revision: list[list[Statement]]) -> list[Hit]:
    """Keep a hit the measurement confirms, drop one it disproves; add the rewrites no rule
    foresaw."""
    kept = [hit for hit in hits if _confirmed(hit)]
    explained = {(id(h.statement), h.relation) for h in kept if RULES[h.rule].measured == "rewrite"}
    groups: set[tuple[str, int | None, int]] = set()
    for statements in per_revision:
        for statement in statements:
            measured = statement.measured
            group = (statement.revision, statement.line, statement.call)
            if measured is None or group in groups:
                continue
            groups.add(group)
            for table in measured.rewrites:
                if (id(statement), table) not in explained:
                    kept.append(Hit("table-rewrite", statement, f"rewrites {table}", table))
    return kept


def _confirmed(hit: Hit) -> bool:
    measured = hit.statement.measured
    how = RULES[hit.rule].measured
    if measured is None or not how:
        return True
    if how == "rewrite":
        return hit.relation in measured.rewrites
    if how == "scan":
        return hit.relation in measured.scans or hit.relation in measured.rewrites
    if how == "held":
        return any(
            lock.relation == hit.relation and lock.mode in WRITE_BLOCKING_LOCKS
            for lock in measured.held
        )
    if hit.rule == "require-lock-timeout":
        return any(lock.mode == "ACCESS EXCLUSIVE" for lock in measured.locks)
    return True


def facts(measured: Measured) -> str:
    """What a statement did, in words: the locks it took and what it rewrote or scanned."""
    parts = [f"holds {lock.mode} on {lock.relation}" for lock in measured.locks]
    for table in measured.rewrites:
        indexes = [i for i in measured.indexes if i != table]
        count = len(indexes)
        also = {0: "", 1: " (and its index)"}.get(count, f" (and its {count} indexes)")
        parts.append(f"rewrites {table}{also}")
    parts += [f"scans {t}" for t in measured.scans if t not in measured.rewrites]
    if parts:
        return ", ".join(parts)
    if measured.held:
        held = ", ".join(f"{lock.mode} on {lock.relation}" for lock in measured.held[:3])
        return f"takes no lock the transaction did not hold already ({held})"
    return "takes no lock on a table that existed before"


def _finding(hit: Hit) -> Finding:
    statement = hit.statement
    rule = RULES[hit.rule]
    measured = statement.measured
    flat = " ".join(statement.sql.split())
    quoted = shown(flat, STATEMENT_LIMIT)
    detail = f"statement {statement.index}"
    detail += f" (`{shown(flat, DETAIL_LIMIT)}`)" if flat else ""
    detail += f" {hit.detail}"
    if measured is not None:
        detail += f"; measured: {facts(measured)}"
    return Finding(
        rule=rule.id,
        level=rule.level,
        module=statement.module,
        revision=statement.revision,
        file=statement.file,
        line=statement.line,
        statement=quoted,
        detail=detail,
        recipe=rule.recipe,
        locks=measured.locks if measured else (),
        rewrites=measured.rewrites if measured else (),
        scans=measured.scans if measured else (),
        measured=measured is not None,
    )


def _about_file(
    graph: RevisionGraph, rule: str, revision: str, line: int | None, detail: str
) -> Finding:
    """A finding about a revision file rather than one of its statements."""
    info = graph.revisions[revision]
    return Finding(
        rule=rule,
        level=RULES[rule].level,
        module=info.module,
        revision=revision,
        file=render.relative(graph, info.location),
        line=line,
        statement="",
        detail=detail,
        recipe=RULES[rule].recipe,
    )


def _failures(graph: RevisionGraph, measurement: Measurement) -> list[Finding]:
    return [
        _about_file(
            graph,
            "upgrade-fails",
            revision,
            None,
            f"the upgrade fails on a shadow database: {shown(reason, 200)}; what builds on it "
            "was not measured",
        )
        for revision, reason in measurement.failed.items()
    ]


# ---- silences --------------------------------------------------------------------------------


def _silence_problems(
    graph: RevisionGraph, files: dict[str, silences.FileSilences]
) -> list[Finding]:
    return [
        _about_file(graph, "silence", revision, problem.line, problem.detail)
        for revision, read in files.items()
        for problem in read.problems
    ]


def _apply_silences(
    findings: list[Finding],
    levels: dict[str, dict[str, str]],
    files: dict[str, silences.FileSilences],
) -> tuple[list[Finding], list[Finding]]:
    active: list[Finding] = []
    silenced: list[Finding] = []
    for finding in findings:
        level = levels.get(finding.module, {}).get(finding.rule, finding.level)
        if level == "off":
            silenced.append(replace(finding, silenced=OFF_REASON))
            continue
        finding = replace(finding, level=level)
        if finding.rule != "silence":
            reason = files[finding.revision].reason(finding.rule, finding.line)
            if reason is not None:
                silenced.append(replace(finding, silenced=reason))
                continue
        active.append(finding)
    return active, silenced
