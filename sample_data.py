"""Write a Sparkify-shaped dataset of any size, deterministic from a seed (stdlib only).

Writes song_data/A/B/C/TR*.json (one song per file, as the Million Song Dataset does),
log_data/YYYY/MM/YYYY-MM-DD-events.json (eventsim JSON lines) and log_json_path.json.
The data exercises every rule of the star schema: repeated plays, users who change
level, logged-out events with an empty userId, plays that match songs and plays that do
not, songs sharing title and artist with different durations, song ids in two files
with different records, artists whose name is spelled two ways, and non-ASCII names
double-encoded as in the real logs.

examples:
  python sample_data.py --out /tmp/sparkify-data --events 20000 --songs 2000 --seed 7
  python sample_data.py --out /tmp/one-week --days 7
"""

import argparse
import json
import random
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

# Bump when the generated data changes, so cached benchmark datasets are made anew.
GENERATOR_VERSION = 4
JSONPATHS = [
    "artist",
    "auth",
    "firstName",
    "gender",
    "itemInSession",
    "lastName",
    "length",
    "level",
    "location",
    "method",
    "page",
    "registration",
    "sessionId",
    "song",
    "status",
    "ts",
    "userAgent",
    "userId",
]
SYLLABLES = ["ka", "lo", "mi", "ra", "ten", "vo", "sun", "bel", "dor", "fi", "ne", "shu", "ga"]
NON_ASCII_ARTISTS = ["Björk", "Sigur Rós", "Beyoncé", "Mötley Crüe", "Tiësto", "Céline Dion"]
WORDS = [
    "Love",
    "Night",
    "Fire",
    "Road",
    "Heart",
    "Rain",
    "Dream",
    "Home",
    "Light",
    "Gold",
    "River",
    "Time",
    "Dance",
    "Blue",
    "Stone",
    "Wild",
    "Sky",
    "Echo",
    "Paper",
    "Ghost",
]
FIRST_NAMES = [
    "Walter",
    "Kaylee",
    "Jacob",
    "Lily",
    "Chloe",
    "Aleena",
    "Tegan",
    "Jayden",
    "Mohammad",
    "Layla",
    "Ryan",
    "Sara",
]
# Non-ASCII names are rare, as in the real logs (about 4% of events there carry
# double-encoded text): each user gets one with this probability, per name.
ACCENTED_FIRST_NAMES = ["Zoé", "Renée", "Jörg"]
ACCENTED_LAST_NAMES = ["Müller", "Núñez"]
ACCENTED_NAME_SHARE = 0.02
LAST_NAMES = [
    "Frye",
    "Summers",
    "Klein",
    "Koch",
    "Cuevas",
    "Kirby",
    "Levine",
    "Graves",
    "Lynch",
    "Rhodes",
    "Patel",
    "Smith",
]
LOCATIONS = [
    "San Francisco-Oakland-Hayward, CA",
    "Phoenix-Mesa-Scottsdale, AZ",
    "New York-Newark-Jersey City, NY-NJ-PA",
    "Atlanta-Sandy Springs-Roswell, GA",
    "Lansing-East Lansing, MI",
    "Chicago-Naperville-Elgin, IL-IN-WI",
]
USER_AGENTS = [
    '"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_4) AppleWebKit/537.36 (KHTML, like Gecko) '
    'Chrome/36.0.1985.143 Safari/537.36"',
    "Mozilla/5.0 (Windows NT 6.1; WOW64; rv:31.0) Gecko/20100101 Firefox/31.0",
    '"Mozilla/5.0 (iPhone; CPU iPhone OS 7_1_2 like Mac OS X) AppleWebKit/537.51.2 '
    '(KHTML, like Gecko) Version/7.0 Mobile/11D257 Safari/9537.53"',
]
OTHER_PAGES = [
    "Home",
    "Thumbs Up",
    "Add to Playlist",
    "Settings",
    "Help",
    "About",
    "Downgrade",
    "Upgrade",
    "Logout",
    "Roll Advert",
]
NEXT_SONG_SHARE = 0.82
LOGGED_OUT_SHARE = 0.035
MATCHING_PLAY_SHARE = 0.3
LEVEL_CHANGE_SHARE = 0.1


def double_encode(text):
    """Mangle non-ASCII text the way the real logs are: UTF-8 read as Latin-1, twice."""
    for _ in range(2):
        text = text.encode("utf-8").decode("latin-1")
    return text


