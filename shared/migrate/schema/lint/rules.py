"""The rules: each an id, a level, a one-line why and the safe recipe; and the static judge,
which reads each statement's syntax tree (PostgreSQL's own parser, through pglast) in order.

A hit that depends on what PostgreSQL does (a rewrite, a full scan, a lock held) names the
measurement that settles it; the measured pass then keeps it only if the shadow database
showed exactly that.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from shared.migrate.errors import shown
from shared.migrate.schema.lint.findings import Statement


@dataclass(frozen=True)
class Rule:
    id: str
    level: str  # the default: "error" (breaks production) or "warning" (hygiene)
    why: str
    recipe: str
    squawk: tuple[str, ...] = ()  # squawk's rules for the same thing
    measured: str = ""  # what the measured pass decides: "rewrite", "scan", "held", "locks"


def _rules(*rules: Rule) -> dict[str, Rule]:
    return {rule.id: rule for rule in rules}


RULES = _rules(
    # ---- rewrites and long locks on existing tables ----
    Rule(
        "changing-column-type",
        "error",
        "a type change PostgreSQL cannot do in place rewrites the table (and its indexes) "
        "under ACCESS EXCLUSIVE, and old code may read the column as the old type",
        "add a column of the new type, backfill it in batches, switch the code to it, then "
        "drop the old one (varchar(n) to a longer varchar or to text needs no rewrite)",
        ("changing-column-type",),
        "rewrite",
    ),
    Rule(
        "adding-field-with-default",
        "error",
        "a new column whose value is computed per row (a volatile default, serial, identity "
        "or a stored generated column) rewrites the table under ACCESS EXCLUSIVE",
        "add the column without a default (or with a constant one), set the default "
        "afterwards, and backfill existing rows in batches",
        ("adding-field-with-default", "adding-serial-primary-key-field"),
        "rewrite",
    ),
    Rule(
        "table-rewrite",
        "error",
        "the statement rewrites an existing table (and its indexes) under ACCESS EXCLUSIVE",
        "build the new shape beside the old (a new table or column), copy in batches, switch",
        measured="rewrite",
    ),
    Rule(
        "adding-not-nullable-field",
        "error",
        "SET NOT NULL scans the whole table under ACCESS EXCLUSIVE, unless a validated CHECK "
        "(col IS NOT NULL) already proves it",
        "add CHECK (col IS NOT NULL) NOT VALID, VALIDATE CONSTRAINT it in a later revision, "
        "then SET NOT NULL (no scan) and drop the check",
        ("adding-not-nullable-field",),
        "scan",
    ),
    Rule(
        "adding-foreign-key-constraint",
        "error",
        "a new foreign key is validated by scanning the table while both tables are locked "
        "against writes (SHARE ROW EXCLUSIVE)",
        "add it NOT VALID, then ALTER TABLE ... VALIDATE CONSTRAINT in a later revision",
        ("adding-foreign-key-constraint", "constraint-missing-not-valid"),
        "scan",
    ),
    Rule(
        "constraint-missing-not-valid",
        "error",
        "a new CHECK constraint (or one validated in the transaction that added it) scans "
        "the table while ACCESS EXCLUSIVE is held",
        "add it NOT VALID, then ALTER TABLE ... VALIDATE CONSTRAINT in a later revision",
        ("constraint-missing-not-valid",),
        "scan",
    ),
    Rule(
        "disallowed-unique-constraint",
        "error",
        "UNIQUE or EXCLUDE added to an existing table builds its index under ACCESS EXCLUSIVE",
        "CREATE UNIQUE INDEX CONCURRENTLY (in autocommit_block()), then ADD CONSTRAINT ... "
        "UNIQUE USING INDEX (an exclusion constraint has no safe way)",
        ("disallowed-unique-constraint", "constraint-missing-not-valid"),
    ),
    Rule(
        "adding-primary-key-constraint",
        "error",
        "a PRIMARY KEY added to an existing table builds its index (and may set NOT NULL) "
        "under ACCESS EXCLUSIVE",
        "CREATE UNIQUE INDEX CONCURRENTLY (in autocommit_block()), then ADD CONSTRAINT ... "
        "PRIMARY KEY USING INDEX",
        (
            "adding-primary-key-constraint",
            "adding-serial-primary-key-field",
            "constraint-missing-not-valid",
        ),
    ),
    Rule(
        "require-concurrent-index-creation",
        "error",
        "CREATE INDEX on an existing table blocks every write to it until the index is built",
        "CREATE INDEX CONCURRENTLY inside op.get_context().autocommit_block() "
        "(op.create_index(..., postgresql_concurrently=True))",
        ("require-concurrent-index-creation",),
        "locks",
    ),
    Rule(
        "require-concurrent-index-deletion",
        "error",
        "DROP INDEX takes ACCESS EXCLUSIVE on its table: reads and writes wait",
        "DROP INDEX CONCURRENTLY inside op.get_context().autocommit_block() "
        "(op.drop_index(..., postgresql_concurrently=True))",
        ("require-concurrent-index-deletion",),
        "locks",
    ),
    Rule(
        "require-concurrent-reindex",
        "error",
        "REINDEX without CONCURRENTLY blocks writes to the table (and reads using the index)",
        "REINDEX ... CONCURRENTLY inside op.get_context().autocommit_block()",
        ("require-concurrent-reindex",),
    ),
    Rule(
        "require-concurrent-partition-detach",
        "error",
        "DETACH PARTITION takes ACCESS EXCLUSIVE on the parent table",
        "DETACH PARTITION ... CONCURRENTLY (PostgreSQL 14+) inside autocommit_block()",
        ("require-concurrent-partition-detach",),
    ),
    Rule(
        "ban-vacuum-full",
        "error",
        "VACUUM FULL rewrites the table under ACCESS EXCLUSIVE for as long as it takes",
        "run pg_repack (or pg_squeeze) outside the migrations; plain VACUUM takes no such lock",
        ("prefer-repack",),
    ),
    Rule(
        "ban-cluster",
        "error",
        "CLUSTER rewrites the table under ACCESS EXCLUSIVE for as long as it takes",
        "run pg_repack --order-by outside the migrations",
        ("prefer-repack",),
    ),
    Rule(
        "ban-lock-table",
        "error",
        "LOCK TABLE in a mode that blocks writes holds it until the revision commits",
        "do without the explicit lock, or take it in a revision of its own that does nothing slow",
        measured="locks",
    ),
    Rule(
        "backfill-in-transaction",
        "error",
        "rows changed in the transaction that altered their table run while ACCESS EXCLUSIVE "
        "is held: the table is blocked for the whole backfill",
        "change the schema in one revision and backfill in a later one (in batches)",
        measured="held",
    ),
    # ---- what breaks the code still running during a rolling deploy ----
    Rule(
        "ban-drop-column",
        "error",
        "the code still running (old replicas) reads and writes the column it drops",
        "stop using the column in the code and deploy that first; drop it in a later release "
        "(then silence this with the reason)",
        ("ban-drop-column",),
    ),
    Rule(
        "ban-drop-table",
        "error",
        "the code still running (old replicas) uses the table it drops",
        "stop using the table in the code and deploy that first; drop it in a later release "
        "(then silence this with the reason)",
        ("ban-drop-table",),
    ),
    Rule(
        "renaming-column",
        "error",
        "the code still running uses the old column name",
        "add the new column, write both, backfill, move reads, then drop the old one (or a "
        "view), over several releases",
        ("renaming-column",),
    ),
    Rule(
        "renaming-table",
        "error",
        "the code still running uses the old table name",
        "create the new table (or a view with the old name), move the code, then drop the old",
        ("renaming-table",),
    ),
    Rule(
        "renaming-enum-value",
        "error",
        "the code still running writes and compares the old value",
        "add the new value, move the code and the rows to it, and leave the old one unused",
    ),
    Rule(
        "adding-required-field",
        "error",
        "a NOT NULL column without a default fails on a table with rows, and old code's "
        "INSERTs that do not name it fail",
        "add it with a default (a constant adds no rewrite), or nullable, backfill, then "
        "SET NOT NULL the safe way",
        ("adding-required-field",),
    ),
    Rule(
        "ban-drop-not-null",
        "warning",
        "code that assumes the column is never NULL will start reading NULLs",
        "make sure every reader copes with NULL before dropping the constraint",
        ("ban-drop-not-null",),
    ),
    Rule(
        "ban-truncate-cascade",
        "error",
        "TRUNCATE ... CASCADE empties every table that references it, however far",
        "truncate the tables you mean by name",
        ("ban-truncate-cascade",),
    ),
    Rule(
        "ban-drop-database",
        "error",
        "a migration that drops a database",
        "drop databases by hand, never from a revision",
        ("ban-drop-database",),
    ),
    # ---- what misbehaves in a transaction ----
    Rule(
        "concurrently-in-transaction",
        "error",
        "CONCURRENTLY cannot run inside a transaction block: the revision fails at deploy",
        "run it inside `with op.get_context().autocommit_block():` (and make it IF NOT EXISTS)",
        ("ban-concurrent-index-creation-in-transaction",),
    ),
    Rule(
        "enum-value-used-in-transaction",
        "error",
        "a value added with ALTER TYPE ... ADD VALUE cannot be used before it commits: the "
        "revision fails with 'unsafe use of new value'",
        "add the value inside autocommit_block() (or in an earlier revision), use it after",
    ),
    Rule(
        "transaction-nesting",
        "error",
        "BEGIN, COMMIT or ROLLBACK in a revision ends the transaction the tool runs it in; "
        "what follows is not rolled back on failure",
        "leave transactions to the tool; use op.get_context().autocommit_block() for what must "
        "run outside one",
        ("transaction-nesting", "ban-uncommitted-transaction"),
    ),
    Rule(
        "session-setting",
        "error",
        "SET (without LOCAL) or RESET in a revision outlives it: the session keeps it for "
        "every later revision of the run (a lock_timeout of 0 lets them wait behind any lock)",
        "SET LOCAL, which ends with the revision's transaction (the tool sets lock_timeout and "
        "statement_timeout itself: --lock-timeout, --statement-timeout, the manifest)",
    ),
    Rule(
        "ban-alter-domain-with-add-constraint",
        "error",
        "ALTER DOMAIN ... ADD CONSTRAINT checks every column of that domain, in every table, "
        "under lock (and its VALIDATE later does the same)",
        "put the CHECK on the tables' columns instead: ADD CONSTRAINT ... NOT VALID, then "
        "VALIDATE CONSTRAINT in a later revision",
        ("ban-alter-domain-with-add-constraint",),
    ),
    # ---- hygiene ----
    Rule(
        "require-lock-timeout",
        "warning",
        "a statement waiting for ACCESS EXCLUSIVE queues every query behind it; the manifest "
        "sets no lock_timeout",
        'set lock_timeout in migrations.yaml (e.g. 5s), or op.execute("SET LOCAL '
        "lock_timeout = '5s'\") first in the revision",
        ("require-lock-timeout", "require-timeout-settings"),
        "locks",
    ),
    Rule(
        "prefer-robust-stmts",
        "warning",
        "a statement run outside the transaction stays applied when the revision fails after "
        "it, so running the revision again fails on it",
        "IF NOT EXISTS / IF EXISTS on what runs in autocommit_block()",
        ("prefer-robust-stmts",),
    ),
    Rule(
        "prefer-bigint-over-int",
        "warning",
        "a 32-bit integer key runs out at 2.1 billion, and widening it later rewrites the table",
        "bigint (sa.BigInteger)",
        ("prefer-bigint-over-int", "prefer-big-int"),
    ),
    Rule(
        "prefer-bigint-over-smallint",
        "warning",
        "a 16-bit integer runs out at 32,767, and widening it later rewrites the table",
        "bigint (sa.BigInteger)",
        ("prefer-bigint-over-smallint", "prefer-big-int"),
    ),
    Rule(
        "prefer-identity",
        "warning",
        "serial types bring a sequence with its own ownership and permission quirks",
        "GENERATED BY DEFAULT AS IDENTITY (sa.Identity())",
        ("prefer-identity",),
    ),
    Rule(
        "prefer-text-field",
        "warning",
        "varchar(n) gains nothing over text, and shrinking its limit later rewrites the table",
        "text (sa.Text), with a CHECK on the length if one is needed",
        ("prefer-text-field",),
    ),
    Rule(
        "prefer-timestamptz",
        "warning",
        "timestamp without time zone drops the offset; values move when the server's or "
        "client's time zone changes",
        "timestamptz (sa.DateTime(timezone=True))",
        ("prefer-timestamptz", "prefer-timestamp-tz"),
    ),
    Rule(
        "ban-char-field",
        "warning",
        "char(n) pads with spaces and is no faster than text",
        "text (sa.Text), or varchar if a limit is needed",
        ("ban-char-field",),
    ),
    Rule(
        "prefer-jsonb",
        "warning",
        "json has no equality operator: SELECT DISTINCT and GROUP BY over it fail",
        "jsonb (postgresql.JSONB)",
    ),
    Rule(
        "ban-create-domain-with-constraint",
        "warning",
        "a domain's constraint cannot be changed later without checking every column using it",
        "put the CHECK on the table's column instead",
        ("ban-create-domain-with-constraint",),
    ),
    Rule(
        "identifier-too-long",
        "warning",
        "PostgreSQL cuts names past 63 bytes, so the name in the database is not the one written",
        "a shorter name",
        ("identifier-too-long",),
    ),
    # ---- the input itself ----
    Rule(
        "syntax-error",
        "error",
        "the SQL does not parse, or the upgrade cannot be rendered offline",
        "fix the SQL (or the revision) at that line",
        ("syntax-error",),
    ),
    Rule(
        "unrenderable",
        "warning",
        "the upgrade cannot run in offline mode (it reads the database), so the statements "
        "after that line were not rendered; the measured pass runs them on a shadow database",
        "run migrate lint with a database (not --static), or silence it with the reason",
    ),
    Rule(
        "upgrade-fails",
        "error",
        "the upgrade fails on PostgreSQL (on the shadow database): the deploy would stop there",
        "fix the revision (migrate check names the step and the database's message)",
    ),
    Rule(
        "silence",
        "error",
        "a silence must name a known rule and give the reason it is safe",
        "# migrate: allow <rule> -- <why it is safe here>",
    ),
)

SAFE_FUNCTIONS = {
    # stable or immutable: PostgreSQL 11+ stores the value once, no rewrite
    "now",
    "statement_timestamp",
    "transaction_timestamp",
    "lower",
    "upper",
    "length",
    "concat",
    "to_json",
    "to_jsonb",
    "json_build_object",
    "jsonb_build_object",
    "json_build_array",
    "jsonb_build_array",
    "array_fill",
    "make_interval",
    "make_date",
    "to_timestamp",
    "to_date",
}
SERIALS = {"serial", "serial4", "bigserial", "serial8", "smallserial", "serial2"}
INT4 = {"int4", "serial", "serial4"}
INT2 = {"int2", "smallserial", "serial2"}
WRITE_BLOCKING_LOCKS = {"SHARE", "SHARE ROW EXCLUSIVE", "EXCLUSIVE", "ACCESS EXCLUSIVE"}
LOCK_MODES = {
    1: "ACCESS SHARE",
    2: "ROW SHARE",
    3: "ROW EXCLUSIVE",
    4: "SHARE UPDATE EXCLUSIVE",
    5: "SHARE",
    6: "SHARE ROW EXCLUSIVE",
    7: "EXCLUSIVE",
    8: "ACCESS EXCLUSIVE",
}
NAME_LIMIT = 63
# statements that name new things (PostgreSQL's scanner cuts a long name before the parser
# sees it, so names are read from the scanner's tokens)
NAMING = {
    "CreateStmt",
    "IndexStmt",
    "AlterTableStmt",
    "CreateEnumStmt",
    "CreateDomainStmt",
    "ViewStmt",
    "CreateSeqStmt",
    "RenameStmt",
    "CreateTableAsStmt",
}


@dataclass(frozen=True)
class Hit:
    """A rule a statement breaks, before the measured pass and the silences have their say."""

    rule: str
    statement: Statement
    detail: str
    relation: str | None = None  # the existing table it is about


@dataclass
class Context:
    """What the statements of a lint run have done so far: per revision, per transaction,
    and across revisions (a CHECK validated earlier makes a later SET NOT NULL safe)."""

    lock_timeout: bool  # the manifest's lock_timeout is on
    proven_not_null: set[tuple[str, str]] = field(default_factory=set)
    pending_not_null: dict[tuple[str, str], str] = field(default_factory=dict)
    created: set[str] = field(default_factory=set)
    created_indexes: set[str] = field(default_factory=set)
    revision_sets_timeout: bool = False
    timeout_reported: bool = False
    added_values: set[str] = field(default_factory=set)
    not_valid: set[tuple[str, str]] = field(default_factory=set)
    altered: set[str] = field(default_factory=set)

    def new_revision(self) -> None:
        self.created, self.created_indexes = set(), set()
        self.revision_sets_timeout = self.timeout_reported = False
        self.new_transaction()

    def new_transaction(self) -> None:
        self.added_values, self.not_valid, self.altered = set(), set(), set()


def judge(revisions: list[list[Statement]], lock_timeout: bool) -> list[Hit]:
    """Every rule over every statement, revision by revision, in order."""
    context = Context(lock_timeout)
    hits: list[Hit] = []
    for statements in revisions:
        context.new_revision()
        previous = False
        for statement in statements:
            if statement.in_transaction != previous or not statement.in_transaction:
                context.new_transaction()
            previous = statement.in_transaction
            hits.extend(_judge(statement, context))
    return hits


def _judge(statement: Statement, ctx: Context) -> Iterator[Hit]:
    node = statement.node
    if node is None:
        rule = "unrenderable" if statement.sql == "" else "syntax-error"
        yield Hit(rule, statement, statement.error or "cannot be parsed")
        return
    kind = type(node).__name__
    handler = _HANDLERS.get(kind)
    if handler is not None:
        yield from handler(statement, node, ctx)
    if kind in ("UpdateStmt", "DeleteStmt", "InsertStmt", "MergeStmt"):
        yield from _backfill(statement, node, ctx)
    if ctx.added_values and kind != "AlterEnumStmt":
        used = sorted(v for v in _strings(node) if v in ctx.added_values)
        if used:
            yield Hit(
                "enum-value-used-in-transaction",
                statement,
                f"uses '{shown(used[0])}', added by ALTER TYPE ... ADD VALUE in the same "
                "transaction",
            )
    yield from _lock_timeout(statement, node, kind, ctx)
    if kind in NAMING:
        yield from _long_names(statement)


# ---- names ------------------------------------------------------------------------------------


def relation_key(rangevar: Any) -> str:
    """A table as MetaData names it: bare in public (or unqualified), schema.name elsewhere."""
    schema = getattr(rangevar, "schemaname", None)
    name = rangevar.relname
    return f"{schema}.{name}" if schema and schema != "public" else name


def _names(names: Any) -> list[str]:
    return [getattr(n, "sval", "") for n in names or ()]


def _type_name(type_name: Any) -> str:
    names = _names(getattr(type_name, "names", None))
    return names[-1].lower() if names else ""


def _walk(node: Any) -> Iterator[Any]:
    """Every node of a syntax tree."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, tuple | list):
            stack.extend(item)
            continue
        slots = getattr(type(item), "__slots__", None)
        if not isinstance(slots, dict):
            continue
        yield item
        for name in slots:
            child = getattr(item, name, None)
            if child is not None and not isinstance(child, str | int | float | bool):
                stack.append(child)


