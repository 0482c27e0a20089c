"""The `migrate` command line: parses flags, calls one command, renders, maps errors to exits.

Alembic and SQLAlchemy load only when a command runs them, so --help and completion stay quick.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from typer.core import TyperGroup

from shared.migrate.errors import EXIT_FAILED, ConfigError, MigrateError

if TYPE_CHECKING:
    from typer._click import Context, HelpFormatter  # Typer's own Click (vendored)

    from shared.migrate.commands import RunOptions, Target
    from shared.migrate.commands.fleet import FleetResult
    from shared.migrate.database.progress import Progress
    from shared.migrate.manifest import Manifest

T = TypeVar("T")
SETTINGS = {"help_option_names": ["-h", "--help"]}


class WholeDescriptions(TyperGroup):
    """--help lists each command with its description whole: its docstring's first paragraph,
    wrapped on a narrow terminal (Click cuts it to what fits and adds "...")."""

    def format_commands(self, ctx: Context, formatter: HelpFormatter) -> None:
        rows = [
            (name, command.get_short_help_str(limit=sys.maxsize))
            for name in self.list_commands(ctx)
            if (command := self.get_command(ctx, name)) is not None and not command.hidden
        ]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    # the reader of the output went away (`| head`) while help or a command's result was
    # written: 141 as for any command (Click's own handling exits 1, "the operation failed")
    def make_context(self, *args: Any, **kwargs: Any) -> Context:
        try:
            return super().make_context(*args, **kwargs)
        except BrokenPipeError:
            raise _reader_gone() from None

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            raise _reader_gone() from None


app = typer.Typer(
    cls=WholeDescriptions,
    help="Per-module Alembic migrations for a monorepo sharing one PostgreSQL database.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: rendering it with rich costs 100 ms on every --help
    context_settings=SETTINGS,
)


def _module_names(ctx: typer.Context, incomplete: str) -> list[str]:
    """Shell completion of a module option: the manifest's module names (nothing on error)."""
    from shared.migrate.manifest import find_manifest, load_manifest

    try:
        given = ctx.find_root().params.get("config")
        path = Path(given) if given else find_manifest(Path.cwd())
        names = [m.name for m in load_manifest(path).modules]
    except Exception:  # completion must never print a traceback into the shell
        return []
    return [n for n in names if n.startswith(incomplete)]


