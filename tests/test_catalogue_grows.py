"""A catalogue that grows: plays already loaded are matched again when their song (or a
better candidate) arrives, songs and artists converge to what one full load holds, and
song files and log files arriving in any interleaving over several runs, with re-runs,
give the star tables of one full load, every column."""

import json
import os
import random
import shutil
from pathlib import Path

import psycopg2
import pytest
from conftest import event, song
from test_ledger import copy_day, day_file
from test_redshift_path import fingerprint, make_bucket, upload, write_rs_config
from test_reruns import log_days

import create_tables
import etl
import sample_data

DAY_MS = 86_400_000
NOV_1 = 1541030400000  # 2018-11-01 00:00 UTC


def add_song(data, name, record):
    """A song file arriving in data's song_data."""
    path = Path(data, "song_data", f"{name}.json")
    path.write_text(json.dumps(record))
    return path


def add_day(data, day_index, events):
    day = f"2018-11-{day_index + 1:02d}"
    path = day_file(data, day)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(json.dumps(e) for e in events))


def play(day_index, item, title, artist, length, user="1"):
    return event(
        NOV_1 + day_index * DAY_MS + item, user=user, item=item, song=title, artist=artist, length=length
    )


def etl_run(run, config):
    code, out = run(etl, "--config", config)
    assert code == 0, out
    return out


def matches(query):
    return query("SELECT song_title, song_id, artist_id FROM songplays ORDER BY start_time")


# --- Plays matched again ---------------------------------------------------------------------


def test_a_play_whose_song_arrives_three_runs_later_gets_its_song_and_artist(dataset, run, config_for, query):
    data = dataset(days={"2018-11-01": [play(0, 0, "Yellow", "Coldplay", 266.0)]})
    config = config_for(data)
    assert run(create_tables, "--config", config)[0] == 0
    etl_run(run, config)
    for later_day in (1, 2):
        add_day(data, later_day, [play(later_day, 0, "Other", "Band", 100.0)])
        etl_run(run, config)
    assert matches(query)[0] == ("Yellow", None, None)
    add_song(
        data,
        "TRYELLOW",
        song("SOYELLOW", title="Yellow", artist="Coldplay", duration=266.5, artist_id="ARCOLD"),
    )
    out = etl_run(run, config)
    assert "songplays       1 plays matched again" in out
    assert matches(query)[0] == ("Yellow", "SOYELLOW", "ARCOLD")
    assert query("SELECT song_id, artist_id FROM songplays WHERE song_title = 'Other'") == [(None, None)] * 2


def test_a_better_candidate_replaces_a_worse_one_and_a_worse_one_changes_nothing(
    dataset, run, config_for, query
):
    data = dataset(
        songs=[song("SOFAR", title="Yellow", artist="Coldplay", duration=200.0, artist_id="AR1")],
        days={
            "2018-11-01": [play(0, 0, "Yellow", "Coldplay", 266.0), play(0, 1, "Yellow", "Coldplay", 190.0)]
        },
    )
    config = config_for(data)
    assert run(create_tables, "--config", config)[0] == 0
    etl_run(run, config)
    assert [m[1] for m in matches(query)] == ["SOFAR", "SOFAR"]
    add_song(
        data, "TRCLOSE", song("SOCLOSE", title="Yellow", artist="Coldplay", duration=265.0, artist_id="AR2")
    )
    out = etl_run(run, config)
    assert "songplays       1 plays matched again" in out
    assert matches(query) == [("Yellow", "SOCLOSE", "AR2"), ("Yellow", "SOFAR", "AR1")]
    add_song(
        data, "TRWORSE", song("SOWORSE", title="Yellow", artist="Coldplay", duration=400.0, artist_id="AR3")
    )
    out = etl_run(run, config)
    assert "songplays       0 plays matched again" in out
    assert matches(query) == [("Yellow", "SOCLOSE", "AR2"), ("Yellow", "SOFAR", "AR1")]


def test_an_equally_close_candidate_with_a_smaller_song_id_takes_the_play(dataset, run, config_for, query):
    data = dataset(
        songs=[song("SOB", title="Yellow", artist="Coldplay", duration=260.0)],
        days={"2018-11-01": [play(0, 0, "Yellow", "Coldplay", 266.0)]},
    )
    config = config_for(data)
    assert run(create_tables, "--config", config)[0] == 0
    etl_run(run, config)
    add_song(data, "TRA", song("SOA", title="Yellow", artist="Coldplay", duration=272.0))
    etl_run(run, config)
    assert matches(query)[0][1] == "SOA"


