"""Connecting to the warehouse, one transaction per run, the run lock, timed steps."""

import logging
import time
from contextlib import contextmanager

import botocore.exceptions
import psycopg2
import psycopg2.errors
import psycopg2.extras

import sql_queries
from sparkify.errors import DatabaseError, NotAllowed, TablesOwnedByOthers, WarehouseBusy
from sparkify.output import add_secret
from sparkify.redshift import temporary_credentials

log = logging.getLogger("sparkify")

CONNECT_ATTEMPTS = 4
FIRST_RETRY_DELAY_SECONDS = 1.0
CONNECT_TIMEOUT_SECONDS = 10


def connect(config, login=None):
    """Open a connection; transient failures are retried with doubling delays. login:
    another user's, for the admin who makes the roles (a DSN locally, (user, password)
    on Redshift); None: the config's own, the loader's (or an analyst's)."""
    attempts, delay = CONNECT_ATTEMPTS, FIRST_RETRY_DELAY_SECONDS
    for attempt in range(1, attempts + 1):
        try:
            return _connect_once(config, login)
        except psycopg2.OperationalError as error:
            reason = first_line(error)
            if attempt == attempts or _is_permanent(reason):
                raise DatabaseError(f"cannot connect to the {config.target} warehouse: {reason}") from None
            log.warning(
                "connection failed (attempt %d of %d): %s; retrying in %.0f s",
                attempt,
                attempts,
                reason,
                delay,
            )
            time.sleep(delay)
            delay *= 2


class StatementLoggingConnection(psycopg2.extras.LoggingConnection):
    """Logs every statement it executes at DEBUG (--verbose), through the masked handler."""

    def filter(self, msg, curs):
        return (msg.decode("utf-8", "replace") if isinstance(msg, bytes) else msg).strip()


def _connect_once(config, login):
    conn = _open(config, login)
    conn.initialize(log)
    return conn


def _open(config, login=None):
    if config.engine.reads_local_folders:  # a libpq DSN, not a cluster
        return psycopg2.connect(
            login or config.get("LOCAL", "DSN"),
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            connection_factory=StatementLoggingConnection,
        )
    user, password = login or redshift_login(config)
    return psycopg2.connect(
        connection_factory=StatementLoggingConnection,
        host=config.get("CLUSTER", "HOST"),
        dbname=config.get("CLUSTER", "DB_NAME"),
        user=user,
        password=password,
        port=int(config.get("CLUSTER", "DB_PORT")),
        sslmode="require",
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
    )


def redshift_login(config):
    """The configured user and password, or temporary credentials when no password is set."""
    password = config.get("CLUSTER", "DB_PASSWORD")
    if password:
        return config.get("CLUSTER", "DB_USER"), password
    try:
        user, password = temporary_credentials(config)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:
        raise DatabaseError(
            f"cannot get temporary Redshift credentials: {str(error).splitlines()[0]}"
        ) from None
    add_secret(password)
    log.info("connecting as %s with temporary credentials (valid 15 minutes)", user)
    return user, password


def _is_permanent(reason):
    """Mistakes that no retry will fix: wrong password, unknown user or database."""
    return any(text in reason for text in ("authentication failed", "does not exist", "invalid dsn"))


def first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


@contextmanager
def transaction(conn):
    """Commit on success; on any error roll back (or, if the server is gone, let it)."""
    try:
        yield conn.cursor()
        conn.commit()
    except BaseException:
        try:
            conn.rollback()
        except psycopg2.Error:
            pass  # the server aborted the transaction when the connection went away
        raise


BUSY_MESSAGE = "another run is loading this warehouse"


def is_serialization_failure(error):
    """Redshift's error 1023 (https://docs.aws.amazon.com/redshift/latest/dg/
    c_serial_isolation-serializable-isolation-troubleshooting.html), or PostgreSQL's
    40001: a concurrent run's writes met this one's."""
    text = str(error)
    return getattr(error, "pgcode", None) == "40001" or (
        "1023" in text and "Serializable isolation violation" in text
    )


@contextmanager
def database_errors_as(what):
    """psycopg2 errors inside become one-line DatabaseErrors naming the step; a
    serialization failure means another run, and says so."""
    try:
        yield
    except psycopg2.Error as error:
        if is_serialization_failure(error):
            raise WarehouseBusy(
                f"{BUSY_MESSAGE} (its changes met this run's; error: {first_line(error)}); "
                "nothing of this run was committed. Try again when it has finished."
            ) from None
        if isinstance(error, psycopg2.errors.InsufficientPrivilege):
            raise NotAllowed(f"{what} failed: {first_line(error)}; {NOT_ALLOWED_HINT}") from None
        raise DatabaseError(f"{what} failed: {first_line(error)}{consequence_of(error)}") from None