Branch = Annotated[
    str | None,
    typer.Option(
        "--branch",
        "--module",
        "-b",
        help="A module name or its branch label.",
        autocompletion=_module_names,
    ),
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
LockTimeout = Annotated[
    str | None,
    typer.Option(
        "--lock-timeout", help="How long a statement may wait for a table lock (e.g. 5s)."
    ),
]
StatementTimeout = Annotated[
    str | None,
    typer.Option("--statement-timeout", help="How long one statement may run (0: no limit)."),
]
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
Plan = Annotated[bool, typer.Option("--plan", help="Show what would run; change nothing.")]
Databases = Annotated[
    str | None,
    typer.Option(
        "--databases",
        help="Run on every database SOURCE lists: a file of URLs (one a line), env:NAME (a "
        "variable holding them) or sql:QUERY (rows of URLs, from DATABASE_URL's database).",
        show_default=False,
    ),
]
Schemas = Annotated[
    str | None,
    typer.Option(
        "--schemas",
        help="Run on every tenant schema SOURCE lists (a file, env:NAME or sql:QUERY), each "
        "with its own version and log tables, in DATABASE_URL's database.",
        show_default=False,
    ),
]
Jobs = Annotated[
    int | None,
    typer.Option(
        "--jobs",
        "-j",
        min=1,
        max=256,
        help="With --databases/--schemas: how many at once (default: 4 per core, at most 32).",
        show_default=False,
    ),
]
FailFast = Annotated[
    bool,
    typer.Option(
        "--fail-fast", help="With --databases/--schemas: start no more once one has failed."
    ),
]
ShadowUrl = Annotated[
    str | None,
    typer.Option(
        help="Server for the shadow database; default: $SHADOW_DATABASE_URL, else the "
        "database URL's server."
    ),
]


class Globals:
    """The options given before the command."""

    def __init__(self) -> None:
        self.config: Path | None = None
        self.database_url: str | None = None
        self.tenant_schema: str | None = None
        self.debug = False

    def manifest(self) -> Manifest:
        from shared.migrate.manifest import find_manifest, load_manifest

        return load_manifest(self.config or find_manifest(Path.cwd()))

    def target(self) -> Target:
        from shared.migrate.commands import Target

        return Target(self.manifest(), self.database_url).for_tenant(self.tenant_schema)

    def module_name(self, branch: str | None) -> str | None:
        """The module a --branch names (its name, whatever label was given), or None."""
        return self.manifest().module(branch).name if branch else None


state = Globals()


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"migrate {version('monorepo-migrate')}")
        raise typer.Exit()


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
    tenant_schema: Annotated[
        str | None,
        typer.Option(
            "--tenant-schema",
            help="A tenant's schema (schema per tenant): the version and log tables in it, its "
            "own lock, and first on the search_path of the migrating session.",
            show_default=False,
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    state.config, state.database_url, state.debug = config, database_url, debug
    state.tenant_schema = tenant_schema


def _through_make(message: str) -> str:
    """Run by `make migrate-*`, an option is a make variable: say `branch=agents`."""
    if not os.environ.get("MIGRATE_VIA_MAKE"):
        return message
    return re.sub(
        r"--(branch|module)(?:[ =]([A-Za-z0-9_]+))?",
        lambda m: f"{m.group(1)}={m.group(2) or 'NAME'}",
        message,
    )


def _error(text: str) -> None:
    from shared.migrate.cli import output

    if output.fancy(sys.stderr):
        from rich.text import Text

        line = Text.assemble(("error: ", "bold red"), text)
        output.console(err=True).print(line, highlight=False, soft_wrap=True)
    else:
        sys.stderr.write(f"error: {text}\n")


@contextmanager
def _errors() -> Iterator[None]:
    import traceback

    try:
        yield
    except MigrateError as exc:
        if state.debug:
            traceback.print_exc()
        _error(_through_make(str(exc)))
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        raise typer.Exit(130) from None
    except BrokenPipeError:
        raise _reader_gone() from None
    except Exception as exc:  # a bug of ours: still one line, the traceback behind --debug
        if state.debug:
            traceback.print_exc()
        from shared.migrate.errors import shown

        _error(
            f"unexpected {type(exc).__name__}: {shown(str(exc), 300)}; run again with --debug "
            "for the traceback and report it"
        )
        raise typer.Exit(EXIT_FAILED) from None


def _reader_gone() -> typer.Exit:
    """The reader of our output went away (`| head`): stop quietly, with 141 as a shell
    reports a process a closed pipe ended (and nothing left to flush into it at exit)."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return typer.Exit(141)


def _refuse(message: str) -> None:
    raise ConfigError(message)


def _call(fn: Callable[[], T]) -> T:
    with _errors():
        return fn()


def _options(
    plan: bool,
    lock_wait: str | None,
    lock_timeout: str | None,
    statement_timeout: str | None,
    retries: int | None = None,
    allow_unknown: bool = False,
    quiet: bool = False,
) -> RunOptions:
    from shared.migrate.cli import output
    from shared.migrate.commands import RunOptions
    from shared.migrate.manifest import parse_duration, parse_timeout

    def duration(value: str | None, flag: str, parse: Callable[[str, str], float]) -> float | None:
        return None if value is None else parse(value, flag)

    return RunOptions(
        plan=plan,
        lock_wait=duration(lock_wait, "--lock-wait", parse_duration),
        lock_timeout=duration(lock_timeout, "--lock-timeout", parse_timeout),
        statement_timeout=duration(statement_timeout, "--statement-timeout", parse_timeout),
        retries=retries,
        allow_unknown=allow_unknown,
        progress=output.LineProgress(quiet=True) if quiet else output.progress(),
    )


def _run(options: RunOptions, fn: Callable[[], T]) -> T:
    progress: Progress = options.progress

    def run() -> T:
        try:
            return fn()
        finally:
            progress.close()  # before the error: the revision's line ends first

    return _call(run)


def _fleet(
    command: str,
    arguments: list[str],
    databases: str | None,
    schemas: str | None,
    jobs: int | None,
    fail_fast: bool,
    as_json: bool,
) -> FleetResult:
    """Run the command on every database (or tenant schema) of a fleet, and say how each
    went; exit 1 when any failed."""
    from shared.migrate.cli import fleet as rendering
    from shared.migrate.commands import fleet

    if state.tenant_schema and schemas:
        _call(lambda: _refuse("--tenant-schema names one tenant; --schemas lists them: use one"))
    target = _call(state.target)
    source = databases or schemas or ""
    found = _call(lambda: fleet.members(target, databases, schemas))
    progress = rendering.progress(command, len(found[1]), quiet=as_json)
    options = fleet.FleetOptions(jobs or fleet.default_jobs(), fail_fast, state.debug, progress)
    hide = [source[4:]] if source.startswith("env:") else []
    started = rendering.clock()

    def run() -> FleetResult:
        try:
            return fleet.run_fleet(target, command, arguments, found, options, hide=hide)
        finally:
            progress.close()

    result = _call(run)
    seconds = rendering.clock() - started
    if command == "status":
        rendering.status(result, as_json, seconds)
    else:
        rendering.summary(result, as_json, seconds)
    if result.failed:
        raise typer.Exit(EXIT_FAILED)
    return result


def _passed(*pairs: tuple[str, object]) -> list[str]:
    """A worker's arguments: each option given (a flag when True), as the user gave it."""
    argv: list[str] = []
    for flag, value in pairs:
        if value is True:
            argv.append(flag)
        elif value not in (None, False):
            argv += [flag, str(value)]
    return argv


def _run_flags(
    branch: str | None,
    revision: str | None,
    plan: bool,
    lock_wait: str | None,
    lock_timeout: str | None,
    statement_timeout: str | None,
) -> list[tuple[str, object]]:
    """The options of `up` and `down` that a fleet passes on to each worker."""
    return [
        ("--branch", branch),
        ("--revision", revision),
        ("--plan", plan),
        ("--lock-wait", lock_wait),
        ("--lock-timeout", lock_timeout),
        ("--statement-timeout", statement_timeout),
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
    lock_timeout: LockTimeout = None,
    statement_timeout: StatementTimeout = None,
    retries: Retries = None,
    allow_unknown: Annotated[
        bool,
        typer.Option(
            "--allow-unknown",
            help="When the database is at a revision this build does not know (a rolled-back "
            "deploy), exit 0 without touching it.",
        ),
    ] = False,
    databases: Databases = None,
    schemas: Schemas = None,
    jobs: Jobs = None,
    fail_fast: FailFast = False,
    as_json: Json = False,
) -> None:
    """Apply pending revisions: every module, one module, or up to R.

    One module comes with the revisions its revisions need from the modules it depends on; on
    one database, or on each of a fleet (--databases, --schemas).
    """
    from shared.migrate import commands
    from shared.migrate.cli import output

    if databases or schemas:
        if sql:
            _call(lambda: _refuse("--sql prints one script; it does not go with a fleet"))
        arguments = _passed(
            *_run_flags(branch, revision, plan, lock_wait, lock_timeout, statement_timeout),
            ("--retries", retries),
            ("--allow-unknown", allow_unknown),
        )
        _fleet("up", arguments, databases, schemas, jobs, fail_fast, as_json)
        return
    if revision and ":" in revision and sql and start is None:
        start, _, revision = revision.partition(":")  # Alembic's `R:heads` form
        revision = revision or None
    if sql and (plan or as_json):
        _call(lambda: _refuse("--sql prints the SQL itself; it does not go with --plan or --json"))
    options = _call(
        lambda: _options(
            plan, lock_wait, lock_timeout, statement_timeout, retries, allow_unknown, as_json
        )
    )
    result = _run(
        options,
        lambda: commands.up(
            state.target(), branch, revision, sql=sql, start=start, options=options
        ),
    )
    output.run_summary(result, "up", as_json)


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
    lock_timeout: LockTimeout = None,
    statement_timeout: StatementTimeout = None,
    retries: Retries = None,
    databases: Databases = None,
    schemas: Schemas = None,
    jobs: Jobs = None,
    fail_fast: FailFast = False,
    as_json: Json = False,
) -> None:
    """Roll back one revision of a module, or down to R.

    On one database, or on each of a fleet (--databases, --schemas)."""
    from shared.migrate import commands
    from shared.migrate.cli import output

    if databases or schemas:
        arguments = _passed(
            *_run_flags(branch, revision, plan, lock_wait, lock_timeout, statement_timeout),
            ("--retries", retries),
            ("--cascade", cascade),
        )
        _fleet("down", arguments, databases, schemas, jobs, fail_fast, as_json)
        return

    options = _call(
        lambda: _options(plan, lock_wait, lock_timeout, statement_timeout, retries, quiet=as_json)
    )
    result = _run(
        options,
        lambda: commands.down(state.target(), branch, revision, cascade=cascade, options=options),
    )
    output.run_summary(result, "down", as_json)


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
    """Fix the record after a mistake, without running any revision.

    Accept an edited applied revision, or mark a revision applied or rolled back by hand; only
    the version table and the log change.
    """
    from shared.migrate import commands
    from shared.migrate.cli import output

    options = _call(lambda: _options(False, lock_wait, None, None))
    result = _run(
        options,
        lambda: commands.resolve(
            state.target(),
            accept=accept,
            applied=applied,
            rolled_back=rolled_back,
            reason=reason,
            options=options,
        ),
    )
    output.resolution(result)


@app.command()
def reset(
    database: Annotated[
        str | None,
        typer.Option(
            "--database",
            help="The database's name, to reset one that is not on this machine.",
            show_default=False,
        ),
    ] = None,
    empty: Annotated[
        bool, typer.Option("--empty", help="Leave it empty; apply no revision.")
    ] = False,
    lock_wait: LockWait = None,
) -> None:
    """Development only: empty the database, then apply every module.

    Drops every schema with all it holds. Refuses a database that is not on this machine
    unless it is named with --database."""
    from shared.migrate import commands
    from shared.migrate.cli import output

    options = _call(lambda: _options(False, lock_wait, None, None))
    target = _call(state.target)
    output.reset(_run(options, lambda: commands.reset(target, database=database, options=options)))
    if not empty:
        output.run_summary(_run(options, lambda: commands.up(target, options=options)), "up")


@app.command("log")
def log_(branch: Branch = None, as_json: Json = False) -> None:
    """Show the record of every revision applied and unapplied.

    When, how long, by whom, with the checksum and any reason given.
    """
    from shared.migrate import commands
    from shared.migrate.cli import output

    target = _call(state.target)
    name = _call(lambda: state.module_name(branch))
    entries = _call(lambda: commands.log(target))
    output.log([e for e in entries if name is None or e.module == name], as_json)


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
    shadow_url: ShadowUrl = None,
    as_json: Json = False,
) -> None:
    """Write a new revision for one module, from its models.

    Autogenerated against a shadow database built from the migrations, so only the module's
    tables appear; empty with --no-autogenerate.
    """
    from shared.migrate import commands
    from shared.migrate.cli import output

    target = _call(state.target)
    text, name = _call(lambda: _create_arguments(target.manifest, message, message_option, module))
    result = _call(
        lambda: commands.create(
            target, text, name, autogenerate=not no_autogenerate, shadow_url=shadow_url
        )
    )
    output.created(result, target.manifest.root, as_json)


