"""Create, inspect or delete the AWS resources of the Redshift target, from the [DWH] section.

create: a private staging bucket in [S3] REGION, for the runs' manifests and the cluster's
        audit logs; an IAM role Redshift assumes, whose inline policy reads only what COPY
        needs ([S3] SONG_DATA, LOG_DATA, LOG_JSONPATH and the staging prefix); a parameter
        group that requires SSL; the cluster, encrypted, its automatic snapshots kept 7
        days, audit logging on, publicly accessible only when DWH_INGRESS_CIDR names an
        address outside the private ranges (waits, with progress, until it is available);
        inbound access to its port from DWH_INGRESS_CIDR only; then writes [CLUSTER] HOST,
        [IAM_ROLE] ARN and [S3] STAGING_PREFIX back into the config file, keeping
        everything else in it. Run again, it brings the role's policy and the cluster's
        settings up to date.
roles:  in the cluster's database, as its master user: the loader ([CLUSTER] DB_USER),
        who owns the tables; the [ROLES] ANALYSTS and OPERATORS roles and their users
        (README "Who can do what"; sparkify/roles.py says what it sends). Passwords:
        the loader's is [CLUSTER] DB_PASSWORD (none: IAM temporary credentials only),
        the others log in through IAM only; none is ever printed.
status: the cluster's state, endpoint and settings, the role and its policy, the bucket.
delete: the cluster (waits until it is gone), its parameter group, the role and its
        policy, and the staging bucket with everything in it.
Every command can be run again: it says what already exists and does no harm.
Why each setting, and the Security Hub controls it meets: docs/security.md.
AWS credentials and region come from boto3's usual places (AWS_PROFILE, AWS_REGION,
~/.aws/config, AWS_ENDPOINT_URL).

examples:
  export SPARKIFY_DWH_DWH_DB_PASSWORD='…'    # the cluster's master password, kept out of files
  python aws_setup.py create --config dwh.cfg
  python aws_setup.py create --config dwh.cfg --allow-anywhere   # DWH_INGRESS_CIDR may be 0.0.0.0/0
  python aws_setup.py roles --config dwh.cfg            # once the cluster is available
  python aws_setup.py status --config dwh.cfg --verbose
  python aws_setup.py delete --config dwh.cfg --poll 30 --quiet  # check every 30 s, print only errors
"""

import configparser
import ipaddress
import json
import logging
import os
import re
import sys
import time

import boto3
import botocore.exceptions

from sparkify import cli, roles
from sparkify.aws_policy import (
    AUDIT_LOG_SIDS,
    S3Location,
    audit_log_statements,
    copy_read_policy,
    policy_lines,
    s3_location,
    with_statements,
    without_statements,
)
from sparkify.config import AWS_REGION, KEYS_BY_LABEL, load_dwh_settings
from sparkify.datasets import SOURCE_KEYS
from sparkify.errors import ConfigError, SparkifyError
from sparkify.output import mask_secrets

log = logging.getLogger("sparkify")

# What create attached before the role had a policy of its own: read access to every bucket
# the account can see. create detaches it, so an upgraded setup loses the broad grant.
LEGACY_S3_READ_POLICY = "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"
COPY_POLICY_NAME = "sparkify-copy-reads"
ASSUME_ROLE_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "redshift.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}
STAGING_FOLDER = "sparkify"
AUDIT_LOG_FOLDER = "audit-logs"  # beside STAGING_FOLDER, never in it: the role reads that one
PROJECT_TAGS = [{"Key": "project", "Value": "sparkify"}]
# Security Hub's Redshift.3 asks for at least 7 days; the API's default is 1.
SNAPSHOT_RETENTION_DAYS = 7
# "At this time, redshift-1.0 is the only version of the Amazon Redshift engine"
# (working-with-parameter-groups.html).
PARAMETER_GROUP_FAMILY = "redshift-1.0"
# require_ssl: "To configure your cluster to require an SSL connection, set the require_SSL
# parameter to true in the parameter group" (connecting-ssl-support.html). The user
# activity log (every query's text) stays off: docs/security.md says why.
CLUSTER_PARAMETERS = {"require_ssl": "true", "enable_user_activity_logging": "false"}
# What ModifyCluster changes on an existing cluster without moving its data.
UPDATABLE_OPTIONS = ("PubliclyAccessible", "AutomatedSnapshotRetentionPeriod", "AllowVersionUpgrade")
# Names Security Hub flags as Redshift's well-known defaults: (key, default, control).
DEFAULT_NAMES = (("DWH_DB_USER", "awsuser", "Redshift.8"), ("DWH_DB", "dev", "Redshift.9"))
# An ingress range inside these (RFC 1918) is the VPC's own: no public endpoint needed.
PRIVATE_RANGES = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
WAIT_SECONDS = 30 * 60
POLL_SECONDS = 15


