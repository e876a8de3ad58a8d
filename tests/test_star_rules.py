"""The rules analysts rely on, each proved on a tiny hand-made dataset."""

from conftest import event, song

import etl

NOV_1 = 1541030400000  # 2018-11-01 00:00:00 UTC in epoch milliseconds


def test_play_matches_the_song_with_closest_duration(dataset, load, query):
    data = dataset(
        songs=[song("SO_SHORT", duration=200.0), song("SO_LONG", duration=250.0)],
        days={"2018-11-01": [event(NOV_1, length=245.0)]},
    )
    load(data)
    assert query("SELECT song_id, artist_id FROM songplays") == [("SO_LONG", "AR1")]


def test_equally_close_songs_pick_the_smallest_song_id(dataset, load, query):
    data = dataset(
        songs=[song("SO_B", duration=190.0), song("SO_A", duration=210.0)],
        days={"2018-11-01": [event(NOV_1, length=200.0)]},
    )
    load(data)
    assert query("SELECT song_id FROM songplays") == [("SO_A",)]


def test_play_without_matching_song_counts_with_null_song(dataset, load, query):
    data = dataset(
        songs=[song("SO_1", title="Other")],
        days={"2018-11-01": [event(NOV_1, song="Unknown")]},
    )
    load(data)
    assert query("SELECT song_id, artist_id FROM songplays") == [(None, None)]


def test_match_needs_title_and_artist_name(dataset, load, query):
    data = dataset(
        songs=[song("SO_1", title="Song", artist="Someone Else")],
        days={"2018-11-01": [event(NOV_1, song="Song", artist="Artist")]},
    )
    load(data)
    assert query("SELECT song_id FROM songplays") == [(None,)]


def test_event_staged_twice_is_one_songplay(dataset, load, query):
    same = event(NOV_1, session=5, item=3)
    data = dataset(
        songs=[song("SO_1")],
        days={"2018-11-01": [same], "2018-11-02": [same]},
    )
    load(data)
    assert query("SELECT COUNT(*) FROM staging_events") == [(2,)]
    assert query("SELECT COUNT(*) FROM songplays") == [(1,)]


def test_only_next_song_events_with_a_user_are_plays(dataset, load, query):
    data = dataset(
        songs=[song("SO_1")],
        days={
            "2018-11-01": [
                event(NOV_1, item=0, page="Home"),
                event(NOV_1 + 1, item=1),
                event(NOV_1 + 2, user="", item=2, firstName=None),
            ]
        },
    )
    load(data)
    assert query("SELECT item_in_session FROM songplays") == [(1,)]


def test_user_level_comes_from_latest_event(dataset, load, query):
    data = dataset(
        songs=[song("SO_1")],
        days={
            "2018-11-01": [event(NOV_1, level="free", lastName="Old")],
            "2018-11-02": [event(NOV_1 + 86_400_000, level="paid", item=1, lastName="New")],
        },
    )
    load(data)
    assert query("SELECT user_id, last_name, level FROM users") == [(1, "New", "paid")]


def test_user_level_follows_ts_then_item_whatever_the_file_order(dataset, load, run, config_for, query):
    """ts order, itemInSession order and file order all point at different events: the
    user's row is the one with the latest ts, and of those the highest itemInSession."""
    newest = event(NOV_1 + 2000, user="7", item=1, level="paid", firstName="Newest")
    highest_item = event(NOV_1 + 1000, user="7", item=9, level="free", firstName="HighestItem")
    last_in_file = event(NOV_1 + 2000, user="7", item=0, level="free", firstName="LastInFile")
    data = dataset(songs=[song("SO_1")], days={"2018-11-01": [newest, highest_item, last_in_file]})
    load(data)
    expected = (7, "Newest", "paid", "2018-11-01 00:00:02", 1)
    users = "SELECT user_id, first_name, level, latest_event_at::text, latest_item_in_session FROM users"
    assert query(users) == [expected]
    # a later run: the same ts with a lower item changes nothing, a higher item replaces it
    dataset(days={"2018-11-02": [event(NOV_1 + 2000, user="7", item=0, session=2, firstName="Lower")]})
    assert run(etl, "--config", config_for(data))[0] == 0
    assert query(users) == [expected]
    dataset(
        days={
            "2018-11-03": [event(NOV_1 + 2000, user="7", item=2, session=3, level="free", firstName="Higher")]
        }
    )
    assert run(etl, "--config", config_for(data))[0] == 0
    assert query(users) == [(7, "Higher", "free", "2018-11-01 00:00:02", 2)]


def test_same_timestamp_user_level_from_higher_item_in_session(dataset, load, query):
    data = dataset(
        songs=[song("SO_1")],
        days={
            "2018-11-01": [
                event(NOV_1, item=4, level="paid", page="Upgrade"),
                event(NOV_1, item=3, level="free"),
            ]
        },
    )
    load(data)
    assert query("SELECT level FROM users") == [("paid",)]