def _strings(node: Any) -> Iterator[str]:
    """Every string constant in a syntax tree."""
    for item in _walk(node):
        value: Any = getattr(item, "val", None) if type(item).__name__ == "A_Const" else None
        if type(value).__name__ == "String":
            yield value.sval


def _function_names(node: Any) -> Iterator[str]:
    for item in _walk(node):
        if type(item).__name__ == "FuncCall":
            yield (_names(item.funcname) or [""])[-1].lower()


# ---- per kind of statement ---------------------------------------------------------------------


def _alter_table(statement: Statement, node: Any, ctx: Context) -> Iterator[Hit]:
    from pglast.enums.parsenodes import AlterTableType as T
    from pglast.enums.parsenodes import ObjectType

    if node.objtype != ObjectType.OBJECT_TABLE or node.relation is None:
        return
    table = relation_key(node.relation)
    existing = table not in ctx.created
    for cmd in node.cmds or ():
        sub = cmd.subtype
        idempotent = sub in (T.AT_AddColumn, T.AT_DropColumn, T.AT_DropConstraint)
        if not statement.in_transaction and not (idempotent and cmd.missing_ok):
            yield Hit(
                "prefer-robust-stmts",
                statement,
                f"ALTER TABLE {table} runs outside the transaction and cannot run twice",
            )
        if sub == T.AT_AddColumn:
            yield from _types(statement, cmd.def_)
            if existing:
                yield from _add_column(statement, table, cmd.def_)
        elif sub == T.AT_AlterColumnType:
            yield from _types(statement, cmd.def_, cmd.name)
            if existing:
                yield Hit(
                    "changing-column-type",
                    statement,
                    f"changes the type of {table}.{cmd.name}",
                    table,
                )
        elif sub == T.AT_AddConstraint and cmd.def_ is not None:
            yield from _add_constraint(statement, table, cmd.def_, existing, ctx)
        elif sub == T.AT_ValidateConstraint:
            yield from _validate(statement, table, cmd.name, ctx)
        elif sub == T.AT_SetNotNull and existing and (table, cmd.name) not in ctx.proven_not_null:
            yield Hit(
                "adding-not-nullable-field",
                statement,
                f"sets NOT NULL on {table}.{cmd.name} without a validated CHECK proving it",
                table,
            )
        elif sub == T.AT_DropNotNull and existing:
            yield Hit("ban-drop-not-null", statement, f"drops NOT NULL of {table}.{cmd.name}")
        elif sub == T.AT_DropColumn and existing:
            yield Hit("ban-drop-column", statement, f"drops column {table}.{cmd.name}")
        elif sub == T.AT_DetachPartition and not getattr(cmd.def_, "concurrent", False):
            yield Hit(
                "require-concurrent-partition-detach", statement, f"detaches a partition of {table}"
            )
        elif (
            sub in (T.AT_SetTableSpace, T.AT_SetLogged, T.AT_SetUnLogged, T.AT_SetAccessMethod)
            and existing
        ):
            yield Hit("table-rewrite", statement, f"rewrites {table}", table)
        if existing and sub != T.AT_ValidateConstraint:
            ctx.altered.add(table)


