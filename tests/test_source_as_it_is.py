"""The source as it is now: after files are added, changed in place (some to the same
size) and deleted, song files and log files alike, with runs in between, the star
tables equal one full load of the files as they finally are, every column, on both
engines. A listing that would take back much of the warehouse stops first."""

import json
import os
import random
import shutil
from pathlib import Path

import pytest
from test_catalogue_grows import etl_run, fingerprint, full_load_locally
from test_ledger import day_file
from test_redshift_path import make_bucket, upload, write_rs_config

import create_tables
import etl
import sample_data


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """Generated data: 6 days of logs, 300 song files."""
    return sample_data.generate(tmp_path_factory.mktemp("source"), events=2000, songs=300, seed=8, days=6)


def data_files(folder, dataset):
    return sorted(Path(folder, dataset).rglob("*.json"))


def touched(path):
    """A later modification time, as an edit an instant later would leave (the ledger
    reads it locally; on S3 the new ETag)."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))


def loaded_locally(source, tmp_path, run, config_for, **settings):
    """(upstream folder, config): a copy of source, loaded into fresh local tables."""
    target = tmp_path / "upstream"
    shutil.copytree(source, target)
    config = config_for(target, **settings)
    assert run(create_tables, "--config", config)[0] == 0
    etl_run(run, config)
    return target, config


def loaded_on_s3(source, tmp_path, s3_server, run):
    """(upstream folder, config): a copy of source, uploaded and loaded on the Redshift harness."""
    target = tmp_path / "upstream"
    shutil.copytree(source, target)
    upload(s3_server, "sparkify-data", target)
    make_bucket(s3_server, "sparkify-staging")
    config = write_rs_config(tmp_path)
    assert run(create_tables, "--config", config)[0] == 0
    etl_run(run, config)
    return target, config


# --- What upstream does to the files ----------------------------------------------------------


def keep_some_events(path, rng):
    """A corrected export: a random share of the day's events kept."""
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    kept = [line for line in lines if rng.random() < 0.5] or lines[:1]
    path.write_text("\n".join(kept) + "\n")
    touched(path)


def flip_levels(path, rng):
    """An edit to the same size: 'free' and 'paid' swapped in the day's events."""
    text = (
        path.read_text().replace('"free"', '"XXXX"').replace('"paid"', '"free"').replace('"XXXX"', '"paid"')
    )
    path.write_text(text)
    touched(path)


def copy_events_from(path, other, rng):
    """Some of another day's events land in this file too, with their level changed:
    the same plays (natural keys) in two files, told apart by their columns."""
    events = [json.loads(line) for line in other.read_text().splitlines() if line.strip()]
    picked = [dict(e, level="paid" if e.get("level") == "free" else "free") for e in rng.sample(events, 5)]
    with path.open("a") as file:
        file.write("\n" + "\n".join(json.dumps(e) for e in picked) + "\n")
    touched(path)


def retitle_song(path, rng):
    """A corrected song record: its title (and so which plays it matches) or duration."""
    record = json.loads(path.read_text())
    if rng.random() < 0.5:
        record["duration"] = round(record["duration"] + rng.uniform(-20, 20), 5)
    else:
        record["title"] = record["title"] + " (Remastered)"
    path.write_text(json.dumps(record))
    touched(path)


def upstream_changes(source, target, rng):
    """One random change to target's files; source keeps every original."""
    logs, songs = data_files(target, "log_data"), data_files(target, "song_data")
    missing = [
        path
        for dataset in ("log_data", "song_data")
        for path in data_files(source, dataset)
        if not Path(target, path.relative_to(source)).exists()
    ]
    choices = ["delete log", "keep some", "flip levels", "copy events", "delete song", "retitle song"]
    if missing:
        choices += ["bring back", "bring back"]
    choice = rng.choice(choices)
    if choice == "delete log" and len(logs) > 1:
        rng.choice(logs).unlink()
    elif choice == "keep some":
        keep_some_events(rng.choice(logs), rng)
    elif choice == "flip levels":
        flip_levels(rng.choice(logs), rng)
    elif choice == "copy events" and len(logs) > 1:
        path, other = rng.sample(logs, 2)
        copy_events_from(path, other, rng)
    elif choice == "delete song":
        rng.choice(songs).unlink()
    elif choice == "retitle song":
        retitle_song(rng.choice(songs), rng)
    elif choice == "bring back":
        original = rng.choice(missing)
        restored = Path(target, original.relative_to(source))
        restored.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(original, restored)
        touched(restored)
    return choice


