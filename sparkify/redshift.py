"""Redshift: the COPYs of a run, temporary credentials, and COPY's load errors.

The COPYs load exactly the data files the local loader would load.

A COPY from a prefix loads every object whose key merely starts with it
(https://docs.aws.amazon.com/redshift/latest/dg/copy-parameters-data-source-s3.html):
`log_data` also matches `log_data_old/…`, `2018-11-05` matches `2018-11-05-events.json.bak`.
So the keys are listed first (all pages) and chosen by the local loader's rules (.json
and .json.gz under the folder, the days of --from/--to), then each dataset is COPYd
once per compression from a manifest of exactly those keys, written under
[S3] STAGING_PREFIX. Without STAGING_PREFIX the COPY reads the folder (or each day)
as a prefix ending in `/`, and only when nothing but those files sits under it.
"""

import re
from typing import NamedTuple

import sql_queries
from sparkify.datasets import DATASETS
from sparkify.errors import ConfigError, SparkifyError
from sparkify.jsonfiles import DATE_IN_NAME
from sparkify.output import first_and_more
from sparkify.s3 import is_gzip


class S3LayoutError(SparkifyError):
    """Objects a COPY from a prefix would load by mistake: a user's layout to fix."""

    exit_code = 2


# --- The COPYs of a run ---------------------------------------------------------------------


class PlannedCopy(NamedTuple):
    dataset: object  # sparkify.datasets.Dataset
    source: str  # s3:// URL of the manifest or of the prefix
    keys: list  # the S3 keys this COPY loads (S3Object)
    bucket: str
    gzip: bool
    manifest: bool  # source is a manifest to write before the COPY
    pack: bool = False  # small files packed into gzip files first (PACK_SONGS)

    @property
    def table(self):
        return self.dataset.staging

    def urls(self):
        return [f"s3://{self.bucket}/{item.key}" for item in self.keys]

    def sql(self, config):
        jsonpaths = self.dataset.jsonpaths_key
        return sql_queries.copy_from_s3_sql(
            self.table,
            self.source,
            iam_role=config.get("IAM_ROLE", "ARN"),
            region=config.get("S3", "REGION"),
            json_format=config.get("S3", jsonpaths) if jsonpaths else "auto",
            max_errors=config.max_errors,
            manifest=self.manifest,
            gzip=self.gzip,
        )

    @property
    def file(self):
        """The one file a per-file COPY loads (its S3 key, as the ledger names it)."""
        return self.keys[0].key

    def what(self):
        if self.dataset.staging.source_column:
            how = "listed by its manifest" if self.manifest else "as the prefix"
            return f"{self.table.name}: {self.file} {how}"
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
    """The COPYs of a run, in the datasets' load order, from {dataset name: DataKeys}."""
    staging_prefix = config.get("S3", "STAGING_PREFIX")
    copies = []
    for dataset in DATASETS:
        listing = listings[dataset.name]
        if not listing.files:
            continue
        if dataset.packable and config.flag("S3", "PACK_SONGS"):
            source = f"{run_folder(staging_prefix, run_id)}/{dataset.name}-packs.manifest"
            copies.append(PlannedCopy(dataset, source, listing.files, listing.bucket, True, True, True))
        elif dataset.staging.source_column:
            copies += file_copies(dataset, listing, staging_prefix and run_folder(staging_prefix, run_id))
        elif staging_prefix:
            copies += manifest_copies(dataset, listing, run_folder(staging_prefix, run_id))
        else:
            copies += prefix_copies(dataset, listing)
    return copies


def file_copies(dataset, listing, folder):
    """One COPY per file, so that the run can name each row's file (COPY cannot): a
    manifest of the one file in the run's folder, or without STAGING_PREFIX the file's
    own key as the prefix, refused when another object's key starts with it."""
    copies = []
    keys = sorted({item.key for item in listing.files} | set(listing.ignored) | set(listing.outside_window))
    for number, item in enumerate(listing.files):
        if folder:
            source = f"{folder}/{dataset.name}-{number:05d}.manifest"
            copies.append(PlannedCopy(dataset, source, [item], listing.bucket, is_gzip(item.key), True))
            continue
        stray = [key for key in keys if key.startswith(item.key) and key != item.key]
        if stray:
            raise S3LayoutError(
                f"s3://{listing.bucket}/{item.key} is also the start of {stray[0]}, which a COPY "
                "of that key would load too; set [S3] STAGING_PREFIX to load exactly the data "
                "files through manifests, or rename it"
            )
        source = f"s3://{listing.bucket}/{item.key}"
        copies.append(PlannedCopy(dataset, source, [item], listing.bucket, is_gzip(item.key), False))
    return copies


def manifest_copies(dataset, listing, folder):
    copies = []
    for gzip in (False, True):
        keys = [item for item in listing.files if is_gzip(item.key) == gzip]
        if keys:
            name = f"{dataset.name}{'-gzip' if gzip else ''}.manifest"
            copies.append(PlannedCopy(dataset, f"{folder}/{name}", keys, listing.bucket, gzip, True))
    return copies


def prefix_copies(dataset, listing):
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
                f"s3://{listing.bucket}/{prefix} also holds {first_and_more(stray)}"
                ", which a COPY from that prefix would load; set [S3] STAGING_PREFIX to load "
                "exactly the data files through a manifest, or move it away"
            )
        kinds = {is_gzip(item.key) for item in keys}
        if len(kinds) > 1:
            raise S3LayoutError(
                f"s3://{listing.bucket}/{prefix} holds both .json and .json.gz files, which one "
                "COPY cannot read together; set [S3] STAGING_PREFIX to load them through two manifests"
            )
        source = f"s3://{listing.bucket}/{prefix}"
        copies.append(PlannedCopy(dataset, source, keys, listing.bucket, kinds.pop(), False))
    return copies


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
    import boto3  # imported here: a local run makes no client, and boto3 is slow to import

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
