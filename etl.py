"""Load the song and log data into staging, then merge it into the star schema.

The whole run is one transaction: staging is refreshed, the star tables take what is
new, the data quality checks run, and only then is anything committed. A run that finds
no new or changed file stages nothing, so it runs no transform and no checks. A run that
fails or is killed leaves every table as it was. Re-running is safe: star inserts skip
rows already there.

examples:
  python etl.py --config dwh.cfg
  python etl.py --config dwh.cfg --from 2018-11-05 --to 2018-11-05   # one day's log
  python etl.py --config dwh.cfg --full-refresh                      # stage every file again
  python etl.py --config dwh.cfg --allow-retract                     # many files gone, on purpose
  python etl.py --config dwh.cfg --check-only                        # checks, no load
  python etl.py --config dwh.cfg --history --format json --limit 5   # the latest 5 runs
  python etl.py --config dwh.cfg --status                            # the source against the warehouse
  python etl.py --config dwh.cfg --dry-run                           # the SQL, nothing run
  python etl.py --config dwh.cfg --quiet                             # only warnings and errors
  python etl.py --config dwh.cfg --verbose                           # also each SQL statement
"""

import logging
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, date, datetime
from typing import NamedTuple

import psycopg2.extras

import sql_queries
from sparkify import checks, cli, history, local_load, redshift_load, status, transform, warehouse
from sparkify.config import load_config
from sparkify.datasets import CATALOGUE, DATASETS
from sparkify.errors import DataError, UsageError
from sparkify.output import mask_secrets, masked, table, timed
from sparkify.rejects import RejectSink
from sparkify.warehouse import first_line

log = logging.getLogger("sparkify")


def parse_day(text):
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{text!r} is not a date; use YYYY-MM-DD, for example 2018-11-05") from None


def date_window(args):
    first = parse_day(args.first_day) if args.first_day else None
    last = parse_day(args.last_day) if args.last_day else None
    if first and last and first > last:
        raise UsageError(f"--from {first} is after --to {last}")
    return first, last


# --- The run ---------------------------------------------------------------------------------


class RunReport(NamedTuple):
    run_id: str
    rows_before: dict
    rows_after: dict
    seconds_by_phase: dict
    staging: dict  # dataset name -> Counters (local) or redshift_load.StagingResult


class Run(NamedTuple):
    run_id: str
    rejects: RejectSink
    full_refresh: bool  # stage every file again, whatever the ledger says
    allow_retract: bool  # take back files gone from the source, however many


def new_run_id():
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S-") + uuid.uuid4().hex[:6]


def loader_for(engine):
    """The staging loader: local folders through COPY … FROM STDIN, or COPY from S3."""
    return local_load if engine.reads_local_folders else redshift_load


