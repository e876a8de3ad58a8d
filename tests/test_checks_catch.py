"""Every built-in check, in both scopes, is seen to fail on data built to break it.

The warehouse has the Redshift definition (no keys declared, so none enforced; NOT NULL
is enforced on both engines and is dropped here where a test needs a NULL). Each case
sets up what a run's transform leaves (new_songplays, latest_user_events, staging), breaks
one rule, runs the checks and rolls back."""

import logging
import uuid

import psycopg2
import pytest

import create_tables
import etl
import sql_queries
from sparkify.checks import UserCheck, run_checks

SCOPES = (sql_queries.WHOLE_TABLES, sql_queries.THIS_RUN)

# What a run's transform leaves: some of its new plays (matched and unmatched), the users
# it refreshed; staging_songs still holds the songs it staged.
RUN_LEFTOVERS = (
    "CREATE TEMP TABLE new_songplays AS"
    " (SELECT * FROM songplays WHERE song_id IS NOT NULL LIMIT 20)"
    " UNION ALL (SELECT * FROM songplays WHERE song_id IS NULL LIMIT 20)",
    "CREATE TEMP TABLE latest_user_events AS SELECT * FROM users LIMIT 10",
    # plays of earlier runs this run matched again: none of them is new
    "CREATE TEMP TABLE rematched_plays AS"
    " SELECT songplay_id, song_id, artist_id FROM songplays AS sp"
    " WHERE song_id IS NOT NULL"
    " AND song_id NOT IN (SELECT song_id FROM new_songplays WHERE song_id IS NOT NULL) LIMIT 5",
)

A_NEW_PLAY = "SELECT songplay_id FROM new_songplays WHERE song_id IS NOT NULL LIMIT 1"
PLAY_COLUMNS = ", ".join(sql_queries.SONGPLAYS.column_names)


def null_play(column):
    return [
        f"ALTER TABLE songplays ALTER COLUMN {column} DROP NOT NULL",
        f"UPDATE songplays SET {column} = NULL WHERE songplay_id IN ({A_NEW_PLAY})",
        f"UPDATE new_songplays SET {column} = NULL WHERE songplay_id IN ({A_NEW_PLAY})",
    ]


def duplicate(table, key, source):
    return [f"INSERT INTO {table} SELECT * FROM {table} WHERE {key} IN ({source} LIMIT 1)"]


