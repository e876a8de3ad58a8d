"""What the README shows is what the code does: every output block marked
`<!-- output: NAME -->` is produced here by a real run, and every command the README
shows in a shell block runs here.

`make docs` (SPARKIFY_WRITE_DOCS=1) writes the outputs of these runs into the marked
blocks, as sqlite-utils' docs are kept with cog; the tests fail when a block differs
from the current code's output (timings, run ids and clock times aside).
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import ROOT
from test_notebook import project_copy
from test_redshift_path import day_with_bad_rows, warehouse_on_s3  # noqa: F401 - fixtures
from test_roles import ANALYST, write_role_config

import analytics
import create_tables
import etl
from sparkify import pg_cluster, roles

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
WRITE = os.environ.get("SPARKIFY_WRITE_DOCS") == "1"
MARKED_BLOCK = re.compile(r"(<!-- output: (?P<name>[\w-]+) -->\n```[a-z]*\n)(?P<text>.*?)(\n```)", re.S)

VARYING = [
    (re.compile(r"\d+\.\d+ s\b"), "N s"),  # timings
    (re.compile(r"\d{8}T\d{6}-[0-9a-f]{6}"), "RUN-ID"),
    (re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}"), "CLOCK"),
]


def normalised(text):
    for pattern, replacement in VARYING:
        text = pattern.sub(replacement, text)
    return text.rstrip()


def marked_blocks():
    """{name: (document, text)} of every marked output block."""
    blocks = {}
    for document in DOCS:
        for match in MARKED_BLOCK.finditer(document.read_text()):
            assert match["name"] not in blocks, f"output block {match['name']} is marked twice"
            blocks[match["name"]] = (document, match["text"])
    return blocks


def check_or_write(name, produced):
    """Compare the marked block with a real run's output, or write it in (make docs)."""
    blocks = marked_blocks()
    assert name in blocks, f"no block marked <!-- output: {name} --> in {[d.name for d in DOCS]}"
    document, shown = blocks[name]
    produced = produced.rstrip()
    if WRITE:
        text = document.read_text()
        match = next(m for m in MARKED_BLOCK.finditer(text) if m["name"] == name)
        document.write_text(text[: match.start("text")] + produced + text[match.end("text") :])
        return
    assert normalised(shown) == normalised(produced), (
        f"{document.name}'s output block {name!r} is not what the code prints now: run `make docs`"
    )


def shell_line(script, args):
    return "$ python " + " ".join([script, *args])


# --- The marked outputs ----------------------------------------------------------------------


def test_readme_shows_the_real_sample_load(real_sample, load):
    check_or_write("etl-real-sample", load(real_sample))


def dry_run_outline(text):
    """A dry run's statements, each as its comment and first line (`…` where cut); a run
    of statements of one kind (comment up to its colon, and first word: the probes, the
    settings, the checks) as its first and how many more."""
    statements = [block.splitlines() for block in re.split(r"\n\n(?=-- )", text.strip())]

    def kind(statement):
        comment, first_line = statement[0], (statement[1:] or [""])[0]
        return comment.split(":")[0], first_line.split(" ")[0]

    shown, index = [], 0
    while index < len(statements):
        comment, *body = statements[index]
        same = 1
        while index + same < len(statements) and kind(statements[index + same]) == kind(statements[index]):
            same += 1
        lines = [comment, *body[:1], *(["…"] if len(body) > 1 else [])]
        if same > 1:
            lines.append(f"… and {same - 1} more like it")
        shown.append("\n".join(lines))
        index += same
    return "\n\n".join(shown)


def test_readme_shows_the_dry_run(real_sample, config_for, run):
    args = ["--dry-run", "--from", "2018-11-05", "--to", "2018-11-05"]
    code, out = run(etl, "--config", config_for(real_sample), *args)
    assert code == 0, out
    outline = dry_run_outline(out).replace(str(real_sample), "sparkify-sample")
    check_or_write("etl-dry-run", shell_line("etl.py", args) + "\n" + outline)


