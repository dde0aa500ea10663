//! The agent's one boundary with the control plane: every call a node
//! agent makes, and nothing more. [`StorePlane`] implements it over the
//! store, for the agent that runs inside `berth up`; an agent on another
//! host will implement it over an authenticated API instead of holding
//! database credentials.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use berth_model::arn::TaskDefinitionArn;
use berth_model::network::{SecurityGroupRecord, SubnetRecord};
use berth_model::node::Node;
use berth_model::task::Task;
use berth_store::{
    LogGroupRecord, LogStore, LogStreamRecord, NewLogEvent, Notice, Page, PortClaim, RecordKind, Store, StoreError, Stores,
    TaskFilter, Versioned,
};
use berth_wire::ecs::TaskDefinition;
use tokio::sync::broadcast;

/// Temporary credentials of a role (a task's role session). Debug shows
/// only the key id and role.
#[derive(Clone, PartialEq, Eq)]
pub struct RoleCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    /// When they expire, in Unix seconds.
    pub expiration: i64,
    pub role_arn: String,
}

impl std::fmt::Debug for RoleCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoleCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("role_arn", &self.role_arn)
            .field("expiration", &self.expiration)
            .finish_non_exhaustive()
    }
}

/// A value read from SSM Parameter Store or Secrets Manager for a task:
/// only ever put into a container's environment (or a registry login).
/// Debug and Display show nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(String);

impl SecretValue {
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The value itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

/// Why the control plane gave no credentials or secret.
#[derive(Debug, thiserror::Error)]
pub enum PlaneError {
    /// Refused, as ECS says it: for a secret, the whole stoppedReason
    /// ("ResourceInitializationError: unable to pull secrets or registry
    /// auth: …": a denied read, a missing secret); for a role, why it
    /// gave no session.
    #[error("{0}")]
    Refused(String),
    #[error("store")]
    Store(#[from] StoreError),
}

/// What a node agent asks of and tells the control plane.
#[async_trait]
pub trait NodeControlPlane: Send + Sync {
    // --- the node ---

    /// Registers the node or refreshes it (capacity, status, heartbeat).
    async fn heartbeat(&self, node: &Node) -> Result<(), StoreError>;

    // --- its tasks ---

    /// The node's tasks that are not STOPPED.
    async fn live_tasks(&self, node_id: &str) -> Result<Vec<Versioned<Task>>, StoreError>;
    async fn task(&self, arn: &str) -> Result<Option<Versioned<Task>>, StoreError>;
    /// Writes a task read at `expected_version`; `Conflict` if it changed.
    async fn update_task(&self, task: &Task, expected_version: i64) -> Result<Versioned<Task>, StoreError>;
    /// Notices of task changes (keyed by ARN), to wake on at once; a
    /// watcher still re-reads now and then for what notices cannot carry.
    fn watch_tasks(&self) -> broadcast::Receiver<Notice>;
    /// The definition a task runs.
    async fn task_definition(&self, arn: &TaskDefinitionArn) -> Result<Option<TaskDefinition>, StoreError>;

    // --- identity: task roles and secrets ---

    /// Temporary credentials of `role_arn` for a task (its task role),
    /// session `session_name` (the task id), lasting `duration_secs`.
    async fn role_credentials(
        &self,
        role_arn: &str,
        session_name: &str,
        duration_secs: u32,
    ) -> Result<RoleCredentials, PlaneError>;

    /// Reads a container secret's `valueFrom` (an SSM parameter name or
    /// ARN, a Secrets Manager ARN with an optional `:json-key:stage:id`)
    /// in `account` as `execution_role_arn` (session `session_name`, the
    /// task id), whose policies must allow it (`ssm:GetParameters` on the
    /// parameter, `secretsmanager:GetSecretValue` on the secret).
    async fn read_secret(
        &self,
        account: &berth_model::Account,
        execution_role_arn: &str,
        session_name: &str,
        value_from: &str,
    ) -> Result<SecretValue, PlaneError>;

    /// Whether `role_arn`'s policies allow a session `session_name` of it
    /// (Berth acting as a task's execution role) `action` on `resource`;
    /// `Refused` carries IAM's denial ("User: … is not authorized to
    /// perform: …").
    async fn role_may(&self, role_arn: &str, session_name: &str, action: &str, resource: &str) -> Result<(), PlaneError>;

    // --- networking ---

