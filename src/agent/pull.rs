//! How an image is got before its container is made (pure): the ECS
//! agent's `ECS_IMAGE_PULL_BEHAVIOR`, for images of Berth's registry.
//! Images of other registries are pulled only when they are not cached,
//! whatever the setting: Berth's machine rarely reaches them, and a task
//! should not wait on a pull bound to fail.

use std::str::FromStr;

/// `ECS_IMAGE_PULL_BEHAVIOR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullBehavior {
    /// Pull; when the pull fails, run the cached image if there is one.
    #[default]
    Default,
    /// Pull; a failed pull fails the task.
    Always,
    /// Pull only an image no earlier task here pulled (or whose copy has
    /// gone since).
    Once,
    /// Run the cached image when there is one; pull otherwise.
    PreferCached,
}

impl FromStr for PullBehavior {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "default" => Ok(PullBehavior::Default),
            "always" => Ok(PullBehavior::Always),
            "once" => Ok(PullBehavior::Once),
            "prefer-cached" => Ok(PullBehavior::PreferCached),
            other => Err(format!(
                "unknown image pull behaviour '{other}' (default, always, once, prefer-cached)"
            )),
        }
    }
}

/// What to do for one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Run the cached image.
    UseCached,
    /// Pull it; on failure, run the cached image when `fallback` and there
    /// is one.
    Pull { fallback: bool },
}

/// The plan for an image: whether it is of Berth's registry, cached, and
/// pulled by an earlier task of this agent.
pub fn plan(behavior: PullBehavior, registry: bool, cached: bool, pulled_before: bool) -> Plan {
    if !registry {
        return if cached {
            Plan::UseCached
        } else {
            Plan::Pull { fallback: false }
        };
    }
    match behavior {
        PullBehavior::Default => Plan::Pull { fallback: true },
        PullBehavior::Always => Plan::Pull { fallback: false },
        PullBehavior::Once if cached && pulled_before => Plan::UseCached,
        PullBehavior::PreferCached if cached => Plan::UseCached,
        PullBehavior::Once | PullBehavior::PreferCached => Plan::Pull { fallback: false },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_behaviour_as_the_ecs_agent_documents_it() {
        use PullBehavior::*;
        let pull = Plan::Pull { fallback: false };
        // (behaviour, cached, pulled before) → plan, for registry images.
        let table = [
            (Default, false, false, Plan::Pull { fallback: true }),
            (Default, true, true, Plan::Pull { fallback: true }),
            (Always, true, true, pull),
            (Once, true, true, Plan::UseCached),
            (Once, true, false, pull),
            (Once, false, true, pull),
            (PreferCached, true, false, Plan::UseCached),
            (PreferCached, false, false, pull),
        ];
        for (b, cached, before, want) in table {
            assert_eq!(
                plan(b, true, cached, before),
                want,
                "{b:?} {cached} {before}"
            );
        }
        // Other registries: the cache first, whatever the setting.
        assert_eq!(plan(Always, false, true, false), Plan::UseCached);
        assert_eq!(plan(Always, false, false, false), pull);
        assert_eq!("prefer-cached".parse(), Ok(PreferCached));
        assert!("sometimes".parse::<PullBehavior>().is_err());
    }
}
