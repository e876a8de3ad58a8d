"""AWS, against moto: infrastructure as code, temporary credentials, S3 sources,
song packing, and Redshift load diagnostics (formatted from a real PostgreSQL table)."""

import json
from pathlib import Path

import pytest

import aws_setup

CONFIG = """# my warehouse — comments and order must survive aws_setup.py
[ETL]
TARGET = redshift

[CLUSTER]
HOST = <filled in by aws_setup.py>
DB_NAME = sparkify
DB_USER = sparkify
DB_PORT = 5439

[IAM_ROLE]
ARN = <filled in by aws_setup.py>

[DWH]
DWH_CLUSTER_TYPE = multi-node
DWH_NUM_NODES = 2
DWH_NODE_TYPE = dc2.large
DWH_IAM_ROLE_NAME = sparkifyS3Read
DWH_CLUSTER_IDENTIFIER = sparkify-test
DWH_DB = sparkify
DWH_DB_USER = sparkify
DWH_PORT = 5439
DWH_INGRESS_CIDR = 203.0.113.7/32
"""
PASSWORD = "Sparkify-Pw-42"
BUCKET = "sparkify-staging-123456789012-us-west-2"  # moto's account


@pytest.fixture
def aws(monkeypatch):
    from moto import mock_aws

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-west-2",
        "SPARKIFY_DWH_DWH_DB_PASSWORD": PASSWORD,
        "MOTO_IAM_LOAD_MANAGED_POLICIES": "true",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield aws_setup.Clients()


@pytest.fixture
def dwh_config(tmp_path):
    path = tmp_path / "dwh.cfg"
    path.write_text(CONFIG)
    return path


def test_create_status_delete_and_delete_again(aws, dwh_config, capsys):
    assert aws_setup.main(["create", "--config", str(dwh_config), "--poll", "0"], aws) == 0
    out = capsys.readouterr().out
    assert "created IAM role sparkifyS3Read" in out
    assert "creating cluster sparkify-test" in out
    assert "allowed 203.0.113.7/32 to port 5439" in out
    assert PASSWORD not in out
    cluster = aws.redshift.describe_clusters(ClusterIdentifier="sparkify-test")["Clusters"][0]
    assert cluster["NumberOfNodes"] == 2 and cluster["NodeType"] == "dc2.large"
    role = aws.iam.get_role(RoleName="sparkifyS3Read")["Role"]
    assert cluster["IamRoles"][0]["IamRoleArn"] == role["Arn"]
    policies = aws.iam.list_attached_role_policies(RoleName="sparkifyS3Read")["AttachedPolicies"]
    assert [p["PolicyArn"] for p in policies] == [aws_setup.S3_READ_POLICY]
    assert f"created staging bucket {BUCKET} in us-west-2" in out
    s3 = aws.s3("us-west-2")
    assert s3.get_bucket_location(Bucket=BUCKET)["LocationConstraint"] == "us-west-2"
    s3.put_object(Bucket=BUCKET, Key="sparkify/runs/r1/log_data.manifest", Body=b"{}")  # left by a killed run

    assert aws_setup.main(["status", "--config", str(dwh_config)], aws) == 0
    out = capsys.readouterr().out
    assert f"cluster sparkify-test: available, endpoint {cluster['Endpoint']['Address']}:5439" in out
    assert f"IAM role sparkifyS3Read: {role['Arn']}" in out
    assert f"staging bucket {BUCKET} (us-west-2): exists" in out

    assert aws_setup.main(["delete", "--config", str(dwh_config), "--poll", "0"], aws) == 0
    out = capsys.readouterr().out
    assert "cluster sparkify-test deleted" in out and "deleted IAM role sparkifyS3Read" in out
    assert f"deleted staging bucket {BUCKET}" in out
    assert aws_setup.main(["delete", "--config", str(dwh_config), "--poll", "0"], aws) == 0
    out = capsys.readouterr().out
    assert "cluster sparkify-test does not exist" in out and "IAM role sparkifyS3Read does not exist" in out
    assert f"staging bucket {BUCKET} does not exist" in out