class AwsError(SparkifyError):
    """An AWS call failed."""


class Clients:
    """The boto3 clients, from one session (profile, region and endpoint as boto3 finds them)."""

    def __init__(self, session=None):
        self.session = session or boto3.session.Session()
        self.iam = self.session.client("iam")
        self.redshift = self.session.client("redshift")
        self.ec2 = self.session.client("ec2")
        self.sts = self.session.client("sts")

    def s3(self, region):
        return self.session.client("s3", region_name=region)


# --- The role -------------------------------------------------------------------------------


def find_role_arn(iam, name):
    try:
        return iam.get_role(RoleName=name)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        return None


def ensure_role(iam, name, policy):
    """The role, with `policy` as its inline policy and without the old managed one."""
    arn = find_role_arn(iam, name)
    if arn:
        log.info("IAM role %s already exists", name)
    else:
        arn = iam.create_role(
            RoleName=name,
            Description="Lets Redshift's COPY read the Sparkify data in S3",
            AssumeRolePolicyDocument=json.dumps(ASSUME_ROLE_POLICY),
        )["Role"]["Arn"]
        log.info("created IAM role %s", name)
    put_copy_policy(iam, name, policy)
    detach_legacy_policy(iam, name)
    return arn


def role_policy(iam, name):
    """The role's inline COPY policy as a dict, or None."""
    try:
        document = iam.get_role_policy(RoleName=name, PolicyName=COPY_POLICY_NAME)["PolicyDocument"]
    except iam.exceptions.NoSuchEntityException:
        return None
    return json.loads(document) if isinstance(document, str) else document


def put_copy_policy(iam, name, policy):
    """Written whole each time, so a changed [S3] section changes the grant."""
    before = role_policy(iam, name)
    iam.put_role_policy(RoleName=name, PolicyName=COPY_POLICY_NAME, PolicyDocument=json.dumps(policy))
    if before == policy:
        log.info("IAM role %s: policy %s is up to date", name, COPY_POLICY_NAME)
    else:
        verb = "wrote" if before is None else "brought up to date"
        log.info("IAM role %s: %s policy %s (what COPY reads, nothing else)", name, verb, COPY_POLICY_NAME)


def attached_policies(iam, name):
    return [
        policy["PolicyArn"] for policy in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
    ]


def detach_legacy_policy(iam, name):
    if LEGACY_S3_READ_POLICY in attached_policies(iam, name):
        iam.detach_role_policy(RoleName=name, PolicyArn=LEGACY_S3_READ_POLICY)
        log.info("IAM role %s: detached AmazonS3ReadOnlyAccess (read access to every bucket)", name)


def delete_role(iam, name):
    """A role's policies go first: IAM refuses to delete a role that still has any."""
    if not find_role_arn(iam, name):
        log.info("IAM role %s does not exist", name)
        return
    for policy_arn in attached_policies(iam, name):
        iam.detach_role_policy(RoleName=name, PolicyArn=policy_arn)
    for policy_name in iam.list_role_policies(RoleName=name)["PolicyNames"]:
        iam.delete_role_policy(RoleName=name, PolicyName=policy_name)
        log.info("deleted policy %s of IAM role %s", policy_name, name)
    iam.delete_role(RoleName=name)
    log.info("deleted IAM role %s", name)


