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
    assert "the silence names unknown rule 'ban-drop-colum'; did you mean ban-drop-column?" in (
        silence
    )
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
    # squawk 2.70 has no rule for VACUUM FULL and CLUSTER yet (prefer-repack came later)
    assert sorted(r for r in bad if RULES[r].squawk and r not in agree) == [
        "ban-cluster",
        "ban-vacuum-full",
    ]


INDEX_ON_USERS = "op.create_index('ix_users_display_name', 'users', ['display_name'])"


def test_applied_revisions_are_not_judged_again(project: Project) -> None:
    project.write_revision("users", "c1a000000001", INDEX_ON_USERS)
    pending = project.migrate("lint")
    assert pending.code == 1
    assert "require-concurrent-index-creation  services/users/migrations/c1a000000001" in (
        pending.out
    )
    assert project.migrate("up").code == 0
    after = project.migrate("lint")
    assert after.code == 0, after.out
    assert after.out.strip() == "No revisions to lint."
    again = project.migrate("lint", "--all-revisions")
    assert again.code == 1 and "c1a000000001" in again.out


def test_lint_from_and_since(project: Project) -> None:
    subprocess.run(["git", "init", "-q"], cwd=project.root, check=True)
    subprocess.run(["git", "add", "-A"], cwd=project.root, check=True)
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base"],
        cwd=project.root,
        check=True,
    )
    project.write_revision("users", "c2a000000001", INDEX_ON_USERS)
    since = lint_json(project, "--static", "--since", "HEAD", url=False)
    assert [r["revision"] for r in since["revisions"]] == ["c2a000000001"]
    bad_ref = project.migrate("lint", "--static", "--since", "no-such-ref", url=False)
    assert bad_ref.code == 2
    assert bad_ref.err.startswith("error: --since no-such-ref: git could not compare with it")
    project.edit(
        "migrations.yaml", "- name: users\n", "- name: users\n    lint_from: c2a000000001\n"
    )
    started = lint_json(project, "--static", "-b", "users", url=False)
    assert [r["revision"] for r in started["revisions"]] == ["c2a000000001"]
    project.edit("migrations.yaml", "lint_from: c2a000000001", "lint_from: 0000ffff")
    wrong = project.migrate("lint", "--static", url=False)
    assert wrong.code == 2 and "Traceback" not in wrong.err
    assert wrong.err == (
        "error: migrations.yaml: module 'users' lint_from '0000ffff' is not one revision of "
        "users; name one of its revision ids (migrate history -b users)\n"
    )


def test_levels_from_the_manifest(project: Project) -> None:
    project.write_revision("users", "c3a000000001", INDEX_ON_USERS)
    manifest = project.root / "migrations.yaml"
    base = manifest.read_text()
    manifest.write_text(base + "lint:\n  require-concurrent-index-creation: warning\n")
    warned = project.migrate("lint", "--static", url=False)
    assert warned.code == 0, warned.out
    assert "warning  require-concurrent-index-creation" in warned.out
    manifest.write_text(
        base.replace(
            "- name: users\n",
            "- name: users\n    lint:\n      require-concurrent-index-creation: off\n",
        )
    )
    off = lint_json(project, "--static", url=False)
    assert off["ok"] is True
    [silenced] = [s for s in off["silenced"] if s["revision"] == "c3a000000001"]
    assert silenced["silenced"] == "set to off in migrations.yaml"
    manifest.write_text(base + "lint:\n  no-such-rule: off\n")
    unknown = project.migrate("lint", "--static", url=False)
    assert unknown.code == 2
    assert "lint rule 'no-such-rule' (module 'users') is not a rule" in unknown.err


def test_lock_timeout_rule_follows_the_manifest(project: Project) -> None:
    project.write_revision(
        "users", "c4a000000001", "op.add_column('users', sa.Column('n', sa.Text()))"
    )
    assert "require-lock-timeout" not in project.migrate("lint").out  # 5s by default
    project.edit("migrations.yaml", "settings:\n", "settings:\n  lock_timeout: 0\n")
    bare = lint_json(project)
    warning = finding(bare, "require-lock-timeout", "c4a000000001")
    assert warning["level"] == "warning" and warning["locks"] == [
        {"relation": "users", "mode": "ACCESS EXCLUSIVE"}
    ]
    project.write_revision(
        "users",
        "c4a000000001",
        "op.execute(\"SET LOCAL lock_timeout = '2s'\")\n"
        "op.add_column('users', sa.Column('n', sa.Text()))",
        parent="fe95ecace8c3",
    )
    assert "require-lock-timeout" not in flagged(lint_json(project), "c4a000000001")


def test_check_fails_on_lint_errors_and_prints_warnings(project: Project) -> None:
    project.write_revision(
        "users",
        "c5a000000001",
        "op.create_table('notes', sa.Column('id', sa.BigInteger(), primary_key=True, "
        "autoincrement=False), sa.Column('title', sa.String(80)))",
        "op.drop_table('notes')",
    )
    warned = project.migrate("check")
    assert warned.code == 1  # the table is not in the models: drift, but lint only warns
    assert "users   warning  prefer-text-field at services/users/migrations/c5a000000001" in (
        warned.out
    )
    document = json.loads(project.migrate("check", "--json").out)
    assert [f for f in document["findings"] if f["kind"] == "lint"] == [], document
    assert [w["kind"] for w in document["warnings"]] == ["lint"]
    assert "lint" not in {f["kind"] for f in document["findings"]}
    project.write_revision(
        "users", "c5a000000002", INDEX_ON_USERS, "op.drop_index('ix_users_display_name')"
    )
    failed = json.loads(project.migrate("check", "--json").out)
    [error] = [f for f in failed["findings"] if f["kind"] == "lint"]
    assert error["module"] == "users"
    assert error["detail"].startswith(
        "require-concurrent-index-creation at "
        "services/users/migrations/c5a000000002_by_hand.py:12: statement 1 "
        "(`CREATE INDEX ix_users_display_name ON users (display_name)`)"
    )