# --- The invariant, locally and on the Redshift harness -----------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_files_added_changed_and_deleted_over_runs_equal_one_full_load(
    seed, source, dsn, run, config_for, tmp_path
):
    target, config = loaded_locally(source, tmp_path, run, config_for)
    rng = random.Random(seed)
    done = []
    for step in range(8):
        done.append(upstream_changes(source, target, rng))
        if step % 3 != 2:  # now and then two changes in one run
            code, out = run(etl, "--config", config, "--allow-retract")
            assert code == 0, out
    code, out = run(etl, "--config", config, "--allow-retract")
    assert code == 0, out
    followed = fingerprint(dsn)
    full = full_load_locally(target, dsn, run, config_for)
    assert followed == full, done
    assert {"delete log", "keep some"} & set(done), done  # the seed did take something back


@pytest.mark.parametrize("seed", [4, 5])
def test_on_redshift_files_added_changed_and_deleted_equal_one_full_load(
    seed, source, s3_server, standin, dsn, tmp_path, run
):
    target, config = loaded_on_s3(source, tmp_path, s3_server, run)
    rng = random.Random(seed)
    done = []
    for _ in range(6):
        done.append(upstream_changes(source, target, rng))
        mirror(s3_server, target)
        code, out = run(etl, "--config", config, "--allow-retract")
        assert code == 0, out
    followed = fingerprint(dsn)
    assert run(create_tables, "--config", config)[0] == 0
    etl_run(run, config)
    assert fingerprint(dsn) == followed, done


def mirror(client, folder, bucket="sparkify-data"):
    """The bucket holds exactly folder's files: new and changed ones uploaded, the rest deleted."""
    wanted = {path.relative_to(folder).as_posix(): path for path in Path(folder).rglob("*") if path.is_file()}
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    held = {item["Key"]: item for page in pages for item in page.get("Contents", [])}
    for key in set(held) - set(wanted):
        client.delete_object(Bucket=bucket, Key=key)
    for key, path in wanted.items():
        if key not in held or held[key]["Size"] != path.stat().st_size or changed_since(path, held[key]):
            client.upload_file(str(path), bucket, key)


def changed_since(path, held):
    return path.stat().st_mtime > held["LastModified"].timestamp()


# --- The real sample: one day corrected, one deleted --------------------------------------------


def correct_and_delete(data):
    """Upstream keeps 200 of 2018-11-05's events and deletes 2018-11-06's file."""
    corrected = day_file(data, "2018-11-05")
    lines = [line for line in corrected.read_text().splitlines() if line.strip()]
    corrected.write_text("\n".join(lines[:200]) + "\n")
    touched(corrected)
    day_file(data, "2018-11-06").unlink()


def test_the_real_sample_follows_a_corrected_and_a_deleted_day(real_sample, dsn, run, config_for, tmp_path):
    data, config = loaded_locally(real_sample, tmp_path, run, config_for)
    correct_and_delete(data)
    code, out = run(etl, "--config", config)
    assert code == 0, out
    assert "0 new files, 1 changed, 28 already loaded (skipped)" in out
    assert "log_data        taking back 2 files (1 changed, 1 gone)" in out
    followed = fingerprint(dsn)
    full = full_load_locally(data, dsn, run, config_for)
    assert followed == full
    assert len(full["songplays"]) < 6820


def test_on_redshift_the_real_sample_follows_a_corrected_and_a_deleted_day(
    real_sample, s3_server, standin, dsn, tmp_path, run
):
    data, config = loaded_on_s3(real_sample, tmp_path, s3_server, run)
    correct_and_delete(data)
    mirror(s3_server, data)
    out = etl_run(run, config)
    assert "log_data        taking back 2 files (1 changed, 1 gone)" in out
    followed = fingerprint(dsn)
    assert run(create_tables, "--config", config)[0] == 0
    etl_run(run, config)
    assert fingerprint(dsn) == followed
    assert len(followed["songplays"]) < 6820


# --- Nothing lost by mistake ----------------------------------------------------------------------


def test_an_empty_log_folder_changes_nothing_without_confirmation(
    source, dsn, run, config_for, tmp_path, query
):
    target, config = loaded_locally(source, tmp_path, run, config_for)
    loaded, ledger = fingerprint(dsn), query("SELECT * FROM loaded_files ORDER BY file")
    for path in data_files(target, "log_data"):
        path.unlink()
    code, out = run(etl, "--config", config)
    assert code == 2, out
    assert "error: 6 of the 6 log_data files loaded before are gone from" in out
    assert "--allow-retract" in out and "RETRACT_LIMIT_PERCENT, now 10" in out
    assert "Traceback" not in out
    assert fingerprint(dsn) == loaded and query("SELECT * FROM loaded_files ORDER BY file") == ledger
    code, out = run(etl, "--config", config, "--allow-retract")
    assert code == 0, out
    assert query("SELECT COUNT(*) FROM songplays") == [(0,)]
    assert query("SELECT COUNT(*) FROM users") == [(0,)]
    assert query("SELECT COUNT(*) FROM time") == [(0,)]
    assert query("SELECT COUNT(*) FROM play_sources") == [(0,)]
    assert query("SELECT COUNT(*) FROM file_retractions WHERE change = 'gone'") == [(6,)]


