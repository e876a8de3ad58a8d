"""Redshift staging: exactly the data files the local loader would load, COPYd from S3.

A COPY from a prefix loads every object whose key merely starts with it
(https://docs.aws.amazon.com/redshift/latest/dg/copy-parameters-data-source-s3.html):
`log_data` also matches `log_data_old/…`, `2018-11-05` matches `2018-11-05-events.json.bak`.
So the keys are listed first (all pages) and chosen by the local loader's rules (.json
and .json.gz under the folder, the days of --from/--to), then each dataset is COPYd
once per compression from a manifest of exactly those keys, written under
[S3] STAGING_PREFIX. Without STAGING_PREFIX the COPY reads the folder (or each day)
as a prefix ending in `/`, and only when nothing but those files sits under it.
"""

import json
import logging
import re
from contextlib import contextmanager
from typing import NamedTuple
from urllib.parse import urlparse

import botocore.exceptions

import sql_queries
from sparkify.errors import ConfigError, SparkifyError
from sparkify.jsonfiles import DATA_SUFFIXES, DATE_IN_NAME, in_window

log = logging.getLogger("sparkify")


class S3Error(SparkifyError):
    """S3 could not be listed, read or written."""


class S3LayoutError(SparkifyError):
    """Objects a COPY from a prefix would load by mistake: a user's layout to fix."""

    exit_code = 2


def split_s3_url(url):
    parsed = urlparse(url)
    return parsed.netloc, parsed.path.lstrip("/")


@contextmanager
def aws_errors_as(what):
    """boto3 failures become one line: missing credentials are a user mistake (exit 2),
    anything else AWS refused or could not be reached (exit 1)."""
    try:
        yield
    except botocore.exceptions.NoCredentialsError:
        raise ConfigError(
            f"{what}: no AWS credentials found; set AWS_PROFILE or the AWS_* variables "
            "(for a public bucket read by TARGET = local: [S3] ANONYMOUS = true)"
        ) from None
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:
        raise S3Error(f"{what}: {str(error).splitlines()[0]}") from None


# --- Listing --------------------------------------------------------------------------------


class S3Object(NamedTuple):
    key: str
    size: int
    etag: str


def list_folder(client, url):
    """Every object in the folder an s3:// URL names (or the one object it names), through
    all pages. `s3://b/log_data` is the folder `log_data/`: `log_data_old/x` is not in it."""
    bucket, prefix = split_s3_url(url)
    folder = prefix.rstrip("/") + "/" if prefix else ""
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix.rstrip("/")):
        for item in page.get("Contents", []):
            key = item["Key"]
            if key.endswith("/") or not (key.startswith(folder) or key == prefix.rstrip("/")):
                continue
            yield S3Object(key, item["Size"], item.get("ETag", "").strip('"'))


class DataKeys(NamedTuple):
    """What list_data_keys found: the data files to load, as the local loader chooses them."""

    bucket: str
    folder: str  # the key prefix of the folder, ending in / (or the one object's key)
    files: list  # S3Object, sorted by key
    ignored: list  # keys without a data suffix (.json, .json.gz)
    outside_window: list  # data keys outside --from/--to


def list_data_keys(client, url, window=None):
    bucket, prefix = split_s3_url(url)
    files, ignored, outside = [], [], []
    for item in list_folder(client, url):
        name = item.key.rsplit("/", 1)[-1]
        if not name.endswith(DATA_SUFFIXES):
            ignored.append(item.key)
        elif window and window != (None, None) and not in_window(name, window):
            outside.append(item.key)
        else:
            files.append(item)
    files.sort()
    folder = prefix.rstrip("/") + "/" if prefix else ""
    if len(files) == 1 and files[0].key == prefix.rstrip("/"):
        folder = files[0].key
    return DataKeys(bucket, folder, files, ignored, outside)


def is_gzip(key):
    return key.endswith(".gz")


# --- The COPYs of a run ---------------------------------------------------------------------


class PlannedCopy(NamedTuple):
    table: object  # sql_queries.Table
    dataset: str  # song_data | log_data
    source: str  # s3:// URL of the manifest or of the prefix
    keys: list  # the S3 keys this COPY loads (S3Object)
    bucket: str
    gzip: bool
    manifest: bool  # source is a manifest to write before the COPY
    pack: bool = False  # songs packed into gzip files first (PACK_SONGS)

    def sql(self, config):
        role, region, max_errors = (
            config.get("IAM_ROLE", "ARN"),
            config.get("S3", "REGION"),
            config.max_errors,
        )
        if self.table is sql_queries.STAGING_EVENTS:
            jsonpaths = config.get("S3", "LOG_JSONPATH")
            return sql_queries.copy_events_sql(
                self.source, role, region, jsonpaths, max_errors, self.manifest, self.gzip
            )
        return sql_queries.copy_songs_sql(self.source, role, region, max_errors, self.manifest, self.gzip)

    def what(self):
        kind = "gzip " if self.gzip and not self.pack else ""
        how = (
            "packed into gzip files listed by the manifest"
            if self.pack
            else "listed by the manifest"
            if self.manifest
            else "under the prefix"
        )
        return f"{self.table.name}: {len(self.keys)} {kind}files {how}"


