"""Every DDL, COPY and INSERT…SELECT the pipeline runs.

SQL only: table definitions, statement constants and small pure builders. Nothing here
reads configuration or touches a database; the scripts pass values in.

Each table is defined once (`Table`). `create_table_sql(table, engine)` is the one place
where the PostgreSQL DDL is derived from the Redshift DDL: PostgreSQL gets the same
columns and keys without Redshift's distribution and sort clauses (and UNLOGGED staging),
text collated "C" (byte order, as Redshift's).

The sections follow a run: the tables, before the run, the run lock, staging, the
transform, the checks, the run's record.

The transform statements are the same text on both engines and use only SQL that
Redshift supports: no ON CONFLICT, DISTINCT ON, RETURNING, SERIAL, JSON operators or
generate_series. Re-runs are safe because every insert is an anti-join against what the
star table already holds, and every update touches only rows whose chosen values differ
(songs, artists, and plays matched again when songs arrive). The transform is a list of
steps (`TRANSFORM_STEPS`), each with the condition it runs on; `transform_plan(engine)`
adds what an engine needs (PostgreSQL's ANALYZE, its inserts in key order), and the run
and --dry-run both read it. PostgreSQL gets its own indexes (`indexes`), built by the
run that first fills their table: Redshift has none.
"""

import re
from typing import NamedTuple

from sparkify.engines import POSTGRES, REDSHIFT  # noqa: F401 - the engines the builders take


class Reference(NamedTuple):
    """A column whose every value is a key of another table (checked, not declared)."""

    column: str
    parent: str  # the table
    parent_column: str


class Table(NamedTuple):
    name: str
    columns: tuple  # ((column, "TYPE [NOT NULL]"), ...)
    primary_key: tuple = ()  # its columns; declared where the engine enforces keys, always checked
    natural_key: tuple = ()  # columns that identify a row as the source does (checked unique)
    references: tuple = ()  # Reference, in the order the checks report them
    redshift_layout: str = ""  # DISTSTYLE / DISTKEY / SORTKEY, Redshift only
    indexes: tuple = ()  # PostgreSQL only: ((method, (column, ...)), ...); Redshift has none
    copy_options: tuple = ()  # Redshift's COPY from S3: how it reads this table's values
    source_column: str | None = None  # staging: the column naming each row's file, not COPYd

    @property
    def column_names(self):
        return [name for name, _ in self.columns]

    @property
    def copied_columns(self):
        """The columns the data fills, in JSONPaths order: all but the source column."""
        return tuple(column for column in self.columns if column[0] != self.source_column)


# ==============================================================================================
# 1. The tables (create_tables.py drops and creates them)
# ==============================================================================================


# --- Staging: the raw JSON, camelCase renamed to snake_case once, here. -------------

# Column order is the order of the JSONPaths file (log_json_path.json): Redshift maps
# the n-th path to the n-th column, and so does the local loader.
STAGING_EVENTS = Table(
    name="staging_events",
    columns=(
        ("artist", "VARCHAR(512)"),
        ("auth", "VARCHAR(32)"),
        ("first_name", "VARCHAR(256)"),
        ("gender", "VARCHAR(16)"),
        ("item_in_session", "INTEGER NOT NULL"),
        ("last_name", "VARCHAR(256)"),
        ("length", "DOUBLE PRECISION"),
        ("level", "VARCHAR(16)"),
        ("location", "VARCHAR(512)"),
        ("method", "VARCHAR(16)"),
        ("page", "VARCHAR(64)"),
        ("registration", "DOUBLE PRECISION"),
        ("session_id", "INTEGER NOT NULL"),
        ("song", "VARCHAR(512)"),
        ("status", "INTEGER"),
        ("ts", "TIMESTAMP NOT NULL"),
        ("user_agent", "VARCHAR(512)"),
        ("user_id", "VARCHAR(32)"),
        # The file each event came from, as the ledger names it: the run's retractions
        # and the sources of plays and users (play_sources, user_sources) read it.
        ("source_file", "VARCHAR(1024)"),
    ),
    # Staging is read whole by every transform: spread it evenly.
    redshift_layout="DISTSTYLE EVEN",
    copy_options=("TIMEFORMAT 'epochmillisecs'",),  # ts is milliseconds since the epoch
    source_column="source_file",
)

# Column names equal the JSON field names: COPY … JSON 'auto' maps them by name.
STAGING_SONGS = Table(
    name="staging_songs",
    columns=(
        ("num_songs", "INTEGER"),
        ("artist_id", "VARCHAR(32) NOT NULL"),
        ("artist_latitude", "DOUBLE PRECISION"),
        ("artist_longitude", "DOUBLE PRECISION"),
        ("artist_location", "VARCHAR(512)"),
        ("artist_name", "VARCHAR(512)"),
        ("song_id", "VARCHAR(32) NOT NULL"),
        ("title", "VARCHAR(512)"),
        ("duration", "DOUBLE PRECISION"),
        ("year", "INTEGER"),
    ),
    redshift_layout="DISTSTYLE EVEN",
)

# --- Star schema. ---------------------------------------------------------------------
# Redshift layout: users, songs and artists are small dimensions, copied to every node
# (DISTSTYLE ALL) so joins to them never move data. time grows with the fact, so it is
# distributed like the fact, on start_time: the fact's most common join (every
# by-hour/by-day question) is then local to each slice, start_time has no skew (unlike
# song_id, NULL for most plays), and both are sorted by time for range-restricted scans.

SONGPLAYS = Table(
    name="songplays",
    columns=(
        ("songplay_id", "CHAR(32) NOT NULL"),  # MD5 of the natural key: stable across loads
        ("start_time", "TIMESTAMP NOT NULL"),
        ("user_id", "INTEGER NOT NULL"),
        ("level", "VARCHAR(16)"),
        ("song_id", "VARCHAR(32)"),
        ("artist_id", "VARCHAR(32)"),
        ("session_id", "INTEGER NOT NULL"),
        ("item_in_session", "INTEGER NOT NULL"),
        ("location", "VARCHAR(512)"),
        ("user_agent", "VARCHAR(512)"),
        # What the event said was played, matched or not: analysts count every play by it.
        ("song_title", "VARCHAR(512)"),
        ("artist_name", "VARCHAR(512)"),
        ("song_length", "DOUBLE PRECISION"),
    ),
    primary_key=("songplay_id",),
    natural_key=("user_id", "session_id", "item_in_session", "start_time"),
    references=(
        Reference("user_id", "users", "user_id"),
        Reference("start_time", "time", "start_time"),
        Reference("song_id", "songs", "song_id"),
        Reference("artist_id", "artists", "artist_id"),
    ),
    redshift_layout="DISTSTYLE KEY DISTKEY(start_time) SORTKEY(start_time)",
    # A run whose new songs change a (title, artist name)'s candidates finds the plays to
    # match again through this index, not by reading the fact. A B-tree of the title is
    # the smallest and quickest to build of those measured (docs/benchmarks.md).
    indexes=(("btree", ("song_title",)),),
)

USERS = Table(
    name="users",
    columns=(
        ("user_id", "INTEGER NOT NULL"),
        ("first_name", "VARCHAR(256)"),
        ("last_name", "VARCHAR(256)"),
        ("gender", "VARCHAR(16)"),
        ("level", "VARCHAR(16)"),
        # The event the attributes were taken from: a later load only overwrites a user
        # with a newer event.
        ("latest_event_at", "TIMESTAMP NOT NULL"),
        ("latest_item_in_session", "INTEGER NOT NULL"),
    ),
    primary_key=("user_id",),
    redshift_layout="DISTSTYLE ALL SORTKEY(user_id)",
)

SONGS = Table(
    name="songs",
    columns=(
        ("song_id", "VARCHAR(32) NOT NULL"),
        ("title", "VARCHAR(512)"),
        ("artist_id", "VARCHAR(32) NOT NULL"),
        ("year", "INTEGER"),
        ("duration", "DOUBLE PRECISION"),
        # The artist's name as spelt in this song's own record: plays match on it.
        ("artist_name", "VARCHAR(512)"),
    ),
    primary_key=("song_id",),
    redshift_layout="DISTSTYLE ALL SORTKEY(song_id)",
    indexes=(("btree", ("title", "artist_name")),),  # plays are matched on these
)

ARTISTS = Table(
    name="artists",
    columns=(
        ("artist_id", "VARCHAR(32) NOT NULL"),
        ("name", "VARCHAR(512)"),
        ("location", "VARCHAR(512)"),
        ("latitude", "DOUBLE PRECISION"),
        ("longitude", "DOUBLE PRECISION"),
    ),
    primary_key=("artist_id",),
    redshift_layout="DISTSTYLE ALL SORTKEY(artist_id)",
)

TIME = Table(
    name="time",
    columns=(
        ("start_time", "TIMESTAMP NOT NULL"),
        ("hour", "SMALLINT NOT NULL"),
        ("day", "SMALLINT NOT NULL"),
        ("week", "SMALLINT NOT NULL"),
        ("month", "SMALLINT NOT NULL"),
        ("year", "SMALLINT NOT NULL"),
        ("weekday", "SMALLINT NOT NULL"),  # 0 = Sunday … 6 = Saturday
    ),
    primary_key=("start_time",),
    redshift_layout="DISTSTYLE KEY DISTKEY(start_time) SORTKEY(start_time)",
)

# Every record a run could not load, one row each, on both engines: the local loader's
# rejects; on Redshift the rows COPY skipped (read from its load-error log) and the
# events whose userId is not an INTEGER. line is NULL where Redshift cannot tell it.
LOAD_REJECTS = Table(
    name="load_rejects",
    columns=(
        ("run_id", "VARCHAR(32) NOT NULL"),
        ("rejected_at", "TIMESTAMP NOT NULL"),
        ("dataset", "VARCHAR(16) NOT NULL"),
        ("file", "VARCHAR(1024) NOT NULL"),
        ("line", "INTEGER"),
        ("reason", "VARCHAR(1024) NOT NULL"),
        ("raw_value", "VARCHAR(1024)"),
    ),
)

# Every data file a run has staged, so later runs stage only what is new or changed.
# A file is its path relative to the dataset's folder (S3: its key) and a version: the
# modification time in nanoseconds locally, the ETag on S3. Written in the run's
# transaction: a run that rolls back has loaded nothing.
LOADED_FILES = Table(
    name="loaded_files",
    columns=(
        ("dataset", "VARCHAR(16) NOT NULL"),
        ("file", "VARCHAR(1024) NOT NULL"),
        ("size", "BIGINT NOT NULL"),
        ("version", "VARCHAR(64) NOT NULL"),
        ("run_id", "VARCHAR(32) NOT NULL"),
        ("records", "INTEGER"),  # records read from it (NULL on Redshift: COPY does not say)
    ),
    primary_key=("dataset", "file"),
    redshift_layout="DISTSTYLE ALL",
)

# Which log files each play came from (a play's natural key may be in several files):
# a changed or deleted file's plays are found here and retracted (docs/guarantees.md).
# Laid out as songplays: a daily run's check reads the day's blocks; a retraction, which
# is rare, reads the file column whole.
PLAY_SOURCES = Table(
    name="play_sources",
    columns=(
        ("file", "VARCHAR(1024) NOT NULL"),
        ("songplay_id", "CHAR(32) NOT NULL"),
        ("start_time", "TIMESTAMP NOT NULL"),
    ),
    # No primary key: kept up row by row, it cost a first load of 800,000 plays more than
    # the insert itself; the run writes each (file, play) once, and PostgreSQL's indexes
    # are built after the first fill (docs/benchmarks.md).
    redshift_layout="DISTSTYLE KEY DISTKEY(start_time) SORTKEY(start_time)",
    indexes=(("btree", ("file",)), ("btree", ("songplay_id",))),
)

