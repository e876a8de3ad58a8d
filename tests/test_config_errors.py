"""User mistakes in the config or the command line: one line, exit code 2, no traceback."""

import pytest

import create_tables
import etl

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
    assert_user_mistake(code, out, "[S3] LOG_DATA = ")
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


@pytest.mark.parametrize("script", [create_tables, etl])
def test_help_documents_every_option_with_an_example(script, run):
    code, out = run(script, "--help")
    assert code == 0
    assert "--config" in out and "example" in out and "python " in out


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
