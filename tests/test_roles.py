"""Who may do what, with real roles: the admin makes them (sparkify.roles), the loader owns
and loads, analysts read the star and nothing else, operators read the history, the
ledger and the rejects; the database's own refusal is one line; a config that would give
analysts more is refused. Locally on PostgreSQL, and through aws_setup.py roles on the
Redshift stand-in."""

import base64
import hashlib
import hmac
import json
import uuid

import psycopg2
import psycopg2.errors
import pytest
from conftest import event, song, write_config
from psycopg2.extensions import parse_dsn
from test_redshift_path import make_bucket, upload, write_rs_config

import analytics
import aws_setup
import create_tables
import etl
import sql_queries
from sparkify import output, roles
from sparkify.errors import NotAllowed

LOADER, ANALYST, OPERATOR = "sparkify_loader", "sparkify_ana", "sparkify_ops"
ANALYSTS, OPERATORS = "sparkify_analysts", "sparkify_operators"
NAMES = {
    "LOADER": LOADER,
    "ANALYST": ANALYST,
    "OPERATOR": OPERATOR,
    "ANALYSTS": ANALYSTS,
    "OPERATORS": OPERATORS,
}
STAR = [table.name for table in sql_queries.STAR_TABLES]
NOT_FOR_ANALYSTS = [
    table.name
    for table in (*sql_queries.ALL_TABLES, sql_queries.ETL_RUNS)
    if table not in sql_queries.STAR_TABLES
]
OPERATOR_TABLES = [table.name for table in sql_queries.OPERATOR_TABLES]
NOT_FOR_OPERATORS = [name for name in NOT_FOR_ANALYSTS if name not in OPERATOR_TABLES]
PASSWORD = "Loader-Secret-42"


def as_user(dsn, user):
    return f"{dsn} user={user}"


@pytest.fixture(autouse=True)
def users_of_its_own(monkeypatch):
    """Roles and users of each test's own: PostgreSQL's belong to the whole server, so one
    another test made would hide one this test's admin step failed to make."""
    suffix = uuid.uuid4().hex[:6]
    for constant, name in NAMES.items():
        monkeypatch.setitem(globals(), constant, f"{name}_{suffix}")


def write_role_config(folder, dsn, data_dir, name="dwh.cfg", user=None, **roles_settings):
    """A local config that connects as user (default: the loader), with the admin's DSN
    and [ROLES]."""
    path = write_config(folder, as_user(dsn, user or LOADER), data_dir)
    settings = {
        "ANALYSTS": ANALYSTS,
        "OPERATORS": OPERATORS,
        "ANALYST_USERS": ANALYST,
        "OPERATOR_USERS": OPERATOR,
        **roles_settings,
    }
    text = path.read_text().replace("[LOCAL]\n", f"[LOCAL]\nADMIN_DSN = {dsn}\n")
    text += "[ROLES]\n" + "".join(f"{key} = {value}\n" for key, value in settings.items())
    target = path.with_name(name)
    path.unlink()
    target.write_text(text)
    return target


def attempt(dsn, user, sql):
    """None if user may run sql; else the database's error."""
    conn = psycopg2.connect(as_user(dsn, user))
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
        conn.rollback()
        return None
    except psycopg2.Error as error:
        return error
    finally:
        conn.close()


def refused(dsn, user, sql):
    error = attempt(dsn, user, sql)
    return isinstance(error, psycopg2.errors.InsufficientPrivilege)


def owners(query):
    rows = query("SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public'")
    return dict(rows)


@pytest.fixture
def warehouse_with_roles(dsn, tmp_path, generated, run):
    """The admin made the roles; the loader created the tables and loaded every day."""
    config = write_role_config(tmp_path, dsn, generated)
    code, out = run(roles, "--config", config)
    assert code == 0, out
    code, out = run(create_tables, "--config", config)
    assert code == 0, out
    code, out = run(etl, "--config", config)
    assert code == 0, out
    return config


def test_the_loader_owns_every_table_and_loads_in_full_and_day_by_day(dsn, tmp_path, dataset, run, query):
    data = dataset(
        songs=[song("S1", "Song", "Artist")],
        days={"2018-11-01": [event(1541105830796, song="Song", artist="Artist", length=200.0)]},
    )
    config = write_role_config(tmp_path, dsn, data)
    assert run(roles, "--config", config)[0] == 0
    code, out = run(create_tables, "--config", config)
    assert code == 0, out
    assert run(etl, "--config", config)[0] == 0
    assert query("SELECT COUNT(*) FROM songplays") == [(1,)]
    day = data / "log_data" / "2018" / "11" / "2018-11-02-events.json"
    day.write_text(
        json.dumps(event(1541205830796, user="2", song="Song", artist="Artist", length=200.0)) + "\n"
    )
    code, out = run(etl, "--config", config)
    assert code == 0, out
    assert query("SELECT COUNT(*) FROM songplays") == [(2,)]
    tables = owners(query)
    assert {tables[name] for name in (*(t.name for t in sql_queries.ALL_TABLES), "etl_runs")} == {LOADER}


