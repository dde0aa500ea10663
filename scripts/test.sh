#!/usr/bin/env bash
# Installs what Berth's tests need (Debian packages, cargo-nextest, a Python
# virtualenv with the aws CLI, boto3 and pytest from PyPI) and runs the
# whole suite: the Rust tests (unit, router, store on SQLite and
# PostgreSQL, binary) and the compatibility tests that drive a real
# `berth up` with the aws CLI and boto3.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

apt_install ca-certificates postgresql python3-venv runc tini nftables iproute2 skopeo umoci docker-registry busybox-static
# The ACM and load-balancing tests make certificates with openssl and verify TLS with curl.
apt_install openssl curl
# The private registry of the task IAM test wants basic auth: htpasswd -B makes its bcrypt line.
apt_install apache2-utils
# Micro-VM isolation: QEMU (microvm machine, TCG where KVM cannot run the
# guest), mkfs.ext4 for image disks, and what scripts/microvm-kernel.sh
# needs to turn Debian's cloud kernel (downloaded, not installed) into the
# guest kernel, once, in /var/lib/berth/microvm/kernel.
apt_install qemu-system-x86 e2fsprogs lz4 kmod
if [ "$(id -u)" -eq 0 ]; then scripts/microvm-kernel.sh; fi
need_cargo
command -v cargo-nextest >/dev/null 2>&1 || cargo install --locked cargo-nextest

VENV=.venv-test
if [ ! -x "$VENV/bin/pytest" ] || ! cmp -s tests/compat/requirements.txt "$VENV/requirements.txt"; then
  echo "== creating $VENV (aws CLI, boto3, pytest from PyPI)"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r tests/compat/requirements.txt
  cp tests/compat/requirements.txt "$VENV/requirements.txt"
fi

# The AWS SDK for JavaScript v3, a second SDK family for the compatibility
# tests, into tests/compat/js/node_modules (gitignored; versions pinned in
# its package.json).
if command -v npm >/dev/null 2>&1 || apt_install nodejs npm; then
  if [ ! -d tests/compat/js/node_modules/@aws-sdk/client-scheduler ] || [ tests/compat/js/package.json -nt tests/compat/js/node_modules ]; then
    echo "== installing the AWS SDK for JavaScript v3 (npm)"
    (cd tests/compat/js && npm install --no-audit --no-fund --no-package-lock --silent && touch node_modules)
  fi
fi

