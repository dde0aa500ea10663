//! Task definitions: the rules RegisterTaskDefinition checks, each failing
//! with ECS's exception and a message that says what to change, and the
//! record ECS stores and returns for a registered revision.
//!
//! Berth runs every task Fargate-style, but definitions that do not ask
//! for FARGATE are held only to ECS's general rules, as ECS does. IAM roles
//! are never required (real Fargate wants an execution role for `awslogs`;
//! Berth has no IAM).

use std::collections::HashSet;
use std::ops::RangeInclusive;

use berth_wire::ecs::{
    Compatibility, ContainerCondition, ContainerDefinition, HealthCheck, LinuxParameters, NetworkMode, PidMode,
    PortMapping, RegisterTaskDefinitionRequest, TaskDefinition, TaskDefinitionStatus, TransportProtocol, Volume,
};

use crate::{Account, ModelError, fargate};

/// The largest RegisterTaskDefinition request ECS takes, in bytes.
pub const MAX_SIZE: usize = 64 * 1024;
/// The most containers one task definition may have.
pub const MAX_CONTAINERS: usize = 10;
/// The smallest container `memory` or `memoryReservation`, in MiB (Docker
/// 20.10 and later refuse less).
pub const MIN_CONTAINER_MEMORY: i32 = 6;
/// Task-level CPU units ECS accepts outside Fargate (0.125 to 192 vCPU).
const TASK_CPU_UNITS: RangeInclusive<u32> = 128..=196_608;
const PORTS: RangeInclusive<i32> = 1..=65_535;
const NAME_RULE: &str = "Up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens are allowed.";

/// Checks the size of a RegisterTaskDefinition request body, as ECS
/// limits it.
pub fn validate_size(raw_len: usize) -> Result<(), ModelError> {
    if raw_len <= MAX_SIZE {
        return Ok(());
    }
    Err(ModelError::client(format!(
        "Actual length: '{raw_len}'. Max allowed length is '{MAX_SIZE}' bytes. The task definition is too large: \
         shorten it (environment values, labels and commands all count)."
    )))
}

/// Checks a RegisterTaskDefinition request against ECS's rules. The first
/// rule broken is the error.
pub fn validate(req: &RegisterTaskDefinitionRequest) -> Result<(), ModelError> {
    check_family(&req.family)?;
    let containers = &req.container_definitions;
    check_container_list(containers)?;
    let size = task_size(req)?;
    if requires_fargate(req) {
        check_fargate(req, size)?;
    }
    let mode = network_mode(req);
    for c in containers {
        check_container(c, containers, mode)?;
    }
    check_dependency_cycles(containers)?;
    check_mount_points(req)?;
    check_ephemeral_storage(req)?;
    check_execution_role(req)?;
    check_resources(containers, size)
}

/// Secrets and private registry credentials are read with the execution
/// role, so a definition that has them names one (as ECS requires).
fn check_execution_role(req: &RegisterTaskDefinitionRequest) -> Result<(), ModelError> {
    if req.execution_role_arn.as_deref().is_some_and(|r| !r.is_empty()) {
        return Ok(());
    }
    let containers = &req.container_definitions;
    if containers.iter().any(|c| c.secrets.as_ref().is_some_and(|s| !s.is_empty())) {
        return Err(ModelError::client(
            "When you are specifying container secrets, you must also specify a value for 'executionRoleArn'.",
        ));
    }
    if containers.iter().any(|c| c.repository_credentials.is_some()) {
        return Err(ModelError::client(
            "When you are specifying container registry credentials (repositoryCredentials), you must also specify \
             a value for 'executionRoleArn'.",
        ));
    }
    Ok(())
}

/// Every mount point names a volume of the task definition and a path.
fn check_mount_points(req: &RegisterTaskDefinitionRequest) -> Result<(), ModelError> {
    let volumes: Vec<&str> = req.volumes.iter().flatten().filter_map(|v| v.name.as_deref()).collect();
    for c in &req.container_definitions {
        for mp in c.mount_points.iter().flatten() {
            let source = mp.source_volume.as_deref().unwrap_or("");
            if !volumes.contains(&source) {
                return Err(ModelError::client(format!(
                    "Invalid mount point for container '{}': sourceVolume '{source}' is not a volume of this task \
                     definition (volumes: [{}]). Declare it in the task definition's 'volumes'.",
                    name_of(c),
                    volumes.join(", ")
                )));
            }
            if !mp.container_path.as_deref().is_some_and(|p| p.starts_with('/')) {
                return Err(ModelError::client(format!(
                    "Invalid mount point for container '{}': give volume '{source}' an absolute containerPath.",
                    name_of(c)
                )));
            }
        }
    }
    Ok(())
}

/// Fargate's ephemeral storage: 21 to 200 GiB (20 when not given).
fn check_ephemeral_storage(req: &RegisterTaskDefinitionRequest) -> Result<(), ModelError> {
    match req.ephemeral_storage.as_ref().map(|e| e.size_in_gi_b) {
        Some(n) if !(21..=200).contains(&n) => Err(ModelError::client(format!(
            "Invalid 'ephemeralStorage.sizeInGiB' value {n}: it must be between 21 and 200 GiB."
        ))),
        _ => Ok(()),
    }
}

/// The record ECS keeps for revision `revision` of `req.family`, as
/// Describe returns it. `req` must have passed [`validate`]. Tags are not
/// part of it: ECS returns them beside the task definition.
pub fn build(
    account: &Account,
    req: RegisterTaskDefinitionRequest,
    revision: i32,
    now_epoch_secs: f64,
    registered_by: Option<String>,
) -> TaskDefinition {
    let compatibilities = compatibilities(&req);
    let mode = network_mode(&req);
    // Every member is named, so a new one in the wire model is a decision here.
    let RegisterTaskDefinitionRequest {
        family,
        task_role_arn,
        execution_role_arn,
        network_mode,
        container_definitions,
        volumes,
        placement_constraints,
        requires_compatibilities,
        cpu,
        memory,
        tags: _,
        pid_mode,
        ipc_mode,
        proxy_configuration,
        inference_accelerators,
        ephemeral_storage,
        runtime_platform,
        enable_fault_injection,
    } = req;
    TaskDefinition {
        task_definition_arn: Some(account.task_definition_arn(&family, revision)),
        container_definitions: Some(container_definitions.into_iter().map(|c| with_ecs_defaults(c, mode)).collect()),
        family: Some(family),
        task_role_arn,
        execution_role_arn,
        network_mode,
        revision: Some(revision),
        volumes: Some(volumes.unwrap_or_default()),
        status: Some(TaskDefinitionStatus::Active),
        requires_attributes: None,
        placement_constraints: Some(placement_constraints.unwrap_or_default()),
        compatibilities: Some(compatibilities),
        runtime_platform,
        requires_compatibilities,
        cpu: cpu.map(|raw| normalized(raw, fargate::parse_cpu)),
        memory: memory.map(|raw| normalized(raw, fargate::parse_memory)),
        inference_accelerators,
        pid_mode,
        ipc_mode,
        proxy_configuration,
        registered_at: Some(now_epoch_secs),
        deregistered_at: None,
        delete_requested_at: None,
        registered_by,
        ephemeral_storage,
        enable_fault_injection,
    }
}

// ---- task level -------------------------------------------------------

/// Task-level CPU units and memory MiB, when given.
#[derive(Debug, Clone, Copy)]
struct TaskSize {
    cpu: Option<u32>,
    memory: Option<u32>,
}

fn task_size(req: &RegisterTaskDefinitionRequest) -> Result<TaskSize, ModelError> {
    let cpu = req.cpu.as_deref().map(fargate::parse_cpu).transpose()?;
    let memory = req.memory.as_deref().map(fargate::parse_memory).transpose()?;
    if let Some(units) = cpu.filter(|u| !TASK_CPU_UNITS.contains(u)) {
        return Err(ModelError::client(format!(
            "Invalid 'cpu' setting for task: {units} CPU units. Task CPU must be between {} (0.125 vCPU) and {} (192 vCPU) units.",
            TASK_CPU_UNITS.start(),
            TASK_CPU_UNITS.end()
        )));
    }
    Ok(TaskSize { cpu, memory })
}

