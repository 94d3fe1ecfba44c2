//! The generator of the typed shapes services use: serde structs and enums
//! for the shapes of a vendored model reachable from the operations a
//! service serves, named and shaped as the botocore model names and shapes
//! them. Its output is committed (`src/ecs/shapes.rs`,
//! `src/autoscaling/shapes.rs`, `src/elb/shapes.rs`) so it can be read and searched; a test
//! regenerates it and fails when the committed file differs. To refresh
//! after changing a model or a list below:
//!
//! ```text
//! BERTH_UPDATE_GENERATED=1 cargo test shapes_gen
//! ```

/// What to generate for one model.
pub struct Spec {
    pub model: &'static str,
    pub output: &'static str,
    /// Whose shapes (their input and output, and what those reach).
    pub operations: &'static [&'static str],
    /// More root shapes (resources other parts of the service use).
    pub shapes: &'static [&'static str],
    /// Members whose Rust type Berth narrows: (shape, member, type).
    pub overrides: &'static [(&'static str, &'static str, &'static str)],
    /// Structures that keep members the model does not declare.
    pub open: &'static [&'static str],
    /// How timestamps are written (`f64` epoch seconds for JSON
    /// protocols, `String` ISO 8601 for Query).
    pub timestamp: &'static str,
    /// Imports the overrides need.
    pub uses: &'static [&'static str],
}

pub const ECS: Spec = Spec {
    model: "models/ecs-2014-11-13.json",
    output: "src/ecs/shapes.rs",
    operations: &[
        "CreateCluster",
        "DescribeClusters",
        "ListClusters",
        "DeleteCluster",
        "UpdateCluster",
        "UpdateClusterSettings",
        "RegisterTaskDefinition",
        "DescribeTaskDefinition",
        "ListTaskDefinitions",
        "ListTaskDefinitionFamilies",
        "DeregisterTaskDefinition",
        "DeleteTaskDefinitions",
        "RunTask",
        "StopTask",
        "DescribeTasks",
        "ListTasks",
        "StartTask",
        "RegisterContainerInstance",
        "DeregisterContainerInstance",
        "DescribeContainerInstances",
        "ListContainerInstances",
        "UpdateContainerInstancesState",
        "PutAttributes",
        "DeleteAttributes",
        "ListAttributes",
        "CreateCapacityProvider",
        "DescribeCapacityProviders",
        "UpdateCapacityProvider",
        "DeleteCapacityProvider",
        "PutClusterCapacityProviders",
        "TagResource",
        "UntagResource",
        "ListTagsForResource",
        "CreateService",
        "UpdateService",
        "DeleteService",
        "DescribeServices",
        "ListServices",
        "ListServiceDeployments",
        "DescribeServiceDeployments",
        "DescribeServiceRevisions",
        "ContinueServiceDeployment",
        "CreateDaemon",
        "CreateExpressGatewayService",
        "CreateTaskSet",
        "DeleteAccountSetting",
        "DeleteDaemon",
        "DeleteDaemonTaskDefinition",
        "DeleteExpressGatewayService",
        "DeleteTaskSet",
        "DescribeDaemon",
        "DescribeDaemonDeployments",
        "DescribeDaemonRevisions",
        "DescribeDaemonTaskDefinition",
        "DescribeExpressGatewayService",
        "DescribeTaskSets",
        "DiscoverPollEndpoint",
        "ExecuteCommand",
        "GetTaskProtection",
        "ListAccountSettings",
        "ListDaemonDeployments",
        "ListDaemonTaskDefinitions",
        "ListDaemons",
        "ListServicesByNamespace",
        "PutAccountSetting",
        "PutAccountSettingDefault",
        "RegisterDaemonTaskDefinition",
        "StopServiceDeployment",
        "SubmitAttachmentStateChanges",
        "SubmitContainerStateChange",
        "SubmitTaskStateChange",
        "UpdateContainerAgent",
        "UpdateDaemon",
        "UpdateExpressGatewayService",
        "UpdateServicePrimaryTaskSet",
        "UpdateTaskProtection",
        "UpdateTaskSet",
    ],
    shapes: &[],
    overrides: &[
        ("Task", "lastStatus", "TaskStatus"),
        ("Task", "desiredStatus", "TaskStatus"),
        ("Container", "lastStatus", "TaskStatus"),
    ],
    open: &["CapacityProvider"],
    timestamp: "f64",
    uses: &["super::status::TaskStatus"],
};