def _create_arguments(
    manifest: Manifest, message: str | None, message_option: str | None, module: str | None
) -> tuple[str, str]:
    if message is not None and message_option is not None:
        raise ConfigError("give the message once: as the argument or with -m, not both")
    text = message if message is not None else message_option
    example = f'migrate create "add column" --module {module or manifest.names[0]}'
    if text is None:
        raise ConfigError(f"the revision needs a message; for example: {example}")
    if module is None:
        raise ConfigError(
            "name the module the revision is for with --module (or -b); modules: "
            f"{', '.join(manifest.names)}; for example: {example}"
        )
    return text, module


@app.command()
def current(branch: Branch = None, as_json: Json = False) -> None:
    """Show the revision each module is at."""
    from shared.migrate import commands
    from shared.migrate.cli import output

    result = _call(lambda: commands.status(state.target()))
    name = _call(lambda: state.module_name(branch))
    positions = [p for p in result.positions if name in (None, p.module)]
    output.current(positions, as_json, result.databases)


@app.command()
def status(
    branch: Branch = None,
    as_json: Json = False,
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 unless every module is up to date.")
    ] = False,
    databases: Databases = None,
    schemas: Schemas = None,
    jobs: Jobs = None,
) -> None:
    """One row per module: current revision, head, pending, state.

    Over a fleet (--databases, --schemas): how many databases are at each revision, and which
    are behind."""
    from dataclasses import replace

    from shared.migrate import commands
    from shared.migrate.cli import output

    if databases or schemas:
        arguments = _passed(("--branch", branch))
        from shared.migrate.commands.fleet import picture

        found = _fleet("status", arguments, databases, schemas, jobs, False, as_json)
        if check and picture(found).stragglers:
            raise typer.Exit(EXIT_FAILED)
        return

    result = _call(lambda: commands.status(state.target()))
    name = _call(lambda: state.module_name(branch))
    if name is not None:
        result = replace(result, positions=[p for p in result.positions if p.module == name])
    output.status(result, as_json)
    if check and (
        any(p.state != "up to date" for p in result.positions) or not result.version_table_ok
    ):
        raise typer.Exit(EXIT_FAILED)


