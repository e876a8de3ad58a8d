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

[S3]
SONG_DATA = s3://udacity-dend/song_data
LOG_DATA = s3://udacity-dend/log_data
LOG_JSONPATH = s3://udacity-dend/log_json_path.json
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
        keep_parameter_group_values(monkeypatch)
        yield aws_setup.Clients()


def keep_parameter_group_values(monkeypatch):
    """moto 5.2 has no ModifyClusterParameterGroup, and its DescribeClusterParameters answers
    the engine defaults (require_ssl false) whatever was set. This stand-in keeps what is set,
    per group, so a test reads back what create set. botocore still checks each request
    against the real API's model before it gets here (a misspelt field fails)."""
    from moto.core.responses import ActionResult
    from moto.redshift.models import RedshiftBackend
    from moto.redshift.responses import RedshiftResponse

    def modify_cluster_parameter_group(self):
        name = self._get_param("ParameterGroupName")
        group = self.redshift_backend.describe_cluster_parameter_groups(name)[0]
        values = vars(group).setdefault("values_set", {})
        values.update({p["ParameterName"]: p["ParameterValue"] for p in self._get_param("Parameters")})
        return ActionResult(
            {"ParameterGroupName": name, "ParameterGroupStatus": "Your parameter group has been updated"}
        )

    engine_defaults = RedshiftBackend.describe_cluster_parameters

    def describe_cluster_parameters(self, parameter_group_name):
        values = getattr(self.parameter_groups.get(parameter_group_name), "values_set", {})
        return [
            {**p, "ParameterValue": values[p["ParameterName"]], "Source": "user"}
            if p["ParameterName"] in values
            else p
            for p in engine_defaults(self, parameter_group_name)
        ]

    monkeypatch.setattr(
        RedshiftResponse, "modify_cluster_parameter_group", modify_cluster_parameter_group, raising=False
    )
    monkeypatch.setattr(RedshiftBackend, "describe_cluster_parameters", describe_cluster_parameters)


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
    assert aws.iam.list_attached_role_policies(RoleName="sparkifyS3Read")["AttachedPolicies"] == []
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
    assert "IAM role sparkifyS3Read: policy sparkify-copy-reads is up to date" in out
    assert f"cluster sparkify-test already writes its audit logs to s3://{BUCKET}/audit-logs/" in out
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
    dwh_config.write_text(dwh_config.read_text() + "REGION = eu-west-1\n")
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


# --- The COPY role's policy (#23, item 2) -----------------------------------------------------

STAGING = f"arn:aws:s3:::{BUCKET}/sparkify"
UDACITY = "arn:aws:s3:::udacity-dend"
COPY_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "CopyGetsObjects",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": [
                STAGING,
                f"{STAGING}/*",
                f"{UDACITY}/log_data",
                f"{UDACITY}/log_data/*",
                f"{UDACITY}/log_json_path.json",
                f"{UDACITY}/log_json_path.json/*",
                f"{UDACITY}/song_data",
                f"{UDACITY}/song_data/*",
            ],
        },
        {
            "Sid": "CopyListsBucket1",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": f"arn:aws:s3:::{BUCKET}",
            "Condition": {"StringLike": {"s3:prefix": ["sparkify", "sparkify/*"]}},
        },
        {
            "Sid": "CopyListsBucket2",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": UDACITY,
            "Condition": {
                "StringLike": {
                    "s3:prefix": [
                        "log_data",
                        "log_data/*",
                        "log_json_path.json",
                        "log_json_path.json/*",
                        "song_data",
                        "song_data/*",
                    ]
                }
            },
        },
    ],
}


def setup(aws, command, config, *more):
    return aws_setup.main([command, "--config", str(config), "--poll", "0", *more], aws)


def role_policy(aws, role="sparkifyS3Read"):
    return aws.iam.get_role_policy(RoleName=role, PolicyName=aws_setup.COPY_POLICY_NAME)["PolicyDocument"]


def allows(policy, action, resource, prefix=None):
    """Whether an Allow statement of the policy grants action on resource (IAM's '*' matches
    any characters, '/' included); prefix: the s3:prefix a ListBucket request names."""
    from fnmatch import fnmatchcase

    from sparkify.aws_policy import as_list

    def matches(statement):
        if action not in as_list(statement["Action"]):
            return False
        if not any(fnmatchcase(resource, pattern) for pattern in as_list(statement["Resource"])):
            return False
        wanted = statement.get("Condition", {}).get("StringLike", {}).get("s3:prefix")
        return wanted is None or (prefix is not None and any(fnmatchcase(prefix, p) for p in wanted))

    return any(statement["Effect"] == "Allow" and matches(statement) for statement in policy["Statement"])


