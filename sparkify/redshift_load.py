"""A Redshift run's staging: list S3, write the manifests, COPY, and account for every
record COPY did not load.

Before the run's transaction the keys are listed (`prepare`). Inside it, after the
lock (`stage`), the ledger picks the new and changed keys, their manifests (or song
packs) are written under [S3] STAGING_PREFIX in a folder of the run's own (removed
after the run: `finish`), and each COPY runs; then the rows COPY skipped (MAXERROR > 0;
Redshift reports them only with an INFO notice) are read back from its load-error log,
and the events whose userId is no INTEGER are taken out of staging. Both become the
run's rejects, counted against MAXERROR for the whole run, as the local loader counts
them.
"""

import logging
from contextlib import contextmanager
from typing import NamedTuple

import psycopg2

import sql_queries
from sparkify import ledger, redshift, s3, warehouse
from sparkify.datasets import CATALOGUE, DATASETS, PLAYS, SOURCE_KEYS
from sparkify.errors import DatabaseError
from sparkify.jsonfiles import DATA_SUFFIXES, in_window
from sparkify.output import timed
from sparkify.redshift import CopyFailed
from sparkify.s3 import aws_errors_as
from sparkify.songpack import pack_songs

log = logging.getLogger("sparkify")


class StagingResult(NamedTuple):
    files: int
    copies: int
    loaded: int
    rejected: int


class RedshiftRun(NamedTuple):
    """What a Redshift run prepares before its transaction."""

    client: object  # boto3 S3 client
    listings: dict  # dataset name -> s3.DataKeys: the data files under each folder
    since: object  # the server's clock at the start: load errors are read from then on
    copies: list  # the COPYs the run sent (filled in its transaction), to file load errors


# --- Before the run's transaction ---------------------------------------------------------


def prepare(conn, config, window):
    """List S3, make sure the lock's table exists (committed on its own, so the run's
    transaction can begin with LOCK) and note the server's clock."""
    client = s3.s3_client(config)
    listings = list_sources(client, config, window)
    probes = sql_queries.table_probes(sql_queries.WRITTEN_OUTSIDE_THE_LOCK)
    since = warehouse.prepare_redshift_run(conn, read_clock=True, probes=probes)
    return RedshiftRun(client, listings, since, [])


def list_sources(client, config, window):
    """{dataset name: DataKeys}: the data files under each folder, as the local loader
    picks them; every bucket a COPY reads is checked to be in [S3] REGION."""
    listings = {}
    for dataset in DATASETS:
        url = config.get("S3", dataset.config_key)
        with aws_errors_as(f"listing {url}"):
            listings[dataset.name] = s3.list_data_keys(client, url, window if dataset.by_day else None)
    staging_prefix = config.get("S3", "STAGING_PREFIX")
    urls = [config.get("S3", key) for key in SOURCE_KEYS] + ([staging_prefix] if staging_prefix else [])
    with aws_errors_as("reading the buckets' regions"):
        s3.check_regions(client, config.get("S3", "REGION"), urls)
    return listings


# --- In the run's transaction ---------------------------------------------------------------


def stage(cursor, config, prepared, run, seconds_by_phase):
    """After the lock: the ledger picks the new and changed keys, their manifests are
    written, and the COPYs run. Returns ({dataset name: StagingResult}, {dataset name:
    ledger.Selection})."""
    with timed(seconds_by_phase, "stage") as elapsed:
        selections = select_new(cursor, config, prepared.listings, run)
        listings = {name: prepared.listings[name]._replace(files=s.staged) for name, s in selections.items()}
        copies = redshift.plan_copies(config, listings, run.run_id)
        prepared.copies[:] = copies
        write_sources(prepared.client, copies)
        results = copy_and_account(cursor, config, copies, prepared.since, run.rejects)
        replacing = any(selection.replaces for selection in selections.values())
        record_in_ledger(cursor, listings, run.run_id, replacing)
        for dataset in DATASETS:
            ledger.forget(cursor, dataset, selections[dataset.name].gone)
    for dataset in DATASETS:
        report_staging(dataset, results[dataset.name], prepared.listings[dataset.name])
        ledger.report_selection(selections[dataset.name])
    log.info("%-15s %.2f s for the COPYs and their load errors", "staging", elapsed())
    return results, selections