@app.command()
def history(
    branch: Branch = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show parents, files, dependencies.")
    ] = False,
    as_json: Json = False,
) -> None:
    """List revisions per module, newest first.

    [X] applied, [ ] not, when the database can be read.
    """
    from shared.migrate import commands
    from shared.migrate.cli import output

    target = _call(state.target)
    result = _call(lambda: commands.history(target, branch))
    output.history(result, target.manifest.root, verbose, as_json)


@app.command()
def heads(branch: Branch = None, as_json: Json = False) -> None:
    """Show each module's head revision."""
    from shared.migrate import commands
    from shared.migrate.cli import output

    output.heads(_call(lambda: commands.heads(state.manifest(), branch)), as_json)


@app.command()
def owners(
    branch: Branch = None,
    as_json: Json = False,
    shadow_url: ShadowUrl = None,
) -> None:
    """Show which module owns each table, and the tables nobody owns."""
    from shared.migrate import commands
    from shared.migrate.cli import output

    target = _call(state.target)
    name = _call(lambda: state.module_name(branch))
    data = _call(lambda: commands.owners(target, shadow_url))
    output.owners(data, name, as_json)


@app.command()
def check(
    branch: Branch = None,
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
    databases: Databases = None,
    schemas: Schemas = None,
    jobs: Jobs = None,
    fail_fast: FailFast = False,
) -> None:
    """The CI gate: exit 1 on any finding.

    Models match migrations per module, one head each, clean ownership, declared dependencies,
    downgrades that leave no trace, alembic.ini in step.
    """
    from shared.migrate import commands
    from shared.migrate.cli import output

    if databases or schemas:
        arguments = _passed(("--shadow-url", shadow_url), ("--all-revisions", all_revisions))
        _fleet("check", arguments, databases, schemas, jobs, fail_fast, as_json)
        return
    result = _call(lambda: commands.check(state.target(), shadow_url, all_revisions=all_revisions))
    name = _call(lambda: state.module_name(branch))
    found = [f for f in result.findings if name is None or f.module in (name, "-")]
    warned = [f for f in result.warnings if name is None or f.module == name]
    notes = [f for f in result.notes if name is None or f.module in (name, "-")]
    output.findings(found, as_json, warned, notes)
    if found:
        raise typer.Exit(EXIT_FAILED)


