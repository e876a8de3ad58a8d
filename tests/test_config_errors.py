"""User mistakes in the config or the command line: one line, exit code 2, no traceback."""

import pytest
from conftest import write_config

import analytics
import create_tables
import demo
import etl
from sparkify import warehouse

REDSHIFT = """
[ETL]
TARGET = redshift
[CLUSTER]
HOST = example.abc123.us-west-2.redshift.amazonaws.com
DB_NAME = dev
DB_USER = awsuser
DB_PASSWORD = Secret-123
DB_PORT = 5439
[IAM_ROLE]
ARN = arn:aws:iam::123456789012:role/dwhRole
[S3]
LOG_DATA = s3://udacity-dend/log_data
LOG_JSONPATH = s3://udacity-dend/log_json_path.json
SONG_DATA = s3://udacity-dend/song_data
REGION = us-west-2
"""


def replaced(text, old, new):
    assert old in text
    return text.replace(old, new)


def assert_user_mistake(code, out, message):
    assert code == 2, out
    assert "Traceback" not in out
    error_lines = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1, out
    assert message in error_lines[0]


@pytest.mark.parametrize("script", [create_tables, etl])
def test_missing_config_file(script, run, tmp_path):
    code, out = run(script, "--config", tmp_path / "nope.cfg")
    assert_user_mistake(code, out, "nope.cfg not found: copy dwh.cfg.example to nope.cfg")


@pytest.mark.parametrize(
    "old, new, message",
    [
        (
            "TARGET = redshift",
            "TARGET = snowflake",
            "[ETL] TARGET is 'snowflake'; use one of: local, redshift",
        ),
        (
            "DB_PORT = 5439",
            "DB_PORT = fifty",
            "[CLUSTER] DB_PORT must be a port number (1-65535), not 'fifty'",
        ),
        ("DB_PORT = 5439", "DB_PORT = 70000", "[CLUSTER] DB_PORT must be a port number"),
        ("role/dwhRole", "role/dwh Role", "[IAM_ROLE] ARN is not an IAM role ARN"),
        (
            "ARN = arn:aws:iam::123456789012",
            "ARN = arn:aws:iam::1234",
            "[IAM_ROLE] ARN is not an IAM role ARN",
        ),
        (
            "s3://udacity-dend/log_data",
            "udacity-dend/log_data",
            "[S3] LOG_DATA must be an s3://bucket/prefix URL",
        ),
        (
            "s3://udacity-dend/song_data",
            "s3://Bad_Bucket/x",
            "[S3] SONG_DATA must be an s3://bucket/prefix URL",
        ),
        ("REGION = us-west-2", "REGION = mars", "[S3] REGION is not an AWS region name"),
        ("HOST = example", "HOST = <cluster>", "[CLUSTER] HOST still holds '<cluster>"),
        (
            "DB_PASSWORD = Secret-123",
            "DB_PASSWORD = <password>",
            "[CLUSTER] DB_PASSWORD still holds the placeholder",
        ),
        ("DB_USER = awsuser\n", "", "[CLUSTER] DB_USER is required (key missing); set it in the file or in"),
        (
            "[IAM_ROLE]\nARN = arn:aws:iam::123456789012:role/dwhRole\n",
            "",
            "[IAM_ROLE] ARN is required (section missing)",
        ),
        ("[ETL]", "[ETL\n", "cannot be parsed"),
        (
            "[S3]",
            "[CHECK x]\nSQL = DELETE FROM users\nEXPECTED = 0\n[S3]",
            "[CHECK x] SQL must be one SELECT",
        ),
    ],
)
def test_bad_redshift_config_values(old, new, message, run, tmp_path):
    config = tmp_path / "dwh.cfg"
    config.write_text(replaced(REDSHIFT, old, new))
    code, out = run(etl, "--config", config)
    assert_user_mistake(code, out, message)
    assert "Secret-123" not in out


def test_local_path_that_does_not_exist(run, config_for, tmp_path):
    config = config_for(tmp_path / "missing")
    code, out = run(etl, "--config", config)
    assert_user_mistake(code, out, "[S3] SONG_DATA = ")  # the first source, in load order
    assert "does not exist" in out


def test_local_target_refuses_malformed_s3_urls(run, config_for, generated):
    config = config_for(generated)
    config.write_text(
        replaced(config.read_text(), f"LOG_DATA = {generated}/log_data", "LOG_DATA = s3://Bad_Bucket/x")
    )
    code, out = run(etl, "--config", config)
    assert_user_mistake(code, out, "[S3] LOG_DATA is not a valid s3://bucket/prefix URL")


def test_bad_maxerror(run, config_for, generated):
    code, out = run(etl, "--config", config_for(generated, maxerror="lots"))
    assert_user_mistake(code, out, "[ETL] MAXERROR must be a whole number >= 0, not 'lots'")


def test_environment_overrides_the_file(run, config_for, generated, monkeypatch):
    monkeypatch.setenv("SPARKIFY_ETL_TARGET", "bigquery")
    code, out = run(etl, "--config", config_for(generated))
    assert_user_mistake(code, out, "[ETL] TARGET is 'bigquery'")


def test_bad_jsonpaths_file(run, config_for, generated, tmp_path):
    config = config_for(generated)
    paths = tmp_path / "paths.json"
    paths.write_text('{"jsonpaths": ["$[\'a\']"]}')
    config.write_text(
        replaced(
            config.read_text(), f"LOG_JSONPATH = {generated}/log_json_path.json", f"LOG_JSONPATH = {paths}"
        )
    )
    assert run(create_tables, "--config", config)[0] == 0
    code, out = run(etl, "--config", config)
    assert_user_mistake(code, out, "the JSONPaths file has 1 paths but staging_events has 18 columns")


