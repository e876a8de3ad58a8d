"""A local run's staging: each dataset's new and changed files, read from local folders
(s3:// sources are downloaded first), converted as Redshift's COPY would convert them
and streamed into the staging tables with COPY … FROM STDIN (sparkify.staging).

The same steps as the Redshift loader's (sparkify.redshift_load): `prepare` before the
run's transaction, `stage` in it, `finish` after it.
"""

import logging
import os
from contextlib import nullcontext
from typing import NamedTuple

import sql_queries
from sparkify import ledger
from sparkify.datasets import DATASETS
from sparkify.jsonfiles import in_window, list_data_files
from sparkify.output import timed
from sparkify.s3source import local_sources
from sparkify.staging import mixes_notations, read_jsonpaths, stage_dataset, staging_columns

log = logging.getLogger("sparkify")


class LocalDataset(NamedTuple):
    dataset: object  # sparkify.datasets.Dataset
    root: str  # its folder (or one file)
    columns: list  # staging.Column, in the staging table's order
    window: tuple | None  # (first day, last day) for a dataset loaded by day


def prepare(conn, config, window):
    """Nothing to do before the transaction: the folders are listed in it."""
    return window


def planned_preparation():
    return []


def explained_failures(conn, config, prepared, rejects):
    """The local loader's failures explain themselves."""
    return nullcontext()


def finish(prepared, config, run_id):
    """Nothing is left behind: downloaded sources are removed as the staging ends."""


def stage(cursor, config, window, run, seconds_by_phase):
    """Refresh every staging table from its folder with the files the ledger does not hold
    yet (or holds in another version); returns ({dataset name: Counters}, {dataset name:
    ledger.Selection})."""
    for setting in sql_queries.POSTGRES_RUN_SETTINGS:
        cursor.execute(setting)
    results, selections = {}, {}
    with local_sources(config, window) as sources:
        for local in local_datasets(sources, window):
            dataset = local.dataset
            with timed(seconds_by_phase, f"stage {dataset.staging.name}") as elapsed:
                cursor.execute(sql_queries.empty_staging_sql(dataset.staging, config.engine))
                choose = LedgerChoice(cursor, local, run, config)
                counters = stage_dataset(
                    cursor,
                    dataset.name,
                    dataset.staging,
                    local.root,
                    local.columns,
                    local.window,
                    config.repair_mojibake,
                    run.rejects,
                    workers=os.cpu_count() or 1,
                    choose=choose,
                    source_name=choose.file_name if dataset.staging.source_column else None,
                )
                ledger.record(
                    cursor,
                    config.engine,
                    (
                        (dataset.name, *choose.identity(item), run.run_id, counters.records.get(item[0], 0))
                        for item in choose.selection.staged
                    ),
                    replacing=choose.selection.replaces,
                )
                ledger.forget(cursor, dataset, choose.selection.gone)
            report_staging(dataset, counters, elapsed())
            ledger.report_selection(choose.selection)
            results[dataset.name] = counters
            selections[dataset.name] = choose.selection
    return results, selections


def local_datasets(sources, window):
    """Every dataset with its folder and columns, in load order. sources: {[S3] source
    key: local path}."""
    found = []
    for dataset in DATASETS:
        paths = None
        if dataset.jsonpaths_key:
            paths = read_jsonpaths(sources[dataset.jsonpaths_key])
            if mixes_notations(paths):
                log.warning(
                    "%-15s   the JSONPaths file mixes bracket and dot notation; Redshift refuses it", ""
                )
        columns = staging_columns(dataset.staging, paths)
        days = window if dataset.by_day else None
        found.append(LocalDataset(dataset, sources[dataset.config_key], columns, days))
    return found