@app.command()
def lint(
    branch: Branch = None,
    all_revisions: Annotated[
        bool,
        typer.Option(
            "--all-revisions", help="Also the revisions the database has applied already."
        ),
    ] = False,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only revision files added or changed since this git ref."),
    ] = None,
    static: Annotated[
        bool,
        typer.Option(
            "--static", help="Do not connect: judge the SQL alone, every revision, unmeasured."
        ),
    ] = False,
    show_silenced: Annotated[
        bool, typer.Option("--show-silenced", help="Also list what silences and levels hide.")
    ] = False,
    fmt: Annotated[
        str,
        typer.Option(
            "--format", help="text, or github (workflow annotations on the op. call's line)."
        ),
    ] = "text",
    shadow_url: ShadowUrl = None,
    as_json: Json = False,
) -> None:
    """Judge pending revisions: their locks, rewrites and breaks.

    Measured on a shadow database; exit 1 on any error-level finding."""
    from shared.migrate.cli import output
    from shared.migrate.commands.lint import LintOptions
    from shared.migrate.commands.lint import lint as run
    from shared.migrate.errors import shown

    if fmt not in ("text", "github"):
        _call(lambda: _refuse(f"--format must be text or github, not '{shown(fmt)}'"))
    options = LintOptions(branch, all_revisions, since, static, shadow_url)
    report = _call(lambda: run(state.target(), options))
    output.lint(report, "json" if as_json else fmt, show_silenced)
    if report.errors:
        raise typer.Exit(EXIT_FAILED)