# Each user's latest event in each log file: when a file is retracted, the users whose
# latest event it held are derived again from what the other files hold.
USER_SOURCES = Table(
    name="user_sources",
    columns=(
        ("file", "VARCHAR(1024) NOT NULL"),
        *USERS.columns,
        ("latest_session_id", "INTEGER NOT NULL"),
    ),
    redshift_layout="DISTSTYLE KEY DISTKEY(user_id) SORTKEY(file)",  # no primary key: as play_sources
    indexes=(("btree", ("file",)), ("btree", ("user_id",))),
)

# Every file a run retracted: changed (its old rows replaced by its new ones) or gone
# from the source (its rows removed). Written in the run's transaction.
FILE_RETRACTIONS = Table(
    name="file_retractions",
    columns=(
        ("run_id", "VARCHAR(32) NOT NULL"),
        ("dataset", "VARCHAR(16) NOT NULL"),
        ("file", "VARCHAR(1024) NOT NULL"),
        ("change", "VARCHAR(16) NOT NULL"),  # changed | gone
    ),
    primary_key=("run_id", "dataset", "file"),
    redshift_layout="DISTSTYLE ALL",
)

# One row per etl.py run that reached the database: 'committed' (written in the
# run's own transaction, so it commits with the data) or 'failed' (written after the
# rollback, with the one-line error). A run killed outright leaves no row. Kept by
# create_tables.py, like the run lock's table: the history outlives a reset.
ETL_RUNS = Table(
    name="etl_runs",
    columns=(
        ("run_id", "VARCHAR(32) NOT NULL"),
        ("started_at", "TIMESTAMP NOT NULL"),
        ("finished_at", "TIMESTAMP NOT NULL"),
        ("status", "VARCHAR(16) NOT NULL"),
        ("target", "VARCHAR(16) NOT NULL"),
        ("window_from", "DATE"),
        ("window_to", "DATE"),
        ("full_refresh", "BOOLEAN NOT NULL"),
        ("song_files", "INTEGER"),
        ("log_files", "INTEGER"),
        ("records_read", "INTEGER"),
        ("records_loaded", "INTEGER"),
        ("records_rejected", "INTEGER"),
        ("songplays_added", "INTEGER"),
        ("users_added", "INTEGER"),
        ("songs_added", "INTEGER"),
        ("artists_added", "INTEGER"),
        ("time_added", "INTEGER"),
        ("stage_seconds", "DOUBLE PRECISION"),
        ("transform_seconds", "DOUBLE PRECISION"),
        ("checks_seconds", "DOUBLE PRECISION"),
        ("total_seconds", "DOUBLE PRECISION"),
        ("error", "VARCHAR(1024)"),
    ),
    primary_key=("run_id",),
    redshift_layout="DISTSTYLE ALL SORTKEY(started_at)",
)

# Every song record the warehouse has loaded, as staged (the same columns as
# staging_songs). A run with new song records chooses the songs and artists they touch
# again, from all of their records, by the rules of a full load: so a catalogue that
# arrives over many runs holds what one load of every file would. A run that stages
# every song file replaces it (transform_steps).
SONG_RECORDS = Table(
    name="song_records",
    columns=STAGING_SONGS.columns,
    redshift_layout="DISTSTYLE ALL SORTKEY(artist_id)",
    indexes=(("btree", ("song_id",)), ("btree", ("artist_id",))),
)

STAGING_TABLES = (STAGING_EVENTS, STAGING_SONGS)
STAR_TABLES = (SONGPLAYS, USERS, SONGS, ARTISTS, TIME)


# The tables create_tables.py drops and recreates, in creation order, on both engines
# (the run lock's table is created once and never dropped).
ALL_TABLES = (
    STAGING_TABLES
    + STAR_TABLES
    + (SONG_RECORDS, PLAY_SOURCES, USER_SOURCES, LOAD_REJECTS, LOADED_FILES, FILE_RETRACTIONS)
)


def create_table_sql(table, engine):
    """CREATE TABLE for one engine; the only place the two DDL dialects differ.

    Redshift gets the distribution and sort clauses, and no PRIMARY KEY: Redshift does
    not enforce it, and its planner assumes a declared key is unique, so a duplicate the
    checks must find could be optimised out of their query ("Defining table
    constraints", https://docs.aws.amazon.com/redshift/latest/dg/t_Defining_constraints.html).
    PostgreSQL enforces the keys, and gets staging tables UNLOGGED: they are refilled
    on every run, so writing them to the WAL buys nothing. Its text columns are
    collated "C" (`postgres_type`).
    """
    types = [
        postgres_type(sql_type) if engine.collates_text_in_ddl else sql_type for _, sql_type in table.columns
    ]
    lines = [f"    {name} {sql_type}" for name, sql_type in zip(table.column_names, types, strict=True)]
    if engine.enforces_keys and table.primary_key:
        lines.append(f"    PRIMARY KEY ({', '.join(table.primary_key)})")
    body = ",\n".join(lines)
    layout = f"\n{table.redshift_layout}" if engine.layout_clauses and table.redshift_layout else ""
    kind = "UNLOGGED TABLE" if engine.unlogged_staging and table in STAGING_TABLES else "TABLE"
    return f"CREATE {kind} IF NOT EXISTS {table.name} (\n{body}\n){layout}"


def postgres_type(sql_type):
    """A text type collated "C": PostgreSQL then orders, compares and takes MIN/MAX by bytes
    (UTF-8: code points) whatever the database's locale, as Redshift does ("binary UTF8
    ordering", c_collation_sequences.html; it has no COLLATE clause). Temporary tables made
    by CREATE TABLE AS keep the collation of the columns they copy."""
    if varchar_width(sql_type) is None:
        return sql_type
    text_type, _, rest = sql_type.partition(" ")
    return f'{text_type} COLLATE "C" {rest}'.rstrip()


class Index(NamedTuple):
    name: str
    table: str
    columns: tuple
    create_sql: str


def indexes(engine):
    """PostgreSQL's indexes of every table; none on Redshift, which has no indexes.

    They are built by the run that first fills their table, after its inserts, not by
    create_tables.py: building an index over 800,000 new plays costs less than keeping it
    up row by row during their insert (bench.py), and CREATE INDEX takes only a SHARE
    lock, so analysts still read the table while the run builds it (dropping an index for
    a large insert would lock them out until the commit)."""
    if not engine.indexes:
        return []
    return [
        Index(
            name,
            table.name,
            columns,
            f"CREATE INDEX IF NOT EXISTS {name} ON {table.name} USING {method} ({', '.join(columns)})",
        )
        for table in ALL_TABLES
        for method, columns in table.indexes
        for name in [f"{table.name}_{'_'.join(columns)}_idx"]
    ]


# Which of the named indexes (an array parameter) this database lacks; PostgreSQL only.
MISSING_INDEXES_SQL = """
    SELECT index_name
      FROM UNNEST(%s::TEXT[]) AS index_name
     WHERE TO_REGCLASS(index_name) IS NULL
"""


def drop_table_sql(table):
    return f"DROP TABLE IF EXISTS {table.name}"


def varchar_width(sql_type):
    """Byte width of a VARCHAR/CHAR column, or None (Redshift widths count bytes)."""
    match = re.match(r"(?:VAR)?CHAR\((\d+)\)", sql_type)
    return int(match.group(1)) if match else None


# ==============================================================================================
# 2. Before a Redshift run, in a transaction of its own
# ==============================================================================================


# Tables this session's user does not own: Redshift Serverless's temporary credentials
# name the database user after the IAM identity, and only an owner may drop a table or
# COPY with STATUPDATE ON.
def tables_owned_by_others_sql(owner="CURRENT_USER"):
    """(table, owner) of the named tables someone other than owner owns (sparkify/roles.py:
    owner %s, the loader, whose tables the admin hands over)."""
    return f"""
SELECT
    tablename,
    tableowner
FROM pg_tables
WHERE schemaname = CURRENT_SCHEMA()
  AND tablename IN %s
  AND tableowner <> {owner}
ORDER BY tablename
"""


TABLES_OWNED_BY_OTHERS_SQL = tables_owned_by_others_sql()
CURRENT_USER_SQL = "SELECT CURRENT_USER"


# Redshift: the server's clock when a run starts. Load errors are read by session and
# time: pg_last_copy_id() is not updated when the COPY's transaction rolls back, and
# the errors of a failed COPY are read after the rollback
# (https://docs.aws.amazon.com/redshift/latest/dg/PG_LAST_COPY_ID.html). GETDATE() is
# the statement's start, in seconds (https://docs.aws.amazon.com/redshift/latest/dg/r_GETDATE.html).
# In UTC, as the load-error logs' start times are: GETDATE() is in the session's time
# zone, which a user's own setting may change.
SERVER_NOW_STATEMENTS = ("SET timezone TO 'UTC'", "SELECT GETDATE()")


# ==============================================================================================
# 3. The run's transaction opens: the run lock, settings, probes and row counts
# ==============================================================================================


# One run at a time per warehouse (etl.py and create_tables.py), for the length of the
# run's transaction.
# PostgreSQL: a transaction-level advisory lock, waiting at most lock_timeout.
# Redshift: LOCK on a table of its own, waiting at most statement_timeout, then the
# session's own timeout is restored with RESET (SET … TO 0 would throw away the user's
# or the parameter group's; https://docs.aws.amazon.com/redshift/latest/dg/r_RESET.html).
# Redshift takes a transaction's snapshot at its first SELECT, DML or CREATE TABLE
# ("Serializable isolation",
# https://docs.aws.amazon.com/redshift/latest/dg/c_serial_isolation.html): a LOCK after
# any of them would let a run that waited work on a snapshot from before the other run
# committed. So LOCK is the first statement that touches data, and its table is created
# beforehand, in a transaction of its own (RUN_LOCK_TABLE_CREATE).
COMMIT = "COMMIT"  # what a transaction ends with (psycopg2's commit()); --dry-run shows it
RUN_LOCK_KEY = 5_350_001_142  # any 64-bit number, the same for every run
RUN_LOCK_TABLE_CREATE = "CREATE TABLE IF NOT EXISTS etl_run_lock (locked_at TIMESTAMP)"


def redshift_preparation_steps(read_clock, probes=()):
    """(what, SQL) of the transaction of its own that precedes a Redshift run's: the
    owners' check, for etl.py the tables written outside the run lock (probes:
    table_probes(WRITTEN_OUTSIDE_THE_LOCK)), the lock's table, and for etl.py the
    server's clock."""
    steps = [
        ("before the run: tables this user does not own", TABLES_OWNED_BY_OTHERS_SQL),
        *(("before the run: tables a failed run writes after its rollback", sql) for sql in probes),
        ("before the run: the lock's table", RUN_LOCK_TABLE_CREATE),
    ]
    if read_clock:
        steps += [
            ("before the run: the server's clock in UTC, to read this run's load errors", statement)
            for statement in SERVER_NOW_STATEMENTS
        ]
    return [*steps, ("before the run", COMMIT)]


def run_lock_statements(engine, timeout_seconds):
    """The statements that open a run's transaction and take the run lock; the one that
    waits is the second on both engines."""
    seconds = int(timeout_seconds)
    if engine.advisory_lock:
        return [f"SET LOCAL lock_timeout = '{seconds}s'", f"SELECT pg_advisory_xact_lock({RUN_LOCK_KEY})"]
    return [
        f"SET statement_timeout TO {seconds * 1000}",
        "LOCK etl_run_lock",
        "RESET statement_timeout",
    ]


# PostgreSQL only, for the run's transaction. The transform sorts and hashes whole
# staging tables; the default 4 MB of work memory would spill them to disk. JIT
# compilation costs more than it saves on these queries. Free parallel setup lets
# CREATE TEMP TABLE … AS join and sort in parallel workers (docs/benchmarks.md).
POSTGRES_RUN_SETTINGS = (
    "SET LOCAL work_mem = '256MB'",
    "SET LOCAL jit = off",
    "SET LOCAL parallel_setup_cost = 0",
    "SET LOCAL parallel_tuple_cost = 0",
)


