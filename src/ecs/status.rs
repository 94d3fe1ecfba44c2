//! The lifecycle statuses of tasks and their containers, which the model
//! leaves as strings.

use serde::{Deserialize, Serialize};

/// A task's (or a container's) `lastStatus` and `desiredStatus`, in the
/// order ECS moves through them.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskStatus {
    #[default]
    Provisioning,
    Pending,
    Activating,
    Running,
    Deactivating,
    Stopping,
    Deprovisioning,
    Stopped,
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Provisioning => "PROVISIONING",
            TaskStatus::Pending => "PENDING",
            TaskStatus::Activating => "ACTIVATING",
            TaskStatus::Running => "RUNNING",
            TaskStatus::Deactivating => "DEACTIVATING",
            TaskStatus::Stopping => "STOPPING",
            TaskStatus::Deprovisioning => "DEPROVISIONING",
            TaskStatus::Stopped => "STOPPED",
        }
    }

    /// Not yet RUNNING: what ECS counts as pending.
    pub fn is_pending(self) -> bool {
        self < TaskStatus::Running
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_written_as_ecs_writes_them() {
        assert_eq!(
            serde_json::to_value(TaskStatus::Deprovisioning).unwrap(),
            "DEPROVISIONING"
        );
        let s: TaskStatus = serde_json::from_value("ACTIVATING".into()).unwrap();
        assert_eq!(s, TaskStatus::Activating);
        assert!(TaskStatus::Pending.is_pending() && !TaskStatus::Running.is_pending());
        assert_eq!(TaskStatus::Stopped.as_str(), "STOPPED");
    }
}