def report_role(iam, name):
    arn = find_role_arn(iam, name)
    log.info("IAM role %s: %s", name, arn or "does not exist")
    if not arn:
        return
    policy = role_policy(iam, name)
    if policy is None:
        log.info("  no policy %s: create writes it", COPY_POLICY_NAME)
    else:
        log.info("  policy %s:", COPY_POLICY_NAME)
        for line in policy_lines(policy):
            log.info("    %s", line)
    if LEGACY_S3_READ_POLICY in attached_policies(iam, name):
        log.info("  also AmazonS3ReadOnlyAccess (read access to every bucket): create detaches it")


# --- The parameter group --------------------------------------------------------------------


def parameter_group_name(settings):
    """The cluster's own group: the default one "has preset values for each of its
    parameters, and it cannot be modified" (working-with-parameter-groups.html)."""
    return f"{settings['DWH_CLUSTER_IDENTIFIER']}-parameters"


def parameter_group_exists(redshift, name):
    try:
        redshift.describe_cluster_parameter_groups(ParameterGroupName=name)
        return True
    except redshift.exceptions.ClusterParameterGroupNotFoundFault:
        return False


def ensure_parameter_group(redshift, name):
    """The group with CLUSTER_PARAMETERS; only values that differ are sent, since a changed
    group needs its cluster rebooted ("pending-reboot", working-with-parameter-groups.html)."""
    if parameter_group_exists(redshift, name):
        log.info("parameter group %s already exists", name)
    else:
        redshift.create_cluster_parameter_group(
            ParameterGroupName=name,
            ParameterGroupFamily=PARAMETER_GROUP_FAMILY,
            Description="Sparkify DWH: connections must use SSL",
            Tags=PROJECT_TAGS,
        )
        log.info("created parameter group %s", name)
    changes = {
        key: value
        for key, value in CLUSTER_PARAMETERS.items()
        if parameter_value(redshift, name, key) != value
    }
    if changes:
        parameters = [{"ParameterName": key, "ParameterValue": value} for key, value in changes.items()]
        redshift.modify_cluster_parameter_group(ParameterGroupName=name, Parameters=parameters)
    settings = ", ".join(f"{key} = {value}" for key, value in CLUSTER_PARAMETERS.items())
    log.info("parameter group %s: %s%s", name, settings, "" if changes else " (already)")


def parameter_value(redshift, group, name):
    pages = redshift.get_paginator("describe_cluster_parameters").paginate(ParameterGroupName=group)
    found = (p for page in pages for p in page["Parameters"] if p["ParameterName"] == name)
    return next((p.get("ParameterValue") for p in found), None)


def delete_parameter_group(redshift, name):
    """After the cluster is gone: a group in use cannot be deleted."""
    if not parameter_group_exists(redshift, name):
        log.info("parameter group %s does not exist", name)
        return
    redshift.delete_cluster_parameter_group(ParameterGroupName=name)
    log.info("deleted parameter group %s", name)


# --- The cluster ----------------------------------------------------------------------------


def find_cluster(redshift, identifier):
    try:
        return redshift.describe_clusters(ClusterIdentifier=identifier)["Clusters"][0]
    except redshift.exceptions.ClusterNotFoundFault:
        return None


def refuse_default_names(settings, config_path):
    """Security Hub flags the master user awsuser (Redshift.8) and the database dev
    (Redshift.9): "Default names are public knowledge" (securityhub redshift-controls.html)."""
    for key, default, control in DEFAULT_NAMES:
        if settings[key].lower() == default:
            raise ConfigError(
                f"{config_path}: [DWH] {key} = {settings[key]} is Redshift's well-known default, "
                f"which Security Hub flags ({control}); choose another name, e.g. sparkify"
            )


def cluster_options(settings, role_arn, parameter_group, public):
    """Every choice of the cluster made here, whatever the API's defaults of the day
    (API_CreateCluster.html; docs/security.md says why each)."""
    options = {
        "ClusterIdentifier": settings["DWH_CLUSTER_IDENTIFIER"],
        "ClusterType": settings["DWH_CLUSTER_TYPE"],
        "NodeType": settings["DWH_NODE_TYPE"],
        "DBName": settings["DWH_DB"],
        "MasterUsername": settings["DWH_DB_USER"],
        "MasterUserPassword": settings["DWH_DB_PASSWORD"],
        "Port": int(settings["DWH_PORT"]),
        "IamRoles": [role_arn],
        "Encrypted": True,
        "PubliclyAccessible": public,
        "ClusterParameterGroupName": parameter_group,
        "AutomatedSnapshotRetentionPeriod": SNAPSHOT_RETENTION_DAYS,
        "AllowVersionUpgrade": True,
        "Tags": PROJECT_TAGS,
    }
    if settings["DWH_CLUSTER_TYPE"] == "multi-node":
        options["NumberOfNodes"] = int(settings["DWH_NUM_NODES"])
    return options


