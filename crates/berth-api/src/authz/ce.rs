//! Cost Explorer: each action → `ce:ACTION` on `*` (the Service
//! Authorization Reference lists no resource types for GetCostAndUsage).

use berth_wire::ce::Action;

use super::ask_any;
use crate::caller::IamRequest;

pub(crate) fn table(action: &Action) -> Vec<IamRequest> {
    match action {
        Action::GetCostAndUsage(_) => vec![ask_any("ce", action.name())],
    }
}