def test_create_twice_says_what_exists(aws, dwh_config, capsys):
    assert aws_setup.main(["create", "--config", str(dwh_config), "--poll", "0"], aws) == 0
    capsys.readouterr()
    assert aws_setup.main(["create", "--config", str(dwh_config), "--poll", "0"], aws) == 0
    out = capsys.readouterr().out
    assert "IAM role sparkifyS3Read already exists" in out
    assert "cluster sparkify-test already exists (available)" in out
    assert "203.0.113.7/32 already allowed to port 5439" in out
    assert f"staging bucket {BUCKET} already exists" in out
    assert len(aws.redshift.describe_clusters()["Clusters"]) == 1


def test_create_writes_host_and_role_into_the_config_keeping_the_rest(aws, dwh_config):
    assert aws_setup.main(["create", "--config", str(dwh_config), "--poll", "0"], aws) == 0
    text = dwh_config.read_text()
    cluster = aws.redshift.describe_clusters(ClusterIdentifier="sparkify-test")["Clusters"][0]
    assert f"HOST = {cluster['Endpoint']['Address']}" in text
    assert f"ARN = {aws.iam.get_role(RoleName='sparkifyS3Read')['Role']['Arn']}" in text
    assert f"STAGING_PREFIX = s3://{BUCKET}/sparkify" in text
    assert text.startswith("# my warehouse — comments and order must survive aws_setup.py\n[ETL]")
    assert text.count("[CLUSTER]") == 1 and "DB_NAME = sparkify" in text and "DWH_NUM_NODES = 2" in text


def test_the_staging_bucket_is_made_in_the_datas_region(aws, dwh_config):
    dwh_config.write_text(dwh_config.read_text() + "\n[S3]\nREGION = eu-west-1\n")
    assert aws_setup.main(["create", "--config", str(dwh_config), "--poll", "0"], aws) == 0
    bucket = "sparkify-staging-123456789012-eu-west-1"
    location = aws.s3("eu-west-1").get_bucket_location(Bucket=bucket)["LocationConstraint"]
    assert location == "eu-west-1"
    assert f"STAGING_PREFIX = s3://{bucket}/sparkify" in dwh_config.read_text()


def test_set_config_values_adds_missing_sections_and_keys():
    text = "[A]\n# keep me\nX = 1\n[B]\nY = 2\n"
    updated = aws_setup.set_config_values(text, {("B", "Z"): "3", ("A", "x"): "9", ("C", "K"): "v"})
    assert updated == "[A]\n# keep me\nx = 9\n[B]\nZ = 3\nY = 2\n\n[C]\nK = v\n"


def test_whole_internet_ingress_is_refused(aws, dwh_config, capsys):
    dwh_config.write_text(CONFIG.replace("203.0.113.7/32", "0.0.0.0/0"))
    assert aws_setup.main(["create", "--config", str(dwh_config), "--poll", "0"], aws) == 2
    assert "opens the cluster to the whole internet" in capsys.readouterr().out
    assert aws.redshift.describe_clusters()["Clusters"] == []
    assert (
        aws_setup.main(["create", "--config", str(dwh_config), "--poll", "0", "--allow-anywhere"], aws) == 0
    )


@pytest.mark.parametrize(
    "password, message",
    [
        (None, "[DWH] DWH_DB_PASSWORD is required"),
        ("short", "[DWH] DWH_DB_PASSWORD must be 8-64 printable characters"),
    ],
)
def test_create_needs_a_valid_master_password(password, message, aws, dwh_config, capsys, monkeypatch):
    if password is None:
        monkeypatch.delenv("SPARKIFY_DWH_DWH_DB_PASSWORD")
    else:
        monkeypatch.setenv("SPARKIFY_DWH_DWH_DB_PASSWORD", password)
    assert aws_setup.main(["create", "--config", str(dwh_config)], aws) == 2
    assert message in capsys.readouterr().out


