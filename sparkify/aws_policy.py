"""The policy documents aws_setup.py writes, built from the config: what Redshift's COPY may
read (the role's inline policy) and where Redshift may write its audit logs (a statement of
the staging bucket's policy). Pure functions: no AWS calls, so the tests read every rule."""

import re
from typing import NamedTuple

from sparkify.config import S3_URL
from sparkify.errors import ConfigError

POLICY_VERSION = "2012-10-17"  # the version that knows policy variables and conditions
# Characters an IAM policy reads as wildcards or variables inside a resource or s3:prefix.
POLICY_WILDCARDS = re.compile(r"[*?$]")
# Regions launched before March 20, 2019 are enabled by default; every later one is opt-in
# (https://docs.aws.amazon.com/accounts/latest/reference/manage-acct-regions.html).
DEFAULT_REGIONS = frozenset(
    {
        "us-east-1",
        "us-east-2",
        "us-west-1",
        "us-west-2",
        "ca-central-1",
        "sa-east-1",
        "eu-central-1",
        "eu-west-1",
        "eu-west-2",
        "eu-west-3",
        "eu-north-1",
        "ap-south-1",
        "ap-northeast-1",
        "ap-northeast-2",
        "ap-northeast-3",
        "ap-southeast-1",
        "ap-southeast-2",
    }
)
AUDIT_LOG_SIDS = ("RedshiftAuditLogsReadBucketAcl", "RedshiftAuditLogsPutObjects")


class S3Location(NamedTuple):
    """A bucket and a key prefix (no slash at either end; "" is the whole bucket). COPY
    reads it as one object or as the folder under it."""

    bucket: str
    prefix: str

    @property
    def url(self):
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"


def s3_location(label, url):
    """The S3Location of a config value, or a one-line ConfigError naming it (label, e.g.
    "dwh.cfg: [S3] SONG_DATA"). Only s3:// sources can be granted to Redshift's COPY."""
    if not url.startswith("s3://"):
        raise ConfigError(
            f"{label} = {url} is not an s3:// URL: Redshift's COPY reads only S3, so the role "
            "can grant nothing else; set the s3:// URLs TARGET = redshift loads "
            "(e.g. s3://udacity-dend/song_data) before aws_setup.py create"
        )
    if not S3_URL.fullmatch(url):
        raise ConfigError(f"{label} = {url} is not a valid s3://bucket/prefix URL")
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    if POLICY_WILDCARDS.search(prefix):
        raise ConfigError(
            f"{label} = {url} holds '*', '?' or '$', which an IAM policy reads as a wildcard: "
            "the grant would reach further than the prefix; rename the objects"
        )
    return S3Location(bucket, prefix.strip("/"))


# --- The role's policy: what COPY reads -----------------------------------------------------


def object_arns(location):
    """The objects COPY may GET: the prefix as one object and everything in its folder."""
    base = f"arn:aws:s3:::{location.bucket}"
    if not location.prefix:
        return [f"{base}/*"]
    return [f"{base}/{location.prefix}", f"{base}/{location.prefix}/*"]


def listed_prefixes(location):
    """The s3:prefix values COPY may LIST with; None: the whole bucket."""
    if not location.prefix:
        return None
    return [location.prefix, f"{location.prefix}/*"]


def copy_read_policy(locations):
    """The role's policy: GET the objects and LIST the prefixes of the given locations, and
    nothing else. COPY needs "permission to LIST the Amazon S3 bucket and GET the Amazon S3
    objects that are being loaded, and the manifest file", and for a JSONPaths file "to LIST
    and GET" it (https://docs.aws.amazon.com/redshift/latest/dg/copy-usage_notes-access-permissions.html)."""
    objects = sorted({arn for location in locations for arn in object_arns(location)})
    statements = [
        {"Sid": "CopyGetsObjects", "Effect": "Allow", "Action": "s3:GetObject", "Resource": objects}
    ]
    for number, (bucket, prefixes) in enumerate(sorted(prefixes_by_bucket(locations).items()), 1):
        statements.append(list_statement(f"CopyListsBucket{number}", bucket, prefixes))
    return {"Version": POLICY_VERSION, "Statement": statements}