def table_probes(tables):
    """One SELECT per table of every column and no row: each fails if the warehouse lacks
    the table or a column (a warehouse made by an older version). Redshift's SELECT takes
    `LIMIT { number | ALL }` (https://docs.aws.amazon.com/redshift/latest/dg/r_SELECT_synopsis.html)."""
    return [f"SELECT {', '.join(table.column_names)} FROM {table.name} LIMIT 0" for table in tables]


# The tables a run writes outside the run lock: a failed run writes its etl_runs row and
# its rejects after its rollback (etl.save_failed_run, etl.save_rejects), while another
# run may hold the lock. At SERIALIZABLE isolation (the default of older provisioned
# clusters) Redshift stops a transaction that cannot be serialized with error 1023, and
# table writes are ordered by their table locks (c_serial_isolation.html,
# c_write_readwrite.html): a run that had read etl_runs, then inserts its own row after a
# failed run committed one, would be rolled back at its last statement. So a Redshift
# run's transaction never reads these two tables: they are probed before the lock, in the
# transaction that prepares the run (redshift_preparation_steps). PostgreSQL's
# serializable isolation finds no conflict between inserts, and its runs read them
# nowhere but in these probes.
WRITTEN_OUTSIDE_THE_LOCK = (LOAD_REJECTS, ETL_RUNS)


def tables_probed_in_the_run(engine):
    """The tables the run's transaction probes right after the lock."""
    every_table = (*ALL_TABLES, ETL_RUNS)
    if not engine.serializable_tables:
        return every_table
    return tuple(table for table in every_table if table not in WRITTEN_OUTSIDE_THE_LOCK)


def has_rows_sql(table_name):
    return f"SELECT EXISTS (SELECT 1 FROM {table_name})"


def count_rows_sql(table):
    return f"SELECT COUNT(*) FROM {table.name}"


# ==============================================================================================
# 4. Staging: the new and changed files into empty staging tables, and the ledger
# ==============================================================================================


# --- Staging refresh. -----------------------------------------------------------------
# Each run stages into empty staging tables, inside its one transaction.
# PostgreSQL: TRUNCATE (transactional there), then COPY FREEZE into the UNLOGGED tables.
# Redshift: "TRUNCATE commits the transaction in which it is run" (r_TRUNCATE.html), and
# a DELETE of every row leaves them "marked for deletion, but not removed" until the
# automatic VACUUM DELETE (t_Reclaiming_storage_space202.html). So each run stages into
# temporary tables of its own, made LIKE the permanent ones ("Distribution style, sort
# keys, BACKUP, and NULL properties are inherited by LIKE tables"; "The temporary table
# can have the same name as a permanent table", and its schema is searched first, so
# every later statement of the run reads it: r_CREATE_TABLE_NEW.html). They are dropped
# at the end of the session; the permanent staging tables stay empty templates.


def empty_staging_sql(table, engine):
    """The statement that gives a run an empty staging table (see above)."""
    if engine.staging_in_temp_tables:
        return f"CREATE TEMP TABLE {table.name} (LIKE {table.name})"
    return f"TRUNCATE {table.name}"


def copy_from_stdin_sql(table, freeze=False):
    """PostgreSQL: the local loader streams rows in COPY text format. FREEZE (allowed
    right after TRUNCATE in the same transaction) spares a later rewrite of the rows."""
    options = " WITH (FREEZE)" if freeze else ""
    return f"COPY {table.name} ({', '.join(table.column_names)}) FROM STDIN{options}"


def insert_values_sql(table):
    """Rows sent from the client where there is no COPY FROM STDIN (Redshift): a
    multi-row INSERT, its VALUES filled in by psycopg2.extras.execute_values."""
    return f"INSERT INTO {table.name} ({', '.join(table.column_names)}) VALUES %s"


def analyze_sql(table):
    """PostgreSQL: fresh statistics after a load, so the next statements get good plans."""
    return f"ANALYZE {table.name}"


# --- Redshift COPY from S3. -------------------------------------------------------------
# Options are data, joined by one builder (as Airflow's S3ToRedshiftOperator does).
# Values that sit inside the SQL text are validated by the config and quoted here.
# STATUPDATE ON: COPY refreshes the staging table's statistics inside the run's
# transaction, so the transform is planned on this run's rows, not the last run's
# ("with STATUPDATE OFF, statistics are never updated"; ON needs the table's owner:
# https://docs.aws.amazon.com/redshift/latest/dg/copy-parameters-data-load.html).

COMMON_COPY_OPTIONS = (
    "TRUNCATECOLUMNS",
    "BLANKSASNULL",
    "EMPTYASNULL",
    "COMPUPDATE OFF",
    "STATUPDATE ON",
)
MAXERROR_LIMIT = 100_000  # Redshift refuses a larger MAXERROR


def quote_literal(value):
    """A SQL string literal; callers pass values already checked against a strict pattern."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "''") + "'"


def copy_source_options(manifest, gzip):
    """MANIFEST when the source lists exactly the files; GZIP when they are compressed
    (a COPY reads every file of its source one way, so the two kinds never mix)."""
    return (("MANIFEST",) if manifest else ()) + (("GZIP",) if gzip else ())


def copy_from_s3_sql(table, source, iam_role, region, json_format, max_errors, manifest=False, gzip=False):
    """COPY one staging table from S3: a prefix, or a manifest of exactly the files."""
    options = [
        f"IAM_ROLE {quote_literal(iam_role)}",
        f"REGION {quote_literal(region)}",
        f"FORMAT AS JSON {quote_literal(json_format)}",
        *copy_source_options(manifest, gzip),
        *table.copy_options,
        *COMMON_COPY_OPTIONS,
        f"MAXERROR {min(int(max_errors), MAXERROR_LIMIT)}",
    ]
    return f"COPY {_copied_column_list(table)}\nFROM {quote_literal(source)}\n" + "\n".join(options)


def _copied_column_list(table):
    """The table, and with a source column the columns COPY fills, in JSONPaths order:
    "COPY tablename (column1 [,column2, ...])"; "If a column in the target table is
    omitted from the column list, then COPY loads the target column's DEFAULT expression.
    If the target column doesn't have a default, then COPY attempts to load NULL."
    (copy-parameters-column-mapping.html). The source column is filled after the COPY."""
    if not table.source_column:
        return table.name
    return f"{table.name} ({', '.join(name for name, _ in table.copied_columns)})"


def source_file_sql(table):
    """Redshift: the file a COPY of one file just loaded, written into the rows it added
    (COPY cannot say which file a row came from)."""
    column = table.source_column
    return f"UPDATE {table.name} SET {column} = %s WHERE {column} IS NULL"


# The rows this session's COPYs skipped or failed on since a time (a run has one
# session, and its own start time guards against a reused session id). Columns as
# documented: https://docs.aws.amazon.com/redshift/latest/dg/r_STL_LOAD_ERRORS.html
# stl_load_errors holds only loads run on the main cluster; COPY with STATUPDATE ON is
# never sent to a concurrency scaling cluster
# (https://docs.aws.amazon.com/redshift/latest/dg/concurrency-scaling.html).
LOAD_ERRORS_SQL = """
SELECT
    TRIM(filename),
    line_number,
    TRIM(colname),
    err_code,
    TRIM(err_reason),
    TRIM(raw_field_value)
FROM stl_load_errors
WHERE session = pg_backend_pid()
  AND starttime >= %s
ORDER BY starttime, filename, line_number
"""

# The same for Redshift Serverless, which has no stl_ views. sys_load_error_detail has
# no raw value column (https://docs.aws.amazon.com/redshift/latest/dg/SYS_LOAD_ERROR_DETAIL.html).
SERVERLESS_LOAD_ERRORS_SQL = """
SELECT
    TRIM(file_name),
    line_number,
    TRIM(column_name),
    error_code,
    TRIM(error_message),
    CAST(NULL AS VARCHAR)
FROM sys_load_error_detail
WHERE session_id = pg_backend_pid()
  AND start_time >= %s
ORDER BY start_time, file_name, line_number
"""


# Redshift's COPY loads any text into the VARCHAR user_id, and the transform casts it to
# INTEGER: one bad value would abort the whole run. Such events are rejected as the
# local loader rejects them: a userId is digits, 0 … 2147483647 (leading zeros allowed).
# "No character but a digit" needs no ^/$ anchors, which Redshift may read as line ends.
# (POSIX ~ and LTRIM(text, characters) are both Redshift and PostgreSQL:
# https://docs.aws.amazon.com/redshift/latest/dg/pattern-matching-conditions-posix.html,
# https://docs.aws.amazon.com/redshift/latest/dg/r_LTRIM.html.)
INVALID_USER_ID = """user_id IS NOT NULL
  AND NOT (
      user_id <> ''
      AND user_id !~ '[^0-9]'
      AND (
          LENGTH(LTRIM(user_id, '0')) < 10
          OR (LENGTH(LTRIM(user_id, '0')) = 10 AND LTRIM(user_id, '0') <= '2147483647')
      )
  )"""

INVALID_USER_ID_EVENTS_SELECT = f"""
SELECT
    user_id,
    ts,
    session_id,
    item_in_session,
    source_file
FROM staging_events
WHERE {INVALID_USER_ID}
ORDER BY source_file, ts, session_id, item_in_session
"""

# The bad events stream through a cursor in the documented forms only. declare.html:
# "DECLARE cursor_name CURSOR FOR query" (psycopg2's named cursors add WITHOUT HOLD, which
# it does not document), "You must declare a cursor within a transaction block. Only one
# cursor at a time can be open per session." fetch.html: "For single-node clusters, the
# maximum value for count is 1000. FORWARD ALL isn't supported for single-node clusters."
INVALID_USER_ID_CURSOR = "invalid_user_id_events"
CURSOR_FETCH_ROWS = 1000
INVALID_USER_ID_EVENTS_DECLARE = (
    f"DECLARE {INVALID_USER_ID_CURSOR} CURSOR FOR{INVALID_USER_ID_EVENTS_SELECT.rstrip()}"
)
INVALID_USER_ID_EVENTS_FETCH = f"FETCH FORWARD {CURSOR_FETCH_ROWS} FROM {INVALID_USER_ID_CURSOR}"
INVALID_USER_ID_EVENTS_CLOSE = f"CLOSE {INVALID_USER_ID_CURSOR}"

INVALID_USER_ID_EVENTS_DELETE = f"""
DELETE FROM staging_events
WHERE {INVALID_USER_ID}
"""


# --- The ledger of loaded files. --------------------------------------------------------

LOADED_FILES_SELECT = """
SELECT
    file,
    size,
    version
FROM loaded_files
WHERE dataset = %s
"""

# The files gone from the source leave the ledger with the rows they brought.
LOADED_FILES_DELETE_GONE = """
DELETE FROM loaded_files
WHERE dataset = %s
  AND file IN %s
"""

FILE_RETRACTIONS_INSERT = insert_values_sql(FILE_RETRACTIONS)

# The other files that hold a play of these files (the second parameter: the files
# already known, the first among them).
FILES_SHARING_PLAYS_SQL = """
SELECT DISTINCT other.file
FROM play_sources AS mine
JOIN play_sources AS other
    ON other.songplay_id = mine.songplay_id
   AND other.start_time = mine.start_time
WHERE mine.file IN %s
  AND other.file NOT IN %s
"""

# This run's files go through a temporary table: a changed (or, with --full-refresh,
# every) file's old row is replaced in one statement, not one per file.
NEW_LOADED_FILES_CREATE = "CREATE TEMP TABLE new_loaded_files (LIKE loaded_files)"

LOADED_FILES_REPLACE = (
    """