def test_status_without_credentials_is_one_line(dwh_config, capsys, monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
    assert aws_setup.main(["status", "--config", str(dwh_config)]) == 2
    assert "error: no AWS credentials found" in capsys.readouterr().out


# --- Temporary credentials --------------------------------------------------------------------


def redshift_config(host, password="", **cluster):
    from sparkify.config import Config

    values = {
        ("ETL", "TARGET"): "redshift",
        ("CLUSTER", "HOST"): host,
        ("CLUSTER", "DB_NAME"): "sparkify",
        ("CLUSTER", "DB_USER"): "analyst",
        ("CLUSTER", "DB_PASSWORD"): password,
        ("CLUSTER", "DB_PORT"): "5439",
        ("S3", "REGION"): "us-west-2",
    }
    values.update({("CLUSTER", key.upper()): value for key, value in cluster.items()})
    return Config("dwh.cfg", values, [])


def make_test_cluster(aws):
    aws.redshift.create_cluster(
        ClusterIdentifier="sparkify-test",
        NodeType="dc2.large",
        MasterUsername="admin",
        MasterUserPassword="Admin-Pw-1",
        ClusterType="single-node",
    )


def test_no_password_means_temporary_cluster_credentials(aws):
    from sparkify.warehouse import redshift_login

    make_test_cluster(aws)
    user, password = redshift_login(redshift_config("sparkify-test.abc.us-west-2.redshift.amazonaws.com"))
    assert user == "IAM:analyst" and len(password) > 10


def test_the_temporary_password_is_masked_in_whatever_is_printed(aws, capsys):
    """Learnt mid-run, the temporary password joins the secrets the console masks: a
    line that carries it (a driver's error, a user's check) prints stars."""
    import logging

    from sparkify.output import configure_logging, mask_secrets
    from sparkify.warehouse import redshift_login

    make_test_cluster(aws)
    configure_logging()
    mask_secrets([])
    _, password = redshift_login(redshift_config("sparkify-test.abc.us-west-2.redshift.amazonaws.com"))
    logging.getLogger("sparkify").error("the driver said: password=%s refused", password)
    out = capsys.readouterr()
    assert "the driver said: password=******** refused" in out.out + out.err
    assert password not in out.out + out.err


def test_temporary_credentials_ask_the_clusters_region_not_the_datas(aws):
    """The cluster is in eu-west-1, the data ([S3] REGION) in us-west-2."""
    import boto3

    from sparkify.warehouse import redshift_login

    boto3.client("redshift", region_name="eu-west-1").create_cluster(
        ClusterIdentifier="sparkify-eu",
        NodeType="dc2.large",
        MasterUsername="admin",
        MasterUserPassword="Admin-Pw-1",
        ClusterType="single-node",
    )
    user, _ = redshift_login(redshift_config("sparkify-eu.abc.eu-west-1.redshift.amazonaws.com"))
    assert user == "IAM:analyst"


def test_a_custom_domain_needs_the_cluster_region(tmp_path):
    from sparkify.errors import ConfigError
    from sparkify.redshift import cluster_region

    assert cluster_region(redshift_config("dwh.example.com", region="eu-central-1")) == "eu-central-1"
    with pytest.raises(ConfigError, match=r"\[CLUSTER\] REGION is needed"):
        cluster_region(redshift_config("dwh.example.com"))


@pytest.mark.parametrize(
    "host, setting, serverless",
    [
        ("wg.123456789012.us-west-2.redshift-serverless.amazonaws.com", "", True),
        ("c.abc.us-west-2.redshift.amazonaws.com", "", False),
        ("dwh.example.com", "true", True),
        ("wg.123456789012.us-west-2.redshift-serverless.amazonaws.com", "false", False),
    ],
)
def test_serverless_is_told_by_the_host_or_the_setting(host, setting, serverless):
    from sparkify.redshift import is_serverless

    assert is_serverless(redshift_config(host, serverless=setting)) is serverless


def test_a_configured_password_is_used_as_it_is():
    from sparkify.warehouse import redshift_login

    assert redshift_login(redshift_config("c.x.us-west-2.redshift.amazonaws.com", "Pw-1")) == (
        "analyst",
        "Pw-1",
    )


@pytest.mark.parametrize(
    "host, settings, asked",
    [
        (
            "sparkify-wg.123456789012.us-west-2.redshift-serverless.amazonaws.com",
            {},
            {"workgroupName": "sparkify-wg"},
        ),
        (
            "dwh.example.com",
            {"serverless": "true", "region": "us-west-2"},
            {"customDomainName": "dwh.example.com"},
        ),
    ],
)
def test_serverless_credentials_name_the_workgroup_or_the_custom_domain(host, settings, asked):
    import boto3
    from botocore.stub import Stubber

    from sparkify.redshift import temporary_credentials

    client = boto3.client(
        "redshift-serverless", region_name="us-west-2", aws_access_key_id="t", aws_secret_access_key="t"
    )
    with Stubber(client) as stub:
        stub.add_response(
            "get_credentials",
            {"dbUser": "IAMR:analyst", "dbPassword": "temporary-Pw", "expiration": "2030-01-01T00:00:00Z"},
            {**asked, "dbName": "sparkify", "durationSeconds": 900},
        )
        config = redshift_config(host, **settings)
        assert temporary_credentials(config, client) == ("IAMR:analyst", "temporary-Pw")


def test_unknown_cluster_credentials_error_is_one_line(aws, tmp_path, capsys):
    import etl

    config = tmp_path / "rs.cfg"
    config.write_text(
        "[ETL]\nTARGET = redshift\n[CLUSTER]\nHOST = nope.abc.us-west-2.redshift.amazonaws.com\n"
        "DB_NAME = x\nDB_USER = x\n[IAM_ROLE]\nARN = arn:aws:iam::123456789012:role/r\n[S3]\n"
        "LOG_DATA = s3://sparkify-data/log_data\nSONG_DATA = s3://sparkify-data/song_data\n"
        "LOG_JSONPATH = s3://sparkify-data/log_json_path.json\n"
    )
    assert etl.main(["--config", str(config)]) == 1
    assert "error: cannot get temporary Redshift credentials:" in capsys.readouterr().out


# --- Load diagnostics, against a real table shaped like stl_load_errors ----------------------


def test_load_errors_are_this_sessions_since_the_run_began(query, dsn):
    """Read by session and time: pg_last_copy_id() is not updated when the COPY's
    transaction rolls back. Another session's and an older error are not this run's."""
    import psycopg2
    from redshift_standin import SYSTEM_TABLES

    from sparkify.redshift import load_errors

    query(SYSTEM_TABLES)
    conn = psycopg2.connect(dsn)
    with conn.cursor() as cursor:
        session = conn.info.backend_pid
        rows = [
            (
                session,
                "2026-11-23 10:00:05",
                3,
                "useragent",
                1204,
                "String length exceeds DDL length",
                "M" * 300,
            ),
            (session, "2026-11-23 10:00:04", 17, "sessionid", 1207, "Invalid digit, Value 'a'", "abc"),
            (session, "2026-11-22 09:00:00", 1, "ts", 1206, "Invalid timestamp format", "x"),
            (session + 1, "2026-11-23 10:00:06", 2, "ts", 1206, "Invalid timestamp format", "y"),
        ]
        for pid, started, line, column, code, reason, raw in rows:
            cursor.execute(
                "INSERT INTO stl_load_errors (session, starttime, filename, line_number, colname, err_code,"
                " err_reason, raw_field_value)"
                " VALUES (%s, %s, 's3://b/log_data/day.json', %s, %s, %s, %s, %s)",
                (pid, started, line, column, code, reason, raw),
            )
        errors = load_errors(cursor, serverless=False, since="2026-11-23 10:00:00")
    conn.close()
    assert [error.describe() for error in errors] == [
        "s3://b/log_data/day.json line 17, column sessionid: error 1207 Invalid digit, Value 'a' "
        "(value 'abc')",
        "s3://b/log_data/day.json line 3, column useragent: error 1204 String length exceeds DDL length "
        "(value '" + "M" * 60 + "…')",
    ]


# --- S3 as a source for the local target ------------------------------------------------------


def upload_folder(client, bucket, folder, public=False):
    client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    if public:  # like udacity-dend: anyone may list and read
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": ["s3:GetObject", "s3:ListBucket"],
                    "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                }
            ],
        }
        client.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    extra = {"ACL": "public-read"} if public else None
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            client.upload_file(str(path), bucket, str(path.relative_to(folder)), ExtraArgs=extra)