def test_readme_shows_analytics_answers(real_sample, load, config_for, run):
    load(real_sample)
    args = ["plays_by_weekday", "paid_vs_free"]
    code, out = run(analytics, "--config", config_for(real_sample), *args)
    assert code == 0, out
    check_or_write("analytics", shell_line("analytics.py", args) + "\n" + out)


def test_readme_shows_an_analyst_refused_the_history(dsn, tmp_path, real_sample, run):
    config = write_role_config(tmp_path, dsn, real_sample)
    for script in (roles, create_tables, etl):
        assert run(script, "--config", config)[0] == 0
    analyst = write_role_config(tmp_path, dsn, real_sample, name="analyst.cfg", user=ANALYST)
    code, out = run(etl, "--config", analyst, "--history")
    assert code == 2, out
    check_or_write(
        "analyst-refused", shell_line("etl.py", ["--config", ".demo/analyst.cfg", "--history"]) + "\n" + out
    )


def test_readme_shows_a_failed_copy_on_the_redshift_path(day_with_bad_rows, warehouse_on_s3, run):
    code, out = run(etl, "--config", warehouse_on_s3(day_with_bad_rows))
    assert code == 1
    check_or_write("redshift-copy-error", "\n".join(out.splitlines()[-2:]))


# --- docs/benchmarks.md: what a daily run reads on Redshift ------------------------------------------

READS_SECTION = "## What a daily run reads on Redshift"


def benchmarks_tables():
    """The two tables of docs/benchmarks.md's section: each row's cells, header rows left out."""
    text = (ROOT / "docs" / "benchmarks.md").read_text()
    section = text[text.index(READS_SECTION) :]
    section = section[: section.find("\n## ", 1) if "\n## " in section[1:] else len(section)]
    tables, lines = [], None
    for line in section.splitlines():
        if not line.startswith("|"):
            lines = None
            continue
        if lines is None:
            lines = []
            tables.append(lines)
        lines.append([cell.strip() for cell in line.strip().strip("|").split(" | ")])
    return [table[2:] for table in tables]  # without the header and its rule


def dry_run_statements(text):
    """(name, SQL) of each statement of a dry run: its comment (a COPY's up to the colon, a
    check's name) and its first line, as docs/benchmarks.md names it."""
    named = []
    for block in re.split(r"\n\n(?=-- )", text.strip()):
        comment, sql = block.split("\n", 1)
        what = comment[3:]
        if what.startswith("check: "):
            what = "check: " + what[len("check: ") :].split(" (expected")[0]
        elif what.startswith("staging_") and ":" in what:
            what = what.split(":")[0]
        named.append((f"{what} — `{sql.splitlines()[0].rstrip(';')}`", sql.strip().rstrip(";")))
    return named


def one_line(sql):
    return re.sub(r"runs/[^/]+/", "runs/<run_id>/", " ".join(sql.split()))


def test_benchmarks_says_what_every_statement_of_a_daily_redshift_run_reads(
    real_sample, warehouse_on_s3, run, tmp_path, monkeypatch
):
    """Its first table names every statement of `etl.py --dry-run` on Redshift, in order;
    its second the ones the dry run leaves out. A daily run on the stand-in (the real
    sample's last day, after the days before it) sends nothing else, and every statement of
    the second table."""
    from test_redshift_path import record_statements

    config = warehouse_on_s3(real_sample)
    day = ["--from", "2018-11-30", "--to", "2018-11-30"]
    code, out = run(etl, "--config", config, "--dry-run", *day)
    assert code == 0, out
    planned, left_out = benchmarks_tables()
    named = dry_run_statements(out)
    assert [row[1] for row in planned] == [name for name, _ in named], f"{READS_SECTION}: the statements now"
    assert [row[0] for row in planned] == [str(n) for n in range(1, len(named) + 1)]
    assert all(len(row) == 4 for row in planned) and all(len(row) == 3 for row in left_out)

    code, out = run(etl, "--config", config, "--to", "2018-11-29")
    assert code == 0, out
    sent = record_statements(monkeypatch)
    code, out = run(etl, "--config", config, *day)
    assert code == 0 and "1 new files" in out and "(this run)" in out, out
    known = {one_line(sql) for _, sql in named}
    prefixes = [row[0].strip("`") for row in left_out]
    unexplained = [
        sql
        for sql in map(one_line, sent)
        if sql not in known and not sql.startswith("COPY ") and not any(sql.startswith(p) for p in prefixes)
    ]
    assert unexplained == []
    assert [p for p in prefixes if not any(one_line(sql).startswith(p) for sql in sent)] == []