def test_one_day_gone_of_many_needs_no_confirmation(source, dsn, run, config_for, tmp_path, query):
    """1 of 6 files is more than the default 10 %; with the limit at 20 it passes."""
    target, config = loaded_locally(source, tmp_path, run, config_for, retract_limit_percent=20)
    data_files(target, "log_data")[0].unlink()
    out = etl_run(run, config)
    assert "log_data        taking back 1 files (1 gone)" in out
    assert query("SELECT COUNT(*) FROM loaded_files WHERE dataset = 'log_data'") == [(5,)]


# --- etl.py --status --------------------------------------------------------------------------------


def test_status_shows_what_the_next_run_would_stage_and_take_back(source, dsn, run, config_for, tmp_path):
    target = tmp_path / "upstream"
    shutil.copytree(source, target)
    held_back = day_file(target, "2018-11-06")
    spare = tmp_path / "spare.json"
    shutil.move(held_back, spare)
    config = config_for(target)
    assert run(create_tables, "--config", config)[0] == 0
    etl_run(run, config)
    shutil.move(spare, held_back)  # new
    flip_levels(day_file(target, "2018-11-02"), None)  # changed, same size
    day_file(target, "2018-11-04").unlink()  # gone
    code, out = run(etl, "--config", config, "--status")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[:4] == [
        "dataset    in source  loaded  new  changed  gone",
        "---------  ---------  ------  ---  -------  ----",
        "song_data        300     300    0        0     0",
        "log_data           5       5    1        1     1",
    ]
    assert "latest play loaded: 2018-11-05 " in out
    assert "log_data days missing in the loaded range: 0" in out
    assert "the next run would stage or take back 3 files" in out
    assert "latest runs:" in out and "committed" in out
    code, out = run(etl, "--config", config, "--allow-retract")  # --status loaded nothing
    assert code == 0, out
    assert "1 new files, 1 changed, 3 already loaded (skipped)" in out
    code, out = run(etl, "--config", config, "--status")
    assert "the warehouse is up to date" in out
    assert "log_data days missing in the loaded range: 1 (2018-11-04)" in out
    assert "latest play loaded: 2018-11-06 " in out


def test_on_redshift_status_lists_s3_against_the_ledger(source, s3_server, standin, tmp_path, run):
    target, config = loaded_on_s3(source, tmp_path, s3_server, run)
    day_file(target, "2018-11-03").unlink()
    mirror(s3_server, target)
    code, out = run(etl, "--config", config, "--status")
    assert code == 0, out
    assert "log_data           5       6    0        0     1" in out
    assert "the next run would stage or take back 1 files" in out


# --- A play in two files ----------------------------------------------------------------------------


def test_a_play_in_two_files_is_the_best_copy_of_the_files_that_remain(dataset, run, config_for, query):
    """The same play in two days' files, its level told apart: the first copy by its own
    columns ('free' < 'paid') wins; when its file goes, the other copy takes its place."""
    from conftest import event, song

    shared = dict(
        ts=1541030400000, user="7", session=3, item=4, song="Yellow", artist="Coldplay", length=266.0
    )
    data = dataset(
        songs=[song("SO1", title="Yellow", artist="Coldplay", duration=266.0)],
        days={
            "2018-11-01": [event(**shared, level="free")],
            "2018-11-02": [event(**shared, level="paid"), event(1541116800000, user="8", item=0)],
        },
    )
    config = config_for(data, retract_limit_percent=50)
    assert run(create_tables, "--config", config)[0] == 0
    etl_run(run, config)
    assert query("SELECT level FROM songplays WHERE user_id = 7") == [("free",)]
    assert query("SELECT COUNT(*) FROM play_sources") == [(3,)]
    day_file(data, "2018-11-01").unlink()
    out = etl_run(run, config)
    assert "1 gone" in out
    assert query("SELECT level, song_id FROM songplays WHERE user_id = 7") == [("paid", "SO1")]
    assert query("SELECT user_id, level FROM users ORDER BY user_id") == [(7, "paid"), (8, "free")]