@pytest.fixture(scope="module")
def many_songs(tmp_path_factory):
    """More song files than one page of ListObjectsV2 (1,000)."""
    import sample_data

    return sample_data.generate(tmp_path_factory.mktemp("many-songs"), events=300, songs=1005, seed=5, days=2)


@pytest.fixture(scope="module")
def few_songs(tmp_path_factory):
    import sample_data

    return sample_data.generate(tmp_path_factory.mktemp("few-songs"), events=300, songs=20, seed=5, days=3)


def s3_config(folder, dsn, bucket="sparkify-public", **s3_settings):
    lines = [
        "[ETL]",
        "TARGET = local",
        "[LOCAL]",
        f"DSN = {dsn}",
        "[S3]",
        f"LOG_DATA = s3://{bucket}/log_data",
        f"SONG_DATA = s3://{bucket}/song_data",
        f"LOG_JSONPATH = s3://{bucket}/log_json_path.json",
    ]
    lines += [f"{key.upper()} = {value}" for key, value in s3_settings.items()]
    path = folder / "s3.cfg"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_local_target_reads_a_public_bucket_unsigned_across_pages(aws, many_songs, dsn, tmp_path, run, query):
    import boto3

    import create_tables
    import etl

    upload_folder(boto3.client("s3", region_name="us-west-2"), "sparkify-public", many_songs, public=True)
    config = s3_config(tmp_path, dsn, anonymous="true")
    assert run(create_tables, "--config", config)[0] == 0
    code, out = run(etl, "--config", config)
    assert code == 0, out
    assert "download song_data 1005 objects from s3://sparkify-public/song_data" in out  # 2 pages
    assert query("SELECT COUNT(*) FROM staging_songs") == [(1005,)]
    assert query("SELECT COUNT(*) FROM staging_events") == [(300,)]


