//! The evaluator against AWS's own documented examples: each case is a
//! policy (or policies), a request and the decision the IAM User Guide
//! gives for it. Sources, by page of the IAM User Guide:
//! "Policy evaluation logic" and "Identity-based policies and resource-
//! based policies" (deny over allow, implicit deny, session policies),
//! "Single-valued context key policy examples" (RunTask with
//! aws:RequestTag/environment and ecs:cluster), "Multivalued context key
//! examples" (ForAllValues/ForAnyValue with aws:TagKeys and their result
//! tables), "IAM JSON policy elements: Condition operators" (missing keys,
//! …IfExists, Null, negated operators), "Conditions with multiple context
//! keys or values" (AND across keys, OR across values, NOR for negated
//! operators), "IAM policy elements: Variables and tags"
//! (`${aws:username}`, defaults, `${*}`), and the example identity-based
//! policies (date ranges, source IP, MFA).

use std::collections::BTreeMap;

use berth_iam::{Decision, PolicyDocument, Request, evaluate, trust_allows};

const ACCOUNT: &str = "111122223333";
const ALICE: &str = "arn:aws:iam::111122223333:user/alice";

struct Case {
    name: &'static str,
    policies: &'static [&'static str],
    session: Option<&'static str>,
    action: &'static str,
    resource: &'static str,
    keys: &'static [(&'static str, &'static [&'static str])],
    expect: Decision,
}

use Decision::{Allow, ExplicitDeny, ImplicitDeny};

const ALLOW_ECS_READ: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ecs:Describe*","ecs:List*"],"Resource":"*"}]}"#;
const ALLOW_ALL: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
const DENY_RUNTASK: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"ecs:RunTask","Resource":"*"}]}"#;

/// "Single-valued context key policy examples": one condition block with
/// several keys (AND), each with several values (OR).
const RUN_IN_CLUSTERS: &str = r#"{"Version":"2012-10-17","Statement":[{
  "Effect":"Allow","Action":["ecs:RunTask","ecs:StartTask"],"Resource":["*"],
  "Condition":{
    "StringEquals":{"aws:RequestTag/environment":["production","prod-backup"]},
    "ArnEquals":{"ecs:cluster":["arn:aws:ecs:us-east-1:111122223333:cluster/default1","arn:aws:ecs:us-east-1:111122223333:cluster/default2"]}}}]}"#;

/// "Multivalued context key examples": deny tagging unless every tag key
/// starts with key1.
const DENY_TAGS_NOT_KEY1: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":"iam:Tag*","Resource":"*"},
  {"Sid":"DenyRestrictedTags","Effect":"Deny","Action":["iam:Tag*","iam:UnTag*"],"Resource":["*"],
   "Condition":{"ForAllValues:StringNotLike":{"aws:TagKeys":"key1*"}}}]}"#;

/// The same with two values: every key must start with key1 or key2.
const DENY_TAGS_NOT_KEY1_OR_KEY2: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":"iam:Tag*","Resource":"*"},
  {"Effect":"Deny","Action":["iam:Tag*","iam:UnTag*"],"Resource":["*"],
   "Condition":{"ForAllValues:StringNotLike":{"aws:TagKeys":["key1*","key2*"]}}}]}"#;

/// "Deny policy with condition set operator ForAnyValue": deny if any tag
/// key is webserver.
const DENY_ANY_WEBSERVER: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":"ec2:CreateTags","Resource":"*"},
  {"Effect":"Deny","Action":"ec2:CreateTags","Resource":"*",
   "Condition":{"ForAnyValue:StringEquals":{"aws:TagKeys":["webserver"]}}}]}"#;

/// Allow with ForAllValues + a Null check so that no tags is not allowed.
const ALLOW_ONLY_KNOWN_TAGS: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":"ecs:TagResource","Resource":"*",
   "Condition":{"ForAllValues:StringEquals":{"aws:TagKeys":["environment","costcenter"]},"Null":{"aws:TagKeys":"false"}}}]}"#;

