//! The walls between services, checked on the source itself.
//!
//! Each AWS service (and Berth's own parts that act like one) is a room:
//! its folder holds its resources, handlers, tables and controllers. A
//! room may use the shared floor (the pipeline, the store, the model, the
//! bus, the clock, the pure libraries) and the rooms below it in
//! [`ROOMS`]; never one above it, so imports between rooms form no cycle.
//! Where a lower room needs something of a higher one, it declares a trait
//! the higher one implements (ECS's `ScalingGroups`, EC2's
//! `LaunchedInstances`), and effects cross by events on the bus.
//!
//! A room's tables are its own: SQL that names a table appears only in its
//! owner's folder (and in the migrations that create it). Others call the
//! owner's functions.

/// Each room and the rooms it may use, lowest first. The floor (every
/// other top-level module) may be used by all and uses no room.
pub const ROOMS: &[(&str, &[&str])] = &[
    ("kms", &[]),
    ("iam", &["kms"]),
    ("ssm", &["kms"]),
    ("secretsmanager", &["kms"]),
    ("logs", &[]),
    ("sts", &["kms", "iam"]),
    ("elb", &[]),
    ("ecr", &[]),
    ("ecs", &["elb"]),
    ("ec2", &["ecs"]),
    ("autoscaling", &["ecs", "ec2"]),
    ("migrate", &["ecs"]),
    ("cost", &["ecs", "autoscaling", "migrate"]),
    (
        "agent",
        &["ecs", "logs", "ecr", "iam", "ssm", "secretsmanager"],
    ),
    ("platform", &["ecs", "logs", "cost", "autoscaling", "agent"]),
];

/// Each table and the room that owns it.
pub const TABLES: &[(&str, &str)] = &[
    ("clusters", "ecs"),
    ("task_definitions", "ecs"),
    ("tags", "ecs"),
    ("tasks", "ecs"),
    ("container_instances", "ecs"),
    ("attributes", "ecs"),
    ("capacity_providers", "ecs"),
    ("pending_placements", "ecs"),
    ("services", "ecs"),
    ("service_deployments", "ecs"),
    ("service_events", "ecs"),
    ("account_settings", "ecs"),
    ("task_protection", "ecs"),
    ("task_sets", "ecs"),
    ("service_targets", "ecs"),
    ("placement_versions", "ecs"),
    ("iam_entities", "iam"),
    ("iam_inline_policies", "iam"),
    ("iam_attachments", "iam"),
    ("iam_group_members", "iam"),
    ("iam_policies", "iam"),
    ("iam_policy_versions", "iam"),
    ("iam_instance_profiles", "iam"),
    ("iam_access_keys", "iam"),
    ("iam_sessions", "iam"),
    ("log_groups", "logs"),
    ("log_streams", "logs"),
    ("log_events", "logs"),
    ("launch_templates", "ec2"),
    ("launch_template_versions", "ec2"),
    ("auto_scaling_groups", "autoscaling"),
    ("ec2_instances", "autoscaling"),
    ("scaling_activities", "autoscaling"),
    ("task_usage", "cost"),
    ("metering_state", "cost"),
    ("elb_load_balancers", "elb"),
    ("elb_target_groups", "elb"),
    ("elb_listeners", "elb"),
    ("elb_rules", "elb"),
    ("elb_targets", "elb"),
    ("elb_tags", "elb"),
    ("elb_metrics", "elb"),
    ("ecr_repositories", "ecr"),
    ("ecr_images", "ecr"),
    ("ecr_image_tags", "ecr"),
    ("ecr_image_refs", "ecr"),
    ("ecr_layers", "ecr"),
    ("ecr_uploads", "ecr"),
    ("ecr_resource_tags", "ecr"),
    ("ecr_lifecycle_previews", "ecr"),
    ("kms_keys", "kms"),
    ("kms_aliases", "kms"),
    ("ssm_parameters", "ssm"),
    ("ssm_parameter_versions", "ssm"),
    ("sm_secrets", "secretsmanager"),
    ("sm_secret_versions", "secretsmanager"),
    ("meta", "store"),
];

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::{Path, PathBuf};

    use regex::Regex;

    use super::*;

    /// Every `.rs` file under `dir`, with its top-level module.
    fn sources(dir: &Path) -> Vec<(String, PathBuf)> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    let rel = p.strip_prefix(dir).unwrap();
                    let top = rel
                        .components()
                        .next()
                        .unwrap()
                        .as_os_str()
                        .to_string_lossy();
                    out.push((top.trim_end_matches(".rs").to_string(), p));
                }
            }
        }
        out.sort();
        out
    }

    /// A file's code outside its tests and comments.
    fn code(path: &Path) -> String {
        let text = std::fs::read_to_string(path).unwrap();
        let body = match text.find("#[cfg(test)]") {
            Some(i) => &text[..i],
            None => &text[..],
        };
        body.lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn src() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
    }

    #[test]
    fn rooms_use_only_the_floor_and_the_rooms_below() {
        let rooms: BTreeMap<&str, &[&str]> = ROOMS.iter().copied().collect();
        let uses = Regex::new(r"crate::([a-z_0-9]+)").unwrap();
        let mut wrong = BTreeSet::new();
        for (module, path) in sources(&src()) {
            for c in uses.captures_iter(&code(&path)) {
                let used = c[1].to_string();
                if used == module || !rooms.contains_key(used.as_str()) {
                    continue;
                }
                let allowed = rooms
                    .get(module.as_str())
                    .is_some_and(|below| below.contains(&used.as_str()));
                // The composition roots (the server's, the tests' world)
                // and the CLI's entry see every room.
                if !allowed && !["services", "testing", "main", "lib"].contains(&module.as_str()) {
                    wrong.insert(format!("{} uses {used}", path.display()));
                }
            }
        }
        assert!(wrong.is_empty(), "imports through the walls:\n{}", {
            let v: Vec<_> = wrong.into_iter().collect();
            v.join("\n")
        });
    }

    #[test]
    fn the_rooms_are_ordered_so_no_cycle_is_possible() {
        for (i, (room, below)) in ROOMS.iter().enumerate() {
            for b in *below {
                let j = ROOMS.iter().position(|(r, _)| r == b).unwrap();
                assert!(j < i, "{room} may use {b}, which is not below it");
            }
        }
    }

    #[test]
    fn tables_are_queried_only_by_their_owner() {
        let owners: BTreeMap<&str, &str> = TABLES.iter().copied().collect();
        // SQL keywords are written in capitals (so messages such as "to
        // update tags" are not read as SQL).
        let sql = Regex::new(r"\b(?:FROM|INTO|UPDATE|JOIN)\s+([a-z_]+)\b").unwrap();
        let mut wrong = BTreeSet::new();
        for (module, path) in sources(&src()) {
            if module == "store" || module == "testing" {
                continue;
            }
            for c in sql.captures_iter(&code(&path)) {
                let table = c[1].to_ascii_lowercase();
                if let Some(owner) = owners.get(table.as_str()) {
                    if *owner != module {
                        wrong.insert(format!("{} queries {table} ({owner}'s)", path.display()));
                    }
                }
            }
        }
        assert!(
            wrong.is_empty(),
            "tables queried outside their room:\n{}",
            {
                let v: Vec<_> = wrong.into_iter().collect();
                v.join("\n")
            }
        );
    }
}