def load(conn, config, window, full_refresh=False, allow_retract=False):
    """Lock, stage, transform and check in one transaction; returns a RunReport."""
    run_id = new_run_id()
    rejects = RejectSink(run_id, datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"))
    run = Run(run_id, rejects, full_refresh, allow_retract)
    loader = loader_for(config.engine)
    seconds, staging, prepared, started_at = {}, {}, None, history.now()
    try:
        prepared = loader.prepare(conn, config, window)
        with (
            loader.explained_failures(conn, config, prepared, run.rejects),
            warehouse.database_errors_as("the load"),
            warehouse.transaction(conn) as cur,
        ):
            warehouse.acquire_run_lock(cur, config.engine, config.lock_timeout_seconds)
            warehouse.require_current_tables(cur, config.engine)
            before = warehouse.count_rows(cur, sql_queries.STAR_TABLES)
            staging, selections = loader.stage(cur, config, prepared, run, seconds)
            enforce_max_errors(run.rejects, config.max_errors)
            record_retractions(cur, run_id, selections)
            after = transform_and_check(cur, config, before, staging, selections, seconds)
            added = checks.rows_added(before, after)
            history.record(cur, history.run_row(run, config, window, started_at, staging, added, seconds))
            commit_started = time.perf_counter()
        seconds["commit"] = time.perf_counter() - commit_started
    except BaseException as error:
        failed = history.run_row(run, config, window, started_at, staging, {}, seconds, first_line(error))
        save_failed_run(conn, failed)
        raise
    finally:
        save_rejects(conn, run.rejects, run_id, config.engine)
        if prepared is not None:
            loader.finish(prepared, config, run_id)
    log.info("committed run %s\n%s", run_id, summary(before, after))
    return RunReport(run_id, before, after, seconds, staging)


def transform_and_check(cursor, config, before, staging, selections, seconds):
    """Take back what changed and gone files brought, merge what was staged into the
    star tables and check the result; returns the star tables' row counts after it. A
    run that staged no file and found none gone changes no star table: every transform
    statement reads staging, and every check of this run's rows finds none."""
    retracted = [
        file
        for dataset in DATASETS
        if dataset.staging.source_column
        for file, _ in selections[dataset.name].retracted()
    ]
    if all(result.files == 0 for result in staging.values()) and not retracted:
        log.info("nothing new to load: no transform, no checks (etl.py --check-only runs them)")
        return before
    with timed(seconds, "transform"):
        song_files = staging[CATALOGUE.name].files
        every_song_file = selections[CATALOGUE.name].whole
        plays_window = transform.transform(
            cursor, config.engine, before, song_files, every_song_file, retracted
        )
        transform.build_missing_indexes(cursor, config.engine)
    with timed(seconds, "checks"):
        after = warehouse.count_rows(cursor, sql_queries.STAR_TABLES)
        checks.check_quality(cursor, config, checks.check_scope(before, after), plays_window)
    return after


def record_retractions(cursor, run_id, selections):
    """Say which files the run takes back, and keep them in file_retractions: changed and
    gone files (and log files staged again, whose rows are taken back and derived anew)."""
    rows = [
        (run_id, dataset.name, file, change)
        for dataset in DATASETS
        for file, change in selections[dataset.name].retracted(every_file=bool(dataset.staging.source_column))
    ]
    for dataset in DATASETS:
        changes = Counter(change for _, name, _, change in rows if name == dataset.name)
        if changes:
            said = ", ".join(f"{count} {change}" for change, count in sorted(changes.items()))
            log.info("%-15s taking back %s files (%s)", dataset.name, sum(changes.values()), said)
    if rows:
        psycopg2.extras.execute_values(cursor, sql_queries.FILE_RETRACTIONS_INSERT, rows, page_size=500)


def enforce_max_errors(rejects, max_errors):
    for line in rejects.first:
        log.warning("rejected %s", line)
    if rejects.count > max_errors:
        raise DataError(
            f"{rejects.count} records rejected, more than [ETL] MAXERROR = {max_errors}; "
            "nothing was committed. See the lines above and the load_rejects table."
        )


def save_failed_run(conn, row):
    """A failed run's row in etl_runs, written after the rollback, as its rejects are."""
    if conn.closed:
        return
    try:
        with warehouse.transaction(conn) as cur:
            history.record(cur, row)
    except Exception as error:  # noqa: BLE001 - the run's own error matters more
        log.warning("could not record the failed run in etl_runs: %s", first_line(error))


def save_rejects(conn, rejects, run_id, engine):
    """Rejects are kept even when the run rolled back: they explain why."""
    if rejects.count and not conn.closed:
        try:
            with warehouse.transaction(conn) as cur:
                rejects.copy_into(cur, engine)
            log.info("%d rejected records saved in load_rejects (run_id = '%s')", rejects.count, run_id)
        except Exception as error:  # noqa: BLE001 - the run's own error matters more
            log.warning("could not save the rejected records: %s", error)
    rejects.close()


def summary(before, after):
    rows = [(name, before[name], after[name], after[name] - before[name]) for name in after]
    return table(rows, ("table", "rows before", "rows after", "added"))


# --- What the run would send ------------------------------------------------------------------


def planned_statements(config, window):
    """(what, SQL) for every statement a run sends, in order; --dry-run prints them. Each
    part is the plan its module runs from."""
    engine, loader = config.engine, loader_for(config.engine)
    steps = loader.planned_preparation()
    steps += [
        ("take the run lock", sql)
        for sql in sql_queries.run_lock_statements(engine, config.lock_timeout_seconds)
    ]
    steps += [
        ("every table and column this version uses is there", sql)
        for sql in sql_queries.table_probes(sql_queries.tables_probed_in_the_run(engine))
    ]
    steps += loader.planned_statements(config, window)
    steps += transform.planned_statements(engine)
    steps += checks.planned_statements(config)
    return [*steps, ("all or nothing", sql_queries.COMMIT)]


def print_plan(steps):
    for what, sql in steps:
        print(masked(f"-- {what}\n{sql.strip()};\n"))


def print_history(conn, output_format, limit):
    with warehouse.database_errors_as("reading etl_runs"), warehouse.transaction(conn) as cur:
        runs = history.latest(cur, limit)
    print(history.as_json(runs) if output_format == "json" else history.as_table(runs))


def print_status(conn, config):
    with warehouse.database_errors_as("reading the ledger"), warehouse.transaction(conn) as cur:
        print(status.status(cur, config))


def check_only(conn, config):
    with warehouse.database_errors_as("the checks"), warehouse.transaction(conn) as cur:
        checks.check_quality(cur, config)


def run_etl(args):
    window = date_window(args)
    config = load_config(args.config)
    mask_secrets(config.secrets())
    if args.dry_run:
        print_plan(planned_statements(config, window))
        return
    conn = warehouse.connect(config)
    try:
        if args.history:
            print_history(conn, args.format, args.limit)
        elif args.status:
            print_status(conn, config)
        elif args.check_only:
            check_only(conn, config)
        else:
            load(conn, config, window, full_refresh=args.full_refresh, allow_retract=args.allow_retract)
    finally:
        conn.close()


def build_parser():
    parser = cli.parser_for(__doc__)
    parser.add_argument(
        "--from",
        dest="first_day",
        metavar="YYYY-MM-DD",
        help="load only log files of this day or later (the date in the file name)",
    )
    parser.add_argument(
        "--to", dest="last_day", metavar="YYYY-MM-DD", help="load only log files of this day or earlier"
    )
    parser.add_argument(
        "--full-refresh",
        action="store_true",
        help="stage every file again, even those the ledger (loaded_files) holds; the star "
        "tables are kept and merged as on any run",
    )
    parser.add_argument(
        "--allow-retract",
        action="store_true",
        help="take back every file gone from the source, even more than [ETL] "
        "RETRACT_LIMIT_PERCENT of a dataset's loaded files",
    )
    parser.add_argument(
        "--history", action="store_true", help="print the latest runs from etl_runs; load nothing"
    )
    parser.add_argument(
        "--status",
        action="store_true",
        help="compare the source with the ledger (new, changed and gone files), the latest "
        "play, days missing, the last runs; load nothing",
    )
    parser.add_argument(
        "--format", choices=("table", "json"), default="table", help="--history as a table or as JSON"
    )
    parser.add_argument(
        "--limit",
        type=cli.positive_int,
        default=20,
        metavar="N",
        help="--history: the latest N runs (default 20)",
    )
    parser.add_argument(
        "--check-only",
        action="store_true",
        help="run the data quality checks on the star tables; load nothing",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print every SQL statement a run would send, in order; touch nothing",
    )
    return parser


def main(argv=None):
    args, exit_code = cli.parse(build_parser(), argv)
    if args is None:
        return exit_code
    return cli.run(run_etl, args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