def test_up_and_status_never_import_pglast(project: Project) -> None:
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: sys.stderr.write(f\"pglast: {'pglast' in sys.modules}\\n\"))\n"
        "sys.argv = ['migrate', sys.argv[1]]\n"
        "from shared.migrate.cli import main\n"
        "main()\n"
    )
    for command in ("up", "status"):
        done = project.run([str(BIN / "python"), "-c", code, command])
        assert done.code == 0, done.err
        assert done.err.splitlines()[-1] == "pglast: False"


BILLING = "services/billing/models.py"


def test_create_flags_the_rewriting_type_change_and_passes_the_safe_way(project: Project) -> None:
    project.edit(BILLING, "from sqlalchemy import ", "from sqlalchemy import Numeric, ")
    project.edit(BILLING, "mapped_column(String(32), unique", "mapped_column(String(64), unique")
    project.edit(
        BILLING,
        "amount_cents: Mapped[int] = mapped_column(BigInteger)",
        ("amount_cents: Mapped[int] = mapped_column(Numeric(12, 2))"),
    )
    created = project.migrate("create", "amounts in currency units", "-b", "billing")
    assert created.code == 0, created.err
    lines = created.out.splitlines()
    assert lines[1:3] == ["  ~ type invoices.number", "  ~ type invoices.amount_cents"]
    assert lines[3] == "  lint (migrate lint):"
    errors = [x for x in lines if x.startswith("    error  ")]
    assert len(errors) == 1 and errors[0].startswith("    error  changing-column-type  ")
    at = lines.index(errors[0])
    assert lines[at + 1] == (
        "      statement 2 (`ALTER TABLE invoices ALTER COLUMN amount_cents TYPE NUMERIC(12, 2)`) "
        "changes the type of invoices.amount_cents; measured: holds ACCESS EXCLUSIVE on "
        "invoices, rewrites invoices (and its 3 indexes)"
    )
    assert lines[at + 2].startswith("      safe: add a column of the new type, backfill it")
    # varchar(32) -> varchar(64): measured, no rewrite: only the hygiene warning
    widen = [x for x in lines if "prefer-text-field" in x]
    assert len(widen) == 1 and widen[0].startswith("    warning  prefer-text-field  ")
    # the same change the safe way: a new column, then a backfill in a revision of its own
    written = (project.root / "services/billing/migrations").glob("*_amounts_in_currency_units.py")
    for path in written:
        path.unlink()
    project.edit(
        BILLING,
        "amount_cents: Mapped[int] = mapped_column(Numeric(12, 2))",
        (
            "amount_cents: Mapped[int] = mapped_column(BigInteger)\n"
            "    amount: Mapped[float | None] = mapped_column(Numeric(12, 2))"
        ),
    )
    project.edit(BILLING, "mapped_column(String(64), unique", "mapped_column(String(32), unique")
    expand = project.migrate("create", "add amount", "-b", "billing", "--json")
    assert expand.code == 0, expand.err
    assert json.loads(expand.out)["lint"] == []
    head = json.loads(expand.out)["revision"]
    project.write_revision(
        "billing",
        "c6a000000001",
        "op.execute('UPDATE invoices SET amount = amount_cents / 100.0')",
        parent=head,
    )
    safe = project.migrate("lint")
    assert safe.code == 0, safe.out
    assert safe.out.splitlines()[-1] == (
        "No lint findings in 8 revisions (measured on a shadow database, 7 silenced)."
    )


def test_a_revision_that_fails_on_the_shadow_is_a_finding(project: Project) -> None:
    project.write_revision(
        "users", "c7a000000001", "op.execute('CREATE INDEX CONCURRENTLY ix_e ON users (email)')"
    )
    report = lint_json(project)
    assert flagged(report, "c7a000000001") == {
        "concurrently-in-transaction",
        "prefer-robust-stmts",
        "upgrade-fails",
    }
    failed = finding(report, "upgrade-fails", "c7a000000001")
    assert "cannot run inside a transaction block" in failed["detail"]
    text = project.migrate("lint")
    assert text.code == 1 and "Traceback" not in text.out + text.err


def test_a_rewrite_after_a_lock_the_revision_took_names_the_strongest(project: Project) -> None:
    """An index rebuilt inside ALTER ... TYPE takes SHARE on a table the transaction already
    holds ACCESS EXCLUSIVE on (from the statement before): the statement runs under that."""
    project.write_revision(
        "users",
        "10c50000e001",
        "op.execute('CREATE TABLE t_two (id bigint PRIMARY KEY, code varchar(10), n int)')\n"
        "op.execute('CREATE INDEX ix_t_two_n ON t_two (n)')",
    )
    assert project.migrate("up").code == 0
    project.write_revision(
        "users",
        "10c50000e002",
        "op.alter_column('t_two', 'code', type_=sa.String(20), existing_type=sa.String(10))\n"
        "op.alter_column('t_two', 'n', type_=sa.BigInteger(), existing_type=sa.Integer())",
    )
    report = lint_json(project)
    [rewrite] = [f for f in report["findings"] if f["rule"] == "changing-column-type"]
    assert "statement 2 " in rewrite["detail"]
    assert "measured: holds ACCESS EXCLUSIVE on t_two, rewrites t_two" in rewrite["detail"]
    assert rewrite["locks"] == [{"relation": "t_two", "mode": "ACCESS EXCLUSIVE"}]