def test_the_role_reads_only_what_copy_reads(aws, dwh_config):
    """Read back from IAM: GET and LIST of the [S3] sources, the JSONPaths file and the
    staging prefix (manifests, song packs), and nothing else."""
    assert setup(aws, "create", dwh_config) == 0
    policy = role_policy(aws)
    assert policy == COPY_POLICY
    assert aws.iam.list_attached_role_policies(RoleName="sparkifyS3Read")["AttachedPolicies"] == []
    for needed in (
        f"{UDACITY}/song_data/A/B/C/TRABCEI128F424C983.json",
        f"{UDACITY}/log_data/2018/11/2018-11-05-events.json",
        f"{UDACITY}/log_json_path.json",
        f"{STAGING}/runs/r1/log_data.manifest",
        f"{STAGING}/runs/r1/song_data-pack-0.json.gz",
    ):
        assert allows(policy, "s3:GetObject", needed), needed
    assert allows(policy, "s3:ListBucket", UDACITY, prefix="log_data/2018/11/2018-11-05")
    assert allows(policy, "s3:ListBucket", UDACITY, prefix="song_data/")
    for not_needed in (
        f"{UDACITY}/song_data_old/TR1.json",
        f"{UDACITY}/other/secret.json",
        f"arn:aws:s3:::{BUCKET}/audit-logs/AWSLogs/123456789012/redshift/x.gz",
        "arn:aws:s3:::another-bucket/song_data/TR1.json",
    ):
        assert not allows(policy, "s3:GetObject", not_needed), not_needed
    assert not allows(policy, "s3:ListBucket", UDACITY, prefix="")
    assert not allows(policy, "s3:ListBucket", UDACITY, prefix="other/")
    assert not allows(policy, "s3:PutObject", f"{STAGING}/runs/r1/log_data.manifest")


def test_create_again_brings_the_policy_up_to_date_and_drops_the_broad_grant(aws, dwh_config, capsys):
    """A role made by an older aws_setup.py (AmazonS3ReadOnlyAccess attached) loses it, and
    a changed [S3] source changes the policy."""
    aws.iam.create_role(
        RoleName="sparkifyS3Read", AssumeRolePolicyDocument=json.dumps(aws_setup.ASSUME_ROLE_POLICY)
    )
    aws.iam.attach_role_policy(RoleName="sparkifyS3Read", PolicyArn=aws_setup.LEGACY_S3_READ_POLICY)
    assert setup(aws, "create", dwh_config) == 0
    out = capsys.readouterr().out
    assert "IAM role sparkifyS3Read: detached AmazonS3ReadOnlyAccess" in out
    assert "IAM role sparkifyS3Read: wrote policy sparkify-copy-reads" in out
    assert aws.iam.list_attached_role_policies(RoleName="sparkifyS3Read")["AttachedPolicies"] == []

    dwh_config.write_text(
        dwh_config.read_text().replace("s3://udacity-dend/song_data", "s3://my-songs/2024/songs")
    )
    assert setup(aws, "create", dwh_config) == 0
    assert "IAM role sparkifyS3Read: brought up to date policy sparkify-copy-reads" in capsys.readouterr().out
    policy = role_policy(aws)
    assert allows(policy, "s3:GetObject", "arn:aws:s3:::my-songs/2024/songs/A/TR1.json")
    assert not allows(policy, "s3:GetObject", f"{UDACITY}/song_data/A/TR1.json")
    assert setup(aws, "create", dwh_config) == 0
    assert "IAM role sparkifyS3Read: policy sparkify-copy-reads is up to date" in capsys.readouterr().out