def _add_column(statement: Statement, table: str, column: Any) -> Iterator[Hit]:
    from pglast.enums.parsenodes import ConstrType as C

    name = f"{table}.{column.colname}"
    constraints = list(column.constraints or ())
    kinds = {c.contype for c in constraints}
    computed = None
    if _type_name(column.typeName) in SERIALS:
        computed = "a serial column"
    elif C.CONSTR_IDENTITY in kinds:
        computed = "an identity column"
    elif C.CONSTR_GENERATED in kinds:
        computed = "a stored generated column"
    for c in constraints:
        if c.contype == C.CONSTR_DEFAULT:
            unsafe = sorted(set(_function_names(c.raw_expr)) - SAFE_FUNCTIONS)
            if unsafe:
                computed = f"a default computed per row ({unsafe[0]}())"
    if computed:
        yield Hit("adding-field-with-default", statement, f"adds {name} as {computed}", table)
    filled = {C.CONSTR_DEFAULT, C.CONSTR_IDENTITY, C.CONSTR_GENERATED}
    if C.CONSTR_NOTNULL in kinds and not kinds & filled and not computed:
        yield Hit("adding-required-field", statement, f"adds {name} NOT NULL with no default")
    for c in constraints:
        if c.contype == C.CONSTR_FOREIGN and not c.skip_validation:
            yield Hit(
                "adding-foreign-key-constraint",
                statement,
                f"adds a foreign key on {name} without NOT VALID",
                table,
            )
        elif c.contype == C.CONSTR_PRIMARY:
            yield Hit("adding-primary-key-constraint", statement, f"adds {name} as primary key")
        elif c.contype == C.CONSTR_UNIQUE:
            yield Hit("disallowed-unique-constraint", statement, f"adds {name} as unique")


