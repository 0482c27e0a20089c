"""`migrate lint`, run as a user runs it: every rule flags its unsafe revision and not its
safe rewrite (tests/lint_corpus.py), measured on PostgreSQL; squawk, run on the same SQL,
flags nothing we miss except where a measurement proves it wrong."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from shared.migrate.schema.lint.rules import RULES
from tests.conftest import BIN, Project
from tests.lint_corpus import MEASURED, SETUP, STATIC, Case

Report = dict[str, Any]
Ids = dict[str, list[str]]

# squawk's findings on the corpus that a measurement proves wrong, with the measurement; the
# README's "Safe on hot tables" lists the same
SQUAWK_WRONG = {
    ("changing-column-type", "changing-column-type"): "varchar(32) -> varchar(64) and "
    "varchar(10) -> text: the relfilenode of t_type and its index stay the same (no rewrite)",
    ("adding-not-nullable-field", "adding-not-nullable-field"): "SET NOT NULL after a "
    "validated CHECK (m IS NOT NULL): no sequential scan of t_notnull begins "
    "(pg_stat_get_xact_numscans)",
    ("ban-drop-table", "ban-drop-table"): "a table created and dropped by the same revision: "
    "it is not in pg_class when the revision starts, so no running code uses it",
}
# squawk asks for timeouts before every such statement; migrate runs each revision with the
# manifest's lock_timeout (5s by default) and statement_timeout, set on its session
SESSION_SETTINGS = {"require-lock-timeout", "require-timeout-settings", "require-statement-timeout"}


def chain(project: Project, module: str, prefix: str, bodies: list[str]) -> list[str]:
    """Revisions on the module's head, one per body, with fixed ids; returns the ids."""
    parent = project.head_file(module).name.split("_")[0]
    ids = []
    for number, body in enumerate(bodies, 1):
        rev = f"{prefix}{number:011d}"
        project.write_revision(module, rev, body, parent=parent)
        ids.append(rev)
        parent = rev
    return ids


def corpus(project: Project, cases: tuple[Case, ...], prefix: str, setup: bool = True) -> Ids:
    """(SETUP, below lint_from,) then each case's bad and good revisions on users' head;
    the case's rule -> its revision ids, the bad one first."""
    bodies, rules = ([SETUP], [""]) if setup else ([], [])
    for case in cases:
        for body in (case.bad, *case.good):
            bodies.append(body)
            rules.append(case.rule)
    ids = chain(project, "users", prefix, bodies)
    if setup:
        project.edit(
            "migrations.yaml", "- name: users\n", f"- name: users\n    lint_from: {ids[1]}\n"
        )
    result: Ids = {}
    for rev, rule in zip(ids, rules, strict=True):
        if rule:
            result.setdefault(rule, []).append(rev)
    return result


def lint_json(project: Project, *args: str, url: bool = True) -> Report:
    result = project.migrate("lint", "--json", *args, url=url)
    assert result.code in (0, 1) and result.err == "", result.err
    report: Report = json.loads(result.out)
    assert report["version"] == 1 and report["ok"] is (result.code == 0)
    return report


def flagged(report: Report, revision: str, silenced: bool = False) -> set[str]:
    found = report["findings"] + (report["silenced"] if silenced else [])
    return {f["rule"] for f in found if f["revision"] == revision}


def assert_corpus(report: Report, cases: tuple[Case, ...], ids: Ids) -> None:
    missed, wrong = [], []
    for case in cases:
        bad, *good = ids[case.rule]
        if case.rule not in flagged(report, bad):
            missed.append((case.rule, sorted(flagged(report, bad))))
        for rev in good:
            errors = {
                f["rule"]
                for f in report["findings"]
                if f["revision"] == rev and f["level"] == "error"
            }
            if case.rule in flagged(report, rev) or errors:
                wrong.append((case.rule, rev, sorted(flagged(report, rev))))
    assert missed == [], f"not flagged: {missed}"
    assert wrong == [], f"safe rewrites flagged: {wrong}"


