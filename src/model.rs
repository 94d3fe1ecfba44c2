//! The AWS service models (as botocore ships them, vendored under `models/`)
//! and the validation of requests and responses against them.
//!
//! Input validation reports the first problem found: a JSON type that does not
//! fit the shape (`SerializationException`, as AWS JSON services answer), or a
//! broken constraint — a missing required member, a value outside an enum, a
//! length or range outside the model's bounds (`InvalidParameterException`).
//! Output checking lists every field a response emits that the model's output
//! shape does not declare; the server runs it on every response in strict mode.

use std::collections::HashMap;
use std::sync::OnceLock;

use regex::Regex;
use serde::Deserialize;
use serde_json::Value;

use crate::error::ApiError;

#[derive(Debug, Deserialize)]
struct RawModel {
    metadata: HashMap<String, Value>,
    operations: HashMap<String, RawOperation>,
    shapes: HashMap<String, RawShape>,
}

#[derive(Debug, Deserialize)]
struct RawOperation {
    input: Option<ShapeRef>,
    output: Option<ShapeRef>,
}

#[derive(Debug, Deserialize, Clone)]
struct ShapeRef {
    shape: String,
    #[serde(rename = "locationName")]
    location_name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RawShape {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    members: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    required: Vec<String>,
    member: Option<ShapeRef>,
    key: Option<ShapeRef>,
    value: Option<ShapeRef>,
    #[serde(rename = "enum")]
    enum_values: Option<Vec<String>>,
    min: Option<f64>,
    max: Option<f64>,
    pattern: Option<String>,
    #[serde(default)]
    exception: bool,
}

#[derive(Debug)]
pub enum ShapeKind {
    Structure {
        /// member name → (shape name, name on the wire for Query/XML)
        members: Vec<(String, String, Option<String>)>,
        required: Vec<String>,
    },
    List {
        member: String,
        member_location: Option<String>,
    },
    Map {
        key: String,
        value: String,
    },
    String {
        enum_values: Option<Vec<String>>,
    },
    Integer,
    Long,
    Double,
    Boolean,
    Timestamp,
    Blob,
}

#[derive(Debug)]
pub struct Shape {
    pub kind: ShapeKind,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub pattern: Option<Regex>,
    pub exception: bool,
}

#[derive(Debug, Clone)]
pub struct Operation {
    pub input: Option<String>,
    pub output: Option<String>,
}

/// One service's model.
#[derive(Debug)]
pub struct Model {
    pub target_prefix: Option<String>,
    /// The model's `metadata.protocol` (`json`, `query`, `ec2`, …).
    pub protocol: String,
    pub api_version: String,
    pub xml_namespace: Option<String>,
    /// Whether only some of the service's operations were vendored (EC2's
    /// model is several megabytes), so an operation missing from it may
    /// still be one of the service's.
    pub subset: bool,
    pub operations: HashMap<String, Operation>,
    pub shapes: HashMap<String, Shape>,
}

impl Model {
    pub fn from_json(text: &str) -> Model {
        let raw: RawModel = serde_json::from_str(text).expect("vendored model parses");
        let meta_str = |k: &str| {
            raw.metadata
                .get(k)
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let shapes = raw
            .shapes
            .into_iter()
            .map(|(name, s)| {
                let kind = match s.kind.as_str() {
                    "structure" => ShapeKind::Structure {
                        members: s
                            .members
                            .unwrap_or_default()
                            .into_iter()
                            .map(|(m, r)| {
                                let r: ShapeRef = serde_json::from_value(r).expect("member ref");
                                (m, r.shape, r.location_name)
                            })
                            .collect(),
                        required: s.required,
                    },
                    "list" => {
                        let m = s.member.expect("list member");
                        ShapeKind::List {
                            member: m.shape,
                            member_location: m.location_name,
                        }
                    }
                    "map" => ShapeKind::Map {
                        key: s.key.expect("map key").shape,
                        value: s.value.expect("map value").shape,
                    },
                    "string" => ShapeKind::String {
                        enum_values: s.enum_values,
                    },
                    "integer" => ShapeKind::Integer,
                    "long" => ShapeKind::Long,
                    "double" | "float" => ShapeKind::Double,
                    "boolean" => ShapeKind::Boolean,
                    "timestamp" => ShapeKind::Timestamp,
                    "blob" => ShapeKind::Blob,
                    other => panic!("unknown shape type {other}"),
                };
                // Look-around (IAM's account aliases) is beyond the regex
                // crate: such patterns are not checked.
                let pattern = s
                    .pattern
                    .filter(|p| !["(?=", "(?!", "(?<=", "(?<!"].iter().any(|l| p.contains(l)))
                    .map(|p| {
                        Regex::new(&format!("^(?:{})$", java_to_rust_regex(&p))).unwrap_or_else(
                            |e| panic!("pattern of shape {name} does not compile: {e}"),
                        )
                    });
                (
                    name,
                    Shape {
                        kind,
                        min: s.min,
                        max: s.max,
                        pattern,
                        exception: s.exception,
                    },
                )
            })
            .collect();
        let operations = raw
            .operations
            .into_iter()
            .map(|(name, op)| {
                (
                    name,
                    Operation {
                        input: op.input.map(|r| r.shape),
                        output: op.output.map(|r| r.shape),
                    },
                )
            })
            .collect();
        Model {
            target_prefix: meta_str("targetPrefix"),
            protocol: meta_str("protocol").unwrap_or_default(),
            api_version: meta_str("apiVersion").unwrap_or_default(),
            xml_namespace: raw
                .metadata
                .get("xmlNamespace")
                .and_then(|v| v.get("uri").and_then(Value::as_str).or(v.as_str()))
                .map(str::to_string),
            subset: meta_str("berthSource").is_some_and(|s| s.ends_with("(subset)")),
            operations,
            shapes,
        }
    }

    pub fn shape(&self, name: &str) -> &Shape {
        self.shapes
            .get(name)
            .unwrap_or_else(|| panic!("model has no shape {name}"))
    }

    /// Validate an operation's input. `Ok` means the value has the shape the
    /// model describes.
    pub fn validate_input(&self, operation: &str, input: &Value) -> Result<(), ApiError> {
        let Some(op) = self.operations.get(operation) else {
            return Err(ApiError::unknown_operation(format!(
                "Operation {operation} is not supported."
            )));
        };
        match &op.input {
            Some(shape) => self.validate(shape, input, ""),
            None => Ok(()),
        }
    }

    fn validate(&self, shape_name: &str, v: &Value, path: &str) -> Result<(), ApiError> {
        let shape = self.shape(shape_name);
        let at = |p: &str| {
            if p.is_empty() {
                "the request".to_string()
            } else {
                format!("'{p}'")
            }
        };
        let wrong_type = |expected: &str| {
            ApiError::serialization(format!(
                "Expected {expected} at {}, found {}.",
                at(path),
                json_type(v)
            ))
        };
        if v.is_null() {
            // JSON null is treated as absent, as AWS JSON services do.
            return Ok(());
        }
        let length = |n: usize, what: &str| -> Result<(), ApiError> {
            if let Some(min) = shape.min {
                if (n as f64) < min {
                    return Err(ApiError::invalid_parameter(format!(
                        "{} must have {what} of at least {min}.",
                        at(path)
                    )));
                }
            }
            if let Some(max) = shape.max {
                if (n as f64) > max {
                    return Err(ApiError::invalid_parameter(format!(
                        "{} must have {what} of at most {max}.",
                        at(path)
                    )));
                }
            }
            Ok(())
        };
        match &shape.kind {
            ShapeKind::Structure { members, required } => {
                let obj = v.as_object().ok_or_else(|| wrong_type("an object"))?;
                for r in required {
                    if obj.get(r).is_none_or(Value::is_null) {
                        let p = join(path, r);
                        return Err(ApiError::invalid_parameter(format!(
                            "Missing required parameter '{p}'."
                        )));
                    }
                }
                for (name, member_shape, _) in members {
                    if let Some(mv) = obj.get(name) {
                        self.validate(member_shape, mv, &join(path, name))?;
                    }
                }
                Ok(())
            }
            ShapeKind::List { member, .. } => {
                let arr = v.as_array().ok_or_else(|| wrong_type("a list"))?;
                length(arr.len(), "a length")?;
                for (i, item) in arr.iter().enumerate() {
                    if item.is_null() {
                        return Err(ApiError::invalid_parameter(format!(
                            "{} must not contain null elements.",
                            at(path)
                        )));
                    }
                    self.validate(member, item, &format!("{path}[{i}]"))?;
                }
                Ok(())
            }
            ShapeKind::Map { key, value } => {
                let obj = v.as_object().ok_or_else(|| wrong_type("an object"))?;
                length(obj.len(), "a size")?;
                for (k, mv) in obj {
                    self.validate(key, &Value::String(k.clone()), &format!("{path}.{k}"))?;
                    self.validate(value, mv, &format!("{path}.{k}"))?;
                }
                Ok(())
            }
            ShapeKind::String { enum_values } => {
                let s = v.as_str().ok_or_else(|| wrong_type("a string"))?;
                // EC2's enums are open on input: EC2 checks values such as
                // instance types itself, with its own error codes.
                let enums_closed = self.protocol != "ec2";
                if let Some(values) = enum_values.as_ref().filter(|_| enums_closed) {
                    if !values.iter().any(|e| e == s) {
                        return Err(ApiError::invalid_parameter(format!(
                            "Invalid value '{s}' for {}: must be one of {}.",
                            at(path),
                            values.join(", ")
                        )));
                    }
                }
                length(s.chars().count(), "a length")?;
                if let Some(re) = &shape.pattern {
                    if !re.is_match(s) {
                        return Err(ApiError::invalid_parameter(format!(
                            "Invalid value '{s}' for {}: it does not match the pattern {}.",
                            at(path),
                            re.as_str()
                        )));
                    }
                }
                Ok(())
            }
            ShapeKind::Integer | ShapeKind::Long => {
                let n = v
                    .as_i64()
                    .filter(|n| {
                        !matches!(shape.kind, ShapeKind::Integer) || i32::try_from(*n).is_ok()
                    })
                    .ok_or_else(|| wrong_type("an integer"))?;
                self.range(shape, n as f64, path)
            }
            ShapeKind::Double => {
                let n = v.as_f64().ok_or_else(|| wrong_type("a number"))?;
                self.range(shape, n, path)
            }
            ShapeKind::Boolean => v
                .as_bool()
                .map(|_| ())
                .ok_or_else(|| wrong_type("a boolean")),
            ShapeKind::Timestamp => {
                if v.is_number() || v.is_string() {
                    Ok(())
                } else {
                    Err(wrong_type("a timestamp"))
                }
            }
            ShapeKind::Blob => v
                .as_str()
                .map(|_| ())
                .ok_or_else(|| wrong_type("a base64 string")),
        }
    }

    fn range(&self, shape: &Shape, n: f64, path: &str) -> Result<(), ApiError> {
        let fails = shape.min.is_some_and(|m| n < m) || shape.max.is_some_and(|m| n > m);
        if fails {
            let bounds = match (shape.min, shape.max) {
                (Some(a), Some(b)) => format!("between {a} and {b}"),
                (Some(a), None) => format!("at least {a}"),
                (None, Some(b)) => format!("at most {b}"),
                (None, None) => unreachable!(),
            };
            return Err(ApiError::invalid_parameter(format!(
                "Invalid value {n} for '{path}': must be {bounds}."
            )));
        }
        Ok(())
    }

    /// Every field of `output` that the operation's output shape does not
    /// declare, as paths. Empty means the response is model-clean.
    pub fn undeclared_output_fields(&self, operation: &str, output: &Value) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(shape) = self
            .operations
            .get(operation)
            .and_then(|o| o.output.clone())
        {
            self.check_output(&shape, output, "", &mut out);
        } else if output.as_object().is_some_and(|o| !o.is_empty()) {
            out.push("<operation has no output>".into());
        }
        out
    }

