"""Redshift staging: COPY from S3, by day prefix when a date window is given."""

from urllib.parse import urlparse

import boto3

import sql_queries
from sparkify.jsonfiles import DATE_IN_NAME, day_in_name


def split_s3_url(url):
    parsed = urlparse(url)
    return parsed.netloc, parsed.path.lstrip("/")


def log_day_prefixes(s3_client, log_data_url, window):
    """The S3 prefixes (one per day present) of the log files inside the window."""
    bucket, prefix = split_s3_url(log_data_url)
    first, last = window
    prefixes = set()
    paginator = s3_client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            key = item["Key"]
            name = key.rsplit("/", 1)[-1]
            day = day_in_name(name)
            if day is None or (first and day < first) or (last and day > last):
                continue
            end_of_date = len(key) - len(name) + DATE_IN_NAME.search(name).end()
            prefixes.add(f"s3://{bucket}/{key[:end_of_date]}")
    return sorted(prefixes)


def copy_statements(config, window, s3_client=None, songs_manifest=None):
    """(table, COPY) pairs that refresh staging; the events of a window are COPYd by day;
    songs from songs_manifest (packed, see songpack.py) when given."""
    role, region = config.get("IAM_ROLE", "ARN"), config.get("S3", "REGION")
    max_errors = config.max_errors
    songs_source = songs_manifest or config.get("S3", "SONG_DATA")
    statements = [
        (
            sql_queries.STAGING_SONGS.name,
            sql_queries.copy_songs_sql(songs_source, role, region, max_errors, manifest=bool(songs_manifest)),
        )
    ]
    log_data = config.get("S3", "LOG_DATA")
    sources = [log_data] if window == (None, None) else log_day_prefixes(s3_client, log_data, window)
    jsonpaths = config.get("S3", "LOG_JSONPATH")
    statements += [
        (
            sql_queries.STAGING_EVENTS.name,
            sql_queries.copy_events_sql(source, role, region, jsonpaths, max_errors),
        )
        for source in sources
    ]
    return statements


# --- Credentials -------------------------------------------------------------------------------

TEMPORARY_CREDENTIALS_SECONDS = 900


def is_serverless(host):
    """Serverless endpoints look like <workgroup>.<account>.<region>.redshift-serverless.amazonaws.com."""
    return ".redshift-serverless." in host


def temporary_credentials(config, client=None):
    """(user, password) valid for 15 minutes, from the cluster or Serverless workgroup
    named by the first label of [CLUSTER] HOST; the caller's AWS identity needs
    redshift:GetClusterCredentials (or redshift-serverless:GetCredentials)."""
    host, database = config.get("CLUSTER", "HOST"), config.get("CLUSTER", "DB_NAME")
    name, region = host.split(".")[0], config.get("S3", "REGION")
    if is_serverless(host):
        client = client or boto3.client("redshift-serverless", region_name=region)
        answer = client.get_credentials(
            workgroupName=name, dbName=database, durationSeconds=TEMPORARY_CREDENTIALS_SECONDS
        )
        return answer["dbUser"], answer["dbPassword"]
    client = client or boto3.client("redshift", region_name=region)
    answer = client.get_cluster_credentials(
        DbUser=config.get("CLUSTER", "DB_USER"),
        DbName=database,
        ClusterIdentifier=name,
        DurationSeconds=TEMPORARY_CREDENTIALS_SECONDS,
        AutoCreate=False,
    )
    return answer["DbUser"], answer["DbPassword"]


# --- Load diagnostics ------------------------------------------------------------------------

RAW_VALUE_CHARS = 60


class CopyFailed(Exception):
    """A Redshift COPY failed; raised inside the run's transaction, explained after it."""

    def __init__(self, table, reason):
        super().__init__(reason)
        self.table = table
        self.reason = reason


def format_load_error(row):
    """One line per rejected record: file, line, column, code, reason, raw value."""
    file, line, column, code, reason, raw = row
    raw = (raw or "").strip()
    if len(raw) > RAW_VALUE_CHARS:
        raw = raw[:RAW_VALUE_CHARS] + "…"
    return f"  {file} line {line}, column {column}: error {code} {reason} (value {raw!r})"


def load_error_report(cursor, serverless):
    """The load errors of this session's last COPY, formatted; '' when there are none."""
    cursor.execute(sql_queries.SERVERLESS_LOAD_ERRORS_SQL if serverless else sql_queries.LOAD_ERRORS_SQL)
    return "\n".join(format_load_error(row) for row in cursor.fetchall())
