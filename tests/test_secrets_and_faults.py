"""Secrets never reach the output; hostile config values cannot change a statement;
connection failures are retried, then explained."""

import re
from urllib.parse import quote

import psycopg2
import pytest
import sqlglot
from psycopg2.extensions import parse_dsn

import create_tables
import etl
import sql_queries
from sparkify import warehouse
from sparkify.config import load_config

PASSWORD = "pw-Zebra-7781"
AWS_SECRET = "aws-Secret-Quokka-5521"
AWS_TOKEN = "aws-Token-Narwhal-9034"


def with_password(dsn):
    # The test server trusts local connections, so any password is accepted.
    return f"{dsn} password={PASSWORD}"


def test_no_secret_appears_in_any_output(generated, run, tmp_path, dsn, monkeypatch):
    from conftest import write_config

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", AWS_TOKEN)
    config = write_config(tmp_path, with_password(dsn), generated)
    # --verbose prints every statement: a check that names the secrets prints them
    config.write_text(
        config.read_text()
        + f"\n[CHECK names the secrets]\nSQL = SELECT COUNT(*) FROM users WHERE first_name IN"
        f" ('{PASSWORD}', '{AWS_SECRET}', '{AWS_TOKEN}')\nEXPECTED = 0\n"
    )
    outputs = [run(create_tables, "--config", config, "--verbose")]
    outputs.append(run(etl, "--config", config, "--verbose"))
    outputs.append(run(etl, "--config", config, "--check-only", "--verbose"))
    # failures too: a refused connection and a failed check
    broken = write_config(tmp_path, with_password(re.sub(r"port=\d+", "port=1", dsn)), generated)
    monkeypatch.setattr(warehouse, "FIRST_RETRY_DELAY_SECONDS", 0.01)
    outputs.append(run(etl, "--config", broken))
    everything = "\n".join(out for _, out in outputs)
    assert [code for code, _ in outputs] == [0, 0, 0, 1]
    for statement in (
        "pg_advisory_xact_lock",
        "TRUNCATE staging_events",
        "COPY staging_events (",
        "INSERT INTO songplays",
        "SELECT COUNT(*) FROM songplays",
        "CREATE TABLE IF NOT EXISTS",
    ):
        assert statement in everything  # --verbose printed every kind of statement
    for secret in (PASSWORD, AWS_SECRET, AWS_TOKEN):
        assert secret not in everything


def test_password_in_a_database_error_is_masked(generated, run, tmp_path, dsn, monkeypatch):
    from conftest import write_config

    config = write_config(tmp_path, with_password(dsn), generated)
    config.write_text(config.read_text() + f"\n[CHECK leaky]\nSQL = SELECT '{PASSWORD}'\nEXPECTED = 0\n")
    assert run(create_tables, "--config", config)[0] == 0
    code, out = run(etl, "--config", config)
    assert code == 1
    assert "check failed: leaky: expected 0, found ********" in out
    assert PASSWORD not in out


def test_password_echoed_by_a_database_error_is_masked(generated, run, tmp_path, dsn):
    from conftest import write_config

    config = write_config(tmp_path, with_password(dsn), generated)
    config.write_text(
        config.read_text() + f"\n[CHECK echoes]\nSQL = SELECT CAST('{PASSWORD}' AS INTEGER)\nEXPECTED = 0\n"
    )
    assert run(create_tables, "--config", config)[0] == 0
    code, out = run(etl, "--config", config)
    assert code == 1
    assert 'invalid input syntax for type integer: "********"' in out
    assert PASSWORD not in out


def test_secrets_are_read_from_the_environment(tmp_path, monkeypatch, generated):
    from conftest import write_config

    monkeypatch.setenv("AWS_SESSION_TOKEN", AWS_TOKEN)
    config = load_config(write_config(tmp_path, "host=h dbname=d", generated))
    assert AWS_TOKEN in config.secrets()


def keyvalue_with(dsn, password):
    return f"{dsn} password='{password}'"


def uri_of(dsn, login, query=()):
    """The fixture's key/value DSN as a postgresql:// URI (host and port as parameters)."""
    parts = parse_dsn(dsn)
    pairs = [f"{name}={quote(parts[name], safe='')}" for name in ("host", "port") if name in parts]
    return f"postgresql://{login}@/{quote(parts['dbname'])}?{'&'.join([*pairs, *query])}"