def test_unsigned_read_of_a_private_bucket_is_refused(aws, few_songs, dsn, tmp_path, run):
    import boto3

    import create_tables
    import etl

    upload_folder(boto3.client("s3", region_name="us-west-2"), "sparkify-private", few_songs)
    config = s3_config(tmp_path, dsn, bucket="sparkify-private", anonymous="true")
    assert run(create_tables, "--config", config)[0] == 0
    code, out = run(etl, "--config", config)
    assert code == 1 and "error: reading s3://sparkify-private/" in out


def test_s3_window_downloads_only_those_days(aws, few_songs, dsn, tmp_path, run):
    import boto3

    import create_tables
    import etl

    upload_folder(boto3.client("s3", region_name="us-west-2"), "sparkify-public", few_songs)
    config = s3_config(tmp_path, dsn)
    assert run(create_tables, "--config", config)[0] == 0
    code, out = run(etl, "--config", config, "--from", "2018-11-02", "--to", "2018-11-02")
    assert code == 0, out
    assert "download log_data 1 objects from s3://sparkify-public/log_data" in out


def test_missing_bucket_is_one_line(aws, dsn, tmp_path, run):
    import create_tables
    import etl

    config = s3_config(tmp_path, dsn, bucket="no-such-bucket")
    assert run(create_tables, "--config", config)[0] == 0
    code, out = run(etl, "--config", config)
    assert code == 1
    assert "error: reading s3://no-such-bucket/" in out and "NoSuchBucket" in out


def test_endpoint_url_reaches_an_s3_compatible_server(few_songs, dsn, tmp_path, run, query, monkeypatch):
    """moto's server on 127.0.0.1 stands for MinIO or any S3-compatible store."""
    import boto3
    from moto.server import ThreadedMotoServer

    import create_tables
    import etl

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = boto3.client("s3", region_name="us-west-2", endpoint_url=endpoint)
        upload_folder(client, "sparkify-minio", few_songs)
        config = s3_config(tmp_path, dsn, bucket="sparkify-minio", endpoint_url=endpoint)
        assert run(create_tables, "--config", config)[0] == 0
        code, out = run(etl, "--config", config)
        assert code == 0, out
        assert query("SELECT COUNT(*) FROM staging_songs") == [(20,)]
    finally:
        server.stop()


# --- Fast song staging: pack and manifest -----------------------------------------------------


