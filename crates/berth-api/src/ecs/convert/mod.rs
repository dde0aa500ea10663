//! The domain's typed objects to and from ECS's wire shapes. The only
//! place a task is turned into what DescribeTasks shows (and RunTask's
//! overrides and tags into the domain's).

use berth_model::network::{ENI_ATTACHMENT, eni_id, private_dns_name};
use berth_model::task::{self as model, EniStatus, StopCode, Task};
use berth_wire::ecs as wire;

/// The ECS `Task` for a stored task; `version` is the record's version
/// (ECS's task version counts every change, as the store's does).
pub fn task(t: &Task, version: i64) -> wire::Task {
    let arn = t.arn.to_string();
    let region = t.arn.account.region.as_str();
    let eni = t.network.as_ref().map(|n| &n.eni);
    let interfaces = eni.and_then(|e| {
        let ip = e.ip?;
        Some(vec![wire::NetworkInterface {
            attachment_id: Some(e.attachment_id.clone()),
            private_ipv4_address: Some(ip.to_string()),
            ipv6_address: None,
        }])
    });
    let containers = t
        .containers
        .iter()
        .map(|c| wire::Container {
            container_arn: Some(c.arn.clone()),
            task_arn: Some(arn.clone()),
            name: Some(c.name.clone()),
            image: Some(c.image.clone()),
            last_status: Some(c.status().as_str().to_owned()),
            exit_code: c.exit_code,
            reason: c.reason.clone(),
            runtime_id: c.runtime_id.clone(),
            health_status: c.health.map(health),
            network_bindings: (!c.bindings.is_empty()).then(|| c.bindings.iter().map(binding).collect()),
            network_interfaces: Some(interfaces.clone().unwrap_or_default()),
            cpu: Some(c.cpu.to_string()),
            memory: c.memory.map(|m| m.to_string()),
            memory_reservation: c.memory_reservation.map(|m| m.to_string()),
            ..wire::Container::default()
        })
        .collect();
    wire::Task {
        task_arn: Some(arn),
        cluster_arn: Some(t.cluster_arn().to_string()),
        task_definition_arn: Some(t.definition_arn.to_string()),
        last_status: Some(t.status().as_str().to_owned()),
        desired_status: Some(t.desired().as_str().to_owned()),
        cpu: Some(t.size.cpu.to_string()),
        memory: Some(t.size.memory.to_string()),
        containers: Some(containers),
        availability_zone: t.availability_zone.clone(),
        launch_type: Some(wire::LaunchType::Fargate),
        capacity_provider_name: t.capacity_provider.clone(),
        platform_version: Some(t.platform_version.clone()),
        platform_family: Some("Linux".into()),
        started_by: t.started_by.clone(),
        group: Some(t.group.clone()),
        tags: Some(tags_to_wire(&t.tags)),
        overrides: Some(overrides_to_wire(&t.overrides)),
        enable_execute_command: Some(t.enable_execute_command),
        attachments: Some(eni.map(|e| vec![attachment(e, region)]).unwrap_or_default()),
        health_status: Some(health(t.health)),
        connectivity: t.times.connectivity_at.map(|_| wire::Connectivity::Connected),
        connectivity_at: t.times.connectivity_at,
        created_at: Some(t.times.created_at),
        pull_started_at: t.times.pull_started_at,
        pull_stopped_at: t.times.pull_stopped_at,
        started_at: t.times.started_at,
        stopping_at: t.times.stopping_at,
        execution_stopped_at: t.times.execution_stopped_at,
        stopped_at: t.times.stopped_at,
        stop_code: t.stop.as_ref().map(|s| stop_code(s.code)),
        stopped_reason: t.stop.as_ref().map(|s| s.reason.clone()),
        version: Some(version),
        attributes: isolation(t),
        ephemeral_storage: t.ephemeral_storage_gib.map(|g| wire::EphemeralStorage { size_in_gi_b: g as i32 }),
        fargate_ephemeral_storage: t
            .ephemeral_storage_gib
            .map(|g| wire::TaskEphemeralStorage { size_in_gi_b: Some(g as i32), ..Default::default() }),
        ..wire::Task::default()
    }
}