def select_new(cursor, config, listings, run):
    """{dataset name: ledger.Selection}: the keys not loaded before, or changed (ETag),
    and those gone; the files sharing a play with a file taken back are staged again.
    Without STAGING_PREFIX a COPY of the songs reads a whole prefix, so every key is
    staged."""
    selections = {}
    for dataset in DATASETS:
        listing, known = listings[dataset.name], ledger.loaded_versions(cursor, dataset)
        everything = run.full_refresh or not (
            config.get("S3", "STAGING_PREFIX") or dataset.staging.source_column
        )
        selection = ledger.select(
            dataset,
            listing.files,
            s3_identity,
            known,
            everything,
            listed=lambda key, listing=listing: key_listed(key, listing),
        )
        ledger.check_retraction(
            dataset, selection, known, config.retract_limit_percent, run.allow_retract, listing_url(listing)
        )
        if dataset.staging.source_column and (selection.again or selection.gone):
            retracted = [file for file, _ in selection.retracted()]
            shared = ledger.files_sharing_plays(cursor, retracted) - set(selection.gone)
            selection = ledger.with_shared(selection, listing.files, s3_identity, shared)
            ledger.require_listed(dataset, shared, selection, s3_identity)
        selections[dataset.name] = selection
    return selections


def key_listed(key, listing):
    """Could this listing hold the key: under its folder, and for a window one of its days?"""
    if not key.startswith(listing.folder):
        return False
    return listing.window in (None, (None, None)) or in_window(key.rsplit("/", 1)[-1], listing.window)


def listing_url(listing):
    return f"s3://{listing.bucket}/{listing.folder}"


def s3_identity(item):
    return item.key, item.size, item.etag


def record_in_ledger(cursor, listings, run_id, replacing):
    rows = (
        (dataset, *s3_identity(item), run_id, None)
        for dataset, listing in listings.items()
        for item in listing.files
    )
    ledger.record(cursor, sql_queries.REDSHIFT, rows, replacing)  # the Redshift loader's engine


def write_sources(client, copies):
    """The manifests of the run (and the song packs), for exactly the keys it stages."""
    for copy in copies:
        with aws_errors_as(f"writing {copy.source}"):
            if copy.pack:
                pack_songs(client, copy.bucket, [item.key for item in copy.keys], copy.source)
            elif copy.manifest:
                s3.write_manifest(client, copy.source, copy.urls())


def copy_and_account(cursor, config, copies, since, rejects):
    """COPY every staging table and account for every record; {dataset name: StagingResult}."""
    copy_into_staging(cursor, config, copies)
    errors = redshift.load_errors(cursor, redshift.is_serverless(config), since)
    rejected = record_load_errors(errors, copies, rejects)
    plays_copies = [copy for copy in copies if copy.dataset is PLAYS]
    rejected[PLAYS.name] += reject_invalid_user_ids(cursor, plays_copies, rejects)
    results = {}
    for dataset in DATASETS:
        cursor.execute(sql_queries.count_rows_sql(dataset.staging))
        mine = [copy for copy in copies if copy.dataset is dataset]
        files = sum(len(copy.keys) for copy in mine)
        results[dataset.name] = StagingResult(files, len(mine), cursor.fetchone()[0], rejected[dataset.name])
    return results


def copy_into_staging(cursor, config, copies):
    """Give the run staging tables of its own, empty (temporary tables LIKE the permanent
    ones: sql_queries.empty_staging_sql says why), then run each COPY into them."""
    for table in sql_queries.STAGING_TABLES:
        cursor.execute(sql_queries.empty_staging_sql(table, sql_queries.REDSHIFT))
    for copy in copies:
        try:
            cursor.execute(copy.sql(config))
        except psycopg2.Error as error:
            raise CopyFailed(copy.table.name, str(error).strip().splitlines()[0]) from None
        if copy.table.source_column:
            cursor.execute(sql_queries.source_file_sql(copy.table), (copy.file,))


def record_load_errors(errors, copies, rejects):
    """Every row COPY rejected becomes a reject of the run, with its file, line and column;
    it belongs to the dataset whose COPY read that file (a pack of song files: the songs')."""
    dataset_of_file = {url: copy.dataset for copy in copies if not copy.pack for url in copy.urls()}
    counts = {dataset.name: 0 for dataset in DATASETS}
    for error in errors:
        dataset = dataset_of_file.get(error.file, CATALOGUE)
        reason = f"column {error.column}: error {error.code} {error.reason}"
        rejects.add(dataset.name, error.file, error.line, reason, error.raw)
        counts[dataset.name] += 1
    return counts