    fn check_output(&self, shape_name: &str, v: &Value, path: &str, out: &mut Vec<String>) {
        match &self.shape(shape_name).kind {
            ShapeKind::Structure { members, .. } => {
                let Some(obj) = v.as_object() else {
                    out.push(format!("{path} (not an object)"));
                    return;
                };
                for (k, fv) in obj {
                    match members.iter().find(|(m, _, _)| m == k) {
                        Some((_, s, _)) => self.check_output(s, fv, &join(path, k), out),
                        None => out.push(join(path, k)),
                    }
                }
            }
            ShapeKind::List { member, .. } => match v.as_array() {
                Some(arr) => {
                    for (i, item) in arr.iter().enumerate() {
                        self.check_output(member, item, &format!("{path}[{i}]"), out);
                    }
                }
                None => out.push(format!("{path} (not a list)")),
            },
            ShapeKind::Map { value, .. } => match v.as_object() {
                Some(obj) => {
                    for (k, item) in obj {
                        self.check_output(value, item, &format!("{path}.{k}"), out);
                    }
                }
                None => out.push(format!("{path} (not a map)")),
            },
            _ => {
                if v.is_object() || v.is_array() {
                    out.push(format!("{path} (not a scalar)"));
                }
            }
        }
    }
}

/// Model patterns are Java regular expressions: rewrite their `\uXXXX` and
/// `\uXXXXX` escapes into the `\x{…}` form the regex crate reads, and escape
/// a `-` that follows a class shorthand (`[\w-_]`: literal in Java, an
/// invalid range for the regex crate).
fn java_to_rust_regex(p: &str) -> String {
    static ESC: OnceLock<Regex> = OnceLock::new();
    static DASH: OnceLock<Regex> = OnceLock::new();
    let re = ESC.get_or_init(|| Regex::new(r"\\u([0-9A-Fa-f]{4,6})").expect("static regex"));
    let dash = DASH.get_or_init(|| Regex::new(r"(\\[wdsWDS])-").expect("static regex"));
    // Java matches supplementary characters as UTF-16 surrogate pairs
    // (`\uD800\uDC00-\uDBFF\uDFFF`); Rust's regex matches code points.
    let p = p.replace(r"\uD800\uDC00-\uDBFF\uDFFF", r"\x{10000}-\x{10FFFF}");
    let p = re.replace_all(&p, r"\x{$1}");
    dash.replace_all(&p, r"$1\-").into_owned()
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

pub fn ecs() -> &'static Model {
    static M: OnceLock<Model> = OnceLock::new();
    M.get_or_init(|| Model::from_json(include_str!("../models/ecs-2014-11-13.json")))
}

pub fn logs() -> &'static Model {
    static M: OnceLock<Model> = OnceLock::new();
    M.get_or_init(|| Model::from_json(include_str!("../models/logs-2014-03-28.json")))
}