def test_a_song_record_with_a_smaller_title_moves_the_plays_to_what_it_says(dataset, run, config_for, query):
    """The row of a song id is its record with the smallest title, then duration: when
    a better record arrives, the row changes, and so do the plays matched under it."""
    data = dataset(
        songs=[song("SO1", title="Yellow (Live)", artist="Coldplay", duration=300.0, artist_id="AR1")],
        days={
            "2018-11-01": [
                play(0, 0, "Yellow (Live)", "Coldplay", 300.0),
                play(0, 1, "Yellow", "Coldplay", 266.0),
            ]
        },
    )
    config = config_for(data)
    assert run(create_tables, "--config", config)[0] == 0
    etl_run(run, config)
    assert matches(query) == [("Yellow (Live)", "SO1", "AR1"), ("Yellow", None, None)]
    add_song(
        data, "TRSTUDIO", song("SO1", title="Yellow", artist="Coldplay", duration=266.0, artist_id="AR1")
    )
    out = etl_run(run, config)
    assert "songs           1 rows changed by new records" in out
    assert query("SELECT title, duration FROM songs") == [("Yellow", 266.0)]
    assert matches(query) == [("Yellow (Live)", None, None), ("Yellow", "SO1", "AR1")]
    add_song(data, "TRSHORT", song("SO1", title="Yellow", artist="Coldplay", duration=265.0, artist_id="AR1"))
    etl_run(run, config)
    assert query("SELECT title, duration FROM songs") == [("Yellow", 265.0)]
    add_song(data, "TRLONG", song("SO1", title="Yellow", artist="Coldplay", duration=999.0, artist_id="AR1"))
    out = etl_run(run, config)
    assert "songs           0 rows changed by new records" in out
    assert query("SELECT title, duration FROM songs") == [("Yellow", 265.0)]


def test_an_artist_takes_the_most_common_spelling_as_records_arrive(dataset, run, config_for, query):
    def record(song_id, name, **fields):
        return song(song_id, title=song_id, artist=name, artist_id="AR1", **fields)

    data = dataset(songs=[record("SO5", "Prince")])
    config = config_for(data)
    assert run(create_tables, "--config", config)[0] == 0
    etl_run(run, config)
    add_song(data, "TR4", record("SO4", "The Artist"))
    etl_run(run, config)
    # a tie: the alphabetically first spelling
    assert query("SELECT name, location FROM artists") == [("Prince", None)]
    add_song(data, "TR3", record("SO3", "The Artist"))
    out = etl_run(run, config)
    assert "artists         1 rows changed by new records" in out
    assert query("SELECT name FROM artists") == [("The Artist",)]
    # with coordinates preferred within the spelling, then the smallest song_id
    for song_id, town, latitude in (("SO9", "Minneapolis", 44.9), ("SO8", "Chanhassen", 44.8)):
        placed = {"artist_location": town, "artist_latitude": latitude, "artist_longitude": -93.0}
        add_song(data, f"TR{song_id}", record(song_id, "The Artist", **placed))
        etl_run(run, config)
        assert query("SELECT name, location, latitude FROM artists") == [("The Artist", town, latitude)]


# --- The invariant: any interleaving over several runs equals one full load ------------------


def arrival_runs(data_dir, runs, seed):
    """The data's song folders and log days dealt over `runs` runs in a random
    interleaving (song_data/A/B: a folder of the Million Song Dataset's layout)."""
    song_root = Path(data_dir, "song_data")
    folders = sorted({p.parent.relative_to(data_dir) for p in song_root.rglob("*.json")})
    pieces = [("song folder", f) for f in folders] + [("log day", d) for d in log_days(data_dir)]
    rng = random.Random(seed)
    rng.shuffle(pieces)
    return [pieces[index::runs] for index in range(runs)]


def bring(source, target, piece):
    kind, what = piece
    if kind == "log day":
        copy_day(source, target, what)
    else:
        shutil.copytree(Path(source, what), Path(target, what), dirs_exist_ok=True)


def empty_copy(source, target):
    Path(target, "song_data").mkdir(parents=True)
    Path(target, "log_data").mkdir()
    shutil.copy2(Path(source, "log_json_path.json"), Path(target, "log_json_path.json"))
    return target


def song_ids_by_play(dsn):
    conn = psycopg2.connect(dsn)
    with conn.cursor() as cur:
        cur.execute("SELECT songplay_id, song_id FROM songplays")
        rows = dict(cur.fetchall())
    conn.close()
    return rows