@pytest.mark.parametrize(
    "line, message",
    [
        ("SONG_DATA = data/song_data", "[S3] SONG_DATA = data/song_data is not an s3:// URL"),
        ("LOG_JSONPATH = s3://udacity-dend/*.json", "holds '*', '?' or '$', which an IAM policy reads"),
        ("LOG_DATA =", "[S3] LOG_DATA is required: the role lets COPY read exactly the [S3] sources"),
    ],
)
def test_a_source_the_role_cannot_grant_is_refused_before_anything_is_made(
    line, message, aws, dwh_config, capsys
):
    key = line.split(" =")[0]
    text = dwh_config.read_text()
    start = text.index(f"{key} = ")
    dwh_config.write_text(text[:start] + line + text[text.index("\n", start) :])
    assert setup(aws, "create", dwh_config) == 2
    out = capsys.readouterr().out
    assert message in out and out.count("\n") == 1 and out.startswith("error: ")
    assert aws.iam.list_roles()["Roles"] == [] and aws.redshift.describe_clusters()["Clusters"] == []
    assert aws.s3("us-west-2").list_buckets()["Buckets"] == []


def test_status_prints_the_policy_and_the_cluster_settings(aws, dwh_config, capsys):
    assert setup(aws, "create", dwh_config) == 0
    capsys.readouterr()
    assert setup(aws, "status", dwh_config) == 0
    out = capsys.readouterr().out
    for line in (
        "  policy sparkify-copy-reads:",
        f"    allow s3:GetObject on {UDACITY}/song_data/*",
        f"    allow s3:GetObject on {STAGING}/*",
        f"    allow s3:ListBucket on {UDACITY} if s3:prefix like log_data, log_data/*, log_json_path.json, "
        "log_json_path.json/*, song_data, song_data/*",
        "  encrypted at rest: yes",
        "  publicly accessible: yes",
        "  parameter group sparkify-test-parameters: require_ssl = true (in-sync)",
        "  automated snapshots kept: 7 days",
        f"  audit logging: s3://{BUCKET}/audit-logs/",
    ):
        assert line + "\n" in out, line


def test_delete_removes_the_policy_the_parameter_group_and_the_audit_logs(aws, dwh_config, capsys):
    """IAM refuses to delete a role that still has a policy (moto too: DeleteConflict)."""
    assert setup(aws, "create", dwh_config) == 0
    s3 = aws.s3("us-west-2")
    s3.put_object(Bucket=BUCKET, Key="audit-logs/AWSLogs/123456789012/redshift/us-west-2/log.gz", Body=b"x")
    assert setup(aws, "delete", dwh_config) == 0
    out = capsys.readouterr().out
    assert "deleted policy sparkify-copy-reads of IAM role sparkifyS3Read" in out
    assert "deleted parameter group sparkify-test-parameters" in out
    assert aws.iam.list_roles()["Roles"] == []
    assert [
        g["ParameterGroupName"] for g in aws.redshift.describe_cluster_parameter_groups()["ParameterGroups"]
    ] == ["default.redshift-1.0"]
    assert s3.list_buckets()["Buckets"] == []
    assert setup(aws, "delete", dwh_config) == 0
    assert "parameter group sparkify-test-parameters does not exist" in capsys.readouterr().out


# --- The cluster, configured on purpose (#23, item 3) ----------------------------------------


def test_the_cluster_is_configured_on_purpose(aws, dwh_config):
    """Read back from moto: encrypted, our parameter group with require_ssl, snapshots kept 7
    days, major version upgrades on, tagged, audit logs into the staging bucket."""
    assert setup(aws, "create", dwh_config) == 0
    cluster = aws.redshift.describe_clusters(ClusterIdentifier="sparkify-test")["Clusters"][0]
    assert cluster["Encrypted"] is True
    assert cluster["AutomatedSnapshotRetentionPeriod"] == 7
    assert cluster["AllowVersionUpgrade"] is True
    assert cluster["Tags"] == [{"Key": "project", "Value": "sparkify"}]
    assert [g["ParameterGroupName"] for g in cluster["ClusterParameterGroups"]] == [
        "sparkify-test-parameters"
    ]
    parameters = aws.redshift.describe_cluster_parameters(ParameterGroupName="sparkify-test-parameters")
    values = {p["ParameterName"]: p["ParameterValue"] for p in parameters["Parameters"]}
    assert values["require_ssl"] == "true" and values["enable_user_activity_logging"] == "false"
    group = aws.redshift.describe_cluster_parameter_groups(ParameterGroupName="sparkify-test-parameters")
    assert group["ParameterGroups"][0]["ParameterGroupFamily"] == "redshift-1.0"
    logging_status = aws.redshift.describe_logging_status(ClusterIdentifier="sparkify-test")
    assert (logging_status["LoggingEnabled"], logging_status["BucketName"]) == (True, BUCKET)
    assert (logging_status["S3KeyPrefix"], logging_status["LogDestinationType"]) == ("audit-logs/", "s3")
    assert logging_status["LogExports"] == ["connectionlog", "userlog"]