/// Berth's own API (see `platform`).
pub fn berth() -> &'static Model {
    static M: OnceLock<Model> = OnceLock::new();
    M.get_or_init(|| Model::from_json(include_str!("../models/berth-2026-11-23.json")))
}

/// EC2 (protocol `ec2`): the subset Berth serves, vendored by
/// `scripts/vendor-ec2-model`.
pub fn ec2() -> &'static Model {
    static M: OnceLock<Model> = OnceLock::new();
    M.get_or_init(|| Model::from_json(include_str!("../models/ec2-2016-11-15.json")))
}

/// EC2 Auto Scaling (Query protocol).
pub fn autoscaling() -> &'static Model {
    static M: OnceLock<Model> = OnceLock::new();
    M.get_or_init(|| Model::from_json(include_str!("../models/autoscaling-2011-01-01.json")))
}

/// Elastic Load Balancing v2 (Query protocol).
pub fn elbv2() -> &'static Model {
    static M: OnceLock<Model> = OnceLock::new();
    M.get_or_init(|| Model::from_json(include_str!("../models/elbv2-2015-12-01.json")))
}

/// Amazon ECR (JSON 1.1).
pub fn ecr() -> &'static Model {
    static M: OnceLock<Model> = OnceLock::new();
    M.get_or_init(|| Model::from_json(include_str!("../models/ecr-2015-09-21.json")))
}

