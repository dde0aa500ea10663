//! The services whose actions Berth serves have no resource type (or one
//! it builds from a name): CloudWatch (`cloudwatch:…`, its signing name
//! is `monitoring`), EventBridge Scheduler, STS, and Berth's own operator
//! API (`berth:…`).

use berth_model::Account;
use berth_wire::{berth, cloudwatch, scheduler, sts};

use super::{arn, ask, ask_any};
use crate::caller::IamRequest;

pub(crate) fn cloudwatch(action: &cloudwatch::Action) -> Vec<IamRequest> {
    vec![ask_any("cloudwatch", action.name())]
}

pub(crate) fn scheduler(account: &Account, action: &scheduler::Action) -> Vec<IamRequest> {
    let r = match action {
        scheduler::Action::GetSchedule(r) => {
            let group = r.group_name.as_deref().unwrap_or("default");
            ask("scheduler", action.name(), [arn(account, "scheduler", &format!("schedule/{group}/{}", r.name))])
        }
        _ => ask_any("scheduler", action.name()),
    };
    vec![r]
}

/// STS's actions ask nothing here: GetCallerIdentity and GetSessionToken
/// need no permission (as in AWS: GetCallerIdentity works even under an
/// explicit deny), and AssumeRole is decided by its handler (the role's
/// trust policy, and the caller's identity policies when the trust names
/// only the account).
pub(crate) fn sts(action: &sts::Action) -> Vec<IamRequest> {
    match action {
        sts::Action::GetCallerIdentity(_) | sts::Action::GetSessionToken(_) | sts::Action::AssumeRole(_) => Vec::new(),
        #[allow(unreachable_patterns)]
        _ => vec![ask_any("sts", action.name())],
    }
}

pub(crate) fn berth(action: &berth::Action) -> Vec<IamRequest> {
    vec![ask_any("berth", action.name())]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::tests::account;

    #[test]
    fn small_services() {
        let get = scheduler::Action::GetSchedule(scheduler::GetScheduleInput { group_name: None, name: "nightly".into() });
        assert_eq!(scheduler(&account(), &get)[0].resources, ["arn:aws:scheduler:us-east-1:123456789012:schedule/default/nightly"]);
        assert!(sts(&sts::Action::GetCallerIdentity(Default::default())).is_empty());
    }
}
