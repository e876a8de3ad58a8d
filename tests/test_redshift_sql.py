"""The statements sent to Redshift, as text: every one passes the statement gate
(tests/redshift_gate.py, in tests/test_redshift_gate.py); the PostgreSQL DDL matches the
Redshift DDL. (The same transform text runs for real on PostgreSQL in the other tests.)"""

import re
from datetime import date

import redshift_gate

import sql_queries
from sparkify.config import Config
from sparkify.redshift import plan_copies
from sparkify.s3 import DataKeys, S3Object

ROLE = "arn:aws:iam::123456789012:role/dwhRole"
REDSHIFT_VALUES = {
    ("ETL", "TARGET"): "redshift",
    ("ETL", "MAXERROR"): "0",
    ("ETL", "LOCK_TIMEOUT_SECONDS"): "60",
    ("IAM_ROLE", "ARN"): ROLE,
    ("S3", "REGION"): "us-west-2",
    ("S3", "LOG_DATA"): "s3://udacity-dend/log_data",
    ("S3", "SONG_DATA"): "s3://udacity-dend/song_data",
    ("S3", "LOG_JSONPATH"): "s3://udacity-dend/log_json_path.json",
}
REDSHIFT_CONFIG = Config("dwh.cfg", {**REDSHIFT_VALUES, ("S3", "STAGING_PREFIX"): "s3://my-staging/etl"}, [])
LISTINGS = {
    "song_data": DataKeys(
        "udacity-dend", "song_data/", [S3Object("song_data/A/TRA.json", 300, "e1")], [], []
    ),
    "log_data": DataKeys(
        "udacity-dend",
        "log_data/",
        [
            S3Object("log_data/2018/11/2018-11-01-events.json", 9000, "e2"),
            S3Object("log_data/2018/11/2018-11-02-events.json.gz", 900, "e3"),
        ],
        [],
        [],
    ),
}


def planned_copies(config=REDSHIFT_CONFIG):
    return {
        copy.source.rsplit("/", 1)[-1]: copy.sql(config) for copy in plan_copies(config, LISTINGS, "run1")
    }


def redshift_statements():
    engine = sql_queries.REDSHIFT
    tables = sql_queries.ALL_TABLES
    yield from (sql_queries.create_table_sql(t, engine) for t in tables)
    yield from (sql_queries.drop_table_sql(t) for t in tables)
    yield from (sql_queries.empty_staging_sql(t, engine) for t in sql_queries.STAGING_TABLES)
    yield from planned_copies().values()
    yield from (step.sql for step in sql_queries.transform_plan(engine))
    for scope in (sql_queries.WHOLE_TABLES, sql_queries.THIS_RUN):
        yield from (sql for _, sql, _ in sql_queries.quality_checks(scope))
    yield from sql_queries.run_lock_statements(engine, 60)
    yield sql_queries.RUN_LOCK_TABLE_CREATE
    yield from sql_queries.SERVER_NOW_STATEMENTS
    yield sql_queries.LOAD_ERRORS_SQL
    yield sql_queries.SERVERLESS_LOAD_ERRORS_SQL
    yield sql_queries.INVALID_USER_ID_EVENTS_DECLARE
    yield sql_queries.INVALID_USER_ID_EVENTS_FETCH
    yield sql_queries.INVALID_USER_ID_EVENTS_CLOSE
    yield sql_queries.INVALID_USER_ID_EVENTS_DELETE
    yield sql_queries.TABLES_OWNED_BY_OTHERS_SQL
    yield from (sql for _, sql in sql_queries.table_grants(engine, "analysts", "operators", ("songplays",)))
    yield sql_queries.EXISTING_ROLES_SQL[engine.role_catalogs]
    yield sql_queries.EXISTING_MEMBERS_SQL[engine.role_catalogs]
    yield sql_queries.EXISTING_USERS_SQL
    yield sql_queries.tables_owned_by_others_sql("%s")
    yield sql_queries.EXISTING_TABLES_SQL
    yield sql_queries.create_role_sql("analysts")
    password = "'Loader-Secret-42'"  # a parameter, as psycopg2 sends it
    for user in ("sparkify_loader", "IAMR:etl-role"):
        yield from (
            sql_queries.create_user_sql(user, engine, with_password).replace("%s", password)
            for with_password in (True, False)
        )
        yield sql_queries.alter_password_sql(user).replace("%s", password)
        yield sql_queries.grant_role_sql("analysts", user, engine)
        yield from sql_queries.schema_privilege_statements(user)
        yield sql_queries.owner_to_sql("songplays", user)


def redshift_problems(sql):
    """What Amazon's Redshift documentation does not allow in sql (tests/redshift_gate.py:
    each command's synopsis, the documented functions and types, the unsupported
    PostgreSQL features); a %s parameter stands for a value."""
    return redshift_gate.problems(sql.replace("%s", "'2018-11-05'"))


# Every statement of redshift_statements() passes the gate: tests/test_redshift_gate.py.


def normalised(sql):
    return " ".join(sql.split())