DELETE FROM loaded_files
USING new_loaded_files
WHERE loaded_files.dataset = new_loaded_files.dataset
  AND loaded_files.file = new_loaded_files.file
""",
    f"""
INSERT INTO loaded_files (
    {", ".join(LOADED_FILES.column_names)}
)
SELECT
    {", ".join(LOADED_FILES.column_names)}
FROM new_loaded_files
""",
    "DROP TABLE new_loaded_files",
)


# ==============================================================================================
# 5. The transform: staging into the star tables, the same text on both engines
# ==============================================================================================


# --- Text rules and the play filter ---------------------------------------------------------

# Trailing blanks are significant on both engines: 'Heavy Soul ' is not 'Heavy Soul'.
# Redshift ignores them in comparisons ("Trailing spaces in VARCHAR and CHAR values are
# treated as semantically insignificant when values are compared") and so, by the same
# rule, in joins, GROUP BY, DISTINCT, UNION, PARTITION BY and ORDER BY (those are not
# documented; assumed), but counts them in a VARCHAR's length ("Length calculations return
# the length of VARCHAR character strings with trailing spaces included";
# r_Character_types.html, r_OCTET_LENGTH.html). So VARCHAR equality also compares
# OCTET_LENGTH, blank-distinct values are grouped and partitioned apart by it, and a
# text sort key is followed by its OCTET_LENGTH (ties: the shorter first, as in byte order).


def _same_text(a, b):
    """a = b, exactly: trailing blanks included on both engines."""
    return f"{a} = {b} AND OCTET_LENGTH({a}) = OCTET_LENGTH({b})"


_AND_IN_A_SUBQUERY = "\n      AND "


def _columns(table, alias=""):
    """The table's columns, one per line, in its order (alias: prefixed with it)."""
    prefix = f"{alias}." if alias else ""
    return ",\n    ".join(prefix + column for column in table.column_names)


def _insert_new_rows(table, source, alias, existing, same_key):
    """Insert the rows of source (every column of table, by name) whose key table does
    not hold yet: the anti-join that makes every insert safe to run again."""
    return f"""
INSERT INTO {table.name} (
    {_columns(table)}
)
SELECT
    {_columns(table, alias)}
FROM {source} AS {alias}
WHERE NOT EXISTS (
    SELECT 1 FROM {table.name} AS {existing} WHERE {same_key}
)
"""


def _songplay_id(event):
    """The MD5 of a play's natural key (user, session, item in session, start time): the
    same id on every load, whichever file the event came from."""
    return f"""CAST(
            MD5(
                CAST(CAST({event}.user_id AS INTEGER) AS VARCHAR) || '|'
                || CAST({event}.session_id AS VARCHAR) || '|'
                || CAST({event}.item_in_session AS VARCHAR) || '|'
                || TO_CHAR({event}.ts, 'YYYY-MM-DD HH24:MI:SS.MS')
            ) AS CHAR(32)
        )"""


def _is_play(event="", joiner="\n  AND "):
    """The play filter, the one definition of a play: a NextSong event by a known user
    (event: the staging_events alias, if any; joiner: the AND and its layout)."""
    prefix = f"{event}." if event else ""
    return f"{prefix}page = 'NextSong'{joiner}{prefix}user_id IS NOT NULL"


def _song_match(song, title, artist):
    """The play→song match: the song's title and artist name, exactly as the play's."""
    return f"{_same_text(f'{song}.title', title)}\n       AND {_same_text(f'{song}.artist_name', artist)}"


def _closest_song_first(song, length):
    """Among the songs a play matches, the best first: the duration closest to the play's
    length, then the smallest song_id. New plays and plays matched again rank by it."""
    return f"ABS({song}.duration - {length}),\n                {song}.song_id, OCTET_LENGTH({song}.song_id)"


# songplays and time are distributed and sorted on start_time (redshift_layout). A
# statement that joins songplays to this run's plays by songplay_id joins on start_time
# too: songplay_id is the MD5 of a natural key that includes start_time, so no result
# changes, and the join is then on the distribution key ("add a redundant join predicate
# on the distribution key columns to enable a collocated join",
# merge-create-staging-table.html; DS_BCAST_INNER and DS_DIST_BOTH "are not good",
# c_data_redistribution.html). And the run reads songplays and time only between the
# first and last play it staged (PLAYS_WINDOW_SQL; psycopg2 writes the two parameters
# into the text as constants): "If possible, use a WHERE clause to restrict the dataset
# ... Without this, the query execution engine must scan participating columns
# entirely" (c_designing-queries-best-practices.html); with it, blocks whose min and max
# lie outside the window are skipped (t_Sorting_data.html). So a daily run reads a day
# of the fact, not the fact. Every time these statements compare is a staged play's, so
# the window changes no result.
PLAYS_WINDOW_SQL = f"""
SELECT MIN(ts), MAX(ts)
FROM staging_events
WHERE {_is_play()}
"""
PLAYS_WINDOW = ("first_play", "last_play")  # the parameters' names, in PLAYS_WINDOW_SQL's order


def in_plays_window(column):
    return f"{column} BETWEEN %(first_play)s AND %(last_play)s"


def uses_plays_window(sql):
    """Does the statement take the plays window as its parameters?"""
    return "%(first_play)s" in sql


def _unchanged(pairs):
    """Each (a, b, is_text) equal, NULL equal to NULL, text exactly (_same_text). Redshift
    does not support IS DISTINCT FROM
    (https://docs.aws.amazon.com/redshift/latest/dg/c_unsupported-postgresql-functions.html),
    so it is spelt out."""
    # Never NULL itself (a = b alone is NULL when one side is), so NOT (...) is safe.
    return "\n      AND ".join(
        f"(({a} IS NULL AND {b} IS NULL) OR ({a} IS NOT NULL AND {b} IS NOT NULL"
        f" AND {_same_text(a, b) if is_text else f'{a} = {b}'}))"
        for a, b, is_text in pairs
    )


def _row_unchanged(table, key):
    """existing.<column> and chosen.<column> equal in every column but the key."""
    return _unchanged(
        [
            (f"existing.{column}", f"chosen.{column}", varchar_width(sql_type) is not None)
            for column, sql_type in table.columns
            if column != key
        ]
    )


# The comparisons that say a chosen row differs from the one the table holds.
_SONG_ROW_UNCHANGED = _row_unchanged(SONGS, "song_id")
_ARTIST_ROW_UNCHANGED = _row_unchanged(ARTISTS, "artist_id")
_MATCH_UNCHANGED = _unchanged(
    [
        ("ranked.song_id", "ranked.matched_song_id", True),
        ("ranked.artist_id", "ranked.matched_artist_id", True),
    ]
)


# Every staged song record is kept (SONG_RECORDS); the run's choices below read all the
# records of the songs and artists it staged. A run that stages every song file
# (--full-refresh, a first load, a COPY from a whole prefix, or any run after a song
# file changed: the ledger then stages them all) replaces the kept records with its
# own, so none counts twice and a changed file's old records go. It replaces only the
# records of the songs whose records changed (SONG_RECORD_CHANGES_CREATE): rewriting
# them all would leave every old row on Redshift's disk until its automatic VACUUM
# DELETE (t_Reclaiming_storage_space202.html), on every run that stages the catalogue.
SONG_RECORDS_INSERT = f"""
INSERT INTO song_records (
    {_columns(SONG_RECORDS)}
)
SELECT
    {_columns(SONG_RECORDS)}
FROM staging_songs
"""


def _same_song_record(a, b):
    """Song records a and b equal in every column (NULL equal to NULL, text exactly)."""
    return _unchanged(
        [
            (f"{a}.{column}", f"{b}.{column}", varchar_width(sql_type) is not None)
            for column, sql_type in SONG_RECORDS.columns
        ]
    )


def _song_record_pairs(a_table, b_table, weight):
    return f"""SELECT a.song_id, OCTET_LENGTH(a.song_id) AS song_id_bytes, {weight} AS weight
    FROM {a_table} AS a
    JOIN {b_table} AS b
        ON a.song_id = b.song_id
       AND {_same_song_record("a", "b")}"""


# The songs whose kept records (k of each distinct record) differ from this run's staged
# ones (s of each), copies included: the sum of (k - s)² over a song's distinct records
# is 0 only when they are the same. It is counted as pairs of equal records, which are
# sum(k·k) kept with kept, sum(k·s) kept with staged and sum(s·s) staged with staged.
SONG_RECORD_CHANGES_DROP = "DROP TABLE IF EXISTS song_record_changes"

SONG_RECORD_CHANGES_CREATE = f"""
CREATE TEMP TABLE song_record_changes AS
SELECT paired.song_id
FROM (
    {_song_record_pairs("song_records", "song_records", 1)}
    UNION ALL
    {_song_record_pairs("song_records", "staging_songs", -2)}
    UNION ALL
    {_song_record_pairs("staging_songs", "staging_songs", 1)}
) AS paired
GROUP BY paired.song_id, paired.song_id_bytes
HAVING SUM(paired.weight) <> 0
"""

# USING takes table names, without an alias (r_DELETE.html: `USING table_name, ...`).
SONG_RECORDS_DELETE_CHANGED = f"""
DELETE FROM song_records
USING song_record_changes
WHERE {_same_text("song_records.song_id", "song_record_changes.song_id")}
"""

SONG_RECORDS_INSERT_CHANGED = f"""
INSERT INTO song_records (
    {_columns(SONG_RECORDS)}
)
SELECT
    {_columns(SONG_RECORDS)}
FROM staging_songs AS staged
WHERE EXISTS (
    SELECT 1 FROM song_record_changes AS changed WHERE {_same_text("changed.song_id", "staged.song_id")}
)
"""


# One row per song_id: of all its records, the one with the smallest title, then
# duration (then artist_id, artist name and year, so that the choice never depends on
# the order records arrived in). Year 0 means unknown in the source: NULL. NULLs sort
# last in ascending order on both engines, in ORDER BY and in a window's ORDER BY
# (https://docs.aws.amazon.com/redshift/latest/dg/r_ORDER_BY_clause.html).
# song_changes holds the songs this run adds or changes (with what a changed row said
# before: the plays matched under it are matched again).
SONG_CHANGES_DROP = "DROP TABLE IF EXISTS song_changes"

SONG_CHANGES_CREATE = f"""
CREATE TEMP TABLE song_changes AS
SELECT
    chosen.song_id,
    chosen.title,
    chosen.artist_id,
    chosen.year,
    chosen.duration,
    chosen.artist_name,
    existing.title AS replaced_title,
    existing.artist_name AS replaced_artist_name
FROM (
    SELECT
        r.song_id,
        r.title,
        r.artist_id,
        NULLIF(r.year, 0) AS year,
        r.duration,
        r.artist_name,
        ROW_NUMBER() OVER (
            PARTITION BY r.song_id, OCTET_LENGTH(r.song_id)
            ORDER BY
                r.title, OCTET_LENGTH(r.title),
                r.duration,
                r.artist_id, OCTET_LENGTH(r.artist_id),
                r.artist_name, OCTET_LENGTH(r.artist_name),
                NULLIF(r.year, 0)
        ) AS preference
    FROM song_records AS r
    WHERE r.song_id IN (SELECT s.song_id FROM staging_songs AS s)
) AS chosen
LEFT JOIN songs AS existing
    ON {_same_text("existing.song_id", "chosen.song_id")}
WHERE chosen.preference = 1
  AND (
      existing.song_id IS NULL
      OR NOT (
      {_SONG_ROW_UNCHANGED}
      )
  )
"""