/// The task's isolation (`sandbox`, `microvm`) and, for a micro-VM, its
/// accelerator (`kvm`, `tcg`), as task attributes.
fn isolation(t: &Task) -> Option<Vec<wire::Attribute>> {
    let kind = match t.runtime {
        model::RuntimeKind::Sandbox => "sandbox",
        model::RuntimeKind::Microvm => "microvm",
    };
    let attribute = |name: &str, value: &str| wire::Attribute {
        name: name.to_owned(),
        value: Some(value.to_owned()),
        ..wire::Attribute::default()
    };
    let mut attributes = vec![attribute("berth.isolation", kind)];
    if let Some(accel) = &t.accelerator {
        attributes.push(attribute("berth.accelerator", accel));
    }
    Some(attributes)
}

/// The ENI attachment as ECS shows it: only the subnet while PRECREATED,
/// every detail once attached (and still after it was deleted).
fn attachment(e: &model::Eni, region: &str) -> wire::Attachment {
    let status = match e.status {
        EniStatus::Precreated => "PRECREATED",
        EniStatus::Attached => "ATTACHED",
        EniStatus::Deleted => "DELETED",
    };
    let mut details = vec![detail("subnetId", &e.subnet_id)];
    if let Some(ip) = e.ip {
        details.push(detail("networkInterfaceId", &eni_id(&e.attachment_id)));
        details.push(detail("macAddress", e.mac.as_deref().unwrap_or_default()));
        details.push(detail("privateDnsName", &private_dns_name(ip, region)));
        details.push(detail("privateIPv4Address", &ip.to_string()));
    }
    wire::Attachment {
        id: Some(e.attachment_id.clone()),
        r#type: Some(ENI_ATTACHMENT.to_owned()),
        status: Some(status.to_owned()),
        details: Some(details),
    }
}

fn detail(name: &str, value: &str) -> wire::KeyValuePair {
    wire::KeyValuePair { name: Some(name.to_owned()), value: Some(value.to_owned()) }
}

fn binding(b: &model::PortBinding) -> wire::NetworkBinding {
    wire::NetworkBinding {
        bind_ip: Some(b.bind_ip.to_string()),
        container_port: Some(i32::from(b.container_port)),
        host_port: Some(i32::from(b.host_port)),
        protocol: Some(match b.protocol {
            model::Protocol::Tcp => wire::TransportProtocol::Tcp,
            model::Protocol::Udp => wire::TransportProtocol::Udp,
        }),
        ..wire::NetworkBinding::default()
    }
}

pub fn health(h: model::HealthStatus) -> wire::HealthStatus {
    match h {
        model::HealthStatus::Healthy => wire::HealthStatus::Healthy,
        model::HealthStatus::Unhealthy => wire::HealthStatus::Unhealthy,
        model::HealthStatus::Unknown => wire::HealthStatus::Unknown,
    }
}

pub fn stop_code(c: StopCode) -> wire::TaskStopCode {
    match c {
        StopCode::TaskFailedToStart => wire::TaskStopCode::TaskFailedToStart,
        StopCode::EssentialContainerExited => wire::TaskStopCode::EssentialContainerExited,
        StopCode::UserInitiated => wire::TaskStopCode::UserInitiated,
        StopCode::ServiceSchedulerInitiated => wire::TaskStopCode::ServiceSchedulerInitiated,
        StopCode::SpotInterruption => wire::TaskStopCode::SpotInterruption,
        StopCode::TerminationNotice => wire::TaskStopCode::TerminationNotice,
    }
}

pub fn tags_to_wire(tags: &[model::Tag]) -> Vec<wire::Tag> {
    tags.iter().map(|t| wire::Tag { key: Some(t.key.clone()), value: Some(t.value.clone()) }).collect()
}