def test_user_seen_only_on_other_pages_is_a_user(dataset, load, query):
    data = dataset(
        songs=[song("SO_1")],
        days={"2018-11-01": [event(NOV_1, user="2", page="Home"), event(NOV_1, user="1")]},
    )
    load(data)
    assert query("SELECT user_id FROM users ORDER BY user_id") == [(1,), (2,)]
    assert query("SELECT user_id FROM songplays") == [(1,)]


def test_one_song_row_per_song_id(dataset, load, query):
    data = dataset(
        songs=[song("SO_1", title="B"), song("SO_1", title="A"), song("SO_2")],
        days={"2018-11-01": [event(NOV_1)]},
    )
    load(data)
    assert query("SELECT song_id, title FROM songs ORDER BY song_id") == [("SO_1", "A"), ("SO_2", "Song")]


def test_unknown_song_year_zero_is_null(dataset, load, query):
    data = dataset(songs=[song("SO_1", year=0)], days={"2018-11-01": [event(NOV_1)]})
    load(data)
    assert query("SELECT year FROM songs") == [(None,)]


def test_artist_takes_the_most_common_spelling(dataset, load, query):
    data = dataset(
        songs=[
            song("SO_1", artist="The Band", artist_location="Here"),
            song("SO_2", artist="Band"),
            song("SO_3", artist="Band", artist_latitude=1.5, artist_longitude=2.5),
        ],
        days={"2018-11-01": [event(NOV_1)]},
    )
    load(data)
    assert query("SELECT artist_id, name, latitude, longitude FROM artists") == [("AR1", "Band", 1.5, 2.5)]


def test_time_row_per_play_with_calendar_parts(dataset, load, query):
    sunday_last_ms = 1541375999999  # 2018-11-04 23:59:59.999 UTC, a Sunday, ISO week 44
    new_year_eve = 1546214400000  # 2018-12-31 00:00 UTC, a Monday, ISO week 1 (of 2019)
    data = dataset(
        songs=[song("SO_1")],
        days={
            "2018-11-04": [event(sunday_last_ms, item=0), event(sunday_last_ms, user="2")],
            "2018-12-31": [event(new_year_eve, item=1)],
        },
    )
    load(data)
    assert query(
        "SELECT start_time::text, hour, day, week, month, year, weekday FROM time ORDER BY start_time"
    ) == [
        ("2018-11-04 23:59:59.999", 23, 4, 44, 11, 2018, 0),
        ("2018-12-31 00:00:00", 0, 31, 1, 12, 2018, 1),
    ]


def test_generated_data_obeys_every_rule(generated, load, query):
    load(generated)
    plays = query("SELECT COUNT(*) FROM staging_events WHERE page = 'NextSong' AND user_id IS NOT NULL")
    assert query("SELECT COUNT(*) FROM songplays") == plays
    assert query("SELECT COUNT(*) FROM songplays WHERE song_id IS NOT NULL")[0][0] > 0
    assert query("SELECT COUNT(*) FROM songplays WHERE song_id IS NULL")[0][0] > 0
    # every matched play has the title and artist name of its song (as the songs table
    # holds it: a song id in two files is one row), at the closest duration
    assert query("""
        SELECT COUNT(*) FROM songplays sp
        JOIN staging_events e ON e.session_id = sp.session_id
         AND e.item_in_session = sp.item_in_session AND e.ts = sp.start_time
        JOIN songs s ON s.song_id = sp.song_id
        WHERE s.title <> e.song OR s.artist_name <> e.artist
           OR EXISTS (SELECT 1 FROM songs o WHERE o.title = e.song
                      AND o.artist_name = e.artist
                      AND abs(o.duration - e.length) < abs(s.duration - e.length))
    """) == [(0,)]
    assert query("SELECT COUNT(DISTINCT level) FROM users") == [(2,)]


def test_jsonpaths_map_fields_to_columns_by_position(dataset, load, query):
    """The n-th path fills the n-th staging column, as Redshift's COPY does: a paths file
    that lists song where artist belongs (and the other way round) swaps them."""
    import json

    import sample_data

    data = dataset(
        songs=[song("SO_1", title="Yellow", artist="Coldplay")],
        days={"2018-11-01": [event(NOV_1, song="Yellow", artist="Coldplay")]},
    )
    swapped = ["song" if f == "artist" else "artist" if f == "song" else f for f in sample_data.JSONPATHS]
    (data / "log_json_path.json").write_text(json.dumps({"jsonpaths": [f"$['{f}']" for f in swapped]}))
    load(data)
    assert query("SELECT song_title, artist_name, song_id FROM songplays") == [("Coldplay", "Yellow", None)]
