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
  python etl.py --config dwh.cfg --check-only                        # checks, no load
  python etl.py --config dwh.cfg --history --format json --limit 5   # the latest 5 runs
  python etl.py --config dwh.cfg --dry-run                           # the SQL, nothing run
  python etl.py --config dwh.cfg --quiet                             # only warnings and errors
  python etl.py --config dwh.cfg --verbose                           # also each SQL statement
"""

import logging
import os
import sys
import time
import uuid
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import NamedTuple

import sql_queries
from sparkify import cli, history, ledger, redshift, redshift_load, warehouse
from sparkify.checks import all_checks, run_checks
from sparkify.config import load_config
from sparkify.errors import ChecksFailed, DatabaseError, DataError, UsageError
from sparkify.jsonfiles import list_data_files
from sparkify.output import mask_secrets, masked, table
from sparkify.redshift import CopyFailed
from sparkify.s3source import local_sources
from sparkify.staging import RejectSink, mixes_notations, read_jsonpaths, stage_dataset, staging_columns
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


# --- Staging -------------------------------------------------------------------------------


@contextmanager
def timed(seconds_by_phase, phase):
    """Adds the block's wall-clock seconds to seconds_by_phase[phase]; yields a reader."""
    started = time.perf_counter()
    yield lambda: seconds_by_phase[phase]
    seconds_by_phase[phase] = seconds_by_phase.get(phase, 0.0) + time.perf_counter() - started


class LocalDataset(NamedTuple):
    name: str  # song_data | log_data
    table: object  # sql_queries.Table
    root: str
    columns: list
    window: tuple | None  # only the log is loaded by date


def local_datasets(sources, window):
    """The two local datasets, songs first (new songs join the catalogue before plays are
    matched against it).
    sources: {SONG_DATA, LOG_DATA, LOG_JSONPATH: local path}."""
    paths = read_jsonpaths(sources["LOG_JSONPATH"])
    if mixes_notations(paths):
        log.warning("%-15s   the JSONPaths file mixes bracket and dot notation; Redshift refuses it", "")
    event_columns = staging_columns(sql_queries.STAGING_EVENTS, paths)
    song_columns = staging_columns(sql_queries.STAGING_SONGS)
    return (
        LocalDataset("song_data", sql_queries.STAGING_SONGS, sources["SONG_DATA"], song_columns, None),
        LocalDataset("log_data", sql_queries.STAGING_EVENTS, sources["LOG_DATA"], event_columns, window),
    )


def stage_local(cursor, config, window, run, seconds_by_phase):
    """Refresh both staging tables from local folders (s3:// sources are downloaded
    first) with the files the ledger does not hold yet; returns ({dataset: Counters},
    whether every song file was staged)."""
    results, whole = {}, {}
    with local_sources(config, window) as sources:
        for dataset in local_datasets(sources, window):
            with timed(seconds_by_phase, f"stage {dataset.table.name}") as elapsed:
                cursor.execute(sql_queries.empty_staging_sql(dataset.table, config.engine))
                choose = LedgerChoice(cursor, dataset, run.full_refresh)
                counters = stage_dataset(
                    cursor,
                    dataset.name,
                    dataset.table,
                    dataset.root,
                    dataset.columns,
                    dataset.window,
                    config.repair_mojibake,
                    run.rejects,
                    workers=os.cpu_count() or 1,
                    choose=choose,
                )
                ledger.record(
                    cursor,
                    config.engine,
                    (
                        (dataset.name, *choose.identity(item), run.run_id, counters.records.get(item[0], 0))
                        for item in choose.selection.staged
                    ),
                    replacing=choose.selection.replaces,
                )
            report_staging(dataset.name, dataset.table, counters, elapsed())
            report_selection(choose.selection)
            results[dataset.name] = counters
            whole[dataset.name] = choose.selection.whole
    return results, whole["song_data"]


class LedgerChoice:
    """choose(listing) -> the files to stage; remembers the ledger's Selection and each
    file's identity (path in the folder, size, mtime) for the ledger's new rows."""

    def __init__(self, cursor, dataset, full_refresh):
        self.known = ledger.loaded_versions(cursor, dataset.name)
        self.dataset_name, self.root, self.full_refresh = dataset.name, dataset.root, full_refresh
        self.selection = self.identity = None

    def __call__(self, listing):
        self.identity = local_identity(self.root, listing)
        self.selection = ledger.select(
            listing.files,
            self.identity,
            self.known,
            self.full_refresh,
            whole_if_changed=self.dataset_name == "song_data",
        )
        return self.selection.staged


