"""The lint corpus: for each rule, a revision that must be flagged and its safe rewrite that
must not be. Each case has tables of its own (made by SETUP, below where lint starts), so the
cases of one chain never touch each other.

`MEASURED` cases apply on PostgreSQL and are linted with the measured pass; `STATIC` cases
are the ones PostgreSQL itself refuses at deploy (so a shadow cannot run them past the first),
linted with --static.
"""

from __future__ import annotations

from dataclasses import dataclass

_TABLES = (
    "CREATE TABLE t_type (id bigint PRIMARY KEY, n integer, v varchar(32), w varchar(10))",
    "CREATE TABLE t_default (id bigint PRIMARY KEY)",
    "CREATE TABLE t_rewrite (id bigint PRIMARY KEY)",
    "CREATE TABLE t_notnull (id bigint PRIMARY KEY, n bigint, m bigint)",
    "CREATE TABLE t_fk (id bigint PRIMARY KEY, user_id uuid, owner_id uuid)",
    "CREATE TABLE t_check (id bigint PRIMARY KEY, n bigint, m bigint, k bigint)",
    "CREATE TABLE t_unique (id bigint PRIMARY KEY, n bigint, m bigint)",
    "CREATE TABLE t_pk (id bigint NOT NULL, n bigint NOT NULL)",
    "CREATE TABLE t_pk2 (id bigint NOT NULL)",
    "CREATE TABLE t_index (id bigint PRIMARY KEY, n bigint, m bigint)",
    "CREATE TABLE t_dropindex (id bigint PRIMARY KEY, n bigint, m bigint)",
    "CREATE INDEX ix_dropindex_n ON t_dropindex (n)",
    "CREATE INDEX ix_dropindex_m ON t_dropindex (m)",
    "CREATE TABLE t_reindex (id bigint PRIMARY KEY)",
    "CREATE TABLE t_part (id bigint, at date) PARTITION BY RANGE (at)",
    "CREATE TABLE t_part_a PARTITION OF t_part FOR VALUES FROM ('2020-01-01') TO ('2021-01-01')",
    "CREATE TABLE t_part_b PARTITION OF t_part FOR VALUES FROM ('2021-01-01') TO ('2022-01-01')",
    "CREATE TABLE t_vacuum (id bigint PRIMARY KEY)",
    "CREATE TABLE t_cluster (id bigint PRIMARY KEY)",
    "CREATE TABLE t_lock (id bigint PRIMARY KEY)",
    "CREATE TABLE t_backfill (id bigint PRIMARY KEY)",
    "CREATE TABLE t_dropcol (id bigint PRIMARY KEY, n bigint, m bigint)",
    "CREATE TABLE t_droptable (id bigint PRIMARY KEY)",
    "CREATE TABLE t_droptable2 (id bigint PRIMARY KEY)",
    "CREATE TABLE t_renamecol (id bigint PRIMARY KEY, n bigint)",
    "CREATE TABLE t_renametable (id bigint PRIMARY KEY)",
    "CREATE TYPE e_rename AS ENUM ('a', 'b')",
    "CREATE TABLE t_required (id bigint PRIMARY KEY)",
    "CREATE TABLE t_dropnotnull (id bigint PRIMARY KEY, n bigint NOT NULL)",
    "CREATE TABLE t_truncate (id bigint PRIMARY KEY)",
    "CREATE DOMAIN d_positive AS bigint",
    "CREATE TABLE t_domain (id bigint PRIMARY KEY, n d_positive)",
    "CREATE TABLE t_robust (id bigint PRIMARY KEY, n bigint)",
)
# one op.execute() per statement: asyncpg prepares each, and a prepared statement holds one
SETUP = "\n".join(f"op.execute({sql!r})" for sql in _TABLES)


@dataclass(frozen=True)
class Case:
    rule: str
    bad: str  # the upgrade() body that must be flagged
    good: tuple[str, ...]  # the safe rewrite (one revision, or several in order)


AUTOCOMMIT = "with op.get_context().autocommit_block():\n    "
ID = "sa.Column('id', sa.BigInteger(), primary_key=True, autoincrement=False)"