/// Example identity-based policy: deny everything but MFA set-up without MFA.
const DENY_WITHOUT_MFA: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":"*","Resource":"*"},
  {"Sid":"DenyAllExceptListedIfNoMFA","Effect":"Deny",
   "NotAction":["iam:CreateVirtualMFADevice","iam:EnableMFADevice","iam:GetUser","iam:ListMFADevices","iam:ListVirtualMFADevices","iam:ResyncMFADevice","sts:GetSessionToken"],
   "Resource":"*","Condition":{"BoolIfExists":{"aws:MultiFactorAuthPresent":"false"}}}]}"#;

/// Example identity-based policy: deny access from outside these ranges.
const DENY_OUTSIDE_IPS: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":"*","Resource":"*"},
  {"Effect":"Deny","Action":"*","Resource":"*",
   "Condition":{"NotIpAddress":{"aws:SourceIp":["192.0.2.0/24","203.0.113.0/24"]},"Bool":{"aws:ViaAWSService":"false"}}}]}"#;

/// Example identity-based policy: allow within a date range.
const ALLOW_IN_RANGE: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":"ecs:*","Resource":"*",
   "Condition":{"DateGreaterThan":{"aws:CurrentTime":"2020-04-01T00:00:00Z"},"DateLessThan":{"aws:CurrentTime":"2020-06-30T23:59:59Z"}}}]}"#;

/// "Variables and tags": each user's own log group.
const OWN_LOG_GROUP: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":"logs:*","Resource":"arn:aws:logs:*:*:log-group:home/${aws:username}:*"}]}"#;

/// Variables are text without Version 2012-10-17.
const OWN_LOG_GROUP_LEGACY: &str = r#"{"Statement":[
  {"Effect":"Allow","Action":"logs:*","Resource":"arn:aws:logs:*:*:log-group:home/${aws:username}:*"}]}"#;

/// ABAC: the principal's team tag names the cluster.
const TEAM_CLUSTER: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":"ecs:RunTask","Resource":"*",
   "Condition":{"StringEquals":{"ecs:cluster":"arn:aws:ecs:us-east-1:111122223333:cluster/${aws:PrincipalTag/team, 'none'}"}}}]}"#;

/// Condition operators: a negated operator is the NOR of its values and
/// true when the key is absent.
const NOT_PROD_CLUSTERS: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":"ecs:*","Resource":"*",
   "Condition":{"StringNotEquals":{"ecs:cluster":["arn:aws:ecs:us-east-1:111122223333:cluster/prod","arn:aws:ecs:us-east-1:111122223333:cluster/prod-eu"]}}}]}"#;

/// NotResource: everything except one cluster.
const ALL_BUT_PROD: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":"ecs:DeleteCluster","NotResource":"arn:aws:ecs:*:*:cluster/prod"}]}"#;

const TASK_DEF: &str = "arn:aws:ecs:us-east-1:111122223333:task-definition/web:3";
const CLUSTER1: &str = "arn:aws:ecs:us-east-1:111122223333:cluster/default1";
const CLUSTER2: &str = "arn:aws:ecs:us-east-1:111122223333:cluster/default2";
const CLUSTER3: &str = "arn:aws:ecs:us-east-1:111122223333:cluster/default3";

