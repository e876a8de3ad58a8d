"""Re-runs, loads by date, merge order, atomicity, one run at a time, quality checks."""

import json
import random
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import psycopg2
import pytest
from conftest import ROOT, event, song

import create_tables
import etl
import sample_data
import sql_queries

STAR = ("songplays", "users", "songs", "artists", "time")
NOV_1 = 1541030400000
DAY_MS = 86_400_000


def star_snapshot(query):
    """A fingerprint of every star table's full content (order-insensitive)."""
    return {
        table: query(f"SELECT COUNT(*), md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {table} t")[0]
        for table in STAR
    }


def log_days(data_dir):
    return sorted(p.name[:10] for p in Path(data_dir, "log_data").rglob("*-events.json"))


def fresh_tables(run, config):
    code, out = run(create_tables, "--config", config)
    assert code == 0, out


def load_days(run, config, days):
    for day in days:
        code, out = run(etl, "--config", config, "--from", day, "--to", day)
        assert code == 0, out


@pytest.fixture(scope="module")
def six_days(tmp_path_factory):
    return sample_data.generate(tmp_path_factory.mktemp("six-days"), events=2400, songs=200, seed=11, days=6)


RERUNS = {
    "ledger": (),  # stages nothing: the ledger holds every file
    "full-refresh": ("--full-refresh",),  # stages everything again: the anti-joins must hold
}


@pytest.mark.parametrize("rerun", RERUNS.values(), ids=RERUNS.keys())
def test_rerun_leaves_every_star_table_unchanged(rerun, six_days, load, run, config_for, query):
    load(six_days)
    first = star_snapshot(query)
    code, out = run(etl, "--config", config_for(six_days), *rerun)
    assert code == 0, out
    assert star_snapshot(query) == first
    assert added_by_table(out) == dict.fromkeys(STAR, 0)
    if rerun:
        assert_everything_staged_again(out, log_files=6, song_files=200)


def assert_everything_staged_again(out, log_files, song_files):
    """A --full-refresh run staged every file and ran the transform and the checks."""
    assert f"0 new files, 0 changed, {log_files} already loaded (staged again)" in out
    assert f"0 new files, 0 changed, {song_files} already loaded (staged again)" in out
    assert "nothing new to load" not in out and "checks: " in out and " 0 failed" in out


def added_by_table(out):
    """The run's closing table: {star table: rows added}, checked against before/after."""
    added = {}
    for line in out.splitlines():
        cells = line.split()
        if len(cells) == 4 and cells[0] in STAR and all(c.isdigit() for c in cells[1:]):
            before, after, count = map(int, cells[1:])
            assert after - before == count, line
            added[cells[0]] = count
    return added


def data_files(data_dir, dataset):
    return sum(1 for _ in Path(data_dir, dataset).rglob("*.json"))


@pytest.mark.parametrize("data", ["six_days", "real_sample"])
def test_on_redshift_a_full_refresh_rerun_leaves_every_star_table_unchanged(
    data, request, s3_server, standin, tmp_path, run, query
):
    """Keys are not enforced there: only the anti-joins (and the checks) keep a run that
    stages everything again from adding a row twice."""
    from test_redshift_path import make_bucket, upload, write_rs_config

    data_dir = request.getfixturevalue(data)
    upload(s3_server, "sparkify-data", data_dir)
    make_bucket(s3_server, "sparkify-staging")
    config = write_rs_config(tmp_path)
    fresh_tables(run, config)
    code, out = run(etl, "--config", config)
    assert code == 0, out
    first = star_snapshot(query)
    code, out = run(etl, "--config", config, "--full-refresh")
    assert code == 0, out
    assert star_snapshot(query) == first
    assert added_by_table(out) == dict.fromkeys(STAR, 0)
    assert_everything_staged_again(
        out, log_files=data_files(data_dir, "log_data"), song_files=data_files(data_dir, "song_data")
    )


@pytest.mark.parametrize("order", ["in date order", "shuffled"])
def test_day_by_day_loads_equal_one_full_load(order, six_days, load, run, config_for, query):
    load(six_days)
    full = star_snapshot(query)
    config = config_for(six_days)
    fresh_tables(run, config)
    days = log_days(six_days)
    if order == "shuffled":
        random.Random(3).shuffle(days)
    load_days(run, config, days)
    assert star_snapshot(query) == full


