"""Redshift staging: COPY from S3, by day prefix when a date window is given."""

from urllib.parse import urlparse

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


def copy_statements(config, window, s3_client=None):
    """(table, COPY) pairs that refresh staging; the events of a window are COPYd by day."""
    role, region = config.get("IAM_ROLE", "ARN"), config.get("S3", "REGION")
    max_errors = config.max_errors
    statements = [
        (
            sql_queries.STAGING_SONGS.name,
            sql_queries.copy_songs_sql(config.get("S3", "SONG_DATA"), role, region, max_errors),
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
