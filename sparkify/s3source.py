"""S3 for the local target: s3:// sources are listed (paginated) and downloaded by
parallel threads into a temporary folder that the ordinary loader then reads.

Only the files the run needs are fetched: data files (.json, .json.gz), and for the log
only the days of --from/--to. The folder lasts for the run and is removed after it.
"""

import logging
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from sparkify.jsonfiles import DATA_SUFFIXES, in_window
from sparkify.output import Progress
from sparkify.redshift import aws_errors_as, list_folder, split_s3_url

log = logging.getLogger("sparkify")
DOWNLOAD_THREADS = 16
SOURCE_KEYS = ("SONG_DATA", "LOG_DATA", "LOG_JSONPATH")


def s3_client(config):
    """boto3's S3 client: unsigned for public buckets, at ENDPOINT_URL (or AWS_ENDPOINT_URL)."""
    # Imported here, not at the top: a local run makes no client, and they cost ~0.16 s.
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config as BotoConfig

    options = {"region_name": config.get("S3", "REGION")}
    if config.get("S3", "ENDPOINT_URL"):
        options["endpoint_url"] = config.get("S3", "ENDPOINT_URL")
    if config.flag("S3", "ANONYMOUS"):
        options["config"] = BotoConfig(signature_version=UNSIGNED)
    return boto3.client("s3", **options)


def download(client, url, folder, wanted, label, threads=DOWNLOAD_THREADS):
    """Fetch the wanted objects under url into folder, keeping their key paths; returns
    the local path that stands for url."""
    bucket, prefix = split_s3_url(url)
    keys = [item.key for item in list_folder(client, url) if wanted(os.path.basename(item.key))]
    progress = Progress(label, len(keys))

    def fetch(key):
        target = os.path.join(folder, bucket, key)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        client.download_file(bucket, key, target)

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        for done, _ in enumerate(pool.map(fetch, keys), start=1):
            progress.update(done, 0)
    progress.done()
    log.info("%-15s %d objects from %s (%.2f s)", label, len(keys), url, time.perf_counter() - started)
    return os.path.join(folder, bucket, prefix.rstrip("/"))


@contextmanager
def local_sources(config, window):
    """{SONG_DATA, LOG_DATA, LOG_JSONPATH: local path} for the run; s3:// URLs are
    downloaded into a temporary folder that is removed afterwards."""
    sources = {name: config.get("S3", name) for name in SOURCE_KEYS}
    remote = {name: url for name, url in sources.items() if url.startswith("s3://")}
    if not remote:
        yield sources
        return
    client = s3_client(config)
    wanted = {
        "SONG_DATA": lambda name: name.endswith(DATA_SUFFIXES),
        "LOG_DATA": lambda name: (
            name.endswith(DATA_SUFFIXES) and (window == (None, None) or in_window(name, window))
        ),
        "LOG_JSONPATH": lambda name: True,
    }
    with tempfile.TemporaryDirectory(prefix="sparkify-s3-") as folder:
        for name, url in remote.items():
            with aws_errors_as(f"reading {url}"):
                sources[name] = download(client, url, folder, wanted[name], f"download {name.lower()}")
        yield sources