def ensure_cluster(redshift, options):
    identifier = options["ClusterIdentifier"]
    cluster = find_cluster(redshift, identifier)
    if cluster:
        log.info("cluster %s already exists (%s)", identifier, cluster["ClusterStatus"])
        return
    redshift.create_cluster(**options)
    nodes = options.get("NumberOfNodes", 1)
    access = "publicly accessible" if options["PubliclyAccessible"] else "private"
    log.info(
        "creating cluster %s (%s × %s): encrypted, SSL required, snapshots kept %d days, %s",
        identifier,
        nodes,
        options["NodeType"],
        options["AutomatedSnapshotRetentionPeriod"],
        access,
    )


def parameter_group_names(cluster):
    return [group["ParameterGroupName"] for group in cluster.get("ClusterParameterGroups", [])]


def cluster_changes(cluster, options):
    """The options an existing cluster differs in that ModifyCluster changes in place."""
    changes = {key: options[key] for key in UPDATABLE_OPTIONS if cluster.get(key) != options[key]}
    if options["ClusterParameterGroupName"] not in parameter_group_names(cluster):
        changes["ClusterParameterGroupName"] = options["ClusterParameterGroupName"]
    return changes


def update_cluster(redshift, cluster, options):
    """Brings an available cluster's settings up to date; returns what it changed.
    Encryption it only reports: "During the migration operation, your cluster is available
    in read-only mode" (changing-cluster-encryption.html), so that is the user's call."""
    identifier = options["ClusterIdentifier"]
    changes = cluster_changes(cluster, options)
    if changes:
        redshift.modify_cluster(ClusterIdentifier=identifier, **changes)
    for key, wanted in changes.items():
        was = (
            ", ".join(parameter_group_names(cluster))
            if key == "ClusterParameterGroupName"
            else cluster.get(key)
        )
        log.info("cluster %s: %s %s -> %s", identifier, key, was, wanted)
    if not cluster.get("Encrypted"):
        log.warning(
            "cluster %s is not encrypted at rest; `aws redshift modify-cluster --cluster-identifier %s "
            "--encrypted` encrypts it, read-only while that runs (create leaves the timing to you)",
            identifier,
            identifier,
        )
    return changes


def warn_if_reboot_needed(cluster, changes):
    """A parameter group's parameters apply after a reboot ("This change is applied only
    after the cluster is rebooted", API_ModifyCluster.html)."""
    pending = any(
        g.get("ParameterApplyStatus") == "pending-reboot" for g in cluster.get("ClusterParameterGroups", [])
    )
    if pending or "ClusterParameterGroupName" in changes:
        identifier = cluster["ClusterIdentifier"]
        log.warning(
            "cluster %s requires SSL only once rebooted: aws redshift reboot-cluster --cluster-identifier %s",
            identifier,
            identifier,
        )


def wait_for(redshift, identifier, wanted, timeout=WAIT_SECONDS, poll=POLL_SECONDS):
    """Poll until the cluster's status is wanted ('available') or it is gone (wanted=None)."""
    started = time.monotonic()
    while True:
        cluster = find_cluster(redshift, identifier)
        status = cluster["ClusterStatus"] if cluster else None
        if status == wanted:
            return cluster
        elapsed = time.monotonic() - started
        if elapsed > timeout:
            raise AwsError(f"cluster {identifier} is still {status} after {timeout / 60:.0f} minutes")
        log.info("cluster %s is %s (%.0f s)…", identifier, status, elapsed)
        time.sleep(poll)