def test_an_analyst_reads_the_star_and_nothing_else_and_writes_nothing(warehouse_with_roles, dsn):
    for name in STAR:
        assert attempt(dsn, ANALYST, f"SELECT * FROM {name} LIMIT 1") is None, name
    for name in NOT_FOR_ANALYSTS:
        assert refused(dsn, ANALYST, f"SELECT * FROM {name} LIMIT 1"), name
    for sql in (
        "INSERT INTO songplays SELECT * FROM songplays LIMIT 1",
        "UPDATE users SET level = 'paid'",
        "DELETE FROM songs",
        "TRUNCATE time",
        "CREATE TABLE mine (x INTEGER)",
        "ALTER TABLE artists ADD COLUMN x INTEGER",
    ):
        assert refused(dsn, ANALYST, sql), sql
    assert isinstance(attempt(dsn, ANALYST, "DROP TABLE songplays"), psycopg2.errors.InsufficientPrivilege)


def test_an_operator_reads_the_history_ledger_and_rejects_but_not_staging(warehouse_with_roles, dsn):
    for name in OPERATOR_TABLES:
        assert attempt(dsn, OPERATOR, f"SELECT * FROM {name} LIMIT 1") is None, name
    for name in NOT_FOR_OPERATORS:
        assert refused(dsn, OPERATOR, f"SELECT * FROM {name} LIMIT 1"), name
    assert refused(dsn, OPERATOR, "DELETE FROM load_rejects")
    assert refused(dsn, OPERATOR, "INSERT INTO etl_runs SELECT * FROM etl_runs")