def run_folder(staging_prefix, run_id):
    """Where one run writes its manifests (and song packs); removed after the run."""
    return f"{staging_prefix.rstrip('/')}/runs/{run_id}"


def plan_copies(config, listings, run_id):
    """The COPYs of a run, songs first, from {dataset: DataKeys}."""
    staging_prefix = config.get("S3", "STAGING_PREFIX")
    copies = []
    for dataset, table in (
        ("song_data", sql_queries.STAGING_SONGS),
        ("log_data", sql_queries.STAGING_EVENTS),
    ):
        listing = listings[dataset]
        if not listing.files:
            continue
        if dataset == "song_data" and config.flag("S3", "PACK_SONGS"):
            source = f"{run_folder(staging_prefix, run_id)}/song_data-packs.manifest"
            copies.append(
                PlannedCopy(table, dataset, source, listing.files, listing.bucket, True, True, True)
            )
        elif staging_prefix:
            copies += manifest_copies(table, dataset, listing, run_folder(staging_prefix, run_id))
        else:
            copies += prefix_copies(table, dataset, listing)
    return copies


def manifest_copies(table, dataset, listing, folder):
    copies = []
    for gzip in (False, True):
        keys = [item for item in listing.files if is_gzip(item.key) == gzip]
        if keys:
            name = f"{dataset}{'-gzip' if gzip else ''}.manifest"
            copies.append(PlannedCopy(table, dataset, f"{folder}/{name}", keys, listing.bucket, gzip, True))
    return copies


def prefix_copies(table, dataset, listing):
    """COPY from the folder, or from each day's prefix when a window left files out;
    refused when the prefix would also load anything else."""
    wanted = {item.key for item in listing.files}
    others = sorted(set(listing.ignored) | set(listing.outside_window))
    if not listing.outside_window:
        prefixes = {listing.folder: listing.files}
    else:
        prefixes = {}
        for item in listing.files:
            name = item.key.rsplit("/", 1)[-1]
            day_end = len(item.key) - len(name) + DATE_IN_NAME.search(name).end()
            prefixes.setdefault(item.key[:day_end], []).append(item)
    copies = []
    for prefix, keys in sorted(prefixes.items()):
        stray = [key for key in others if key.startswith(prefix) and key not in wanted]
        if stray:
            raise S3LayoutError(
                f"s3://{listing.bucket}/{prefix} also holds {stray[0]}"
                + (f" and {len(stray) - 1} more" if len(stray) > 1 else "")
                + ", which a COPY from that prefix would load; set [S3] STAGING_PREFIX to load "
                "exactly the data files through a manifest, or move it away"
            )
        kinds = {is_gzip(item.key) for item in keys}
        if len(kinds) > 1:
            raise S3LayoutError(
                f"s3://{listing.bucket}/{prefix} holds both .json and .json.gz files, which one "
                "COPY cannot read together; set [S3] STAGING_PREFIX to load them through two manifests"
            )
        source = f"s3://{listing.bucket}/{prefix}"
        copies.append(PlannedCopy(table, dataset, source, keys, listing.bucket, kinds.pop(), False))
    return copies


def manifest_body(bucket, keys):
    """A COPY manifest of exactly these objects; mandatory, so a vanished one fails the COPY
    (https://docs.aws.amazon.com/redshift/latest/dg/loading-data-files-using-manifest.html)."""
    entries = [{"url": f"s3://{bucket}/{item.key}", "mandatory": True} for item in keys]
    return json.dumps({"entries": entries}, indent=1).encode()


def write_manifest(client, url, bucket, keys):
    target_bucket, key = split_s3_url(url)
    client.put_object(Bucket=target_bucket, Key=key, Body=manifest_body(bucket, keys))


def remove_run_folder(client, staging_prefix, run_id):
    """Delete what the run wrote under STAGING_PREFIX (all pages, 1,000 keys a call)."""
    bucket, prefix = split_s3_url(run_folder(staging_prefix, run_id) + "/")
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        objects = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if objects:
            client.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})


# --- Regions ----------------------------------------------------------------------------------


def bucket_region(client, bucket):
    """The bucket's region from S3's x-amz-bucket-region header (also sent with a 403),
    or None when S3 does not say."""
    try:
        response = client.head_bucket(Bucket=bucket)
        headers = response["ResponseMetadata"]["HTTPHeaders"]
    except botocore.exceptions.ClientError as error:
        headers = error.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    return headers.get("x-amz-bucket-region")