/// Wire tags (already checked by `berth_model::tags`) as the domain's.
pub fn tags_from_wire(tags: &[wire::Tag]) -> Vec<model::Tag> {
    tags.iter()
        .map(|t| model::Tag { key: t.key.clone().unwrap_or_default(), value: t.value.clone().unwrap_or_default() })
        .collect()
}

/// RunTask's overrides as the domain keeps them. (`environmentFiles`,
/// `resourceRequirements` and inference accelerators name things Berth
/// does not have; they are not kept.)
pub fn overrides_from_wire(o: Option<&wire::TaskOverride>) -> model::TaskOverrides {
    let Some(o) = o else { return model::TaskOverrides::default() };
    model::TaskOverrides {
        cpu: o.cpu.clone(),
        memory: o.memory.clone(),
        containers: o
            .container_overrides
            .iter()
            .flatten()
            .map(|c| model::ContainerOverride {
                name: c.name.clone().unwrap_or_default(),
                command: c.command.clone(),
                environment: c
                    .environment
                    .iter()
                    .flatten()
                    .filter_map(|kv| {
                        Some(model::EnvVar { name: kv.name.clone()?, value: kv.value.clone().unwrap_or_default() })
                    })
                    .collect(),
                cpu: c.cpu,
                memory: c.memory,
                memory_reservation: c.memory_reservation,
            })
            .collect(),
        task_role_arn: o.task_role_arn.clone(),
        execution_role_arn: o.execution_role_arn.clone(),
        ephemeral_storage_gib: o.ephemeral_storage.as_ref().map(|e| e.size_in_gi_b),
    }
}