def test_real_sample_day_by_day_shuffled_equals_full_load(real_sample, load, run, config_for, query):
    load(real_sample)
    full = star_snapshot(query)
    config = config_for(real_sample)
    fresh_tables(run, config)
    days = log_days(real_sample)
    random.Random(5).shuffle(days)
    load_days(run, config, days)
    assert star_snapshot(query) == full
    assert full["songplays"][0] == 6820


def test_window_reads_only_the_files_of_those_days(six_days, load, query):
    out = load(six_days, "--from", "2018-11-02", "--to", "2018-11-03")
    assert "staging_events  2 files" in out
    assert "4 files outside --from/--to skipped" in out
    days = query("SELECT DISTINCT ts::date::text FROM staging_events ORDER BY 1")
    assert {d for (d,) in days} <= {"2018-11-02", "2018-11-03", "2018-11-04"}  # late sessions spill


def test_open_ended_windows(six_days, load):
    assert "staging_events  2 files" in load(six_days, "--from", "2018-11-05")
    assert "staging_events  3 files" in load(six_days, "--to", "2018-11-03")


def test_bad_window_is_a_usage_error(six_days, run, config_for):
    code, out = run(etl, "--config", config_for(six_days), "--from", "2018-11-31")
    assert code == 2 and "error: '2018-11-31' is not a date; use YYYY-MM-DD" in out
    code, out = run(etl, "--config", config_for(six_days), "--from", "2018-11-05", "--to", "2018-11-01")
    assert code == 2 and "--from 2018-11-05 is after --to 2018-11-01" in out


@pytest.fixture
def upgrade_config(dataset, run, config_for):
    """Empty tables and a config for one user: free on 2018-11-01, paid on 2018-11-02."""
    data = dataset(
        songs=[song("SO_1")],
        days={
            "2018-11-01": [event(NOV_1, level="free")],
            "2018-11-02": [event(NOV_1 + DAY_MS, level="paid", item=1)],
        },
    )
    config = config_for(data)
    fresh_tables(run, config)
    return config


def test_older_window_loaded_later_keeps_the_newer_level(upgrade_config, run, query):
    config = upgrade_config
    load_days(run, config, ["2018-11-02", "2018-11-01"])
    assert query("SELECT level, latest_event_at::text FROM users") == [("paid", "2018-11-02 00:00:00")]
    assert query("SELECT COUNT(*) FROM songplays") == [(2,)]


def test_newer_window_updates_the_level(upgrade_config, run, query):
    config = upgrade_config
    load_days(run, config, ["2018-11-01"])
    assert query("SELECT level FROM users") == [("free",)]
    code, out = run(etl, "--config", config, "--from", "2018-11-02")
    assert code == 0
    assert "users           1 rows to refresh from newer events" in out
    assert query("SELECT level FROM users") == [("paid",)]


# --- Atomic: a run killed mid-transaction leaves the star tables as they were. ----------------

SLOW_CHECK = "\n[CHECK slow]\nSQL = SELECT COUNT(*) FROM (SELECT pg_sleep(60)) AS s\nEXPECTED = 1\n"


