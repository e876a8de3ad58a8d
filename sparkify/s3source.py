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

from sparkify.datasets import DATASETS, SOURCE_KEYS
from sparkify.jsonfiles import DATA_SUFFIXES, in_window
from sparkify.output import Progress
from sparkify.s3 import aws_errors_as, list_folder, s3_client, split_s3_url

log = logging.getLogger("sparkify")
DOWNLOAD_THREADS = 16


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
    """{[S3] source key: local path} for the run (sparkify.datasets.SOURCE_KEYS); s3://
    URLs are downloaded into a temporary folder that is removed afterwards."""
    sources = {name: config.get("S3", name) for name in SOURCE_KEYS}
    remote = {name: url for name, url in sources.items() if url.startswith("s3://")}
    if not remote:
        yield sources
        return
    client = s3_client(config)
    wanted = wanted_objects(window)
    with tempfile.TemporaryDirectory(prefix="sparkify-s3-") as folder:
        for name, url in remote.items():
            with aws_errors_as(f"reading {url}"):
                sources[name] = download(client, url, folder, wanted[name], f"download {name.lower()}")
        yield sources


def wanted_objects(window):
    """{[S3] source key: which object names to download}: a dataset's data files (of the
    window's days, if it loads by day); a JSONPaths URL names one object."""
    wanted = {}
    for dataset in DATASETS:
        days = window if dataset.by_day and window != (None, None) else None
        wanted[dataset.config_key] = lambda name, days=days: (
            name.endswith(DATA_SUFFIXES) and (days is None or in_window(name, days))
        )
        if dataset.jsonpaths_key:
            wanted[dataset.jsonpaths_key] = lambda name: True
    return wanted