def uri_with_login(dsn, password):
    return uri_of(dsn, f"{quote(parse_dsn(dsn)['user'])}:{password}")


def uri_with_query(dsn, password):
    return uri_of(dsn, quote(parse_dsn(dsn)["user"]), [f"password={password}"])


PASSWORDS_AS_WRITTEN = [
    pytest.param(keyvalue_with, "Zebra\\'Pw-77", "Zebra'Pw-77", id="key/value, escaped quote"),
    pytest.param(keyvalue_with, "Zebra Pw-77", "Zebra Pw-77", id="key/value, space in quotes"),
    pytest.param(uri_with_login, "Zebra%40Pw-77", "Zebra@Pw-77", id="URI user:password@, encoded"),
    pytest.param(uri_with_query, "Zebra%2FPw%2077", "Zebra/Pw 77", id="URI ?password=, encoded"),
]


@pytest.mark.parametrize("dsn_with, written, clear", PASSWORDS_AS_WRITTEN)
def test_the_password_is_a_secret_as_libpq_reads_it_and_as_written(
    dsn_with, written, clear, generated, tmp_path, dsn
):
    from conftest import write_config

    config = load_config(write_config(tmp_path, dsn_with(dsn, written), generated))
    assert {clear, written} <= set(config.secrets())


@pytest.mark.parametrize("dsn_with, written, clear", PASSWORDS_AS_WRITTEN)
def test_the_password_libpq_reads_never_appears_in_any_output(
    dsn_with, written, clear, generated, run, tmp_path, dsn
):
    """A check whose result is the password, and one whose error message quotes it: the
    password is masked as libpq reads it (unquoted, unescaped, decoded) and as written."""
    from conftest import write_config

    assert parse_dsn(dsn_with(dsn, written))["password"] == clear  # what the server is sent
    config = write_config(tmp_path, dsn_with(dsn, written), generated)
    # The checks build the password from hex, so --verbose cannot print it in any form.
    as_text = f"convert_from(decode('{clear.encode().hex()}', 'hex'), 'UTF8')"
    config.write_text(
        config.read_text()
        + f"\n[CHECK returns it]\nSQL = SELECT {as_text}\nEXPECTED = 0\n"
        + f"\n[CHECK quotes it]\nSQL = SELECT CAST({as_text} AS INTEGER)\nEXPECTED = 0\n"
    )
    outputs = [run(create_tables, "--config", config, "--verbose")]
    outputs.append(run(etl, "--config", config, "--verbose"))
    everything = "\n".join(out for _, out in outputs)
    assert [code for code, _ in outputs] == [0, 1], everything
    assert "check failed: returns it: expected 0, found ********" in everything
    assert (
        'quotes it: expected 0, found error: invalid input syntax for type integer: "********"' in everything
    )
    assert clear not in everything and written not in everything


HOSTILE_VALUES = [
    ("ARN", "arn:aws:iam::123456789012:role/x'; DROP TABLE songplays; --"),
    ("LOG_DATA", "s3://bucket/log'; DROP TABLE songplays; --"),
    ("REGION", "us-west-2'; DROP TABLE songplays; --"),
    ("LOG_JSONPATH", "s3://b/p.json' ; DELETE FROM users; --"),
]


@pytest.mark.parametrize("key, value", HOSTILE_VALUES)
def test_hostile_config_value_is_refused_before_any_connection(key, value, run, tmp_path, monkeypatch):
    """The value never reaches a statement: the config is refused, naming the key, and
    no connection is even tried (the quoting below is the second line of defence)."""
    connections = []
    monkeypatch.setattr(warehouse, "connect", connections.append)
    config = tmp_path / "hostile.cfg"
    values = {
        "ARN": "arn:aws:iam::123456789012:role/dwhRole",
        "LOG_DATA": "s3://udacity-dend/log_data",
        "REGION": "us-west-2",
        "LOG_JSONPATH": "s3://udacity-dend/log_json_path.json",
    }
    values[key] = value
    config.write_text(
        "[ETL]\nTARGET = redshift\n[CLUSTER]\nHOST = 127.0.0.1\nDB_NAME = x\nDB_USER = x\n"
        f"DB_PASSWORD = x\n[IAM_ROLE]\nARN = {values['ARN']}\n[S3]\nLOG_DATA = {values['LOG_DATA']}\n"
        f"SONG_DATA = s3://udacity-dend/song_data\nLOG_JSONPATH = {values['LOG_JSONPATH']}\n"
        f"REGION = {values['REGION']}\n"
    )
    code, out = run(etl, "--config", config)
    assert code == 2
    (error,) = [line for line in out.splitlines() if line.startswith("error:")]
    assert key in error
    assert connections == []