def start_slow_run(config, *args):
    """Start etl.py in a subprocess whose last step (a check) sleeps before the commit."""
    config.write_text(config.read_text() + SLOW_CHECK)
    return subprocess.Popen(
        [sys.executable, str(ROOT / "etl.py"), "--config", str(config), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for_backend(dsn, process, condition, params=None, timeout=60):
    """The pid of the run's backend once pg_stat_activity shows it matching condition."""
    deadline = time.monotonic() + timeout
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    try:
        while time.monotonic() < deadline:
            assert process.poll() is None, process.stdout.read()
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT pid FROM pg_stat_activity"
                    f" WHERE {condition} AND pid <> pg_backend_pid() AND datname = current_database()",
                    params,
                )
                row = cur.fetchone()
            if row:
                return row[0]
            time.sleep(0.05)
    finally:
        conn.close()
    raise AssertionError(f"the run never reached: {condition} {params}")


def wait_for_sleeping_backend(dsn, process):
    """The run's backend once it sleeps in its last check."""
    return wait_for_backend(dsn, process, "query LIKE '%pg_sleep(60)%'")


def terminate_backend(dsn, pid):
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
    conn.close()


@pytest.mark.parametrize("kill", ["pg_terminate_backend", "SIGKILL"])
def test_run_killed_mid_transaction_leaves_star_tables_as_before(
    kill, six_days, load, config_for, dsn, query
):
    load(six_days, "--to", "2018-11-02")
    before = star_snapshot(query)
    process = start_slow_run(config_for(six_days))
    pid = wait_for_sleeping_backend(dsn, process)
    assert query("SELECT COUNT(*) FROM songplays") == [(before["songplays"][0],)]  # not committed yet
    if kill == "SIGKILL":
        process.send_signal(signal.SIGKILL)
    else:
        terminate_backend(dsn, pid)
    output, _ = process.communicate(timeout=60)
    assert process.returncode != 0
    if kill == "pg_terminate_backend":
        assert "error: the load failed: " in output
        assert "the connection was lost and nothing of this run was committed" in output
        assert "Traceback" not in output
    time.sleep(0.2)
    assert star_snapshot(query) == before


def first_play_id(data_dir, day):
    """songplay_id of the first play in a day's file: the MD5 of its natural key, as
    NEW_SONGPLAYS_CREATE computes it."""
    import hashlib
    from datetime import UTC, datetime

    path = next(Path(data_dir, "log_data").rglob(f"{day}-events.json"))
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if record["page"] == "NextSong" and record["userId"]:
            at = datetime.fromtimestamp(record["ts"] / 1000, UTC)
            key = (
                f"{int(record['userId'])}|{record['sessionId']}|{record['itemInSession']}|"
                f"{at:%Y-%m-%d %H:%M:%S}.{at.microsecond // 1000:03d}"
            )
            return hashlib.md5(key.encode()).hexdigest()
    raise AssertionError(f"no play on {day}")


def hold_what_blocks(statement, conn, six_days):
    """In conn's open transaction, take what the run's statement must wait for:
    - INSERT INTO songplays: an uncommitted row with the id of one of the run's plays
      (the run's insert waits to see whether it commits, inside the statement);
    - DELETE FROM users: a SHARE lock on users (reads pass, the merge's writes wait)."""
    with conn.cursor() as cur:
        if statement == "INSERT INTO songplays":
            cur.execute(
                "INSERT INTO songplays (songplay_id, start_time, user_id, session_id, item_in_session)"
                " VALUES (%s, '2000-01-01', 0, 0, 0)",
                (first_play_id(six_days, "2018-11-03"),),
            )
        else:
            cur.execute("LOCK TABLE users IN SHARE MODE")


def wait_for_blocked_statement(dsn, process, statement):
    """The run's backend once its `statement` waits for a lock."""
    return wait_for_backend(
        dsn, process, "wait_event_type = 'Lock' AND ltrim(query, E' \\n') LIKE %s", (statement + "%",)
    )


@pytest.mark.parametrize("kill", ["pg_terminate_backend", "SIGKILL"])
@pytest.mark.parametrize("statement", ["INSERT INTO songplays", "DELETE FROM users"])
def test_run_killed_mid_transform_leaves_every_table_as_before(
    statement, kill, six_days, load, config_for, dsn, query
):
    """Killed inside the songplays insert, or inside the users merge (after songplays
    took this run's plays): the run's staging, songs, plays and ledger all go."""
    load(six_days, "--to", "2018-11-02")
    before = table_digests(query)
    blocker = psycopg2.connect(dsn)
    try:
        hold_what_blocks(statement, blocker, six_days)
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "etl.py"), "--config", str(config_for(six_days))],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        pid = wait_for_blocked_statement(dsn, process, statement)
        if kill == "SIGKILL":
            process.send_signal(signal.SIGKILL)
        else:
            terminate_backend(dsn, pid)
        output, _ = process.communicate(timeout=60)
        assert process.returncode != 0, output
    finally:
        blocker.rollback()  # a backend whose client was killed goes on, then finds it gone
        blocker.close()
    wait_until_gone(dsn, pid)
    assert table_digests(query) == before