def arrive_over_runs(source, target, runs, seed, load, dsn):
    """Brings source's files into target in a random interleaving over runs, calling
    load() after each batch; a re-run with nothing new half-way. Returns how plays'
    matches moved from one run to the next: {"late song": n, "better candidate": n}."""
    moved = {"late song": 0, "better candidate": 0}
    batches = arrival_runs(source, runs, seed)
    batches.insert(len(batches) // 2, [])  # a re-run with nothing new
    previous = {}
    for batch in batches:
        for piece in batch:
            bring(source, target, piece)
        load()
        current = song_ids_by_play(dsn)
        for play_id, song_id in current.items():
            before = previous.get(play_id, song_id)
            if before is None and song_id is not None:
                moved["late song"] += 1
            elif before is not None and song_id is not None and before != song_id:
                moved["better candidate"] += 1
        previous = current
    return moved


def full_load_locally(data, dsn, run, config_for):
    """The star tables of one load of everything in data."""
    config = config_for(data)
    assert run(create_tables, "--config", config)[0] == 0
    etl_run(run, config)
    return fingerprint(dsn)


def arriving_locally(source, target, runs, seed, dsn, run, config_for):
    """Fresh tables, then source's files arriving in target over runs."""
    config = config_for(empty_copy(source, target))
    assert run(create_tables, "--config", config)[0] == 0
    return arrive_over_runs(source, target, runs, seed, lambda: etl_run(run, config), dsn)


@pytest.fixture(scope="module")
def growing_catalogue(tmp_path_factory):
    return sample_data.generate(tmp_path_factory.mktemp("catalogue"), events=3000, songs=400, seed=21, days=6)


@pytest.mark.parametrize("seed", [3, 4])
def test_generated_files_arriving_in_any_interleaving_equal_one_full_load(
    seed, growing_catalogue, dsn, run, config_for, tmp_path
):
    full = full_load_locally(growing_catalogue, dsn, run, config_for)
    moved = arriving_locally(growing_catalogue, tmp_path / "arriving", 5, seed, dsn, run, config_for)
    assert fingerprint(dsn) == full
    # the generator's data did make plays wait for their song, and swap candidates
    assert moved["late song"] > 0 and moved["better candidate"] > 0, moved


def test_the_real_sample_split_by_song_folder_and_day_equals_one_full_load(
    real_sample, dsn, run, config_for, tmp_path
):
    full = full_load_locally(real_sample, dsn, run, config_for)
    arriving_locally(real_sample, tmp_path / "arriving", 6, 11, dsn, run, config_for)
    assert fingerprint(dsn) == full
    assert len(full["songplays"]) == 6820


@pytest.mark.parametrize("source", ["generated", "real sample"])
def test_on_redshift_files_arriving_in_any_interleaving_equal_one_full_load(
    source, growing_catalogue, real_sample, s3_server, standin, dsn, tmp_path, run
):
    data = growing_catalogue if source == "generated" else real_sample
    make_bucket(s3_server, "sparkify-staging")
    config = write_rs_config(tmp_path)
    target = empty_copy(data, tmp_path / "arriving")
    upload(s3_server, "sparkify-data", target)
    assert run(create_tables, "--config", config)[0] == 0

    uploaded = set()

    def upload_and_load():
        for path in set(Path(target).rglob("*.json")) - uploaded:
            s3_server.upload_file(str(path), "sparkify-data", os.path.relpath(path, target))
            uploaded.add(path)
        etl_run(run, config)

    moved = arrive_over_runs(data, target, 4, 5, upload_and_load, dsn)
    arrived = fingerprint(dsn)
    assert run(create_tables, "--config", config)[0] == 0
    etl_run(run, config)
    assert fingerprint(dsn) == arrived
    if source == "generated":
        assert moved["late song"] > 0 and moved["better candidate"] > 0, moved


# --- Song files staged again --------------------------------------------------------------------


def test_a_changed_song_file_stages_the_catalogue_again_and_its_old_record_goes(
    dataset, run, config_for, query
):
    """A song file's records cannot be told apart from others' once kept (Redshift's COPY
    does not say which file a row came from), so a changed song file has every song file
    staged again, and their records replace the kept ones: the star is a full load's."""
    data = dataset(
        songs=[
            song("SO1", title="Yellow", artist="Coldplay", artist_id="AR1"),
            song("SO2", title="Fix You", artist="Coldplay", artist_id="AR1"),
        ],
        days={"2018-11-01": [play(0, 0, "Yellow", "Coldplay", 200.0)]},
    )
    config = config_for(data)
    assert run(create_tables, "--config", config)[0] == 0
    etl_run(run, config)
    changed = song("SO1", title="Yellow (Live)", artist="Coldplay", artist_id="AR1")
    Path(data, "song_data", "TR0000.json").write_text(json.dumps(changed))
    out = etl_run(run, config)
    assert "0 new files, 1 changed, 1 already loaded (staged again)" in out
    assert query("SELECT COUNT(*) FROM song_records") == [(2,)]
    assert query("SELECT song_id, title FROM songs ORDER BY song_id") == [
        ("SO1", "Yellow (Live)"),
        ("SO2", "Fix You"),
    ]
    assert matches(query) == [("Yellow", None, None)]


def test_kept_song_records_are_the_staged_ones_copies_included(dataset, run, config_for, query):
    """Three files hold one song: twice spelt "Band A", once "Band B". One of the "Band A"
    files changes to "Band B": the same records are kept, but not as many of each, and
    the artist's most common spelling changes with them."""

    def record(name):
        return song("SO1", title="Title", artist=name, artist_id="AR1")

    data = dataset(songs=[record("Band A"), record("Band A"), record("Band B")])
    config = config_for(data)
    assert run(create_tables, "--config", config)[0] == 0
    etl_run(run, config)
    assert query("SELECT name FROM artists") == [("Band A",)]
    changed = Path(data, "song_data", "TR0001.json")
    changed.write_text(json.dumps(record("Band B")))
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 1_000_000_000))
    out = etl_run(run, config)
    assert "0 new files, 1 changed, 2 already loaded (staged again)" in out
    kept = query("SELECT artist_name, COUNT(*) FROM song_records GROUP BY 1 ORDER BY 1")
    assert kept == [("Band A", 1), ("Band B", 2)]
    assert query("SELECT name FROM artists") == [("Band B",)]


