// A few calls through the AWS SDK for JavaScript v3 (its own EC2, Query,
// JSON and REST-JSON serializers and parsers) against the Berth at BERTH_ENDPOINT, with
// the credentials and region from the files berth up writes. Prints what
// it saw as one JSON document for tests/compat/test_js_sdk.py to check.
import { EC2Client, CreateSecurityGroupCommand, AuthorizeSecurityGroupIngressCommand,
  DescribeSecurityGroupsCommand, DescribeSubnetsCommand, DescribeVpcsCommand, DeleteSecurityGroupCommand } from "@aws-sdk/client-ec2";
import { ECSClient, CreateClusterCommand, ListClustersCommand } from "@aws-sdk/client-ecs";
import { STSClient, GetCallerIdentityCommand } from "@aws-sdk/client-sts";
import { SchedulerClient, ListScheduleGroupsCommand, ListSchedulesCommand, GetScheduleCommand } from "@aws-sdk/client-scheduler";

const endpoint = process.env.BERTH_ENDPOINT;
const ec2 = new EC2Client({ endpoint });
const ecs = new ECSClient({ endpoint });
const sts = new STSClient({ endpoint });
const scheduler = new SchedulerClient({ endpoint });
const out = {};

out.identity = await sts.send(new GetCallerIdentityCommand({}));
const created = await ec2.send(new CreateSecurityGroupCommand({ GroupName: "js-web", Description: "from JS" }));
out.groupId = created.GroupId;
await ec2.send(new AuthorizeSecurityGroupIngressCommand({
  GroupId: created.GroupId,
  IpPermissions: [{ IpProtocol: "tcp", FromPort: 8080, ToPort: 8080, IpRanges: [{ CidrIp: "10.0.0.0/8" }] }],
}));
out.groups = (await ec2.send(new DescribeSecurityGroupsCommand({
  Filters: [{ Name: "group-name", Values: ["js-web"] }],
}))).SecurityGroups;
try {
  await ec2.send(new CreateSecurityGroupCommand({ GroupName: "js-web", Description: "again" }));
  out.duplicate = "no error";
} catch (e) {
  out.duplicate = { name: e.name, message: e.message, status: e.$metadata?.httpStatusCode };
}
out.subnets = (await ec2.send(new DescribeSubnetsCommand({}))).Subnets.map((s) => s.SubnetId);
out.vpcs = (await ec2.send(new DescribeVpcsCommand({}))).Vpcs.map((v) => v.VpcId);
await ec2.send(new DeleteSecurityGroupCommand({ GroupId: created.GroupId }));
out.cluster = (await ecs.send(new CreateClusterCommand({ clusterName: "js" }))).cluster.clusterArn;
out.clusters = (await ecs.send(new ListClustersCommand({}))).clusterArns;
out.schedules = (await scheduler.send(new ListSchedulesCommand({ State: "ENABLED", MaxResults: 5 }))).Schedules;
const groups = (await scheduler.send(new ListScheduleGroupsCommand({}))).ScheduleGroups;
out.scheduleGroups = groups.map((g) => ({ ...g, CreationDate: g.CreationDate instanceof Date ? g.CreationDate.toISOString() : "not a Date" }));
try {
  await scheduler.send(new GetScheduleCommand({ Name: "nightly", GroupName: "ops" }));
  out.missingSchedule = "no error";
} catch (e) {
  out.missingSchedule = { name: e.name, message: e.message, status: e.$metadata?.httpStatusCode };
}
for (const v of Object.values(out)) if (v && typeof v === "object") delete v.$metadata;
console.log(JSON.stringify(out));