def check_regions(client, region, urls):
    """With REGION, every COPY source, the manifest included, must be in that region
    (https://docs.aws.amazon.com/redshift/latest/dg/copy-parameters-data-source-s3.html)."""
    for url in urls:
        bucket, _ = split_s3_url(url)
        found = bucket_region(client, bucket)
        if found and found != region:
            raise ConfigError(
                f"{url} is in {found}, but [S3] REGION is {region}: every COPY source, manifests "
                "and song packs included, must be in that region"
            )


# --- Credentials -------------------------------------------------------------------------------

TEMPORARY_CREDENTIALS_SECONDS = 900
# <cluster>.<id>.<region>.redshift.amazonaws.com or
# <workgroup>.<account>.<region>.redshift-serverless.amazonaws.com
STANDARD_ENDPOINT = re.compile(
    r"(?P<name>[^.]+)\.[^.]+\.(?P<region>[a-z]{2}(-[a-z]+)+-\d{1,2})"
    r"\.redshift(-serverless)?\.amazonaws\.com"
)


def is_serverless(config):
    """[CLUSTER] SERVERLESS when set (a custom domain or VPC endpoint hides the kind),
    else the host name tells."""
    if config.get("CLUSTER", "SERVERLESS"):
        return config.flag("CLUSTER", "SERVERLESS")
    return ".redshift-serverless." in config.get("CLUSTER", "HOST")


def cluster_region(config):
    """The region of the cluster or workgroup: [CLUSTER] REGION, else from the host name.
    It can differ from the data's [S3] REGION."""
    if config.get("CLUSTER", "REGION"):
        return config.get("CLUSTER", "REGION")
    endpoint = STANDARD_ENDPOINT.fullmatch(config.get("CLUSTER", "HOST"))
    if endpoint is None:
        raise ConfigError(
            f"{config.path}: [CLUSTER] REGION is needed for temporary credentials: the host "
            f"{config.get('CLUSTER', 'HOST')} does not name its region"
        )
    return endpoint.group("region")


def temporary_credentials(config, client=None):
    """(user, password) valid for 15 minutes, for the cluster or Serverless workgroup named
    by the host (or its custom domain); the caller's AWS identity needs
    redshift:GetClusterCredentials (or redshift-serverless:GetCredentials). On Serverless
    the database user is derived from that identity, not from [CLUSTER] DB_USER."""
    import boto3  # imported here: a local run makes no client, and boto3 takes ~0.16 s to import

    host, database = config.get("CLUSTER", "HOST"), config.get("CLUSTER", "DB_NAME")
    endpoint = STANDARD_ENDPOINT.fullmatch(host)
    region = cluster_region(config)
    if is_serverless(config):
        client = client or boto3.client("redshift-serverless", region_name=region)
        where = {"workgroupName": endpoint.group("name")} if endpoint else {"customDomainName": host}
        answer = client.get_credentials(
            dbName=database, durationSeconds=TEMPORARY_CREDENTIALS_SECONDS, **where
        )
        return answer["dbUser"], answer["dbPassword"]
    client = client or boto3.client("redshift", region_name=region)
    where = {"ClusterIdentifier": endpoint.group("name")} if endpoint else {"CustomDomainName": host}
    answer = client.get_cluster_credentials(
        DbUser=config.get("CLUSTER", "DB_USER"),
        DbName=database,
        DurationSeconds=TEMPORARY_CREDENTIALS_SECONDS,
        AutoCreate=False,
        **where,
    )
    return answer["DbUser"], answer["DbPassword"]


# --- Load errors -------------------------------------------------------------------------------

RAW_VALUE_CHARS = 60


class CopyFailed(Exception):
    """A Redshift COPY failed; raised inside the run's transaction, explained after it."""

    def __init__(self, table, reason):
        super().__init__(reason)
        self.table = table
        self.reason = reason


class LoadError(NamedTuple):
    file: str
    line: int
    column: str
    code: int
    reason: str
    raw: str | None

    def describe(self):
        """One line: file, line, column, code, reason and (where Redshift keeps it) value."""
        raw = (self.raw or "").strip()
        if len(raw) > RAW_VALUE_CHARS:
            raw = raw[:RAW_VALUE_CHARS] + "…"
        value = f" (value {raw!r})" if self.raw is not None else ""
        return f"{self.file} line {self.line}, column {self.column}: error {self.code} {self.reason}{value}"


def load_errors(cursor, serverless, since):
    """The rows this session's COPYs rejected since `since` (the run's start)."""
    cursor.execute(
        sql_queries.SERVERLESS_LOAD_ERRORS_SQL if serverless else sql_queries.LOAD_ERRORS_SQL, (since,)
    )
    return [LoadError(*row) for row in cursor.fetchall()]