def _name(rng, parts=2):
    return " ".join(
        "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 3))).title() for _ in range(parts)
    )


def _track_id(rng, prefix):
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return prefix + "".join(rng.choice(letters + "0123456789") for _ in range(16))


def make_artists(rng, count):
    artists = []
    for index in range(count):
        name = NON_ASCII_ARTISTS[index] if index < len(NON_ASCII_ARTISTS) else _name(rng)
        has_place = rng.random() < 0.5
        artists.append(
            {
                "artist_id": f"AR{index:06d}{rng.randrange(16**10):010X}",
                "artist_name": name,
                # A few artists are spelled two ways across their songs, as in the wider data.
                "alternate_name": f"The {name}" if index % 17 == 5 else None,
                "artist_location": rng.choice(LOCATIONS) if has_place else "",
                "artist_latitude": round(rng.uniform(25, 48), 5) if has_place else None,
                "artist_longitude": round(rng.uniform(-122, -70), 5) if has_place else None,
            }
        )
    return artists


def make_songs(rng, count, artists):
    songs = []
    for index in range(count):
        if index % 50 == 49:
            songs.append(another_record_of(songs[-1], index))
            continue
        artist = artists[index % len(artists)]
        # every other song of an artist with two spellings uses the second one
        nth_song_of_artist = index // len(artists)
        spelled = artist["alternate_name"] if artist["alternate_name"] and nth_song_of_artist % 2 else None
        artist_name = spelled or artist["artist_name"]
        if index % 40 == 39:  # same title and artist as the previous song, another duration
            previous = songs[-1]
            artist = next(a for a in artists if a["artist_id"] == previous["artist_id"])
            artist_name = previous["artist_name"]
            title, duration = previous["title"], round(previous["duration"] + rng.uniform(5, 60), 5)
        else:
            title = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3))) + f" {index}"
            duration = round(rng.uniform(90, 420), 5)
        songs.append(
            {
                "num_songs": 1,
                "artist_id": artist["artist_id"],
                "artist_latitude": artist["artist_latitude"],
                "artist_longitude": artist["artist_longitude"],
                "artist_location": artist["artist_location"],
                "artist_name": artist_name,
                "song_id": f"SO{index:06d}{rng.randrange(16**10):010X}",
                "title": title,
                "duration": duration,
                "year": rng.choice([0, 0, rng.randint(1960, 2010)]),
            }
        )
    return songs


def another_record_of(song, index):
    """A second file with the same song_id, as the wider data has: a shorter cut (the
    same title: it wins on duration) or a live version (a longer title: it loses)."""
    if index % 100 == 49:
        return {**song, "duration": round(song["duration"] - 1.5, 5)}
    return {**song, "title": song["title"] + " (Live)", "duration": round(song["duration"] + 30, 5)}


def write_songs(out, songs, rng):
    for song in songs:
        track = _track_id(rng, "TR")
        folder = out / "song_data" / track[2] / track[3] / track[4]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{track}.json").write_text(json.dumps(song), encoding="utf-8")


def _pick(rng, plain, accented, always_accented=False):
    return rng.choice(accented if always_accented or rng.random() < ACCENTED_NAME_SHARE else plain)


def make_users(rng, count, first_day, days):
    users = []
    for index in range(count):
        change_day = rng.randrange(1, days) if days > 1 and rng.random() < LEVEL_CHANGE_SHARE else None
        users.append(
            {
                "userId": str(index + 1),
                # user 1 always has them, so even a small dataset has some
                "firstName": _pick(rng, FIRST_NAMES, ACCENTED_FIRST_NAMES, always_accented=index == 0),
                "lastName": _pick(rng, LAST_NAMES, ACCENTED_LAST_NAMES, always_accented=index == 0),
                "gender": rng.choice("MF"),
                "location": rng.choice(LOCATIONS),
                "userAgent": rng.choice(USER_AGENTS),
                "registration": float(
                    int(datetime(2018, 10, 1, tzinfo=UTC).timestamp() * 1000) + rng.randrange(10**9)
                ),
                "level": rng.choice(["free", "free", "paid"]),
                "change_day": first_day + timedelta(days=change_day) if change_day else None,
            }
        )
    return users


def _level_on(user, day):
    if user["change_day"] and day >= user["change_day"]:
        return "paid" if user["level"] == "free" else "free"
    return user["level"]