fn network_mode(req: &RegisterTaskDefinitionRequest) -> NetworkMode {
    req.network_mode.unwrap_or(NetworkMode::Bridge)
}

fn requires_fargate(req: &RegisterTaskDefinitionRequest) -> bool {
    req.requires_compatibilities.as_deref().unwrap_or_default().contains(&Compatibility::Fargate)
}

fn check_family(family: &str) -> Result<(), ModelError> {
    if family.is_empty() {
        return Err(ModelError::client(format!("Family can not be blank. {NAME_RULE}")));
    }
    check_name("Family", family)
}

/// ECS's rule for family and container names.
fn check_name(what: &str, name: &str) -> Result<(), ModelError> {
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(ModelError::client(format!("{what} contains invalid characters: '{name}'. {NAME_RULE}")));
    }
    if name.len() > 255 {
        return Err(ModelError::client(format!("{what} is too long: {} characters. {NAME_RULE}", name.len())));
    }
    Ok(())
}

/// The rules a task on Fargate adds: awsvpc, a valid task size, and no
/// host PID or IPC namespaces.
fn check_fargate(req: &RegisterTaskDefinitionRequest, size: TaskSize) -> Result<(), ModelError> {
    if req.network_mode != Some(NetworkMode::Awsvpc) {
        return Err(ModelError::client(
            "Fargate only supports network mode ‘awsvpc’. Set \"networkMode\": \"awsvpc\".",
        ));
    }
    let cpu = size.cpu.ok_or_else(|| {
        let values = fargate::cpu_values().iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
        ModelError::client(format!(
            "Fargate requires that 'cpu' be defined at the task level. Valid values: {values} CPU units."
        ))
    })?;
    let memory = size.memory.ok_or_else(|| {
        ModelError::client(
            "Fargate requires that 'memory' be defined at the task level, in MiB or GB (for example \"2048\" or \"2 GB\").",
        )
    })?;
    fargate::check_size(cpu, memory)?;
    if req.pid_mode == Some(PidMode::Host) {
        return Err(ModelError::client(
            "Tasks using the Fargate launch type do not support pidMode 'host'. The supported value for pidMode is 'task'.",
        ));
    }
    if let Some(mode) = req.ipc_mode {
        return Err(ModelError::client(format!(
            "Tasks using the Fargate launch type do not support ipcMode. Remove \"ipcMode\": \"{mode}\"."
        )));
    }
    for v in req.volumes.iter().flatten() {
        check_fargate_volume(v)?;
    }
    req.container_definitions.iter().try_for_each(check_fargate_container)
}

/// The capability a Fargate task may add (platform version 1.4.0).
const FARGATE_ADDABLE_CAPABILITY: &str = "SYS_PTRACE";

/// Fargate's largest `nofile` ulimit, soft and hard.
pub const FARGATE_MAX_NOFILE: i32 = 1_048_576;

/// Fargate's volumes: a bind mount on the task's ephemeral storage (no
/// `host.sourcePath`) or EFS; never a Docker volume.
fn check_fargate_volume(v: &Volume) -> Result<(), ModelError> {
    let name = v.name.as_deref().unwrap_or("");
    if let Some(path) = v.host.as_ref().and_then(|h| h.source_path.as_deref()) {
        return Err(ModelError::client(format!(
            "Tasks using the Fargate launch type do not support host volumes with a sourcePath: volume '{name}' \
             asks for host path '{path}'. Omit \"host\" (or its \"sourcePath\") to get a bind mount volume on the \
             task's ephemeral storage, shared by the containers that mount it, or use efsVolumeConfiguration."
        )));
    }
    if v.docker_volume_configuration.is_some() {
        return Err(ModelError::client(format!(
            "Tasks using the Fargate launch type do not support dockerVolumeConfiguration: volume '{name}'. \
             Fargate tasks support bind mount volumes on the task's ephemeral storage and EFS volumes."
        )));
    }
    Ok(())
}

/// The container definition parameters Fargate refuses or limits
/// ("Fargate task definition considerations").
fn check_fargate_container(c: &ContainerDefinition) -> Result<(), ModelError> {
    let name = name_of(c);
    let unsupported = |what: &str| {
        Err(ModelError::client(format!(
            "Tasks using the Fargate launch type do not support {what}. Remove it from container '{name}'."
        )))
    };
    if c.privileged == Some(true) {
        return unsupported("privileged containers (\"privileged\": true)");
    }
    let set = [
        ("disableNetworking", c.disable_networking == Some(true)),
        ("dnsServers", c.dns_servers.as_ref().is_some_and(|v| !v.is_empty())),
        ("dnsSearchDomains", c.dns_search_domains.as_ref().is_some_and(|v| !v.is_empty())),
        ("dockerSecurityOptions", c.docker_security_options.as_ref().is_some_and(|v| !v.is_empty())),
        ("extraHosts", c.extra_hosts.as_ref().is_some_and(|v| !v.is_empty())),
        ("hostname", c.hostname.is_some()),
    ];
    if let Some((field, _)) = set.iter().find(|(_, present)| *present) {
        return unsupported(&format!("the '{field}' parameter"));
    }
    if let Some(lp) = &c.linux_parameters {
        check_fargate_linux_parameters(name, lp)?;
    }
    for sc in c.system_controls.iter().flatten() {
        let ns = sc.namespace.as_deref().unwrap_or("");
        if !fargate_sysctl(ns) {
            return Err(ModelError::client(format!(
                "Tasks using the Fargate launch type do not support the systemControls namespace '{ns}' in container \
                 '{name}'. Only namespaced kernel parameters are supported: net.* (the task's network namespace) and \
                 kernel.msgmax, kernel.msgmnb, kernel.msgmni, kernel.sem, kernel.shmall, kernel.shmmax, \
                 kernel.shmmni, kernel.shm_rmid_forced and fs.mqueue.* (its IPC namespace)."
            )));
        }
    }
    for u in c.ulimits.iter().flatten() {
        if u.name == berth_wire::ecs::UlimitName::Nofile && u.hard_limit > FARGATE_MAX_NOFILE {
            return Err(ModelError::client(format!(
                "Invalid 'nofile' ulimit for container '{name}': hardLimit {} is over Fargate's maximum of \
                 {FARGATE_MAX_NOFILE}.",
                u.hard_limit
            )));
        }
    }
    Ok(())
}

fn check_fargate_linux_parameters(name: &str, lp: &LinuxParameters) -> Result<(), ModelError> {
    for cap in lp.capabilities.as_ref().and_then(|k| k.add.as_ref()).into_iter().flatten() {
        if cap != FARGATE_ADDABLE_CAPABILITY {
            return Err(ModelError::client(format!(
                "Tasks using the Fargate launch type only support adding the {FARGATE_ADDABLE_CAPABILITY} kernel \
                 capability: container '{name}' adds '{cap}' in linuxParameters.capabilities.add. Dropping \
                 capabilities is supported."
            )));
        }
    }
    let set = [
        ("devices", lp.devices.as_ref().is_some_and(|d| !d.is_empty())),
        ("sharedMemorySize", lp.shared_memory_size.is_some()),
        ("tmpfs", lp.tmpfs.as_ref().is_some_and(|t| !t.is_empty())),
        ("maxSwap", lp.max_swap.is_some()),
        ("swappiness", lp.swappiness.is_some()),
    ];
    match set.iter().find(|(_, present)| *present) {
        Some((field, _)) => Err(ModelError::client(format!(
            "Tasks using the Fargate launch type do not support the 'linuxParameters.{field}' parameter. Remove it \
             from container '{name}'."
        ))),
        None => Ok(()),
    }
}

/// The kernel parameters a container can set in its own namespaces
/// (Docker's namespaced sysctls): the network namespace's `net.*`, the
/// IPC namespace's System V and POSIX message queue ones.
pub fn fargate_sysctl(namespace: &str) -> bool {
    const IPC: [&str; 8] = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let after = |prefix: &str| namespace.strip_prefix(prefix).is_some_and(|rest| !rest.is_empty());
    after("net.") || after("fs.mqueue.") || IPC.contains(&namespace)
}