def _add_constraint(
    statement: Statement, table: str, constraint: Any, existing: bool, ctx: Context
) -> Iterator[Hit]:
    from pglast.enums.parsenodes import ConstrType as C

    kind = constraint.contype
    name = constraint.conname or "(unnamed)"
    if kind == C.CONSTR_CHECK:
        column = _not_null_check(constraint.raw_expr)
        if constraint.skip_validation:
            ctx.not_valid.add((table, name))
            if column:
                ctx.pending_not_null[(table, name)] = column
        elif column:
            ctx.proven_not_null.add((table, column))
    if not existing:
        return
    if kind == C.CONSTR_FOREIGN:
        if constraint.skip_validation:
            ctx.not_valid.add((table, name))
        else:
            yield Hit(
                "adding-foreign-key-constraint",
                statement,
                f"adds foreign key {name} on {table} without NOT VALID",
                table,
            )
    elif kind == C.CONSTR_CHECK and not constraint.skip_validation:
        yield Hit(
            "constraint-missing-not-valid",
            statement,
            f"adds CHECK {name} on {table} without NOT VALID",
            table,
        )
    elif kind in (C.CONSTR_UNIQUE, C.CONSTR_EXCLUSION) and not constraint.indexname:
        what = "UNIQUE" if kind == C.CONSTR_UNIQUE else "EXCLUDE"
        yield Hit(
            "disallowed-unique-constraint",
            statement,
            f"adds {what} constraint {name} on {table} without an index built before",
        )
    elif kind == C.CONSTR_PRIMARY and not constraint.indexname:
        yield Hit(
            "adding-primary-key-constraint",
            statement,
            f"adds PRIMARY KEY {name} on {table} without an index built before",
        )