def kept_record_rows(query):
    """Each kept song record's physical row version (ctid, xmin): a row deleted and
    inserted again gets new ones."""
    return sorted(query("SELECT ctid::text, xmin::text FROM song_records"))


def test_without_a_staging_prefix_redshift_keeps_each_song_record_once(
    generated, s3_server, standin, tmp_path, run, query
):
    """A COPY from a whole prefix stages every song file on every run: the kept records
    are replaced, never added to, and a record that did not change is left where it is
    (not deleted and inserted again: on Redshift a deleted row stays on disk until the
    automatic VACUUM DELETE)."""
    upload(s3_server, "sparkify-data", generated)
    config = write_rs_config(tmp_path, staging=False)
    assert run(create_tables, "--config", config)[0] == 0
    out = etl_run(run, config)
    assert "staging_songs   300 files in 1 COPY, 300 records read, 300 loaded" in out
    assert query("SELECT COUNT(*) FROM song_records") == [(300,)]
    first = kept_record_rows(query)
    out = etl_run(run, config)
    assert "staging_songs   300 files in 1 COPY, 300 records read, 300 loaded" in out
    assert "song_records    0 rows replaced" in out
    assert kept_record_rows(query) == first


def test_a_changed_song_file_replaces_only_its_songs_records(
    generated, s3_server, standin, tmp_path, run, query
):
    """A changed song file has the whole catalogue staged again; only the changed song's
    records are deleted and inserted again, and the kept records are exactly the staged
    ones, copies included."""
    upload(s3_server, "sparkify-data", generated)
    make_bucket(s3_server, "sparkify-staging")
    config = write_rs_config(tmp_path)
    assert run(create_tables, "--config", config)[0] == 0
    etl_run(run, config)
    first = dict(query("SELECT ctid::text, song_id FROM song_records"))
    song_files = sorted(Path(generated, "song_data").rglob("*.json"))
    key = song_files[0].relative_to(generated).as_posix()
    record = json.loads(Path(generated, key).read_text())
    changed = {**record, "title": record["title"] + " (remastered)"}
    s3_server.put_object(Bucket="sparkify-data", Key=key, Body=json.dumps(changed).encode())
    out = etl_run(run, config)
    assert "1 changed" in out
    kept = dict(query("SELECT ctid::text, song_id FROM song_records"))
    rewritten = {song_id for ctid, song_id in first.items() if kept.get(ctid) != song_id}
    assert rewritten == {record["song_id"]}
    assert sorted(kept.values()) == sorted(json.loads(path.read_text())["song_id"] for path in song_files)
    assert query("SELECT title FROM song_records WHERE title LIKE '%%(remastered)'") == [(changed["title"],)]


def test_one_natural_key_twice_keeps_the_same_event_whatever_the_catalogue(dataset, load, query):
    """Two events share a natural key but name different songs: the one kept is chosen
    by the events' own columns, not by which of them matches a song (which would change
    as songs arrive)."""
    twice = [play(0, 0, "Bravo", "Band", 200.0), play(0, 0, "Alpha", "Band", 200.0)]
    data = dataset(
        songs=[song("SOB", title="Bravo", artist="Band", duration=200.0)],
        days={"2018-11-01": twice},
    )
    load(data)
    assert matches(query) == [("Alpha", None, None)]