def delete_cluster(redshift, identifier, poll=POLL_SECONDS):
    cluster = find_cluster(redshift, identifier)
    if not cluster:
        log.info("cluster %s does not exist", identifier)
        return
    if cluster["ClusterStatus"] != "deleting":
        redshift.delete_cluster(ClusterIdentifier=identifier, SkipFinalClusterSnapshot=True)
        log.info("deleting cluster %s (no final snapshot)", identifier)
    wait_for(redshift, identifier, None, poll=poll)
    log.info("cluster %s deleted", identifier)


def cluster_setting_lines(redshift, cluster):
    """What status says of a cluster's settings, as Redshift reports them."""
    yes_no = {True: "yes", False: "no"}
    lines = [
        f"encrypted at rest: {yes_no[bool(cluster.get('Encrypted'))]}",
        f"publicly accessible: {yes_no[bool(cluster.get('PubliclyAccessible'))]}",
    ]
    for group in cluster.get("ClusterParameterGroups", []):
        name = group["ParameterGroupName"]
        ssl = parameter_value(redshift, name, "require_ssl")
        lines.append(f"parameter group {name}: require_ssl = {ssl} ({group.get('ParameterApplyStatus')})")
    lines.append(f"automated snapshots kept: {cluster.get('AutomatedSnapshotRetentionPeriod')} days")
    logging_status = redshift.describe_logging_status(ClusterIdentifier=cluster["ClusterIdentifier"])
    where = f"s3://{logging_status.get('BucketName')}/{logging_status.get('S3KeyPrefix', '')}"
    lines.append(f"audit logging: {where if logging_status.get('LoggingEnabled') else 'off'}")
    return lines


def report_cluster(redshift, identifier):
    cluster = find_cluster(redshift, identifier)
    if not cluster:
        log.info("cluster %s: does not exist", identifier)
        return
    endpoint = cluster.get("Endpoint") or {}
    log.info(
        "cluster %s: %s, endpoint %s:%s",
        identifier,
        cluster["ClusterStatus"],
        endpoint.get("Address", "(none yet)"),
        endpoint.get("Port", "-"),
    )
    for line in cluster_setting_lines(redshift, cluster):
        log.info("  %s", line)


# --- Network --------------------------------------------------------------------------------


def checked_cidr(cidr, allow_anywhere):
    """DWH_INGRESS_CIDR as a network, or None when it is empty (a private cluster)."""
    if not cidr:
        return None
    try:
        network = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        raise ConfigError(
            f"[DWH] DWH_INGRESS_CIDR {cidr!r} is not a CIDR block like 203.0.113.7/32"
        ) from None
    if network.prefixlen == 0 and not allow_anywhere:
        raise ConfigError(
            f"[DWH] DWH_INGRESS_CIDR {cidr} opens the cluster to the whole internet; use your own "
            "address (e.g. 203.0.113.7/32) or pass --allow-anywhere if you really mean it"
        )
    return str(network)


def wants_public_access(cidr):
    """Only an address outside the private ranges (a laptop's) needs a publicly accessible
    cluster; a range inside them is the VPC's own, and no DWH_INGRESS_CIDR means private."""
    if cidr is None:
        return False
    network = ipaddress.ip_network(cidr)
    inside = (network.version == r.version and network.subnet_of(r) for r in PRIVATE_RANGES)
    return not any(inside)


def security_groups(ec2, cluster):
    """The cluster's VPC security groups (or the default VPC's default group)."""
    groups = [group["VpcSecurityGroupId"] for group in cluster.get("VpcSecurityGroups", [])]
    if groups:
        return groups
    vpc_filter = [{"Name": "isDefault", "Values": ["true"]}]
    vpc = ec2.describe_vpcs(Filters=vpc_filter)["Vpcs"][0]["VpcId"]
    found = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "group-name", "Values": ["default"]}]
    )["SecurityGroups"]
    return [group["GroupId"] for group in found]


def allow_ingress(ec2, cluster, cidr, port):
    for group in security_groups(ec2, cluster):
        try:
            ec2.authorize_security_group_ingress(
                GroupId=group,
                IpPermissions=[
                    {
                        "IpProtocol": "tcp",
                        "FromPort": port,
                        "ToPort": port,
                        "IpRanges": [{"CidrIp": cidr, "Description": "Sparkify DWH"}],
                    }
                ],
            )
            log.info("allowed %s to port %d in security group %s", cidr, port, group)
        except botocore.exceptions.ClientError as error:
            if error.response["Error"]["Code"] != "InvalidPermission.Duplicate":
                raise
            log.info("%s already allowed to port %d in security group %s", cidr, port, group)