NOT_ALLOWED_HINT = (
    'the database refused this user (README "Who can do what": the loader loads, analysts read'
    " the star, operators the runs and rejects)"
)
ROLES_MISSING_HINT = (
    "; an admin makes the warehouse's roles first: python aws_setup.py roles (Redshift)"
    " or python -m sparkify.roles (PostgreSQL)"
)


def consequence_of(error):
    """What a failed statement means for the user, where it is not plain."""
    # Both are OperationalErrors in psycopg2, yet the connection is fine.
    if isinstance(error, psycopg2.errors.LockNotAvailable):
        return (
            "; a table lock was not granted within [ETL] LOCK_TIMEOUT_SECONDS (another session holds it)"
            " and nothing of this run was committed"
        )
    if isinstance(error, psycopg2.errors.QueryCanceled):
        return (
            "; the statement was canceled (a statement_timeout or a cancel request)"
            " and nothing of this run was committed"
        )
    if isinstance(error, (psycopg2.OperationalError, psycopg2.InterfaceError)):
        return "; the connection was lost and nothing of this run was committed"
    if isinstance(error, psycopg2.errors.UndefinedObject) and "role" in first_line(error):
        return ROLES_MISSING_HINT
    if isinstance(error, (psycopg2.errors.UndefinedTable, psycopg2.errors.UndefinedColumn)):
        # the pipeline's own statements only: a user's check reports its own errors
        return (
            "; the warehouse lacks a table or column this version uses: run create_tables.py"
            " (it drops what was loaded; the next etl.py loads every file again)"
        )
    return ""


def acquire_run_lock(cursor, engine, timeout_seconds):
    """One run at a time per warehouse; the lock ends with the run's transaction. These
    are the first statements of the transaction (see sql_queries.run_lock_statements)."""
    try:
        for statement in sql_queries.run_lock_statements(engine, timeout_seconds):
            cursor.execute(statement)
    except (psycopg2.errors.LockNotAvailable, psycopg2.errors.QueryCanceled):
        raise WarehouseBusy(
            f"{BUSY_MESSAGE}; waited {timeout_seconds} s "
            "([ETL] LOCK_TIMEOUT_SECONDS). Try again when it has finished."
        ) from None


def check_table_owners(cursor):
    """Redshift: refuse, up front, tables this session's user does not own. Serverless's
    temporary credentials name the database user after the IAM identity
    (https://docs.aws.amazon.com/redshift/latest/mgmt/serverless-iam-credentials.html),
    so tables created with another login belong to someone else."""
    names = tuple(table.name for table in (*sql_queries.ALL_TABLES, sql_queries.ETL_RUNS))
    cursor.execute(sql_queries.TABLES_OWNED_BY_OTHERS_SQL, (names,))
    others = cursor.fetchall()
    if others:
        cursor.execute(sql_queries.CURRENT_USER_SQL)
        user = cursor.fetchone()[0]
        owners = ", ".join(f"{table} (owner {owner})" for table, owner in others)
        raise TablesOwnedByOthers(
            f"this session's user is {user}, but these tables belong to another user: {owners}. "
            "Have their owner drop them or transfer them (ALTER TABLE … OWNER TO), or connect as "
            "that user. With Serverless temporary credentials the user comes from your IAM identity."
        )


def prepare_redshift_run(conn, read_clock=False, probes=()):
    """Redshift, in a transaction of its own before the run's (sql_queries.
    redshift_preparation_steps): refuse tables of another user, run the probes (etl.py:
    of the tables written outside the run lock, which the run's transaction must not
    read: sql_queries.WRITTEN_OUTSIDE_THE_LOCK), create the lock's table so the run's
    transaction can begin with LOCK, and with read_clock return the server's clock in
    UTC, from which the run's load errors are read."""
    with database_errors_as("preparing the run"), transaction(conn) as cur:
        check_table_owners(cur)
        for probe in probes:
            cur.execute(probe)
        cur.execute(sql_queries.RUN_LOCK_TABLE_CREATE)
        if not read_clock:
            return None
        for statement in sql_queries.SERVER_NOW_STATEMENTS:
            cur.execute(statement)
        return cur.fetchone()[0]


def timed_execute(cursor, sql, parameters=None):
    """Run one statement; return (rows affected, seconds)."""
    started = time.perf_counter()
    cursor.execute(sql, parameters)
    return cursor.rowcount, time.perf_counter() - started


def require_current_tables(cursor, engine):
    """Every table and column this version uses is there: a warehouse made by an older
    version stops here, before anything is staged, with consequence_of's one line
    (even a run that finds nothing new, which runs no other statement on them). On
    Redshift the tables written outside the run lock were probed before it."""
    for probe in sql_queries.table_probes(sql_queries.tables_probed_in_the_run(engine)):
        cursor.execute(probe)


def count_rows(cursor, tables):
    counts = {}
    for table in tables:
        cursor.execute(sql_queries.count_rows_sql(table))
        counts[table.name] = cursor.fetchone()[0]
    return counts