def test_packed_songs_hold_exactly_the_source_objects(aws, tmp_path):
    import gzip

    import boto3

    from sparkify.jsonfiles import read_records
    from sparkify.songpack import pack_songs

    s3 = boto3.client("s3", region_name="us-west-2")
    for bucket in ("udacity-like", "my-staging"):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    sources = []
    for index in range(1203):
        song = {
            "song_id": f"SO{index:05d}",
            "artist_id": "AR1",
            "title": f"Title {index}",
            "artist_name": "A",
        }
        body = json.dumps(song)
        if index == 7:  # a number where a name is expected
            song["artist_name"] = 112
            body = json.dumps(song)
        if index == 8:  # two pretty-printed objects in one file
            second = {**song, "song_id": "SO_EXTRA"}
            body = json.dumps(song, indent=2) + "\n" + json.dumps(second, indent=2)
            sources.append(second)
        sources.append(song)
        s3.put_object(Bucket="udacity-like", Key=f"song_data/A/B/TR{index:05d}.json", Body=body.encode())
    s3.put_object(Bucket="udacity-like", Key="song_data/README.txt", Body=b"not a song")

    from sparkify.s3 import list_data_keys

    listing = list_data_keys(s3, "s3://udacity-like/song_data")
    assert listing.ignored == ["song_data/README.txt"]
    manifest_url = "s3://my-staging/sparkify/runs/r1/song_data-packs.manifest"
    pack_songs(s3, "udacity-like", [item.key for item in listing.files], manifest_url, objects_per_pack=500)
    manifest_key = manifest_url.removeprefix("s3://my-staging/")
    manifest = json.loads(s3.get_object(Bucket="my-staging", Key=manifest_key)["Body"].read())
    urls = [entry["url"] for entry in manifest["entries"]]
    assert len(urls) == 3 and all(entry["mandatory"] for entry in manifest["entries"])
    packed = []
    for index, url in enumerate(urls):
        key = url.removeprefix("s3://my-staging/")
        path = tmp_path / f"pack{index}.json"
        path.write_bytes(gzip.decompress(s3.get_object(Bucket="my-staging", Key=key)["Body"].read()))
        packed += [record.value for record in read_records(str(path))]
    canonical = sorted(json.dumps(song, sort_keys=True) for song in sources)
    assert sorted(json.dumps(song, sort_keys=True) for song in packed) == canonical


def test_packed_songs_are_copied_through_the_manifest():
    from test_redshift_sql import LISTINGS, REDSHIFT_VALUES, redshift_problems

    from sparkify.config import Config
    from sparkify.redshift import plan_copies

    values = {**REDSHIFT_VALUES, ("S3", "PACK_SONGS"): "true", ("S3", "STAGING_PREFIX"): "s3://my-staging/sp"}
    config = Config("c", values, [])
    songs = next(copy for copy in plan_copies(config, LISTINGS, "r1") if copy.dataset.name == "song_data")
    sql = " ".join(songs.sql(config).split())
    assert "FROM 's3://my-staging/sp/runs/r1/song_data-packs.manifest'" in sql
    assert "FORMAT AS JSON 'auto' MANIFEST GZIP" in sql
    assert redshift_problems(songs.sql(config)) == []


def test_the_downloaded_objects_are_removed_after_the_run(aws, few_songs, dsn, tmp_path, run, monkeypatch):
    import tempfile

    import boto3

    import create_tables
    import etl
    from sparkify import s3source

    temporary = tmp_path / "temporary"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    downloaded = []
    real_download = s3source.download

    def watched(*args):
        local = Path(real_download(*args))
        downloaded.append((local, 1 if local.is_file() else sum(1 for _ in local.rglob("*.json"))))
        return str(local)

    monkeypatch.setattr(s3source, "download", watched)
    upload_folder(boto3.client("s3", region_name="us-west-2"), "sparkify-public", few_songs)
    config = s3_config(tmp_path, dsn)
    assert run(create_tables, "--config", config)[0] == 0
    code, out = run(etl, "--config", config)
    assert code == 0, out
    assert len(downloaded) == 3 and all(files > 0 for _, files in downloaded)  # they were there
    assert not any(local.exists() for local, _ in downloaded)
    assert list(temporary.iterdir()) == []