# --- The staging bucket ------------------------------------------------------------------------


def staging_bucket_name(settings, sts, region):
    """DWH_STAGING_BUCKET, else one name per account and region (bucket names are global)."""
    if settings["DWH_STAGING_BUCKET"]:
        return settings["DWH_STAGING_BUCKET"]
    return f"sparkify-staging-{sts.get_caller_identity()['Account']}-{region}"


def bucket_exists(s3, bucket):
    try:
        s3.head_bucket(Bucket=bucket)
        return True
    except botocore.exceptions.ClientError as error:
        if error.response["Error"]["Code"] in ("404", "NoSuchBucket"):
            return False
        raise


def ensure_staging_bucket(s3, bucket, region):
    """A private bucket in the data's region: COPY reads manifests only from the REGION it
    is given (https://docs.aws.amazon.com/redshift/latest/dg/copy-parameters-data-source-s3.html)."""
    if bucket_exists(s3, bucket):
        log.info("staging bucket %s already exists", bucket)
        return
    location = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    s3.create_bucket(Bucket=bucket, **location)
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    log.info("created staging bucket %s in %s", bucket, region)


def bucket_policy(s3, bucket):
    try:
        return json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    except botocore.exceptions.ClientError as error:
        if error.response["Error"]["Code"] == "NoSuchBucketPolicy":
            return None
        raise


def allow_audit_logs(s3, bucket, cluster_region):
    """Redshift's logging service may write under AUDIT_LOG_FOLDER/; the rest of a bucket
    policy of the user's own stays."""
    statements = audit_log_statements(bucket, AUDIT_LOG_FOLDER, cluster_region)
    policy = with_statements(bucket_policy(s3, bucket), statements)
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))


def remove_audit_log_statements(s3, bucket):
    policy = without_statements(bucket_policy(s3, bucket), AUDIT_LOG_SIDS)
    if policy is None:
        s3.delete_bucket_policy(Bucket=bucket)
    else:
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))


def delete_objects_under(s3, bucket, folder):
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{folder}/")
    for page in pages:
        objects = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if objects:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})


def delete_staging_bucket(s3, bucket):
    """What the pipeline and the cluster wrote (under STAGING_FOLDER/ and AUDIT_LOG_FOLDER/),
    then the bucket if nothing else is in it: a DWH_STAGING_BUCKET of the user's own keeps
    everything else, its policy without our statements."""
    if not bucket_exists(s3, bucket):
        log.info("staging bucket %s does not exist", bucket)
        return
    for folder in (STAGING_FOLDER, AUDIT_LOG_FOLDER):
        delete_objects_under(s3, bucket, folder)
    if s3.list_objects_v2(Bucket=bucket, MaxKeys=1).get("KeyCount", 0):
        remove_audit_log_statements(s3, bucket)
        log.info("staging bucket %s holds objects of its own outside %s/: kept", bucket, STAGING_FOLDER)
        return
    s3.delete_bucket(Bucket=bucket)
    log.info("deleted staging bucket %s (with the cluster's audit logs)", bucket)


# --- Audit logging -------------------------------------------------------------------------------


def ensure_audit_logging(clients, identifier, bucket, bucket_region):
    """Connection and user logs into the staging bucket, under AUDIT_LOG_FOLDER/. The bucket
    "Must be in the same region as the cluster" (API_EnableLogging.html): otherwise none."""
    cluster_region = clients.redshift.meta.region_name
    if cluster_region != bucket_region:
        log.warning(
            "cluster %s: audit logging not enabled: Redshift writes audit logs only to a bucket in "
            "the cluster's region %s, and the staging bucket %s is in %s ([S3] REGION)",
            identifier,
            cluster_region,
            bucket,
            bucket_region,
        )
        return
    allow_audit_logs(clients.s3(bucket_region), bucket, cluster_region)
    wanted = audit_logging(bucket)
    where = f"s3://{bucket}/{wanted['S3KeyPrefix']}"
    status = clients.redshift.describe_logging_status(ClusterIdentifier=identifier)
    if status.get("LoggingEnabled") and {key: status.get(key) for key in wanted} == wanted:
        log.info("cluster %s already writes its audit logs to %s", identifier, where)
        return
    clients.redshift.enable_logging(ClusterIdentifier=identifier, **wanted)
    log.info(
        "cluster %s writes its audit logs (%s) to %s", identifier, ", ".join(wanted["LogExports"]), where
    )