def _not_null_check(expr: Any) -> str | None:
    """The column of a CHECK (col IS NOT NULL), if that is what the expression is."""
    from pglast.enums.primnodes import NullTestType

    if type(expr).__name__ != "NullTest" or expr.nulltesttype != NullTestType.IS_NOT_NULL:
        return None
    if type(expr.arg).__name__ != "ColumnRef":
        return None
    fields = _names(expr.arg.fields)
    return fields[-1] if fields else None


def _validate(statement: Statement, table: str, name: str, ctx: Context) -> Iterator[Hit]:
    if (table, name) in ctx.not_valid:
        yield Hit(
            "constraint-missing-not-valid",
            statement,
            f"validates {name} on {table} in the transaction that added it NOT VALID (its "
            "ACCESS EXCLUSIVE lock is still held)",
            table,
        )
    column = ctx.pending_not_null.get((table, name))
    if column:
        ctx.proven_not_null.add((table, column))


def _types(statement: Statement, column: Any, named: str | None = None) -> Iterator[Hit]:
    """Hygiene of a column's type (new tables included)."""
    if column is None or getattr(column, "typeName", None) is None:
        return
    type_name = column.typeName
    name = _type_name(type_name)
    where = f"column {getattr(column, 'colname', None) or named}"
    rule = None
    if name in INT4:
        rule = "prefer-bigint-over-int"
    elif name in INT2:
        rule = "prefer-bigint-over-smallint"
    elif name == "varchar" and type_name.typmods:
        rule = "prefer-text-field"
    elif name == "timestamp":
        rule = "prefer-timestamptz"
    elif name == "bpchar":
        rule = "ban-char-field"
    elif name == "json":
        rule = "prefer-jsonb"
    if rule:
        yield Hit(rule, statement, f"{where} is {_shown_type(type_name)}")
    if name in SERIALS:
        yield Hit("prefer-identity", statement, f"{where} is {name}")