def test_the_staging_bucket_lets_redshift_write_audit_logs_there_only(aws, dwh_config):
    """The bucket policy Redshift's logging needs (db-auditing.html): GetBucketAcl on the
    bucket, PutObject under audit-logs/ only. moto does not check it at EnableLogging."""
    assert setup(aws, "create", dwh_config) == 0
    policy = json.loads(aws.s3("us-west-2").get_bucket_policy(Bucket=BUCKET)["Policy"])
    redshift = {"Service": "redshift.amazonaws.com"}
    assert [(s["Principal"], s["Action"], s["Resource"]) for s in policy["Statement"]] == [
        (redshift, "s3:GetBucketAcl", f"arn:aws:s3:::{BUCKET}"),
        (redshift, "s3:PutObject", f"arn:aws:s3:::{BUCKET}/audit-logs/*"),
    ]
    assert not allows(policy, "s3:PutObject", f"{STAGING}/runs/r1/log_data.manifest")


@pytest.mark.parametrize(
    "cidr, public",
    [("", False), ("10.20.0.0/16", False), ("172.31.5.9/32", False), ("203.0.113.7/32", True)],
)
def test_only_an_address_outside_the_vpc_makes_the_cluster_publicly_accessible(cidr, public, aws, dwh_config):
    dwh_config.write_text(CONFIG.replace("203.0.113.7/32", cidr))
    assert setup(aws, "create", dwh_config) == 0
    cluster = aws.redshift.describe_clusters(ClusterIdentifier="sparkify-test")["Clusters"][0]
    assert cluster["PubliclyAccessible"] is public
    groups = aws.ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["default"]}])
    allowed = [
        (rule["FromPort"], ip["CidrIp"])
        for group in groups["SecurityGroups"]
        for rule in group["IpPermissions"]
        if rule.get("FromPort") == 5439
        for ip in rule["IpRanges"]
    ]
    assert allowed == ([(5439, cidr)] if cidr else [])


@pytest.mark.parametrize(
    "key, name, control",
    [
        ("DWH_DB_USER", "awsuser", "Redshift.8"),
        ("DWH_DB_USER", "AWSUSER", "Redshift.8"),
        ("DWH_DB", "dev", "Redshift.9"),
    ],
)
def test_redshifts_default_names_are_refused(key, name, control, aws, dwh_config, capsys):
    dwh_config.write_text(CONFIG.replace(f"{key} = sparkify", f"{key} = {name}"))
    assert setup(aws, "create", dwh_config) == 2
    out = capsys.readouterr().out
    assert (
        f"[DWH] {key} = {name} is Redshift's well-known default, which Security Hub flags ({control})" in out
    )
    assert aws.redshift.describe_clusters()["Clusters"] == []


def test_no_audit_logging_when_the_bucket_is_not_in_the_clusters_region(aws, dwh_config, capsys):
    """EnableLogging's bucket "Must be in the same region as the cluster"; the staging bucket
    follows the data ([S3] REGION), the cluster the AWS session."""
    dwh_config.write_text(dwh_config.read_text() + "REGION = eu-west-1\n")
    assert setup(aws, "create", dwh_config) == 0
    out = capsys.readouterr().out
    assert (
        "cluster sparkify-test: audit logging not enabled: Redshift writes audit logs only to a bucket" in out
    )
    assert aws.redshift.describe_logging_status(ClusterIdentifier="sparkify-test")["LoggingEnabled"] is False