pub const AUTOSCALING: Spec = Spec {
    model: "models/autoscaling-2011-01-01.json",
    output: "src/autoscaling/shapes.rs",
    operations: &[
        "CreateAutoScalingGroup",
        "UpdateAutoScalingGroup",
        "DescribeAutoScalingGroups",
        "DeleteAutoScalingGroup",
        "SetDesiredCapacity",
        "TerminateInstanceInAutoScalingGroup",
        "SetInstanceProtection",
        "DescribeScalingActivities",
        "DescribeAutoScalingInstances",
        "PutWarmPool",
        "DescribeWarmPool",
        "DeleteWarmPool",
    ],
    shapes: &[],
    overrides: &[],
    open: &["CreateAutoScalingGroupType"],
    timestamp: "String",
    uses: &[],
};

pub const ELB: Spec = Spec {
    model: "models/elbv2-2015-12-01.json",
    output: "src/elb/shapes.rs",
    operations: &[
        "CreateLoadBalancer",
        "DescribeLoadBalancers",
        "DeleteLoadBalancer",
        "DescribeLoadBalancerAttributes",
        "ModifyLoadBalancerAttributes",
        "CreateTargetGroup",
        "DescribeTargetGroups",
        "ModifyTargetGroup",
        "DescribeTargetGroupAttributes",
        "ModifyTargetGroupAttributes",
        "DeleteTargetGroup",
        "RegisterTargets",
        "DeregisterTargets",
        "DescribeTargetHealth",
        "CreateListener",
        "DescribeListeners",
        "ModifyListener",
        "DeleteListener",
        "CreateRule",
        "DescribeRules",
        "ModifyRule",
        "DeleteRule",
        "SetRulePriorities",
        "AddTags",
        "RemoveTags",
        "DescribeTags",
        "SetSecurityGroups",
        "SetSubnets",
        "DescribeAccountLimits",
    ],
    shapes: &[],
    overrides: &[],
    open: &[],
    timestamp: "String",
    uses: &[],
};

pub const ECR: Spec = Spec {
    model: "models/ecr-2015-09-21.json",
    output: "src/ecr/shapes.rs",
    operations: &[
        "CreateRepository",
        "DescribeRepositories",
        "DeleteRepository",
        "GetAuthorizationToken",
        "DescribeImages",
        "ListImages",
        "BatchGetImage",
        "BatchDeleteImage",
        "PutImage",
        "BatchCheckLayerAvailability",
        "InitiateLayerUpload",
        "UploadLayerPart",
        "CompleteLayerUpload",
        "GetDownloadUrlForLayer",
        "PutImageTagMutability",
        "PutImageScanningConfiguration",
        "PutLifecyclePolicy",
        "GetLifecyclePolicy",
        "DeleteLifecyclePolicy",
        "StartLifecyclePolicyPreview",
        "GetLifecyclePolicyPreview",
        "SetRepositoryPolicy",
        "GetRepositoryPolicy",
        "DeleteRepositoryPolicy",
        "TagResource",
        "UntagResource",
        "ListTagsForResource",
    ],
    shapes: &[],
    overrides: &[],
    open: &[],
    timestamp: "f64",
    uses: &[],
};

pub const KMS: Spec = Spec {
    model: "models/kms-2014-11-01.json",
    output: "src/kms/shapes.rs",
    operations: &[
        "CreateKey",
        "DescribeKey",
        "ListKeys",
        "EnableKey",
        "DisableKey",
        "ScheduleKeyDeletion",
        "CancelKeyDeletion",
        "CreateAlias",
        "DeleteAlias",
        "ListAliases",
        "Encrypt",
        "Decrypt",
        "GenerateDataKey",
        "TagResource",
        "UntagResource",
        "ListResourceTags",
    ],
    shapes: &[],
    overrides: &[],
    open: &[],
    timestamp: "f64",
    uses: &[],
};

