//! Where a task definition given on the command line comes from: a JSON file
//! (the input of `register-task-definition`, or the output of
//! `describe-task-definition`), or a task definition already registered in a
//! running server, named by ARN or `family[:revision]`.

use serde_json::{Map, Value};

use crate::client::Client;

/// The fields `DescribeTaskDefinition` adds that `RegisterTaskDefinition`
/// does not take; removed so the result can be registered again.
pub const DESCRIBE_ONLY_FIELDS: &[&str] = &[
    "taskDefinitionArn",
    "revision",
    "status",
    "requiresAttributes",
    "compatibilities",
    "registeredAt",
    "registeredBy",
    "deregisteredAt",
    "deleteRequestedAt",
];

/// A task definition from a file's text: a bare task definition, or the
/// `{"taskDefinition": …, "tags": …}` answer of `describe-task-definition`.
/// The fields only a description carries are removed. `origin` names the
/// source in errors.
pub fn parse_task_definition(text: &str, origin: &str) -> anyhow::Result<Map<String, Value>> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| anyhow::anyhow!("{origin} is not valid JSON: {e}"))?;
    let Value::Object(mut obj) = value else {
        anyhow::bail!("{origin} is not a task definition: expected a JSON object");
    };
    if let Some(Value::Object(inner)) = obj.remove("taskDefinition") {
        let tags = obj.remove("tags");
        obj = inner;
        if let Some(tags @ Value::Array(_)) = tags {
            obj.entry("tags").or_insert(tags);
        }
    }
    match obj.get("containerDefinitions") {
        Some(Value::Array(c)) if !c.is_empty() => {}
        Some(Value::Array(_)) => {
            anyhow::bail!("{origin}: containerDefinitions is empty; a task definition needs at least one container")
        }
        Some(_) => anyhow::bail!("{origin}: containerDefinitions must be a list"),
        None => anyhow::bail!("{origin} is not a task definition: it has no containerDefinitions"),
    }
    for f in DESCRIBE_ONLY_FIELDS {
        obj.remove(*f);
    }
    Ok(obj)
}

/// Whether `spec` names a registered task definition rather than a file: an
/// ARN, or `family[:revision]` with no path separator or `.json`.
fn names_registered(spec: &str) -> bool {
    spec.starts_with("arn:")
        || (!spec.contains('/')
            && !spec.ends_with(".json")
            && spec
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':')))
}

/// Load a task definition: from the file `spec` if it exists, else from the
/// server (`DescribeTaskDefinition`, with tags) when `spec` is an ARN or
/// `family[:revision]`.
pub fn load_task_definition(
    spec: &str,
    endpoint: Option<&str>,
    region: Option<&str>,
) -> anyhow::Result<Map<String, Value>> {
    let path = std::path::Path::new(spec);
    if path.is_file() {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {spec}: {e}"))?;
        return parse_task_definition(&text, spec);
    }
    if !names_registered(spec) {
        anyhow::bail!(
            "{spec}: no such file (give a task definition JSON file, an ARN or family:revision)"
        );
    }
    let client = Client::from_env(endpoint, region)?;
    let out = crate::client::block_on(client.call(
        "AmazonEC2ContainerServiceV20141113.DescribeTaskDefinition",
        &serde_json::json!({"taskDefinition": spec, "include": ["TAGS"]}),
    ))?
    .map_err(|e| anyhow::anyhow!("task definition {spec}: {e}"))?;
    parse_task_definition(&out.to_string(), spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_description_becomes_a_registration() {
        let text = r#"{"taskDefinition": {"family": "web", "revision": 3, "status": "ACTIVE",
            "taskDefinitionArn": "arn:aws:ecs:us-east-1:000000000000:task-definition/web:3",
            "containerDefinitions": [{"name": "a", "image": "x"}],
            "requiresAttributes": [], "compatibilities": ["EC2"], "registeredAt": 1},
            "tags": [{"key": "team", "value": "video"}]}"#;
        let td = parse_task_definition(text, "t.json").unwrap();
        assert_eq!(td["family"], "web");
        assert_eq!(td["tags"][0]["key"], "team");
        for f in DESCRIBE_ONLY_FIELDS {
            assert!(!td.contains_key(*f), "{f} kept");
        }
    }

    #[test]
    fn bad_input_names_the_problem() {
        let e = parse_task_definition("{", "t.json")
            .unwrap_err()
            .to_string();
        assert!(e.contains("t.json is not valid JSON"), "{e}");
        let e = parse_task_definition("[1]", "t.json")
            .unwrap_err()
            .to_string();
        assert!(e.contains("expected a JSON object"), "{e}");
        let e = parse_task_definition(r#"{"family": "x"}"#, "t.json")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no containerDefinitions"), "{e}");
    }

    #[test]
    fn specs_that_name_registered_definitions() {
        assert!(names_registered("web:3"));
        assert!(names_registered("web"));
        assert!(names_registered(
            "arn:aws:ecs:us-east-1:000000000000:task-definition/web:3"
        ));
        assert!(!names_registered("defs/web.json"));
        assert!(!names_registered("web.json"));
    }
}