def prefixes_by_bucket(locations):
    """{bucket: sorted prefixes, or None when a location is the whole bucket}."""
    found = {}
    for location in locations:
        prefixes, earlier = listed_prefixes(location), found.get(location.bucket, [])
        whole_bucket = prefixes is None or earlier is None
        found[location.bucket] = None if whole_bucket else sorted({*earlier, *prefixes})
    return found


def list_statement(sid, bucket, prefixes):
    statement = {
        "Sid": sid,
        "Effect": "Allow",
        "Action": "s3:ListBucket",
        "Resource": f"arn:aws:s3:::{bucket}",
    }
    if prefixes is not None:
        statement["Condition"] = {"StringLike": {"s3:prefix": prefixes}}
    return statement


def policy_lines(document):
    """A policy document as lines a person reads: one per action and resource."""
    lines = []
    for statement in document.get("Statement", []):
        condition = condition_text(statement.get("Condition", {}))
        for action in as_list(statement.get("Action")):
            for resource in as_list(statement.get("Resource")):
                lines.append(f"{statement.get('Effect', '').lower()} {action} on {resource}{condition}")
    return lines


def condition_text(condition):
    words = []
    for operator, tests in sorted(condition.items()):
        for key, values in sorted(tests.items()):
            like = " like" if operator.startswith("StringLike") else f" {operator}"
            words.append(f"{key}{like} {', '.join(as_list(values))}")
    return f" if {' and '.join(words)}" if words else ""


def as_list(value):
    return value if isinstance(value, list) else [value]


# --- The staging bucket's policy: where Redshift writes audit logs ----------------------------


def logging_service_principal(region):
    """Redshift delivers audit logs "using service-principal credentials": redshift.amazonaws.com,
    and in a Region that is not enabled by default redshift.<region>.amazonaws.com, the
    cluster's Region (https://docs.aws.amazon.com/redshift/latest/mgmt/db-auditing.html#db-auditing-bucket-permissions)."""
    return "redshift.amazonaws.com" if region in DEFAULT_REGIONS else f"redshift.{region}.amazonaws.com"


def audit_log_statements(bucket, prefix, region):
    """The two permissions Redshift's audit logging needs of the bucket: s3:GetBucketAcl "so it
    can identify the bucket owner" and s3:PutObject "to upload the logs" (db-auditing.html),
    the latter only under the audit log prefix, so no cluster's logs land in what COPY reads."""
    principal = {"Service": logging_service_principal(region)}
    acl_sid, put_sid = AUDIT_LOG_SIDS
    return [
        {
            "Sid": acl_sid,
            "Effect": "Allow",
            "Principal": principal,
            "Action": "s3:GetBucketAcl",
            "Resource": f"arn:aws:s3:::{bucket}",
        },
        {
            "Sid": put_sid,
            "Effect": "Allow",
            "Principal": principal,
            "Action": "s3:PutObject",
            "Resource": f"arn:aws:s3:::{bucket}/{prefix}/*",
        },
    ]


def with_statements(document, statements):
    """The bucket policy with these statements in it, replacing any of the same Sid: a
    bucket of the user's own (DWH_STAGING_BUCKET) keeps the rest of its policy."""
    sids = {statement["Sid"] for statement in statements}
    kept = [s for s in (document or {}).get("Statement", []) if s.get("Sid") not in sids]
    return {"Version": (document or {}).get("Version", POLICY_VERSION), "Statement": kept + statements}


def without_statements(document, sids):
    """The policy without the statements of these Sids; None when nothing is left."""
    kept = [s for s in (document or {}).get("Statement", []) if s.get("Sid") not in sids]
    return {**document, "Statement": kept} if kept else None