/// The launch types the definition can run on: EC2 always, FARGATE when
/// it meets Fargate's rules whether or not it asked for them (as ECS
/// reports it), and any other type it asked for.
fn compatibilities(req: &RegisterTaskDefinitionRequest) -> Vec<Compatibility> {
    let fargate_ok = task_size(req).is_ok_and(|size| check_fargate(req, size).is_ok());
    let required = req.requires_compatibilities.as_deref().unwrap_or_default();
    [Compatibility::Ec2, Compatibility::Fargate, Compatibility::External, Compatibility::ManagedInstances]
        .into_iter()
        .filter(|c| match c {
            Compatibility::Ec2 => true,
            Compatibility::Fargate => fargate_ok,
            other => required.contains(other),
        })
        .collect()
}

/// `raw` as the whole number ECS stores ("1 vCPU" becomes "1024"), or as
/// given when it does not parse.
fn normalized(raw: String, parse: fn(&str) -> Result<u32, ModelError>) -> String {
    parse(&raw).map_or(raw, |n| n.to_string())
}

// ---- containers -------------------------------------------------------

fn name_of(c: &ContainerDefinition) -> &str {
    c.name.as_deref().unwrap_or("")
}

/// Count, names, images, and at least one essential container.
fn check_container_list(containers: &[ContainerDefinition]) -> Result<(), ModelError> {
    if containers.is_empty() {
        return Err(ModelError::client("Container list cannot be empty. Give at least one container definition."));
    }
    if containers.len() > MAX_CONTAINERS {
        return Err(ModelError::client(format!(
            "Too many containers. A task definition can have at most {MAX_CONTAINERS} containers; {} were given.",
            containers.len()
        )));
    }
    let mut seen = HashSet::new();
    for c in containers {
        let name = name_of(c);
        if name.is_empty() {
            return Err(ModelError::client(format!("Container.name should not be null or empty. {NAME_RULE}")));
        }
        check_name("Container.name", name)?;
        if !seen.insert(name) {
            return Err(ModelError::client(format!(
                "Container names must be unique within a Task Definition: '{name}' is used more than once."
            )));
        }
        check_image(name, c.image.as_deref())?;
    }
    if !containers.iter().any(|c| c.essential.unwrap_or(true)) {
        return Err(ModelError::client(
            "Task definition doesn't have any essential container. Mark at least one container \"essential\": true \
             (a container is essential when the field is omitted).",
        ));
    }
    Ok(())
}