# Redshift: no alias on the target table, and the FROM list is an inner equijoin
# (https://docs.aws.amazon.com/redshift/latest/dg/r_UPDATE.html). Each target row meets
# at most one row of the FROM list (one per key in every *_changes table and in
# rematched_plays): Redshift does not say which row a row matching several would take.
SONGS_UPDATE = f"""
UPDATE songs
SET title = changed.title,
    artist_id = changed.artist_id,
    year = changed.year,
    duration = changed.duration,
    artist_name = changed.artist_name
FROM song_changes AS changed
WHERE {_same_text("songs.song_id", "changed.song_id")}
"""

SONGS_INSERT = _insert_new_rows(
    SONGS, "song_changes", "changed", "existing", _same_text("existing.song_id", "changed.song_id")
)


# One row per artist_id. The same id arrives with different name spellings; of all the
# artist's song records, the artist's row is the one with the most common spelling
# (ties: alphabetically first), preferring records that carry coordinates, then the
# smallest song_id (then location and coordinates, so the choice never depends on the
# order records arrived in). artist_changes holds the artists this run adds or changes.
ARTIST_CHANGES_DROP = "DROP TABLE IF EXISTS artist_changes"

ARTIST_CHANGES_CREATE = f"""
CREATE TEMP TABLE artist_changes AS
SELECT
    chosen.artist_id,
    chosen.name,
    chosen.location,
    chosen.latitude,
    chosen.longitude
FROM (
    SELECT
        counted.artist_id,
        counted.artist_name AS name,
        counted.artist_location AS location,
        counted.artist_latitude AS latitude,
        counted.artist_longitude AS longitude,
        ROW_NUMBER() OVER (
            PARTITION BY counted.artist_id, OCTET_LENGTH(counted.artist_id)
            ORDER BY
                counted.spelling_count DESC,
                counted.artist_name, OCTET_LENGTH(counted.artist_name),
                CASE WHEN counted.artist_latitude IS NULL THEN 1 ELSE 0 END,
                counted.song_id, OCTET_LENGTH(counted.song_id),
                counted.artist_location, OCTET_LENGTH(counted.artist_location),
                counted.artist_latitude,
                counted.artist_longitude
        ) AS preference
    FROM (
        SELECT
            r.artist_id,
            r.artist_name,
            r.artist_location,
            r.artist_latitude,
            r.artist_longitude,
            r.song_id,
            -- No name counts as one spelling. Redshift does not document how PARTITION BY
            -- groups NULLs, so they are made '' (which no loaded name is: empty and
            -- blank text is loaded as NULL). Spellings that differ in trailing blanks
            -- count apart.
            COUNT(*) OVER (
                PARTITION BY
                    r.artist_id,
                    OCTET_LENGTH(r.artist_id),
                    COALESCE(r.artist_name, ''),
                    OCTET_LENGTH(COALESCE(r.artist_name, ''))
            ) AS spelling_count
        FROM song_records AS r
        WHERE r.artist_id IN (SELECT s.artist_id FROM staging_songs AS s)
    ) AS counted
) AS chosen
LEFT JOIN artists AS existing
    ON {_same_text("existing.artist_id", "chosen.artist_id")}
WHERE chosen.preference = 1
  AND (
      existing.artist_id IS NULL
      OR NOT (
      {_ARTIST_ROW_UNCHANGED}
      )
  )
"""

ARTISTS_UPDATE = f"""
UPDATE artists
SET name = changed.name,
    location = changed.location,
    latitude = changed.latitude,
    longitude = changed.longitude
FROM artist_changes AS changed
WHERE {_same_text("artists.artist_id", "changed.artist_id")}
"""

ARTISTS_INSERT = _insert_new_rows(
    ARTISTS, "artist_changes", "changed", "existing", _same_text("existing.artist_id", "changed.artist_id")
)


# Plays already loaded are matched again when this run changed the candidates of what
# they played: every (title, artist name) of a song added or changed, and what a
# changed song said before. The rule is the one new plays follow (NEW_SONGPLAYS_CREATE):
# closest duration, then smallest song_id; a play left without a candidate loses its
# match. Only plays whose match changes are kept. PostgreSQL finds the plays through
# the songplays song_title index: the cost follows the plays of the changed songs, not
# the fact (bench.py shows the plan). Redshift has no index: it reads the two columns
# of the fact, which a columnar table stores apart. Runs before this run's new plays
# are added: those are matched against the changed catalogue already.
REMATCHED_PLAYS_DROP = "DROP TABLE IF EXISTS rematched_plays"

REMATCHED_PLAYS_CREATE = f"""
CREATE TEMP TABLE rematched_plays AS
SELECT
    ranked.songplay_id,
    ranked.start_time,
    ranked.song_id,
    ranked.artist_id
FROM (
    SELECT
        sp.songplay_id,
        sp.start_time,
        sp.song_id AS matched_song_id,
        sp.artist_id AS matched_artist_id,
        s.song_id,
        s.artist_id,
        ROW_NUMBER() OVER (
            PARTITION BY sp.songplay_id
            ORDER BY
                {_closest_song_first("s", "sp.song_length")}
        ) AS preference
    FROM songplays AS sp
    JOIN (
        -- With the byte lengths, so that UNION keeps spellings that differ in trailing
        -- blanks apart.
        SELECT
            title,
            artist_name,
            OCTET_LENGTH(title) AS title_bytes,
            OCTET_LENGTH(artist_name) AS artist_name_bytes
        FROM song_changes
        UNION
        SELECT
            replaced_title,
            replaced_artist_name,
            OCTET_LENGTH(replaced_title),
            OCTET_LENGTH(replaced_artist_name)
        FROM song_changes
        WHERE replaced_title IS NOT NULL  -- a new song replaced nothing
        UNION
        SELECT
            title,
            artist_name,
            OCTET_LENGTH(title),
            OCTET_LENGTH(artist_name)
        FROM gone_songs
    ) AS changed
        ON {_song_match("changed", "sp.song_title", "sp.artist_name")}
    LEFT JOIN songs AS s
        ON {_song_match("s", "sp.song_title", "sp.artist_name")}
) AS ranked
WHERE ranked.preference = 1
  AND NOT (
      {_MATCH_UNCHANGED}
  )
"""

SONGPLAYS_REMATCH = """
UPDATE songplays
SET song_id = rematched.song_id,
    artist_id = rematched.artist_id
FROM rematched_plays AS rematched
WHERE songplays.songplay_id = rematched.songplay_id
  AND songplays.start_time = rematched.start_time
"""

# The empty rematched_plays the checks read when this run changed no song: then it sends
# no statement that matches plays again (etl.transform). Its columns are songplays', types
# and all; "LIMIT 0 returns no rows. You can use this syntax ... to return a column list
# from a table." (r_ORDER_BY_clause.html).
REMATCHED_PLAYS_NONE = """
CREATE TEMP TABLE rematched_plays AS
SELECT
    songplay_id,
    start_time,
    song_id,
    artist_id
FROM songplays
LIMIT 0
"""


# A play is a NextSong event by a known user; it is matched, in the warehouse's
# catalogue, to the song with exactly the same title and artist name (as spelt in that song's
# own record), and among several such songs to the one whose duration is
# closest to the event's length (ties: smallest song_id). songplay_id is the MD5 of the
# natural key (user, session, item in session, start time): one row per natural key,
# even when staging holds the same event twice, and the same id on every load.
# (user_id is text in staging, as digits: the loader refuses anything else.)
# This run's new plays are built in a temporary table first: PostgreSQL runs the join
# and sort of CREATE TABLE AS in parallel workers, never those of INSERT … SELECT.
NEW_SONGPLAYS_DROP = "DROP TABLE IF EXISTS new_songplays"

NEW_SONGPLAYS_CREATE = f"""
CREATE TEMP TABLE new_songplays AS
WITH plays AS (
    SELECT
        -- CHAR(32), the column's type: compared as text, PostgreSQL could not use the
        -- songplay_id index for the anti-join and would hash the whole fact.
        {_songplay_id("e")} AS songplay_id,
        e.ts AS start_time,
        CAST(e.user_id AS INTEGER) AS user_id,
        e.level,
        e.session_id,
        e.item_in_session,
        e.location,
        e.user_agent,
        e.song,
        e.artist,
        e.length,
        0 AS held
    FROM staging_events AS e
    WHERE {_is_play("e", joiner=_AND_IN_A_SUBQUERY)}
),

held_plays AS (
    -- The row songplays holds for a staged play already loaded from another file: the
    -- best of that play's copies so far, which a staged copy must beat to replace it.
    SELECT
        sp.songplay_id,
        sp.start_time,
        sp.user_id,
        sp.level,
        sp.session_id,
        sp.item_in_session,
        sp.location,
        sp.user_agent,
        sp.song_title AS song,
        sp.artist_name AS artist,
        sp.song_length AS length,
        1 AS held
    FROM songplays AS sp
    WHERE {in_plays_window("sp.start_time")}
      AND EXISTS (
          SELECT 1
          FROM plays AS p
          WHERE p.songplay_id = sp.songplay_id
            AND p.start_time = sp.start_time
      )
),

best_copy_and_song AS (
    -- Each play's best copy, by its own columns (staging may hold one natural key
    -- twice, with different songs: which one is kept must not depend on the catalogue;
    -- a tie keeps the held row), and that copy's closest song: one ranking, since rows
    -- of one copy are alike in every column it orders by.
    SELECT
        c.*,
        s.song_id,
        s.artist_id,
        ROW_NUMBER() OVER (
            PARTITION BY c.songplay_id
            ORDER BY
                c.song, OCTET_LENGTH(c.song),
                c.artist, OCTET_LENGTH(c.artist),
                c.length,
                c.level, OCTET_LENGTH(c.level),
                c.location, OCTET_LENGTH(c.location),
                c.user_agent, OCTET_LENGTH(c.user_agent),
                c.held DESC,
                {_closest_song_first("s", "c.length")}
        ) AS preference
    FROM (
        SELECT * FROM plays
        UNION ALL
        SELECT * FROM held_plays
    ) AS c
    LEFT JOIN songs AS s
        ON {_song_match("s", "c.song", "c.artist")}
)

SELECT
    b.songplay_id,
    b.start_time,
    b.user_id,
    b.level,
    b.song_id,
    b.artist_id,
    b.session_id,
    b.item_in_session,
    b.location,
    b.user_agent,
    b.song AS song_title,
    b.artist AS artist_name,
    b.length AS song_length
FROM best_copy_and_song AS b
WHERE b.preference = 1
  AND b.held = 0
"""

# A held row a better staged copy replaces (new plays have none).
SONGPLAYS_DELETE_REPLACED = f"""
DELETE FROM songplays
USING new_songplays
WHERE songplays.songplay_id = new_songplays.songplay_id
  AND songplays.start_time = new_songplays.start_time
  AND {in_plays_window("songplays.start_time")}
"""

SONGPLAYS_INSERT = f"""
INSERT INTO songplays (
    {_columns(SONGPLAYS)}
)
SELECT
    {_columns(SONGPLAYS)}
FROM new_songplays
"""


# Each user's latest event in this load (by ts, then itemInSession) carries their
# current name, gender and level. Kept in a temporary table that the two users
# statements below read (Redshift's DELETE … USING takes tables, not subqueries).
LATEST_USER_EVENTS_DROP = "DROP TABLE IF EXISTS latest_user_events"

LATEST_USER_EVENTS_CREATE = """
CREATE TEMP TABLE latest_user_events AS
SELECT
    user_id,
    first_name,
    last_name,
    gender,
    level,
    latest_event_at,
    latest_item_in_session
FROM (
    SELECT
        CAST(e.user_id AS INTEGER) AS user_id,
        e.first_name,
        e.last_name,
        e.gender,
        e.level,
        e.ts AS latest_event_at,
        e.item_in_session AS latest_item_in_session,
        ROW_NUMBER() OVER (
            PARTITION BY CAST(e.user_id AS INTEGER)
            ORDER BY e.ts DESC, e.item_in_session DESC, e.session_id DESC
        ) AS recency
    FROM staging_events AS e
    WHERE e.user_id IS NOT NULL
) AS ranked
WHERE recency = 1
"""

