"""The checks after a load read the run's rows, unless the run added more than a tenth of
some star table (a first load): then whole tables. Rows rewritten in place — the users a
load refreshes (deleted and inserted again) — are no growth: the run scope reads them
anyway. They still count for statistics: a table is analysed after an insert that wrote
more than a tenth of it."""

import re

import pytest
from conftest import event

import create_tables
import etl
import sample_data
import sql_queries
from sparkify import checks, transform

CHECKS_LINE = re.compile(r"^checks: \d+ passed, 0 failed \((?P<scope>[^)]*)\)$", re.MULTILINE)
USERS_REFRESHED_LINE = re.compile(r"^users +(?P<rows>\d+) rows to refresh from newer events", re.MULTILINE)
USERS_WRITTEN_LINE = re.compile(r"^users +\+(?P<rows>\d+) rows", re.MULTILINE)


def scope_printed(out):
    """The scope of the one checks line a run printed."""
    scopes = CHECKS_LINE.findall(out)
    assert len(scopes) == 1, out
    return scopes[0]


def users_written(out):
    """What the users insert wrote: the users the run refreshed and the new ones."""
    return int(USERS_WRITTEN_LINE.search(out)["rows"])


@pytest.fixture
def warehouse_for(run, config_for):
    """warehouse_for(data_dir) -> etl_run(*args): etl.py on one fresh warehouse, returning
    what it printed."""

    def fresh_warehouse(data_dir):
        config = config_for(data_dir)
        code, out = run(create_tables, "--config", config)
        assert code == 0, out

        def etl_run(*args):
            code, out = run(etl, "--config", config, *args)
            assert code == 0, out
            return out

        return etl_run

    return fresh_warehouse


def users_count(query):
    return query("SELECT COUNT(*) FROM users")[0][0]


def last_day_after_the_others(etl_run, query, day_before, last_day):
    """(what the last day's run printed, users before it, users after it)."""
    etl_run("--to", day_before)
    users_before = users_count(query)
    out = etl_run("--from", last_day)
    return out, users_before, users_count(query)


def assert_users_rewritten_not_added(out, users_before, users_after):
    """The case the rule is about: the users insert wrote more than a tenth of the table,
    though few of those users are new to it (the old rule checked whole tables here)."""
    assert users_written(out) > transform.LARGE_RUN_SHARE * users_before, out
    assert users_after - users_before <= transform.LARGE_RUN_SHARE * users_before, out


# --- The real sample ----------------------------------------------------------------------------


def test_first_load_of_real_sample_checks_whole_tables(load, real_sample):
    out = load(real_sample)

    assert scope_printed(out) == sql_queries.WHOLE_TABLES


def test_one_day_after_29_days_of_real_sample_checks_this_run(warehouse_for, real_sample, query):
    etl_run = warehouse_for(real_sample)

    out, users_before, users_after = last_day_after_the_others(etl_run, query, "2018-11-29", "2018-11-30")

    assert_users_rewritten_not_added(out, users_before, users_after)
    assert scope_printed(out) == sql_queries.THIS_RUN


# --- Generated data -----------------------------------------------------------------------------


def test_one_day_after_19_days_of_generated_data_checks_this_run(warehouse_for, tmp_path, query):
    # 18 users over 20 days: the last day refreshes 2 of them, and adds none
    data = sample_data.generate(tmp_path / "generated", events=1600, songs=60, seed=7, days=20)
    etl_run = warehouse_for(data)
    assert scope_printed(etl_run("--to", "2018-11-01")) == sql_queries.WHOLE_TABLES

    out, users_before, users_after = last_day_after_the_others(etl_run, query, "2018-11-19", "2018-11-20")

    assert_users_rewritten_not_added(out, users_before, users_after)
    assert scope_printed(out) == sql_queries.THIS_RUN


def plays(users, count, first_ts):
    """count plays from first_ts on, one second apart, spread over users (user ids)."""
    return [
        event(first_ts + i * 1000, user=str(users[i % len(users)]), session=i, item=0) for i in range(count)
    ]


DAY_ONE_TS = 1541030400000  # 2018-11-01 00:00 UTC
DAY_TWO_TS = DAY_ONE_TS + 86_400_000
OLD_USERS = list(range(1, 21))  # 20 users, 200 plays on day one


def second_day_output(warehouse_for, dataset, new_users, *args):
    """Day one: 200 plays of 20 users. Day two, loaded on its own: 10 of those users
    refreshed, new_users more, one play each (10 + new_users plays and times, at most
    6.5% of those tables)."""
    day_two_users = OLD_USERS[:10] + list(range(100, 100 + new_users))
    data = dataset(
        days={
            "2018-11-01": plays(OLD_USERS, 200, DAY_ONE_TS),
            "2018-11-02": plays(day_two_users, len(day_two_users), DAY_TWO_TS),
        }
    )
    etl_run = warehouse_for(data)
    assert scope_printed(etl_run("--to", "2018-11-01")) == sql_queries.WHOLE_TABLES
    out = etl_run("--from", "2018-11-02", *args)
    assert USERS_REFRESHED_LINE.search(out)["rows"] == "10", out
    return out


@pytest.mark.parametrize(
    ("new_users", "scope"),
    [
        (0, sql_queries.THIS_RUN),  # 10 users of 20 written, none new
        (2, sql_queries.THIS_RUN),  # 2 new users: a tenth, no more
        (3, sql_queries.WHOLE_TABLES),  # 3 new users: more than a tenth
    ],
)
def test_new_users_are_growth_refreshed_users_are_not(warehouse_for, dataset, new_users, scope):
    out = second_day_output(warehouse_for, dataset, new_users)

    assert scope_printed(out) == scope


def test_refreshed_users_count_for_statistics_though_not_for_the_check_scope(warehouse_for, dataset):
    out = second_day_output(warehouse_for, dataset, 0, "--verbose")

    assert "users           analyzed" in out  # 10 users written of 20
    assert "songplays       analyzed" not in out  # 10 plays added to 200
    assert scope_printed(out) == sql_queries.THIS_RUN


# --- The rule on row counts ----------------------------------------------------------------------

EMPTY = dict.fromkeys(("songplays", "users", "songs", "artists", "time"), 0)
LOADED = {"songplays": 200, "users": 20, "songs": 60, "artists": 20, "time": 200}


@pytest.mark.parametrize(
    ("before", "after", "scope"),
    [
        (EMPTY, LOADED, sql_queries.WHOLE_TABLES),  # a first load
        (EMPTY, {**EMPTY, "songs": 1, "artists": 1}, sql_queries.WHOLE_TABLES),  # a first song
        (EMPTY, EMPTY, sql_queries.THIS_RUN),  # nothing added: empty tables stay so
        (LOADED, LOADED, sql_queries.THIS_RUN),  # rows rewritten, none added
        (LOADED, {**LOADED, "songplays": 220, "time": 220, "users": 22}, sql_queries.THIS_RUN),  # a tenth
        (LOADED, {**LOADED, "artists": 23}, sql_queries.WHOLE_TABLES),  # more than a tenth of one
    ],
)
def test_check_scope_follows_rows_added(before, after, scope):
    assert checks.check_scope(before, after) == scope


def test_dry_run_says_when_the_checks_read_whole_tables(generated, run, config_for):
    code, out = run(etl, "--config", config_for(generated), "--dry-run")

    assert code == 0, out
    check_lines = [line for line in out.splitlines() if line.startswith("-- check: ")]
    assert check_lines and all(checks.CHECK_SCOPE_PLANNED in line for line in check_lines)
    assert "whole tables if it added more than a tenth of a star table" in checks.CHECK_SCOPE_PLANNED