def invalid_user_id_events(cursor):
    """The events with a bad userId, streamed through a server-side cursor a page of
    sql_queries.CURSOR_FETCH_ROWS at a time (a day of bad userIds never sits in memory)."""
    cursor.execute(sql_queries.INVALID_USER_ID_EVENTS_DECLARE)
    while True:
        cursor.execute(sql_queries.INVALID_USER_ID_EVENTS_FETCH)
        page = cursor.fetchall()
        yield from page
        if len(page) < sql_queries.CURSOR_FETCH_ROWS:
            break
    cursor.execute(sql_queries.INVALID_USER_ID_EVENTS_CLOSE)


def reject_invalid_user_ids(cursor, plays_copies, rejects):
    """Events whose userId the transform could not cast to INTEGER leave staging as rejects,
    each with its file (the run named every row's file after its COPY) and the event (ts,
    sessionId, itemInSession): Redshift does not say a loaded row's line."""
    bucket = {copy.file: copy.bucket for copy in plays_copies}
    found = 0
    for user_id, ts, session_id, item_in_session, file in invalid_user_id_events(cursor):
        reason = (
            f"userId {user_id!r} is not a whole number from 0 to 2147483647 "
            f"(event ts {ts}, sessionId {session_id}, itemInSession {item_in_session})"
        )
        rejects.add(PLAYS.name, f"s3://{bucket.get(file, '…')}/{file}", None, reason, user_id)
        found += 1
    if found:
        cursor.execute(sql_queries.INVALID_USER_ID_EVENTS_DELETE)
    return found


def report_staging(dataset, result, listing):
    log.info(
        "%-15s %d files in %d COPY, %d records read, %d loaded, %d rejected",
        dataset.staging.name,
        result.files,
        result.copies,
        result.loaded + result.rejected,
        result.loaded,
        result.rejected,
    )
    notes = [
        (len(listing.outside_window), "files outside --from/--to skipped"),
        (
            len(listing.ignored),
            f"objects ignored (not {' or '.join(DATA_SUFFIXES)}): "
            + ", ".join(key.rsplit("/", 1)[-1] for key in listing.ignored[:5]),
        ),
    ]
    for count, what in notes:
        if count:
            log.info("%-15s   %d %s", "", count, what)
    if not listing.files:
        log.warning("%s: no data files found", dataset.name)


# --- After the run's transaction -------------------------------------------------------------


@contextmanager
def explained_failures(conn, config, prepared, rejects):
    """A failed COPY becomes an error listing its load errors (file, line, column, code,
    reason, value), read after the run's transaction has rolled back; they are saved with
    the run's rejects. If they cannot be read, the COPY's own error still reaches the user."""
    try:
        yield
    except CopyFailed as failure:
        try:
            with warehouse.database_errors_as("reading the load errors"), warehouse.transaction(conn) as cur:
                errors = redshift.load_errors(cur, redshift.is_serverless(config), prepared.since)
            record_load_errors(errors, prepared.copies, rejects)
            report = "".join(f"\n  {error.describe()}" for error in errors[:10])
        except DatabaseError as error:
            report = f"\n  ({error})"
        raise DatabaseError(
            f"COPY into {failure.table} failed: {failure.reason}; nothing was committed{report}"
        ) from None


def finish(prepared, config, run_id):
    """Remove what the run wrote under STAGING_PREFIX, whatever its outcome."""
    staging_prefix = config.get("S3", "STAGING_PREFIX")
    if not staging_prefix:
        return
    folder = redshift.run_folder(staging_prefix, run_id)
    try:
        with aws_errors_as(f"removing {folder}"):
            s3.remove_folder(prepared.client, folder)
    except Exception as error:  # noqa: BLE001 - the run's own outcome matters more
        log.warning("%s", error)


# --- What --dry-run prints --------------------------------------------------------------------


def planned_preparation():
    """(what, SQL) of the transaction of its own before the run's (prepare)."""
    probes = sql_queries.table_probes(sql_queries.WRITTEN_OUTSIDE_THE_LOCK)
    return sql_queries.redshift_preparation_steps(read_clock=True, probes=probes)


def planned_statements(config, window):
    """(what, SQL) of the statements a run sends to stage, in order: the S3 keys are
    listed (not written) to name them."""
    copies = redshift.plan_copies(config, list_sources(s3.s3_client(config), config, window), "<run_id>")
    steps = [(t.name, sql_queries.empty_staging_sql(t, config.engine)) for t in sql_queries.STAGING_TABLES]
    for copy in copies:
        if copy.table.source_column:
            steps.append((copy.what(), copy.sql(config)))
            steps.append(
                (
                    f"{copy.table.name}: {copy.file} named in the rows it loaded",
                    sql_queries.source_file_sql(copy.table),
                )
            )
            continue
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
