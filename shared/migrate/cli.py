"""The `migrate` command line: parses flags, calls one command, renders, maps errors to exits."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from shared.migrate.errors import EXIT_FAILED, MigrateError
from shared.migrate.manifest import Manifest, find_manifest, load_manifest, parse_duration

if TYPE_CHECKING:
    from shared.migrate.commands import RunOptions, Target
    from shared.migrate.state import Position

# Alembic and SQLAlchemy load only when a command runs, so --help and completion stay quick.

T = TypeVar("T")

app = typer.Typer(
    help="Per-module Alembic migrations for a monorepo sharing one PostgreSQL database.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: rendering it with rich costs 100 ms on every --help
)

Branch = Annotated[
    str | None,
    typer.Option("--branch", "--module", "-b", help="A module name or its branch label."),
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
LockWait = Annotated[
    str | None,
    typer.Option(
        help="How long to wait for another migration holding the lock, e.g. 60 or 5min "
        "(default: the manifest's lock_wait, 300s).",
        show_default=False,
    ),
]
Plan = Annotated[bool, typer.Option("--plan", help="Show what would run; change nothing.")]


@dataclass
class Globals:
    config: Path | None = None
    database_url: str | None = None
    debug: bool = False

    def manifest(self) -> Manifest:
        return load_manifest(self.config or find_manifest(Path.cwd()))

    def target(self) -> Target:
        from shared.migrate.commands import Target

        return Target(self.manifest(), self.database_url)


state = Globals()


@app.callback()
def main_options(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", help="The manifest; default: migrations.yaml found upwards."
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="PostgreSQL URL; default: $DATABASE_URL, else the built-in default.",
            show_default=False,
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    state.config, state.database_url, state.debug = config, database_url, debug


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except MigrateError as exc:
        if state.debug:
            traceback.print_exc()
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise typer.Exit(130) from None
    except Exception as exc:  # a bug of ours: still one line, the traceback behind --debug
        if state.debug:
            traceback.print_exc()
        typer.echo(
            f"error: unexpected {type(exc).__name__}: {exc}; run again with --debug for the "
            "traceback and report it",
            err=True,
        )
        raise typer.Exit(EXIT_FAILED) from None


def _call(fn: Callable[[], T]) -> T:
    with _errors():
        return fn()


LockTimeoutOpt = Annotated[
    str | None,
    typer.Option(
        "--lock-timeout", help="How long a statement may wait for a table lock (e.g. 5s)."
    ),
]
StatementTimeoutOpt = Annotated[
    str | None,
    typer.Option("--statement-timeout", help="How long one statement may run (0: no limit)."),
]


def _options(
    plan: bool,
    lock_wait: str | None,
    lock_timeout: str | None,
    statement_timeout: str | None,
    retries: int | None = None,
    allow_unknown: bool = False,
) -> RunOptions:
    from shared.migrate import output
    from shared.migrate.commands import RunOptions

    def duration(value: str | None, flag: str) -> float | None:
        return None if value is None else parse_duration(value, flag)

    return RunOptions(
        plan=plan,
        lock_wait=duration(lock_wait, "--lock-wait"),
        lock_timeout=duration(lock_timeout, "--lock-timeout"),
        statement_timeout=duration(statement_timeout, "--statement-timeout"),
        retries=retries,
        allow_unknown=allow_unknown,
        progress=output.LineProgress(),
    )


Retries = Annotated[
    int | None,
    typer.Option(
        "--retries",
        min=0,
        max=100,
        help="How often a revision that hit lock_timeout is tried again (default: the "
        "manifest's lock_retries, 3).",
        show_default=False,
    ),
]


@app.command()
def up(
    branch: Branch = None,
    revision: Annotated[
        str | None,
        typer.Option("--revision", "-r", help="Stop at R: an id or prefix, X@head, +1, ..."),
    ] = None,
    sql: Annotated[bool, typer.Option("--sql", help="Print the SQL; do not connect.")] = False,
    start: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="With --sql: the revision(s) the database is at (R, R1,R2 or Alembic's R:).",
        ),
    ] = None,
    plan: Plan = False,
    lock_wait: LockWait = None,
    lock_timeout: LockTimeoutOpt = None,
    statement_timeout: StatementTimeoutOpt = None,
    retries: Retries = None,
    allow_unknown: Annotated[
        bool,
        typer.Option(
            "--allow-unknown",
            help="When the database is at a revision this build does not know (a rolled-back "
            "deploy), exit 0 without touching it.",
        ),
    ] = False,
) -> None:
    """Apply pending revisions: every module, one module (with its dependencies), or up to R."""
    from shared.migrate import commands, output

    if revision and ":" in revision and sql and start is None:
        start, _, revision = revision.partition(":")  # Alembic's `R:heads` form
        revision = revision or None
    options = _call(
        lambda: _options(plan, lock_wait, lock_timeout, statement_timeout, retries, allow_unknown)
    )
    result = _call(
        lambda: commands.up(state.target(), branch, revision, sql=sql, start=start, options=options)
    )
    typer.echo(output.run_summary(result, "up"))


@app.command()
def down(
    branch: Branch = None,
    revision: Annotated[
        str | None,
        typer.Option("--revision", "-r", help="Roll back to R ('base': all; -2: two steps)."),
    ] = None,
    cascade: Annotated[
        bool, typer.Option("--cascade", help="Also roll back other modules' dependent revisions.")
    ] = False,
    plan: Plan = False,
    lock_wait: LockWait = None,
    lock_timeout: LockTimeoutOpt = None,
    statement_timeout: StatementTimeoutOpt = None,
    retries: Retries = None,
) -> None:
    """Roll back one revision of a module, or down to R."""
    from shared.migrate import commands, output

    options = _call(lambda: _options(plan, lock_wait, lock_timeout, statement_timeout, retries))
    result = _call(
        lambda: commands.down(state.target(), branch, revision, cascade=cascade, options=options)
    )
    typer.echo(output.run_summary(result, "down"))


@app.command()
def resolve(
    reason: Annotated[
        str, typer.Option("--reason", help="Why: kept in the log with who and when.")
    ],
    accept: Annotated[
        str | None,
        typer.Option("--accept", help="Accept the edited file of this applied revision."),
    ] = None,
    applied: Annotated[
        str | None,
        typer.Option("--applied", help="Mark this revision (and what it needs) as applied."),
    ] = None,
    rolled_back: Annotated[
        str | None,
        typer.Option(
            "--rolled-back", help="Mark this revision (and what builds on it) as rolled back."
        ),
    ] = None,
    lock_wait: LockWait = None,
) -> None:
    """Fix the record after a mistake: accept an edited applied revision, or mark a revision
    applied or rolled back by hand. Runs no revision; changes only the version table and log."""
    from shared.migrate import commands, output

    options = _call(lambda: _options(False, lock_wait, None, None))
    result = _call(
        lambda: commands.resolve(
            state.target(),
            accept=accept,
            applied=applied,
            rolled_back=rolled_back,
            reason=reason,
            options=options,
        )
    )
    typer.echo(output.resolution(result))


@app.command("log")
def log_(branch: Branch = None, as_json: Json = False) -> None:
    """The record of every revision applied and unapplied: when, how long, by whom, checksum."""
    from shared.migrate import commands, output

    target = _call(state.target)
    name = _call(lambda: target.manifest.module(branch).name) if branch else None
    entries = _call(lambda: commands.log(target))
    typer.echo(output.log([e for e in entries if name is None or e.module == name], as_json))


@app.command()
def create(
    message: Annotated[
        str | None, typer.Argument(help="What the revision does, in a few words.")
    ] = None,
    module: Branch = None,
    message_option: Annotated[
        str | None,
        typer.Option(
            "--message", "-m", help="The message, the way `alembic revision -m` takes it."
        ),
    ] = None,
    no_autogenerate: Annotated[
        bool, typer.Option("--no-autogenerate", help="Write an empty revision.")
    ] = False,
    shadow_url: Annotated[
        str | None,
        typer.Option(help="Server for the shadow database; default: the database URL's server."),
    ] = None,
) -> None:
    """Write a new revision for one module, from its models (autogenerate) or empty."""
    from shared.migrate import commands, output

    target = _call(state.target)
    text, name = _call(lambda: _create_arguments(target.manifest, message, message_option, module))
    result = _call(
        lambda: commands.create(
            target, text, name, autogenerate=not no_autogenerate, shadow_url=shadow_url
        )
    )
    typer.echo(output.created(result, target.manifest.root))


def _create_arguments(
    manifest: Manifest, message: str | None, message_option: str | None, module: str | None
) -> tuple[str, str]:
    from shared.migrate.errors import ConfigError

    if message is not None and message_option is not None:
        raise ConfigError("give the message once: as the argument or with -m, not both")
    text = message if message is not None else message_option
    example = f'migrate create "add column" --module {module or manifest.names[0]}'
    if text is None:
        raise ConfigError(f"the revision needs a message; for example: {example}")
    if module is None:
        raise ConfigError(
            f"name the module the revision is for with --module (or -b); modules: "
            f"{', '.join(manifest.names)}; for example: {example}"
        )
    return text, module


@app.command()
def current(branch: Branch = None, as_json: Json = False) -> None:
    """Show the revision each module is at."""
    from shared.migrate import commands, output

    positions = _call(lambda: _only(commands.status(state.target()).positions, branch))
    typer.echo(output.current(positions, as_json))


@app.command()
def status(
    as_json: Json = False,
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 unless every module is up to date.")
    ] = False,
) -> None:
    """One row per module: current revision, head, pending count, state."""
    from shared.migrate import commands, output

    result = _call(lambda: commands.status(state.target()))
    typer.echo(output.status(result, as_json))
    if check and (
        any(p.state != "up to date" for p in result.positions) or not result.version_table_ok
    ):
        raise typer.Exit(EXIT_FAILED)


@app.command()
def history(
    branch: Branch = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show files.")] = False,
    as_json: Json = False,
) -> None:
    """List revisions per module, newest first."""
    from shared.migrate import commands, output

    manifest = _call(state.manifest)
    data = _call(lambda: commands.history(manifest, branch))
    typer.echo(output.history(data, manifest.root, verbose, as_json))


@app.command()
def heads(branch: Branch = None, as_json: Json = False) -> None:
    """Show each module's head revision."""
    from shared.migrate import commands, output

    typer.echo(output.heads(_call(lambda: commands.heads(state.manifest(), branch)), as_json))


