"""Drop and recreate the staging and star tables (and, locally, load_rejects).

Everything in the warehouse's Sparkify tables is lost; run etl.py afterwards.

example:
  python create_tables.py --config dwh.cfg
"""

import logging
import sys

import sql_queries
from sparkify import cli, warehouse
from sparkify.config import load_config
from sparkify.output import mask_secrets

log = logging.getLogger("sparkify")


def drop_tables(cursor, engine):
    for table in reversed(sql_queries.tables_for(engine)):
        warehouse.timed_execute(cursor, sql_queries.drop_table_sql(table))


def create_tables(cursor, engine):
    for table in sql_queries.tables_for(engine):
        _, seconds = warehouse.timed_execute(cursor, sql_queries.create_table_sql(table, engine))
        log.info("created %-15s (%.2f s)", table.name, seconds)


def recreate(args):
    config = load_config(args.config)
    mask_secrets(config.secrets())
    conn = warehouse.connect(config)
    try:
        with warehouse.database_errors_as("recreating the tables"), warehouse.transaction(conn) as cur:
            warehouse.acquire_run_lock(cur, config.target, config.lock_timeout_seconds)
            drop_tables(cur, config.target)
            create_tables(cur, config.target)
    finally:
        conn.close()
    log.info("%d tables ready on the %s warehouse", len(sql_queries.tables_for(config.target)), config.target)


def main(argv=None):
    args, exit_code = cli.parse(cli.parser_for(__doc__), argv)
    if args is None:
        return exit_code
    return cli.run(recreate, args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