# A user already loaded is replaced only by a newer event, so loading an older window
# after a newer one never brings back an old level.
# r_DELETE.html: "DELETE [ FROM ] table_name [ { USING } table_name, ... ]": no alias.
USERS_DELETE_OUTDATED = """
DELETE FROM users
USING latest_user_events
WHERE users.user_id = latest_user_events.user_id
  AND (
      latest_user_events.latest_event_at > users.latest_event_at
      OR (
          latest_user_events.latest_event_at = users.latest_event_at
          AND latest_user_events.latest_item_in_session > users.latest_item_in_session
      )
  )
"""

USERS_INSERT = _insert_new_rows(USERS, "latest_user_events", "latest", "u", "u.user_id = latest.user_id")


# One row per distinct play time; EXTRACT(WEEK) is the ISO week, DOW 0 = Sunday, on both
# engines: "The week number calculation follows the ISO 8601 standard."
# (r_DATE_PART_function.html); dow "Returns an integer from 0–6, starting with Sunday."
# (r_Dateparts_for_datetime_functions.html). Not isodow: Redshift does not document it.
# The times come from this run's plays in staging (the rows songplays just took), so a
# daily load reads one day, not the whole fact; every songplays.start_time is in time
# (a quality check proves it). Inserted in time order: PostgreSQL appends to its index.
TIME_INSERT = f"""
INSERT INTO time (
    {_columns(TIME)}
)
SELECT
    new_times.start_time,
    EXTRACT(HOUR FROM new_times.start_time),
    EXTRACT(DAY FROM new_times.start_time),
    EXTRACT(WEEK FROM new_times.start_time),
    EXTRACT(MONTH FROM new_times.start_time),
    EXTRACT(YEAR FROM new_times.start_time),
    EXTRACT(DOW FROM new_times.start_time)
FROM (
    SELECT DISTINCT e.ts AS start_time
    FROM staging_events AS e
    WHERE {_is_play("e", joiner=_AND_IN_A_SUBQUERY)}
      AND NOT EXISTS (
          SELECT 1 FROM time AS t WHERE t.start_time = e.ts AND {in_plays_window("t.start_time")}
      )
) AS new_times
ORDER BY new_times.start_time
"""


# --- Retraction: the rows of changed and deleted files ------------------------------------
# A log file that changed, or is gone from the source, takes back what it brought: its
# plays (found through play_sources), the users whose latest event was in it (derived
# again from the other files' latest events, user_sources), and the times no play uses
# any more. The run lists those files in retracted_files; a changed file's new version is
# in staging and comes back as any new file does. Song files are a catalogue: a changed
# or deleted one stages them all, and the songs and artists no record names any more go
# (gone_songs, gone_artists), their plays matched again.

RETRACTED_FILES_DROP = "DROP TABLE IF EXISTS retracted_files"
# Made from play_sources, so that its text is compared as play_sources.file is (on
# PostgreSQL, collated "C"); the run then inserts the files.
RETRACTED_FILES_CREATE = """
CREATE TEMP TABLE retracted_files AS
SELECT file
FROM play_sources
LIMIT 0
"""
RETRACTED_FILES_INSERT = "INSERT INTO retracted_files (file) VALUES %s"


def _in_retracted_files(column):
    return f"EXISTS (\n    SELECT 1 FROM retracted_files AS r WHERE {_same_text('r.file', column)}\n)"


RETRACTED_PLAYS_DROP = "DROP TABLE IF EXISTS retracted_plays"
RETRACTED_PLAYS_CREATE = f"""
CREATE TEMP TABLE retracted_plays AS
SELECT DISTINCT
    ps.songplay_id,
    ps.start_time
FROM play_sources AS ps
WHERE {_in_retracted_files("ps.file")}
"""

RETRACTED_USERS_DROP = "DROP TABLE IF EXISTS retracted_users"
RETRACTED_USERS_CREATE = f"""
CREATE TEMP TABLE retracted_users AS
SELECT DISTINCT us.user_id
FROM user_sources AS us
WHERE {_in_retracted_files("us.file")}
"""

# r_DELETE.html: "DELETE [ FROM ] table_name [ { USING } table_name, ... ]": no alias.
SONGPLAYS_DELETE_RETRACTED = """
DELETE FROM songplays
USING retracted_plays
WHERE songplays.songplay_id = retracted_plays.songplay_id
  AND songplays.start_time = retracted_plays.start_time
"""

PLAY_SOURCES_DELETE_RETRACTED = f"""
DELETE FROM play_sources
WHERE {_in_retracted_files("play_sources.file")}
"""

USERS_DELETE_RETRACTED = """
DELETE FROM users
USING retracted_users
WHERE users.user_id = retracted_users.user_id
"""

USER_SOURCES_DELETE_RETRACTED = f"""
DELETE FROM user_sources
WHERE {_in_retracted_files("user_sources.file")}
"""

# The times of retracted plays that no play has any more.
UNUSED_TIMES_DROP = "DROP TABLE IF EXISTS unused_times"
UNUSED_TIMES_CREATE = """
CREATE TEMP TABLE unused_times AS
SELECT DISTINCT r.start_time
FROM retracted_plays AS r
WHERE NOT EXISTS (
    SELECT 1 FROM songplays AS sp WHERE sp.start_time = r.start_time
)
"""

TIME_DELETE_UNUSED = """
DELETE FROM time
USING unused_times
WHERE time.start_time = unused_times.start_time
"""

# Songs and artists no kept song record names any more (after a run that staged every
# song file replaced the records of the songs that changed).
GONE_SONGS_DROP = "DROP TABLE IF EXISTS gone_songs"
GONE_SONGS_CREATE = """
CREATE TEMP TABLE gone_songs AS
SELECT
    s.song_id,
    s.title,
    s.artist_name
FROM songs AS s
WHERE NOT EXISTS (
    SELECT 1
    FROM song_records AS r
    WHERE r.song_id = s.song_id
      AND OCTET_LENGTH(r.song_id) = OCTET_LENGTH(s.song_id)
)
"""

# The empty gone_songs of a run that staged only some song files: no record went.
GONE_SONGS_NONE = """
CREATE TEMP TABLE gone_songs AS
SELECT
    song_id,
    title,
    artist_name
FROM songs
LIMIT 0
"""

SONGS_DELETE_GONE = f"""
DELETE FROM songs
USING gone_songs
WHERE {_same_text("songs.song_id", "gone_songs.song_id")}
"""

GONE_ARTISTS_DROP = "DROP TABLE IF EXISTS gone_artists"
GONE_ARTISTS_CREATE = """
CREATE TEMP TABLE gone_artists AS
SELECT a.artist_id
FROM artists AS a
WHERE NOT EXISTS (
    SELECT 1
    FROM song_records AS r
    WHERE r.artist_id = a.artist_id
      AND OCTET_LENGTH(r.artist_id) = OCTET_LENGTH(a.artist_id)
)
"""

ARTISTS_DELETE_GONE = f"""
DELETE FROM artists
USING gone_artists
WHERE {_same_text("artists.artist_id", "gone_artists.artist_id")}
"""

# Did the catalogue change a song, or lose one? Counted, not taken from a row count:
# Redshift documents no row count for CREATE TABLE AS, and psycopg2 then says -1.
SONGS_CHANGED_COUNT = """
SELECT
    (SELECT COUNT(*) FROM song_changes)
    + (SELECT COUNT(*) FROM gone_songs)
"""


# --- Where plays and users came from ----------------------------------------------------------
# A staged file has no rows here: a file staged again (changed, by --full-refresh, or
# sharing a play with a retracted file) was retracted first.

PLAY_SOURCES_INSERT = f"""
INSERT INTO play_sources (
    {_columns(PLAY_SOURCES)}
)
SELECT DISTINCT
    e.source_file,
    {_songplay_id("e")},
    e.ts
FROM staging_events AS e
WHERE {_is_play("e")}
"""

# Each user's latest event in each staged file, by the order users are chosen in.
USER_SOURCES_INSERT = f"""
INSERT INTO user_sources (
    {_columns(USER_SOURCES)}
)
SELECT
    {_columns(USER_SOURCES, "ranked")}
FROM (
    SELECT
        e.source_file AS file,
        CAST(e.user_id AS INTEGER) AS user_id,
        e.first_name,
        e.last_name,
        e.gender,
        e.level,
        e.ts AS latest_event_at,
        e.item_in_session AS latest_item_in_session,
        e.session_id AS latest_session_id,
        ROW_NUMBER() OVER (
            PARTITION BY e.source_file, OCTET_LENGTH(e.source_file), CAST(e.user_id AS INTEGER)
            ORDER BY e.ts DESC, e.item_in_session DESC, e.session_id DESC
        ) AS recency
    FROM staging_events AS e
    WHERE e.user_id IS NOT NULL
) AS ranked
WHERE ranked.recency = 1
"""

# A retracted user comes back from the latest event the files that remain hold (none:
# the user is gone). The users statements after it then find nothing newer in staging.
USERS_INSERT_RETRACTED = f"""
INSERT INTO users (
    {_columns(USERS)}
)
SELECT
    {_columns(USERS, "ranked")}
FROM (
    SELECT
        us.user_id,
        us.first_name,
        us.last_name,
        us.gender,
        us.level,
        us.latest_event_at,
        us.latest_item_in_session,
        ROW_NUMBER() OVER (
            PARTITION BY us.user_id
            ORDER BY us.latest_event_at DESC, us.latest_item_in_session DESC, us.latest_session_id DESC
        ) AS recency
    FROM user_sources AS us
    WHERE us.user_id IN (SELECT user_id FROM retracted_users)
) AS ranked
WHERE ranked.recency = 1
"""


# --- The transform as a list of steps -----------------------------------------------------
# The run (sparkify.transform) sends the steps whose condition holds, in this order;
# --dry-run prints every one with its condition. The catalogue goes first: plays are
# matched against the songs in the warehouse, which a run without new song files does
# not stage again; then plays already loaded are matched again, before this run's plays
# are added. The catalogue's statements run only when the run staged song files (each
# of them reads what staging_songs brings), and the matching again only when the
# catalogue changed a song (it can change a match only then).

# What a step does, for the run.
STATEMENT = "statement"  # run it, and say what it did (Step.logs) with its row count
PLAYS_WINDOW_READ = "plays window"  # read the window that later statements take as parameters
COUNT = "count"  # count rows: more than none makes Step.decides hold, none its opposite
FILE_LIST = "file list"  # create the table, then fill it with the run's retracted files
ANALYZE = "analyze"  # PostgreSQL's statistics of the table

# The conditions a step runs on, as --dry-run says them; the run knows each as it goes.
SONG_FILES_STAGED = "if this run staged song files"
EVERY_SONG_FILE_STAGED = "if this run staged every song file"
SOME_SONG_FILES_STAGED = "if this run staged some song files, not all"
A_SONG_CHANGED = "if this run changed a song"
NO_SONG_CHANGED = "if it changed none"
WROTE_A_TENTH = "if this insert wrote more than a tenth of it"
FILES_RETRACTED = "if this run takes back log files (changed, gone or staged again)"
OPPOSITES = {A_SONG_CHANGED: NO_SONG_CHANGED}

# After which steps PostgreSQL analyses the table (Redshift analyses on its own: see
# transform_plan): always (a temporary table that later statements and the checks
# read), or when the insert wrote more than a tenth of the star table.
ALWAYS = "always"
IF_IT_GREW = "if it grew"