def test_create_again_brings_an_older_cluster_up_to_date(aws, dwh_config, capsys):
    """A cluster made before #23: public, default parameter group, snapshots kept 1 day,
    not encrypted. create changes what changes in place and says what it leaves to you."""
    aws.redshift.create_cluster(
        ClusterIdentifier="sparkify-test",
        NodeType="dc2.large",
        ClusterType="multi-node",
        NumberOfNodes=2,
        MasterUsername="sparkify",
        MasterUserPassword=PASSWORD,
        DBName="sparkify",
        PubliclyAccessible=True,
        Encrypted=False,
        AutomatedSnapshotRetentionPeriod=1,
    )
    dwh_config.write_text(CONFIG.replace("203.0.113.7/32", ""))
    assert setup(aws, "create", dwh_config) == 0
    out = capsys.readouterr().out
    cluster = aws.redshift.describe_clusters(ClusterIdentifier="sparkify-test")["Clusters"][0]
    assert cluster["PubliclyAccessible"] is False and cluster["AutomatedSnapshotRetentionPeriod"] == 7
    assert [g["ParameterGroupName"] for g in cluster["ClusterParameterGroups"]] == [
        "sparkify-test-parameters"
    ]
    assert "cluster sparkify-test: PubliclyAccessible True -> False" in out
    assert (
        "cluster sparkify-test: ClusterParameterGroupName default.redshift-1.0 -> sparkify-test-parameters"
        in out
    )
    assert "cluster sparkify-test requires SSL only once rebooted: aws redshift reboot-cluster" in out
    assert "cluster sparkify-test is not encrypted at rest" in out and cluster["Encrypted"] is False
    assert setup(aws, "create", dwh_config) == 0
    assert "->" not in capsys.readouterr().out


def test_create_again_leaves_an_up_to_date_parameter_group_alone(aws, dwh_config, capsys):
    """A changed parameter group asks for a reboot of its cluster: only changes are sent."""
    assert setup(aws, "create", dwh_config) == 0
    sent = []
    aws.redshift.meta.events.register(
        "before-call.redshift.ModifyClusterParameterGroup", lambda params, **_: sent.append(params)
    )
    capsys.readouterr()
    assert setup(aws, "create", dwh_config) == 0
    assert sent == []
    out = capsys.readouterr().out
    already = "require_ssl = true, enable_user_activity_logging = false (already)"
    assert f"parameter group sparkify-test-parameters: {already}" in out
    assert "requires SSL only once rebooted" not in out


def test_a_bucket_of_your_own_keeps_its_policy_and_its_objects(aws, dwh_config):
    s3 = aws.s3("us-west-2")
    s3.create_bucket(Bucket="my-own-bucket", CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    mine = {"Sid": "MyReaders", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}}
    mine |= {"Action": "s3:GetObject", "Resource": "arn:aws:s3:::my-own-bucket/reports/*"}
    s3.put_bucket_policy(
        Bucket="my-own-bucket", Policy=json.dumps({"Version": "2012-10-17", "Statement": [mine]})
    )
    s3.put_object(Bucket="my-own-bucket", Key="reports/2018.csv", Body=b"x")
    dwh_config.write_text(
        dwh_config.read_text().replace("[S3]", "DWH_STAGING_BUCKET = my-own-bucket\n\n[S3]")
    )
    assert setup(aws, "create", dwh_config) == 0
    sids = [s["Sid"] for s in json.loads(s3.get_bucket_policy(Bucket="my-own-bucket")["Policy"])["Statement"]]
    assert sids == ["MyReaders", *aws_setup.AUDIT_LOG_SIDS]
    assert setup(aws, "delete", dwh_config) == 0
    assert json.loads(s3.get_bucket_policy(Bucket="my-own-bucket")["Policy"])["Statement"] == [mine]
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="my-own-bucket")["Contents"]] == ["reports/2018.csv"]


@pytest.mark.parametrize(
    "region, principal",
    [
        ("us-west-2", "redshift.amazonaws.com"),
        ("eu-north-1", "redshift.amazonaws.com"),
        ("ap-east-1", "redshift.ap-east-1.amazonaws.com"),
    ],
)
def test_audit_logs_are_written_by_the_regions_service_principal(region, principal):
    """Regions that are not enabled by default need redshift.<region>.amazonaws.com."""
    from sparkify.aws_policy import audit_log_statements

    assert {s["Principal"]["Service"] for s in audit_log_statements("b", "audit-logs", region)} == {principal}


def test_a_whole_bucket_source_is_listed_without_a_prefix_condition():
    from sparkify.aws_policy import copy_read_policy, s3_location

    policy = copy_read_policy(
        [s3_location("x", "s3://whole-bucket"), s3_location("y", "s3://whole-bucket/logs/")]
    )
    assert policy["Statement"][0]["Resource"] == [
        "arn:aws:s3:::whole-bucket/*",
        "arn:aws:s3:::whole-bucket/logs",
        "arn:aws:s3:::whole-bucket/logs/*",
    ]
    assert "Condition" not in policy["Statement"][1]
    assert allows(policy, "s3:ListBucket", "arn:aws:s3:::whole-bucket", prefix="")


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