    async fn subnet(&self, id: &str) -> Result<Option<SubnetRecord>, StoreError>;
    async fn subnets(&self) -> Result<Vec<SubnetRecord>, StoreError>;
    async fn security_groups(&self) -> Result<Vec<SecurityGroupRecord>, StoreError>;
    /// Takes a free address of the subnet for the task (see
    /// [`Store::claim_free_ip`]).
    async fn claim_free_ip(
        &self,
        subnet_id: &str,
        task_arn: &str,
        pick: &(dyn for<'u> Fn(&'u BTreeSet<String>) -> Option<String> + Send + Sync),
    ) -> Result<Option<String>, StoreError>;
    /// Takes a published port on a host address for the task: `true` if
    /// the task holds it now.
    async fn claim_port(&self, claim: PortClaim, task_arn: &str) -> Result<bool, StoreError>;
    /// Frees every published port the task holds.
    async fn release_ports(&self, task_arn: &str) -> Result<u64, StoreError>;
    /// The addresses a task holds: (subnet id, ip).
    async fn task_ips(&self, task_arn: &str) -> Result<Vec<(String, String)>, StoreError>;
    /// Frees every address the task holds.
    async fn release_ips(&self, task_arn: &str) -> Result<u64, StoreError>;

    // --- awslogs: the containers' output ---

    /// Creates a log group; `Conflict` if it exists.
    async fn create_log_group(&self, group: &LogGroupRecord) -> Result<(), StoreError>;
    async fn log_group_exists(&self, name: &str) -> Result<bool, StoreError>;
    /// Creates a stream; `Conflict` if it exists, `NotFound` without its group.
    async fn create_log_stream(&self, group: &str, stream: &str, created_at: i64) -> Result<(), StoreError>;
    /// Appends events to a stream (see [`LogStore::put_log_events`]).
    async fn put_log_events(
        &self,
        group: &str,
        stream: &str,
        events: &[NewLogEvent],
        ingestion_time: i64,
    ) -> Result<LogStreamRecord, StoreError>;

    // --- usage: CloudWatch datapoints the agent publishes ---

    /// Stores datapoints (see [`berth_store::MetricStore::put_datapoints`]).
    async fn put_datapoints(&self, points: &[berth_model::metrics::Datapoint], now_ms: i64) -> Result<(), StoreError>;
}

/// The service principal ECS's task roles must trust.
const ECS_TASKS_PRINCIPAL: &str = "ecs-tasks.amazonaws.com";

/// The account of an ARN (`arn:aws:iam::ACCOUNT:role/…`).
fn account_of(arn: &str) -> &str {
    arn.split(':').nth(4).unwrap_or_default()
}

/// The control plane as the store of this process.
pub struct StorePlane {
    store: Arc<dyn Store>,
    logs: Arc<dyn LogStore>,
    /// What opens SecureString parameters and secrets (`None`: this
    /// plane reads no secret).
    cipher: Option<Arc<berth_secrets::Cipher>>,
}

impl StorePlane {
    pub fn new(stores: Stores) -> Self {
        Self { store: stores.records, logs: stores.logs, cipher: None }
    }

    /// Reads containers' secrets, opened with `cipher` (the API's, from
    /// the data dir).
    pub fn with_cipher(mut self, cipher: Arc<berth_secrets::Cipher>) -> Self {
        self.cipher = Some(cipher);
        self
    }

    /// A role by ARN (or name); `Refused` as ECS says it when there is none.
    async fn role(&self, role_arn: &str) -> Result<berth_model::iam::Role, PlaneError> {
        let name = role_arn.rsplit('/').next().unwrap_or(role_arn);
        match self.store.get_role(name).await? {
            Some(r) if r.value.arn == role_arn || r.value.name == role_arn => Ok(r.value),
            _ => Err(PlaneError::Refused(format!("role {role_arn} does not exist"))),
        }
    }

    /// IAM's denial of `action` on `resource` to a session of `role`
    /// named `session_name`, or `None` if its policies allow it.
    async fn denial(
        &self,
        role: &berth_model::iam::Role,
        session_name: &str,
        action: &str,
        resource: &str,
    ) -> Result<Option<String>, PlaneError> {
        let why = match self.role_allows(role, action, resource).await? {
            berth_iam::Decision::Allow => return Ok(None),
            berth_iam::Decision::ExplicitDeny => "with an explicit deny in an identity-based policy".to_owned(),
            berth_iam::Decision::ImplicitDeny => format!("because no identity-based policy allows the {action} action"),
        };
        let principal = format!("arn:aws:sts::{}:assumed-role/{}/{session_name}", account_of(&role.arn), role.name);
        Ok(Some(format!("User: {principal} is not authorized to perform: {action} on resource: {resource} {why}")))
    }

