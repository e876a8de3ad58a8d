"""The walkthrough notebook, run headless exactly as a newcomer opens it: from notebooks/
in a copy of the project, with no config and no environment variable."""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT
from nbclient import NotebookClient

import sql_queries
from sparkify import pg_cluster

SETTINGS_OF_OURS = ("SPARKIFY_CONFIG", "SPARKIFY_LOCAL_DSN")


def project_copy(destination):
    """The project's files as a clone would have them (tracked and new files, working-tree
    content), without the checkout's own .demo/, .local-pg/ or .venv/."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for relative in filter(None, listed.split("\0")):
        source = ROOT / relative
        if source.is_file():
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def cell_outputs(notebook):
    return "\n".join(
        output.get("text", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )


@pytest.fixture
def fresh_project(monkeypatch):
    # Not under tmp_path: as root the server runs as another OS user, and pytest makes its
    # own temporary root private again whenever a session starts.
    folder = Path(tempfile.mkdtemp(prefix="sparkify-notebook-"))
    project = project_copy(folder / "project")
    for name in SETTINGS_OF_OURS:
        monkeypatch.delenv(name, raising=False)
    # the kernel inherits the environment: this interpreter first on PATH
    monkeypatch.setenv("PATH", f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}")
    yield project
    pg_cluster.stop(project / ".local-pg")
    shutil.rmtree(folder, ignore_errors=True)


def test_notebook_runs_top_to_bottom_from_notebooks_without_a_config(fresh_project):
    notebook = nbformat.read(fresh_project / "notebooks" / "sparkify.ipynb", as_version=4)
    NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(fresh_project / "notebooks")}},
    ).execute()
    text = cell_outputs(notebook)
    assert "config: .demo/dwh.cfg | analyst's config: .demo/analyst.cfg" in text
    assert (fresh_project / ".demo" / "dwh.cfg").is_file()
    assert pg_cluster.running_pid(fresh_project / ".local-pg") is not None
    assert f"checks: {len(sql_queries.quality_checks(sql_queries.WHOLE_TABLES))} passed, 0 failed" in text
    assert "Plays by hour of day (UTC)" in text
    assert "songplays            0       " in text  # the first load's summary row
    # `%run etl.py … --history` found the script from the project folder and ran it
    assert "run_id" in text and "committed" in text
    assert "SystemExit" not in text
