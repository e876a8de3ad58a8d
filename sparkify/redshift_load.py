"""A Redshift run's staging: list S3, write the manifests, COPY, and account for every
record COPY did not load.

Before the run's transaction the keys are listed. Inside it, after the lock, the ledger
picks the new and changed keys, their manifests (or song packs) are written under
[S3] STAGING_PREFIX in a folder of the run's own (removed after the run), and each COPY
runs; then the rows COPY skipped (MAXERROR > 0; Redshift reports them only with an INFO
notice) are read back from its load-error log, and the events whose userId is no
INTEGER are taken out of staging. Both become the run's rejects, counted against
MAXERROR for the whole run, as the local loader counts them.
"""

import logging
from typing import NamedTuple

import psycopg2

import sql_queries
from sparkify import ledger, redshift
from sparkify.jsonfiles import DATA_SUFFIXES
from sparkify.redshift import CopyFailed, aws_errors_as
from sparkify.songpack import pack_songs

log = logging.getLogger("sparkify")


class StagingResult(NamedTuple):
    files: int
    copies: int
    loaded: int
    rejected: int


def s3_client(config):
    """S3 in the data's region (AWS_ENDPOINT_URL, if set, points elsewhere)."""
    import boto3  # imported here: a local run makes no client, and boto3 takes ~0.16 s to import

    return boto3.client("s3", region_name=config.get("S3", "REGION"))


def list_sources(client, config, window):
    """{dataset: DataKeys}: the data files under each folder, as the local loader picks
    them; every bucket a COPY reads is checked to be in [S3] REGION."""
    listings = {}
    for dataset, key, days in (("song_data", "SONG_DATA", None), ("log_data", "LOG_DATA", window)):
        url = config.get("S3", key)
        with aws_errors_as(f"listing {url}"):
            listings[dataset] = redshift.list_data_keys(client, url, days)
    staging_prefix = config.get("S3", "STAGING_PREFIX")
    urls = [config.get("S3", key) for key in ("SONG_DATA", "LOG_DATA", "LOG_JSONPATH")]
    with aws_errors_as("reading the buckets' regions"):
        redshift.check_regions(
            client, config.get("S3", "REGION"), urls + ([staging_prefix] if staging_prefix else [])
        )
    return listings


def plan(client, config, window, run_id):
    """The COPYs of a run as if nothing were loaded yet (--dry-run)."""
    return redshift.plan_copies(config, list_sources(client, config, window), run_id)


def select_new(cursor, config, listings, full_refresh):
    """{dataset: ledger.Selection}: the keys not loaded before, or changed (ETag).
    Without STAGING_PREFIX a COPY reads a whole prefix, so every key is staged."""
    selections = {}
    for dataset, listing in listings.items():
        known = ledger.loaded_versions(cursor, dataset)
        everything = full_refresh or not config.get("S3", "STAGING_PREFIX")
        selections[dataset] = ledger.select(
            listing.files, s3_identity, known, everything, whole_if_changed=dataset == "song_data"
        )
    return selections


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
                redshift.write_manifest(client, copy.source, copy.bucket, copy.keys)


def remove_sources(client, config, run_id):
    staging_prefix = config.get("S3", "STAGING_PREFIX")
    if not staging_prefix:
        return
    try:
        with aws_errors_as(f"removing {redshift.run_folder(staging_prefix, run_id)}"):
            redshift.remove_run_folder(client, staging_prefix, run_id)
    except Exception as error:  # noqa: BLE001 - the run's own outcome matters more
        log.warning("%s", error)


def report_listing(dataset, listing):
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
        log.warning("%s: no data files found", dataset)


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


def record_load_errors(errors, copies, rejects):
    """Every row COPY rejected becomes a reject of the run, with its file, line and column;
    it belongs to the dataset whose COPY read that file (song packs: song_data)."""
    log_files = {
        f"s3://{copy.bucket}/{item.key}"
        for copy in copies
        if copy.dataset == "log_data"
        for item in copy.keys
    }
    counts = {"song_data": 0, "log_data": 0}
    for error in errors:
        dataset = "log_data" if error.file in log_files else "song_data"
        reason = f"column {error.column}: error {error.code} {error.reason}"
        rejects.add(dataset, error.file, error.line, reason, error.raw)
        counts[dataset] += 1
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


def reject_invalid_user_ids(cursor, log_copies, rejects):
    """Events whose userId the transform could not cast to INTEGER leave staging as rejects.
    Redshift does not say which file a loaded row came from: the reject names the COPY's
    source and the event (ts, sessionId, itemInSession)."""
    where = (
        "the log files of this run"
        if len(log_copies) != 1 or log_copies[0].manifest
        else log_copies[0].source
    )
    found = 0
    for user_id, ts, session_id, item_in_session in invalid_user_id_events(cursor):
        reason = (
            f"userId {user_id!r} is not a whole number from 0 to 2147483647 "
            f"(event ts {ts}, sessionId {session_id}, itemInSession {item_in_session})"
        )
        rejects.add("log_data", f"one of {where}", None, reason, user_id)
        found += 1
    if found:
        cursor.execute(sql_queries.INVALID_USER_ID_EVENTS_DELETE)
    return found


def stage(cursor, config, copies, since, rejects):
    """COPY both staging tables and account for every record; {dataset: StagingResult}."""
    copy_into_staging(cursor, config, copies)
    errors = redshift.load_errors(cursor, redshift.is_serverless(config), since)
    rejected = record_load_errors(errors, copies, rejects)
    log_copies = [copy for copy in copies if copy.dataset == "log_data"]
    rejected["log_data"] += reject_invalid_user_ids(cursor, log_copies, rejects)
    results = {}
    for dataset, table in (
        ("song_data", sql_queries.STAGING_SONGS),
        ("log_data", sql_queries.STAGING_EVENTS),
    ):
        cursor.execute(sql_queries.count_rows_sql(table))
        mine = [copy for copy in copies if copy.dataset == dataset]
        files = sum(len(copy.keys) for copy in mine)
        results[dataset] = StagingResult(files, len(mine), cursor.fetchone()[0], rejected[dataset])
    return results