    /// Whether `role`'s policies (inline, and attached: AWS managed or the
    /// account's) allow `action` on `resource`.
    async fn role_allows(&self, role: &berth_model::iam::Role, action: &str, resource: &str) -> Result<berth_iam::Decision, PlaneError> {
        let aws_managed = |arn: &str| berth_iam::managed::get(arn).map(|p| p.document);
        let texts = berth_store::policy_documents(self.store.as_ref(), &role.inline_policies, &role.attached, aws_managed).await?;
        // Stored documents were validated when they were put.
        let docs: Vec<berth_iam::PolicyDocument> = texts.iter().filter_map(|(_, t)| berth_iam::PolicyDocument::parse(t).ok()).collect();
        let refs: Vec<&berth_iam::PolicyDocument> = docs.iter().collect();
        let keys = std::collections::BTreeMap::from([("aws:principalarn".to_owned(), vec![role.arn.clone()])]);
        let req = berth_iam::Request { principal_arn: &role.arn, principal_account: account_of(&role.arn), action, resource, keys: &keys };
        Ok(berth_iam::evaluate(&refs, None, &req))
    }
}

#[async_trait]
impl NodeControlPlane for StorePlane {
    async fn heartbeat(&self, node: &Node) -> Result<(), StoreError> {
        self.store.upsert_node(node).await
    }

    /// ECS's task-role sessions: the role must trust
    /// `ecs-tasks.amazonaws.com`, as on AWS; the duration is ECS's own
    /// (not capped by the role's MaxSessionDuration, which limits
    /// AssumeRole callers, not the service).
    async fn role_credentials(
        &self,
        role_arn: &str,
        session_name: &str,
        duration_secs: u32,
    ) -> Result<RoleCredentials, PlaneError> {
        let role = self.role(role_arn).await?;
        let trusted = berth_iam::PolicyDocument::parse_trust(&role.assume_role_policy).is_ok_and(|trust| {
            let keys = std::collections::BTreeMap::new();
            let account = account_of(&role.arn);
            let req = berth_iam::Request {
                principal_arn: ECS_TASKS_PRINCIPAL,
                principal_account: account,
                action: "sts:AssumeRole",
                resource: &role.arn,
                keys: &keys,
            };
            berth_iam::trust_allows(&trust, &req) == berth_iam::Decision::Allow
        });
        if !trusted {
            return Err(PlaneError::Refused(format!(
                "ECS was unable to assume the role '{role_arn}' that was provided for this task: its trust policy \
                 does not allow {ECS_TASKS_PRINCIPAL} to assume it"
            )));
        }
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let issued =
            berth_store::issue_role_session(self.store.as_ref(), &role.arn, session_name, i64::from(duration_secs), now).await?;
        Ok(RoleCredentials {
            access_key_id: issued.access_key_id,
            secret_access_key: issued.secret_access_key,
            session_token: issued.session_token,
            expiration: issued.expiration,
            role_arn: role.arn,
        })
    }

    /// The role's policies decide (berth-iam), then berth-secrets reads
    /// and opens the value; a refusal is ECS's stoppedReason.
    async fn read_secret(
        &self,
        account: &berth_model::Account,
        execution_role_arn: &str,
        session_name: &str,
        value_from: &str,
    ) -> Result<SecretValue, PlaneError> {
        let refused = |e: berth_secrets::ResolveError| PlaneError::Refused(e.to_string());
        let role = match self.role(execution_role_arn).await {
            Ok(r) => r,
            Err(PlaneError::Refused(why)) => return Err(refused(berth_secrets::ResolveError::denied(value_from, why))),
            Err(e) => return Err(e),
        };
        let action = berth_secrets::resource_action(value_from);
        let check = |denial: Option<String>| match denial {
            None => Ok(()),
            Some(message) => Err(refused(berth_secrets::ResolveError::denied(value_from, message))),
        };
        let resource = berth_secrets::resource_arn(account, value_from);
        check(self.denial(&role, session_name, action, &resource).await?)?;
        let Some(cipher) = &self.cipher else {
            return Err(PlaneError::Refused(format!(
                "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval \
                 failed: this node has no key to open secrets with ({value_from})"
            )));
        };
        let resolved = berth_secrets::resolve(self.store.as_ref(), cipher, account, value_from).await.map_err(|e| {
            if let berth_secrets::ResolveError::Internal { cause, .. } = &e {
                tracing::warn!(value_from, cause = %cause, "reading a container secret");
            }
            refused(e)
        })?;
        // A partial secret ARN names the whole one: the role must allow that too.
        if resolved.resource_arn != resource {
            check(self.denial(&role, session_name, action, &resolved.resource_arn).await?)?;
        }
        Ok(SecretValue::new(resolved.value.as_str().to_owned()))
    }

