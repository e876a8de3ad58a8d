"""S3: one client, listing (all pages) and the data files in it, manifests, folders and
regions. Both targets read S3 through it: TARGET = local downloads s3:// sources,
TARGET = redshift lists them and writes the manifests its COPYs read."""

import json
from contextlib import contextmanager
from typing import NamedTuple
from urllib.parse import urlparse

import botocore.exceptions

from sparkify.errors import ConfigError, SparkifyError
from sparkify.jsonfiles import DATA_SUFFIXES, in_window


def s3_client(config):
    """boto3's S3 client in [S3] REGION: unsigned for public buckets ([S3] ANONYMOUS), at
    [S3] ENDPOINT_URL (else AWS_ENDPOINT_URL) for S3-compatible stores (both TARGET = local
    only)."""
    # Imported here, not at the top: a local run makes no client, and they are slow to import.
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config as BotoConfig

    options = {"region_name": config.get("S3", "REGION")}
    if config.get("S3", "ENDPOINT_URL"):
        options["endpoint_url"] = config.get("S3", "ENDPOINT_URL")
    if config.flag("S3", "ANONYMOUS"):
        options["config"] = BotoConfig(signature_version=UNSIGNED)
    return boto3.client("s3", **options)


class S3Error(SparkifyError):
    """S3 could not be listed, read or written."""


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
    window: tuple | None = None  # the --from/--to it was listed for


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
    return DataKeys(bucket, folder, files, ignored, outside, window)


def is_gzip(key):
    return key.endswith(".gz")


def manifest_body(urls):
    """A COPY manifest of exactly these s3:// URLs; mandatory, so a vanished one fails the
    COPY (https://docs.aws.amazon.com/redshift/latest/dg/loading-data-files-using-manifest.html)."""
    entries = [{"url": url, "mandatory": True} for url in urls]
    return json.dumps({"entries": entries}, indent=1).encode()


def write_manifest(client, manifest_url, urls):
    bucket, key = split_s3_url(manifest_url)
    client.put_object(Bucket=bucket, Key=key, Body=manifest_body(urls))


def remove_folder(client, url):
    """Delete every object under the folder url names (all pages, 1,000 keys a call)."""
    bucket, prefix = split_s3_url(url.rstrip("/") + "/")
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