fn overrides_to_wire(o: &model::TaskOverrides) -> wire::TaskOverride {
    wire::TaskOverride {
        container_overrides: Some(
            o.containers
                .iter()
                .map(|c| wire::ContainerOverride {
                    name: Some(c.name.clone()),
                    command: c.command.clone(),
                    environment: (!c.environment.is_empty()).then(|| {
                        c.environment
                            .iter()
                            .map(|e| wire::KeyValuePair { name: Some(e.name.clone()), value: Some(e.value.clone()) })
                            .collect()
                    }),
                    cpu: c.cpu,
                    memory: c.memory,
                    memory_reservation: c.memory_reservation,
                    ..wire::ContainerOverride::default()
                })
                .collect(),
        ),
        cpu: o.cpu.clone(),
        memory: o.memory.clone(),
        inference_accelerator_overrides: Some(vec![]),
        execution_role_arn: o.execution_role_arn.clone(),
        task_role_arn: o.task_role_arn.clone(),
        ephemeral_storage: o.ephemeral_storage_gib.map(|size_in_gi_b| wire::EphemeralStorage { size_in_gi_b }),
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use berth_model::network::TaskNetwork;
    use berth_model::task::{NewTask, build};
    use berth_model::testing;

    use super::*;

    fn a_task() -> Task {
        let acct = testing::account();
        let def = testing::definition(&acct, "web", &["app"]);
        let net = TaskNetwork { subnets: vec!["subnet-default".into()], security_groups: vec!["sg-default".into()], assign_public_ip: false };
        build(NewTask {
            tags: vec![model::Tag { key: "k".into(), value: "v".into() }],
            network: Some((net, "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0".into())),
            ..NewTask::plain(&acct, "default", "0f1e2d3c4b5a69788796a5b4c3d2e1f0", &def, 1.0)
        })
        .unwrap()
    }

    #[test]
    fn the_isolation_and_accelerator_are_task_attributes() {
        let names = |t: &wire::Task| -> Vec<(String, Option<String>)> {
            t.attributes.iter().flatten().map(|a| (a.name.clone(), a.value.clone())).collect()
        };
        let sandbox = task(&a_task(), 1);
        assert_eq!(names(&sandbox), [("berth.isolation".to_owned(), Some("sandbox".to_owned()))]);
        let mut vm = a_task();
        vm.runtime = model::RuntimeKind::Microvm;
        vm.accelerator = Some("tcg".into());
        assert_eq!(
            names(&task(&vm, 1)),
            [
                ("berth.isolation".to_owned(), Some("microvm".to_owned())),
                ("berth.accelerator".to_owned(), Some("tcg".to_owned()))
            ]
        );
    }

    fn eni_detail<'a>(t: &'a wire::Task, name: &str) -> Option<&'a str> {
        t.attachments.as_ref()?[0].details.as_ref()?.iter().find(|d| d.name.as_deref() == Some(name))?.value.as_deref()
    }

    #[test]
    fn the_attachment_shows_what_ecs_shows() {
        let mut t = a_task();
        let w = task(&t, 1);
        assert_eq!(w.attachments.as_ref().unwrap()[0].status.as_deref(), Some("PRECREATED"));
        assert_eq!(eni_detail(&w, "subnetId"), Some("subnet-default"));
        assert_eq!(eni_detail(&w, "privateIPv4Address"), None);

        t.attach("subnet-default", Ipv4Addr::new(10, 89, 0, 7), "02:be:0a:59:00:07");
        let w = task(&t, 2);
        assert_eq!(w.attachments.as_ref().unwrap()[0].status.as_deref(), Some("ATTACHED"));
        assert_eq!(eni_detail(&w, "privateIPv4Address"), Some("10.89.0.7"));
        assert_eq!(eni_detail(&w, "privateDnsName"), Some("ip-10-89-0-7.ec2.internal"));
        assert_eq!(eni_detail(&w, "macAddress"), Some("02:be:0a:59:00:07"));
        assert_eq!(eni_detail(&w, "networkInterfaceId"), Some("eni-0f1e2d3c4b5a69788"));
        let ni = &w.containers.as_ref().unwrap()[0].network_interfaces.as_ref().unwrap()[0];
        assert_eq!(ni.private_ipv4_address.as_deref(), Some("10.89.0.7"));
        assert_eq!(w.version, Some(2));

        t.detach();
        let w = task(&t, 3);
        assert_eq!(w.attachments.as_ref().unwrap()[0].status.as_deref(), Some("DELETED"));
        assert_eq!(eni_detail(&w, "privateIPv4Address"), Some("10.89.0.7"), "a deleted ENI keeps its details");
    }

    #[test]
    fn statuses_and_tags_in_ecs_spelling() {
        let mut t = a_task();
        t.request_stop(StopCode::UserInitiated, "bye", 2.0);
        let w = task(&t, 1);
        assert_eq!((w.last_status.as_deref(), w.desired_status.as_deref()), (Some("PROVISIONING"), Some("STOPPED")));
        assert_eq!(w.stop_code, Some(wire::TaskStopCode::UserInitiated));
        assert_eq!(w.stopped_reason.as_deref(), Some("bye"));
        assert_eq!(w.containers.as_ref().unwrap()[0].last_status.as_deref(), Some("PENDING"));
        assert_eq!(tags_from_wire(w.tags.as_deref().unwrap()), t.tags);
        assert_eq!(w.cluster_arn.as_deref(), Some("arn:aws:ecs:us-east-1:000000000000:cluster/default"));
    }

    #[test]
    fn overrides_round_trip_through_the_wire() {
        let wire_overrides = wire::TaskOverride {
            container_overrides: Some(vec![wire::ContainerOverride {
                name: Some("app".into()),
                command: Some(vec!["sh".into()]),
                environment: Some(vec![wire::KeyValuePair { name: Some("A".into()), value: Some("1".into()) }]),
                ..Default::default()
            }]),
            cpu: Some("512".into()),
            ephemeral_storage: Some(wire::EphemeralStorage { size_in_gi_b: 30 }),
            ..Default::default()
        };
        let m = overrides_from_wire(Some(&wire_overrides));
        assert_eq!(m.container("app").unwrap().environment[0].value, "1");
        assert_eq!(m.ephemeral_storage_gib, Some(30));
        let back = overrides_to_wire(&m);
        assert_eq!(back.container_overrides, wire_overrides.container_overrides);
        assert_eq!((back.cpu, back.ephemeral_storage), (Some("512".into()), Some(wire::EphemeralStorage { size_in_gi_b: 30 })));
    }
}

mod service;
pub use service::*;