ShadowUrl = Annotated[
    str | None,
    typer.Option(help="Server for the shadow database; default: the database URL's server."),
]


@app.command()
def owners(
    module: Branch = None,
    as_json: Json = False,
    shadow_url: ShadowUrl = None,
) -> None:
    """Show which module owns each table (and tables in the database nobody owns)."""
    from shared.migrate import commands, output

    target = _call(state.target)
    name = _call(lambda: target.manifest.module(module).name) if module else None
    data = _call(lambda: commands.owners(target, shadow_url))
    typer.echo(output.owners(data, name, as_json))


@app.command()
def check(
    as_json: Json = False,
    shadow_url: ShadowUrl = None,
    all_revisions: Annotated[
        bool,
        typer.Option(
            "--all-revisions",
            help="Walk up, down and up again over every revision, not only those the database "
            "has not applied.",
        ),
    ] = False,
) -> None:
    """CI gate: models match migrations per module, one head each, clean ownership, declared
    dependencies, downgrades that leave no trace, alembic.ini in step. Exit 1 on any finding."""
    from shared.migrate import commands, output

    result = _call(lambda: commands.check(state.target(), shadow_url, all_revisions=all_revisions))
    typer.echo(output.findings(result.findings, as_json))
    if not result.ok:
        raise typer.Exit(EXIT_FAILED)