MEASURED = (
    Case(
        "changing-column-type",
        "op.alter_column('t_type', 'n', type_=sa.BigInteger())",
        (
            "op.alter_column('t_type', 'v', type_=sa.String(64))",
            "op.alter_column('t_type', 'w', type_=sa.Text())",
        ),
    ),
    Case(
        "adding-field-with-default",
        "op.add_column('t_default', sa.Column('r', sa.Float(), "
        "server_default=sa.text('random()')))",
        (
            "op.add_column('t_default', sa.Column('at', sa.DateTime(timezone=True), "
            "server_default=sa.text('now()')))",
        ),
    ),
    Case(
        "table-rewrite",
        "op.execute('ALTER TABLE t_rewrite SET UNLOGGED')",
        ("op.execute('ALTER TABLE t_rewrite SET (fillfactor = 70)')",),
    ),
    Case(
        "adding-not-nullable-field",
        "op.alter_column('t_notnull', 'n', nullable=False)",
        (
            "op.execute('ALTER TABLE t_notnull ADD CONSTRAINT ck_m CHECK (m IS NOT NULL) "
            "NOT VALID')",
            "op.execute('ALTER TABLE t_notnull VALIDATE CONSTRAINT ck_m')",
            "op.alter_column('t_notnull', 'm', nullable=False)\n"
            "op.drop_constraint('ck_m', 't_notnull')",
        ),
    ),
    Case(
        "adding-foreign-key-constraint",
        "op.create_foreign_key('fk_user', 't_fk', 'users', ['user_id'], ['id'])",
        (
            "op.execute('ALTER TABLE t_fk ADD CONSTRAINT fk_owner FOREIGN KEY (owner_id) "
            "REFERENCES users (id) NOT VALID')",
            "op.execute('ALTER TABLE t_fk VALIDATE CONSTRAINT fk_owner')",
        ),
    ),
    Case(
        "constraint-missing-not-valid",
        "op.create_check_constraint('ck_n', 't_check', 'n > 0')\n"
        "op.execute('ALTER TABLE t_check ADD CONSTRAINT ck_k CHECK (k > 0) NOT VALID')\n"
        "op.execute('ALTER TABLE t_check VALIDATE CONSTRAINT ck_k')",
        (
            "op.execute('ALTER TABLE t_check ADD CONSTRAINT ck_m CHECK (m > 0) NOT VALID')",
            "op.execute('ALTER TABLE t_check VALIDATE CONSTRAINT ck_m')",
        ),
    ),
    Case(
        "disallowed-unique-constraint",
        "op.create_unique_constraint('uq_n', 't_unique', ['n'])",
        (
            AUTOCOMMIT + "op.create_index('uq_m', 't_unique', ['m'], unique=True, "
            "postgresql_concurrently=True, if_not_exists=True)",
            "op.execute('ALTER TABLE t_unique ADD CONSTRAINT uq_m UNIQUE USING INDEX uq_m')",
        ),
    ),
    Case(
        "adding-primary-key-constraint",
        "op.create_primary_key('pk_t_pk', 't_pk', ['id'])",
        (
            AUTOCOMMIT + "op.create_index('pk_t_pk2', 't_pk2', ['id'], unique=True, "
            "postgresql_concurrently=True, if_not_exists=True)",
            "op.execute('ALTER TABLE t_pk2 ADD CONSTRAINT pk_t_pk2 PRIMARY KEY USING INDEX "
            "pk_t_pk2')",
        ),
    ),
    Case(
        "require-concurrent-index-creation",
        "op.create_index('ix_index_n', 't_index', ['n'])",
        (
            AUTOCOMMIT + "op.create_index('ix_index_m', 't_index', ['m'], "
            "postgresql_concurrently=True, if_not_exists=True)",
        ),
    ),
    Case(
        "require-concurrent-index-deletion",
        "op.drop_index('ix_dropindex_n', table_name='t_dropindex')",
        (
            AUTOCOMMIT + "op.drop_index('ix_dropindex_m', table_name='t_dropindex', "
            "postgresql_concurrently=True, if_exists=True)",
        ),
    ),
    Case(
        "require-concurrent-reindex",
        "op.execute('REINDEX TABLE t_reindex')",
        (AUTOCOMMIT + "op.execute('REINDEX TABLE CONCURRENTLY t_reindex')",),
    ),
    Case(
        "require-concurrent-partition-detach",
        "op.execute('ALTER TABLE t_part DETACH PARTITION t_part_a')",
        (
            AUTOCOMMIT
            + "op.execute('ALTER TABLE IF EXISTS t_part DETACH PARTITION t_part_b CONCURRENTLY')",
        ),
    ),
    Case(
        "ban-vacuum-full",
        AUTOCOMMIT + "op.execute('VACUUM FULL t_vacuum')",
        (AUTOCOMMIT + "op.execute('VACUUM t_vacuum')",),
    ),
    Case(
        "ban-cluster",
        "op.execute('CLUSTER t_cluster USING t_cluster_pkey')",
        ("op.execute('ALTER TABLE t_cluster CLUSTER ON t_cluster_pkey')",),
    ),
    Case(
        "ban-lock-table",
        "op.execute('LOCK TABLE t_lock IN ACCESS EXCLUSIVE MODE')",
        ("op.execute('LOCK TABLE t_lock IN ACCESS SHARE MODE')",),
    ),
    Case(
        "backfill-in-transaction",
        "op.add_column('t_backfill', sa.Column('m', sa.Text()))\n"
        "op.execute(\"UPDATE t_backfill SET m = 'x'\")",
        (
            "op.add_column('t_backfill', sa.Column('k', sa.Text()))",
            "op.execute(\"UPDATE t_backfill SET k = 'x'\")",
        ),
    ),
    Case(
        "ban-drop-column",
        "op.drop_column('t_dropcol', 'n')",
        (
            "# migrate: allow ban-drop-column -- release 41 stopped reading and writing m\n"
            "op.drop_column('t_dropcol', 'm')",
        ),
    ),
    Case(
        "ban-drop-table",
        "op.drop_table('t_droptable')",
        (
            "op.create_table('t_scratch', " + ID + ")\nop.drop_table('t_scratch')",
            "op.drop_table('t_droptable2')  # migrate: allow ban-drop-table -- unused since 41",
        ),
    ),
    Case(
        "renaming-column",
        "op.alter_column('t_renamecol', 'n', new_column_name='k')",
        ("op.add_column('t_renamecol', sa.Column('m', sa.BigInteger()))",),
    ),
    Case(
        "renaming-table",
        "op.rename_table('t_renametable', 't_renamed')",
        ("op.execute('CREATE VIEW t_renamed_view AS SELECT id FROM t_renamed')",),
    ),
    Case(
        "renaming-enum-value",
        "op.execute(\"ALTER TYPE e_rename RENAME VALUE 'a' TO 'c'\")",
        (AUTOCOMMIT + "op.execute(\"ALTER TYPE e_rename ADD VALUE IF NOT EXISTS 'd'\")",),
    ),
    Case(
        "adding-required-field",
        "op.add_column('t_required', sa.Column('n', sa.Text(), nullable=False))",
        (
            "op.add_column('t_required', sa.Column('m', sa.Text(), server_default='x', "
            "nullable=False))",
        ),
    ),
    Case(
        "ban-drop-not-null",
        "op.alter_column('t_dropnotnull', 'n', nullable=True)",
        ("op.alter_column('t_dropnotnull', 'n', server_default='0')",),
    ),
    Case(
        "ban-truncate-cascade",
        "op.execute('TRUNCATE t_truncate CASCADE')",
        ("op.execute('TRUNCATE t_truncate')",),
    ),
    Case(
        "ban-alter-domain-with-add-constraint",
        "op.execute('ALTER DOMAIN d_positive ADD CONSTRAINT c_positive CHECK (VALUE > 0)')",
        (
            "op.execute('ALTER TABLE t_domain ADD CONSTRAINT c_small CHECK (n < 10) NOT VALID')",
            "op.execute('ALTER TABLE t_domain VALIDATE CONSTRAINT c_small')",
        ),
    ),
    Case(
        "prefer-robust-stmts",
        AUTOCOMMIT + "op.create_index('ix_robust_n', 't_robust', ['n'], "
        "postgresql_concurrently=True)",
        (
            AUTOCOMMIT + "op.create_index('ix_robust_id', 't_robust', ['id', 'n'], "
            "postgresql_concurrently=True, if_not_exists=True)",
        ),
    ),
    Case(
        "prefer-bigint-over-int",
        "op.create_table('t_int', sa.Column('id', sa.Integer(), primary_key=True))",
        ("op.create_table('t_bigint', " + ID + ")",),
    ),
    Case(
        "prefer-bigint-over-smallint",
        "op.create_table('t_small', " + ID + ", sa.Column('n', sa.SmallInteger()))",
        ("op.create_table('t_small2', " + ID + ", sa.Column('n', sa.BigInteger()))",),
    ),
    Case(
        "prefer-identity",
        "op.execute('CREATE TABLE t_serial (id bigserial PRIMARY KEY)')",
        (
            "op.execute('CREATE TABLE t_identity (id bigint GENERATED BY DEFAULT AS IDENTITY "
            "PRIMARY KEY)')",
        ),
    ),
    Case(
        "prefer-text-field",
        "op.create_table('t_varchar', " + ID + ", sa.Column('s', sa.String(10)))",
        ("op.create_table('t_text', " + ID + ", sa.Column('s', sa.Text()))",),
    ),
    Case(
        "prefer-timestamptz",
        "op.create_table('t_ts', " + ID + ", sa.Column('at', sa.DateTime()))",
        ("op.create_table('t_tstz', " + ID + ", sa.Column('at', sa.DateTime(timezone=True)))",),
    ),
    Case(
        "ban-char-field",
        "op.create_table('t_char', " + ID + ", sa.Column('c', sa.CHAR(3)))",
        ("op.create_table('t_nochar', " + ID + ", sa.Column('c', sa.Text()))",),
    ),
    Case(
        "prefer-jsonb",
        "op.create_table('t_json', " + ID + ", sa.Column('doc', sa.JSON()))",
        (
            "from sqlalchemy.dialects import postgresql\n"
            "op.create_table('t_jsonb', " + ID + ", "
            "sa.Column('doc', postgresql.JSONB()))",
        ),
    ),
    Case(
        "ban-create-domain-with-constraint",
        "op.execute('CREATE DOMAIN d_checked AS bigint CHECK (VALUE > 0)')",
        ("op.execute('CREATE DOMAIN d_plain AS bigint')",),
    ),
    Case(
        "identifier-too-long",
        "op.create_table('t_" + "x" * 70 + "', " + ID + ")",
        ("op.create_table('t_short', " + ID + ")",),
    ),
)