const CASES: &[Case] = &[
    // Policy evaluation logic: explicit deny > allow > implicit deny.
    Case { name: "no policy: implicit deny", policies: &[], session: None, action: "ecs:ListClusters", resource: "*", keys: &[], expect: ImplicitDeny },
    Case { name: "allowed by a wildcard action", policies: &[ALLOW_ECS_READ], session: None, action: "ecs:DescribeTasks", resource: "*", keys: &[], expect: Allow },
    Case { name: "action names are case-insensitive", policies: &[ALLOW_ECS_READ], session: None, action: "ECS:listclusters", resource: "*", keys: &[], expect: Allow },
    Case { name: "not allowed: implicit deny", policies: &[ALLOW_ECS_READ], session: None, action: "ecs:RunTask", resource: TASK_DEF, keys: &[], expect: ImplicitDeny },
    Case { name: "an explicit deny beats an allow", policies: &[ALLOW_ALL, DENY_RUNTASK], session: None, action: "ecs:RunTask", resource: TASK_DEF, keys: &[], expect: ExplicitDeny },
    Case { name: "the deny applies to its action only", policies: &[ALLOW_ALL, DENY_RUNTASK], session: None, action: "ecs:StopTask", resource: "*", keys: &[], expect: Allow },
    // Session policies limit the identity's permissions.
    Case { name: "session policy within the role's", policies: &[ALLOW_ALL], session: Some(ALLOW_ECS_READ), action: "ecs:ListTasks", resource: "*", keys: &[], expect: Allow },
    Case { name: "session policy does not allow", policies: &[ALLOW_ALL], session: Some(ALLOW_ECS_READ), action: "ecs:RunTask", resource: TASK_DEF, keys: &[], expect: ImplicitDeny },
    Case { name: "session policy grants nothing the identity lacks", policies: &[ALLOW_ECS_READ], session: Some(ALLOW_ALL), action: "ecs:RunTask", resource: TASK_DEF, keys: &[], expect: ImplicitDeny },
    Case { name: "deny in a session policy", policies: &[ALLOW_ALL], session: Some(DENY_RUNTASK), action: "ecs:RunTask", resource: TASK_DEF, keys: &[], expect: ExplicitDeny },
    // Single-valued keys: AND across keys, OR across values.
    Case { name: "RunTask: production in default1", policies: &[RUN_IN_CLUSTERS], session: None, action: "ecs:RunTask", resource: TASK_DEF, keys: &[("aws:RequestTag/environment", &["production"]), ("ecs:cluster", &[CLUSTER1])], expect: Allow },
    Case { name: "RunTask: prod-backup in default2", policies: &[RUN_IN_CLUSTERS], session: None, action: "ecs:RunTask", resource: TASK_DEF, keys: &[("aws:RequestTag/environment", &["prod-backup"]), ("ecs:cluster", &[CLUSTER2])], expect: Allow },
    Case { name: "RunTask: staging is not a listed value", policies: &[RUN_IN_CLUSTERS], session: None, action: "ecs:RunTask", resource: TASK_DEF, keys: &[("aws:RequestTag/environment", &["staging"]), ("ecs:cluster", &[CLUSTER1])], expect: ImplicitDeny },
    Case { name: "RunTask: default3 is not a listed cluster", policies: &[RUN_IN_CLUSTERS], session: None, action: "ecs:RunTask", resource: TASK_DEF, keys: &[("aws:RequestTag/environment", &["production"]), ("ecs:cluster", &[CLUSTER3])], expect: ImplicitDeny },
    Case { name: "RunTask: no environment tag", policies: &[RUN_IN_CLUSTERS], session: None, action: "ecs:RunTask", resource: TASK_DEF, keys: &[("ecs:cluster", &[CLUSTER1])], expect: ImplicitDeny },
    // Multivalued keys: the documented result tables.
    Case { name: "ForAllValues:StringNotLike key1*: key1:legal", policies: &[DENY_TAGS_NOT_KEY1], session: None, action: "iam:TagUser", resource: ALICE, keys: &[("aws:TagKeys", &["key1:legal"])], expect: Allow },
    Case { name: "ForAllValues:StringNotLike key1*: key1:hr, key1:personnel", policies: &[DENY_TAGS_NOT_KEY1], session: None, action: "iam:TagUser", resource: ALICE, keys: &[("aws:TagKeys", &["key1:hr", "key1:personnel"])], expect: Allow },
    Case { name: "ForAllValues:StringNotLike key1*: key2:audit", policies: &[DENY_TAGS_NOT_KEY1], session: None, action: "iam:TagUser", resource: ALICE, keys: &[("aws:TagKeys", &["key2:audit"])], expect: ExplicitDeny },
    Case { name: "ForAllValues:StringNotLike key1*: no aws:TagKeys", policies: &[DENY_TAGS_NOT_KEY1], session: None, action: "iam:TagUser", resource: ALICE, keys: &[], expect: ExplicitDeny },
    Case { name: "ForAllValues:StringNotLike key1*,key2*: key1:legal, key2:audit", policies: &[DENY_TAGS_NOT_KEY1_OR_KEY2], session: None, action: "iam:TagUser", resource: ALICE, keys: &[("aws:TagKeys", &["key1:legal", "key2:audit"])], expect: Allow },
    Case { name: "ForAllValues:StringNotLike key1*,key2*: key3:legal", policies: &[DENY_TAGS_NOT_KEY1_OR_KEY2], session: None, action: "iam:TagUser", resource: ALICE, keys: &[("aws:TagKeys", &["key3:legal"])], expect: ExplicitDeny },
    Case { name: "ForAnyValue:StringEquals webserver: webserver, other", policies: &[DENY_ANY_WEBSERVER], session: None, action: "ec2:CreateTags", resource: "*", keys: &[("aws:TagKeys", &["webserver", "other"])], expect: ExplicitDeny },
    Case { name: "ForAnyValue:StringEquals webserver: environment", policies: &[DENY_ANY_WEBSERVER], session: None, action: "ec2:CreateTags", resource: "*", keys: &[("aws:TagKeys", &["environment"])], expect: Allow },
    Case { name: "ForAnyValue:StringEquals webserver: no aws:TagKeys", policies: &[DENY_ANY_WEBSERVER], session: None, action: "ec2:CreateTags", resource: "*", keys: &[], expect: Allow },
    Case { name: "ForAllValues with Null false: known keys", policies: &[ALLOW_ONLY_KNOWN_TAGS], session: None, action: "ecs:TagResource", resource: CLUSTER1, keys: &[("aws:TagKeys", &["environment", "costcenter"])], expect: Allow },
    Case { name: "ForAllValues with Null false: an unknown key", policies: &[ALLOW_ONLY_KNOWN_TAGS], session: None, action: "ecs:TagResource", resource: CLUSTER1, keys: &[("aws:TagKeys", &["environment", "owner"])], expect: ImplicitDeny },
    Case { name: "ForAllValues with Null false: no keys", policies: &[ALLOW_ONLY_KNOWN_TAGS], session: None, action: "ecs:TagResource", resource: CLUSTER1, keys: &[], expect: ImplicitDeny },
    // …IfExists, NotAction, Bool.
    Case { name: "no MFA key: BoolIfExists denies", policies: &[DENY_WITHOUT_MFA], session: None, action: "ecs:RunTask", resource: TASK_DEF, keys: &[], expect: ExplicitDeny },
    Case { name: "MFA false: denied", policies: &[DENY_WITHOUT_MFA], session: None, action: "ecs:RunTask", resource: TASK_DEF, keys: &[("aws:MultiFactorAuthPresent", &["false"])], expect: ExplicitDeny },
    Case { name: "MFA true: allowed", policies: &[DENY_WITHOUT_MFA], session: None, action: "ecs:RunTask", resource: TASK_DEF, keys: &[("aws:MultiFactorAuthPresent", &["true"])], expect: Allow },
    Case { name: "no MFA, a NotAction-listed action: allowed", policies: &[DENY_WITHOUT_MFA], session: None, action: "iam:GetUser", resource: ALICE, keys: &[], expect: Allow },
    // IpAddress / NotIpAddress.
    Case { name: "from a listed range", policies: &[DENY_OUTSIDE_IPS], session: None, action: "ecs:ListClusters", resource: "*", keys: &[("aws:SourceIp", &["203.0.113.9"]), ("aws:ViaAWSService", &["false"])], expect: Allow },
    Case { name: "from elsewhere", policies: &[DENY_OUTSIDE_IPS], session: None, action: "ecs:ListClusters", resource: "*", keys: &[("aws:SourceIp", &["198.51.100.1"]), ("aws:ViaAWSService", &["false"])], expect: ExplicitDeny },
    Case { name: "from elsewhere via an AWS service", policies: &[DENY_OUTSIDE_IPS], session: None, action: "ecs:ListClusters", resource: "*", keys: &[("aws:SourceIp", &["198.51.100.1"]), ("aws:ViaAWSService", &["true"])], expect: Allow },
    // Dates.
    Case { name: "within the date range", policies: &[ALLOW_IN_RANGE], session: None, action: "ecs:ListClusters", resource: "*", keys: &[("aws:CurrentTime", &["2020-05-01T12:00:00Z"])], expect: Allow },
    Case { name: "after the date range", policies: &[ALLOW_IN_RANGE], session: None, action: "ecs:ListClusters", resource: "*", keys: &[("aws:CurrentTime", &["2021-01-01T00:00:00Z"])], expect: ImplicitDeny },
    // Policy variables.
    Case { name: "${aws:username}: own group", policies: &[OWN_LOG_GROUP], session: None, action: "logs:PutLogEvents", resource: "arn:aws:logs:us-east-1:111122223333:log-group:home/alice:log-stream:s", keys: &[("aws:username", &["alice"])], expect: Allow },
    Case { name: "${aws:username}: another's group", policies: &[OWN_LOG_GROUP], session: None, action: "logs:PutLogEvents", resource: "arn:aws:logs:us-east-1:111122223333:log-group:home/bob:log-stream:s", keys: &[("aws:username", &["alice"])], expect: ImplicitDeny },
    Case { name: "${aws:username}: no user name (a role session)", policies: &[OWN_LOG_GROUP], session: None, action: "logs:PutLogEvents", resource: "arn:aws:logs:us-east-1:111122223333:log-group:home/alice:log-stream:s", keys: &[], expect: ImplicitDeny },
    Case { name: "no Version 2012-10-17: a variable is text", policies: &[OWN_LOG_GROUP_LEGACY], session: None, action: "logs:PutLogEvents", resource: "arn:aws:logs:us-east-1:111122223333:log-group:home/alice:log-stream:s", keys: &[("aws:username", &["alice"])], expect: ImplicitDeny },
    Case { name: "principal tag names the cluster", policies: &[TEAM_CLUSTER], session: None, action: "ecs:RunTask", resource: TASK_DEF, keys: &[("aws:PrincipalTag/team", &["default1"]), ("ecs:cluster", &[CLUSTER1])], expect: Allow },
    Case { name: "principal tag names another cluster", policies: &[TEAM_CLUSTER], session: None, action: "ecs:RunTask", resource: TASK_DEF, keys: &[("aws:PrincipalTag/team", &["default2"]), ("ecs:cluster", &[CLUSTER1])], expect: ImplicitDeny },
    Case { name: "no principal tag: the default", policies: &[TEAM_CLUSTER], session: None, action: "ecs:RunTask", resource: TASK_DEF, keys: &[("ecs:cluster", &["arn:aws:ecs:us-east-1:111122223333:cluster/none"])], expect: Allow },
    // Negated operators: NOR, and true when the key is absent.
    Case { name: "StringNotEquals: another cluster", policies: &[NOT_PROD_CLUSTERS], session: None, action: "ecs:RunTask", resource: TASK_DEF, keys: &[("ecs:cluster", &[CLUSTER1])], expect: Allow },
    Case { name: "StringNotEquals: the second listed value", policies: &[NOT_PROD_CLUSTERS], session: None, action: "ecs:RunTask", resource: TASK_DEF, keys: &[("ecs:cluster", &["arn:aws:ecs:us-east-1:111122223333:cluster/prod-eu"])], expect: ImplicitDeny },
    Case { name: "StringNotEquals: key absent", policies: &[NOT_PROD_CLUSTERS], session: None, action: "ecs:ListClusters", resource: "*", keys: &[], expect: Allow },
    // NotResource; ARNs are case-sensitive.
    Case { name: "NotResource: another cluster", policies: &[ALL_BUT_PROD], session: None, action: "ecs:DeleteCluster", resource: CLUSTER1, keys: &[], expect: Allow },
    Case { name: "NotResource: the excluded cluster", policies: &[ALL_BUT_PROD], session: None, action: "ecs:DeleteCluster", resource: "arn:aws:ecs:us-east-1:111122223333:cluster/prod", keys: &[], expect: ImplicitDeny },
    Case { name: "ARNs are case-sensitive", policies: &[ALL_BUT_PROD], session: None, action: "ecs:DeleteCluster", resource: "arn:aws:ecs:us-east-1:111122223333:cluster/PROD", keys: &[], expect: Allow },
];

