"""The ledger of loaded files: each run stages only new or changed files; plays are
matched against the catalogue in the warehouse; files arriving over several runs, in
any order and with re-runs, give the star tables of one full load."""

import json
import os
import random
import shutil
from pathlib import Path

import pytest
from conftest import event, song
from test_redshift_path import fingerprint, upload, write_rs_config
from test_reruns import NOV_1, log_days, star_snapshot

import create_tables
import etl
import sample_data


@pytest.fixture(scope="module")
def eight_days(tmp_path_factory):
    return sample_data.generate(
        tmp_path_factory.mktemp("eight-days"), events=2400, songs=200, seed=13, days=8
    )


def day_file(data_dir, day):
    return Path(data_dir, "log_data", day[:4], day[5:7], f"{day}-events.json")


def copy_day(source, target, day):
    destination = day_file(target, day)
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(day_file(source, day), destination)


def growing_copy(source, target):
    """The songs and JSONPaths of source in target, and no log file yet."""
    shutil.copytree(Path(source, "song_data"), Path(target, "song_data"))
    shutil.copy2(Path(source, "log_json_path.json"), Path(target, "log_json_path.json"))
    Path(target, "log_data").mkdir()
    return target


def ledger_rows(query):
    return query("SELECT dataset, COUNT(*), SUM(records) FROM loaded_files GROUP BY dataset ORDER BY dataset")


def test_a_rerun_stages_nothing_and_says_so(eight_days, load, run, config_for, query):
    load(eight_days)
    events = sum(1 for p in Path(eight_days, "log_data").rglob("*.json") for line in p.open() if line.strip())
    assert ledger_rows(query) == [("log_data", 8, events), ("song_data", 200, 200)]
    code, out = run(etl, "--config", config_for(eight_days))
    assert code == 0, out
    assert "staging_events  0 files, 0 records read" in out
    assert "0 new files, 0 changed, 8 already loaded (skipped)" in out
    assert "0 new files, 0 changed, 200 already loaded (skipped)" in out
    assert query("SELECT COUNT(*) FROM staging_events") == [(0,)]
    assert "nothing new to load: no transform, no checks" in out
    assert "songplays       +" not in out and "checks:" not in out
    assert query(
        "SELECT status, transform_seconds, songplays_added FROM etl_runs ORDER BY started_at DESC LIMIT 1"
    ) == [("committed", None, 0)]


def test_a_run_whose_window_holds_nothing_new_still_takes_a_new_song(
    eight_days, load, run, config_for, query
):
    """Only a run that stages no file at all skips the transform: one new song file is
    enough to choose songs and artists again."""
    data = growing_copy(eight_days, config_for(eight_days).parent / "one-more-song")
    days = log_days(eight_days)
    copy_day(eight_days, data, days[0])
    config = config_for(data)
    load(data)
    songs = query("SELECT COUNT(*) FROM songs")[0][0]
    extra = Path(data, "song_data", "TRZZZLATE.json")
    extra.write_text(json.dumps(song("SOZZZ", title="Late", artist="Z", artist_id="ARZZZ")))
    code, out = run(etl, "--config", config, "--from", days[0], "--to", days[0])
    assert code == 0, out
    assert "nothing new to load" not in out and "checks:" in out
    assert query("SELECT COUNT(*) FROM songs") == [(songs + 1,)]


def test_a_changed_file_is_staged_again_and_an_unchanged_one_is_not(eight_days, load, run, config_for, query):
    data = growing_copy(eight_days, config_for(eight_days).parent / "grow")
    days = log_days(eight_days)
    for day in days[:2]:
        copy_day(eight_days, data, day)
    config = config_for(data)
    load(data)
    first_day = day_file(data, days[0])
    version_before = query("SELECT version, run_id FROM loaded_files WHERE file LIKE %s", (f"%{days[0]}%",))
    first_day.write_text(first_day.read_text() + "\n")  # same records, new size and time
    code, out = run(etl, "--config", config)
    assert code == 0, out
    assert "0 new files, 1 changed, 1 already loaded (skipped)" in out
    version_after = query("SELECT version, run_id FROM loaded_files WHERE file LIKE %s", (f"%{days[0]}%",))
    assert version_after != version_before
    assert query("SELECT COUNT(*) FROM loaded_files WHERE dataset = 'log_data'") == [(2,)]
    second = query("SELECT run_id FROM loaded_files WHERE file LIKE %s", (f"%{days[1]}%",))
    assert second[0][0] == version_before[0][1]  # untouched by the second run