def table_digests(query):
    """A digest of every row of the star tables, the kept song records and the ledger."""
    return {
        table: query(f"SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {table} t")
        for table in (*STAR, "song_records", "loaded_files", "load_rejects")
    }


def wait_until_gone(dsn, pid, timeout=60):
    deadline = time.monotonic() + timeout
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    try:
        while time.monotonic() < deadline:
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,))
                if not cur.fetchall():
                    return
            time.sleep(0.05)
    finally:
        conn.close()
    raise AssertionError(f"backend {pid} is still there")


# --- One run at a time: the run lock. ---------------------------------------------------------

BUSY_AFTER_ONE_SECOND = (
    "error: another run is loading this warehouse; waited 1 s ([ETL] LOCK_TIMEOUT_SECONDS)."
    " Try again when it has finished."
)


def timed_run(run, script, *args):
    """run(script, *args), and how long it took: (code, output, seconds)."""
    started = time.monotonic()
    code, out = run(script, *args)
    return code, out, time.monotonic() - started


def assert_waited_then_refused(code, out, seconds):
    """The run waited for the lock (LOCK_TIMEOUT_SECONDS = 1), then stopped with exit 1
    and the lock's own message: not at once, nor on some table's lock."""
    assert code == 1, out
    assert BUSY_AFTER_ONE_SECOND in out.splitlines(), out
    assert 0.9 <= seconds < 15, seconds


@contextmanager
def run_lock_held(dsn, lock_statement):
    """Another session holding the run lock, in an open transaction, as a running
    etl.py holds it."""
    holder = psycopg2.connect(dsn)
    try:
        with holder.cursor() as cur:
            cur.execute(lock_statement)
        yield
    finally:
        holder.rollback()
        holder.close()


POSTGRES_RUN_LOCK = f"SELECT pg_advisory_xact_lock({sql_queries.RUN_LOCK_KEY})"  # README: --dry-run
REDSHIFT_RUN_LOCK = "LOCK etl_run_lock"
SCRIPTS = {"etl.py": etl, "create_tables.py": create_tables}


@pytest.mark.parametrize("script", SCRIPTS.values(), ids=SCRIPTS.keys())
def test_a_run_waits_for_the_run_lock_then_stops_and_changes_nothing(
    script, six_days, load, config_for, dsn, run, query
):
    """create_tables.py takes the lock etl.py takes: it never drops tables under a run."""
    load(six_days, "--to", "2018-11-02")
    before = table_digests(query)
    config = config_for(six_days, lock_timeout_seconds=1)
    with run_lock_held(dsn, POSTGRES_RUN_LOCK):
        code, out, seconds = timed_run(run, script, "--config", config)
    assert_waited_then_refused(code, out, seconds)
    assert table_digests(query) == before


@pytest.mark.parametrize("script", SCRIPTS.values(), ids=SCRIPTS.keys())
def test_on_redshift_a_run_waits_for_the_run_lock_then_stops_and_changes_nothing(
    script, six_days, s3_server, standin, tmp_path, run, query
):
    from test_redshift_path import make_bucket, upload, write_rs_config

    upload(s3_server, "sparkify-data", six_days)
    make_bucket(s3_server, "sparkify-staging")
    config = write_rs_config(tmp_path, ETL_LOCK_TIMEOUT_SECONDS=1)
    fresh_tables(run, config)
    code, out = run(etl, "--config", config, "--to", "2018-11-02")
    assert code == 0, out
    before = table_digests(query)
    with run_lock_held(standin, REDSHIFT_RUN_LOCK):
        code, out, seconds = timed_run(run, script, "--config", config)
    assert_waited_then_refused(code, out, seconds)
    assert table_digests(query) == before


def test_second_run_refuses_while_one_is_running(six_days, load, config_for, dsn, run, tmp_path):
    load(six_days, "--to", "2018-11-01")
    process, pid = start_slow_run(config_for(six_days)), None
    try:
        pid = wait_for_sleeping_backend(dsn, process)
        other = tmp_path / "other"
        other.mkdir()
        from conftest import write_config

        second = write_config(other, dsn, six_days, lock_timeout_seconds=1)
        code, out, seconds = timed_run(run, etl, "--config", second)
        assert_waited_then_refused(code, out, seconds)
    finally:
        process.kill()
        if pid is not None:  # else the failure that left it unset is the one to see
            terminate_backend(dsn, pid)
        process.communicate(timeout=60)


