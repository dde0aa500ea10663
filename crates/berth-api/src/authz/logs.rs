//! What each CloudWatch Logs action asks of IAM. Logs evaluates actions on
//! a log group against `…:log-group:NAME:log-stream:` and actions on a
//! stream against `…:log-group:NAME:log-stream:STREAM` (the resources its
//! access-denied messages name), so the usual
//! `arn:aws:logs:*:*:log-group:NAME:*` covers a group and its streams;
//! DescribeLogGroups is `…:log-group::log-stream:`.

use berth_model::Account;
use berth_wire::logs::Action;

use super::{arn, ask, with_tags};
use crate::caller::IamRequest;

pub(crate) fn table(account: &Account, action: &Action) -> Vec<IamRequest> {
    let group = |name: &str| stream_arn(account, name, "");
    let stream = |g: &str, s: &str| stream_arn(account, g, s);
    let logs = |resource: String| ask("logs", action.name(), [resource]);
    let r = match action {
        Action::CreateLogGroup(r) => {
            let tags = r.tags.iter().flatten().map(|(k, v)| (k.as_str(), v.as_str()));
            with_tags(logs(group(&r.log_group_name)), tags)
        }
        Action::DeleteLogGroup(r) => logs(group(&r.log_group_name)),
        Action::PutRetentionPolicy(r) => logs(group(&r.log_group_name)),
        Action::DeleteRetentionPolicy(r) => logs(group(&r.log_group_name)),
        Action::DescribeLogGroups(_) => logs(group("")),
        Action::DescribeLogStreams(r) => logs(group(named(&r.log_group_name, &r.log_group_identifier))),
        Action::FilterLogEvents(r) => logs(group(named(&r.log_group_name, &r.log_group_identifier))),
        Action::CreateLogStream(r) => logs(stream(&r.log_group_name, &r.log_stream_name)),
        Action::DeleteLogStream(r) => logs(stream(&r.log_group_name, &r.log_stream_name)),
        Action::PutLogEvents(r) => logs(stream(&r.log_group_name, &r.log_stream_name)),
        Action::GetLogEvents(r) => logs(stream(named(&r.log_group_name, &r.log_group_identifier), &r.log_stream_name)),
        _ => logs("*".to_owned()),
    };
    vec![r]
}

/// A group named by `logGroupName` or `logGroupIdentifier` (a name or
/// the group's ARN).
fn named<'a>(name: &'a Option<String>, identifier: &'a Option<String>) -> &'a str {
    let id = name.as_deref().or(identifier.as_deref()).unwrap_or("");
    match id.strip_prefix("arn:") {
        Some(rest) => rest.split_once(":log-group:").map_or(id, |(_, g)| g.strip_suffix(":*").unwrap_or(g)),
        None => id,
    }
}

fn stream_arn(account: &Account, group: &str, stream: &str) -> String {
    arn(account, "logs", &format!("log-group:{group}:log-stream:{stream}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::tests::account;

    fn resource(op: &str, json: &str) -> (String, String) {
        let action = match Action::parse(op, json.as_bytes()) {
            Ok(Some(a)) => a,
            other => panic!("{op}: {other:?}"),
        };
        let r = table(&account(), &action).remove(0);
        (r.action, r.resources[0].clone())
    }

    #[test]
    fn groups_and_streams() {
        let prefix = "arn:aws:logs:us-east-1:123456789012:log-group:";
        assert_eq!(
            resource("PutLogEvents", r#"{"logGroupName":"app","logStreamName":"web/1","logEvents":[]}"#),
            ("logs:PutLogEvents".into(), format!("{prefix}app:log-stream:web/1"))
        );
        assert_eq!(resource("CreateLogGroup", r#"{"logGroupName":"app"}"#).1, format!("{prefix}app:log-stream:"));
        assert_eq!(resource("DescribeLogGroups", "{}").1, format!("{prefix}:log-stream:"));
        assert_eq!(
            resource("GetLogEvents", &format!(r#"{{"logGroupIdentifier":"{prefix}app:*","logStreamName":"s"}}"#)).1,
            format!("{prefix}app:log-stream:s")
        );
        assert_eq!(resource("DescribeLogStreams", r#"{"logGroupIdentifier":"app"}"#).1, format!("{prefix}app:log-stream:"));
    }
}