def test_full_refresh_stages_everything_again(eight_days, load, run, config_for, query):
    load(eight_days)
    before = star_snapshot(query)
    code, out = run(etl, "--config", config_for(eight_days), "--full-refresh")
    assert code == 0, out
    assert "0 new files, 0 changed, 8 already loaded (staged again)" in out
    assert query("SELECT COUNT(*) FROM staging_songs") == [(200,)]
    assert star_snapshot(query) == before


def test_create_tables_empties_the_ledger(eight_days, load, run, config_for, query):
    load(eight_days)
    assert run(create_tables, "--config", config_for(eight_days))[0] == 0
    assert query("SELECT COUNT(*) FROM loaded_files") == [(0,)]


def test_plays_of_a_day_without_new_songs_match_the_warehouse_catalogue(
    dataset, load, run, config_for, query
):
    from conftest import event, song

    day_one = [event(1541030400000, song="Yellow", artist="Coldplay", length=266.0, item=0)]
    data = dataset(
        songs=[song("SO1", title="Yellow", artist="Coldplay", duration=266.0, artist_id="AR9")],
        days={"2018-11-01": day_one},
    )
    load(data)
    day_two = [event(1541116800000, song="Yellow", artist="Coldplay", length=266.0, item=1)]
    dataset(days={"2018-11-02": day_two})
    code, out = run(etl, "--config", config_for(data))
    assert code == 0, out
    assert "staging_songs   0 files" in out
    assert query("SELECT song_id, artist_id FROM songplays ORDER BY start_time") == [("SO1", "AR9")] * 2


@pytest.mark.parametrize("seed", [1, 2])
def test_files_arriving_over_several_runs_equal_one_full_load(seed, eight_days, load, run, config_for, query):
    load(eight_days)
    full = star_snapshot(query)
    data = growing_copy(eight_days, config_for(eight_days).parent / f"grow{seed}")
    config = config_for(data)
    assert run(create_tables, "--config", config)[0] == 0
    days = log_days(eight_days)
    random.Random(seed).shuffle(days)
    for batch in (days[:3], days[3:4], [], days[4:]):  # [] : a re-run with nothing new
        for day in batch:
            copy_day(eight_days, data, day)
        code, out = run(etl, "--config", config)
        assert code == 0, out
    assert star_snapshot(query) == full


def test_on_redshift_a_second_run_copies_only_the_new_keys(
    eight_days, s3_server, standin, dsn, tmp_path, run, query
):
    from test_redshift_path import make_bucket

    data = growing_copy(eight_days, tmp_path / "grow")
    days = log_days(eight_days)
    for day in days[:5]:
        copy_day(eight_days, data, day)
    upload(s3_server, "sparkify-data", data)
    make_bucket(s3_server, "sparkify-staging")
    config = write_rs_config(tmp_path)
    assert run(create_tables, "--config", config)[0] == 0
    assert run(etl, "--config", config)[0] == 0
    for day in days[5:]:
        key = os.path.relpath(day_file(eight_days, day), eight_days)
        s3_server.upload_file(str(day_file(eight_days, day)), "sparkify-data", key)
    code, out = run(etl, "--config", config)
    assert code == 0, out
    assert "staging_songs   0 files in 0 COPY" in out
    assert "staging_events  3 files in 3 COPY" in out  # one per log file: each names its rows
    assert "3 new files, 0 changed, 5 already loaded (skipped)" in out
    code, out = run(etl, "--config", config)
    assert "staging_events  0 files in 0 COPY" in out
    on_redshift = fingerprint(dsn)
    assert query("SELECT COUNT(*) FROM loaded_files") == [(208,)]
    # the same star as one full load of everything
    assert run(create_tables, "--config", config)[0] == 0
    assert run(etl, "--config", config)[0] == 0
    assert fingerprint(dsn) == on_redshift


# --- The ledger of runs ---------------------------------------------------------------------------


def runs(query):
    return query(
        "SELECT status, target, window_from::text, window_to::text, log_files, records_read, records_loaded,"
        " records_rejected, songplays_added, error FROM etl_runs ORDER BY started_at"
    )