OUR_INDEXES = {index.name for index in sql_queries.indexes(sql_queries.POSTGRES)}
TABLES_FROM_LOGS = {"songplays", "play_sources", "user_sources"}  # empty while no log is loaded


def index_names(query):
    return {name for (name,) in query("SELECT indexname FROM pg_indexes WHERE indexname LIKE '%%_idx'")}


def test_the_first_run_that_fills_a_table_builds_its_indexes(six_days, load, run, config_for, query):
    """create_tables.py builds none; a run builds those of the tables it filled, after
    their inserts (songplays waits while no log is loaded); later runs build nothing."""
    config = config_for(six_days)
    fresh_tables(run, config)
    assert index_names(query) == set()
    code, songs_only = run(etl, "--config", config, "--to", "2018-10-01")  # before any log day
    assert code == 0, songs_only
    from_logs = {i.name for i in sql_queries.indexes(sql_queries.POSTGRES) if i.table in TABLES_FROM_LOGS}
    assert from_logs and index_names(query) == OUR_INDEXES - from_logs
    code, first_plays = run(etl, "--config", config, "--to", "2018-11-02")
    assert code == 0, first_plays
    assert index_names(query) == OUR_INDEXES
    assert first_plays.index("songplays       +") < first_plays.index("songplays       indexed (song_title)")
    code, later = run(etl, "--config", config)
    assert code == 0, later
    assert "indexed" not in later


def test_a_star_table_a_run_grows_is_analysed_before_the_next_statement(six_days, run, config_for):
    """The songs of a first load are analysed before the plays are matched to them."""
    config = config_for(six_days)
    fresh_tables(run, config)
    code, out = run(etl, "--config", config, "--verbose")
    assert code == 0, out
    songs_inserted = out.index("songs           +")
    assert songs_inserted < out.index("songs           analyzed") < out.index("artist_changes")


def test_analysts_read_songplays_while_a_first_load_builds_its_indexes(six_days, run, config_for, dsn, query):
    """The first run builds the indexes inside its transaction; readers are not locked out."""
    config = config_for(six_days)
    fresh_tables(run, config)
    process, pid = start_slow_run(config), None
    try:
        pid = wait_for_sleeping_backend(dsn, process)  # indexes built, not committed
        reader = psycopg2.connect(dsn, options="-c lock_timeout=2s")
        try:
            with reader.cursor() as cur:
                cur.execute("SELECT COUNT(*) FROM songplays WHERE song_title = 'x'")
                assert cur.fetchall() == [(0,)]
        finally:
            reader.close()
    finally:
        process.kill()
        if pid is not None:
            terminate_backend(dsn, pid)
        process.communicate(timeout=60)


# --- Data quality checks. --------------------------------------------------------------------


def test_check_only_reports_passing_checks(six_days, load, run, config_for):
    load(six_days)
    code, out = run(etl, "--config", config_for(six_days), "--check-only")
    assert code == 0
    assert f"checks: {len(sql_queries.quality_checks(sql_queries.WHOLE_TABLES))} passed, 0 failed" in out
    assert "songplays" not in out.split("checks:")[0]  # nothing loaded


def test_check_only_finds_orphan_songplays(six_days, load, run, config_for, query):
    load(six_days)
    query(
        "INSERT INTO songplays (songplay_id, start_time, user_id, session_id, item_in_session)"
        " VALUES ('x', '2030-01-01', 999999, 1, 1)"
    )
    code, out = run(etl, "--config", config_for(six_days), "--check-only")
    assert code == 1
    assert "check failed: every songplays.user_id is in users: expected 0, found 1" in out
    assert "check failed: every songplays.start_time is in time: expected 0, found 1" in out