@app.command()
def merge(
    branch: Annotated[
        str,
        typer.Option(
            "--module", "--branch", "-b", help="The module.", autocompletion=_module_names
        ),
    ],
    message: Annotated[
        str | None, typer.Option("--message", "-m", help="The merge's message.")
    ] = None,
) -> None:
    """Write a revision that joins a module's two heads."""
    from shared.migrate import commands
    from shared.migrate.cli import output

    manifest = _call(state.manifest)
    result = _call(lambda: commands.merge(manifest, branch, message))
    if result.path is None:
        output.say(f"Module '{result.module}' has one head; nothing to merge.")
    else:
        output.created(result, manifest.root)


@app.command()
def squash(
    branch: Annotated[
        str,
        typer.Option(
            "--module", "--branch", "-b", help="The module.", autocompletion=_module_names
        ),
    ],
    to: Annotated[
        str | None,
        typer.Option("--to", help="The newest revision to squash (default: the module's head)."),
    ] = None,
    shadow_url: ShadowUrl = None,
    as_json: Json = False,
) -> None:
    """Replace a module's revisions with one, proved to build the same.

    Written from what they build on a shadow database (one create_table per table, the rows
    they leave), proved there before it says done; the old files go to migrations/replaced/,
    where databases still inside them find them.
    """
    from shared.migrate import commands
    from shared.migrate.cli import output

    target = _call(state.target)
    result = _call(lambda: commands.squash(target, branch, to, shadow_url))
    output.squashed(result, target.manifest.root, as_json)


Assign = Annotated[
    list[str] | None,
    typer.Option(
        "--assign",
        help="NAME=MODULE: the module of a table (or view, function, type) no model claims "
        "(repeatable).",
        show_default=False,
    ),
]


@app.command()
def adopt(
    source: Annotated[
        str,
        typer.Option(
            "--from",
            help="The single-application project: its alembic.ini or its versions directory.",
        ),
    ],
    assign: Assign = None,
    name: Annotated[
        str, typer.Option("--name", help="What the adopted history is called in the log.")
    ] = "legacy",
    shadow_url: ShadowUrl = None,
    as_json: Json = False,
) -> None:
    """Split a single-application Alembic history into the modules.

    The models say which module owns each table (--assign settles the others). One baseline
    per module, written from the schema the old history builds on a shadow database and proved
    there; together they replace the old head, so databases move onto them with `migrate up`.
    """
    from shared.migrate import commands
    from shared.migrate.cli import output

    target = _call(state.target)
    result = _call(lambda: commands.adopt(target, source, assign, name, shadow_url))
    output.adopted(result, target.manifest.root, as_json)