def _play(rng, songs):
    if rng.random() < MATCHING_PLAY_SHARE:
        song = rng.choice(songs)
        return double_encode(song["artist_name"]), double_encode(song["title"]), song["duration"]
    return _name(rng), " ".join(rng.choice(WORDS) for _ in range(2)), round(rng.uniform(90, 420), 5)


def session_events(rng, user, session_id, start_ms, items, songs, day):
    """The events of one session, in order."""
    logged_out = user is None
    ts = start_ms
    for item in range(items):
        ts += rng.randrange(1, 300_000) if item else 0
        next_song = not logged_out and rng.random() < NEXT_SONG_SHARE
        artist, song, length = _play(rng, songs) if next_song else (None, None, None)
        page = "NextSong" if next_song else ("Home" if logged_out else rng.choice(OTHER_PAGES))
        yield {
            "artist": artist,
            "auth": "Logged Out" if logged_out else "Logged In",
            "firstName": None if logged_out else double_encode(user["firstName"]),
            "gender": None if logged_out else user["gender"],
            "itemInSession": item,
            "lastName": None if logged_out else double_encode(user["lastName"]),
            "length": length,
            "level": "free" if logged_out else _level_on(user, day),
            "location": None if logged_out else user["location"],
            "method": "PUT" if next_song else "GET",
            "page": page,
            "registration": None if logged_out else user["registration"],
            "sessionId": session_id,
            "song": song,
            "status": 200,
            "ts": ts,
            "userAgent": None if logged_out else user["userAgent"],
            "userId": "" if logged_out else user["userId"],
        }


def write_day(out, rng, day, event_count, users, songs, session_counter):
    folder = out / "log_data" / f"{day:%Y}" / f"{day:%m}"
    folder.mkdir(parents=True, exist_ok=True)
    day_start = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
    lines = []
    while len(lines) < event_count:
        user = None if rng.random() < LOGGED_OUT_SHARE else rng.choice(users)
        items = min(rng.randint(1, 60), event_count - len(lines))
        session_counter[0] += 1
        start = day_start + rng.randrange(20 * 3600 * 1000)
        for event in session_events(rng, user, session_counter[0], start, items, songs, day):
            lines.append((event["ts"], json.dumps(event)))
    # Eventsim's files are sorted by time, and the real ones end without a newline.
    lines.sort()
    text = "\n".join(line for _, line in lines)
    (folder / f"{day:%Y-%m-%d}-events.json").write_text(text, encoding="utf-8")


def generate(out, events, songs, seed=42, days=30, first_day=date(2018, 11, 1)):
    """Write the dataset under out; returns out."""
    out = Path(out)
    rng = random.Random(seed)
    artists = make_artists(rng, max(2, songs // 3))
    catalog = make_songs(rng, songs, artists)
    write_songs(out, catalog, rng)
    users = make_users(rng, max(10, min(events // 80, 50_000)), first_day, days)
    per_day, remainder = divmod(events, days)
    session_counter = [0]
    for offset in range(days):
        count = per_day + (1 if offset < remainder else 0)
        if count:
            write_day(out, rng, first_day + timedelta(days=offset), count, users, catalog, session_counter)
    jsonpaths = {"jsonpaths": [f"$['{field}']" for field in JSONPATHS]}
    (out / "log_json_path.json").write_text(json.dumps(jsonpaths, indent=4), encoding="utf-8")
    return out


def build_parser():
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        epilog=__doc__.split("\n\n")[-1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", required=True, type=Path, help="folder to write into")
    parser.add_argument("--events", type=int, default=20_000, help="number of log events")
    parser.add_argument("--songs", type=int, default=2_000, help="number of song files")
    parser.add_argument("--days", type=int, default=30, help="days of log, from 2018-11-01")
    parser.add_argument("--seed", type=int, default=42, help="random seed (same seed, same data)")
    return parser


def main(argv=None):
    parser = build_parser()
    try:
        args = parser.parse_args(argv or [])
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else 2
    if args.events < 0 or args.songs < 1 or args.days < 1:
        print("error: --events must be >= 0, --songs and --days >= 1", file=sys.stderr)
        return 2
    generate(args.out, args.events, args.songs, args.seed, args.days)
    print(f"wrote {args.events} events over {args.days} days and {args.songs} song files to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