def test_events_copy_reads_a_manifest_with_jsonpaths_and_epoch_millis():
    """One COPY per log file, with the columns the JSONPaths fill: source_file is not one."""
    sql = planned_copies()["log_data-00000.manifest"]
    columns = ", ".join(name for name, _ in sql_queries.STAGING_EVENTS.copied_columns)
    assert "source_file" not in columns
    assert normalised(sql) == normalised(f"""
        COPY staging_events ({columns}) FROM 's3://my-staging/etl/runs/run1/log_data-00000.manifest'
        IAM_ROLE '{ROLE}' REGION 'us-west-2'
        FORMAT AS JSON 's3://udacity-dend/log_json_path.json'
        MANIFEST TIMEFORMAT 'epochmillisecs'
        TRUNCATECOLUMNS BLANKSASNULL EMPTYASNULL COMPUPDATE OFF STATUPDATE ON MAXERROR 0""")


def test_every_log_file_gets_a_copy_of_its_own_and_gzip_ones_say_so():
    copies = [
        copy for copy in plan_copies(REDSHIFT_CONFIG, LISTINGS, "run1") if copy.dataset.name == "log_data"
    ]
    assert [copy.file for copy in copies] == [item.key for item in LISTINGS["log_data"].files]
    assert "MANIFEST GZIP" in normalised(planned_copies()["log_data-00001.manifest"])
    assert "GZIP" not in planned_copies()["log_data-00000.manifest"]


def test_songs_copy_uses_json_auto():
    sql = planned_copies()["song_data.manifest"]
    assert "FORMAT AS JSON 'auto'" in sql and "TIMEFORMAT" not in sql


def test_maxerror_is_capped_at_redshifts_limit():
    config = Config("c", {**REDSHIFT_CONFIG._values, ("ETL", "MAXERROR"): "250000"}, [])
    assert "MAXERROR 100000" in planned_copies(config)["song_data.manifest"]


def test_redshift_ddl_carries_distribution_and_sort_keys():
    ddl = {
        t.name: normalised(sql_queries.create_table_sql(t, sql_queries.REDSHIFT))
        for t in sql_queries.STAR_TABLES
    }
    assert ddl["songplays"].endswith("DISTSTYLE KEY DISTKEY(start_time) SORTKEY(start_time)")
    assert ddl["time"].endswith("DISTKEY(start_time) SORTKEY(start_time)")
    for small in ("users", "songs", "artists"):
        assert "DISTSTYLE ALL" in ddl[small]


def test_postgres_ddl_is_the_redshift_ddl_with_keys_and_without_layout():
    """Redshift declares no keys: it does not enforce them, and its planner trusts them."""
    for table in sql_queries.ALL_TABLES:
        redshift = sql_queries.create_table_sql(table, sql_queries.REDSHIFT)
        postgres = sql_queries.create_table_sql(table, sql_queries.POSTGRES)
        assert not re.search(r"DIST|SORTKEY", postgres)
        assert "PRIMARY KEY" not in redshift
        assert ("PRIMARY KEY" in postgres) == bool(table.primary_key)
        columns = [line for line in postgres.splitlines() if "PRIMARY KEY" not in line]
        without_keys = "\n".join(columns).replace("CREATE UNLOGGED TABLE", "CREATE TABLE").rstrip(",\n)")
        assert redshift.startswith(without_keys.replace(' COLLATE "C"', ""))  # text in byte order
        assert ("UNLOGGED" in postgres) == (table in sql_queries.STAGING_TABLES)


def test_only_postgres_inserts_songplays_in_key_order():
    def songplays_insert(engine):
        return next(
            step.sql for step in sql_queries.transform_plan(engine) if "INSERT INTO songplays" in step.sql
        )

    redshift, postgres = songplays_insert(sql_queries.REDSHIFT), songplays_insert(sql_queries.POSTGRES)
    assert "ORDER BY" not in redshift and postgres.rstrip().endswith("ORDER BY songplay_id")


def test_window_without_staging_prefix_copies_events_file_by_file(s3):
    from sparkify.s3 import list_data_keys

    s3.create_bucket(Bucket="sparkify-logs", CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    for day in (4, 5, 6, 7):
        key = f"log_data/2018/11/2018-11-{day:02d}-events.json"
        s3.put_object(Bucket="sparkify-logs", Key=key, Body=b"{}")
    s3.put_object(Bucket="sparkify-logs", Key="log_data/README.txt", Body=b"x")
    window = (date(2018, 11, 5), date(2018, 11, 6))
    listings = {**LISTINGS, "log_data": list_data_keys(s3, "s3://sparkify-logs/log_data", window)}
    copies = plan_copies(Config("c", REDSHIFT_VALUES, []), listings, "run1")
    assert [copy.source for copy in copies if copy.dataset.name == "log_data"] == [
        "s3://sparkify-logs/log_data/2018/11/2018-11-05-events.json",
        "s3://sparkify-logs/log_data/2018/11/2018-11-06-events.json",
    ]