def test_failing_user_check_rolls_the_load_back(six_days, run, config_for, query):
    config = config_for(six_days)
    fresh_tables(run, config)
    config.write_text(
        config.read_text() + "\n[CHECK no plays at all]\nSQL = SELECT COUNT(*) FROM songplays\nEXPECTED = 0\n"
    )
    code, out = run(etl, "--config", config)
    assert code == 1
    assert "check failed: no plays at all: expected 0, found" in out
    assert "error: 1 data quality check(s) failed: no plays at all" in out
    assert query("SELECT COUNT(*) FROM songplays") == [(0,)]


def test_user_check_with_comparison_passes(six_days, run, config_for):
    config = config_for(six_days)
    fresh_tables(run, config)
    config.write_text(
        config.read_text() + "\n[CHECK some users]\nSQL = SELECT COUNT(*) FROM users\nEXPECTED = >= 10\n"
    )
    code, out = run(etl, "--config", config)
    assert code == 0, out
    assert f"checks: {len(sql_queries.quality_checks(sql_queries.WHOLE_TABLES)) + 1} passed, 0 failed" in out


def test_a_user_check_can_expect_exact_text(six_days, load, run, config_for, query):
    load(six_days)
    (level,) = query("SELECT level FROM users ORDER BY user_id LIMIT 1")[0]
    other = "free" if level == "paid" else "paid"
    sql = "SELECT level FROM users ORDER BY user_id LIMIT 1"
    config = config_for(six_days)
    base = config.read_text()
    config.write_text(base + f"\n[CHECK first user's level]\nSQL = {sql}\nEXPECTED = {level}\n")
    code, out = run(etl, "--config", config, "--check-only")
    assert code == 0, out
    config.write_text(base + f"\n[CHECK first user's level]\nSQL = {sql}\nEXPECTED = {other}\n")
    code, out = run(etl, "--config", config, "--check-only")
    assert code == 1
    assert f"check failed: first user's level: expected {other}, found {level}" in out


def test_a_warehouse_whose_log_is_loaded_but_whose_songplays_are_empty_fails_the_checks(
    dataset, load, run, config_for, query
):
    data = dataset(songs=[song("SO_1")], days={"2018-11-01": [event(NOV_1)]})
    load(data)
    code, out = run(etl, "--config", config_for(data), "--check-only")
    assert code == 0, out
    query("DELETE FROM songplays")
    code, out = run(etl, "--config", config_for(data), "--check-only")
    assert code == 1
    assert "check failed: songplays is not empty once plays are staged: expected 0, found 1" in out


def test_an_empty_warehouse_passes_the_checks_until_something_is_loaded(dataset, run, config_for):
    """Songs may arrive before any log file, and the other way round."""
    data = dataset()
    config = config_for(data)
    fresh_tables(run, config)
    code, out = run(etl, "--config", config, "--check-only")
    assert code == 0, out
    assert f"checks: {len(sql_queries.quality_checks(sql_queries.WHOLE_TABLES))} passed, 0 failed" in out


def test_log_file_without_a_date_is_loaded_unless_a_window_is_given(dataset, load, run, config_for, query):
    data = dataset(
        songs=[song("SO_1")], raw={"log_data/extra/events.json": json.dumps(event(NOV_1)).encode()}
    )
    out = load(data)
    assert "staging_events  1 files" in out and query("SELECT COUNT(*) FROM songplays") == [(1,)]
    code, out = run(etl, "--config", config_for(data), "--from", "2018-11-01")
    assert code == 0 and "1 files outside --from/--to skipped" in out


def test_a_table_lock_not_granted_mid_run_says_so_not_a_lost_connection(
    six_days, load, config_for, dsn, run, query
):
    """The lock timeout bounds every lock wait of the run: a session holding a table the
    run writes makes it stop with what happened (psycopg2 files it as an OperationalError)."""
    load(six_days, "--to", "2018-11-02")
    before = table_digests(query)
    with run_lock_held(dsn, "LOCK TABLE songplays IN ACCESS EXCLUSIVE MODE"):
        code, out = run(etl, "--config", config_for(six_days, lock_timeout_seconds=1))
    assert code == 1
    assert "a table lock was not granted within [ETL] LOCK_TIMEOUT_SECONDS" in out
    assert "connection was lost" not in out and "Traceback" not in out
    assert table_digests(query) == before
