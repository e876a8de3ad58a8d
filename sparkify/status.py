"""`etl.py --status`: what the source holds that the warehouse does not, without loading
anything, so that a team sees a gap before its analysts do.

Per dataset: the files listed in the source and in the ledger, and how many are new,
changed and gone (what the next run would stage and take back); the latest play
loaded; the days missing in the loaded range of a dataset loaded by day; the last runs.
"""

from datetime import timedelta
from typing import NamedTuple

import sql_queries
from sparkify import history, ledger, redshift_load, s3
from sparkify.datasets import DATASETS
from sparkify.jsonfiles import day_in_name, list_data_files
from sparkify.local_load import local_identity
from sparkify.output import table

SHOWN_RUNS = 5
SHOWN_DAYS = 10


class DatasetState(NamedTuple):
    name: str
    listed: int
    loaded: int
    new: int
    changed: int | None  # None: the source cannot say (s3:// files a local run downloads)
    gone: int
    missing_days: list | None  # a dataset loaded by day: the days without a loaded file


def source_states(cursor, config):
    """Each dataset's source listing against the ledger."""
    listings = listings_by_dataset(config)
    states = []
    for dataset in DATASETS:
        files, identity = listings[dataset.name]
        known = ledger.loaded_versions(cursor, dataset)
        selection = ledger.select(dataset, files, identity, known)
        changed = None if identity is by_name_only else selection.changed
        days = missing_days(known) if dataset.by_day else None
        states.append(
            DatasetState(
                dataset.name, len(files), len(known), selection.new, changed, len(selection.gone), days
            )
        )
    return states


def listings_by_dataset(config):
    """{dataset name: (files, identity)} as the next run would list them: local folders,
    S3 for Redshift, and for s3:// sources of a local run the keys by name."""
    if not config.engine.reads_local_folders:
        listings = redshift_load.list_sources(s3.s3_client(config), config, None)
        return {name: (listing.files, redshift_load.s3_identity) for name, listing in listings.items()}
    found = {}
    for dataset in DATASETS:
        source = config.get("S3", dataset.config_key)
        if source.startswith("s3://"):
            with s3.aws_errors_as(f"listing {source}"):
                listing = s3.list_data_keys(s3.s3_client(config), source)
            prefix = listing.folder
            found[dataset.name] = ([item.key[len(prefix) :] for item in listing.files], by_name_only)
        else:
            listing = list_data_files(source)
            found[dataset.name] = (listing.files, local_identity(source, listing))
    return found


def by_name_only(name):
    """A local run's s3:// file, known by its name: its version is that of a download."""
    return name, None, None


def missing_days(known):
    """The days between the first and last loaded file's day that no loaded file covers."""
    days = {day for day in (day_in_name(file.rsplit("/", 1)[-1]) for file in known) if day}
    if not days:
        return []
    first, last = min(days), max(days)
    return [first + timedelta(n) for n in range((last - first).days + 1) if first + timedelta(n) not in days]


def latest_play(cursor):
    cursor.execute(sql_queries.LATEST_PLAY_SQL)
    return cursor.fetchone()[0]


def report(states, latest, runs):
    """The status as text: the datasets' table, the latest play, missing days, the runs."""
    rows = [
        (s.name, s.listed, s.loaded, s.new, "?" if s.changed is None else s.changed, s.gone) for s in states
    ]
    lines = [table(rows, ("dataset", "in source", "loaded", "new", "changed", "gone")), ""]
    lines.append(f"latest play loaded: {latest or 'none'}")
    for state in states:
        if state.missing_days is None:
            continue
        days = state.missing_days
        shown = ", ".join(str(day) for day in days[:SHOWN_DAYS]) + (" …" if len(days) > SHOWN_DAYS else "")
        lines.append(
            f"{state.name} days missing in the loaded range: {len(days)}" + (f" ({shown})" if days else "")
        )
    waiting = sum(s.new + (s.changed or 0) + s.gone for s in states)
    lines.append(
        f"the next run would stage or take back {waiting} files" if waiting else "the warehouse is up to date"
    )
    lines += ["", "latest runs:", history.as_table(runs)]
    return "\n".join(lines)


def status(cursor, config):
    return report(source_states(cursor, config), latest_play(cursor), history.latest(cursor, SHOWN_RUNS))