@pytest.mark.parametrize("value", ["x'; DROP TABLE songplays; --", "a\\'b", "it's"])
def test_quoting_keeps_a_value_inside_its_literal(value):
    sql = sql_queries.copy_from_s3_sql(sql_queries.STAGING_SONGS, value, value, value, "auto", 0)
    statements = sqlglot.parse(sql, read="redshift")
    assert len(statements) == 1 and statements[0].key == "copy"


def test_quoted_literal_reads_back_as_the_value_on_postgres(dsn):
    hostile = "x'; DROP TABLE t; -- \\ end"
    conn = psycopg2.connect(dsn)
    with conn.cursor() as cur:
        cur.execute("SET standard_conforming_strings = off")  # Redshift-like: backslash escapes
        cur.execute(f"SELECT {sql_queries.quote_literal(hostile)}")
        assert cur.fetchone() == (hostile,)
    conn.close()


def test_transient_connection_failures_are_retried(generated, config_for, monkeypatch, run):
    real_connect = warehouse._connect_once
    failures = iter([psycopg2.OperationalError("could not connect: Connection refused")] * 2)

    def flaky(config, login=None):
        error = next(failures, None)
        if error:
            raise error
        return real_connect(config, login)

    monkeypatch.setattr(warehouse, "_connect_once", flaky)
    monkeypatch.setattr(warehouse, "FIRST_RETRY_DELAY_SECONDS", 0.01)
    code, out = run(create_tables, "--config", config_for(generated))
    assert code == 0, out
    assert "connection failed (attempt 1 of 4): could not connect: Connection refused; retrying in" in out
    assert "attempt 2 of 4" in out and "attempt 3 of 4" not in out


def test_unreachable_server_gives_up_after_bounded_retries(generated, tmp_path, dsn, monkeypatch, run):
    from conftest import write_config

    monkeypatch.setattr(warehouse, "FIRST_RETRY_DELAY_SECONDS", 0.01)
    config = write_config(tmp_path, re.sub(r"port=\d+", "port=1", dsn), generated)
    code, out = run(etl, "--config", config)
    assert code == 1
    assert out.count("connection failed (attempt") == 3
    assert "error: cannot connect to the local warehouse:" in out
    assert "Traceback" not in out


def test_retries_wait_twice_as_long_each_time(generated, tmp_path, dsn, monkeypatch, run):
    from conftest import write_config

    waits = []
    monkeypatch.setattr(warehouse.time, "sleep", waits.append)
    config = write_config(tmp_path, re.sub(r"port=\d+", "port=1", dsn), generated)
    assert run(etl, "--config", config)[0] == 1
    first = warehouse.FIRST_RETRY_DELAY_SECONDS
    assert waits == [first, 2 * first, 4 * first]


def test_a_wrong_password_is_not_retried(generated, config_for, monkeypatch, run):
    """The test server trusts local connections, so its refusal is played here, in the
    words PostgreSQL uses."""
    attempts = []

    def refused(config, login=None):
        attempts.append(config)
        raise psycopg2.OperationalError('FATAL:  password authentication failed for user "sparkify"')

    monkeypatch.setattr(warehouse, "_connect_once", refused)
    code, out = run(etl, "--config", config_for(generated))
    assert code == 1
    assert len(attempts) == 1 and "retrying" not in out
    assert "error: cannot connect to the local warehouse: FATAL:  password authentication failed" in out


def test_wrong_database_is_not_retried(generated, tmp_path, dsn, monkeypatch, run):
    from conftest import write_config

    config = write_config(tmp_path, dsn + "_nope", generated)
    code, out = run(etl, "--config", config)
    assert code == 1
    assert "connection failed" not in out
    assert "does not exist" in out