def finding(report: Report, rule: str, revision: str) -> dict[str, Any]:
    [found] = [f for f in report["findings"] if f["rule"] == rule and f["revision"] == revision]
    return found


@pytest.fixture
def measured(project: Project) -> tuple[Project, Report, Ids]:
    ids = corpus(project, MEASURED, "a")
    report = lint_json(project)
    (project.root.parent / "lint.json").write_text(json.dumps(report))
    return project, report, ids


def test_every_rule_flags_its_case_and_not_the_safe_rewrite(
    measured: tuple[Project, Report, Ids],
) -> None:
    _, report, ids = measured
    assert report["measured"] is True
    assert_corpus(report, MEASURED, ids)
    # what was measured, in the finding and per statement
    bad, widen, to_text = ids["changing-column-type"]
    rewrite = finding(report, "changing-column-type", bad)
    assert rewrite["measured"] is True and rewrite["rewrites"] == ["t_type"]
    assert {"relation": "t_type", "mode": "ACCESS EXCLUSIVE"} in rewrite["locks"]
    assert (
        "measured: holds ACCESS EXCLUSIVE on t_type, rewrites t_type (and its index)"
        in (rewrite["detail"])
    )
    assert rewrite["file"] == f"services/users/migrations/{bad}_by_hand.py"
    assert rewrite["line"] == 12  # the op.alter_column line
    assert rewrite["statement"] == "ALTER TABLE t_type ALTER COLUMN n TYPE BIGINT"
    statements = {r["revision"]: r["statements"] for r in report["revisions"]}
    for rev in (widen, to_text):
        [statement] = statements[rev]
        assert statement["rewrites"] == []
        assert statement["locks"] == [{"relation": "t_type", "mode": "ACCESS EXCLUSIVE"}]
    index = finding(
        report, "require-concurrent-index-creation", ids["require-concurrent-index-creation"][0]
    )
    assert index["locks"] == [{"relation": "t_index", "mode": "SHARE"}]
    assert "holds SHARE on t_index, scans t_index" in index["detail"]
    scan = finding(report, "adding-not-nullable-field", ids["adding-not-nullable-field"][0])
    assert scan["scans"] == ["t_notnull"]
    # the safe drop is silenced, with its reason
    dropped = ids["ban-drop-column"][1]
    silenced = [(s["rule"], s["silenced"]) for s in report["silenced"] if s["revision"] == dropped]
    assert silenced == [("ban-drop-column", "release 41 stopped reading and writing m")]
    # revisions below lint_from are not judged
    assert all(r["revision"] != "a00000000001" for r in report["revisions"])


def test_text_and_github_output(measured: tuple[Project, Report, Ids]) -> None:
    project, _, ids = measured
    bad = ids["changing-column-type"][0]
    text = project.migrate("lint", "--show-silenced")
    assert text.code == 1, text.err
    assert f"error  changing-column-type  services/users/migrations/{bad}_by_hand.py:12" in (
        text.out
    )
    assert "  safe: add a column of the new type, backfill it in batches" in text.out
    dropped = ids["ban-drop-column"][1]
    assert (
        f"silenced  ban-drop-column  services/users/migrations/{dropped}_by_hand.py:13  "
        f"{dropped}: release 41 stopped reading and writing m" in text.out
    )
    last = text.out.splitlines()[-1]
    assert last.endswith("(measured on a shadow database, 7 silenced).") and " errors, " in last
    github = project.migrate("lint", "--format", "github")
    assert github.code == 1
    line = next(x for x in github.out.splitlines() if f"{bad}_by_hand.py" in x and "type" in x)
    assert line.startswith(
        f"::error file=services/users/migrations/{bad}_by_hand.py,line=12,"
        "title=migrate lint%3A changing-column-type::statement 1 (`ALTER TABLE t_type ALTER "
        "COLUMN n TYPE BIGINT`) changes the type of t_type.n; measured: holds ACCESS "
        "EXCLUSIVE on t_type"
    )
    assert ". Safe: add a column of the new type" in line
    warning = next(x for x in github.out.splitlines() if "prefer-text-field" in x)
    assert warning.startswith("::warning file=")