def _shown_type(type_name: Any) -> str:
    name = _type_name(type_name)
    shown_name = {"int4": "integer", "int2": "smallint", "bpchar": "char"}.get(name, name)
    mods = [str(getattr(getattr(m, "val", None), "ival", "")) for m in type_name.typmods or ()]
    return f"{shown_name}({', '.join(mods)})" if mods else shown_name


def _long_names(statement: Statement) -> Iterator[Hit]:
    from pglast.parser import scan

    raw = statement.sql.encode()
    for token in scan(statement.sql):
        if token.name != "IDENT":
            continue
        name = raw[token.start : token.end + 1].decode(errors="replace")
        size = len(name.strip('"').encode())
        if size > NAME_LIMIT:
            yield Hit(
                "identifier-too-long",
                statement,
                f"'{shown(name)}' is {size} bytes; PostgreSQL keeps the first {NAME_LIMIT}",
            )


def _create_table(statement: Statement, node: Any, ctx: Context) -> Iterator[Hit]:
    ctx.created.add(relation_key(node.relation))
    temporary = node.relation.relpersistence == "t"
    if not statement.in_transaction and not node.if_not_exists and not temporary:
        yield _not_robust(statement, "CREATE TABLE", "IF NOT EXISTS")
    for element in node.tableElts or ():
        if type(element).__name__ == "ColumnDef":
            yield from _types(statement, element)