/// AWS KMS (JSON 1.1).
pub fn kms() -> &'static Model {
    static M: OnceLock<Model> = OnceLock::new();
    M.get_or_init(|| Model::from_json(include_str!("../models/kms-2014-11-01.json")))
}

/// AWS Systems Manager's Parameter Store (JSON 1.1).
pub fn ssm() -> &'static Model {
    static M: OnceLock<Model> = OnceLock::new();
    M.get_or_init(|| Model::from_json(include_str!("../models/ssm-2014-11-06.json")))
}

/// AWS Secrets Manager (JSON 1.1).
pub fn secretsmanager() -> &'static Model {
    static M: OnceLock<Model> = OnceLock::new();
    M.get_or_init(|| Model::from_json(include_str!("../models/secretsmanager-2017-10-17.json")))
}

/// AWS IAM (Query).
pub fn iam() -> &'static Model {
    static M: OnceLock<Model> = OnceLock::new();
    M.get_or_init(|| Model::from_json(include_str!("../models/iam-2010-05-08.json")))
}

pub fn sts() -> &'static Model {
    static M: OnceLock<Model> = OnceLock::new();
    M.get_or_init(|| Model::from_json(include_str!("../models/sts-2011-06-15.json")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn java_surrogate_pairs_become_code_point_ranges() {
        let p = java_to_rust_regex(r"[\u0020-\uD7FF\uE000-\uFFFD\uD800\uDC00-\uDBFF\uDFFF\r\n\t]*");
        let re = Regex::new(&format!("^(?:{p})$")).unwrap();
        assert!(re.is_match("plain text \u{1F600}"));
        assert!(!re.is_match("\u{0001}"));
    }

    #[test]
    fn autoscaling_model_patterns_compile() {
        let m = autoscaling();
        for name in ["ResourceName", "XmlStringMaxLen255", "XmlStringMaxLen511"] {
            assert!(m.shape(name).pattern.is_some(), "{name}");
        }
    }

    #[test]
    fn ecs_model_loads() {
        let m = ecs();
        assert_eq!(
            m.target_prefix.as_deref(),
            Some("AmazonEC2ContainerServiceV20141113")
        );
        assert!(m.operations.contains_key("RegisterTaskDefinition"));
    }

    #[test]
    fn ec2_model_loads_with_open_enums() {
        let m = ec2();
        assert_eq!(m.protocol, "ec2");
        assert!(m.operations.contains_key("DescribeInstanceTypes"));
        let input = json!({"InstanceTypes": ["no.such-type"]});
        assert!(m.validate_input("DescribeInstanceTypes", &input).is_ok());
        let e = m
            .validate_input("DescribeInstanceTypes", &json!({"MaxResults": 1}))
            .unwrap_err();
        assert!(e.message.contains("MaxResults"), "{}", e.message);
    }

    #[test]
    fn required_member_missing_is_invalid_parameter() {
        let e = ecs()
            .validate_input("DescribeTaskDefinition", &json!({}))
            .unwrap_err();
        assert_eq!(e.code, "InvalidParameterException");
        assert!(e.message.contains("taskDefinition"), "{}", e.message);
    }

    #[test]
    fn wrong_type_is_serialization_exception() {
        let e = ecs()
            .validate_input("ListClusters", &json!({"maxResults": "ten"}))
            .unwrap_err();
        assert_eq!(e.code, "SerializationException");
        let e = ecs()
            .validate_input("ListClusters", &json!({"maxResults": 1.5}))
            .unwrap_err();
        assert_eq!(e.code, "SerializationException");
    }

    #[test]
    fn enum_and_length_and_pattern() {
        let bad_enum = json!({"family": "f", "containerDefinitions": [], "networkMode": "wifi"});
        let e = ecs()
            .validate_input("RegisterTaskDefinition", &bad_enum)
            .unwrap_err();
        assert_eq!(e.code, "InvalidParameterException");
        assert!(e.message.contains("networkMode"));
        let long_key = "k".repeat(129);
        let e = ecs()
            .validate_input(
                "TagResource",
                &json!({"resourceArn": "a", "tags": [{"key": long_key, "value": "v"}]}),
            )
            .unwrap_err();
        assert!(e.message.contains("tags[0].key"), "{}", e.message);
        let ok = json!({"resourceArn": "a", "tags": [{"key": "team name", "value": "x@y"}]});
        assert!(ecs().validate_input("TagResource", &ok).is_ok());
        let bad = json!({"resourceArn": "a", "tags": [{"key": "a!", "value": "x"}]});
        assert!(ecs().validate_input("TagResource", &bad).is_err());
    }

    #[test]
    fn output_check_finds_undeclared_fields() {
        let out = json!({"cluster": {"clusterName": "a", "bogus": 1}});
        assert_eq!(
            ecs().undeclared_output_fields("CreateCluster", &out),
            vec!["cluster.bogus".to_string()]
        );
        let out = json!({"clusters": [{"clusterName": "a", "tags": [{"key": "k", "value": "v"}]}], "failures": []});
        assert!(ecs()
            .undeclared_output_fields("DescribeClusters", &out)
            .is_empty());
    }
}