def test_every_run_leaves_a_row_committed_or_failed(eight_days, load, run, config_for, query, tmp_path):
    load(eight_days, "--from", "2018-11-01", "--to", "2018-11-02")
    config = config_for(eight_days)
    Path(config).write_text(
        Path(config).read_text()
        + "\n[CHECK impossible]\nSQL = SELECT COUNT(*) FROM songplays\nEXPECTED = 0\n"
    )
    code, out = run(etl, "--config", config)
    assert code == 1
    played = query("SELECT COUNT(*) FROM songplays")[0][0]
    first, second = runs(query)
    assert first[:4] == ("committed", "local", "2018-11-01", "2018-11-02")
    assert first[4] == 2 and first[5] == first[6] and first[7] == 0 and first[8] == played > 0
    assert first[9] is None
    assert second[0] == "failed" and second[4] == 6
    assert second[9] == "1 data quality check(s) failed: impossible"
    assert second[8] is None  # nothing was added


def test_history_prints_the_latest_runs_as_a_table_or_json(eight_days, load, run, config_for):
    import json

    load(eight_days)
    config = config_for(eight_days)
    assert run(etl, "--config", config)[0] == 0
    code, out = run(etl, "--config", config, "--history")
    assert code == 0, out
    header, rule, newest, oldest = out.strip().splitlines()
    assert header.split()[:4] == ["run_id", "started", "(UTC)", "status"]
    assert " committed  local " in newest and " all " in newest
    code, out = run(etl, "--config", config, "--history", "--format", "json", "--limit", "1")
    assert code == 0, out
    (latest,) = json.loads(out)
    assert latest["status"] == "committed" and latest["songplays_added"] == 0 and latest["log_files"] == 0


def test_create_tables_keeps_the_history(eight_days, load, run, config_for, query):
    load(eight_days)
    assert run(create_tables, "--config", config_for(eight_days))[0] == 0
    assert query("SELECT COUNT(*) FROM etl_runs") == [(1,)]


def test_on_redshift_a_failed_copy_leaves_a_failed_run(dataset, s3_server, standin, tmp_path, run, query):
    from conftest import event, song
    from test_redshift_path import make_bucket

    events = [event(1541105830796, sessionId="abc")]
    upload(s3_server, "sparkify-data", dataset(songs=[song("SO1")], days={"2018-11-05": events}))
    make_bucket(s3_server, "sparkify-staging")
    config = write_rs_config(tmp_path)
    assert run(create_tables, "--config", config)[0] == 0
    assert run(etl, "--config", config)[0] == 1
    (row,) = runs(query)
    assert row[:2] == ("failed", "redshift")
    assert row[9].startswith("COPY into staging_events failed: Load into table 'staging_events' failed.")


def test_on_redshift_the_real_sample_arriving_day_by_day_equals_one_full_load(
    real_sample, s3_server, standin, dsn, tmp_path, run
):
    from test_redshift_path import make_bucket

    data = growing_copy(real_sample, tmp_path / "grow")
    upload(s3_server, "sparkify-data", data)
    make_bucket(s3_server, "sparkify-staging")
    config = write_rs_config(tmp_path)
    assert run(create_tables, "--config", config)[0] == 0
    days = log_days(real_sample)
    random.Random(7).shuffle(days)
    for batch in (days[:10], days[10:11], [], days[11:]):
        for day in batch:
            key = os.path.relpath(day_file(real_sample, day), real_sample)
            s3_server.upload_file(str(day_file(real_sample, day)), "sparkify-data", key)
        code, out = run(etl, "--config", config)
        assert code == 0, out
    arrived = fingerprint(dsn)
    assert run(create_tables, "--config", config)[0] == 0
    assert run(etl, "--config", config)[0] == 0
    assert fingerprint(dsn) == arrived
    assert len(arrived["songplays"]) == 6820


def test_a_file_name_with_copy_escapes_is_recorded_exactly(eight_days, run, config_for, query):
    """The ledger is written by COPY: a tab or a backslash in a file name must be escaped
    (and numbers need not be), or the name read back would differ and the file be staged
    again on every run."""
    data = growing_copy(eight_days, config_for(eight_days).parent / "odd-names")
    odd = Path(data, "song_data", "TR\tODD\\NAME.json")
    odd.write_text(json.dumps(song("SOODD", title="Odd")))
    config = config_for(data)
    code, out = run(create_tables, "--config", config)
    assert code == 0, out
    assert run(etl, "--config", config)[0] == 0
    assert query("SELECT file, size, records FROM loaded_files WHERE file LIKE %s", ("%ODD%",)) == [
        ("TR\tODD\\NAME.json", odd.stat().st_size, 1)
    ]
    code, out = run(etl, "--config", config)
    assert code == 0, out
    assert "nothing new to load" in out


