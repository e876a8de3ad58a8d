"""[S3] LOG_DATA, SONG_DATA and LOG_JSONPATH may be local paths relative to the config
file's folder (README, Configuration), whatever the working directory is."""

from pathlib import Path

import pytest
from conftest import event, song

import create_tables
import etl
from sparkify.config import load_config

NOV_1 = 1541030400000
# key: what it names in the data folder; the config says ../data/<that>
SOURCES = {"LOG_DATA": "log_data", "SONG_DATA": "song_data", "LOG_JSONPATH": "log_json_path.json"}


@pytest.fixture
def project(tmp_path, dataset, dsn):
    """tmp_path/project/config/dwh.cfg, whose sources are ../data/…: the data in a
    sibling folder, tmp_path/project/data. Returns the project folder."""
    plays = [event(NOV_1, user="7", item=0), event(NOV_1 + 1000, user="8", item=1)]
    dataset(songs=[song("SO_1")], days={"2018-11-01": plays}, name="project/data")
    folder = tmp_path / "project" / "config"
    folder.mkdir()
    lines = ["[ETL]", "TARGET = local", "[LOCAL]", f"DSN = {dsn}", "[S3]"]
    lines += [f"{key} = ../data/{name}" for key, name in SOURCES.items()]
    (folder / "dwh.cfg").write_text("\n".join(lines) + "\n")
    return tmp_path / "project"


# Where the run starts, and the --config it is given (relative to that place, or not).
# From either place ../data is not the project's data: only the config's folder works.
STARTS = {
    "elsewhere, absolute --config": (".", lambda project: project / "config" / "dwh.cfg"),
    "in the project, relative --config": ("project", lambda project: Path("config", "dwh.cfg")),
}


@pytest.mark.parametrize("start", STARTS.values(), ids=STARTS.keys())
def test_relative_sources_are_resolved_against_the_config_files_folder(start, project, tmp_path, monkeypatch):
    working_dir, config_path = start
    monkeypatch.chdir(tmp_path / working_dir)
    config = load_config(config_path(project))
    data = project.resolve() / "data"
    assert {key: config.get("S3", key) for key in SOURCES} == {
        key: str(data / name) for key, name in SOURCES.items()
    }


@pytest.mark.parametrize("start", STARTS.values(), ids=STARTS.keys())
def test_a_run_loads_the_data_beside_the_config_file(start, project, tmp_path, monkeypatch, run, query):
    working_dir, config_path = start
    monkeypatch.chdir(tmp_path / working_dir)
    config = config_path(project)
    code, out = run(create_tables, "--config", config)
    assert code == 0, out
    code, out = run(etl, "--config", config)
    assert code == 0, out
    assert "staging_songs   1 files, 1 records read, 1 loaded" in out
    assert "staging_events  1 files, 2 records read, 2 loaded" in out
    assert query("SELECT user_id FROM users ORDER BY user_id") == [(7,), (8,)]
    assert query("SELECT COUNT(*) FROM songplays") == [(2,)]
