"""The transform: staging merged into the star tables by the steps of
sql_queries.transform_plan, each sent when its condition holds and reported as it says.
--dry-run prints the same plan."""

import logging

import psycopg2.extras

import sql_queries
from sparkify import warehouse

log = logging.getLogger("sparkify")

# A tenth of a star table (what it held before the run) decides two things, each on its
# own number:
# - statistics (PostgreSQL): a table is analysed right after an insert that wrote more
#   than this share of it. Rows written: the users a load refreshes (deleted, then
#   inserted again) change the statistics as new rows do, and autovacuum counts them too
#   when it analyses smaller changes later. Redshift analyses on its own.
# - the checks' scope: whole tables after a run that added more than this share of some
#   table (a first load): reading a table most of whose rows are new is cheaper than
#   finding them, and checks the same rows and more (sparkify.checks.check_scope). Rows
#   added: rows new to the table. Rows rewritten in place (refreshed users, changed
#   songs, plays matched again) are no growth, and the run's scope reads them anyway.
LARGE_RUN_SHARE = 0.1


def is_large_share(rows, rows_before):
    """More than LARGE_RUN_SHARE of a table that held rows_before (any row, if empty)."""
    return rows > LARGE_RUN_SHARE * rows_before


def starting_conditions(staged_song_files, every_song_file, retracted_files):
    """Whether each condition of the plan holds before its first step."""
    return {
        sql_queries.FILES_RETRACTED: bool(retracted_files),
        sql_queries.SONG_FILES_STAGED: staged_song_files > 0,
        sql_queries.EVERY_SONG_FILE_STAGED: every_song_file,
        sql_queries.SOME_SONG_FILES_STAGED: staged_song_files > 0 and not every_song_file,
        sql_queries.A_SONG_CHANGED: False,
        sql_queries.NO_SONG_CHANGED: True,
        sql_queries.WROTE_A_TENTH: False,
    }


def transform(cursor, engine, rows_before, staged_song_files, every_song_file, retracted_files=()):
    """Merge staging into the star tables, saying what each statement did; returns the
    window of this run's plays (first and last), within which the checks read songplays
    and time. staged_song_files: how many song files the run staged; every_song_file:
    it staged every one, so their records replace the kept ones; retracted_files: the
    log files whose rows are taken back first (changed, gone, or staged again)."""
    holds = starting_conditions(staged_song_files, every_song_file, retracted_files)
    plays_window = None
    for step in sql_queries.transform_plan(engine):
        if step.when and not holds[step.when]:
            continue
        if step.kind == sql_queries.PLAYS_WINDOW_READ:
            cursor.execute(step.sql)
            plays_window = dict(zip(sql_queries.PLAYS_WINDOW, cursor.fetchone(), strict=True))
        elif step.kind == sql_queries.FILE_LIST:
            cursor.execute(step.sql)
            psycopg2.extras.execute_values(
                cursor,
                sql_queries.RETRACTED_FILES_INSERT,
                [(file,) for file in retracted_files],
                page_size=500,
            )
            report(step, len(retracted_files), 0.0)
        elif step.kind == sql_queries.COUNT:
            cursor.execute(step.sql)
            holds[step.decides] = cursor.fetchone()[0] > 0
            holds[sql_queries.OPPOSITES[step.decides]] = not holds[step.decides]
        else:
            parameters = plays_window if sql_queries.uses_plays_window(step.sql) else None
            rows_written, seconds = warehouse.timed_execute(cursor, step.sql, parameters)
            report(step, rows_written, seconds)
            if step.analyze == sql_queries.IF_IT_GREW:
                # PostgreSQL, which always reports an INSERT's row count, is the only
                # engine that analyses: Redshift need not report counts.
                holds[sql_queries.WROTE_A_TENTH] = is_large_share(rows_written, rows_before[step.table])
    return plays_window


def report(step, rows_written, seconds):
    if step.kind == sql_queries.ANALYZE:
        if step.logs:
            log.debug("%-15s %s (%.2f s)", step.table, step.logs, seconds)
    elif step.logs:
        log.info(
            f"%-15s {step.logs} (%.2f s)", step.table, rows_written, seconds
        )  # -1: Redshift says no count


def build_missing_indexes(cursor, engine):
    """Build the indexes a fresh warehouse lacks on the tables that now hold rows
    (sql_queries.indexes says why only then); a table still empty (a first run that
    brought only song files leaves songplays empty) waits for the run that fills it."""
    wanted = {index.name: index for index in sql_queries.indexes(engine)}
    if not wanted:
        return
    cursor.execute(sql_queries.MISSING_INDEXES_SQL, (list(wanted),))
    for (name,) in cursor.fetchall():
        index = wanted[name]
        cursor.execute(sql_queries.has_rows_sql(index.table))
        if not cursor.fetchone()[0]:
            continue
        _, seconds = warehouse.timed_execute(cursor, index.create_sql)
        log.info("%-15s indexed (%s) (%.2f s)", index.table, ", ".join(index.columns), seconds)


def planned_statements(engine):
    """(what, SQL) of the transform, every step with the condition it runs on (a run that
    stages no file sends none of it), then the indexes a fresh warehouse lacks."""
    steps = [(step.describe(), step.sql) for step in sql_queries.transform_plan(engine)]
    return steps + [
        (f"{index.table}, if it has no such index yet and holds rows", index.create_sql)
        for index in sql_queries.indexes(engine)
    ]