def test_unknown_option_is_a_usage_error(run):
    code, out = run(etl, "--frm", "2018-11-01")
    assert code == 2
    assert "unrecognized arguments: --frm" in out


def test_main_ignores_the_notebook_kernels_own_arguments(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr("sys.argv", ["ipykernel_launcher.py", "-f", "/tmp/kernel.json"])
    monkeypatch.setattr("sparkify.cli.DEFAULT_CONFIG", tmp_path / "dwh.cfg")
    code = etl.main()  # returns, never exits the kernel
    assert_user_mistake(code, capsys.readouterr().out, "dwh.cfg not found")


def test_a_warehouse_older_than_this_version_says_to_run_create_tables(
    generated, load, run, config_for, query
):
    load(generated)
    query("DROP TABLE song_records")  # as a warehouse made before song records were kept
    code, out = run(etl, "--config", config_for(generated))  # nothing new: still stops
    assert code == 1
    assert 'relation "song_records" does not exist; the warehouse lacks a table or column' in out
    assert "run create_tables.py" in out and "Traceback" not in out
    assert "staging_songs" not in out  # before anything is staged


UNCLOSED_QUOTE_DSN = "host=nowhere password='Zebra-Pw-77"


@pytest.mark.parametrize("script", [create_tables, etl, analytics])
@pytest.mark.parametrize("from_env", [False, True], ids=["in the file", "in SPARKIFY_LOCAL_DSN"])
def test_a_dsn_libpq_cannot_read_is_refused_before_any_connection(
    script, from_env, run, tmp_path, generated, monkeypatch
):
    connections = []
    monkeypatch.setattr(warehouse, "connect", connections.append)
    if from_env:
        monkeypatch.setenv("SPARKIFY_LOCAL_DSN", UNCLOSED_QUOTE_DSN)
    config = write_config(tmp_path, "host=nowhere" if from_env else UNCLOSED_QUOTE_DSN, generated)
    code, out = run(script, "--config", config)
    source = " (from SPARKIFY_LOCAL_DSN)" if from_env else ""
    assert_user_mistake(
        code,
        out,
        f"[LOCAL] DSN{source} cannot be read by libpq: unterminated quoted string in connection info string",
    )
    assert "Zebra" not in out
    assert connections == []


def test_demo_refuses_a_dsn_libpq_cannot_read(run, tmp_path, generated, monkeypatch):
    monkeypatch.setenv("SPARKIFY_LOCAL_DSN", UNCLOSED_QUOTE_DSN)
    code, out = run(demo, "--data", generated, "--dir", tmp_path / "demo", "--cluster-dir", tmp_path / "pg")
    assert_user_mistake(
        code, out, "[LOCAL] DSN (from SPARKIFY_LOCAL_DSN) cannot be read by libpq: unterminated"
    )
    assert "Zebra" not in out


HIDDEN = '"<not shown: it may hold the password>"'


@pytest.mark.parametrize(
    "dsn, problem, never_shown",
    [
        pytest.param(
            "host=h password=Zebra Pw-77 user=u",
            f'missing "=" after {HIDDEN} in connection info string',
            ["Zebra", "Pw-77", "user=u"],
            id="password with a space",
        ),
        pytest.param(
            'host=h password=ab"cd Zebra"Pw',
            f'missing "=" after {HIDDEN} in connection info string',
            ["Zebra", "Pw"],
            id="quotes inside the piece",
        ),
        pytest.param(
            "host=h password=Zebra-Pw-77 tailopt=1",
            f"invalid connection option {HIDDEN}",
            ["Zebra", "tailopt"],
            id="option after the password",
        ),
        pytest.param(
            "postgresql://u:Zebra%ZZPw@h/db",
            f"invalid percent-encoded token: {HIDDEN}",
            ["Zebra"],
            id="URI bad encoding",
        ),
        pytest.param(
            "postgresql://u:Zebra-Pw-77@[::1/db",
            f'end of string reached when looking for matching "]" in IPv6 host address in URI: {HIDDEN}',
            ["Zebra"],
            id="URI whole",
        ),
        pytest.param(
            "postgresql://u@h/db?password=Zebra-Pw-77&tailopt=1",
            f"invalid URI query parameter: {HIDDEN}",
            ["Zebra", "tailopt"],
            id="URI parameter after the password",
        ),
        pytest.param(
            "postgresql://u@h/db?pass%77ord=Zebra-Pw-77&tailopt",
            f'missing key/value separator "=" in URI query parameter: {HIDDEN}',
            ["Zebra", "tailopt"],
            id="URI encoded password parameter",
        ),
        pytest.param(
            "postgresql://u:Zebra-Pw-77@[::1]x/db",
            "unexpected character",  # a complaint quoting more than one piece: cut at the first
            ["Zebra", '"x"'],
            id="URI, two pieces",
        ),
        # what comes before any password is shown, to say which piece is wrong
        pytest.param(
            "host=h dbnme=x password=Zebra-Pw-77",
            'invalid connection option "dbnme"',
            ["Zebra"],
            id="option before the password",
        ),
        pytest.param(
            "postgresql://u@h/db?sslmod=require",
            'invalid URI query parameter: "sslmod"',
            [],
            id="URI without a password",
        ),
    ],
)
def test_libpqs_complaint_never_shows_the_password_or_what_follows(
    dsn, problem, never_shown, run, tmp_path, generated
):
    code, out = run(etl, "--config", write_config(tmp_path, dsn, generated))
    assert_user_mistake(code, out, f"[LOCAL] DSN cannot be read by libpq: {problem};")
    for piece in never_shown:
        assert piece not in out