def test_static_cases_without_a_database(project: Project) -> None:
    ids = corpus(project, STATIC, "b", setup=False)
    report = lint_json(project, "--static", url=False)  # no database anywhere
    assert report["measured"] is False
    assert_corpus(report, STATIC, ids)
    bad = ids["syntax-error"][0]
    broken = finding(report, "syntax-error", bad)
    assert broken["line"] == 12 and broken["file"].endswith(f"{bad}_by_hand.py")
    assert "PostgreSQL cannot parse it: syntax error at or near" in broken["detail"]
    silence = [f["detail"] for f in report["findings"] if f["rule"] == "silence"]
    assert any("gives no reason" in d for d in silence)
    assert any("unknown rule 'ban-drop-colum'" in d for d in silence)
    # unparsable SQL in text output: one finding naming file and line, no traceback
    text = project.migrate("lint", "--static")
    assert text.code == 1 and "Traceback" not in text.out + text.err
    assert f"error  syntax-error  services/users/migrations/{bad}_by_hand.py:12" in text.out


def rendered(report: Report, revision: str) -> str:
    """The revision's SQL as it runs: its statements, with the transaction around them."""
    [statements] = [r["statements"] for r in report["revisions"] if r["revision"] == revision]
    lines, open_ = [], False
    for statement in statements:
        if statement["in_transaction"] != open_:
            lines.append("BEGIN;" if statement["in_transaction"] else "COMMIT;")
            open_ = statement["in_transaction"]
        if statement["sql"]:
            lines.append(statement["sql"].rstrip(";") + ";")
    if open_:
        lines.append("COMMIT;")
    return "\n".join(lines) + "\n"


def squawk(sql: dict[str, str], folder: Path) -> dict[str, set[str]]:
    """squawk's rules per revision, run on the same SQL."""
    folder.mkdir()
    for rev, text in sql.items():
        (folder / f"{rev}.sql").write_text(text)
    done = subprocess.run(
        [
            str(BIN / "squawk"),
            "--reporter",
            "json",
            "--pg-version",
            "15",
            *(str(folder / f"{rev}.sql") for rev in sql),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode in (0, 1), done.stderr
    found: dict[str, set[str]] = {rev: set() for rev in sql}
    for item in json.loads(done.stdout or "[]"):
        found[Path(item["file"]).stem].add(item["rule_name"])
    return found


def test_squawk_flags_nothing_we_miss_but_what_measurement_disproves(
    measured: tuple[Project, Report, Ids], tmp_path: Path
) -> None:
    project, report, ids = measured
    static_ids = corpus(project, STATIC, "b", setup=False)
    static = lint_json(project, "--static")
    owner, ours, sql = {}, {}, {}
    for source, cases, case_ids in ((report, MEASURED, ids), (static, STATIC, static_ids)):
        for case in cases:
            for rev in case_ids[case.rule]:
                owner[rev] = case.rule
                ours[rev] = flagged(source, rev, silenced=True)
                sql[rev] = rendered(source, rev)
    theirs = squawk(sql, tmp_path / "sql")
    known = {s for rule in RULES.values() for s in rule.squawk}
    missed, disproved = [], set()
    for rev, rules in theirs.items():
        for rule in sorted(rules & known - SESSION_SETTINGS):
            if any(rule in RULES[r].squawk for r in ours[rev]):
                continue
            if (owner[rev], rule) in SQUAWK_WRONG:
                disproved.add((owner[rev], rule))
            else:
                missed.append((owner[rev], rev, rule))
    assert missed == [], missed
    assert disproved == set(SQUAWK_WRONG)  # each listed difference is one squawk does make
    bad = {case.rule: (ids | static_ids)[case.rule][0] for case in MEASURED + STATIC}
    agree = sorted(r for r, rev in bad.items() if set(RULES[r].squawk) & theirs[rev])
    assert len(agree) >= 20, agree
