"""Data quality checks: built-in ones from sql_queries plus the user's [CHECK …] sections."""

import logging
import re
from typing import NamedTuple

import psycopg2

import sql_queries
from sparkify.config import UserCheck
from sparkify.errors import ChecksFailed
from sparkify.transform import is_large_share

log = logging.getLogger("sparkify")

COMPARISON = re.compile(r"(==|=|!=|>=|<=|>|<)?\s*(-?\d+(?:\.\d+)?)")
OPERATORS = {
    "=": lambda a, b: a == b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}


CONNECTION_LOST = (psycopg2.OperationalError, psycopg2.InterfaceError)


class CheckResult(NamedTuple):
    name: str
    expected: str
    found: object
    passed: bool


def all_checks(config, scope=sql_queries.WHOLE_TABLES, plays_window=None):
    """The built-in checks in a scope (sql_queries.quality_checks), then the user's.
    plays_window: the run's first and last play ({first_play, last_play}), which the run
    scope's checks of songplays and time read within."""
    built_in = [
        UserCheck(*check, parameters=plays_window if sql_queries.uses_plays_window(check[1]) else None)
        for check in sql_queries.quality_checks(scope)
    ]
    return built_in + list(config.user_checks)


def meets(found, expected):
    """Does a check's result satisfy its expectation ("0", "> 0", ">= 10", or any text)?"""
    match = COMPARISON.fullmatch(expected.strip())
    if match is None:
        return str(found) == expected.strip()
    operator, number = match.group(1) or "=", float(match.group(2))
    try:
        return OPERATORS[operator](float(found), number)
    except (TypeError, ValueError):
        return False


def run_checks(cursor, checks, engine):
    """Run each check's query. On PostgreSQL a query that errors is a failed check;
    Redshift has no savepoints, so there the error ends the run (and rolls it back)."""
    results = []
    for check in checks:
        try:
            found = _query_result(cursor, check, savepoint=engine.savepoints)
        except CONNECTION_LOST:
            raise  # not the check's fault
        except psycopg2.Error as error:
            if not engine.savepoints:
                raise
            message = str(error).strip().splitlines()[0]
            results.append(CheckResult(check.name, check.expected, f"error: {message}", False))
            continue
        results.append(CheckResult(check.name, check.expected, found, meets(found, check.expected)))
    return results


def _query_result(cursor, check, savepoint):
    if savepoint:
        cursor.execute(sql_queries.CHECK_SAVEPOINT)
    try:
        cursor.execute(check.sql, check.parameters)
        row = cursor.fetchone()
    except CONNECTION_LOST:
        raise
    except psycopg2.Error:
        if savepoint:
            cursor.execute(sql_queries.CHECK_SAVEPOINT_ROLLBACK)
        raise
    if savepoint:
        cursor.execute(sql_queries.CHECK_SAVEPOINT_RELEASE)
    return row[0] if row else None


def check_quality(cursor, config, scope=sql_queries.WHOLE_TABLES, plays_window=None):
    """Run every check in a scope, say how many passed, and raise ChecksFailed if any
    failed (the run's transaction then rolls back)."""
    results = run_checks(cursor, all_checks(config, scope, plays_window), config.engine)
    failed = [result for result in results if not result.passed]
    for result in failed:
        log.error("check failed: %s: expected %s, found %s", result.name, result.expected, result.found)
    log.info("checks: %d passed, %d failed (%s)", len(results) - len(failed), len(failed), scope)
    if failed:
        raise ChecksFailed(
            f"{len(failed)} data quality check(s) failed: " + "; ".join(r.name for r in failed)
        )
    return results


def rows_added(rows_before, rows_after):
    """Rows new to each star table. A user the run refreshed was deleted and inserted
    again: written, not added."""
    return {name: rows_after[name] - rows_before[name] for name in rows_after}


def check_scope(rows_before, rows_after):
    """This run's rows, unless it added more than LARGE_RUN_SHARE of some star table
    (a first load): then whole tables."""
    added = rows_added(rows_before, rows_after)
    large = any(is_large_share(added[name], rows_before[name]) for name in added)
    return sql_queries.WHOLE_TABLES if large else sql_queries.THIS_RUN


# What --dry-run says of the checks' scope: it shows the run scope's SQL (check_scope).
CHECK_SCOPE_PLANNED = "this run's rows; whole tables if it added more than a tenth of a star table"


def planned_statements(config):
    """(what, SQL) of the checks after a load (--dry-run)."""
    return [
        (f"check: {check.name} (expected {check.expected}; {CHECK_SCOPE_PLANNED})", check.sql)
        for check in all_checks(config, sql_queries.THIS_RUN)
    ]
