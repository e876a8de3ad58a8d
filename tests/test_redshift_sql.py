"""Every statement sent to Redshift parses with sqlglot's Redshift dialect and uses
nothing Redshift lacks. (The same transform text runs for real on PostgreSQL in the
other tests.)"""

import re
from datetime import date

import pytest
import sqlglot
from sqlglot import exp

import sql_queries
from sparkify.config import Config
from sparkify.redshift import copy_statements

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
REDSHIFT_CONFIG = Config("dwh.cfg", REDSHIFT_VALUES, [])


def redshift_statements():
    engine = sql_queries.REDSHIFT
    tables = sql_queries.tables_for(engine)
    yield from (sql_queries.create_table_sql(t, engine) for t in tables)
    yield from (sql_queries.drop_table_sql(t) for t in tables)
    yield from (sql_queries.empty_staging_sql(t, engine) for t in sql_queries.STAGING_TABLES)
    yield from (sql for _, sql in copy_statements(REDSHIFT_CONFIG, (None, None)))
    yield from (sql for _, sql in sql_queries.TRANSFORM_STEPS)
    yield from (sql for _, sql, _ in sql_queries.QUALITY_CHECKS)
    yield sql_queries.RUN_LOCK_TABLE_CREATE


def redshift_problems(sql):
    """Constructs Redshift does not support, found in the parsed statement."""
    tree = sqlglot.parse_one(sql, read="redshift")
    problems = []
    if isinstance(tree, exp.Command):
        problems.append("not understood by the Redshift dialect")
    checks = {
        exp.OnConflict: "ON CONFLICT",
        exp.Returning: "RETURNING",
        exp.GenerateSeries: "generate_series",
        exp.JSONExtract: "JSON operator",
        exp.JSONExtractScalar: "JSON operator",
        exp.JSONBExtract: "JSON operator",
        exp.JSONBExtractScalar: "JSON operator",
    }
    for node_type, name in checks.items():
        if tree.find(node_type):
            problems.append(name)
    for distinct in tree.find_all(exp.Distinct):
        if distinct.args.get("on"):
            problems.append("DISTINCT ON")
    for data_type in tree.find_all(exp.DataType):
        if "SERIAL" in data_type.sql("postgres").upper():
            problems.append("SERIAL")
    for function in tree.find_all(exp.Anonymous):
        if function.name.lower() in {"generate_series", "jsonb_extract_path"}:
            problems.append(function.name)
    return problems


@pytest.mark.parametrize("sql", list(redshift_statements()), ids=lambda s: " ".join(s.split())[:60])
def test_redshift_statement_parses_and_uses_only_redshift_sql(sql):
    assert redshift_problems(sql) == []


@pytest.mark.parametrize(
    "sql, problem",
    [
        ("INSERT INTO users (user_id) SELECT 1 ON CONFLICT DO NOTHING", "ON CONFLICT"),
        ("SELECT DISTINCT ON (user_id) user_id FROM users", "DISTINCT ON"),
        ("INSERT INTO users (user_id) VALUES (1) RETURNING user_id", "RETURNING"),
        ("CREATE TABLE t (id SERIAL)", "SERIAL"),
        ("SELECT payload -> 'a' FROM t", "JSON operator"),
        ("SELECT * FROM generate_series(1, 3)", "generate_series"),
    ],
)
def test_lint_catches_what_redshift_lacks(sql, problem):
    assert problem in redshift_problems(sql)


def normalised(sql):
    return " ".join(sql.split())


def test_events_copy_uses_jsonpaths_and_epoch_millis():
    sql = dict(copy_statements(REDSHIFT_CONFIG, (None, None)))["staging_events"]
    assert normalised(sql) == normalised(f"""
        COPY staging_events FROM 's3://udacity-dend/log_data'
        IAM_ROLE '{ROLE}' REGION 'us-west-2'
        FORMAT AS JSON 's3://udacity-dend/log_json_path.json'
        TIMEFORMAT 'epochmillisecs'
        TRUNCATECOLUMNS BLANKSASNULL EMPTYASNULL COMPUPDATE OFF STATUPDATE OFF MAXERROR 0""")


def test_songs_copy_uses_json_auto():
    sql = dict(copy_statements(REDSHIFT_CONFIG, (None, None)))["staging_songs"]
    assert "FORMAT AS JSON 'auto'" in sql and "TIMEFORMAT" not in sql


def test_redshift_ddl_carries_distribution_and_sort_keys():
    ddl = {
        t.name: normalised(sql_queries.create_table_sql(t, sql_queries.REDSHIFT))
        for t in sql_queries.STAR_TABLES
    }
    assert ddl["songplays"].endswith("DISTSTYLE KEY DISTKEY(start_time) SORTKEY(start_time)")
    assert ddl["time"].endswith("DISTKEY(start_time) SORTKEY(start_time)")
    for small in ("users", "songs", "artists"):
        assert "DISTSTYLE ALL" in ddl[small]


def test_postgres_ddl_is_the_redshift_ddl_without_layout():
    for table in sql_queries.tables_for(sql_queries.REDSHIFT):
        redshift = sql_queries.create_table_sql(table, sql_queries.REDSHIFT)
        postgres = sql_queries.create_table_sql(table, sql_queries.POSTGRES)
        assert not re.search(r"DIST|SORTKEY", postgres)
        assert redshift.startswith(postgres.replace("CREATE UNLOGGED TABLE", "CREATE TABLE"))
        assert ("UNLOGGED" in postgres) == (table in sql_queries.STAGING_TABLES)


def test_window_copies_events_day_by_day(s3):
    s3.create_bucket(Bucket="sparkify-logs", CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    for day in (4, 5, 6, 7):
        key = f"log_data/2018/11/2018-11-{day:02d}-events.json"
        s3.put_object(Bucket="sparkify-logs", Key=key, Body=b"{}")
    s3.put_object(Bucket="sparkify-logs", Key="log_data/README.txt", Body=b"x")
    values = dict(REDSHIFT_VALUES)
    values[("S3", "LOG_DATA")] = "s3://sparkify-logs/log_data"
    statements = copy_statements(Config("c", values, []), (date(2018, 11, 5), date(2018, 11, 6)), s3)
    sources = [
        re.search(r"FROM '([^']*)'", sql).group(1) for table, sql in statements if table == "staging_events"
    ]
    assert sources == [
        "s3://sparkify-logs/log_data/2018/11/2018-11-05",
        "s3://sparkify-logs/log_data/2018/11/2018-11-06",
    ]
