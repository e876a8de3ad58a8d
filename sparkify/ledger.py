"""The ledger of loaded files: a run stages only the data files that are new, or that
changed since a run loaded them; --full-refresh stages everything again.

A file is identified by its path within the dataset's folder (on S3 its key) and its
version: size and modification time in nanoseconds locally, size and ETag on S3.
The ledger is written inside the run's transaction, so a run that rolls back has
loaded nothing.
"""

import logging
from typing import NamedTuple

import psycopg2.extras

import sql_queries
from sparkify.copytext import ChunkStream, copy_text_line

log = logging.getLogger("sparkify")
LEDGER_INSERT_PAGE_ROWS = 1000
COPY_CHUNK_ROWS = 10_000  # one COPY message per chunk, not per file


class Selection(NamedTuple):
    """What the ledger makes of one dataset's listing."""

    staged: list  # the items to stage: new and changed
    new: int
    changed: int
    already_loaded: int

    @property
    def whole(self):
        """Does it stage every file listed (and at least one)?"""
        return 0 < len(self.staged) == self.new + self.changed + self.already_loaded

    @property
    def replaces(self):
        """Does staging it replace rows of the ledger (changed files, or a full refresh)?"""
        return len(self.staged) > self.new


def loaded_versions(cursor, dataset):
    """{file: (size, version)} of a dataset's loaded files (names only, not data: a
    catalogue of 100,000 files is a few MB)."""
    cursor.execute(sql_queries.LOADED_FILES_SELECT, (dataset.name,))
    return {file: (size, version) for file, size, version in cursor.fetchall()}


def select(dataset, items, identity, known, full_refresh=False):
    """Split a dataset's listing by the ledger. identity(item) -> (file, size, version).

    A changed file of a dataset marked whole_if_changed (the song catalogue: its kept records
    cannot be told apart by file, so they are replaced) stages every file again.
    """
    selection = _split(items, identity, known, full_refresh)
    if dataset.whole_if_changed and selection.changed and not selection.whole:
        return _split(items, identity, known, full_refresh=True)
    return selection


def _split(items, identity, known, full_refresh):
    staged, new, changed, already_loaded = [], 0, 0, 0
    for item in items:
        file, size, version = identity(item)
        seen = known.get(file)
        if seen is None:
            new += 1
        elif seen != (size, version):
            changed += 1
        else:
            already_loaded += 1
            if not full_refresh:
                continue
        staged.append(item)
    return Selection(staged, new, changed, already_loaded)


def record(cursor, engine, rows, replacing=True):
    """rows: (dataset, file, size, version, run_id, records) of the files this run staged.
    replacing: some of them may be in the ledger already (changed, or --full-refresh),
    so they go through a temporary table that replaces their rows in one statement;
    otherwise (only new files, a first load above all) they are written directly."""
    rows = list(rows)
    if not rows:
        return
    target = sql_queries.LOADED_FILES
    if replacing:
        cursor.execute(sql_queries.NEW_LOADED_FILES_CREATE)
        target = target._replace(name="new_loaded_files")
    if engine.copy_from_stdin:
        chunks = (
            "".join(map(copy_text_line, rows[start : start + COPY_CHUNK_ROWS])).encode("utf-8")
            for start in range(0, len(rows), COPY_CHUNK_ROWS)
        )
        cursor.copy_expert(sql_queries.copy_from_stdin_sql(target), ChunkStream(chunks))
    else:
        psycopg2.extras.execute_values(
            cursor,
            sql_queries.insert_values_sql(target),
            rows,
            page_size=LEDGER_INSERT_PAGE_ROWS,
        )
    if replacing:
        for statement in sql_queries.LOADED_FILES_REPLACE:
            cursor.execute(statement)


def report_selection(selection):
    """How many files were new, changed and loaded before: skipped, or staged again
    (--full-refresh; a Redshift COPY from a prefix, which reads them all; a changed file
    of a dataset staged whole when one changes)."""
    log.info(
        "%-15s   %d new files, %d changed, %d already loaded (%s)",
        "",
        selection.new,
        selection.changed,
        selection.already_loaded,
        "staged again" if selection.whole and selection.already_loaded else "skipped",
    )
