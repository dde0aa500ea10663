//! Stored records whose wire shape lacks something ECS keeps beside it.

use berth_wire::ecs::{Tag, TaskDefinition};
use serde::{Deserialize, Serialize};

use crate::ModelError;
use crate::arn::TaskDefinitionArn;

/// A registered task definition and its tags. ECS returns the tags of a
/// task definition apart from it (`DescribeTaskDefinition.tags`), so the
/// wire `TaskDefinition` has no member for them. The definition is the
/// document the user registered, kept in its ECS shape: ECS returns it as
/// registered.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TaskDefinitionRecord {
    pub definition: TaskDefinition,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

impl TaskDefinitionRecord {
    /// The revision's ARN, parsed.
    pub fn arn(&self) -> Result<TaskDefinitionArn, ModelError> {
        self.definition
            .task_definition_arn
            .as_deref()
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| ModelError::Client("The task definition has no valid ARN.".into()))
    }
}
