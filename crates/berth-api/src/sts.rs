//! STS (`sts`, AWS Query): GetCallerIdentity, the first call most tools
//! make. Berth has one account and its access keys are that account's
//! own (ECS records `arn:aws:iam::ACCOUNT:root` as `registeredBy`), so the
//! caller is the account's root: its ARN, and the account id as its user
//! id, as STS answers for root credentials.

use berth_wire::sts::{Action, GetCallerIdentityResponse, Output};

use crate::{Api, ApiError};

pub(crate) async fn dispatch(api: &Api, access_key_id: &str, action: Action) -> Result<Output, ApiError> {
    match action {
        Action::GetCallerIdentity(_) => {
            // The key was found and its signature checked by the edge; a
            // key deleted since is the caller no longer.
            if api.store.get_access_key(access_key_id).await?.is_none() {
                return Err(crate::sigv4::AuthError::UnrecognizedClient.into());
            }
            let account = api.account().account_id.clone();
            Ok(Output::GetCallerIdentity(GetCallerIdentityResponse {
                arn: Some(format!("arn:aws:iam::{account}:root")),
                user_id: Some(account.clone()),
                account: Some(account),
            }))
        }
        other => Err(ApiError::Unsupported(format!("Berth does not support the sts operation {} yet.", other.name()))),
    }
}