def local_identity(root, listing):
    """item (path, size) -> (file relative to the dataset's folder, size, mtime in ns)."""
    base = os.path.join(root if os.path.isdir(root) else os.path.dirname(root), "")

    def identity(item):
        path, size = item  # listed under root: the relative path is what follows base
        return path[len(base) :], size, str(listing.modified[path])

    return identity


def report_selection(selection):
    """How many files were new, changed and loaded before: skipped, or staged again
    (--full-refresh; a Redshift COPY from a prefix, which reads them all; a changed
    song file, after which the whole catalogue is staged)."""
    log.info(
        "%-15s   %d new files, %d changed, %d already loaded (%s)",
        "",
        selection.new,
        selection.changed,
        selection.already_loaded,
        "staged again" if selection.whole and selection.already_loaded else "skipped",
    )


# What the local loader accepts that Redshift's COPY would load differently or refuse,
# so that a local run predicts production (README: "Local and Redshift").
REDSHIFT_DIFFERENCES = (
    ("repaired", "text values repaired (double-encoded UTF-8); Redshift loads them as they are"),
    ("nul_removed", "text values with NUL characters removed; Redshift's COPY reads NUL as a record's end"),
    (
        "decimal_integers",
        "whole numbers written with a decimal point (7.0); not documented to load on Redshift",
    ),
)


def report_redshift_differences(counters):
    for name, what in REDSHIFT_DIFFERENCES:
        count = getattr(counters, name)
        if count:
            log.info("%-15s   %d %s", "", count, what)


def report_staging(dataset, staging_table, counters, seconds):
    log.info(
        "%-15s %d files, %d records read, %d loaded, %d rejected (%.2f s)",
        staging_table.name,
        counters.files,
        counters.read,
        counters.loaded,
        counters.rejected,
        seconds,
    )
    notes = [
        (counters.truncated, "text values truncated to the column width"),
        (counters.empty_files, "files held no records"),
        (counters.outside_window, "files outside --from/--to skipped"),
        (
            len(counters.ignored),
            "files ignored (not .json or .json.gz): "
            + ", ".join(os.path.basename(p) for p in counters.ignored[:5]),
        ),
    ]
    for count, what in notes:
        if count:
            log.info("%-15s   %d %s", "", count, what)
    report_redshift_differences(counters)
    if not counters.listing.files:
        log.warning("%s: no data files found", dataset)


class RedshiftRun(NamedTuple):
    """What a Redshift run prepares before its transaction."""

    client: object  # boto3 S3 client
    listings: dict  # dataset -> redshift.DataKeys: the data files under each folder
    since: object  # the server's clock at the start: load errors are read from then on
    copies: list  # the COPYs the run sent (filled in its transaction), to file load errors


def prepare_redshift(conn, config, window):
    """List S3, make sure the lock's table exists (committed on its own, so the run's
    transaction can begin with LOCK) and note the server's clock."""
    client = redshift_load.s3_client(config)
    listings = redshift_load.list_sources(client, config, window)
    probes = sql_queries.table_probes(sql_queries.WRITTEN_OUTSIDE_THE_LOCK)
    since = warehouse.prepare_redshift_run(conn, read_clock=True, probes=probes)
    return RedshiftRun(client, listings, since, [])


def stage_redshift(cursor, config, prepared, run, seconds_by_phase):
    """Inside the run's transaction, after the lock: the ledger picks the new and changed
    keys, their manifests are written, and the COPYs run. Returns ({dataset:
    StagingResult}, whether every song file was staged)."""
    with timed(seconds_by_phase, "stage") as elapsed:
        selections = redshift_load.select_new(cursor, config, prepared.listings, run.full_refresh)
        listings = {name: prepared.listings[name]._replace(files=s.staged) for name, s in selections.items()}
        copies = redshift.plan_copies(config, listings, run.run_id)
        prepared.copies[:] = copies
        redshift_load.write_sources(prepared.client, copies)
        results = redshift_load.stage(cursor, config, copies, prepared.since, run.rejects)
        replacing = any(selection.replaces for selection in selections.values())
        redshift_load.record_in_ledger(cursor, listings, run.run_id, replacing)
    for dataset, staging_table in (
        ("song_data", sql_queries.STAGING_SONGS),
        ("log_data", sql_queries.STAGING_EVENTS),
    ):
        result = results[dataset]
        log.info(
            "%-15s %d files in %d COPY, %d records read, %d loaded, %d rejected",
            staging_table.name,
            result.files,
            result.copies,
            result.loaded + result.rejected,
            result.loaded,
            result.rejected,
        )
        redshift_load.report_listing(dataset, prepared.listings[dataset])
        report_selection(selections[dataset])
    log.info("%-15s %.2f s for the COPYs and their load errors", "staging", elapsed())
    return results, selections["song_data"].whole


