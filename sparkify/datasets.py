"""The source datasets: one record each, read by every loop and decision about them.

Adding a dataset means an entry here, its staging table and transform SQL in
sql_queries.py, and its tests.
"""

from typing import NamedTuple

import sql_queries


class Dataset(NamedTuple):
    name: str  # its name in the ledger (loaded_files.dataset) and in load_rejects
    config_key: str  # the [S3] key of its folder: a local path or an s3:// URL
    staging: sql_queries.Table  # the staging table it is copied into
    jsonpaths_key: str | None  # the [S3] key of its JSONPaths file; None: fields by name ('auto')
    by_day: bool  # --from/--to choose its files by the date in their names
    whole_if_changed: bool  # a changed file stages every file of the dataset again
    packable: bool  # many tiny files: [S3] PACK_SONGS may pack them for Redshift's COPY
    files_column: str  # the etl_runs column of how many of its files a run staged


# Song records are a catalogue: a changed file's old records must leave the kept ones
# (song_records), which only a run that stages every song file replaces.
SONG_DATA = Dataset(
    name="song_data",
    config_key="SONG_DATA",
    staging=sql_queries.STAGING_SONGS,
    jsonpaths_key=None,
    by_day=False,
    whole_if_changed=True,
    packable=True,
    files_column="song_files",
)
LOG_DATA = Dataset(
    name="log_data",
    config_key="LOG_DATA",
    staging=sql_queries.STAGING_EVENTS,
    jsonpaths_key="LOG_JSONPATH",
    by_day=True,
    whole_if_changed=False,
    packable=False,
    files_column="log_files",
)

# In load order: songs first, so that new songs join the catalogue before plays are
# matched against it.
DATASETS = (SONG_DATA, LOG_DATA)
CATALOGUE = SONG_DATA  # songs and artists are chosen from its records
PLAYS = LOG_DATA  # songplays, users and time come from its events; the transform casts their userId

# Every [S3] key that names a source: the datasets' folders and their JSONPaths files.
SOURCE_KEYS = tuple(key for dataset in DATASETS for key in (dataset.config_key, dataset.jsonpaths_key) if key)
