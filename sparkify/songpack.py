"""Fast song staging for Redshift: pack many small song objects into a few gzip files.

Redshift's COPY pays a fixed cost per S3 object, and the song data is ~15,000 objects
of a few hundred bytes: the slowest step of the load. This reads them in parallel
threads, concatenates their bytes (COPY … JSON 'auto' reads objects one after another,
so the rows are exactly those of a direct COPY), writes gzip packs under a staging
prefix in a bucket you own, and a manifest that one COPY … MANIFEST GZIP loads.
"""

import gzip
import logging
import time
import zlib
from concurrent.futures import ThreadPoolExecutor

from sparkify.errors import DataError
from sparkify.jsonfiles import BOM
from sparkify.s3 import split_s3_url, write_manifest

log = logging.getLogger("sparkify")
OBJECTS_PER_PACK = 1000
THREADS = 16


def _read(client, bucket, key):
    body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    if key.endswith(".gz"):
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError, zlib.error) as error:
            raise DataError(f"s3://{bucket}/{key} is not valid gzip ({error}); fix or remove it") from None
    return body.removeprefix(BOM).strip()


def _write_pack(client, source_bucket, keys, target_bucket, target_key):
    content = b"\n".join(_read(client, source_bucket, key) for key in keys) + b"\n"
    client.put_object(Bucket=target_bucket, Key=target_key, Body=gzip.compress(content))
    return f"s3://{target_bucket}/{target_key}"


def pack_songs(client, source_bucket, keys, manifest_url, objects_per_pack=OBJECTS_PER_PACK, threads=THREADS):
    """Pack the song objects `keys` (from the listing) into gzip files beside the manifest
    at manifest_url, then write the manifest."""
    started = time.perf_counter()
    target_bucket, manifest_key = split_s3_url(manifest_url)
    folder = manifest_key.rsplit("/", 1)[0]
    groups = [keys[i : i + objects_per_pack] for i in range(0, len(keys), objects_per_pack)]
    with ThreadPoolExecutor(threads) as pool:
        urls = list(
            pool.map(
                lambda numbered: _write_pack(
                    client,
                    source_bucket,
                    numbered[1],
                    target_bucket,
                    f"{folder}/songs-{numbered[0]:05d}.json.gz",
                ),
                enumerate(groups),
            )
        )
    write_manifest(client, manifest_url, urls)
    log.info(
        "packed %d song objects into %d gzip files under s3://%s/%s (%.2f s)",
        len(keys),
        len(urls),
        target_bucket,
        folder,
        time.perf_counter() - started,
    )