STATIC = (
    Case(
        "concurrently-in-transaction",
        "op.create_index('ix_c_n', 'users', ['email'], postgresql_concurrently=True, "
        "if_not_exists=True)",
        (
            AUTOCOMMIT + "op.create_index('ix_c_m', 'users', ['email'], "
            "postgresql_concurrently=True, if_not_exists=True)",
        ),
    ),
    Case(
        "enum-value-used-in-transaction",
        "op.execute(\"ALTER TYPE user_status ADD VALUE 'banned'\")\n"
        "op.execute(\"UPDATE users SET status = 'banned' WHERE email LIKE '%@spam.example'\")",
        (
            AUTOCOMMIT + "op.execute(\"ALTER TYPE user_status ADD VALUE IF NOT EXISTS 'gone'\")",
            "op.execute(\"UPDATE users SET status = 'gone' WHERE email LIKE '%@old.example'\")",
        ),
    ),
    Case(
        "transaction-nesting",
        "op.execute('COMMIT')\nop.execute('CREATE TABLE t_nest (id bigint PRIMARY KEY)')",
        (AUTOCOMMIT + "op.execute('CREATE TABLE IF NOT EXISTS t_nest2 (id bigint PRIMARY KEY)')",),
    ),
    Case(
        "session-setting",
        "op.execute('SET lock_timeout = 0')\nop.execute('SELECT 1')",
        ("op.execute(\"SET LOCAL lock_timeout = '30s'\")\nop.execute('SELECT 1')",),
    ),
    Case(
        "ban-drop-database",
        "op.execute('DROP DATABASE IF EXISTS scratch')",
        ("op.execute('SELECT 1')",),
    ),
    Case(
        "syntax-error",
        "op.execute('ALTER TABLE users ADD COLUM nickname text')",
        ("op.execute('ALTER TABLE users ADD COLUMN nickname text')",),
    ),
    Case(
        "unrenderable",
        "count = op.get_bind().execute(sa.text('SELECT count(*) FROM users')).scalar()\n"
        "op.execute(f'SELECT {count}')",
        ("op.execute('SELECT count(*) FROM users')",),
    ),
    Case(
        "silence",
        "op.drop_column('users', 'display_name')  # migrate: allow ban-drop-column\n"
        "op.drop_column('users', 'email')  # migrate: allow ban-drop-colum -- gone in 40",
        (
            "op.drop_column('users', 'preferences')  # migrate: allow ban-drop-column -- "
            "unused since release 40",
        ),
    ),
)