# --- Transform and checks ---------------------------------------------------------------------


# A tenth of a star table (what it held before the run) decides two things, each on its
# own number:
# - statistics (PostgreSQL): a table is analysed right after an insert that wrote more
#   than this share of it. Rows written: the users a load refreshes (deleted, then
#   inserted again) change the statistics as new rows do, and autovacuum counts them too
#   when it analyses smaller changes later. Redshift analyses on its own.
# - the checks' scope: whole tables after a run that added more than this share of some
#   table (a first load): reading a table most of whose rows are new is cheaper than
#   finding them, and checks the same rows and more. Rows added: rows new to the table.
#   Rows rewritten in place (refreshed users, changed songs, plays matched again) are no
#   growth, and the run's scope reads them anyway.
LARGE_RUN_SHARE = 0.1


def is_large_share(rows, rows_before):
    """More than LARGE_RUN_SHARE of a table that held rows_before (any row, if empty)."""
    return rows > LARGE_RUN_SHARE * rows_before


def step_message(table_name, verb):
    """The log line of one transform statement: what it did to its table (None for DROP
    and ANALYZE: nothing to say)."""
    return {
        "INSERT": "%-15s +%d rows (%.2f s)",
        "CREATE": "%-15s %d rows (%.2f s)",
        "UPDATE": (
            "%-15s %d plays matched again (%.2f s)"
            if table_name == "songplays"
            else "%-15s %d rows changed by new records (%.2f s)"
        ),
        "DELETE": (
            "%-15s %d rows to refresh from newer events (%.2f s)"
            if table_name == "users"
            else "%-15s %d rows replaced (%.2f s)"
        ),
    }.get(verb)


def transform(cursor, engine, rows_before, song_files=0, whole_catalogue=False):
    """Merge staging into the star tables, saying what each statement did; returns the
    window of this run's plays (first and last), within which the checks read songplays
    and time. song_files: how many song files the run staged; whole_catalogue: it staged
    every one, so their records replace the kept ones. The catalogue's statements run
    only when song files were staged, and plays are matched again only when they changed
    a song (sql_queries.CATALOGUE_STEPS): a daily run without song files sends neither.

    PostgreSQL analyses a star table right after an insert that wrote more than
    LARGE_RUN_SHARE of it, so that the statements after it plan on its real size:
    unanalysed, the 98,000 songs of a first load were planned as 8,000, and matching the
    plays to them took a merge join, ~0.7 s slower (bench data)."""
    plays_window = read_plays_window(cursor)
    songs_changed = False
    if song_files:
        run_steps(cursor, engine, rows_before, sql_queries.catalogue_steps(engine, whole_catalogue))
        songs_changed = count_of(cursor, sql_queries.SONG_CHANGES_COUNT) > 0
    rematch = sql_queries.REMATCH_STEPS if songs_changed else sql_queries.NO_REMATCH_STEPS
    plays = sql_queries.for_engine(rematch + sql_queries.PLAY_STEPS, engine)
    run_steps(cursor, engine, rows_before, plays, plays_window)
    return plays_window


def read_plays_window(cursor):
    """{first_play, last_play}: the times of the first and last play this run staged."""
    cursor.execute(sql_queries.PLAYS_WINDOW_SQL)
    return dict(zip(sql_queries.PLAYS_WINDOW, cursor.fetchone(), strict=True))


def count_of(cursor, count_sql):
    cursor.execute(count_sql)
    return cursor.fetchone()[0]