@app.command()
def merge(
    module: Annotated[str, typer.Option("--module", "--branch", "-b", help="The module.")],
    message: Annotated[
        str | None, typer.Option("--message", "-m", help="The merge's message.")
    ] = None,
) -> None:
    """Write a revision that joins a module's two heads, in its versions directory."""
    from shared.migrate import commands, output

    manifest = _call(state.manifest)
    result = _call(lambda: commands.merge(manifest, module, message))
    if result.path is None:
        typer.echo(f"Module '{result.module}' has one head; nothing to merge.")
    else:
        typer.echo(output.created(result, manifest.root))


module_app = typer.Typer(
    help="Manage the modules listed in migrations.yaml.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(module_app, name="module")


@module_app.command("add")
def module_add(
    name: Annotated[str, typer.Argument(help="The new module's name ([a-z][a-z0-9_]*).")],
    depends_on: Annotated[
        list[str] | None,
        typer.Option("--depends-on", help="A module whose tables it may reference (repeatable)."),
    ] = None,
) -> None:
    """Create services/NAME (package, models.py, migrations/) and list it in migrations.yaml
    and alembic.ini."""
    from shared.migrate import commands

    manifest = _call(state.manifest)
    updated = _call(lambda: commands.add_module(manifest, name, depends_on or []))
    module = updated.module(name)
    typer.echo(
        f"Added module '{name}': {module.path.relative_to(updated.root)}/ "
        f'(models: {module.models}); next: migrate create "create {name}" --module {name}'
    )


def _only(positions: list[Position], branch: str | None) -> list[Position]:
    if branch is None:
        return positions
    module = state.manifest().module(branch)
    return [p for p in positions if p.module == module.name]


_VALUED_GLOBALS = ("--config", "-c", "--database-url")


def _command_name(argv: list[str]) -> str | None:
    """The command named on the command line, past the global options."""
    skip = False
    for token in argv:
        if skip:
            skip = False
        elif token in _VALUED_GLOBALS:
            skip = True
        elif not token.startswith("-"):
            return token
    return None


def _app_for(argv: list[str]) -> typer.Typer:
    """The app with only the command being run: Typer inspects every command's signature
    before it runs one, a cost every invocation would pay for all of them."""
    name = _command_name(argv)
    if name is None or os.environ.get("_MIGRATE_COMPLETE"):
        return app
    commands = [
        c
        for c in app.registered_commands
        if (c.name or (c.callback.__name__ if c.callback else "")).replace("_", "-") == name
    ]
    groups = [g for g in app.registered_groups if g.name == name]
    if not commands and not groups:
        return app  # unknown: the full app says so, listing the commands
    single = typer.Typer(
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
    )
    single.registered_callback = app.registered_callback
    single.registered_commands = commands
    single.registered_groups = groups
    return single


def main() -> None:
    _app_for(sys.argv[1:])(prog_name="migrate")


if __name__ == "__main__":
    main()