pub const SSM: Spec = Spec {
    model: "models/ssm-2014-11-06.json",
    output: "src/ssm/shapes.rs",
    operations: &[
        "PutParameter",
        "GetParameter",
        "GetParameters",
        "GetParametersByPath",
        "DeleteParameter",
        "DeleteParameters",
        "DescribeParameters",
        "GetParameterHistory",
        "LabelParameterVersion",
        "UnlabelParameterVersion",
        "AddTagsToResource",
        "RemoveTagsFromResource",
        "ListTagsForResource",
    ],
    shapes: &[],
    overrides: &[],
    open: &[],
    timestamp: "f64",
    uses: &[],
};

pub const SECRETS_MANAGER: Spec = Spec {
    model: "models/secretsmanager-2017-10-17.json",
    output: "src/secretsmanager/shapes.rs",
    operations: &[
        "CreateSecret",
        "GetSecretValue",
        "BatchGetSecretValue",
        "PutSecretValue",
        "UpdateSecret",
        "DescribeSecret",
        "ListSecrets",
        "DeleteSecret",
        "RestoreSecret",
        "UpdateSecretVersionStage",
        "ListSecretVersionIds",
        "TagResource",
        "UntagResource",
        "GetRandomPassword",
        "PutResourcePolicy",
        "GetResourcePolicy",
        "DeleteResourcePolicy",
    ],
    shapes: &[],
    overrides: &[],
    open: &[],
    timestamp: "f64",
    uses: &[],
};

pub const IAM: Spec = Spec {
    model: "models/iam-2010-05-08.json",
    output: "src/iam/shapes.rs",
    operations: &[
        "CreateUser",
        "GetUser",
        "ListUsers",
        "DeleteUser",
        "UpdateUser",
        "TagUser",
        "UntagUser",
        "ListUserTags",
        "CreateAccessKey",
        "ListAccessKeys",
        "DeleteAccessKey",
        "UpdateAccessKey",
        "GetAccessKeyLastUsed",
        "CreateRole",
        "GetRole",
        "ListRoles",
        "DeleteRole",
        "UpdateRole",
        "UpdateRoleDescription",
        "UpdateAssumeRolePolicy",
        "TagRole",
        "UntagRole",
        "ListRoleTags",
        "CreateServiceLinkedRole",
        "PutUserPolicy",
        "GetUserPolicy",
        "ListUserPolicies",
        "DeleteUserPolicy",
        "PutRolePolicy",
        "GetRolePolicy",
        "ListRolePolicies",
        "DeleteRolePolicy",
        "PutGroupPolicy",
        "GetGroupPolicy",
        "ListGroupPolicies",
        "DeleteGroupPolicy",
        "CreatePolicy",
        "GetPolicy",
        "ListPolicies",
        "DeletePolicy",
        "CreatePolicyVersion",
        "GetPolicyVersion",
        "ListPolicyVersions",
        "DeletePolicyVersion",
        "SetDefaultPolicyVersion",
        "TagPolicy",
        "UntagPolicy",
        "ListPolicyTags",
        "AttachUserPolicy",
        "DetachUserPolicy",
        "ListAttachedUserPolicies",
        "AttachRolePolicy",
        "DetachRolePolicy",
        "ListAttachedRolePolicies",
        "AttachGroupPolicy",
        "DetachGroupPolicy",
        "ListAttachedGroupPolicies",
        "ListEntitiesForPolicy",
        "PutUserPermissionsBoundary",
        "DeleteUserPermissionsBoundary",
        "PutRolePermissionsBoundary",
        "DeleteRolePermissionsBoundary",
        "CreateGroup",
        "GetGroup",
        "ListGroups",
        "DeleteGroup",
        "AddUserToGroup",
        "RemoveUserFromGroup",
        "ListGroupsForUser",
        "CreateInstanceProfile",
        "GetInstanceProfile",
        "DeleteInstanceProfile",
        "ListInstanceProfiles",
        "AddRoleToInstanceProfile",
        "RemoveRoleFromInstanceProfile",
        "ListInstanceProfilesForRole",
        "TagInstanceProfile",
        "UntagInstanceProfile",
        "ListInstanceProfileTags",
        "ListAccountAliases",
        "SimulatePrincipalPolicy",
    ],
    shapes: &[],
    overrides: &[],
    open: &[],
    timestamp: "String",
    uses: &[],
};

