"""The generator: deterministic, and shaped to exercise every rule of the star schema."""

import hashlib
import json
from collections import Counter, defaultdict

import sample_data


def fingerprint(folder):
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return digest.hexdigest()


def test_same_seed_same_bytes_other_seed_other_data(tmp_path):
    first = sample_data.generate(tmp_path / "a", events=800, songs=60, seed=3)
    again = sample_data.generate(tmp_path / "b", events=800, songs=60, seed=3)
    other = sample_data.generate(tmp_path / "c", events=800, songs=60, seed=4)
    assert fingerprint(first) == fingerprint(again) != fingerprint(other)


def test_generated_data_has_the_shapes_the_rules_need(generated):
    events = [
        json.loads(line)
        for path in (generated / "log_data").rglob("*.json")
        for line in path.read_text().splitlines()
    ]
    songs = [json.loads(path.read_text()) for path in (generated / "song_data").rglob("*.json")]
    assert len(events) == 3000 and len(songs) == 300
    assert any(e["userId"] == "" and e["firstName"] is None for e in events)  # logged out
    levels = defaultdict(set)
    for e in events:
        if e["userId"]:
            levels[e["userId"]].add(e["level"])
    assert any(len(seen) == 2 for seen in levels.values())  # users who change level
    plays = Counter((e["userId"], e["song"]) for e in events if e["page"] == "NextSong")
    assert plays.most_common(1)[0][1] >= 2  # a user plays a song again
    by_title_artist = Counter((s["title"], s["artist_name"]) for s in songs)
    assert any(count > 1 for count in by_title_artist.values())  # same title and artist twice
    catalogue = {(s["title"], s["artist_name"]) for s in songs}
    repaired = [(sample_data.double_encode(t), sample_data.double_encode(a)) for t, a in catalogue]
    matching = sum((e["song"], e["artist"]) in set(repaired) for e in events if e["page"] == "NextSong")
    assert 0 < matching < sum(e["page"] == "NextSong" for e in events)  # some match, some do not
    accented = [e for e in events if "\u00c3" in (e["firstName"] or "") + (e["lastName"] or "")]
    assert 0 < len(accented) < len(events) * 0.2  # double-encoded non-ASCII, and rare
    ids_per_artist = defaultdict(set)
    for s in songs:
        ids_per_artist[s["artist_id"]].add(s["artist_name"])
    assert any(len(names) > 1 for names in ids_per_artist.values())  # two spellings of one artist
