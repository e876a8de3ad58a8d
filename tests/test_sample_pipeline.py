"""The whole pipeline on the real Udacity sample: the counts measured on it."""

import pytest
from test_reruns import RERUNS, STAR, added_by_table, assert_everything_staged_again, star_snapshot

import create_tables
import etl

EXPECTED_COUNTS = {
    "staging_events": 8056,
    "staging_songs": 71,
    "songplays": 6820,
    "users": 97,
    "songs": 71,
    "artists": 69,
    "time": 6813,
}


def test_real_sample_builds_the_expected_star_schema(real_sample, load, query):
    out = load(real_sample)
    for table, expected in EXPECTED_COUNTS.items():
        assert query(f"SELECT COUNT(*) FROM {table}") == [(expected,)], table
    assert "songplays            0        6820   6820" in out


def test_real_sample_has_exactly_one_matched_play(real_sample, load, query):
    load(real_sample)
    matched = query(
        "SELECT s.title, a.name FROM songplays sp"
        " JOIN songs s USING (song_id) JOIN artists a ON a.artist_id = sp.artist_id"
    )
    assert matched == [("Setanta matins", "Elena")]


def test_real_sample_user_levels_come_from_latest_event(real_sample, load, query):
    load(real_sample)
    assert query("SELECT level, COUNT(*) FROM users GROUP BY level ORDER BY level") == [
        ("free", 75),
        ("paid", 22),
    ]


def test_real_sample_start_time_keeps_milliseconds_in_utc(real_sample, load, query):
    load(real_sample)
    first, last = query("SELECT MIN(start_time)::text, MAX(start_time)::text FROM songplays")[0]
    assert query("SELECT MIN(ts)::text, MAX(ts)::text FROM staging_events") == [
        ("2018-11-01 20:57:10.796", "2018-11-30 19:54:24.796")
    ]
    assert first.endswith(".796") and last.startswith("2018-11-30")


def test_real_sample_bjork_reads_correctly_after_repair(real_sample, load, query):
    out = load(real_sample)
    assert query("SELECT COUNT(*) FROM staging_events WHERE artist = 'Björk'")[0][0] > 0
    assert query("SELECT COUNT(*) FROM staging_events WHERE artist LIKE 'Bj%rk' AND artist <> 'Björk'") == [
        (0,)
    ]
    assert "346 text values repaired" in out


@pytest.mark.parametrize("rerun", RERUNS.values(), ids=RERUNS.keys())
def test_real_sample_rerun_changes_nothing(rerun, real_sample, load, run, config_for, query):
    load(real_sample)
    snapshot = star_snapshot(query)
    code, out = run(etl, "--config", config_for(real_sample), *rerun)
    assert code == 0, out
    assert star_snapshot(query) == snapshot
    assert added_by_table(out) == dict.fromkeys(STAR, 0)
    assert {table: rows for table, (rows, _) in snapshot.items()} == {
        table: EXPECTED_COUNTS[table] for table in STAR
    }
    if rerun:
        assert_everything_staged_again(out, log_files=30, song_files=71)


def test_create_tables_drops_what_was_loaded(real_sample, load, run, config_for, query):
    load(real_sample)
    code, _ = run(create_tables, "--config", config_for(real_sample))
    assert code == 0
    assert query("SELECT COUNT(*) FROM songplays") == [(0,)]


def test_make_demo_runs_the_pipeline_on_a_given_folder(
    real_sample, dsn, monkeypatch, capsys, tmp_path, query
):
    import demo

    monkeypatch.setenv("SPARKIFY_LOCAL_DSN", dsn)
    assert demo.main(["--data", str(real_sample), "--dir", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "songplays            0        6820   6820" in out
    assert (tmp_path / "demo" / "dwh.cfg").read_text().count(str(real_sample.resolve())) == 3
    # run as the loader, though SPARKIFY_LOCAL_DSN (the admin's) overrides every config's DSN
    owners = query(
        "SELECT DISTINCT tableowner FROM pg_tables WHERE tablename IN ('songplays', 'load_rejects')"
    )
    assert owners == [(demo.LOADER,)]
    monkeypatch.delenv("SPARKIFY_LOCAL_DSN")  # else it is every config's DSN
    analyst = demo.analyst_config(tmp_path / "demo" / "dwh.cfg")
    assert etl.main(["--config", str(analyst), "--history"]) == 2
    assert "permission denied for table etl_runs" in capsys.readouterr().out


def test_make_demo_generates_its_data_by_default(dsn, monkeypatch, capsys, tmp_path):
    """The default path of `make demo`: 20,000 generated events and 2,000 song files."""
    import demo

    monkeypatch.setenv("SPARKIFY_LOCAL_DSN", dsn)
    assert demo.main(["--dir", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "generated 20000 events and 2000 song files" in out
    assert "staging_songs   2000 files, 2000 records read, 2000 loaded, 0 rejected" in out
    assert "songs                0        1960   1960" in out  # every 50th file repeats a song id
    assert "checks: " in out and " 0 failed" in out
    # a second demo reuses the generated data
    assert demo.main(["--dir", str(tmp_path / "demo")]) == 0
    assert "generated" not in capsys.readouterr().out


def test_make_demo_refuses_a_folder_without_the_data(tmp_path, capsys):
    import demo

    assert demo.main(["--data", str(tmp_path)]) == 2
    assert "has no log_data/ and song_data/ folders" in capsys.readouterr().err