def _create_table_as(statement: Statement, node: Any, ctx: Context) -> Iterator[Hit]:
    ctx.created.add(relation_key(node.into.rel))
    return iter(())


def _index(statement: Statement, node: Any, ctx: Context) -> Iterator[Hit]:
    table = relation_key(node.relation)
    if node.idxname:
        schema = node.relation.schemaname
        ctx.created_indexes.add(f"{schema}.{node.idxname}" if schema else node.idxname)
    if not node.if_not_exists and (node.concurrent or not statement.in_transaction):
        yield _not_robust(statement, "CREATE INDEX", "IF NOT EXISTS")
    if node.concurrent:
        yield from _concurrently(statement, "CREATE INDEX CONCURRENTLY")
    elif table not in ctx.created:
        yield Hit(
            "require-concurrent-index-creation",
            statement,
            f"creates index {node.idxname or '(unnamed)'} on {table} without CONCURRENTLY",
            table,
        )


def _concurrently(statement: Statement, what: str) -> Iterator[Hit]:
    if statement.in_transaction:
        yield Hit(
            "concurrently-in-transaction",
            statement,
            f"{what} inside the revision's transaction",
        )


def _not_robust(statement: Statement, what: str, guard: str) -> Hit:
    return Hit(
        "prefer-robust-stmts",
        statement,
        f"{what} without {guard} runs outside the transaction: it cannot run twice",
    )


def _drop(statement: Statement, node: Any, ctx: Context) -> Iterator[Hit]:
    from pglast.enums.parsenodes import ObjectType

    names = [".".join(_names(obj)) for obj in node.objects or () if isinstance(obj, tuple)]
    robust_kinds = (ObjectType.OBJECT_TABLE, ObjectType.OBJECT_INDEX, ObjectType.OBJECT_TYPE)
    outside = node.concurrent or not statement.in_transaction
    if node.removeType in robust_kinds and not node.missing_ok and outside:
        yield _not_robust(statement, "DROP", "IF EXISTS")
    if node.removeType == ObjectType.OBJECT_TABLE:
        for name in names:
            if name.removeprefix("public.") not in ctx.created:
                yield Hit("ban-drop-table", statement, f"drops table {name}")
    elif node.removeType == ObjectType.OBJECT_INDEX:
        if node.concurrent:
            yield from _concurrently(statement, "DROP INDEX CONCURRENTLY")
            return
        for name in names:
            if name not in ctx.created_indexes:
                yield Hit(
                    "require-concurrent-index-deletion",
                    statement,
                    f"drops index {name} without CONCURRENTLY",
                )


def _rename(statement: Statement, node: Any, ctx: Context) -> Iterator[Hit]:
    from pglast.enums.parsenodes import ObjectType

    if node.relation is None:
        return
    table = relation_key(node.relation)
    if table in ctx.created:
        return
    if node.renameType == ObjectType.OBJECT_COLUMN:
        yield Hit(
            "renaming-column",
            statement,
            f"renames {table}.{node.subname} to {node.newname}",
        )
    elif node.renameType == ObjectType.OBJECT_TABLE:
        yield Hit("renaming-table", statement, f"renames table {table} to {node.newname}")


def _enum(statement: Statement, node: Any, ctx: Context) -> Iterator[Hit]:
    name = ".".join(_names(node.typeName))
    if node.oldVal:
        yield Hit(
            "renaming-enum-value",
            statement,
            f"renames value '{shown(node.oldVal)}' of {name} to '{shown(node.newVal)}'",
        )
    elif node.newVal and statement.in_transaction:
        ctx.added_values.add(node.newVal)


def _vacuum(statement: Statement, node: Any, ctx: Context) -> Iterator[Hit]:
    if node.is_vacuumcmd and any(o.defname == "full" for o in node.options or ()):
        yield Hit("ban-vacuum-full", statement, "runs VACUUM FULL")


def _cluster(statement: Statement, node: Any, ctx: Context) -> Iterator[Hit]:
    what = relation_key(node.relation) if node.relation else "every clustered table"
    yield Hit("ban-cluster", statement, f"clusters {what}")


def _lock(statement: Statement, node: Any, ctx: Context) -> Iterator[Hit]:
    mode = LOCK_MODES.get(node.mode, "ACCESS EXCLUSIVE")
    tables = [relation_key(r) for r in node.relations or ()]
    existing = [t for t in tables if t not in ctx.created]
    if mode in WRITE_BLOCKING_LOCKS and existing:
        yield Hit("ban-lock-table", statement, f"locks {', '.join(existing)} in {mode} mode")
    if mode in WRITE_BLOCKING_LOCKS:
        ctx.altered.update(existing)