class LedgerChoice:
    """choose(listing) -> the files to stage; remembers the ledger's Selection and each
    file's identity (path in the folder, size, mtime) for the ledger's new rows. It
    stops the run if too many loaded files are gone, and adds the files that share a
    play with a file taken back."""

    def __init__(self, cursor, local, run, config):
        self.cursor, self.local, self.run, self.config = cursor, local, run, config
        self.known = ledger.loaded_versions(cursor, local.dataset)
        self.selection = self.identity = None

    def __call__(self, listing):
        dataset, window = self.local.dataset, self.local.window
        self.identity = local_identity(self.local.root, listing)
        self.selection = ledger.select(
            dataset,
            listing.files,
            self.identity,
            self.known,
            self.run.full_refresh,
            listed=lambda file: (
                not window or window == (None, None) or in_window(os.path.basename(file), window)
            ),
        )
        ledger.check_retraction(
            dataset,
            self.selection,
            self.known,
            self.config.retract_limit_percent,
            self.run.allow_retract,
            self.local.root,
        )
        if dataset.staging.source_column and (self.selection.again or self.selection.gone):
            retracted = [file for file, _ in self.selection.retracted()]
            shared = ledger.files_sharing_plays(self.cursor, retracted) - set(self.selection.gone)
            self.selection = ledger.with_shared(self.selection, listing.files, self.identity, shared)
            ledger.require_listed(dataset, shared, self.selection, self.identity)
        return self.selection.staged

    def file_name(self, path):
        """What the ledger calls the file at path (relative to the dataset's folder)."""
        return self.identity((path, 0))[0]


def local_identity(root, listing):
    """item (path, size) -> (file relative to the dataset's folder, size, mtime in ns)."""
    base = os.path.join(root if os.path.isdir(root) else os.path.dirname(root), "")

    def identity(item):
        path, size = item  # listed under root: the relative path is what follows base
        return path[len(base) :], size, str(listing.modified[path])

    return identity


# What the local loader accepts that Redshift's COPY would load differently or refuse,
# so that a local run predicts production (docs/redshift.md).
REDSHIFT_DIFFERENCES = (
    ("repaired", "text values repaired (double-encoded UTF-8); Redshift loads them as they are"),
    ("nul_removed", "text values with NUL characters removed; Redshift's COPY reads NUL as a record's end"),
    (
        "decimal_integers",
        "whole numbers written with a decimal point (7.0); not documented to load on Redshift",
    ),
)


def report_staging(dataset, counters, seconds):
    log.info(
        "%-15s %d files, %d records read, %d loaded, %d rejected (%.2f s)",
        dataset.staging.name,
        counters.files,
        counters.read,
        counters.loaded,
        counters.rejected,
        seconds,
    )
    notes = [
        (counters.truncated, "text values truncated to the column width"),
        (counters.empty_files, "files held no records"),
        (counters.outside_window, "files outside --from/--to skipped"),
        (
            len(counters.ignored),
            "files ignored (not .json or .json.gz): "
            + ", ".join(os.path.basename(p) for p in counters.ignored[:5]),
        ),
        *((getattr(counters, name), what) for name, what in REDSHIFT_DIFFERENCES),
    ]
    for count, what in notes:
        if count:
            log.info("%-15s   %d %s", "", count, what)
    if not counters.listing.files:
        log.warning("%s: no data files found", dataset.name)


def planned_statements(config, window):
    """(what, SQL) of the statements a run sends to stage, in order (--dry-run)."""
    steps = [("settings", setting) for setting in sql_queries.POSTGRES_RUN_SETTINGS]
    for dataset in DATASETS:
        source = config.get("S3", dataset.config_key)
        days = window if dataset.by_day else None
        files = (
            "the data files"
            if source.startswith("s3://")
            else f"{len(list_data_files(source, days).files)} files"
        )
        table = dataset.staging
        steps += [
            (table.name, sql_queries.empty_staging_sql(table, config.engine)),
            (
                f"{table.name}: rows from {files} under {source}",
                sql_queries.copy_from_stdin_sql(table, freeze=True),
            ),
            (table.name, sql_queries.analyze_sql(table)),
        ]
    return steps