# --- A file edited in place, to the same size ------------------------------------------------------
# Locally a file's version is its modification time, on S3 its ETag: an edit that keeps
# the byte length must still be staged again, and the star take what the edit brought.

USER_7_THEN_8 = [
    event(NOV_1, user="7", level="free", item=0),
    event(NOV_1 + 1000, user="8", level="paid", item=1),
]
USER_8 = '"userId": "8"'
CORRECTED_TO_USER_7 = '"userId": "7"'  # the second play was user 7's: same byte length


def edited_in_place(path, old, new):
    """Replace old by new (the same length) in path, and give it a later mtime."""
    assert len(old) == len(new)
    before = path.stat()
    text = path.read_text()
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 5_000_000_000))
    assert path.stat().st_size == before.st_size


def users_levels(query):
    return query("SELECT user_id, level FROM users ORDER BY user_id")


def test_a_file_edited_in_place_to_the_same_size_is_staged_again(dataset, load, run, config_for, query):
    data = dataset(songs=[song("SO_1")], days={"2018-11-01": USER_7_THEN_8})
    load(data)
    assert users_levels(query) == [(7, "free"), (8, "paid")]
    version = query("SELECT version FROM loaded_files WHERE dataset = 'log_data'")
    path = day_file(data, "2018-11-01")
    edited_in_place(path, USER_8, CORRECTED_TO_USER_7)
    code, out = run(etl, "--config", config_for(data))
    assert code == 0, out
    assert "0 new files, 1 changed, 0 already loaded (skipped)" in out
    new_version = query("SELECT version FROM loaded_files WHERE dataset = 'log_data'")
    assert new_version == [(str(path.stat().st_mtime_ns),)] and new_version != version
    # user 7's latest event is now the paid one, and user 8, in no file any more, is gone
    assert users_levels(query) == [(7, "paid")]
    assert query("SELECT COUNT(*) FROM songplays WHERE user_id = 7") == [(2,)]


def test_on_redshift_an_object_rewritten_to_the_same_size_is_staged_again(
    dataset, s3_server, standin, tmp_path, run, query
):
    from test_redshift_path import make_bucket

    data = dataset(songs=[song("SO_1")], days={"2018-11-01": USER_7_THEN_8})
    upload(s3_server, "sparkify-data", data)
    make_bucket(s3_server, "sparkify-staging")
    config = write_rs_config(tmp_path)
    assert run(create_tables, "--config", config)[0] == 0
    assert run(etl, "--config", config)[0] == 0
    assert users_levels(query) == [(7, "free"), (8, "paid")]
    path = day_file(data, "2018-11-01")
    key = path.relative_to(data).as_posix()
    etag = s3_server.head_object(Bucket="sparkify-data", Key=key)["ETag"]
    edited_in_place(path, USER_8, CORRECTED_TO_USER_7)
    s3_server.upload_file(str(path), "sparkify-data", key)
    assert s3_server.head_object(Bucket="sparkify-data", Key=key)["ETag"] != etag  # moto: the MD5
    code, out = run(etl, "--config", config)
    assert code == 0, out
    assert "0 new files, 1 changed, 0 already loaded (skipped)" in out
    assert users_levels(query) == [(7, "paid")]


def test_a_level_corrected_in_place_reaches_the_users_table(dataset, load, run, config_for, query):
    data = dataset(songs=[song("SO_1")], days={"2018-11-01": [event(NOV_1, user="7", level="free")]})
    load(data)
    edited_in_place(day_file(data, "2018-11-01"), '"free"', '"paid"')
    code, out = run(etl, "--config", config_for(data))
    assert code == 0, out
    assert "0 new files, 1 changed" in out
    assert query("SELECT level FROM staging_events") == [("paid",)]  # staged again
    assert users_levels(query) == [(7, "paid")]
    assert query("SELECT level FROM songplays") == [("paid",)]  # the play, too
