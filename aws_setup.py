"""Create, inspect or delete the AWS resources of the Redshift target, from the [DWH] section.

create: an IAM role Redshift can assume with read-only S3 access; the cluster (waits,
        with progress, until it is available); inbound access to its port from
        DWH_INGRESS_CIDR only; a private staging bucket in [S3] REGION for the run's
        manifests; then writes [CLUSTER] HOST, [IAM_ROLE] ARN and [S3] STAGING_PREFIX
        back into the config file, keeping everything else in it.
status: the cluster's state and endpoint, the role and the staging bucket.
delete: the cluster (waits until it is gone), the role, and the staging bucket with
        everything in it.
Every command can be run again: it says what already exists and does no harm.
AWS credentials and region come from boto3's usual places (AWS_PROFILE, AWS_REGION,
~/.aws/config, AWS_ENDPOINT_URL).

examples:
  export SPARKIFY_DWH_DWH_DB_PASSWORD='…'    # the cluster's master password, kept out of files
  python aws_setup.py create --config dwh.cfg
  python aws_setup.py create --config dwh.cfg --allow-anywhere   # DWH_INGRESS_CIDR may be 0.0.0.0/0
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

from sparkify import cli
from sparkify.config import AWS_REGION, load_dwh_settings
from sparkify.errors import ConfigError, SparkifyError
from sparkify.output import mask_secrets

log = logging.getLogger("sparkify")

S3_READ_POLICY = "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"
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


def ensure_role(iam, name):
    arn = find_role_arn(iam, name)
    if arn:
        log.info("IAM role %s already exists", name)
    else:
        arn = iam.create_role(
            RoleName=name,
            Description="Lets Redshift read the Sparkify data in S3",
            AssumeRolePolicyDocument=json.dumps(ASSUME_ROLE_POLICY),
        )["Role"]["Arn"]
        log.info("created IAM role %s", name)
    iam.attach_role_policy(RoleName=name, PolicyArn=S3_READ_POLICY)  # idempotent
    return arn


def delete_role(iam, name):
    if not find_role_arn(iam, name):
        log.info("IAM role %s does not exist", name)
        return
    for policy in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
        iam.detach_role_policy(RoleName=name, PolicyArn=policy["PolicyArn"])
    iam.delete_role(RoleName=name)
    log.info("deleted IAM role %s", name)


# --- The cluster ----------------------------------------------------------------------------


def find_cluster(redshift, identifier):
    try:
        return redshift.describe_clusters(ClusterIdentifier=identifier)["Clusters"][0]
    except redshift.exceptions.ClusterNotFoundFault:
        return None


def ensure_cluster(redshift, settings, role_arn):
    identifier = settings["DWH_CLUSTER_IDENTIFIER"]
    cluster = find_cluster(redshift, identifier)
    if cluster:
        log.info("cluster %s already exists (%s)", identifier, cluster["ClusterStatus"])
        return cluster
    options = {
        "ClusterIdentifier": identifier,
        "ClusterType": settings["DWH_CLUSTER_TYPE"],
        "NodeType": settings["DWH_NODE_TYPE"],
        "DBName": settings["DWH_DB"],
        "MasterUsername": settings["DWH_DB_USER"],
        "MasterUserPassword": settings["DWH_DB_PASSWORD"],
        "Port": int(settings["DWH_PORT"]),
        "IamRoles": [role_arn],
    }
    if settings["DWH_CLUSTER_TYPE"] == "multi-node":
        options["NumberOfNodes"] = int(settings["DWH_NUM_NODES"])
    cluster = redshift.create_cluster(**options)["Cluster"]
    log.info(
        "creating cluster %s (%s × %s)", identifier, settings["DWH_NUM_NODES"], settings["DWH_NODE_TYPE"]
    )
    return cluster


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


# --- Network --------------------------------------------------------------------------------


def checked_cidr(cidr, allow_anywhere):
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


def delete_staging_bucket(s3, bucket):
    """What the pipeline wrote (under STAGING_FOLDER/), then the bucket if nothing else is
    in it: a DWH_STAGING_BUCKET of the user's own keeps everything else."""
    if not bucket_exists(s3, bucket):
        log.info("staging bucket %s does not exist", bucket)
        return
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{STAGING_FOLDER}/")
    for page in pages:
        objects = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if objects:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
    if s3.list_objects_v2(Bucket=bucket, MaxKeys=1).get("KeyCount", 0):
        log.info("staging bucket %s holds objects of its own outside %s/: kept", bucket, STAGING_FOLDER)
        return
    s3.delete_bucket(Bucket=bucket)
    log.info("deleted staging bucket %s", bucket)


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
    cidr = checked_cidr(settings["DWH_INGRESS_CIDR"], args.allow_anywhere)
    role_arn = ensure_role(clients.iam, settings["DWH_IAM_ROLE_NAME"])
    ensure_cluster(clients.redshift, settings, role_arn)
    cluster = wait_for(clients.redshift, settings["DWH_CLUSTER_IDENTIFIER"], "available", poll=args.poll)
    allow_ingress(clients.ec2, cluster, cidr, int(settings["DWH_PORT"]))
    region = data_region(args.config)
    bucket = staging_bucket_name(settings, clients.sts, region)
    ensure_staging_bucket(clients.s3(region), bucket, region)
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


def status(args, clients):
    settings = load_dwh_settings(args.config)
    identifier = settings["DWH_CLUSTER_IDENTIFIER"]
    cluster = find_cluster(clients.redshift, identifier)
    if cluster:
        endpoint = cluster.get("Endpoint") or {}
        log.info(
            "cluster %s: %s, endpoint %s:%s",
            identifier,
            cluster["ClusterStatus"],
            endpoint.get("Address", "(none yet)"),
            endpoint.get("Port", "-"),
        )
    else:
        log.info("cluster %s: does not exist", identifier)
    role_arn = find_role_arn(clients.iam, settings["DWH_IAM_ROLE_NAME"])
    log.info("IAM role %s: %s", settings["DWH_IAM_ROLE_NAME"], role_arn or "does not exist")
    region = data_region(args.config)
    bucket = staging_bucket_name(settings, clients.sts, region)
    found = "exists" if bucket_exists(clients.s3(region), bucket) else "does not exist"
    log.info("staging bucket %s (%s): %s", bucket, region, found)


def delete(args, clients):
    settings = load_dwh_settings(args.config)
    delete_cluster(clients.redshift, settings["DWH_CLUSTER_IDENTIFIER"], poll=args.poll)
    delete_role(clients.iam, settings["DWH_IAM_ROLE_NAME"])
    region = data_region(args.config)
    delete_staging_bucket(clients.s3(region), staging_bucket_name(settings, clients.sts, region))


def data_region(config_path):
    """[S3] REGION of the config (the data's region, where the staging bucket must be)."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(config_path, encoding="utf-8")
    region = os.environ.get("SPARKIFY_S3_REGION") or parser.get("S3", "REGION", fallback="") or "us-west-2"
    if not AWS_REGION.fullmatch(region.strip()):
        raise ConfigError(f"{config_path}: [S3] REGION is not an AWS region name: {region!r}")
    return region.strip()


COMMANDS = {"create": create, "status": status, "delete": delete}


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
