"""The throwaway server: made from the wheel, reused, stopped by its folder, and nothing
to stop is not an error."""

import shutil
import tempfile
from pathlib import Path

import psycopg2
import pytest

from sparkify import pg_cluster


@pytest.fixture
def server_folder():
    """A folder for a server of the test's own (not under tmp_path: see test_notebook)."""
    folder = Path(tempfile.mkdtemp(prefix="sparkify-pg-cluster-"))
    yield folder
    pg_cluster.stop(folder / "pg")
    shutil.rmtree(folder, ignore_errors=True)


def test_a_server_starts_is_reused_and_stops_by_its_folder(server_folder):
    data_dir = server_folder / "pg"
    dsn = pg_cluster.start(data_dir)
    try:
        pid = pg_cluster.running_pid(data_dir)
        assert pid is not None
        assert pg_cluster.start(data_dir) == dsn  # a second start reuses it
        assert pg_cluster.running_pid(data_dir) == pid
        with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT current_database(), current_setting('fsync'), datcollate FROM pg_database "
                "WHERE datname = current_database()"
            )
            assert cur.fetchone() == ("sparkify", "off", "C")
    finally:
        assert pg_cluster.main(["stop", str(data_dir)]) == 0
    assert pg_cluster.running_pid(data_dir) is None


def test_nothing_to_stop_is_not_an_error(tmp_path, capsys):
    assert pg_cluster.main(["stop", str(tmp_path / "never-made")]) == 0
    assert "no PostgreSQL server running" in capsys.readouterr().out


def test_a_cluster_of_another_major_version_is_refused_with_the_fix(tmp_path):
    data_dir = tmp_path / "old"
    data_dir.mkdir()
    (data_dir / "PG_VERSION").write_text("15\n")
    with pytest.raises(pg_cluster.ClusterError, match=r"PostgreSQL 15 cluster .* `make clean` removes it"):
        pg_cluster.start(data_dir)