def audit_logging(bucket):
    """EnableLogging's settings: the connection and user logs (the user activity log stays
    off, CLUSTER_PARAMETERS), as files in the staging bucket."""
    return {
        "BucketName": bucket,
        "S3KeyPrefix": f"{AUDIT_LOG_FOLDER}/",
        "LogDestinationType": "s3",
        "LogExports": ["connectionlog", "userlog"],
    }


# --- Reading the config ----------------------------------------------------------------------


def s3_setting(config_path, name):
    """[S3] <name> as the scripts read it: SPARKIFY_S3_<NAME> first, then the file, then
    the default (sparkify/config.py)."""
    key = KEYS_BY_LABEL[("S3", name)]
    value = os.environ.get(key.env_var)
    if value is None:
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(config_path, encoding="utf-8")
        value = parser.get("S3", name, fallback="")
    return value.strip() or (key.default or "")


def data_region(config_path):
    """[S3] REGION of the config (the data's region, where the staging bucket must be)."""
    region = s3_setting(config_path, "REGION")
    if not AWS_REGION.fullmatch(region):
        raise ConfigError(f"{config_path}: [S3] REGION is not an AWS region name: {region!r}")
    return region


def copy_sources(config_path):
    """Every [S3] source (the datasets' folders and JSONPaths files) as an S3 location, each
    required: the role grants COPY exactly these. A local path is a one-line error, before
    anything is made."""
    locations = []
    for name in SOURCE_KEYS:
        value = s3_setting(config_path, name)
        if not value:
            raise ConfigError(
                f"{config_path}: [S3] {name} is required: the role lets COPY read exactly the [S3] "
                f"sources; set it in the file or in {KEYS_BY_LABEL[('S3', name)].env_var}"
            )
        locations.append(s3_location(f"{config_path}: [S3] {name}", value))
    return locations


# --- Writing the config back ------------------------------------------------------------------


def set_config_values(text, values):
    """The config text with [SECTION] KEY = value set for each ((section, key), value);
    comments, order and every other line stay as they were."""
    lines = text.splitlines()
    for (section, key), value in values.items():
        header = next(
            (i for i, line in enumerate(lines) if line.strip().lower() == f"[{section.lower()}]"), None
        )
        if header is None:
            lines += ["", f"[{section}]", f"{key} = {value}"]
            continue
        end = next(
            (i for i in range(header + 1, len(lines)) if lines[i].lstrip().startswith("[")), len(lines)
        )
        pattern = re.compile(rf"\s*{re.escape(key)}\s*[=:]", re.IGNORECASE)
        existing = next((i for i in range(header + 1, end) if pattern.match(lines[i])), None)
        if existing is None:
            lines.insert(header + 1, f"{key} = {value}")
        else:
            lines[existing] = f"{key} = {value}"
    return "\n".join(lines) + "\n"


def write_back(config_path, values):
    """values: {(section, key): value}, written into the config file."""
    text = config_path.read_text(encoding="utf-8")
    updated = set_config_values(text, values)
    if updated != text:
        config_path.write_text(updated, encoding="utf-8")
        names = ", ".join(f"[{section}] {key}" for section, key in values)
        log.info("wrote %s into %s", names, config_path)


# --- Commands -------------------------------------------------------------------------------


