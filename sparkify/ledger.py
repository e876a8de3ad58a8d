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
from sparkify.errors import UsageError
from sparkify.output import first_and_more

log = logging.getLogger("sparkify")
LEDGER_INSERT_PAGE_ROWS = 1000
COPY_CHUNK_ROWS = 10_000  # one COPY message per chunk, not per file


class Selection(NamedTuple):
    """What the ledger makes of one dataset's listing."""

    staged: list  # the items to stage: new and changed (and, staged again, loaded before)
    new: int
    changed: int
    already_loaded: int  # listed, and loaded in this version before
    again: tuple = ()  # the names of the staged files loaded before: their old rows are retracted
    gone: tuple = ()  # the names of loaded files the listing no longer holds
    changed_files: tuple = ()  # the names of the changed ones among again

    @property
    def whole(self):
        """Does it stage every file listed (and at least one)?"""
        return 0 < len(self.staged) == self.new + self.changed + self.already_loaded

    @property
    def replaces(self):
        """Does staging it replace rows of the ledger (changed files, or a full refresh)?"""
        return len(self.staged) > self.new

    def retracted(self, every_file=True):
        """(file, change) of the files whose old rows go: changed, gone, and with
        every_file also those staged again unchanged."""
        changed = set(self.changed_files)
        again = [(f, "changed" if f in changed else "staged again") for f in self.again]
        kept = again if every_file else [(f, c) for f, c in again if c == "changed"]
        return kept + [(file, "gone") for file in self.gone]


def loaded_versions(cursor, dataset):
    """{file: (size, version)} of a dataset's loaded files (names only, not data: a
    catalogue of 100,000 files is a few MB)."""
    cursor.execute(sql_queries.LOADED_FILES_SELECT, (dataset.name,))
    return {file: (size, version) for file, size, version in cursor.fetchall()}


def select(dataset, items, identity, known, full_refresh=False, listed=lambda file: True):
    """Split a dataset's listing by the ledger. identity(item) -> (file, size, version);
    listed(file): could the listing hold this loaded file (a dataset loaded by day is
    listed only for --from/--to's days)? A loaded file it could hold but does not is gone.

    A changed or gone file of a dataset marked whole_if_changed (the song catalogue: its
    kept records cannot be told apart by file, so they are replaced) stages every file
    again.
    """
    selection = _split(items, identity, known, full_refresh, listed)
    if dataset.whole_if_changed and (selection.changed or selection.gone) and not selection.whole:
        return _split(items, identity, known, True, listed)
    return selection


def _split(items, identity, known, full_refresh, listed):
    staged, again, changed_files, new, changed, already_loaded, found = [], [], [], 0, 0, 0, set()
    for item in items:
        file, size, version = identity(item)
        found.add(file)
        seen = known.get(file)
        if seen is None:
            new += 1
        elif seen != (size, version):
            changed += 1
            again.append(file)
            changed_files.append(file)
        else:
            already_loaded += 1
            if not full_refresh:
                continue
            again.append(file)
        staged.append(item)
    gone = sorted(file for file in known if file not in found and listed(file))
    return Selection(staged, new, changed, already_loaded, tuple(again), tuple(gone), tuple(changed_files))


def with_shared(selection, items, identity, shared):
    """The selection, also staging again the listed files named in shared (they hold a
    play of a retracted file: re-derived, it must meet every copy of itself)."""
    staged_names = {identity(item)[0] for item in selection.staged}
    extra = [item for item in items if identity(item)[0] in shared and identity(item)[0] not in staged_names]
    if not extra:
        return selection
    names = [identity(item)[0] for item in extra]
    return selection._replace(staged=selection.staged + extra, again=selection.again + tuple(names))


def require_listed(dataset, shared, selection, identity):
    """Every file sharing a play with a retracted file must be staged again; one the
    listing left out (outside --from/--to) stops the run."""
    staged = {identity(item)[0] for item in selection.staged}
    missing = sorted(set(shared) - staged)
    if missing:
        raise UsageError(
            f"{dataset.name}: {first_and_more(missing)} share plays with the files taken back this run "
            "but are outside --from/--to; run without --from/--to"
        )


def files_sharing_plays(cursor, retracted):
    """The files that hold a play of a retracted file, and the files that hold a play of
    those, and so on: each is staged again, so that a play taken back is chosen again
    from every copy of it, as a full load would choose it."""
    retracted, sharing = set(retracted), set()
    while retracted:
        cursor.execute(sql_queries.FILES_SHARING_PLAYS_SQL, (tuple(retracted), tuple(retracted | sharing)))
        found = {file for (file,) in cursor.fetchall()} - sharing
        sharing |= found
        retracted = found
    return sharing


class RetractionRefused(UsageError):
    """A listing would take back more of the warehouse than the run may without asking."""


def check_retraction(dataset, selection, known, limit_percent, allowed, source):
    """Stop before anything changes when more than limit_percent of a dataset's loaded
    files are gone from its listing (a wrong path, an emptied folder, a bucket mid-sync),
    unless the user confirmed it (--allow-retract)."""
    gone = len(selection.gone)
    if allowed or not gone or gone * 100 <= limit_percent * len(known):
        return
    raise RetractionRefused(
        f"{gone} of the {len(known)} {dataset.name} files loaded before are gone from {source}; "
        f"the run stopped before changing anything. If they were removed on purpose, run again "
        f"with --allow-retract (or raise [ETL] RETRACT_LIMIT_PERCENT, now {limit_percent})"
    )


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


def forget(cursor, dataset, files):
    """The gone files leave the ledger (their rows leave the warehouse in the transform)."""
    if files:
        cursor.execute(sql_queries.LOADED_FILES_DELETE_GONE, (dataset.name, tuple(files)))


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