pub const STS: Spec = Spec {
    model: "models/sts-2011-06-15.json",
    output: "src/sts/shapes.rs",
    operations: &[
        "AssumeRole",
        "GetSessionToken",
        "GetCallerIdentity",
        "GetAccessKeyInfo",
    ],
    shapes: &[],
    overrides: &[],
    open: &[],
    timestamp: "String",
    uses: &[],
};

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::fmt::Write;
    use std::path::Path;

    use serde_json::{Map, Value};

    use super::*;

    const KEYWORDS: &[&str] = &[
        "as", "async", "await", "box", "break", "const", "continue", "crate", "dyn", "else",
        "enum", "extern", "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod",
        "move", "mut", "override", "priv", "pub", "ref", "return", "self", "static", "struct",
        "super", "trait", "true", "type", "unsafe", "use", "where", "while", "yield",
    ];

    /// The Rust name of a shape: the model's, its first letter capital
    /// (IAM names some shapes `statusType`).
    fn type_ident(name: &str) -> String {
        let mut c = name.chars();
        match c.next() {
            Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
            None => String::new(),
        }
    }

    /// `snake_case` of a camelCase or PascalCase member name, with runs of
    /// capitals as one word (`VPCZoneIdentifier` → `vpc_zone_identifier`).
    fn snake(name: &str) -> String {
        let chars: Vec<char> = name.chars().collect();
        let mut out = String::new();
        for (i, &c) in chars.iter().enumerate() {
            if c.is_ascii_uppercase() {
                let prev = i.checked_sub(1).map(|j| chars[j]);
                let next = chars.get(i + 1).copied();
                let boundary = match prev {
                    None => false,
                    Some(p) if p.is_ascii_lowercase() || p.is_ascii_digit() => true,
                    Some(p) if p.is_ascii_uppercase() => {
                        next.is_some_and(|n| n.is_ascii_lowercase())
                    }
                    _ => false,
                };
                if boundary && !out.ends_with('_') {
                    out.push('_');
                }
                out.push(c.to_ascii_lowercase());
            } else if c.is_ascii_alphanumeric() {
                out.push(c);
            } else if !out.ends_with('_') {
                out.push('_');
            }
        }
        out
    }

    /// What serde's `rename_all` makes of a snake_case name.
    fn serde_case(snake: &str, pascal: bool) -> String {
        let mut out = String::new();
        let mut upper = pascal;
        for c in snake.chars() {
            if c == '_' {
                upper = true;
            } else if upper {
                out.push(c.to_ascii_uppercase());
                upper = false;
            } else {
                out.push(c);
            }
        }
        out
    }

    /// A Rust identifier for an enum value: PascalCase of its words (a
    /// word written in capitals is one word; one in mixed case keeps its
    /// own capitals: `FARGATE_SPOT` → `FargateSpot`, `TaskFailedToStart`
    /// stays).
    fn variant(value: &str) -> String {
        let mut out = String::new();
        for word in value.split(|c: char| !c.is_ascii_alphanumeric()) {
            let mixed = word.chars().any(|c| c.is_ascii_lowercase())
                && word.chars().any(|c| c.is_ascii_uppercase());
            let mut cs = word.chars();
            if let Some(f) = cs.next() {
                out.push(f.to_ascii_uppercase());
                if mixed {
                    out.extend(cs);
                } else {
                    out.extend(cs.map(|c| c.to_ascii_lowercase()));
                }
            }
        }
        if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
            out.insert(0, 'V');
        }
        out
    }

    struct Gen<'a> {
        spec: &'a Spec,
        shapes: &'a Map<String, Value>,
        pascal: bool,
        reached: BTreeSet<String>,
    }

    impl Gen<'_> {
        fn shape(&self, name: &str) -> &Map<String, Value> {
            self.shapes[name].as_object().expect("a shape")
        }

        fn reach(&mut self, name: &str) {
            if !self.reached.insert(name.to_string()) {
                return;
            }
            let s = self.shape(name).clone();
            if let Some(members) = s.get("members").and_then(Value::as_object) {
                for m in members.values() {
                    self.reach(m["shape"].as_str().unwrap());
                }
            }
            for k in ["member", "key", "value"] {
                if let Some(r) = s.get(k) {
                    self.reach(r["shape"].as_str().unwrap());
                }
            }
        }

        /// Whether a shape gets an item of its own (structures and enums).
        fn named(&self, name: &str) -> bool {
            let s = self.shape(name);
            s["type"] == "structure" || (s["type"] == "string" && s.contains_key("enum"))
        }

        fn rust_type(&self, name: &str) -> String {
            let s = self.shape(name);
            match s["type"].as_str().unwrap() {
                "structure" => type_ident(name),
                "string" if s.contains_key("enum") => type_ident(name),
                "string" | "blob" => "String".into(),
                "integer" | "long" => "i64".into(),
                "double" | "float" => "f64".into(),
                "boolean" => "bool".into(),
                "timestamp" => self.spec.timestamp.into(),
                "list" => format!(
                    "Vec<{}>",
                    self.rust_type(s["member"]["shape"].as_str().unwrap())
                ),
                "map" => format!(
                    "BTreeMap<String, {}>",
                    self.rust_type(s["value"]["shape"].as_str().unwrap())
                ),
                other => panic!("shape type {other}"),
            }
        }

        fn emit_struct(&self, name: &str, out: &mut String) {
            let s = self.shape(name);
            let required: BTreeSet<&str> = s
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let case = if self.pascal {
                "PascalCase"
            } else {
                "camelCase"
            };
            writeln!(out, "/// `{name}`.").unwrap();
            writeln!(
                out,
                "#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]"
            )
            .unwrap();
            writeln!(out, "#[serde(rename_all = \"{case}\")]").unwrap();
            writeln!(out, "pub struct {} {{", type_ident(name)).unwrap();
            let members = s
                .get("members")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            for (member, r) in &members {
                let field = snake(member);
                let mut attrs = Vec::new();
                if serde_case(&field, self.pascal) != *member {
                    attrs.push(format!("rename = \"{member}\""));
                }
                let over = self
                    .spec
                    .overrides
                    .iter()
                    .find(|(sh, m, _)| *sh == name && m == member)
                    .map(|(_, _, t)| t.to_string());
                let ty = over.unwrap_or_else(|| self.rust_type(r["shape"].as_str().unwrap()));
                let ty = if required.contains(member.as_str()) {
                    attrs.push("default".into());
                    ty
                } else {
                    attrs.push("skip_serializing_if = \"Option::is_none\"".into());
                    format!("Option<{ty}>")
                };
                writeln!(out, "    #[serde({})]", attrs.join(", ")).unwrap();
                let ident = if KEYWORDS.contains(&field.as_str()) {
                    format!("r#{field}")
                } else {
                    field
                };
                writeln!(out, "    pub {ident}: {ty},").unwrap();
            }
            if self.spec.open.contains(&name) {
                writeln!(
                    out,
                    "    /// Members the model does not declare, kept as they came."
                )
                .unwrap();
                writeln!(out, "    #[serde(flatten)]").unwrap();
                writeln!(out, "    pub extra: Map<String, Value>,").unwrap();
            }
            writeln!(out, "}}\n").unwrap();
        }

        fn emit_enum(&self, name: &str, out: &mut String) {
            let values: Vec<String> = self.shape(name)["enum"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect();
            let mut idents: Vec<String> = Vec::new();
            for v in &values {
                let mut id = variant(v);
                while idents.contains(&id) {
                    id.push('_');
                }
                idents.push(id);
            }
            writeln!(out, "/// `{name}`.").unwrap();
            writeln!(out, "#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]").unwrap();
            let ty = type_ident(name);
            writeln!(out, "pub enum {ty} {{").unwrap();
            for (i, (v, id)) in values.iter().zip(&idents).enumerate() {
                // The first value stands in where a required member is
                // defaulted (a structure's `Default`).
                if i == 0 {
                    writeln!(out, "    #[default]").unwrap();
                }
                writeln!(out, "    #[serde(rename = \"{v}\")]").unwrap();
                writeln!(out, "    {id},").unwrap();
            }
            writeln!(out, "}}\n").unwrap();
            writeln!(out, "impl {ty} {{").unwrap();
            writeln!(out, "    /// The value as the model spells it.").unwrap();
            writeln!(out, "    pub fn as_str(self) -> &'static str {{").unwrap();
            writeln!(out, "        match self {{").unwrap();
            for (v, id) in values.iter().zip(&idents) {
                writeln!(out, "            {ty}::{id} => \"{v}\",").unwrap();
            }
            writeln!(out, "        }}\n    }}\n}}\n").unwrap();
        }
    }

    fn generate(spec: &Spec) -> String {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(root.join(spec.model)).unwrap();
        let model: Value = serde_json::from_str(&text).unwrap();
        let shapes = model["shapes"].as_object().unwrap();
        let mut g = Gen {
            spec,
            shapes,
            pascal: model["metadata"]["protocol"] != "json",
            reached: BTreeSet::new(),
        };
        for op in spec.operations {
            let o = &model["operations"][*op];
            assert!(o.is_object(), "{op} is not an operation of {}", spec.model);
            for k in ["input", "output"] {
                if let Some(s) = o.get(k).and_then(|r| r["shape"].as_str()) {
                    g.reach(s);
                }
            }
        }
        for s in spec.shapes {
            g.reach(s);
        }
        let mut out = String::new();
        writeln!(
            out,
            "//! The shapes of `{}` that {} operations reach, as serde types.\n//! Generated by `src/shapes_gen.rs`; do not edit: change the model or\n//! the generator's lists and run `BERTH_UPDATE_GENERATED=1 cargo test\n//! shapes_gen`.\n",
            spec.model,
            spec.operations.len()
        )
        .unwrap();
        writeln!(out, "#![allow(clippy::all)]\n").unwrap();
        writeln!(
            out,
            "#[allow(unused_imports)]\nuse std::collections::BTreeMap;\n"
        )
        .unwrap();
        writeln!(out, "use serde::{{Deserialize, Serialize}};").unwrap();
        writeln!(
            out,
            "#[allow(unused_imports)]\nuse serde_json::{{Map, Value}};"
        )
        .unwrap();
        for u in spec.uses {
            writeln!(out, "use {u};").unwrap();
        }
        writeln!(out).unwrap();
        let names: BTreeMap<String, ()> = g
            .reached
            .iter()
            .filter(|n| g.named(n))
            .map(|n| (n.clone(), ()))
            .collect();
        for n in names.keys() {
            if g.shape(n)["type"] == "structure" {
                g.emit_struct(n, &mut out);
            } else {
                g.emit_enum(n, &mut out);
            }
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
        out
    }

    fn check(spec: &Spec) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(spec.output);
        let fresh = generate(spec);
        if std::env::var_os("BERTH_UPDATE_GENERATED").is_some() {
            std::fs::write(&path, &fresh).unwrap();
            return;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == fresh,
            "{} is not what the generator makes of {}: run BERTH_UPDATE_GENERATED=1 cargo test shapes_gen",
            spec.output,
            spec.model
        );
    }

    #[test]
    fn names_convert_as_serde_expects() {
        assert_eq!(snake("taskDefinitionArn"), "task_definition_arn");
        assert_eq!(snake("VPCZoneIdentifier"), "vpc_zone_identifier");
        assert_eq!(snake("ipv6Address"), "ipv6_address");
        assert_eq!(snake("AutoScalingGroupARN"), "auto_scaling_group_arn");
        assert_eq!(
            serde_case("task_definition_arn", false),
            "taskDefinitionArn"
        );
        assert_eq!(
            serde_case("auto_scaling_group_arn", true),
            "AutoScalingGroupArn"
        );
        assert_eq!(variant("FARGATE_SPOT"), "FargateSpot");
        assert_eq!(variant("awsvpc"), "Awsvpc");
        assert_eq!(variant("1"), "V1");
        assert_eq!(variant("TaskFailedToStart"), "TaskFailedToStart");
        assert_eq!(variant("Warmed:Stopped"), "WarmedStopped");
    }

    #[test]
    fn ecs_shapes_are_up_to_date() {
        check(&ECS);
    }

    #[test]
    fn autoscaling_shapes_are_up_to_date() {
        check(&AUTOSCALING);
    }

    #[test]
    fn elb_shapes_are_up_to_date() {
        check(&ELB);
    }

    #[test]
    fn ecr_shapes_are_up_to_date() {
        check(&ECR);
    }

    #[test]
    fn kms_shapes_are_up_to_date() {
        check(&KMS);
    }

    #[test]
    fn ssm_shapes_are_up_to_date() {
        check(&SSM);
    }

    #[test]
    fn secrets_manager_shapes_are_up_to_date() {
        check(&SECRETS_MANAGER);
        check(&IAM);
        check(&STS);
    }
}