fn context(keys: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
    keys.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.iter().map(|s| (*s).to_owned()).collect())).collect()
}

fn parse(json: &str) -> PolicyDocument {
    PolicyDocument::parse(json).unwrap_or_else(|e| panic!("{e}: {json}"))
}

#[test]
fn documented_examples() {
    let mut failed = Vec::new();
    for case in CASES {
        let docs: Vec<PolicyDocument> = case.policies.iter().map(|p| parse(p)).collect();
        let docs: Vec<&PolicyDocument> = docs.iter().collect();
        let session = case.session.map(parse);
        let keys = context(case.keys);
        let req = Request { principal_arn: ALICE, principal_account: ACCOUNT, action: case.action, resource: case.resource, keys: &keys };
        let got = evaluate(&docs, session.as_ref(), &req);
        if got != case.expect {
            failed.push(format!("{}: expected {:?}, got {got:?}", case.name, case.expect));
        }
    }
    assert!(failed.is_empty(), "{} of {} cases:\n{}", failed.len(), CASES.len(), failed.join("\n"));
}

/// Trust policies (IAM User Guide, "Roles terms and concepts" and "IAM
/// JSON policy elements: Principal"): who may assume the role.
#[test]
fn trust_policy_examples() {
    let trust = PolicyDocument::parse_trust(
        r#"{"Version":"2012-10-17","Statement":[
          {"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole",
           "Condition":{"ArnLike":{"aws:SourceArn":"arn:aws:ecs:us-east-1:111122223333:*"}}},
          {"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111122223333:user/alice","arn:aws:iam::111122223333:role/deployer"]},"Action":["sts:AssumeRole","sts:TagSession"]},
          {"Effect":"Allow","Principal":{"AWS":"444455556666"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"sts:ExternalId":"secret-id"}}},
          {"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::111122223333:user/mallory"},"Action":"sts:*"}]}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let check = |principal: &str, account: &str, action: &str, keys: &[(&str, &[&str])]| {
        let keys = context(keys);
        trust_allows(&trust, &Request { principal_arn: principal, principal_account: account, action, resource: "*", keys: &keys })
    };
    let ecs_source = [("aws:SourceArn", &["arn:aws:ecs:us-east-1:111122223333:task/c/1"][..])];
    assert_eq!(check("ecs-tasks.amazonaws.com", "", "sts:AssumeRole", &ecs_source), Allow);
    assert_eq!(check("ecs-tasks.amazonaws.com", "", "sts:AssumeRole", &[]), ImplicitDeny, "the condition needs aws:SourceArn");
    assert_eq!(check("lambda.amazonaws.com", "", "sts:AssumeRole", &ecs_source), ImplicitDeny);
    assert_eq!(check(ALICE, ACCOUNT, "sts:AssumeRole", &[]), Allow);
    assert_eq!(check(ALICE, ACCOUNT, "sts:TagSession", &[]), Allow);
    assert_eq!(check("arn:aws:iam::111122223333:user/bob", ACCOUNT, "sts:AssumeRole", &[]), ImplicitDeny);
    // A role's sessions are named by the role's ARN (their aws:PrincipalArn).
    let session = "arn:aws:sts::111122223333:assumed-role/deployer/ci";
    assert_eq!(check(session, ACCOUNT, "sts:AssumeRole", &[("aws:PrincipalArn", &["arn:aws:iam::111122223333:role/deployer"])]), Allow);
    // An account principal: any principal of that account, with the condition.
    let other = "arn:aws:iam::444455556666:user/carol";
    assert_eq!(check(other, "444455556666", "sts:AssumeRole", &[("sts:ExternalId", &["secret-id"])]), Allow);
    assert_eq!(check(other, "444455556666", "sts:AssumeRole", &[]), ImplicitDeny);
    assert_eq!(check("arn:aws:iam::111122223333:user/mallory", ACCOUNT, "sts:AssumeRole", &[]), ExplicitDeny);

    // NotPrincipal: everyone but the named principal.
    let not = PolicyDocument::parse_trust(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","NotPrincipal":{"AWS":"arn:aws:iam::111122223333:user/bob"},"Action":"sts:AssumeRole"}]}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let keys = BTreeMap::new();
    let req = |p| Request { principal_arn: p, principal_account: ACCOUNT, action: "sts:AssumeRole", resource: "*", keys: &keys };
    assert_eq!(trust_allows(&not, &req(ALICE)), Allow);
    assert_eq!(trust_allows(&not, &req("arn:aws:iam::111122223333:user/bob")), ImplicitDeny);
    // "Principal": "*"
    let anyone = PolicyDocument::parse_trust(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"}]}"#)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(trust_allows(&anyone, &req("arn:aws:iam::999999999999:root")), Allow);
}