echo "== wire types are up to date with botocore's model"
"$VENV/bin/python" tools/codegen/gen_wire.py ecs 2014-11-13 crates/berth-wire/src/ecs.rs --check
"$VENV/bin/python" tools/codegen/gen_wire.py logs 2014-03-28 crates/berth-wire/src/logs.rs --check
# EC2, STS, CloudWatch and EventBridge Scheduler: only the operations Berth serves (the edge
# still knows every operation name of each model).
EC2_OPS=AuthorizeSecurityGroupEgress,AuthorizeSecurityGroupIngress,CreateSecurityGroup,CreateSubnet,CreateTags
EC2_OPS=$EC2_OPS,DeleteSecurityGroup,DeleteSubnet,DeleteTags,DescribeAccountAttributes,DescribeAvailabilityZones
EC2_OPS=$EC2_OPS,DescribeNetworkInterfaces,DescribeRegions,DescribeSecurityGroupRules,DescribeSecurityGroups
EC2_OPS=$EC2_OPS,DescribeSubnets,DescribeTags,DescribeVpcs,RevokeSecurityGroupEgress,RevokeSecurityGroupIngress
"$VENV/bin/python" tools/codegen/gen_wire.py ec2 2016-11-15 crates/berth-wire/src/ec2.rs --operations "$EC2_OPS" --check
"$VENV/bin/python" tools/codegen/gen_wire.py sts 2011-06-15 crates/berth-wire/src/sts.rs --operations AssumeRole,GetCallerIdentity,GetSessionToken --check
"$VENV/bin/python" tools/codegen/gen_wire.py cloudwatch 2010-08-01 crates/berth-wire/src/cloudwatch.rs --operations ListMetrics,PutMetricData,GetMetricData,GetMetricStatistics,PutMetricAlarm,DescribeAlarms,DescribeAlarmsForMetric,DescribeAlarmHistory,SetAlarmState,EnableAlarmActions,DisableAlarmActions,DeleteAlarms,TagResource,UntagResource,ListTagsForResource --check
"$VENV/bin/python" tools/codegen/gen_wire.py ce 2017-10-25 crates/berth-wire/src/ce.rs --operations GetCostAndUsage --check
"$VENV/bin/python" tools/codegen/gen_wire.py scheduler 2021-06-30 crates/berth-wire/src/scheduler.rs --operations GetSchedule,ListScheduleGroups,ListSchedules --check
# ELBv2 and ACM: the load balancer control plane's operations.
ELB_OPS=AddTags,CreateListener,CreateLoadBalancer,CreateRule,CreateTargetGroup,DeleteListener,DeleteLoadBalancer
ELB_OPS=$ELB_OPS,DeleteRule,DeleteTargetGroup,DeregisterTargets,DescribeAccountLimits,DescribeCapacityReservation
ELB_OPS=$ELB_OPS,DescribeListenerAttributes,DescribeListeners,DescribeLoadBalancerAttributes,DescribeLoadBalancers
ELB_OPS=$ELB_OPS,DescribeRules,DescribeSSLPolicies,DescribeTags,DescribeTargetGroupAttributes,DescribeTargetGroups
ELB_OPS=$ELB_OPS,DescribeTargetHealth,ModifyListener,ModifyListenerAttributes,ModifyLoadBalancerAttributes,ModifyRule
ELB_OPS=$ELB_OPS,ModifyTargetGroup,ModifyTargetGroupAttributes,RegisterTargets,RemoveTags,SetRulePriorities
"$VENV/bin/python" tools/codegen/gen_wire.py elbv2 2015-12-01 crates/berth-wire/src/elbv2.rs --operations "$ELB_OPS" --check
ACM_OPS=AddTagsToCertificate,DeleteCertificate,DescribeCertificate,GetCertificate,ImportCertificate,ListCertificates,ListTagsForCertificate
"$VENV/bin/python" tools/codegen/gen_wire.py acm 2015-12-08 crates/berth-wire/src/acm.rs --operations "$ACM_OPS" --check
# IAM (global, AWS Query): users, keys, roles, groups, policies, tags.
IAM_OPS=AddUserToGroup,AttachGroupPolicy,AttachRolePolicy,AttachUserPolicy,CreateAccessKey,CreateGroup
IAM_OPS=$IAM_OPS,CreatePolicy,CreatePolicyVersion,CreateRole,CreateUser,DeleteAccessKey,DeleteGroup,DeleteGroupPolicy
IAM_OPS=$IAM_OPS,DeletePolicy,DeletePolicyVersion,DeleteRole,DeleteRolePolicy,DeleteUser,DeleteUserPolicy,DetachGroupPolicy
IAM_OPS=$IAM_OPS,DetachRolePolicy,DetachUserPolicy,GetAccessKeyLastUsed,GetGroup,GetGroupPolicy,GetPolicy,GetPolicyVersion
IAM_OPS=$IAM_OPS,GetRole,GetRolePolicy,GetUser,GetUserPolicy,ListAccessKeys,ListAttachedGroupPolicies,ListAttachedRolePolicies
IAM_OPS=$IAM_OPS,ListAttachedUserPolicies,ListGroupPolicies,ListGroups,ListGroupsForUser,ListPolicies,ListPolicyVersions
IAM_OPS=$IAM_OPS,ListRolePolicies,ListRoleTags,ListRoles,ListUserPolicies,ListUserTags,ListUsers,PutGroupPolicy
IAM_OPS=$IAM_OPS,PutRolePolicy,PutUserPolicy,RemoveUserFromGroup,SetDefaultPolicyVersion,TagRole,TagUser,UntagRole
IAM_OPS=$IAM_OPS,UntagUser,UpdateAccessKey,UpdateAssumeRolePolicy,UpdateRole,UpdateUser
"$VENV/bin/python" tools/codegen/gen_wire.py iam 2010-05-08 crates/berth-wire/src/iam.rs --operations "$IAM_OPS" --check
# Cloud Map (servicediscovery): DiscoverInstances' `data-` host prefix is the same endpoint at Berth.
SD_OPS=CreateHttpNamespace,CreatePrivateDnsNamespace,CreatePublicDnsNamespace,CreateService,DeleteNamespace,DeleteService
SD_OPS=$SD_OPS,DeregisterInstance,DiscoverInstances,DiscoverInstancesRevision,GetInstance,GetInstancesHealthStatus
SD_OPS=$SD_OPS,GetNamespace,GetOperation,GetService,ListInstances,ListNamespaces,ListOperations,ListServices
SD_OPS=$SD_OPS,ListTagsForResource,RegisterInstance,TagResource,UntagResource,UpdateInstanceCustomHealthStatus,UpdateService
"$VENV/bin/python" tools/codegen/gen_wire.py servicediscovery 2017-03-14 crates/berth-wire/src/servicediscovery.rs --operations "$SD_OPS" --check

# SSM Parameter Store and Secrets Manager: parameters, secrets and their tags.
SSM_OPS=AddTagsToResource,DeleteParameter,DeleteParameters,DescribeParameters,GetParameter,GetParameterHistory
SSM_OPS=$SSM_OPS,GetParameters,GetParametersByPath,LabelParameterVersion,ListTagsForResource,PutParameter,RemoveTagsFromResource
"$VENV/bin/python" tools/codegen/gen_wire.py ssm 2014-11-06 crates/berth-wire/src/ssm.rs --operations "$SSM_OPS" --check
SM_OPS=CreateSecret,DeleteSecret,DescribeSecret,GetSecretValue,ListSecretVersionIds,ListSecrets,PutSecretValue
SM_OPS=$SM_OPS,RestoreSecret,TagResource,UntagResource,UpdateSecret
"$VENV/bin/python" tools/codegen/gen_wire.py secretsmanager 2017-10-17 crates/berth-wire/src/secretsmanager.rs --operations "$SM_OPS" --check

echo "== cargo nextest (unit, router, store on SQLite and PostgreSQL, binary)"
cargo build --workspace --bins
cargo nextest run --workspace --no-fail-fast

echo "== compatibility: the aws CLI and boto3 against a real berth up"
BERTH_BIN="$(target_dir)/debug/berth" PATH="$PWD/$VENV/bin:$PATH" \
  "$VENV/bin/pytest" -q tests/compat