def _reindex(statement: Statement, node: Any, ctx: Context) -> Iterator[Hit]:
    if any(p.defname == "concurrently" for p in node.params or ()):
        yield from _concurrently(statement, "REINDEX CONCURRENTLY")
    else:
        yield Hit("require-concurrent-reindex", statement, "runs REINDEX without CONCURRENTLY")


def _truncate(statement: Statement, node: Any, ctx: Context) -> Iterator[Hit]:
    from pglast.enums.parsenodes import DropBehavior

    if node.behavior == DropBehavior.DROP_CASCADE:
        tables = ", ".join(relation_key(r) for r in node.relations or ())
        yield Hit("ban-truncate-cascade", statement, f"truncates {tables} with CASCADE")


def _drop_database(statement: Statement, node: Any, ctx: Context) -> Iterator[Hit]:
    yield Hit("ban-drop-database", statement, f"drops database {node.dbname}")


def _set(statement: Statement, node: Any, ctx: Context) -> Iterator[Hit]:
    from pglast.enums.parsenodes import VariableSetKind as K

    if node.name == "lock_timeout":
        ctx.revision_sets_timeout = True
    if node.kind in (K.VAR_RESET, K.VAR_RESET_ALL):
        yield Hit("session-setting", statement, f"resets {node.name or 'every setting'}")
    elif node.kind != K.VAR_SET_MULTI and not node.is_local:  # MULTI: SET TRANSACTION ...
        yield Hit("session-setting", statement, f"sets {node.name} for the session")


def _transaction(statement: Statement, node: Any, ctx: Context) -> Iterator[Hit]:
    from pglast.enums.parsenodes import TransactionStmtKind as K

    words = {
        K.TRANS_STMT_BEGIN: "BEGIN",
        K.TRANS_STMT_START: "START TRANSACTION",
        K.TRANS_STMT_COMMIT: "COMMIT",
        K.TRANS_STMT_ROLLBACK: "ROLLBACK",
    }
    if node.kind in words:
        yield Hit("transaction-nesting", statement, f"runs {words[node.kind]} itself")


def _alter_domain(statement: Statement, node: Any, ctx: Context) -> Iterator[Hit]:
    if node.subtype == "C" and node.def_ is not None:
        name = ".".join(_names(node.typeName))
        how = " (NOT VALID)" if node.def_.skip_validation else ""
        yield Hit(
            "ban-alter-domain-with-add-constraint",
            statement,
            f"adds a constraint to domain {name}{how}",
        )


def _create_domain(statement: Statement, node: Any, ctx: Context) -> Iterator[Hit]:
    from pglast.enums.parsenodes import ConstrType as C

    if any(c.contype == C.CONSTR_CHECK for c in node.constraints or ()):
        name = ".".join(_names(node.domainname))
        yield Hit(
            "ban-create-domain-with-constraint", statement, f"creates domain {name} with a CHECK"
        )


def _backfill(statement: Statement, node: Any, ctx: Context) -> Iterator[Hit]:
    relation = getattr(node, "relation", None)
    if relation is None or not statement.in_transaction:
        return
    table = relation_key(relation)
    if table in ctx.altered:
        verb = type(node).__name__.removesuffix("Stmt").upper()
        yield Hit(
            "backfill-in-transaction",
            statement,
            f"{verb} on {table} in the transaction that altered it",
            table,
        )


def _lock_timeout(statement: Statement, node: Any, kind: str, ctx: Context) -> Iterator[Hit]:
    """Once per revision, when nothing bounds the wait for ACCESS EXCLUSIVE."""
    if ctx.lock_timeout or ctx.revision_sets_timeout or ctx.timeout_reported:
        return
    if kind not in ("AlterTableStmt", "DropStmt", "RenameStmt", "TruncateStmt", "LockStmt"):
        return
    relation = getattr(node, "relation", None)
    if relation is not None and relation_key(relation) in ctx.created:
        return
    if kind == "LockStmt" and node.mode != 8:
        return
    if kind == "DropStmt" and node.concurrent:
        return
    ctx.timeout_reported = True
    yield Hit(
        "require-lock-timeout",
        statement,
        "takes ACCESS EXCLUSIVE with no lock_timeout set (the manifest's is 0 and the "
        "revision sets none)",
    )


_HANDLERS = {
    "AlterTableStmt": _alter_table,
    "CreateStmt": _create_table,
    "CreateTableAsStmt": _create_table_as,
    "IndexStmt": _index,
    "DropStmt": _drop,
    "RenameStmt": _rename,
    "AlterEnumStmt": _enum,
    "VacuumStmt": _vacuum,
    "ClusterStmt": _cluster,
    "LockStmt": _lock,
    "ReindexStmt": _reindex,
    "TruncateStmt": _truncate,
    "DropdbStmt": _drop_database,
    "VariableSetStmt": _set,
    "TransactionStmt": _transaction,
    "AlterDomainStmt": _alter_domain,
    "CreateDomainStmt": _create_domain,
}