def run_steps(cursor, engine, rows_before, steps, plays_window=None):
    """Run transform steps, logging each; a statement that reads songplays or time gets
    the plays window as its parameters."""
    for table_name, sql in steps:
        parameters = plays_window if sql_queries.uses_plays_window(sql) else None
        rows_written, seconds = warehouse.timed_execute(cursor, sql, parameters)
        message = step_message(table_name, statement_verb(sql))
        if message:
            log.info(message, table_name, rows_written, seconds)  # -1 where Redshift says no count
        star_table = star_table_inserted(table_name, sql)
        # PostgreSQL only, which always reports an INSERT's row count (Redshift analyses
        # on its own, and need not report counts: decisions there count rows explicitly).
        if engine.explicit_analyze and star_table and is_large_share(rows_written, rows_before[table_name]):
            _, seconds = warehouse.timed_execute(cursor, sql_queries.analyze_sql(star_table))
            log.debug("%-15s analyzed (%.2f s)", table_name, seconds)


def statement_verb(sql):
    return sql.split(None, 1)[0].upper()


def star_table_inserted(table_name, sql):
    """The star table a transform statement inserts into, if it does."""
    if statement_verb(sql) != "INSERT":
        return None
    return next((star for star in sql_queries.STAR_TABLES if star.name == table_name), None)


def build_missing_indexes(cursor, engine):
    """PostgreSQL: build the indexes a fresh warehouse lacks on the tables that now hold
    rows (sql_queries.indexes says why only then); a table still empty (a first run that
    brought only song files leaves songplays empty) waits for the run that fills it."""
    wanted = {index.name: index for index in sql_queries.indexes(engine)}
    cursor.execute(sql_queries.MISSING_INDEXES_SQL, (list(wanted),))
    for (name,) in cursor.fetchall():
        index = wanted[name]
        cursor.execute(sql_queries.has_rows_sql(index.table))
        if not cursor.fetchone()[0]:
            continue
        _, seconds = warehouse.timed_execute(cursor, index.create_sql)
        log.info("%-15s indexed (%s) (%.2f s)", index.table, ", ".join(index.columns), seconds)


def rows_added(rows_before, rows_after):
    """Rows new to each star table. A user the run refreshed was deleted and inserted
    again: written, not added."""
    return {name: rows_after[name] - rows_before[name] for name in rows_after}


def check_scope(rows_before, rows_after):
    """This run's rows, unless it added more than LARGE_RUN_SHARE of some star table
    (a first load): then whole tables."""
    added = rows_added(rows_before, rows_after)
    large = any(is_large_share(added[name], rows_before[name]) for name in added)
    return sql_queries.WHOLE_TABLES if large else sql_queries.THIS_RUN


def check_quality(cursor, config, scope=sql_queries.WHOLE_TABLES, plays_window=None):
    results = run_checks(cursor, all_checks(config, scope, plays_window), config.engine)
    failed = [result for result in results if not result.passed]
    for result in failed:
        log.error("check failed: %s: expected %s, found %s", result.name, result.expected, result.found)
    log.info("checks: %d passed, %d failed (%s)", len(results) - len(failed), len(failed), scope)
    if failed:
        raise ChecksFailed(
            f"{len(failed)} data quality check(s) failed: " + "; ".join(r.name for r in failed)
        )
    return results


# --- The run ---------------------------------------------------------------------------------


class RunReport(NamedTuple):
    run_id: str
    rows_before: dict
    rows_after: dict
    seconds_by_phase: dict
    staging: dict  # dataset -> Counters (local) or redshift_load.StagingResult


def new_run_id():
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S-") + uuid.uuid4().hex[:6]


class Run(NamedTuple):
    run_id: str
    rejects: RejectSink
    full_refresh: bool  # stage every file again, whatever the ledger says