def create(args, clients):
    settings = load_dwh_settings(args.config, need_password=True)
    mask_secrets([settings["DWH_DB_PASSWORD"]])
    refuse_default_names(settings, args.config)
    cidr = checked_cidr(settings["DWH_INGRESS_CIDR"], args.allow_anywhere)
    sources = copy_sources(args.config)
    region = data_region(args.config)
    bucket = staging_bucket_name(settings, clients.sts, region)
    ensure_staging_bucket(clients.s3(region), bucket, region)
    policy = copy_read_policy([*sources, S3Location(bucket, STAGING_FOLDER)])
    role_arn = ensure_role(clients.iam, settings["DWH_IAM_ROLE_NAME"], policy)
    group = parameter_group_name(settings)
    ensure_parameter_group(clients.redshift, group)
    options = cluster_options(settings, role_arn, group, wants_public_access(cidr))
    cluster = available_cluster(clients.redshift, options, args.poll)
    if cidr:
        allow_ingress(clients.ec2, cluster, cidr, int(settings["DWH_PORT"]))
    else:
        log.info(
            "no DWH_INGRESS_CIDR: cluster %s is reached from inside its VPC (docs/security.md)",
            options["ClusterIdentifier"],
        )
    ensure_audit_logging(clients, options["ClusterIdentifier"], bucket, region)
    host = cluster["Endpoint"]["Address"]
    write_back(
        args.config,
        {
            ("CLUSTER", "HOST"): host,
            ("IAM_ROLE", "ARN"): role_arn,
            ("S3", "STAGING_PREFIX"): f"s3://{bucket}/{STAGING_FOLDER}",
        },
    )
    log.info(
        "cluster %s is available at %s:%s", settings["DWH_CLUSTER_IDENTIFIER"], host, settings["DWH_PORT"]
    )
    log.info(
        "next, as the master user: python aws_setup.py roles --config %s (the loader, analysts and"
        ' operators: README "Who can do what")',
        args.config,
    )


def available_cluster(redshift, options, poll):
    """The cluster, created or brought up to date, once it is available."""
    identifier = options["ClusterIdentifier"]
    ensure_cluster(redshift, options)
    cluster = wait_for(redshift, identifier, "available", poll=poll)
    changes = update_cluster(redshift, cluster, options)
    if changes:
        cluster = wait_for(redshift, identifier, "available", poll=poll)
    warn_if_reboot_needed(cluster, changes)
    return cluster


def status(args, clients):
    settings = load_dwh_settings(args.config)
    report_cluster(clients.redshift, settings["DWH_CLUSTER_IDENTIFIER"])
    report_role(clients.iam, settings["DWH_IAM_ROLE_NAME"])
    region = data_region(args.config)
    bucket = staging_bucket_name(settings, clients.sts, region)
    found = "exists" if bucket_exists(clients.s3(region), bucket) else "does not exist"
    log.info("staging bucket %s (%s): %s", bucket, region, found)


def delete(args, clients):
    settings = load_dwh_settings(args.config)
    delete_cluster(clients.redshift, settings["DWH_CLUSTER_IDENTIFIER"], poll=args.poll)
    delete_parameter_group(clients.redshift, parameter_group_name(settings))
    delete_role(clients.iam, settings["DWH_IAM_ROLE_NAME"])
    region = data_region(args.config)
    delete_staging_bucket(clients.s3(region), staging_bucket_name(settings, clients.sts, region))


def make_roles(args, clients):
    """The warehouse's users and roles, as the cluster's master user (sparkify/roles.py)."""
    roles.setup(args.config)


COMMANDS = {"create": create, "status": status, "delete": delete, "roles": make_roles}


def run_command(args, clients=None):
    try:
        COMMANDS[args.command](args, clients or Clients())
    except botocore.exceptions.NoCredentialsError:
        raise ConfigError(
            "no AWS credentials found: set AWS_PROFILE, or run `aws configure`/`aws sso login`"
        ) from None
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:
        raise AwsError(str(error).splitlines()[0]) from None


def build_parser():
    parser = cli.parser_for(__doc__)
    parser.add_argument("command", choices=sorted(COMMANDS), help="what to do")
    parser.add_argument(
        "--allow-anywhere", action="store_true", help="let DWH_INGRESS_CIDR be 0.0.0.0/0 (the whole internet)"
    )
    parser.add_argument(
        "--poll",
        type=float,
        default=POLL_SECONDS,
        help=f"seconds between status checks while waiting (default {POLL_SECONDS})",
    )
    return parser


def main(argv=None, clients=None):
    args, exit_code = cli.parse(build_parser(), argv)
    if args is None:
        return exit_code
    return cli.run(lambda parsed: run_command(parsed, clients), args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
