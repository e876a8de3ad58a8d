"""Drop and recreate the staging and star tables, the kept song records, load_rejects
and the ledger of loaded files; the history of runs (etl_runs) is kept.

Everything loaded is lost; run etl.py afterwards, and it loads every file again. Run it
as the loader: the user the config connects as owns the tables. It grants [ROLES]
ANALYSTS SELECT on the star tables of ANALYST_TABLES, and OPERATORS SELECT on the star,
etl_runs, file_retractions, load_rejects and loaded_files (README "Who can do what").

examples:
  python create_tables.py --config dwh.cfg
  python create_tables.py --config dwh.cfg --dry-run     # the SQL, nothing run
  python create_tables.py --config dwh.cfg --quiet       # only warnings and errors
  python create_tables.py --config dwh.cfg --verbose     # also each SQL statement
"""

import logging
import sys

import sql_queries
from sparkify import cli, warehouse
from sparkify.config import load_config
from sparkify.output import mask_secrets, masked

log = logging.getLogger("sparkify")


def table_statements(engine):
    """(what, SQL): drop every table, then create them all."""
    tables = sql_queries.ALL_TABLES
    return [
        *((f"dropped {t.name}", sql_queries.drop_table_sql(t)) for t in reversed(tables)),
        # Indexes are built by the run that first fills their table (sql_queries.indexes).
        *((f"created {t.name}", sql_queries.create_table_sql(t, engine)) for t in tables),
        # The history of runs outlives a reset.
        (f"kept {sql_queries.ETL_RUNS.name}", sql_queries.create_table_sql(sql_queries.ETL_RUNS, engine)),
    ]


def grant_statements(config):
    """(what, SQL): who may read which table, from [ROLES]."""
    return sql_queries.table_grants(config.engine, config.analysts, config.operators, config.analyst_tables)


def planned_statements(config):
    """(what, SQL) for every statement create_tables.py sends, in order (--dry-run). On
    Redshift the lock's table is created first, in a transaction of its own, so that the
    transaction that drops and creates begins with LOCK, as etl.py's does."""
    engine = config.engine
    before = [] if engine.advisory_lock else sql_queries.redshift_preparation_steps(read_clock=False)
    lock = [
        ("take the run lock", sql)
        for sql in sql_queries.run_lock_statements(engine, config.lock_timeout_seconds)
    ]
    return [
        *before,
        *lock,
        *table_statements(engine),
        *grant_statements(config),
        ("all or nothing", sql_queries.COMMIT),
    ]


def drop_and_create(cursor, config):
    for what, sql in table_statements(config.engine):
        _, seconds = warehouse.timed_execute(cursor, sql)
        log.info("%-23s (%.2f s)", what, seconds)
    for _, sql in grant_statements(config):
        cursor.execute(sql)
    log.info("%s may read: %s", config.analysts, ", ".join(config.analyst_tables))
    log.info("%s may read: %s", config.operators, ", ".join(t.name for t in sql_queries.OPERATOR_TABLES))


def recreate(args):
    config = load_config(args.config)
    mask_secrets(config.secrets())
    if args.dry_run:
        for what, sql in planned_statements(config):
            print(masked(f"-- {what}\n{sql.strip()};\n"))
        return
    conn = warehouse.connect(config)
    try:
        if not config.engine.advisory_lock:  # the lock's table, in a transaction of its own
            warehouse.prepare_redshift_run(conn)
        with warehouse.database_errors_as("recreating the tables"), warehouse.transaction(conn) as cur:
            warehouse.acquire_run_lock(cur, config.engine, config.lock_timeout_seconds)
            drop_and_create(cur, config)
    finally:
        conn.close()
    log.info("%d tables ready on the %s warehouse", len(sql_queries.ALL_TABLES) + 1, config.target)


def build_parser():
    parser = cli.parser_for(__doc__)
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print every SQL statement it would send, in order; touch nothing",
    )
    return parser


def main(argv=None):
    args, exit_code = cli.parse(build_parser(), argv)
    if args is None:
        return exit_code
    return cli.run(recreate, args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