def test_analytics_runs_as_an_analyst_and_etl_as_one_is_refused_in_one_line(
    warehouse_with_roles, dsn, tmp_path, generated, run
):
    analyst = write_role_config(tmp_path, dsn, generated, name="analyst.cfg", user=ANALYST)
    code, out = run(analytics, "--config", analyst, "top_songs", "--format", "csv")
    assert code == 0, out
    assert out.startswith("title,artist,plays,matched_plays\n") and len(out.splitlines()) > 1, out
    for script, words in ((etl, "permission denied"), (create_tables, "must be owner")):
        code, out = run(script, "--config", analyst)
        assert code == 2, out
        errors = [line for line in out.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and words in errors[0], out
        assert "Traceback" not in out
    operator = write_role_config(tmp_path, dsn, generated, name="operator.cfg", user=OPERATOR)
    code, out = run(etl, "--config", operator, "--history")
    assert code == 0, out
    assert "committed" in out
    code, out = run(etl, "--config", operator, "--status")
    assert code == 0, out
    assert "the warehouse is up to date" in out


def test_create_tables_keeps_the_grants_true_and_follows_analyst_tables(
    warehouse_with_roles, dsn, tmp_path, generated, run, query
):
    query(f"GRANT SELECT ON etl_runs TO {ANALYSTS}")  # granted by hand meanwhile
    narrowed = write_role_config(tmp_path, dsn, generated, ANALYST_TABLES="songplays, songs, artists, time")
    code, out = run(create_tables, "--config", narrowed)
    assert code == 0, out
    assert attempt(dsn, ANALYST, "SELECT * FROM songplays") is None
    assert refused(dsn, ANALYST, "SELECT * FROM users")
    assert refused(dsn, ANALYST, "SELECT * FROM etl_runs")
    assert refused(dsn, ANALYST, "SELECT * FROM load_rejects")
    assert attempt(dsn, OPERATOR, "SELECT * FROM load_rejects") is None
    code, out = run(
        analytics, "--config", write_role_config(tmp_path, dsn, generated, name="a.cfg", user=ANALYST)
    )
    assert code == 2 and "permission denied for table users" in out, out
    with pytest.raises(NotAllowed, match="permission denied for table users"):  # the notebook's way
        analytics.answer("most_active_users", tmp_path / "a.cfg")


def test_an_older_warehouse_is_handed_to_the_loader(dsn, tmp_path, generated, run, query):
    (tmp_path / "admin").mkdir()
    admin = write_config(tmp_path / "admin", dsn, generated)
    assert run(create_tables, "--config", admin)[0] == 0  # made by the admin, as before roles
    assert set(owners(query).values()) != {LOADER}
    config = write_role_config(tmp_path, dsn, generated)
    code, out = run(roles, "--config", config)
    assert code == 0, out
    assert "handed songplays to sparkify_loader" in out
    tables = owners(query)
    assert {tables[t.name] for t in sql_queries.ALL_TABLES} == {LOADER}
    assert attempt(dsn, ANALYST, "SELECT * FROM songplays") is None
    code, out = run(etl, "--config", config)
    assert code == 0, out


def test_roles_run_again_do_no_harm(warehouse_with_roles, run):
    code, out = run(roles, "--config", warehouse_with_roles)
    assert code == 0, out
    assert "created" not in out and f"granted {ANALYSTS} to" not in out  # memberships read first


def test_the_loaders_password_is_set_and_never_printed(dsn, tmp_path, generated, run, query):
    config = write_role_config(tmp_path, dsn, generated)
    config.write_text(config.read_text().replace(f"user={LOADER}", f"user={LOADER} password={PASSWORD}"))
    for args in (("--dry-run",), ("--verbose",), ("--verbose",)):
        code, out = run(roles, "--config", config, *args)
        assert code == 0, out
        assert PASSWORD not in out
    assert "PASSWORD %s" in run(roles, "--config", config, "--dry-run")[1]
    (stored,) = query("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (LOADER,))[0]
    assert scram_matches(stored, PASSWORD), stored


def scram_matches(stored, password):
    """Does PostgreSQL's SCRAM-SHA-256 verifier (RFC 5802/7677) hold this password? The
    test server trusts every login, so the stored verifier is what shows the password."""
    method, iterations_and_salt, keys = stored.split("$")
    iterations, salt = iterations_and_salt.split(":")
    stored_key = keys.split(":")[0]
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(iterations))
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    return method == "SCRAM-SHA-256" and hashlib.sha256(client_key).digest() == base64.b64decode(stored_key)


@pytest.mark.parametrize(
    "settings, words",
    [
        ({"ANALYST_TABLES": "songplays, load_rejects"}, "ANALYST_TABLES names load_rejects"),
        ({"ANALYST_TABLES": "staging_events"}, "analysts may read only the star"),
        ({"ANALYST_USERS": "{ANALYST}, {LOADER}"}, "is the loader, who owns every table"),
        ({"ANALYST_USERS": "{OPERATOR}"}, "is also an operator"),
        ({"ANALYSTS": "{OPERATORS}"}, "give them two roles"),
        ({"ANALYSTS": "{LOADER}"}, "has the name of a user"),
        ({"ANALYST_USERS": "Robert'); DROP TABLE songs; --"}, "is not a database name"),
        ({"ANALYST_USERS": "public"}, "is not a database name"),
        ({"ANALYST_USERS": "a" * 64}, "is not a database name"),
        ({"ANALYST_USERS": "{ADMIN}"}, "is the admin, who reads every table"),
        ({"OPERATOR_USERS": "{OPERATOR}, {LOADER}"}, "cannot be an operator too"),
        ({"LOADER": "Loader-X"}, "the loader's user name 'Loader-X' is not a database name"),
    ],
)
def test_a_config_granting_analysts_more_than_the_star_is_refused(
    settings, words, dsn, tmp_path, generated, run, query
):
    names = {constant: globals()[constant] for constant in NAMES}
    names["ADMIN"] = parse_dsn(dsn)["user"]
    settings = {key: value.format(**names) for key, value in settings.items()}
    loader = settings.pop("LOADER", None)
    config = write_role_config(tmp_path, dsn, generated, user=loader, **settings)
    code, out = run(roles, "--config", config)
    assert code == 2, out
    assert words in out, out
    assert "Traceback" not in out
    assert len([line for line in out.splitlines() if line]) == 1, out


def test_without_roles_create_tables_says_who_makes_them(dsn, tmp_path, generated, run, query):
    config = write_role_config(tmp_path, dsn, generated, user="postgres", ANALYSTS="nobody_made_this")
    code, out = run(create_tables, "--config", config)
    assert code == 1, out
    assert 'role "nobody_made_this" does not exist' in out and "sparkify.roles" in out
    assert query("SELECT COUNT(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]


# --- Redshift, on the stand-in: aws_setup.py roles as the master user ------------------------


@pytest.fixture
def redshift_with_roles(s3_server, standin, tmp_path, generated, run, monkeypatch):
    import redshift_standin

    redshift_standin.install(standin, monkeypatch.setattr, as_config_users=True)
    upload(s3_server, "sparkify-data", generated)
    make_bucket(s3_server, "sparkify-staging")
    monkeypatch.setenv("SPARKIFY_DWH_DWH_DB_PASSWORD", "Master-Pw-123")

    def config_as(user, name):
        path = write_rs_config(
            tmp_path,
            CLUSTER_DB_USER=user,
            ROLES_ANALYSTS=ANALYSTS,
            ROLES_OPERATORS=OPERATORS,
            ROLES_ANALYST_USERS=ANALYST,
            ROLES_OPERATOR_USERS=OPERATOR,
            DWH_DWH_DB_USER="postgres",
        )
        return path.rename(path.with_name(name))

    return config_as


def test_on_redshift_aws_setup_makes_the_roles_and_the_analyst_reads_only_the_star(
    redshift_with_roles, standin, run, query
):
    loader = redshift_with_roles(LOADER, "loader.cfg")
    code, out = run(aws_setup, "roles", "--config", loader, "--verbose")
    assert code == 0, out
    assert f"CREATE ROLE {ANALYSTS}" in out and f"CREATE USER {ANALYST} PASSWORD DISABLE" in out  # --verbose
    assert "Master-Pw-123" not in out and "Standin-Pw-1" not in out
    assert output.masked("Master-Pw-123") == output.MASK  # the admin's password joined the secrets
    code, out = run(create_tables, "--config", loader, "--verbose")
    assert code == 0, out
    assert f"GRANT SELECT ON TABLE songplays TO ROLE {ANALYSTS}" in out  # as sent (r_GRANT.html)
    assert f"REVOKE ALL ON TABLE etl_runs FROM ROLE {OPERATORS}" in out
    code, out = run(etl, "--config", loader)
    assert code == 0, out
    tables = owners(query)
    assert {tables[t.name] for t in sql_queries.ALL_TABLES} == {LOADER}
    # the password went as r_CREATE_USER.html's MD5 form, never in clear
    md5 = "md5" + hashlib.md5(("Standin-Pw-1" + LOADER).encode()).hexdigest()
    assert query("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (LOADER,)) == [(md5,)]
    assert attempt(standin, ANALYST, "SELECT COUNT(*) FROM songplays") is None
    for name in NOT_FOR_ANALYSTS:
        assert refused(standin, ANALYST, f"SELECT * FROM {name} LIMIT 1"), name
    assert attempt(standin, OPERATOR, "SELECT * FROM load_rejects") is None
    assert refused(standin, ANALYST, "CREATE TABLE mine (x INTEGER)")  # Redshift lets PUBLIC create
    assert refused(standin, ANALYST, "DELETE FROM songplays")
    analyst = redshift_with_roles(ANALYST, "analyst.cfg")
    code, out = run(analytics, "--config", analyst)
    assert code == 0, out
    code, out = run(etl, "--config", analyst)
    assert code == 2 and "Traceback" not in out, out


def test_aws_setup_refuses_a_config_granting_analysts_more_than_the_star(
    redshift_with_roles, run, monkeypatch
):
    monkeypatch.setenv("SPARKIFY_ROLES_ANALYST_TABLES", "songplays, load_rejects")
    code, out = run(aws_setup, "roles", "--config", redshift_with_roles(LOADER, "loader.cfg"))
    assert code == 2, out
    assert (
        out.startswith("error: ")
        and "ANALYST_TABLES names load_rejects" in out
        and len(out.splitlines()) == 1
    )


def test_a_loader_password_redshift_would_refuse_is_refused_unshown(redshift_with_roles, run, monkeypatch):
    monkeypatch.setenv("SPARKIFY_CLUSTER_DB_PASSWORD", "short@1A")
    code, out = run(aws_setup, "roles", "--config", redshift_with_roles(LOADER, "loader.cfg"))
    assert code == 2, out
    assert "is not a password Redshift accepts" in out and "short@1A" not in out


def test_on_redshift_iam_identities_are_quoted_users(redshift_with_roles, standin, run, query, monkeypatch):
    """Serverless's users are named after IAM identities: IAMR:<role> for the loader's,
    IAM:<user> for an analyst's."""
    loader, analyst = f"IAMR:etl_{LOADER}", f"IAM:alice_{ANALYST}"
    monkeypatch.setenv("SPARKIFY_ROLES_ANALYST_USERS", analyst)
    config = redshift_with_roles(loader, "loader.cfg")
    code, out = run(aws_setup, "roles", "--config", config, "--verbose")
    assert code == 0, out
    assert (
        f'CREATE USER "{analyst}" PASSWORD DISABLE' in out and f'GRANT ROLE {ANALYSTS} TO "{analyst}"' in out
    )
    assert run(create_tables, "--config", config)[0] == 0
    assert owners(query)["songplays"] == loader
    assert attempt(standin, analyst, "SELECT COUNT(*) FROM songplays") is None
    assert refused(standin, analyst, "SELECT COUNT(*) FROM load_rejects")