/// `repository-url/image:tag` or `repository-url/image@sha256:<64 hex>`:
/// up to 255 letters, numbers, hyphens, underscores, colons, periods,
/// slashes and number signs before any `@`.
fn check_image(container: &str, image: Option<&str>) -> Result<(), ModelError> {
    let Some(image) = image.filter(|i| !i.is_empty()) else {
        return Err(ModelError::client(format!(
            "Container.image should not be null or empty. Give container '{container}' an image, \
             for example \"public.ecr.aws/docker/library/busybox:latest\"."
        )));
    };
    let (repository, digest) = match image.split_once('@') {
        Some((repository, digest)) => (repository, Some(digest)),
        None => (image, None),
    };
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-_:./#".contains(c);
    if repository.is_empty() || !repository.chars().all(allowed) {
        return Err(ModelError::client(format!(
            "Container.image contains invalid characters for container '{container}': '{image}'. Letters, numbers, \
             hyphens, underscores, colons, periods, forward slashes and number signs are allowed, then an optional \
             @sha256:<digest>."
        )));
    }
    if repository.len() > 255 {
        return Err(ModelError::client(format!(
            "Container.image is too long for container '{container}': {} characters before any '@'; up to 255 are allowed.",
            repository.len()
        )));
    }
    let sha256 = |d: &str| {
        d.strip_prefix("sha256:").is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    if digest.is_some_and(|d| !sha256(d)) {
        return Err(ModelError::client(format!(
            "Invalid image digest for container '{container}': '{image}'. Only sha256 digests are supported: \
             @sha256: followed by 64 hexadecimal characters."
        )));
    }
    Ok(())
}

/// The rules that concern one container at a time.
fn check_container(c: &ContainerDefinition, all: &[ContainerDefinition], mode: NetworkMode) -> Result<(), ModelError> {
    let name = name_of(c);
    check_container_limits(name, c)?;
    check_port_mappings(name, c.port_mappings.as_deref().unwrap_or_default(), mode)?;
    if c.links.as_ref().is_some_and(|l| !l.is_empty()) && mode != NetworkMode::Bridge {
        return Err(ModelError::client(format!(
            "Links are not supported when networkMode={mode}. Remove 'links' from container '{name}': the containers \
             of a task share its network namespace and reach each other on localhost."
        )));
    }
    check_depends_on(name, c, all)?;
    if let Some(hc) = &c.health_check {
        check_health_check(name, hc)?;
    }
    if c.environment.iter().flatten().any(|kv| kv.name.as_deref().unwrap_or("").is_empty()) {
        return Err(ModelError::client(format!(
            "Environment variable names can not be blank: container '{name}' has an 'environment' entry without a name."
        )));
    }
    if c.environment_files.as_ref().is_some_and(|f| !f.is_empty()) {
        return Err(ModelError::client(format!(
            "Container '{name}' uses environmentFiles, which Berth does not support: they are objects in Amazon S3, \
             which Berth cannot read. Put the variables in 'environment' instead."
        )));
    }
    Ok(())
}

/// Container `cpu`, `memory` and `memoryReservation` on their own.
fn check_container_limits(name: &str, c: &ContainerDefinition) -> Result<(), ModelError> {
    if let Some(cpu) = c.cpu.filter(|v| *v < 0) {
        return Err(ModelError::client(format!(
            "Invalid 'cpu' setting for container '{name}': {cpu}. Give 0 or more CPU units."
        )));
    }
    for (field, value) in [("memory", c.memory), ("memoryReservation", c.memory_reservation)] {
        if let Some(mib) = value.filter(|v| *v < MIN_CONTAINER_MEMORY) {
            return Err(ModelError::client(format!(
                "Invalid '{field}' setting for container '{name}'. At least {MIN_CONTAINER_MEMORY} MB of memory is \
                 required; {mib} was given."
            )));
        }
    }
    match (c.memory, c.memory_reservation) {
        (Some(limit), Some(reservation)) if reservation > limit => Err(ModelError::client(format!(
            "Invalid 'memoryReservation' setting for container '{name}'. The soft limit ({reservation} MiB) must not \
             be greater than the 'memory' hard limit ({limit} MiB)."
        ))),
        _ => Ok(()),
    }
}

fn check_port_mappings(name: &str, mappings: &[PortMapping], mode: NetworkMode) -> Result<(), ModelError> {
    if !mappings.is_empty() && mode == NetworkMode::None {
        return Err(ModelError::client(format!(
            "Port mappings are not supported when networkMode=none. Remove 'portMappings' from container '{name}'."
        )));
    }
    mappings.iter().try_for_each(|pm| check_port_mapping(name, pm, mode))
}

/// A containerPort (with a matching or absent hostPort in awsvpc and host
/// mode) or a containerPortRange.
fn check_port_mapping(name: &str, pm: &PortMapping, mode: NetworkMode) -> Result<(), ModelError> {
    if let Some(range) = &pm.container_port_range {
        return check_port_range(name, range, pm, mode);
    }
    let port = pm.container_port.filter(|p| PORTS.contains(p)).ok_or_else(|| {
        ModelError::client(format!(
            "Invalid 'containerPort' setting for container '{name}'. Give a containerPort between 1 and 65535, \
             or a containerPortRange such as \"8000-8010\"."
        ))
    })?;
    let host = pm.host_port.unwrap_or(0);
    if !(0..=65_535).contains(&host) {
        return Err(ModelError::client(format!(
            "Invalid 'hostPort' setting for container '{name}': {host}. Give a port between 1 and 65535, or omit it."
        )));
    }
    let static_ports = matches!(mode, NetworkMode::Awsvpc | NetworkMode::Host);
    if static_ports && host != 0 && host != port {
        return Err(ModelError::client(format!(
            "When networkMode={mode}, the host ports and container ports in port mappings must match. Container \
             '{name}' maps containerPort {port} to hostPort {host}: omit hostPort or set it to {port}."
        )));
    }
    Ok(())
}

/// "first-last", 1 <= first < last <= 65535, without a hostPort, in
/// bridge or awsvpc mode.
fn check_port_range(name: &str, range: &str, pm: &PortMapping, mode: NetworkMode) -> Result<(), ModelError> {
    let bounds =
        range.split_once('-').and_then(|(a, b)| Some((a.trim().parse::<i32>().ok()?, b.trim().parse::<i32>().ok()?)));
    let valid = bounds.is_some_and(|(first, last)| PORTS.contains(&first) && PORTS.contains(&last) && first < last);
    if !valid {
        return Err(ModelError::client(format!(
            "Invalid 'containerPortRange' setting for container '{name}': '{range}'. Give a range such as \"8000-8010\", \
             both ports between 1 and 65535 and the first lower than the last."
        )));
    }
    if pm.host_port.is_some() {
        return Err(ModelError::client(format!(
            "Invalid port mapping for container '{name}': leave hostPort empty when containerPortRange is given."
        )));
    }
    if !matches!(mode, NetworkMode::Awsvpc | NetworkMode::Bridge) {
        return Err(ModelError::client(format!(
            "containerPortRange is only supported when networkMode is awsvpc or bridge (container '{name}', networkMode={mode})."
        )));
    }
    Ok(())
}

/// Dependencies name other containers of the task; a container waited
/// for to finish (SUCCESS, COMPLETE) cannot be essential.
fn check_depends_on(name: &str, c: &ContainerDefinition, all: &[ContainerDefinition]) -> Result<(), ModelError> {
    for dep in c.depends_on.iter().flatten() {
        let target_name = dep.container_name.as_str();
        let Some(target) = all.iter().find(|t| name_of(t) == target_name) else {
            let names = all.iter().map(name_of).collect::<Vec<_>>().join(", ");
            return Err(ModelError::client(format!(
                "Container '{name}' depends on '{target_name}', which is not a container of this task definition \
                 (containers: {names})."
            )));
        };
        if target_name == name {
            return Err(ModelError::client(format!("Container '{name}' can not depend on itself.")));
        }
        if dep.condition == ContainerCondition::Healthy && target.health_check.is_none() {
            return Err(ModelError::client(format!(
                "Container '{name}' depends on '{target_name}' being HEALTHY, but '{target_name}' has no healthCheck. \
                 Give '{target_name}' a healthCheck, or depend on it with START."
            )));
        }
        let waits_for_exit = matches!(dep.condition, ContainerCondition::Success | ContainerCondition::Complete);
        if waits_for_exit && target.essential.unwrap_or(true) {
            return Err(ModelError::client(format!(
                "A dependency container with SUCCESS or COMPLETE condition cannot be an essential container: '{name}' \
                 waits for '{target_name}' to exit ({}), so mark '{target_name}' \"essential\": false.",
                dep.condition
            )));
        }
    }
    Ok(())
}

/// Containers wait for their dependencies, so a cycle would wait forever.
fn check_dependency_cycles(all: &[ContainerDefinition]) -> Result<(), ModelError> {
    fn deps(c: &ContainerDefinition) -> Vec<&str> {
        c.depends_on.iter().flatten().map(|d| d.container_name.as_str()).collect()
    }
    // Peel off containers whose dependencies are all peeled: what remains
    // is on (or behind) a cycle.
    let mut startable: Vec<&str> = Vec::new();
    loop {
        let before = startable.len();
        for c in all {
            let name = name_of(c);
            if !startable.contains(&name) && deps(c).iter().all(|d| startable.contains(d)) {
                startable.push(name);
            }
        }
        if startable.len() == before {
            break;
        }
    }
    let stuck: Vec<&str> = all.iter().map(name_of).filter(|n| !startable.contains(n)).collect();
    if stuck.is_empty() {
        return Ok(());
    }
    Err(ModelError::client(format!(
        "The container dependencies contain a cycle: containers {} wait for each other, so none of them could start.",
        stuck.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ")
    )))
}

/// The command starts with CMD or CMD-SHELL; the timings are in ECS's
/// documented ranges.
fn check_health_check(name: &str, hc: &HealthCheck) -> Result<(), ModelError> {
    let starts_right = matches!(hc.command.first().map(String::as_str), Some("CMD" | "CMD-SHELL"));
    if !starts_right || hc.command.len() < 2 {
        return Err(ModelError::client(format!(
            "Invalid 'healthCheck.command' setting for container '{name}'. Start it with CMD (to run the arguments \
             directly) or CMD-SHELL (to run them with the container's shell), followed by the command, for example \
             [\"CMD-SHELL\", \"curl -f http://localhost/ || exit 1\"]."
        )));
    }
    let limits = [
        ("interval", hc.interval, 5..=300, "seconds"),
        ("timeout", hc.timeout, 2..=60, "seconds"),
        ("retries", hc.retries, 1..=10, "retries"),
        ("startPeriod", hc.start_period, 0..=300, "seconds"),
    ];
    for (field, value, range, unit) in limits {
        if let Some(v) = value.filter(|v| !range.contains(v)) {
            return Err(ModelError::client(format!(
                "Invalid 'healthCheck.{field}' setting for container '{name}': {v}. Give between {} and {} {unit}.",
                range.start(),
                range.end()
            )));
        }
    }
    Ok(())
}

// ---- containers against the task size ---------------------------------

fn check_resources(containers: &[ContainerDefinition], size: TaskSize) -> Result<(), ModelError> {
    match size.memory {
        Some(task_mib) => check_memory_fits(containers, task_mib)?,
        None => require_container_memory(containers)?,
    }
    match size.cpu {
        Some(task_units) => check_cpu_fits(containers, task_units),
        None => Ok(()),
    }
}

/// Each hard limit fits the task, and so does the sum of what the
/// containers reserve (`memoryReservation`, else `memory`).
fn check_memory_fits(containers: &[ContainerDefinition], task_mib: u32) -> Result<(), ModelError> {
    let task = i64::from(task_mib);
    for c in containers {
        if let Some(limit) = c.memory.filter(|m| i64::from(*m) > task) {
            return Err(ModelError::client(format!(
                "The 'memory' setting for container '{}' is greater than for the task: {limit} MiB > {task} MiB. \
                 Lower the container's memory or raise the task's.",
                name_of(c)
            )));
        }
    }
    let reserved: i64 = containers.iter().map(|c| i64::from(c.memory_reservation.or(c.memory).unwrap_or(0))).sum();
    if reserved > task {
        return Err(ModelError::client(format!(
            "The sum of all container 'memoryReservation' values (or 'memory' where a container has no reservation) \
             cannot be greater than the value of the task 'memory': {reserved} MiB > {task} MiB."
        )));
    }
    Ok(())
}

/// Without a task-level memory, every container says how much it needs.
fn require_container_memory(containers: &[ContainerDefinition]) -> Result<(), ModelError> {
    match containers.iter().find(|c| c.memory.is_none() && c.memory_reservation.is_none()) {
        Some(c) => Err(ModelError::client(format!(
            "Invalid setting for container '{}'. At least one of 'memory' or 'memoryReservation' must be specified \
             when the task has no 'memory'.",
            name_of(c)
        ))),
        None => Ok(()),
    }
}

fn check_cpu_fits(containers: &[ContainerDefinition], task_units: u32) -> Result<(), ModelError> {
    let sum: i64 = containers.iter().map(|c| i64::from(c.cpu.unwrap_or(0))).sum();
    if sum > i64::from(task_units) {
        return Err(ModelError::client(format!(
            "The sum of all container 'cpu' values cannot be greater than the value of the task 'cpu': \
             {sum} > {task_units} CPU units."
        )));
    }
    Ok(())
}

// ---- the stored record ------------------------------------------------

/// The defaults ECS writes into a registered container definition:
/// `cpu` 0, `essential` true, static host ports in awsvpc and host mode,
/// protocol tcp, and empty lists.
fn with_ecs_defaults(mut c: ContainerDefinition, mode: NetworkMode) -> ContainerDefinition {
    c.cpu.get_or_insert(0);
    c.essential.get_or_insert(true);
    let static_ports = matches!(mode, NetworkMode::Awsvpc | NetworkMode::Host);
    for pm in c.port_mappings.get_or_insert_with(Vec::new) {
        pm.protocol.get_or_insert(TransportProtocol::Tcp);
        if static_ports && pm.container_port_range.is_none() && pm.host_port.unwrap_or(0) == 0 {
            pm.host_port = pm.container_port;
        }
    }
    c.environment.get_or_insert_with(Vec::new);
    c.mount_points.get_or_insert_with(Vec::new);
    c.volumes_from.get_or_insert_with(Vec::new);
    c.system_controls.get_or_insert_with(Vec::new);
    c
}

#[cfg(test)]
mod tests {
    use berth_wire::ecs::{ContainerDependency, KeyValuePair};
    use serde_json::{Value, json};

    use super::*;

    const SEED: &str = r#"{"family":"api-service","networkMode":"awsvpc","requiresCompatibilities":["FARGATE"],"cpu":"512","memory":"1024","containerDefinitions":[{"name":"api","image":"123456789.dkr.ecr.us-east-1.amazonaws.com/api:latest","portMappings":[{"containerPort":8080}],"logConfiguration":{"logDriver":"awslogs","options":{"awslogs-group":"/ecs/api-service","awslogs-region":"us-east-1","awslogs-stream-prefix":"ecs"}}}]}"#;

    type Mutation = fn(&mut RegisterTaskDefinitionRequest);

    fn seed() -> RegisterTaskDefinitionRequest {
        serde_json::from_str(SEED).unwrap()
    }

    fn acct() -> Account {
        Account { region: "us-east-1".into(), account_id: "123456789012".into() }
    }

    fn mutated(m: Mutation) -> RegisterTaskDefinitionRequest {
        let mut r = seed();
        m(&mut r);
        r
    }

    fn api(r: &mut RegisterTaskDefinitionRequest) -> &mut ContainerDefinition {
        &mut r.container_definitions[0]
    }

    /// Adds a container named `name` (the seed's, without port mappings)
    /// and returns it.
    fn sidecar<'a>(r: &'a mut RegisterTaskDefinitionRequest, name: &str) -> &'a mut ContainerDefinition {
        let c =
            ContainerDefinition { name: Some(name.into()), port_mappings: None, ..r.container_definitions[0].clone() };
        r.container_definitions.push(c);
        r.container_definitions.last_mut().unwrap()
    }

    /// EC2-only, no task size.
    fn ec2(r: &mut RegisterTaskDefinitionRequest) {
        r.requires_compatibilities = Some(vec![Compatibility::Ec2]);
        r.cpu = None;
        r.memory = None;
        api(r).memory = Some(512);
    }

    fn health(command: &[&str]) -> HealthCheck {
        HealthCheck { command: command.iter().map(|s| s.to_string()).collect(), ..HealthCheck::default() }
    }

    fn linux(r: &mut RegisterTaskDefinitionRequest) -> &mut LinuxParameters {
        api(r).linux_parameters.get_or_insert_with(Default::default)
    }

    fn caps(add: &[&str], drop: &[&str]) -> berth_wire::ecs::KernelCapabilities {
        let list = |l: &[&str]| Some(l.iter().map(|s| s.to_string()).collect());
        berth_wire::ecs::KernelCapabilities { add: list(add), drop: list(drop) }
    }

    fn volume(r: &mut RegisterTaskDefinitionRequest, name: &str, source_path: Option<&str>) {
        let host = source_path.map(|p| berth_wire::ecs::HostVolumeProperties { source_path: Some(p.into()) });
        r.volumes.get_or_insert_with(Vec::new).push(berth_wire::ecs::Volume {
            name: Some(name.into()),
            host,
            ..Default::default()
        });
    }

    fn mount(r: &mut RegisterTaskDefinitionRequest, volume: &str, path: &str) {
        api(r).mount_points.get_or_insert_with(Vec::new).push(berth_wire::ecs::MountPoint {
            source_volume: Some(volume.into()),
            container_path: Some(path.into()),
            read_only: None,
        });
    }

    fn sysctl(r: &mut RegisterTaskDefinitionRequest, namespace: &str) {
        api(r).system_controls.get_or_insert_with(Vec::new).push(berth_wire::ecs::SystemControl {
            namespace: Some(namespace.into()),
            value: Some("1".into()),
        });
    }

    fn ulimit(r: &mut RegisterTaskDefinitionRequest, hard: i32) {
        api(r).ulimits = Some(vec![berth_wire::ecs::Ulimit {
            name: berth_wire::ecs::UlimitName::Nofile,
            soft_limit: hard,
            hard_limit: hard,
        }]);
    }

    fn depend(r: &mut RegisterTaskDefinitionRequest, on: &str, condition: ContainerCondition) {
        api(r).depends_on = Some(vec![ContainerDependency { container_name: on.into(), condition }]);
    }

    #[rustfmt::skip]
    const BROKEN: &[(&str, Mutation, &str, &str)] = &[
        ("blank family", |r| r.family = String::new(), "ClientException", "Family can not be blank"),
        ("family with spaces", |r| r.family = "bad family!".into(), "ClientException", "Family contains invalid characters: 'bad family!'"),
        ("family too long", |r| r.family = "f".repeat(256), "ClientException", "Family is too long: 256"),
        ("no containers", |r| r.container_definitions.clear(), "ClientException", "Container list cannot be empty"),
        ("eleven containers", |r| { for i in 0..10 { sidecar(r, &format!("s{i}")); } }, "ClientException", "at most 10 containers; 11"),
        ("no container name", |r| api(r).name = None, "ClientException", "Container.name should not be null or empty"),
        ("container name with a space", |r| api(r).name = Some("my api".into()), "ClientException", "Container.name contains invalid characters: 'my api'"),
        ("container name too long", |r| api(r).name = Some("c".repeat(256)), "ClientException", "Container.name is too long"),
        ("duplicate container name", |r| { sidecar(r, "api"); }, "ClientException", "must be unique within a Task Definition: 'api'"),
        ("no image", |r| api(r).image = None, "ClientException", "Container.image should not be null or empty"),
        ("empty image", |r| api(r).image = Some(String::new()), "ClientException", "Container.image should not be null or empty"),
        ("image with a space", |r| api(r).image = Some("busy box".into()), "ClientException", "Container.image contains invalid characters"),
        ("image too long", |r| api(r).image = Some(format!("r/{}", "i".repeat(254))), "ClientException", "Container.image is too long"),
        ("image with a sha1 digest", |r| api(r).image = Some("busybox@sha1:abc".into()), "ClientException", "Only sha256 digests"),
        ("image with a short digest", |r| api(r).image = Some("busybox@sha256:abc".into()), "ClientException", "64 hexadecimal"),
        ("no essential container", |r| api(r).essential = Some(false), "ClientException", "doesn't have any essential container"),
        ("fargate in bridge mode", |r| r.network_mode = Some(NetworkMode::Bridge), "ClientException", "Fargate only supports network mode ‘awsvpc’"),
        ("fargate without network mode", |r| r.network_mode = None, "ClientException", "\"networkMode\": \"awsvpc\""),
        ("fargate without cpu", |r| r.cpu = None, "ClientException", "Fargate requires that 'cpu' be defined at the task level. Valid values: 256, 512"),
        ("fargate without memory", |r| r.memory = None, "ClientException", "Fargate requires that 'memory' be defined"),
        ("cpu 256 with memory 4096", |r| { r.cpu = Some("256".into()); r.memory = Some("4096".into()); }, "ClientException", "Valid memory values for 256 CPU: 512, 1024, 2048 MiB"),
        ("no fargate cpu 300", |r| r.cpu = Some("300".into()), "ClientException", "Valid CPU values: 256, 512, 1024"),
        ("unparsable cpu", |r| r.cpu = Some("fast".into()), "ClientException", "Invalid 'cpu' setting for task: 'fast'"),
        ("unparsable memory", |r| r.memory = Some("lots".into()), "ClientException", "Invalid 'memory' setting for task: 'lots'"),
        ("unparsable cpu on EC2", |r| { ec2(r); r.cpu = Some("1 core".into()); }, "ClientException", "Invalid 'cpu' setting for task"),
        ("EC2 cpu below 128", |r| { ec2(r); r.cpu = Some("64".into()); }, "ClientException", "between 128"),
        ("fargate pidMode host", |r| r.pid_mode = Some(PidMode::Host), "ClientException", "do not support pidMode 'host'"),
        ("fargate ipcMode", |r| r.ipc_mode = Some(berth_wire::ecs::IpcMode::Task), "ClientException", "do not support ipcMode"),
        ("fargate privileged", |r| api(r).privileged = Some(true), "ClientException", "do not support privileged containers (\"privileged\": true). Remove it from container 'api'"),
        ("fargate adds NET_ADMIN", |r| linux(r).capabilities = Some(caps(&["SYS_PTRACE", "NET_ADMIN"], &[])), "ClientException", "only support adding the SYS_PTRACE kernel capability: container 'api' adds 'NET_ADMIN'"),
        ("fargate adds ALL", |r| linux(r).capabilities = Some(caps(&["ALL"], &[])), "ClientException", "adds 'ALL'"),
        ("fargate devices", |r| linux(r).devices = Some(vec![berth_wire::ecs::Device { host_path: "/dev/fuse".into(), ..Default::default() }]), "ClientException", "do not support the 'linuxParameters.devices' parameter"),
        ("fargate sharedMemorySize", |r| linux(r).shared_memory_size = Some(64), "ClientException", "'linuxParameters.sharedMemorySize'"),
        ("fargate tmpfs", |r| linux(r).tmpfs = Some(vec![berth_wire::ecs::Tmpfs { container_path: "/t".into(), size: 8, mount_options: None }]), "ClientException", "'linuxParameters.tmpfs'"),
        ("fargate maxSwap", |r| linux(r).max_swap = Some(0), "ClientException", "'linuxParameters.maxSwap'"),
        ("fargate swappiness", |r| linux(r).swappiness = Some(10), "ClientException", "'linuxParameters.swappiness'"),
        ("fargate host volume", |r| { volume(r, "data", Some("/srv/data")); }, "ClientException", "do not support host volumes with a sourcePath: volume 'data' asks for host path '/srv/data'"),
        ("fargate docker volume", |r| { r.volumes = Some(vec![berth_wire::ecs::Volume { name: Some("d".into()), docker_volume_configuration: Some(Default::default()), ..Default::default() }]); }, "ClientException", "do not support dockerVolumeConfiguration: volume 'd'"),
        ("fargate sysctl kernel.domainname", |r| sysctl(r, "kernel.domainname"), "ClientException", "do not support the systemControls namespace 'kernel.domainname' in container 'api'"),
        ("fargate sysctl vm.swappiness", |r| sysctl(r, "vm.swappiness"), "ClientException", "namespace 'vm.swappiness'"),
        ("fargate sysctl bare net.", |r| sysctl(r, "net."), "ClientException", "namespace 'net.'"),
        ("fargate nofile over the maximum", |r| ulimit(r, FARGATE_MAX_NOFILE + 1), "ClientException", "hardLimit 1048577 is over Fargate's maximum of 1048576"),
        ("fargate dnsServers", |r| api(r).dns_servers = Some(vec!["10.0.0.2".into()]), "ClientException", "do not support the 'dnsServers' parameter"),
        ("fargate extraHosts", |r| api(r).extra_hosts = Some(vec![berth_wire::ecs::HostEntry { hostname: "db".into(), ip_address: "10.0.0.9".into() }]), "ClientException", "'extraHosts'"),
        ("fargate hostname", |r| api(r).hostname = Some("web".into()), "ClientException", "'hostname'"),
        ("fargate dockerSecurityOptions", |r| api(r).docker_security_options = Some(vec!["no-new-privileges".into()]), "ClientException", "'dockerSecurityOptions'"),
        ("fargate disableNetworking", |r| api(r).disable_networking = Some(true), "ClientException", "'disableNetworking'"),
        ("mount point of a stranger volume", |r| mount(r, "ghost", "/data"), "ClientException", "sourceVolume 'ghost' is not a volume of this task definition"),
        ("mount point without a path", |r| { volume(r, "data", None); api(r).mount_points = Some(vec![berth_wire::ecs::MountPoint { source_volume: Some("data".into()), ..Default::default() }]); }, "ClientException", "absolute containerPath"),
        ("negative container cpu", |r| api(r).cpu = Some(-1), "ClientException", "Invalid 'cpu' setting for container 'api'"),
        ("container cpu over task", |r| { api(r).cpu = Some(300); sidecar(r, "side").cpu = Some(300); }, "ClientException", "sum of all container 'cpu' values cannot be greater than the value of the task 'cpu': 600 > 512"),
        ("container memory 4", |r| api(r).memory = Some(4), "ClientException", "Invalid 'memory' setting for container 'api'. At least 6 MB of memory is required"),
        ("container reservation 5", |r| api(r).memory_reservation = Some(5), "ClientException", "Invalid 'memoryReservation' setting for container 'api'. At least 6 MB"),
        ("reservation over memory", |r| { api(r).memory = Some(256); api(r).memory_reservation = Some(512); }, "ClientException", "must not be greater than the 'memory' hard limit"),
        ("container memory over task", |r| api(r).memory = Some(4096), "ClientException", "The 'memory' setting for container 'api' is greater than for the task"),
        ("reservations over task", |r| { api(r).memory_reservation = Some(600); sidecar(r, "side").memory = Some(600); }, "ClientException", "sum of all container 'memoryReservation' values"),
        ("EC2 without any memory", |r| { ec2(r); api(r).memory = None; }, "ClientException", "At least one of 'memory' or 'memoryReservation' must be specified"),
        ("awsvpc hostPort differs", |r| api(r).port_mappings.as_mut().unwrap()[0].host_port = Some(80), "ClientException", "When networkMode=awsvpc, the host ports and container ports in port mappings must match. Container 'api' maps containerPort 8080 to hostPort 80"),
        ("host mode hostPort differs", |r| { ec2(r); r.network_mode = Some(NetworkMode::Host); api(r).port_mappings.as_mut().unwrap()[0].host_port = Some(80); }, "ClientException", "When networkMode=host"),
        ("hostPort out of range", |r| api(r).port_mappings.as_mut().unwrap()[0].host_port = Some(70000), "ClientException", "Invalid 'hostPort'"),
        ("no containerPort", |r| api(r).port_mappings.as_mut().unwrap()[0].container_port = None, "ClientException", "Invalid 'containerPort' setting for container 'api'"),
        ("containerPort 0", |r| api(r).port_mappings.as_mut().unwrap()[0].container_port = Some(0), "ClientException", "Invalid 'containerPort'"),
        ("containerPort 65536", |r| api(r).port_mappings.as_mut().unwrap()[0].container_port = Some(65_536), "ClientException", "Invalid 'containerPort'"),
        ("backwards port range", |r| api(r).port_mappings.as_mut().unwrap()[0].container_port_range = Some("9000-8000".into()), "ClientException", "Invalid 'containerPortRange' setting for container 'api': '9000-8000'"),
        ("port range with hostPort", |r| { let pm = &mut api(r).port_mappings.as_mut().unwrap()[0]; pm.container_port_range = Some("8000-8010".into()); pm.host_port = Some(8000); }, "ClientException", "leave hostPort empty"),
        ("port range in host mode", |r| { ec2(r); r.network_mode = Some(NetworkMode::Host); api(r).port_mappings.as_mut().unwrap()[0].container_port_range = Some("8000-8010".into()); }, "ClientException", "containerPortRange is only supported"),
        ("ports in none mode", |r| { ec2(r); r.network_mode = Some(NetworkMode::None); }, "ClientException", "Port mappings are not supported when networkMode=none"),
        ("links in awsvpc", |r| { sidecar(r, "db"); api(r).links = Some(vec!["db".into()]); }, "ClientException", "Links are not supported when networkMode=awsvpc"),
        ("dependsOn a stranger", |r| depend(r, "ghost", ContainerCondition::Start), "ClientException", "depends on 'ghost', which is not a container of this task definition"),
        ("dependsOn itself", |r| depend(r, "api", ContainerCondition::Start), "ClientException", "can not depend on itself"),
        ("dependsOn SUCCESS of an essential container", |r| { sidecar(r, "init"); depend(r, "init", ContainerCondition::Success); }, "ClientException", "SUCCESS or COMPLETE condition cannot be an essential container"),
        ("dependsOn HEALTHY without a health check", |r| { sidecar(r, "db"); depend(r, "db", ContainerCondition::Healthy); }, "ClientException", "'db' has no healthCheck"),
        ("dependency cycle", |r| { sidecar(r, "db"); depend(r, "db", ContainerCondition::Start); r.container_definitions[1].depends_on = Some(vec![ContainerDependency { container_name: "api".into(), condition: ContainerCondition::Start }]); }, "ClientException", "contain a cycle: containers 'api', 'db'"),
        ("health check without CMD", |r| api(r).health_check = Some(health(&["curl", "-f", "http://localhost/"])), "ClientException", "Start it with CMD"),
        ("health check with CMD only", |r| api(r).health_check = Some(health(&["CMD-SHELL"])), "ClientException", "Invalid 'healthCheck.command'"),
        ("empty health check", |r| api(r).health_check = Some(health(&[])), "ClientException", "Invalid 'healthCheck.command'"),
        ("health interval 4", |r| api(r).health_check = Some(HealthCheck { interval: Some(4), ..health(&["CMD", "true"]) }), "ClientException", "'healthCheck.interval' setting for container 'api': 4. Give between 5 and 300 seconds"),
        ("health interval 301", |r| api(r).health_check = Some(HealthCheck { interval: Some(301), ..health(&["CMD", "true"]) }), "ClientException", "healthCheck.interval"),
        ("health timeout 1", |r| api(r).health_check = Some(HealthCheck { timeout: Some(1), ..health(&["CMD", "true"]) }), "ClientException", "Give between 2 and 60 seconds"),
        ("health timeout 61", |r| api(r).health_check = Some(HealthCheck { timeout: Some(61), ..health(&["CMD", "true"]) }), "ClientException", "healthCheck.timeout"),
        ("health retries 0", |r| api(r).health_check = Some(HealthCheck { retries: Some(0), ..health(&["CMD", "true"]) }), "ClientException", "Give between 1 and 10 retries"),
        ("health retries 11", |r| api(r).health_check = Some(HealthCheck { retries: Some(11), ..health(&["CMD", "true"]) }), "ClientException", "healthCheck.retries"),
        ("health startPeriod -1", |r| api(r).health_check = Some(HealthCheck { start_period: Some(-1), ..health(&["CMD", "true"]) }), "ClientException", "healthCheck.startPeriod"),
        ("health startPeriod 301", |r| api(r).health_check = Some(HealthCheck { start_period: Some(301), ..health(&["CMD", "true"]) }), "ClientException", "Give between 0 and 300 seconds"),
        ("blank environment name", |r| api(r).environment = Some(vec![KeyValuePair { name: Some(String::new()), value: Some("x".into()) }]), "ClientException", "Environment variable names can not be blank"),
        ("environment without name", |r| api(r).environment = Some(vec![KeyValuePair { name: None, value: Some("x".into()) }]), "ClientException", "container 'api' has an 'environment' entry"),
        ("environment files", |r| api(r).environment_files = Some(vec![berth_wire::ecs::EnvironmentFile { value: "arn:aws:s3:::b/k.env".into(), r#type: berth_wire::ecs::EnvironmentFileType::S3 }]), "ClientException", "environmentFiles, which Berth does not support"),
    ];

    #[test]
    fn every_rule_refuses_with_ecs_type_and_message() {
        for (what, mutation, aws_type, needle) in BROKEN {
            let err = validate(&mutated(*mutation)).expect_err(what);
            assert_eq!(err.aws_type(), *aws_type, "{what}: {err}");
            assert!(err.to_string().contains(needle), "{what}: {err:?} should contain {needle:?}");
        }
    }

    #[rustfmt::skip]
    const VALID: &[(&str, Mutation)] = &[
        ("the seed", |_| {}),
        ("vCPU and GB strings", |r| { r.cpu = Some("1 vCPU".into()); r.memory = Some("2 GB".into()); }),
        ("hostPort equal to containerPort", |r| api(r).port_mappings.as_mut().unwrap()[0].host_port = Some(8080)),
        ("a port range", |r| { let pm = &mut api(r).port_mappings.as_mut().unwrap()[0]; pm.container_port = None; pm.container_port_range = Some("8000-8010".into()); }),
        ("ten containers, one essential", |r| { for i in 0..9 { sidecar(r, &format!("s{i}")).essential = Some(false); } }),
        ("a 255-character family", |r| r.family = "f".repeat(255)),
        ("a digest image", |r| api(r).image = Some(format!("registry.local:5000/team/api@sha256:{}", "a".repeat(64)))),
        ("pidMode task on Fargate", |r| r.pid_mode = Some(PidMode::Task)),
        ("container cpu equal to the task", |r| { api(r).cpu = Some(256); sidecar(r, "side").cpu = Some(256); }),
        ("reservation equal to memory", |r| { api(r).memory = Some(1024); api(r).memory_reservation = Some(1024); }),
        ("hard limits over the task, reservations within", |r| { api(r).memory = Some(1024); api(r).memory_reservation = Some(512); let s = sidecar(r, "side"); s.memory = Some(1024); s.memory_reservation = Some(512); }),
        ("minimum container memory", |r| api(r).memory = Some(MIN_CONTAINER_MEMORY)),
        ("health check at the lower bounds", |r| api(r).health_check = Some(HealthCheck { interval: Some(5), timeout: Some(2), retries: Some(1), start_period: Some(0), ..health(&["CMD", "true"]) })),
        ("health check at the upper bounds", |r| api(r).health_check = Some(HealthCheck { interval: Some(300), timeout: Some(60), retries: Some(10), start_period: Some(300), ..health(&["CMD-SHELL", "exit 0"]) })),
        ("dependsOn START and SUCCESS of a non-essential", |r| { sidecar(r, "init").essential = Some(false); depend(r, "init", ContainerCondition::Success); }),
        ("EC2 bridge with links and container memory", |r| { ec2(r); r.network_mode = None; sidecar(r, "db"); api(r).links = Some(vec!["db:database".into()]); }),
        ("EC2 awsvpc with an odd task size", |r| { r.requires_compatibilities = None; r.cpu = Some("384".into()); r.memory = Some("700".into()); }),
        ("EC2 with ipcMode and pidMode host", |r| { ec2(r); r.ipc_mode = Some(berth_wire::ecs::IpcMode::Host); r.pid_mode = Some(PidMode::Host); }),
        ("fargate adds SYS_PTRACE and drops ALL", |r| linux(r).capabilities = Some(caps(&["SYS_PTRACE"], &["ALL"]))),
        ("fargate initProcessEnabled", |r| linux(r).init_process_enabled = Some(true)),
        ("fargate bind mount volume shared by two containers", |r| { volume(r, "scratch", None); mount(r, "scratch", "/scratch"); sidecar(r, "reader"); }),
        ("fargate host without sourcePath", |r| { r.volumes = Some(vec![berth_wire::ecs::Volume { name: Some("v".into()), host: Some(Default::default()), ..Default::default() }]); }),
        ("fargate EFS volume", |r| { r.volumes = Some(vec![berth_wire::ecs::Volume { name: Some("efs".into()), efs_volume_configuration: Some(berth_wire::ecs::EFSVolumeConfiguration { file_system_id: "fs-1".into(), ..Default::default() }), ..Default::default() }]); }),
        ("fargate sysctls net and IPC", |r| { sysctl(r, "net.ipv4.tcp_keepalive_time"); sysctl(r, "kernel.shmmax"); sysctl(r, "fs.mqueue.msg_max"); }),
        ("fargate nofile at the maximum", |r| ulimit(r, FARGATE_MAX_NOFILE)),
        ("EC2 privileged with a host volume and NET_ADMIN", |r| { ec2(r); api(r).privileged = Some(true); volume(r, "data", Some("/srv")); linux(r).capabilities = Some(caps(&["NET_ADMIN"], &[])); }),
    ];

    #[test]
    fn valid_definitions_pass() {
        for (what, mutation) in VALID {
            assert_eq!(validate(&mutated(*mutation)), Ok(()), "{what}");
        }
    }

    #[test]
    fn secrets_and_registry_credentials_need_an_execution_role() {
        let with_secret = mutated(|r| {
            api(r).secrets = Some(vec![berth_wire::ecs::Secret { name: "DB".into(), value_from: "db-password".into() }]);
        });
        let err = validate(&with_secret).unwrap_err();
        assert_eq!(err.aws_type(), "ClientException");
        assert_eq!(
            err.to_string(),
            "When you are specifying container secrets, you must also specify a value for 'executionRoleArn'."
        );
        let mut with_role = with_secret.clone();
        with_role.execution_role_arn = Some("arn:aws:iam::123456789012:role/exec".into());
        assert_eq!(validate(&with_role), Ok(()));
        let private = mutated(|r| {
            api(r).repository_credentials = Some(berth_wire::ecs::RepositoryCredentials {
                credentials_parameter: "arn:aws:secretsmanager:us-east-1:123456789012:secret:reg-AbCdEf".into(),
            });
        });
        assert!(validate(&private).unwrap_err().to_string().contains("registry credentials"));
    }

    #[test]
    fn size_limit_is_64_kib() {
        assert_eq!(validate_size(65_536), Ok(()));
        let err = validate_size(65_537).unwrap_err();
        assert_eq!(err.aws_type(), "ClientException");
        assert!(err.to_string().starts_with("Actual length: '65537'. Max allowed length is '65536' bytes."), "{err}");
    }

    #[test]
    fn seed_builds_the_record_ecs_returns() {
        let req = seed();
        validate(&req).unwrap();
        let td = build(&acct(), req, 3, 1_700_000_000.5, Some("arn:aws:iam::123456789012:root".into()));
        let v = serde_json::to_value(&td).unwrap();
        assert_eq!(v["taskDefinitionArn"], "arn:aws:ecs:us-east-1:123456789012:task-definition/api-service:3");
        assert_eq!(
            (v["family"].clone(), v["revision"].clone(), v["status"].clone()),
            (json!("api-service"), json!(3), json!("ACTIVE"))
        );
        assert_eq!((v["cpu"].clone(), v["memory"].clone()), (json!("512"), json!("1024")));
        assert_eq!(v["compatibilities"], json!(["EC2", "FARGATE"]));
        assert_eq!(v["requiresCompatibilities"], json!(["FARGATE"]));
        assert_eq!((v["volumes"].clone(), v["placementConstraints"].clone()), (json!([]), json!([])));
        assert_eq!(v["registeredAt"], 1_700_000_000.5);
        assert_eq!(v["registeredBy"], "arn:aws:iam::123456789012:root");
        assert!(v.get("requiresAttributes").is_none() && v.get("tags").is_none(), "{v}");
        let c = &v["containerDefinitions"][0];
        assert_eq!(c["portMappings"], json!([{"containerPort": 8080, "hostPort": 8080, "protocol": "tcp"}]));
        assert_eq!((c["essential"].clone(), c["cpu"].clone()), (json!(true), json!(0)));
        assert_eq!(c["logConfiguration"]["options"]["awslogs-group"], "/ecs/api-service");
        assert_eq!(c["environment"], json!([]));
    }

    #[test]
    fn vcpu_and_gb_strings_are_stored_as_units_and_mib() {
        let mut req = seed();
        req.cpu = Some("1 vCPU".into());
        req.memory = Some("2 GB".into());
        validate(&req).unwrap();
        let td = build(&acct(), req, 1, 0.0, None);
        assert_eq!((td.cpu.as_deref(), td.memory.as_deref()), (Some("1024"), Some("2048")));
    }

    #[test]
    fn cpu_256_with_memory_4096_names_the_valid_values() {
        let err = validate(&mutated(|r| {
            r.cpu = Some("256".into());
            r.memory = Some("4096".into());
        }))
        .unwrap_err();
        assert_eq!(err.aws_type(), "ClientException");
        assert!(err.to_string().contains("Valid memory values for 256 CPU: 512, 1024, 2048 MiB."), "{err}");
    }

    #[test]
    fn ephemeral_storage_is_21_to_200_gib() {
        use berth_wire::ecs::EphemeralStorage;
        for (size, ok) in [(20, false), (21, true), (200, true), (201, false)] {
            let mut req = seed();
            req.ephemeral_storage = Some(EphemeralStorage { size_in_gi_b: size });
            let r = validate(&req);
            assert_eq!(r.is_ok(), ok, "{size} GiB: {r:?}");
            if let Err(e) = r {
                assert_eq!(e.aws_type(), "ClientException");
                assert!(e.to_string().contains("between 21 and 200"), "{e}");
            }
        }
    }

    #[test]
    fn compatibilities_say_where_it_can_run() {
        let ec2_bridge = mutated(|r| {
            ec2(r);
            r.network_mode = None;
        });
        validate(&ec2_bridge).unwrap();
        assert_eq!(build(&acct(), ec2_bridge, 1, 0.0, None).compatibilities, Some(vec![Compatibility::Ec2]));
        let fargate_shaped = mutated(|r| r.requires_compatibilities = None);
        assert_eq!(
            build(&acct(), fargate_shaped, 1, 0.0, None).compatibilities,
            Some(vec![Compatibility::Ec2, Compatibility::Fargate])
        );
        let external = mutated(|r| r.requires_compatibilities = Some(vec![Compatibility::External]));
        assert_eq!(
            build(&acct(), external, 1, 0.0, None).compatibilities,
            Some(vec![Compatibility::Ec2, Compatibility::Fargate, Compatibility::External])
        );
    }

    #[test]
    fn every_request_member_but_tags_is_copied() {
        let req: RegisterTaskDefinitionRequest = serde_json::from_value(json!({
            "family": "everything", "taskRoleArn": "arn:aws:iam::123456789012:role/task",
            "executionRoleArn": "arn:aws:iam::123456789012:role/exec", "networkMode": "host",
            "containerDefinitions": [{"name": "app", "image": "busybox", "memory": 64, "essential": true, "cpu": 0,
                "portMappings": [], "environment": [], "mountPoints": [], "volumesFrom": [], "systemControls": []}],
            "volumes": [{"name": "data", "host": {"sourcePath": "/srv/data"}}],
            "placementConstraints": [{"type": "memberOf", "expression": "attribute:ecs.availability-zone in [us-east-1a]"}],
            "requiresCompatibilities": ["EC2"], "cpu": "0.5 vCPU", "memory": "1GB",
            "tags": [{"key": "team", "value": "api"}], "pidMode": "host", "ipcMode": "task",
            "proxyConfiguration": {"type": "APPMESH", "containerName": "app", "properties": [{"name": "AppPorts", "value": "8080"}]},
            "inferenceAccelerators": [{"deviceName": "gpu0", "deviceType": "eia2.medium"}],
            "ephemeralStorage": {"sizeInGiB": 30},
            "runtimePlatform": {"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"},
            "enableFaultInjection": true
        }))
        .unwrap();
        validate(&req).unwrap();
        let sent = serde_json::to_value(&req).unwrap();
        let stored = serde_json::to_value(build(&acct(), req, 1, 0.0, None)).unwrap();
        for (key, value) in sent.as_object().unwrap() {
            match key.as_str() {
                "tags" => assert!(stored.get("tags").is_none()),
                "cpu" => assert_eq!(stored["cpu"], "512"),
                "memory" => assert_eq!(stored["memory"], "1024"),
                _ => assert_eq!(&stored[key], value, "{key}"),
            }
        }
        assert_eq!(sent.as_object().unwrap().len(), 18, "the request sets every member");
    }

    #[test]
    fn unknown_fields_from_newer_sdks_are_ignored() {
        let mut v: Value = serde_json::from_str(SEED).unwrap();
        v["someFutureField"] = json!({"x": 1});
        v["containerDefinitions"][0]["someFutureContainerField"] = json!(true);
        let req: RegisterTaskDefinitionRequest = serde_json::from_value(v).unwrap();
        assert_eq!(validate(&req), Ok(()));
    }
}