class Step(NamedTuple):
    table: str  # the table it writes or makes (or reads, for a count)
    sql: str
    when: str | None = None  # the condition it runs on; None: always
    kind: str = STATEMENT
    logs: str | None = None  # what the run says after it, of its row count; None: nothing
    analyze: str | None = None  # ALWAYS or IF_IT_GREW: PostgreSQL analyses the table after it
    in_order_of: str | None = None  # the key an engine that orders inserts inserts in
    decides: str | None = None  # COUNT: the condition that holds when it counts any row
    says: str | None = None  # what --dry-run says of it, when not its table and condition

    def describe(self):
        if self.says:
            return self.says
        return f"{self.table}, {self.when}" if self.when else self.table


def _temporary(table, drop, create, when=None):
    """A temporary table made again by the run: dropped if a step earlier in the same
    transaction made it, then created and (PostgreSQL) analysed."""
    return (
        Step(table, drop, when),
        Step(table, create, when, logs="%d rows", analyze=ALWAYS),
    )


PLAYS_WINDOW_STEP = Step(
    "plays window",
    PLAYS_WINDOW_SQL,
    kind=PLAYS_WINDOW_READ,
    says="this run's first and last play: songplays and time are read between them",
)

RETRACTION_STEPS = (
    Step("retracted_files", RETRACTED_FILES_DROP, FILES_RETRACTED),
    Step("retracted_files", RETRACTED_FILES_CREATE, FILES_RETRACTED, kind=FILE_LIST, logs="%d files"),
    *_temporary("retracted_plays", RETRACTED_PLAYS_DROP, RETRACTED_PLAYS_CREATE, FILES_RETRACTED),
    *_temporary("retracted_users", RETRACTED_USERS_DROP, RETRACTED_USERS_CREATE, FILES_RETRACTED),
    Step("songplays", SONGPLAYS_DELETE_RETRACTED, FILES_RETRACTED, logs="-%d rows retracted"),
    Step("play_sources", PLAY_SOURCES_DELETE_RETRACTED, FILES_RETRACTED, logs="-%d rows retracted"),
    Step("users", USERS_DELETE_RETRACTED, FILES_RETRACTED, logs="%d rows to derive again"),
    Step("user_sources", USER_SOURCES_DELETE_RETRACTED, FILES_RETRACTED, logs="-%d rows retracted"),
)
CATALOGUE_STEPS = (
    Step("song_records", SONG_RECORDS_INSERT, SOME_SONG_FILES_STAGED, logs="+%d rows"),
    *_temporary(
        "song_record_changes", SONG_RECORD_CHANGES_DROP, SONG_RECORD_CHANGES_CREATE, EVERY_SONG_FILE_STAGED
    ),
    Step("song_records", SONG_RECORDS_DELETE_CHANGED, EVERY_SONG_FILE_STAGED, logs="%d rows replaced"),
    Step("song_records", SONG_RECORDS_INSERT_CHANGED, EVERY_SONG_FILE_STAGED, logs="+%d rows"),
    *_temporary("gone_songs", GONE_SONGS_DROP, GONE_SONGS_CREATE, EVERY_SONG_FILE_STAGED),
    Step("gone_songs", GONE_SONGS_DROP, SOME_SONG_FILES_STAGED),
    Step("gone_songs", GONE_SONGS_NONE, SOME_SONG_FILES_STAGED, logs="%d rows"),
    Step("songs", SONGS_DELETE_GONE, EVERY_SONG_FILE_STAGED, logs="-%d rows no record names"),
    *_temporary("song_changes", SONG_CHANGES_DROP, SONG_CHANGES_CREATE, SONG_FILES_STAGED),
    Step("songs", SONGS_UPDATE, SONG_FILES_STAGED, logs="%d rows changed by new records"),
    Step("songs", SONGS_INSERT, SONG_FILES_STAGED, logs="+%d rows", analyze=IF_IT_GREW),
    *_temporary("artist_changes", ARTIST_CHANGES_DROP, ARTIST_CHANGES_CREATE, SONG_FILES_STAGED),
    Step("artists", ARTISTS_UPDATE, SONG_FILES_STAGED, logs="%d rows changed by new records"),
    Step("artists", ARTISTS_INSERT, SONG_FILES_STAGED, logs="+%d rows", analyze=IF_IT_GREW),
    *_temporary("gone_artists", GONE_ARTISTS_DROP, GONE_ARTISTS_CREATE, EVERY_SONG_FILE_STAGED),
    Step("artists", ARTISTS_DELETE_GONE, EVERY_SONG_FILE_STAGED, logs="-%d rows no record names"),
    Step("song_changes", SONGS_CHANGED_COUNT, SONG_FILES_STAGED, kind=COUNT, decides=A_SONG_CHANGED),
)
REMATCH_STEPS = (
    *_temporary("rematched_plays", REMATCHED_PLAYS_DROP, REMATCHED_PLAYS_CREATE, A_SONG_CHANGED),
    Step("songplays", SONGPLAYS_REMATCH, A_SONG_CHANGED, logs="%d plays matched again"),
    # Empty, with nothing to analyse.
    Step("rematched_plays", REMATCHED_PLAYS_DROP, NO_SONG_CHANGED),
    Step("rematched_plays", REMATCHED_PLAYS_NONE, NO_SONG_CHANGED, logs="%d rows"),
)
PLAY_STEPS = (
    *_temporary("new_songplays", NEW_SONGPLAYS_DROP, NEW_SONGPLAYS_CREATE),
    Step("songplays", SONGPLAYS_DELETE_REPLACED, logs="%d rows replaced by a better copy"),
    Step(
        "songplays",
        SONGPLAYS_INSERT,
        logs="+%d rows",
        analyze=IF_IT_GREW,
        # PostgreSQL appends to the songplay_id index fastest in key order. Redshift has
        # no such index and sorts by its own sort key, start_time.
        in_order_of="songplay_id",
    ),
    Step("play_sources", PLAY_SOURCES_INSERT, logs="+%d rows"),
    Step("user_sources", USER_SOURCES_INSERT, logs="+%d rows"),
    Step("users", USERS_INSERT_RETRACTED, FILES_RETRACTED, logs="+%d rows derived again"),
    *_temporary("latest_user_events", LATEST_USER_EVENTS_DROP, LATEST_USER_EVENTS_CREATE),
    Step("users", USERS_DELETE_OUTDATED, logs="%d rows to refresh from newer events"),
    Step("users", USERS_INSERT, logs="+%d rows", analyze=IF_IT_GREW),
    Step("time", TIME_INSERT, logs="+%d rows", analyze=IF_IT_GREW),
    *_temporary("unused_times", UNUSED_TIMES_DROP, UNUSED_TIMES_CREATE, FILES_RETRACTED),
    Step("time", TIME_DELETE_UNUSED, FILES_RETRACTED, logs="-%d rows no play uses"),
)
TRANSFORM_STEPS = (PLAYS_WINDOW_STEP, *RETRACTION_STEPS, *CATALOGUE_STEPS, *REMATCH_STEPS, *PLAY_STEPS)


def transform_plan(engine, steps=TRANSFORM_STEPS):
    """The steps as the engine runs them. PostgreSQL inserts in key order where a step
    says so, and gets statistics: for a temporary table right after it is made (the
    statements reading it, and the checks, are then planned for its real size: a day's
    plays, not a guess), and for a star table after an insert that wrote more than a
    tenth of it (unanalysed, the songs of a first load were planned as a few thousand
    rows, and matching plays to them took a slower merge join). Redshift analyses a
    CREATE TABLE AS on its own (https://docs.aws.amazon.com/redshift/latest/dg/r_ANALYZE.html)
    and sorts by its sort key."""
    plan = []
    for step in steps:
        if step.in_order_of and engine.orders_inserts:
            step = step._replace(sql=f"{step.sql.rstrip()}\nORDER BY {step.in_order_of}\n")
        plan.append(step)
        if step.analyze and engine.explicit_analyze:
            when, logs = (step.when, None) if step.analyze == ALWAYS else (WROTE_A_TENTH, "analyzed")
            plan.append(Step(step.table, f"ANALYZE {step.table}", when, kind=ANALYZE, logs=logs))
    return plan


# ==============================================================================================
# 6. The data quality checks
# ==============================================================================================


# --- Data quality checks, after every load that staged a file, and by --check-only. -----
# Each query returns one number; the expectation is "0" (nothing wrong found) or "> 0".
# The same checks come in two scopes, with the same names:
# - WHOLE_TABLES (--check-only, and after a load that added more than a tenth of some
#   star table: etl.check_scope): every row of every star table;
# - THIS_RUN (after a load): the rows this run added or touched, found through what the
#   run staged and the temporary tables of its transform, plus the keys they join to.
#   A daily load then checks a day, not the warehouse.
WHOLE_TABLES = "whole tables"
THIS_RUN = "this run"

# Where this run's rows of each star table come from: (table, key column).
RUN_ROWS = {
    "songplays": ("new_songplays", "songplay_id"),
    "users": ("latest_user_events", "user_id"),
    "songs": ("staging_songs", "song_id"),
    "artists": ("staging_songs", "artist_id"),
    "time": ("new_songplays", "start_time"),
}


# Read within this run's plays window, and songplays joined to the run's plays on
# start_time as well as songplay_id: both tables are distributed and sorted on start_time
# (see PLAYS_WINDOW_SQL).
_BY_START_TIME = ("songplays", "time")


def _run_rows_filter(table, column, source, source_column):
    if (table, column) == ("songplays", "songplay_id"):
        rows = (
            f"EXISTS (\n          SELECT 1 FROM {source} AS n\n"
            f"          WHERE n.songplay_id = songplays.songplay_id\n"
            f"            AND n.start_time = songplays.start_time\n      )"
        )
    else:
        rows = f"{column} IN (SELECT {source_column} FROM {source})"
    window = f"{in_plays_window('start_time')}\n      AND " if table in _BY_START_TIME else ""
    return f"    WHERE {window}{rows}\n"


def _null_key_check(table, column, scope):
    """Run scope: the rows the run inserted are those of its source (new_songplays,
    latest_user_events, staging_songs)."""
    source, source_column = RUN_ROWS[table]
    if scope == WHOLE_TABLES:
        sql = f"SELECT COUNT(*) FROM {table} WHERE {column} IS NULL"
    else:
        own = column if source == "new_songplays" else source_column
        sql = f"SELECT COUNT(*) FROM {source} WHERE {own} IS NULL"
    return (f"{table}.{column} is never NULL", sql, "0")


# Keys that are VARCHAR: ids that differ in trailing blanks are different ids (_same_text).
_VARCHAR_COLUMNS = {
    (table.name, column)
    for table in ALL_TABLES
    for column, sql_type in table.columns
    if sql_type.startswith("VARCHAR(")
}


def _unique_key_check(table, columns, scope, run_rows=None):
    """Run scope: the rows sharing a key with this run's rows (run_rows: (column,
    source, source column); by default the table's own key, from RUN_ROWS)."""
    key = ", ".join(columns)
    lengths = [f"OCTET_LENGTH({column})" for column in columns if (table, column) in _VARCHAR_COLUMNS]
    grouping = ", ".join([*columns, *lengths])
    run_rows = run_rows or (columns[0], *RUN_ROWS[table])
    where = "" if scope == WHOLE_TABLES else _run_rows_filter(table, *run_rows)
    return (
        f"{table} has one row per ({key})",
        f"SELECT COUNT(*) FROM (\n    SELECT {key}\n    FROM {table}\n{where}"
        f"    GROUP BY {grouping}\n    HAVING COUNT(*) > 1\n) AS duplicated",
        "0",
    )