    async fn role_may(&self, role_arn: &str, session_name: &str, action: &str, resource: &str) -> Result<(), PlaneError> {
        let role = self.role(role_arn).await?;
        match self.denial(&role, session_name, action, resource).await? {
            None => Ok(()),
            Some(message) => Err(PlaneError::Refused(message)),
        }
    }

    async fn live_tasks(&self, node_id: &str) -> Result<Vec<Versioned<Task>>, StoreError> {
        let filter = TaskFilter { node_id: Some(node_id.to_owned()), live_only: true, ..Default::default() };
        let mut all = Vec::new();
        let mut after = None;
        loop {
            let page = self.store.list_tasks(&filter, Page { after: after.take(), limit: 500 }).await?;
            let Some(last) = page.last() else { return Ok(all) };
            after = Some(last.value.arn.to_string());
            all.extend(page);
        }
    }

    async fn task(&self, arn: &str) -> Result<Option<Versioned<Task>>, StoreError> {
        self.store.get_task(arn).await
    }

    async fn update_task(&self, task: &Task, expected_version: i64) -> Result<Versioned<Task>, StoreError> {
        self.store.put_task(task, Some(expected_version)).await
    }

    fn watch_tasks(&self) -> broadcast::Receiver<Notice> {
        self.store.watch(RecordKind::Task)
    }

    async fn task_definition(&self, arn: &TaskDefinitionArn) -> Result<Option<TaskDefinition>, StoreError> {
        Ok(self.store.get_task_definition(&arn.family, arn.revision).await?.map(|v| v.value.definition))
    }

    async fn subnet(&self, id: &str) -> Result<Option<SubnetRecord>, StoreError> {
        Ok(self.store.get_subnet(id).await?.map(|v| v.value))
    }

    async fn subnets(&self) -> Result<Vec<SubnetRecord>, StoreError> {
        Ok(self.store.list_subnets().await?.into_iter().map(|v| v.value).collect())
    }

    async fn security_groups(&self) -> Result<Vec<SecurityGroupRecord>, StoreError> {
        Ok(self.store.list_security_groups().await?.into_iter().map(|v| v.value).collect())
    }

    async fn claim_free_ip(
        &self,
        subnet_id: &str,
        task_arn: &str,
        pick: &(dyn for<'u> Fn(&'u BTreeSet<String>) -> Option<String> + Send + Sync),
    ) -> Result<Option<String>, StoreError> {
        self.store.claim_free_ip(subnet_id, task_arn, pick).await
    }

    async fn claim_port(&self, claim: PortClaim, task_arn: &str) -> Result<bool, StoreError> {
        self.store.claim_port(claim, task_arn).await
    }

    async fn release_ports(&self, task_arn: &str) -> Result<u64, StoreError> {
        self.store.release_ports(task_arn).await
    }

    async fn task_ips(&self, task_arn: &str) -> Result<Vec<(String, String)>, StoreError> {
        self.store.task_ips(task_arn).await
    }

    async fn release_ips(&self, task_arn: &str) -> Result<u64, StoreError> {
        self.store.release_ips(task_arn).await
    }

    async fn create_log_group(&self, group: &LogGroupRecord) -> Result<(), StoreError> {
        self.logs.create_log_group(group).await.map(|_| ())
    }

    async fn log_group_exists(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self.logs.get_log_group(name).await?.is_some())
    }

    async fn create_log_stream(&self, group: &str, stream: &str, created_at: i64) -> Result<(), StoreError> {
        self.logs.create_log_stream(group, stream, created_at).await.map(|_| ())
    }

    async fn put_log_events(
        &self,
        group: &str,
        stream: &str,
        events: &[NewLogEvent],
        ingestion_time: i64,
    ) -> Result<LogStreamRecord, StoreError> {
        self.logs.put_log_events(group, stream, events, ingestion_time).await
    }

    async fn put_datapoints(&self, points: &[berth_model::metrics::Datapoint], now_ms: i64) -> Result<(), StoreError> {
        self.store.put_datapoints(points, now_ms).await
    }
}