@app.command()
def baseline(
    branch: Branch = None,
    mark: Annotated[
        bool,
        typer.Option(
            "--mark",
            help="Record the baselines as applied on this database, once its catalog matches.",
        ),
    ] = False,
    assign: Assign = None,
    shadow_url: ShadowUrl = None,
    lock_wait: LockWait = None,
    as_json: Json = False,
) -> None:
    """Write a module's first revision from a database without history.

    Written from the database's own schema of the module's tables (every module without
    revisions, without -b), proved on a shadow database. Then --mark records it as applied on
    each database that has those tables, after checking that it has exactly them.
    """
    from shared.migrate import commands
    from shared.migrate.cli import output
    from shared.migrate.manifest import parse_duration

    target = _call(state.target)
    if mark:
        wait = _call(lambda: parse_duration(lock_wait, "--lock-wait") if lock_wait else None)
        output.marked(_call(lambda: commands.mark(target, branch, wait)), as_json)
        return
    result = _call(lambda: commands.baseline(target, branch, assign, shadow_url))
    output.baselined(result, target.manifest.root, as_json)


@app.command()
def graph(
    revisions: Annotated[
        bool,
        typer.Option(
            "--revisions", help="Each module's chain of revisions and their cross-module links."
        ),
    ] = False,
    dot: Annotated[bool, typer.Option("--dot", help="Graphviz dot instead of Mermaid.")] = False,
) -> None:
    """Draw the modules and their depends_on, as Mermaid or Graphviz."""
    from shared.migrate.cli import diagram
    from shared.migrate.history.graph import load_graph

    manifest = _call(state.manifest)
    loaded = _call(lambda: load_graph(manifest)) if revisions else None
    sys.stdout.write(diagram.render(manifest, loaded, "dot" if dot else "mermaid"))


module_app = typer.Typer(
    cls=WholeDescriptions,
    help="Manage the modules listed in migrations.yaml.",
    no_args_is_help=True,
    rich_markup_mode=None,
    context_settings=SETTINGS,
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
    """Add a module: services/NAME, migrations.yaml and alembic.ini.

    Creates services/NAME (package, models.py, migrations/) and lists it in migrations.yaml
    and alembic.ini.
    """
    from shared.migrate import commands
    from shared.migrate.cli import output

    manifest = _call(state.manifest)
    updated = _call(lambda: commands.add_module(manifest, name, depends_on or []))
    module = updated.module(name)
    output.say(
        f"Added module '{name}': {updated.relative(module.path)}/ "
        f'(models: {module.models}); next: migrate create "create {name}" --module {name}'
    )


@module_app.command("move")
def module_move(
    name: Annotated[str, typer.Argument(help="The module.", autocompletion=_module_names)],
    lock_wait: LockWait = None,
) -> None:
    """Move a module's records to the database of its own the manifest names.

    Its version rows and log entries go from the shared database to the one its
    database_url_env names: written there first, then removed
    from the shared database; run it again to finish a move that was cut short. Its tables and
    data are yours to copy first (see the README)."""
    from shared.migrate.cli import output
    from shared.migrate.commands.move import move

    options = _call(lambda: _options(False, lock_wait, None, None))
    output.moved(_run(options, lambda: move(state.target(), name, options=options)))


_VALUED_GLOBALS = ("--config", "-c", "--database-url", "--tenant-schema")


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
        cls=WholeDescriptions,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        context_settings=SETTINGS,
    )
    single.registered_callback = app.registered_callback
    single.registered_commands = commands
    single.registered_groups = groups
    return single


def main() -> None:
    import signal

    from shared.migrate.errors import CANCELLING

    if signal.SIGINT not in CANCELLING:  # Ctrl-C says what became of the revision, as SIGTERM
        CANCELLING.append(signal.SIGINT)
    try:
        _app_for(sys.argv[1:])(prog_name="migrate")
    finally:  # done: a SIGTERM now finds nothing to stop (and Python's exit would default it)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


if __name__ == "__main__":
    main()
