"""The command line as people meet it: colour and live progress on a terminal (a real pty),
plain text when piped, JSON for machines, the ecosystem's conventions, errors that carry their
fix, and the Makefile."""

from __future__ import annotations

import ast
import inspect
import json
import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path

import typer

from tests import pg
from tests.conftest import BIN, REPO, Project, Run, copy_project

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def on_terminal(project: Project, *args: str, env: dict[str, str] | None = None) -> Run:
    """Run `migrate` with its stdout and stderr on a pseudo-terminal, as in a shell."""
    leader, follower = pty.openpty()
    environ = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TERM")}
    environ.update(
        {"DATABASE_URL": project.database_url, "TERM": "xterm-256color", "COLUMNS": "160"}
    )
    environ.update(env or {})
    process = subprocess.Popen(
        [str(BIN / "migrate"), *args],
        cwd=project.root,
        env=environ,
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    chunks = []
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            process.kill()
            break
        try:
            data = os.read(leader, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not data:
            break
        chunks.append(data)
    process.wait(timeout=60)
    os.close(leader)
    return Run(process.returncode, b"".join(chunks).decode(errors="replace"), "")


# ---- output ------------------------------------------------------------------------------------


def test_colour_on_a_terminal_plain_text_when_piped(project: Project) -> None:
    assert project.migrate("up", "--branch", "users").code == 0
    coloured = on_terminal(project, "status")
    assert coloured.code == 0
    assert ANSI.search(coloured.out), coloured.out
    plain = ANSI.sub("", coloured.out)
    assert "up to date" in plain and "not started" in plain
    piped = project.migrate("status")
    assert not ANSI.search(piped.out) and "not started" in piped.out
    no_color = on_terminal(project, "status", env={"NO_COLOR": "1"})
    assert not ANSI.search(no_color.out) and "not started" in no_color.out


def test_live_progress_on_a_terminal(project: Project) -> None:
    result = on_terminal(project, "up")
    assert result.code == 0, result.out
    text = ANSI.sub("", result.out)
    for module in ("users", "agents", "billing"):
        assert f"Applying {module} " in text
    assert "6/6" in text or "5/6" in text  # the bar counts revisions, n of N
    assert "Applied 6 revisions in" in text


def test_a_revision_that_fails_ends_its_line_with_failed(project: Project) -> None:
    project.write_revision("users", "fa11ed000001", "op.execute('SELECT 1/0')")
    piped = project.migrate("up", "--branch", "users")
    assert piped.code == 1
    assert "Applying users fa11ed000001 by hand... FAILED\n" in piped.out
    assert "division by zero" in piped.err
    shown = ANSI.sub("", on_terminal(project, "up", "--branch", "users").out)
    assert "Applying users fa11ed000001 by hand... FAILED" in shown
    assert shown.index("FAILED") < shown.index("error: ")


def test_json_documents_carry_a_version(project: Project) -> None:
    assert project.migrate("up").code == 0
    for args in (
        ("status", "--json"),
        ("current", "--json"),
        ("heads", "--json"),
        ("history", "--json"),
        ("log", "--json"),
        ("check", "--json"),
        ("owners", "--json"),
        ("up", "--json"),
        ("down", "--branch", "billing", "--json"),
    ):
        result = project.migrate(*args)
        assert result.code == 0, (args, result.err)
        document = json.loads(result.out)
        assert document["version"] == 1, args
    again = json.loads(project.migrate("up", "--json").out)
    assert [s["module"] for s in again["steps"]] == ["billing"]


def test_a_reader_that_goes_away_ends_every_command_with_141(project: Project) -> None:
    """`migrate ... | head`: the shell's answer for a closed pipe, never 1 ("failed"), and
    nothing on stderr, whether a command's result, a listing or help was being written."""
    assert project.migrate("up").code == 0
    for argv in (["status"], ["history", "-v"], ["heads"], ["--help"], ["status", "--help"]):
        process = project.spawn(*argv)
        assert process.stdout is not None
        process.stdout.close()  # gone before the process (still starting) writes anything
        _, err = process.communicate(timeout=60)
        assert (process.returncode, err) == (141, ""), argv


def test_history_marks_applied_heads_and_merges(project: Project) -> None:
    assert project.migrate("up", "--branch", "users").code == 0
    lines = project.migrate("history").out.splitlines()
    users = lines[lines.index("users:") + 1 : lines.index("agents:")]
    agents = lines[lines.index("agents:") + 1 : lines.index("billing:")]
    assert all(line.startswith("  [X] ") for line in users)
    assert all(line.startswith("  [ ] ") for line in agents)
    assert users[0].endswith("(head)") and not users[1].endswith("(head)")
    head = users[0].split()[1]
    twin = project.write_revision("users", "d1a200000001", "pass", parent=users[1].split()[1])
    assert twin.exists()
    assert project.migrate("merge", "--module", "users", "-m", "join").code == 0
    merged = project.migrate("history", "-b", "users").out.splitlines()
    assert merged[1].endswith("join  (head, merge)")
    assert any(head in line and "(head)" not in line for line in merged)


def test_create_says_what_it_wrote(project: Project) -> None:
    project.edit(
        "services/agents/models.py",
        "    name: Mapped[str] = mapped_column(String(100))\n",
        "    name: Mapped[str] = mapped_column(String(100))\n"
        "    last_seen_at: Mapped[str | None] = mapped_column(String(30))\n",
    )
    path = project.root / "services/agents/models.py"
    path.write_text(
        path.read_text() + "\n\nclass AgentAudit(Base):\n    __tablename__ = 'agents_audit'\n"
        "    id: Mapped[int] = mapped_column(primary_key=True)\n"
        "    agent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey('agents.id'))\n"
        "    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey('users.id'))\n"
    )
    result = project.migrate("create", "-m", "audit", "-b", "agents")
    assert result.code == 0, result.err
    lines = result.out.split("  lint (migrate lint):\n")[0].splitlines()  # lint's findings after
    assert lines[0].startswith("Created services/agents/migrations/")
    assert "  + table agents_audit" in lines
    assert "  + column agents.last_seen_at" in lines
    users_head = json.loads(project.migrate("heads", "--json", url=False).out)["modules"][0]
    assert lines[-1] == f"  depends on {users_head['heads'][0]}"  # agents' is its own


def test_graph_as_mermaid_and_dot(project: Project) -> None:
    mermaid = project.migrate("graph", url=False)
    assert mermaid.code == 0
    assert mermaid.out.startswith("flowchart BT\n")
    assert "    agents --> users" in mermaid.out and "    billing --> users" in mermaid.out
    dot = project.migrate("graph", "--dot", url=False)
    assert dot.out.startswith("digraph migrate {") and '"agents" -> "users";' in dot.out
    revisions = project.migrate("graph", "--revisions", url=False)
    heads = json.loads(project.migrate("heads", "--json", url=False).out)
    agents_head = next(m["heads"][0] for m in heads["modules"] if m["module"] == "agents")
    assert f"r{agents_head}" in revisions.out and " -.-> " in revisions.out
    assert 'subgraph agents["agents"]' in revisions.out


# ---- conventions -------------------------------------------------------------------------------


def descriptions(help_text: str) -> dict[str, str]:
    """The Commands section of a --help: each command and its description, lines joined."""
    found: dict[str, str] = {}
    name = ""
    for line in help_text.split("Commands:\n", 1)[1].splitlines():
        entry = re.match(r"  (\S+)\s+(.*)", line)
        if entry and not line.startswith("   "):
            name = entry[1]
            found[name] = entry[2]
        elif line.strip():
            found[name] += " " + line.strip()
    return found


def first_paragraph(text: str | None) -> str:
    return " ".join(inspect.cleandoc(text or "").split("\n\n")[0].split())


def test_help_shows_each_command_description_whole(project: Project) -> None:
    from shared.migrate.cli.app import app, module_app

    def expected(typer_app: typer.Typer) -> dict[str, str]:
        commands = {
            c.name or c.callback.__name__: first_paragraph(c.callback.__doc__)
            for c in typer_app.registered_commands
            if c.callback is not None
        }
        groups = {
            g.name: first_paragraph(g.typer_instance.info.help) for g in typer_app.registered_groups
        }
        return {**commands, **groups}

    for columns in (80, 60):
        for args, typer_app in ((("--help",), app), (("module", "--help"), module_app)):
            shown = project.migrate(*args, url=False, env={"COLUMNS": str(columns)})
            assert shown.code == 0, shown.err
            assert descriptions(shown.out) == expected(typer_app), shown.out
            assert "..." not in shown.out.split("Commands:\n")[1]
            if columns == 80:  # each on its one line
                assert all(f"  {name}  " in shown.out for name in expected(typer_app))
                assert len(shown.out.split("Commands:\n")[1].splitlines()) == len(
                    expected(typer_app)
                )
            assert max(len(line) for line in shown.out.splitlines()) <= columns, shown.out


def test_python_m_outside_the_environment_says_which_python_to_use() -> None:
    """`python3 -m shared.migrate` from the repository with a Python that lacks the project's
    packages: the system python3 of the new user's trial, and this one without site-packages."""
    for python in (["/usr/bin/python3"], [sys.executable, "-S"]):
        lacks = subprocess.run([*python, "-c", "import typer"], capture_output=True, cwd=REPO)
        assert lacks.returncode != 0, python  # the premise: no typer there
        result = subprocess.run(
            [*python, "-m", "shared.migrate", "status"],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=60,
        )
        assert result.returncode == 2, (python, result.stderr)
        [line] = result.stderr.splitlines()
        assert line.startswith("error: this Python (") and "no typer" in line, line
        assert ".venv/bin/python -m shared.migrate" in line and "make demo" in line, line
        assert result.stdout == ""


def test_conventions(project: Project) -> None:
    via_module = project.run([sys.executable, "-m", "shared.migrate", "heads"])
    assert via_module.code == 0 and via_module.out == project.migrate("heads").out
    version = project.migrate("--version", url=False)
    assert version.code == 0 and re.fullmatch(r"migrate \d+\.\d+\.\d+\n", version.out)
    assert project.migrate("-h").out == project.migrate("--help").out
    assert "Usage: migrate up" in project.migrate("up", "-h").out
    completion = project.run(
        [str(BIN / "migrate")],
        env={"_MIGRATE_COMPLETE": "complete_bash", "COMP_WORDS": "migrate st", "COMP_CWORD": "1"},
    )
    assert completion.out.split() == ["status"]
    for words, expected in (
        ("migrate up -b ", ["users", "agents", "billing"]),
        ("migrate status --module a", ["agents"]),
        ("migrate merge --branch b", ["billing"]),
    ):
        names = project.run(
            [str(BIN / "migrate")],
            env={
                "_MIGRATE_COMPLETE": "complete_bash",
                "COMP_WORDS": words,
                "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
            },
        )
        assert names.out.split() == expected, (words, names.err)
    script = project.migrate("--show-completion", "bash", url=False)
    assert script.code == 0 and "_MIGRATE_COMPLETE" in script.out
    for command in ("status", "heads", "check", "owners", "log", "current", "history"):
        for flag in ("--branch", "--module", "-b"):
            result = project.migrate(command, flag, "users")
            assert result.code in (0, 1), (command, flag, result.err)
            assert "No such option" not in result.err


def test_create_takes_alembics_message_habit(project: Project) -> None:
    before = project.versions("users")
    made = project.migrate("create", "-m", "note it", "-b", "users", "--no-autogenerate")
    assert made.code == 0, made.err
    [path] = [p for p in project.versions("users") if p not in before]
    assert path.name.endswith("_note_it.py")
    missing = project.migrate("create", "x")
    assert missing.code == 2
    assert "modules: users, agents, billing" in missing.err
    assert 'migrate create "add column" --module users' in missing.err
    nothing = project.migrate("create", "-b", "users")
    assert nothing.code == 2 and "needs a message" in nothing.err


# ---- errors that carry their fix ---------------------------------------------------------------


def test_errors_carry_their_fix(project: Project) -> None:
    unset = project.migrate("status", url=False)
    assert unset.code == 1
    assert "DATABASE_URL is not set, so the built-in default was used" in unset.err
    assert "make -s dev-db" in unset.err
    (project.root / "services/billing/models.py").unlink()
    missing = project.migrate("create", "x", "--module", "billing")
    assert missing.code == 2
    assert "create services/billing/models.py or fix 'models' in migrations.yaml" in missing.err


def test_usage_mistakes_say_what_to_type(project: Project) -> None:
    both = project.migrate("up", "--sql", "--json", url=False)
    assert both.code == 2 and "does not go with --plan or --json" in both.err and not both.out
    assert project.migrate("up").code == 0
    module = project.migrate("down", "-r", "agents")
    assert module.code == 2
    assert "'agents' is a module, not a revision; name the module with --branch agents" in (
        module.err
    )


def test_errors_through_make_name_make_variables(project: Project) -> None:
    assert project.migrate("up").code == 0
    result = project.make("migrate-down")
    assert result.code != 0
    assert "name one with branch=NAME" in result.err and "--branch" not in result.err


# ---- the Makefile ------------------------------------------------------------------------------


def test_a_message_through_make_stays_text(project: Project) -> None:
    marker = project.root / "pwned"
    message = "costs $HOME `touch pwned` $(touch pwned) 'single' \"double\" \\back"
    project.edit(
        "services/users/models.py",
        "    email: Mapped[str] = mapped_column(String(320), unique=True)\n",
        "    email: Mapped[str] = mapped_column(String(320), unique=True)\n"
        "    locale: Mapped[str | None] = mapped_column(String(16))\n",
    )
    before = project.versions("users")
    made = project.make("migrate-create", f"m={message}", "module=users")
    assert made.code == 0, made.err
    [newest] = [p for p in project.versions("users") if p not in before]
    assert ast.get_docstring(ast.parse(newest.read_text()), clean=False).startswith(message)
    assert not marker.exists()


def test_make_help_and_the_new_targets(project: Project) -> None:
    shown = project.make("help")
    for target in ("demo", "test", "migrate-create", "dev-db-stop", "clean", "bench"):
        assert f"make {target}" in shown.out, target
    for target in ("clean", "dev-db-stop"):
        dry = project.run(["make", "-n", "UV=true", target])
        assert dry.code == 0, (target, dry.err)
    assert (REPO / "Makefile").read_text().count("$(value m)") == 1
    assert pg.tables(project.database_url) == set()


# ---- the README shows what the commands print ---------------------------------------------------

README = (REPO / "README.md").read_text()


def test_the_readme_shows_the_real_graph_and_make_help(project: Project) -> None:
    [mermaid] = re.findall(r"```mermaid\n(.*?)```", README, re.DOTALL)
    assert mermaid == project.migrate("graph", url=False).out
    [shown_help] = re.findall(r"```\n\$ make help\n(.*?)```", README, re.DOTALL)
    made = subprocess.run(["make", "-s", "help"], cwd=REPO, capture_output=True, text=True)
    assert shown_help == made.stdout


def readme_shapes() -> dict[str, str]:
    """Command -> the JSON shape the README's table documents for it."""
    return dict(
        (command, shape)
        for commands, shape in re.findall(r"^\| (`[^|]+`) \| `(\{.*\})`", README, re.MULTILINE)
        for command in re.findall(r"`(\w+)`", commands)
    )


def undocumented(command: str, document: object) -> set[str]:
    """The keys of a command's JSON document that its README row does not name."""
    shape = readme_shapes()[command]
    return {k for k in keys(document) if f'"{k}"' not in shape}


def keys(value: object) -> set[str]:
    """Every key of a document, of the objects in its lists, and so on down."""
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in keys(v)}
    return set()


def test_the_readme_documents_every_json_field(project: Project) -> None:
    rows = readme_shapes()
    assert project.migrate("up").code == 0
    runs = {
        "up": ("up", "--json"),
        "down": ("down", "-b", "billing", "--json"),
        "current": ("current", "--json"),
        "status": ("status", "--json"),
        "history": ("history", "--json"),
        "heads": ("heads", "--json"),
        "log": ("log", "--json"),
        "owners": ("owners", "--json"),
        "check": ("check", "--json"),
        "create": ("create", "x", "-b", "users", "--no-autogenerate", "--json"),
        "lint": ("lint", "--all-revisions", "--json"),
        "squash": ("squash", "-b", "users", "--json"),
        "baseline": ("baseline", "--mark", "--json"),
    }
    # adopt's document, and baseline's when it writes: tests/test_adopt.py, test_baseline.py
    assert set(rows) == set(runs) | {"adopt"}

    for command, args in runs.items():
        result = project.migrate(*args)
        assert result.code == 0, (command, result.err)
        missing = undocumented(command, json.loads(result.out))
        assert not missing, (command, missing)


def test_the_readme_manifest_loads_and_shows_the_defaults(tmp_path: Path) -> None:
    from shared.migrate.manifest import Settings, load_manifest

    copy_project(tmp_path)
    [text] = re.findall(r"## The manifest\n\n```yaml\n(.*?)```", README, re.DOTALL)
    (tmp_path / "migrations.yaml").write_text(text)
    manifest = load_manifest(tmp_path / "migrations.yaml")
    assert manifest.settings == Settings()
    assert [m.name for m in manifest.modules] == ["users", "agents"]