# --- Every command of the README's shell blocks ------------------------------------------------

SHELL_BLOCK = re.compile(r"```sh\n(.*?)\n```", re.S)


def readme_commands():
    """Each command line of the README's ```sh blocks, comments cut off."""
    text = (ROOT / "README.md").read_text()
    lines = [
        line.split("  #")[0].strip() for block in SHELL_BLOCK.findall(text) for line in block.splitlines()
    ]
    return [line for line in lines if line and not line.startswith("#")]


@pytest.fixture
def project(generated, dsn, monkeypatch):
    """A copy of the project, its own dwh.cfg made as the README says (copied from the
    example; the DSN from the environment, the data beside it as `data/`)."""
    folder = Path(tempfile.mkdtemp(prefix="sparkify-readme-"))
    copy = project_copy(folder / "project")
    (copy / "data").symlink_to(generated)
    monkeypatch.setenv("SPARKIFY_LOCAL_DSN", dsn)
    monkeypatch.setenv("SPARKIFY_LOCAL_ADMIN_DSN", dsn)
    yield copy
    pg_cluster.stop(copy / ".local-pg")
    shutil.rmtree(folder, ignore_errors=True)


def run_command(line, cwd):
    """A README command, as a user types it: `python` is this interpreter; `make` gets it
    too and takes the venv as made (make test made it), and starts its own server (the
    config's DSN comes from the environment for the scripts only)."""
    words, env = line.split(), dict(os.environ)
    if words[0] == "python":
        words[0] = sys.executable
    elif words[0] == "make":
        words[1:1] = [
            f"PY={sys.executable}",
            f"PYTHON={sys.executable}",
            "-o",
            ".venv/.demo",
            "-o",
            ".venv/.dev",
        ]
        env.pop("SPARKIFY_LOCAL_DSN")
        env.pop("SPARKIFY_LOCAL_ADMIN_DSN")
        for inherited in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS"):  # under `make test`: not a sub-make
            env.pop(inherited, None)
    return subprocess.run(
        words, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600
    )


NOT_RUN_HERE = {"make test": "this suite is `make test`"}
# Commands the README names in its text rather than in a shell block, run after those.
IN_THE_TEXT = ["make stop-db", "make stop-db", "make clean"]  # the second stop finds nothing to stop


def demo_ending(output):
    """make demo's last lines, from its checks on, with this interpreter shown as the venv's."""
    ending = output[output.index("checks:") :]
    return ending.replace(sys.executable, ".venv/bin/python")


def test_every_readme_shell_command_runs(project):
    commands = readme_commands()
    assert "python etl.py" in commands and "make demo" in commands  # the blocks were found
    ran = []
    for line in [*commands, *IN_THE_TEXT]:
        if line in NOT_RUN_HERE:
            continue
        result = run_command(line, project)
        output = result.stdout
        assert result.returncode == 0, f"`{line}` exited {result.returncode}:\n{output}"
        assert "Traceback" not in output, line
        if line == "make demo":
            assert pg_cluster.running_pid(project / ".local-pg") is not None
            check_or_write("demo-ending", demo_ending(output))
        ran.append(line)
    assert len(ran) == len(commands) + len(IN_THE_TEXT) - len(NOT_RUN_HERE)
    assert pg_cluster.running_pid(project / ".local-pg") is None  # make stop-db stopped it
    assert not (project / ".local-pg").exists() and not (project / ".demo").exists()  # make clean


LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("document", DOCS, ids=lambda path: path.name)
def test_every_relative_link_names_a_file_that_exists(document):
    targets = [t for t in LINK.findall(document.read_text()) if not re.match(r"[a-z]+:", t)]
    assert [t for t in targets if not (document.parent / t).exists()] == []