BREAKAGES = {
    "songplays.songplay_id is never NULL": null_play("songplay_id"),
    "songplays.user_id is never NULL": null_play("user_id"),
    "songplays.start_time is never NULL": null_play("start_time"),
    "users.user_id is never NULL": [
        "ALTER TABLE users ALTER COLUMN user_id DROP NOT NULL",
        "UPDATE users SET user_id = NULL WHERE user_id IN (SELECT user_id FROM latest_user_events LIMIT 1)",
        "UPDATE latest_user_events SET user_id = NULL"
        " WHERE user_id IN (SELECT MIN(user_id) FROM latest_user_events)",
    ],
    "songs.song_id is never NULL": [
        "ALTER TABLE songs ALTER COLUMN song_id DROP NOT NULL",
        "ALTER TABLE staging_songs ALTER COLUMN song_id DROP NOT NULL",
        "UPDATE songs SET song_id = NULL WHERE song_id IN (SELECT MIN(song_id) FROM songs)",
        "UPDATE staging_songs SET song_id = NULL WHERE song_id IN (SELECT MIN(song_id) FROM staging_songs)",
    ],
    "artists.artist_id is never NULL": [
        "ALTER TABLE artists ALTER COLUMN artist_id DROP NOT NULL",
        "ALTER TABLE staging_songs ALTER COLUMN artist_id DROP NOT NULL",
        "UPDATE artists SET artist_id = NULL WHERE artist_id IN (SELECT MIN(artist_id) FROM artists)",
        "UPDATE staging_songs SET artist_id = NULL WHERE song_id IN (SELECT MIN(song_id) FROM staging_songs)",
    ],
    "time.start_time is never NULL": [
        "ALTER TABLE time ALTER COLUMN start_time DROP NOT NULL",
        "UPDATE time SET start_time = NULL WHERE start_time IN (SELECT MIN(start_time) FROM time)",
        "UPDATE new_songplays SET start_time = NULL"
        " WHERE songplay_id IN (SELECT MIN(songplay_id) FROM new_songplays)",
    ],
    "songplays has one row per (songplay_id)": duplicate(
        "songplays", "songplay_id", A_NEW_PLAY[: -len(" LIMIT 1")]
    ),
    "users has one row per (user_id)": duplicate(
        "users", "user_id", "SELECT user_id FROM latest_user_events"
    ),
    "songs has one row per (song_id)": duplicate("songs", "song_id", "SELECT song_id FROM staging_songs"),
    "artists has one row per (artist_id)": duplicate(
        "artists", "artist_id", "SELECT artist_id FROM staging_songs"
    ),
    "time has one row per (start_time)": duplicate(
        "time", "start_time", "SELECT start_time FROM new_songplays"
    ),
    "songplays has one row per (user_id, session_id, item_in_session, start_time)": [
        f"INSERT INTO songplays ({PLAY_COLUMNS}) SELECT MD5('another id'), {PLAY_COLUMNS.split(', ', 1)[1]}"
        f" FROM songplays WHERE songplay_id IN ({A_NEW_PLAY})"
    ],
    "every songplays.user_id is in users": [
        "DELETE FROM users WHERE user_id IN (SELECT user_id FROM new_songplays LIMIT 1)"
    ],
    "every songplays.start_time is in time": [
        "DELETE FROM time WHERE start_time IN (SELECT start_time FROM new_songplays LIMIT 1)"
    ],
    # a song that only plays matched again point to: this run's scope includes them
    "every songplays.song_id is in songs": [
        "DELETE FROM songs WHERE song_id IN (SELECT song_id FROM rematched_plays)"
    ],
    "every songplays.artist_id is in artists": [
        "DELETE FROM artists"
        " WHERE artist_id IN (SELECT artist_id FROM new_songplays WHERE artist_id IS NOT NULL)"
    ],
    "every NextSong event with a user in staging is in songplays": [
        f"DELETE FROM songplays WHERE songplay_id IN ({A_NEW_PLAY})"
    ],
    "every songplays row has a source file in play_sources": [
        f"DELETE FROM play_sources WHERE songplay_id IN ({A_NEW_PLAY})"
    ],
    **{
        name: [f"DELETE FROM {name.split()[0]}"]
        for name, _, _ in sql_queries.quality_checks(sql_queries.WHOLE_TABLES)
        if " is not empty once " in name
    },
}


@pytest.fixture(scope="module")
def redshift_shaped_warehouse(server_dsn, generated, tmp_path_factory):
    """A database with the Redshift tables, loaded once with the generated data."""
    import redshift_standin
    from conftest import write_config

    name = f"checks_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(server_dsn)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    dsn = f"{server_dsn} dbname={name}"
    conn = redshift_standin.connect(dsn)
    conn.initialize(logging.getLogger("sparkify"))
    with conn.cursor() as cur:
        for _, statement in create_tables.table_statements(sql_queries.REDSHIFT):
            cur.execute(statement)
    conn.commit()
    conn.close()
    config = write_config(tmp_path_factory.mktemp("checks"), dsn, generated)
    assert etl.main(["--config", str(config), "--quiet"]) == 0
    yield dsn
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE {name} WITH (FORCE)")
    admin.close()


def failed_checks(dsn, scope, breakage):
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            for statement in (*RUN_LEFTOVERS, *breakage):
                cur.execute(statement)
            cur.execute(sql_queries.PLAYS_WINDOW_SQL)  # the run's staging: every play
            plays_window = dict(zip(sql_queries.PLAYS_WINDOW, cur.fetchone(), strict=True))
            checks = [
                UserCheck(*check, parameters=plays_window) for check in sql_queries.quality_checks(scope)
            ]
            return {
                result.name for result in run_checks(cur, checks, sql_queries.REDSHIFT) if not result.passed
            }
    finally:
        conn.rollback()
        conn.close()


def test_every_check_is_covered_here():
    assert set(BREAKAGES) == {name for name, _, _ in sql_queries.quality_checks(sql_queries.WHOLE_TABLES)}


@pytest.mark.parametrize("scope", SCOPES)
def test_unbroken_data_passes_every_check(scope, redshift_shaped_warehouse):
    assert failed_checks(redshift_shaped_warehouse, scope, []) == set()


@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize("check", list(BREAKAGES))
def test_each_check_fails_on_data_built_to_break_it(check, scope, redshift_shaped_warehouse):
    assert check in failed_checks(redshift_shaped_warehouse, scope, BREAKAGES[check])