def load(conn, config, window, full_refresh=False):
    """Stage, transform and check in one transaction; returns a RunReport."""
    run_id = new_run_id()
    rejects = RejectSink(run_id, datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"))
    run = Run(run_id, rejects, full_refresh)
    seconds, staging, prepared, started_at = {}, {}, None, history.now()
    try:
        if not config.engine.reads_local_folders:
            prepared = prepare_redshift(conn, config, window)
        with (
            explained_copy_failures(conn, config, prepared, rejects),
            warehouse.database_errors_as("the load"),
            warehouse.transaction(conn) as cur,
        ):
            warehouse.acquire_run_lock(cur, config.engine, config.lock_timeout_seconds)
            warehouse.require_current_tables(cur, config.engine)
            before = warehouse.count_rows(cur, sql_queries.STAR_TABLES)
            if config.engine.reads_local_folders:
                for setting in sql_queries.POSTGRES_RUN_SETTINGS:
                    cur.execute(setting)
                staging, whole_catalogue = stage_local(cur, config, window, run, seconds)
            else:
                staging, whole_catalogue = stage_redshift(cur, config, prepared, run, seconds)
            enforce_max_errors(rejects, config.max_errors)
            if staged_no_file(staging):
                log.info("nothing new to load: no transform, no checks (etl.py --check-only runs them)")
                after = before
            else:
                with timed(seconds, "transform"):
                    song_files = staging["song_data"].files
                    plays_window = transform(cur, config.engine, before, song_files, whole_catalogue)
                    if config.engine.indexes:
                        build_missing_indexes(cur, config.engine)
                with timed(seconds, "checks"):
                    after = warehouse.count_rows(cur, sql_queries.STAR_TABLES)
                    check_quality(cur, config, check_scope(before, after), plays_window)
            added = rows_added(before, after)
            history.record(cur, history.run_row(run, config, window, started_at, staging, added, seconds))
            commit_started = time.perf_counter()
        seconds["commit"] = time.perf_counter() - commit_started
    except BaseException as error:
        failed = history.run_row(run, config, window, started_at, staging, {}, seconds, first_line(error))
        save_failed_run(conn, failed)
        raise
    finally:
        save_rejects(conn, rejects, run_id, config.engine)
        if prepared:
            redshift_load.remove_sources(prepared.client, config, run_id)
    log.info("committed run %s\n%s", run_id, summary(before, after))
    return RunReport(run_id, before, after, seconds, staging)


@contextmanager
def explained_copy_failures(conn, config, prepared, rejects):
    """A failed Redshift COPY becomes an error listing its load errors (file, line, column,
    code, reason, value), read after the run's transaction has rolled back; they are
    saved with the run's rejects. If they cannot be read, the COPY's own error still
    reaches the user."""
    try:
        yield
    except CopyFailed as failure:
        try:
            with warehouse.database_errors_as("reading the load errors"), warehouse.transaction(conn) as cur:
                errors = redshift.load_errors(cur, redshift.is_serverless(config), prepared.since)
            redshift_load.record_load_errors(errors, prepared.copies, rejects)
            report = "".join(f"\n  {error.describe()}" for error in errors[:10])
        except DatabaseError as error:
            report = f"\n  ({error})"
        raise DatabaseError(
            f"COPY into {failure.table} failed: {failure.reason}; nothing was committed{report}"
        ) from None


def staged_no_file(staging):
    """Did the ledger leave nothing to stage? Then the star tables cannot change: every
    transform statement reads staging, and every check of this run's rows finds none."""
    return all(result.files == 0 for result in staging.values())


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


# What --dry-run says of the checks' scope: it shows the run scope's SQL (check_scope).
CHECK_SCOPE_PLANNED = "this run's rows; whole tables if it added more than a tenth of a star table"


def planned_statements(config, window):
    """(what, SQL) for every statement a run sends, in order; --dry-run prints them."""
    engine = config.engine
    steps = (
        []
        if engine.reads_local_folders
        else sql_queries.redshift_preparation_steps(
            read_clock=True, probes=sql_queries.table_probes(sql_queries.WRITTEN_OUTSIDE_THE_LOCK)
        )
    )
    steps += [
        ("take the run lock", sql)
        for sql in sql_queries.run_lock_statements(engine, config.lock_timeout_seconds)
    ]
    steps += [
        ("every table and column this version uses is there", sql)
        for sql in sql_queries.table_probes(sql_queries.tables_probed_in_the_run(engine))
    ]
    steps += (
        planned_local_staging(config, window)
        if engine.reads_local_folders
        else planned_redshift_staging(config, window)
    )
    steps += planned_transform(engine)
    steps += [
        (f"check: {check.name} (expected {check.expected}; {CHECK_SCOPE_PLANNED})", check.sql)
        for check in all_checks(config, sql_queries.THIS_RUN)
    ]
    return [*steps, ("all or nothing", "COMMIT")]


def planned_transform(engine):
    """The transform as if nothing was loaded (a run that stages no file sends none of it),
    each part with the condition it runs on (transform); on PostgreSQL each star table's
    insert is followed by its ANALYZE when it grew a lot, and the missing indexes come
    last."""
    staged_songs = ", if this run staged song files"
    parts = [
        (sql_queries.catalogue_steps(engine, whole_catalogue=True), staged_songs),
        ([("song_changes", sql_queries.SONG_CHANGES_COUNT)], staged_songs),
        (sql_queries.for_engine(sql_queries.REMATCH_STEPS, engine), ", if this run changed a song"),
        (sql_queries.for_engine(sql_queries.NO_REMATCH_STEPS, engine), ", if it changed none"),
        (sql_queries.for_engine(sql_queries.PLAY_STEPS, engine), ""),
    ]
    window = "this run's first and last play: songplays and time are read between them"
    steps = [(window, sql_queries.PLAYS_WINDOW_SQL)]
    for part, condition in parts:
        for table_name, sql in part:
            steps.append((f"{table_name}{condition}", sql))
            star_table = star_table_inserted(table_name, sql)
            if engine.explicit_analyze and star_table:
                what = f"{table_name}, if this insert wrote more than a tenth of it"
                steps.append((what, sql_queries.analyze_sql(star_table)))
    if engine.indexes:
        steps += [
            (f"{index.table}, if it has no such index yet and holds rows", index.create_sql)
            for index in sql_queries.indexes(engine)
        ]
    return steps


def planned_local_staging(config, window):
    steps = [("settings", setting) for setting in sql_queries.POSTGRES_RUN_SETTINGS]
    for staging_table, key in (
        (sql_queries.STAGING_SONGS, "SONG_DATA"),
        (sql_queries.STAGING_EVENTS, "LOG_DATA"),
    ):
        source = config.get("S3", key)
        days = window if key == "LOG_DATA" else None
        files = (
            "the data files"
            if source.startswith("s3://")
            else f"{len(list_data_files(source, days).files)} files"
        )
        steps += [
            (staging_table.name, sql_queries.empty_staging_sql(staging_table, config.engine)),
            (
                f"{staging_table.name}: rows from {files} under {source}",
                sql_queries.copy_from_stdin_sql(staging_table, freeze=True),
            ),
            (staging_table.name, sql_queries.analyze_sql(staging_table)),
        ]
    return steps


def planned_redshift_staging(config, window):
    """The Redshift staging statements; the S3 keys are listed (not written) to name them."""
    copies = redshift_load.plan(redshift_load.s3_client(config), config, window, "<run_id>")
    steps = [(t.name, sql_queries.empty_staging_sql(t, config.engine)) for t in sql_queries.STAGING_TABLES]
    for copy in copies:
        first = ", ".join(item.key.rsplit("/", 1)[-1] for item in copy.keys[:3])
        more = f", … ({len(copy.keys)} in all)" if len(copy.keys) > 3 else ""
        steps.append((f"{copy.what()}: {first}{more}", copy.sql(config)))
    errors_sql = (
        sql_queries.SERVERLESS_LOAD_ERRORS_SQL
        if redshift.is_serverless(config)
        else sql_queries.LOAD_ERRORS_SQL
    )
    return [
        *steps,
        ("the rows COPY skipped, with the run's rejects", errors_sql),
        (
            "events whose userId is no INTEGER, with the run's rejects",
            sql_queries.INVALID_USER_ID_EVENTS_DECLARE,
        ),
        (
            f"events whose userId is no INTEGER, {sql_queries.CURSOR_FETCH_ROWS} at a time until fewer come",
            sql_queries.INVALID_USER_ID_EVENTS_FETCH,
        ),
        ("events whose userId is no INTEGER", sql_queries.INVALID_USER_ID_EVENTS_CLOSE),
        ("staging_events, if any", sql_queries.INVALID_USER_ID_EVENTS_DELETE),
    ]


def print_plan(steps):
    for what, sql in steps:
        print(masked(f"-- {what}\n{sql.strip()};\n"))


def print_history(conn, output_format, limit):
    with warehouse.database_errors_as("reading etl_runs"), warehouse.transaction(conn) as cur:
        runs = history.latest(cur, limit)
    print(history.as_json(runs) if output_format == "json" else history.as_table(runs))


def check_only(conn, config):
    with warehouse.database_errors_as("the checks"), warehouse.transaction(conn) as cur:
        check_quality(cur, config)


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
        elif args.check_only:
            check_only(conn, config)
        else:
            load(conn, config, window, full_refresh=args.full_refresh)
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
        "--history", action="store_true", help="print the latest runs from etl_runs; load nothing"
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
