"""Data quality checks: built-in ones from sql_queries plus the user's [CHECK …] sections."""

import re
from typing import NamedTuple

import psycopg2

import sql_queries
from sparkify.config import UserCheck

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
        cursor.execute("SAVEPOINT quality_check")
    try:
        cursor.execute(check.sql, check.parameters)
        row = cursor.fetchone()
    except CONNECTION_LOST:
        raise
    except psycopg2.Error:
        if savepoint:
            cursor.execute("ROLLBACK TO SAVEPOINT quality_check")
        raise
    if savepoint:
        cursor.execute("RELEASE SAVEPOINT quality_check")
    return row[0] if row else None
