//! Values for the tests of the crates built on the model: a task
//! definition as RegisterTaskDefinition would have stored it. Berth itself
//! never calls these.

use berth_wire::ecs::{ContainerDefinition, TaskDefinition};

use crate::Account;

/// The account tests answer as.
pub fn account() -> Account {
    Account { region: "us-east-1".into(), account_id: "000000000000".into() }
}

/// Revision 1 of `family`: 256 CPU units and 512 MiB, with one container
/// per name (no image, command or options).
pub fn definition(account: &Account, family: &str, containers: &[&str]) -> TaskDefinition {
    TaskDefinition {
        task_definition_arn: Some(account.task_definition_arn(family, 1)),
        family: Some(family.into()),
        revision: Some(1),
        cpu: Some("256".into()),
        memory: Some("512".into()),
        container_definitions: Some(
            containers.iter().map(|n| ContainerDefinition { name: Some((*n).into()), ..Default::default() }).collect(),
        ),
        ..Default::default()
    }
}