def _relationship_check(table, column, parent, parent_column, scope):
    """Run scope: this run's new rows (of songplays: its new plays), for users also every
    user it refreshed, and for songs and artists also the plays it matched again."""
    rows = table if scope == WHOLE_TABLES else RUN_ROWS[table][0]
    ids = f"SELECT sp.{column} AS id FROM {rows} AS sp"
    if scope == THIS_RUN and parent == "users":
        ids += "\n    UNION ALL\n    SELECT user_id FROM latest_user_events"
    if scope == THIS_RUN and parent in ("songs", "artists"):
        ids += f"\n    UNION ALL\n    SELECT {column} FROM rematched_plays"
    parent_key = f"p.{parent_column}"
    same = (
        _same_text(parent_key, "child.id")
        if (parent, parent_column) in _VARCHAR_COLUMNS
        else f"{parent_key} = child.id"
    )
    if scope == THIS_RUN and parent in _BY_START_TIME:
        same += f" AND {in_plays_window(parent_key)}"
    return (
        f"every {table}.{column} is in {parent}",
        f"SELECT COUNT(*)\nFROM (\n    {ids}\n) AS child\nWHERE child.id IS NOT NULL\n"
        f"  AND NOT EXISTS (\n      SELECT 1 FROM {parent} AS p WHERE {same}\n  )",
        "0",
    )


def _staged_plays_missing_check(scope):
    """Reads staging, which holds only this run's files: in proportion to the load in both
    scopes (and songplays within this run's plays window, in the run's). Plays are looked
    up by the natural key, so a wrong songplay_id cannot hide one."""
    window = f"\n        AND {in_plays_window('sp.start_time')}" if scope == THIS_RUN else ""
    return (
        "every NextSong event with a user in staging is in songplays",
        f"""SELECT COUNT(*)
FROM staging_events AS e
WHERE {_is_play("e")}
  AND NOT EXISTS (
      SELECT 1
      FROM songplays AS sp
      WHERE sp.user_id = CAST(e.user_id AS INTEGER)
        AND sp.session_id = e.session_id
        AND sp.item_in_session = e.item_in_session
        AND sp.start_time = e.ts{window}
  )""",
        "0",
    )


# What each star table is made from: once some of it is in the warehouse, the table
# must have rows. Songs may arrive before any log file and the other way round, and a
# log may hold no play at all, so a table is not expected to have rows before its
# source has: plays and users in staging (this run's, or after --check-only the last
# local run's: a Redshift run stages into temporary tables, so there --check-only finds
# none), song records kept.
STAGED_PLAYS = f"staging_events WHERE {_is_play(joiner=' AND ')}"
LOADED_SOURCES = {
    "songplays": ("plays are staged", STAGED_PLAYS),
    "users": ("events with a user are staged", "staging_events WHERE user_id IS NOT NULL"),
    "time": ("plays are staged", STAGED_PLAYS),
    "songs": ("song records are loaded", "song_records"),
    "artists": ("song records are loaded", "song_records"),
}


def _play_sources_check(scope):
    """Every play knows a file it came from, or a changed or deleted file could not take
    it back. Run scope: this run's new plays."""
    plays = "songplays" if scope == WHOLE_TABLES else "new_songplays"
    window = f"\n        AND {in_plays_window('ps.start_time')}" if scope == THIS_RUN else ""
    return (
        "every songplays row has a source file in play_sources",
        f"""SELECT COUNT(*)
FROM {plays} AS sp
WHERE NOT EXISTS (
      SELECT 1
      FROM play_sources AS ps
      WHERE ps.songplay_id = sp.songplay_id
        AND ps.start_time = sp.start_time{window}
  )""",
        "0",
    )


def _not_empty_check(table, scope):
    """One row of each is enough: no count of the whole table. In the run's scope
    songplays and time are looked for within this run's plays window, where its staged
    plays are once it has loaded them."""
    what, source = LOADED_SOURCES[table.name]
    rows = table.name
    if scope == THIS_RUN and table.name in _BY_START_TIME:
        rows += f" WHERE {in_plays_window('start_time')}"
    return (
        f"{table.name} is not empty once {what}",
        f"SELECT COUNT(*)\nFROM (SELECT 1 FROM {source} LIMIT 1) AS loaded\n"
        f"WHERE NOT EXISTS (SELECT 1 FROM {rows})",
        "0",
    )


def quality_checks(scope):
    """(name, sql, expected) in run order: from each star table's keys and references."""
    referencing = [(table, reference) for table in STAR_TABLES for reference in table.references]
    return (
        *(
            _null_key_check(table.name, column, scope)
            for table in STAR_TABLES
            for column in table.primary_key
        ),
        *(
            _null_key_check(table.name, reference.column, scope)
            for table, reference in referencing
            if "NOT NULL" in dict(table.columns)[reference.column]
        ),
        *(_unique_key_check(table.name, table.primary_key, scope) for table in STAR_TABLES),
        *(
            _unique_key_check(
                table.name, table.natural_key, scope, ("start_time", "new_songplays", "start_time")
            )
            for table in STAR_TABLES
            if table.natural_key
        ),
        *(_relationship_check(table.name, *reference, scope) for table, reference in referencing),
        _staged_plays_missing_check(scope),
        _play_sources_check(scope),
        *(_not_empty_check(table, scope) for table in STAR_TABLES),
    )


# A user's check that fails on PostgreSQL rolls back to here, and the run goes on
# (Redshift has no savepoints: there the error ends the run).
CHECK_SAVEPOINT = "SAVEPOINT quality_check"
CHECK_SAVEPOINT_ROLLBACK = "ROLLBACK TO SAVEPOINT quality_check"
CHECK_SAVEPOINT_RELEASE = "RELEASE SAVEPOINT quality_check"


# ==============================================================================================
# 7. The run's record
# ==============================================================================================


# --- The ledger of runs. -------------------------------------------------------------------

ETL_RUNS_INSERT = f"""
INSERT INTO etl_runs (
    {", ".join(ETL_RUNS.column_names)}
)
VALUES ({", ".join(["%s"] * len(ETL_RUNS.columns))})
"""

ETL_RUNS_LATEST = f"""
SELECT
    {", ".join(ETL_RUNS.column_names)}
FROM etl_runs
ORDER BY started_at DESC
LIMIT %s
"""

# etl.py --status: the latest play the warehouse holds.
LATEST_PLAY_SQL = "SELECT MAX(start_time) FROM songplays"


# ==============================================================================================
# 8. Who may do what (README "Who can do what")
# ==============================================================================================
# Three kinds of database user. The loader owns every table: create_tables.py and etl.py
# connect as it. Analysts (a role) read the star tables the config names, nothing else.
# Operators (a role) read the star, the history of runs, the ledger and the rejects. An
# admin (Redshift's master user, a PostgreSQL superuser) makes the roles and users once
# (sparkify/roles.py); create_tables.py grants on the tables each time it makes them.
# Redshift (synopses abridged): r_GRANT.html ("GRANT … ON { [ TABLE ] table_name [, ...] |
# … } TO { username [ WITH GRANT OPTION ] | ROLE role_name | GROUP group_name | PUBLIC }",
# "GRANT { ROLE role_name } [, ...] TO { { user_name [ WITH ADMIN OPTION ] } | ROLE
# role_name }"), r_REVOKE.html, r_CREATE_ROLE.html, r_CREATE_USER.html, r_ALTER_TABLE.html
# ("OWNER TO new_owner").
# No ALTER DEFAULT PRIVILEGES: it would hand the analysts every table the loader makes,
# staging and ledgers too; each table is granted by name instead.

OPERATOR_TABLES = (*STAR_TABLES, ETL_RUNS, FILE_RETRACTIONS, LOAD_REJECTS, LOADED_FILES)
# What the loader owns: every table, the kept ones and the run lock's (section 3).
OWNED_TABLES = (*(table.name for table in (*ALL_TABLES, ETL_RUNS)), "etl_run_lock")


def _grantee(role, engine):
    return f"ROLE {role}" if engine.role_keyword else role


def table_grants(engine, analysts, operators, analyst_tables, existing=None):
    """(what, SQL): the grants of freshly made tables, and of etl_runs, which is kept and
    so first loses what an earlier config granted on it. existing: only these tables
    (an admin's run on a warehouse that may not have them all yet)."""
    revokes = [
        (
            f"revoked all on {ETL_RUNS.name} from {role}",
            f"REVOKE ALL ON TABLE {ETL_RUNS.name} FROM {_grantee(role, engine)}",
        )
        for role in (analysts, operators)
        if existing is None or ETL_RUNS.name in existing
    ]
    grants = [
        (f"granted SELECT on {name} to {role}", f"GRANT SELECT ON TABLE {name} TO {_grantee(role, engine)}")
        for role, names in (
            (analysts, analyst_tables),
            (operators, [table.name for table in OPERATOR_TABLES]),
        )
        for name in names
        if existing is None or name in existing
    ]
    return revokes + grants


# --- What the admin makes (sparkify/roles.py) -----------------------------------------------

# The roles, users and memberships that exist already: CREATE ROLE and CREATE USER have no
# IF NOT EXISTS on Redshift (r_CREATE_ROLE.html, r_CREATE_USER.html), and whether GRANT ROLE
# sent again is harmless there is not documented, so the admin's step reads them first.
# Redshift lists roles in SVV_ROLES (r_SVV_ROLES.html), members in SVV_USER_GRANTS
# (r_SVV_USER_GRANTS.html: user_name, role_name) and users in PG_USER (r_Users.html: "To
# view a list of users, query the PG_USER catalog table"). Keyed by Engine.role_catalogs.
EXISTING_ROLES_SQL = {
    "svv": "SELECT role_name FROM svv_roles WHERE role_name IN %s",
    "pg": "SELECT rolname FROM pg_roles WHERE NOT rolcanlogin AND rolname IN %s",
}
EXISTING_MEMBERS_SQL = {
    "svv": "SELECT user_name, role_name FROM svv_user_grants WHERE role_name IN %s",
    "pg": """
SELECT
    member.rolname,
    role.rolname
FROM pg_auth_members AS m
JOIN pg_roles AS role ON role.oid = m.roleid
JOIN pg_roles AS member ON member.oid = m.member
WHERE role.rolname IN %s
""",
}
EXISTING_USERS_SQL = "SELECT usename FROM pg_user WHERE usename IN %s"
EXISTING_TABLES_SQL = """
SELECT tablename
FROM pg_tables
WHERE schemaname = CURRENT_SCHEMA()
  AND tablename IN %s
"""


def user_sql(name):
    """A user's name in SQL: a Redshift user mapped from an IAM identity ("IAM:alice",
    "IAMR:etl-role") is double-quoted (the management guide's serverless-monitoring.html:
    grant role sys:monitor to "IAMR:role-name"); the config allows no other quoted name."""
    return f'"{name}"' if ":" in name else name


def create_role_sql(role):
    return f"CREATE ROLE {role}"


def create_user_sql(user, engine, with_password):
    """A user that logs in with a password (the statement's parameter), or one that
    cannot: on Redshift only through IAM's temporary credentials (PASSWORD DISABLE,
    r_CREATE_USER.html); on PostgreSQL through its own host-based rules."""
    create = f"CREATE USER {user_sql(user)}"
    if with_password:
        return f"{create} PASSWORD %s"
    return f"{create} PASSWORD DISABLE" if engine.password_disable else create


def alter_password_sql(user):
    return f"ALTER USER {user_sql(user)} PASSWORD %s"


def grant_role_sql(role, user, engine):
    return f"GRANT {'ROLE ' if engine.role_keyword else ''}{role} TO {user_sql(user)}"


# Only the loader makes tables: on Redshift "By default, all users have CREATE and USAGE
# permissions on the PUBLIC schema" (r_REVOKE.html; the statement is r_REVOKE-usage-notes.
# html's own example); PostgreSQL 15 and later grant CREATE to the database's owner only in
# a new database, while one upgraded or restored from an older release keeps PUBLIC's.
def schema_privilege_statements(loader):
    return (
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
        f"GRANT USAGE, CREATE ON SCHEMA public TO {user_sql(loader)}",
    )


def owner_to_sql(table, loader):
    return f"ALTER TABLE {table} OWNER TO {user_sql(loader)}"
