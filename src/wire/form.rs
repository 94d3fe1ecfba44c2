//! The Query protocol's two dialects, decoded and encoded by one codec.
//!
//! Requests are form-encoded `Action=…&Version=…&Member.Path=value` pairs,
//! decoded into JSON values shaped by the operation's input shape; values
//! that do not parse as their type stay strings, for model validation to
//! reject. Responses are XML in the service's namespace.
//!
//! The dialects differ only in how a member path is spelt and how the
//! answer is wrapped:
//!
//! | | standard Query (STS, Auto Scaling, …) | EC2 |
//! | --- | --- | --- |
//! | member name | its `locationName`, else its name | its `locationName` capitalised, else its name |
//! | list item | `Name.member.N` (`member`: the item's `locationName`) | `Name.N` |
//! | empty list | `Name=` | (not sent) |
//! | map entry | `Name.entry.N.key` / `.value` | `Name.N.Key` / `.Value` |
//! | response | `<OpResponse><OpResult>…</OpResult><ResponseMetadata>` | `<OpResponse><requestId>…` then the members |
//! | error | `<ErrorResponse><Error><Type><Code><Message>` | `<Response><Errors><Error><Code><Message>` |

use std::collections::BTreeMap;

use quick_xml::escape::escape;
use serde_json::{json, Map, Value};

use crate::error::ApiError;
use crate::model::{Model, ShapeKind};

/// Which Query dialect a service speaks (botocore protocols `query`, `ec2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Standard,
    Ec2,
}

impl Dialect {
    /// The wire name of a structure member.
    fn member(self, name: &str, location: Option<&str>) -> String {
        match (self, location) {
            (Dialect::Standard, Some(l)) => l.to_string(),
            (Dialect::Ec2, Some(l)) => {
                let mut c = l.chars();
                match c.next() {
                    Some(first) => first.to_uppercase().chain(c).collect(),
                    None => name.to_string(),
                }
            }
            (_, None) => name.to_string(),
        }
    }

    /// The path of a list's first segment below `base` (the `.N` follows).
    fn list_item(self, base: &str, member_location: Option<&str>) -> String {
        match self {
            Dialect::Standard => join(base, member_location.unwrap_or("member")),
            Dialect::Ec2 => base.to_string(),
        }
    }

    /// The paths of the key and value of map entry `i` below `base`.
    fn map_entry(self, base: &str, i: usize) -> (String, String) {
        match self {
            Dialect::Standard => {
                let e = format!("{}.{i}", join(base, "entry"));
                (format!("{e}.key"), format!("{e}.value"))
            }
            Dialect::Ec2 => (format!("{base}.{i}.Key"), format!("{base}.{i}.Value")),
        }
    }
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// Decode form parameters (other than Action and Version) into the
/// operation's input shape.
pub fn decode_input(
    dialect: Dialect,
    model: &Model,
    shape: &str,
    params: &BTreeMap<String, String>,
) -> Value {
    decode(dialect, model, shape, "", params).unwrap_or_else(|| json!({}))
}

fn decode(
    dialect: Dialect,
    model: &Model,
    shape: &str,
    prefix: &str,
    params: &BTreeMap<String, String>,
) -> Option<Value> {
    match &model.shape(shape).kind {
        ShapeKind::Structure { members, .. } => {
            let mut obj = Map::new();
            for (name, member_shape, location) in members {
                let wire = join(prefix, &dialect.member(name, location.as_deref()));
                if let Some(v) = decode(dialect, model, member_shape, &wire, params) {
                    obj.insert(name.clone(), v);
                }
            }
            (prefix.is_empty() || !obj.is_empty()).then_some(Value::Object(obj))
        }
        ShapeKind::List {
            member,
            member_location,
        } => {
            // An empty list is sent as the bare name with an empty value.
            if dialect == Dialect::Standard && params.get(prefix).is_some_and(String::is_empty) {
                return Some(json!([]));
            }
            let base = dialect.list_item(prefix, member_location.as_deref());
            let out: Vec<Value> = (1..)
                .map_while(|i| decode(dialect, model, member, &format!("{base}.{i}"), params))
                .collect();
            (!out.is_empty()).then_some(Value::Array(out))
        }
        ShapeKind::Map { key, value } => {
            let mut obj = Map::new();
            for i in 1.. {
                let (kp, vp) = dialect.map_entry(prefix, i);
                let (Some(Value::String(name)), Some(val)) = (
                    decode(dialect, model, key, &kp, params),
                    decode(dialect, model, value, &vp, params),
                ) else {
                    break;
                };
                obj.insert(name, val);
            }
            (!obj.is_empty()).then_some(Value::Object(obj))
        }
        scalar => Some(decode_scalar(scalar, params.get(prefix)?)),
    }
}

/// A scalar member from its form value: numbers and booleans typed when
/// they parse, left as text otherwise (model validation then names them).
fn decode_scalar(kind: &ShapeKind, raw: &str) -> Value {
    match kind {
        ShapeKind::Integer | ShapeKind::Long => {
            raw.parse::<i64>().map(Value::from).unwrap_or(json!(raw))
        }
        ShapeKind::Double => raw.parse::<f64>().map(Value::from).unwrap_or(json!(raw)),
        ShapeKind::Boolean => match raw {
            "true" => json!(true),
            "false" => json!(false),
            _ => json!(raw),
        },
        _ => json!(raw),
    }
}

/// The answer to `operation` in the dialect's XML.
pub fn encode_response(
    dialect: Dialect,
    model: &Model,
    operation: &str,
    output: &Value,
    request_id: &str,
) -> String {
    let mut body = String::new();
    let shape = model
        .operations
        .get(operation)
        .and_then(|o| o.output.clone());
    match dialect {
        Dialect::Standard => {
            let ns = model.xml_namespace.as_deref().unwrap_or("");
            if let Some(shape) = shape {
                body.push_str(&format!("<{operation}Result>"));
                encode_value(model, &shape, output, &mut body);
                body.push_str(&format!("</{operation}Result>"));
            }
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{operation}Response xmlns=\"{ns}\">{body}<ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{operation}Response>\n",
                escape(request_id)
            )
        }
        Dialect::Ec2 => {
            if let Some(shape) = shape {
                encode_value(model, &shape, output, &mut body);
            }
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{operation}Response xmlns=\"{}\"><requestId>{}</requestId>{body}</{operation}Response>\n",
                ec2_namespace(model),
                escape(request_id)
            )
        }
    }
}

/// The XML namespace EC2 answers in: the model's, with the trailing slash
/// EC2 puts on it.
fn ec2_namespace(model: &Model) -> String {
    let ns = model.xml_namespace.as_deref().unwrap_or("");
    if ns.ends_with('/') {
        ns.to_string()
    } else {
        format!("{ns}/")
    }
}

fn encode_value(model: &Model, shape: &str, v: &Value, out: &mut String) {
    match &model.shape(shape).kind {
        ShapeKind::Structure { members, .. } => {
            for (name, member_shape, location) in members {
                if let Some(mv) = v.get(name).filter(|x| !x.is_null()) {
                    let tag = location.as_deref().unwrap_or(name);
                    out.push_str(&format!("<{tag}>"));
                    encode_value(model, member_shape, mv, out);
                    out.push_str(&format!("</{tag}>"));
                }
            }
        }
        ShapeKind::List {
            member,
            member_location,
        } => {
            let tag = member_location.as_deref().unwrap_or("member");
            for item in v.as_array().into_iter().flatten() {
                out.push_str(&format!("<{tag}>"));
                encode_value(model, member, item, out);
                out.push_str(&format!("</{tag}>"));
            }
        }
        ShapeKind::Map { key, value } => {
            for (k, item) in v.as_object().into_iter().flatten() {
                out.push_str("<entry><key>");
                encode_value(model, key, &json!(k), out);
                out.push_str("</key><value>");
                encode_value(model, value, item, out);
                out.push_str("</value></entry>");
            }
        }
        _ => {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            out.push_str(&escape(text.as_str()));
        }
    }
}

/// An error in the dialect's XML.
pub fn encode_error(dialect: Dialect, err: &ApiError, request_id: &str) -> String {
    let (code, message, id) = (
        escape(err.code.as_str()),
        escape(err.message.as_str()),
        escape(request_id),
    );
    match dialect {
        Dialect::Standard => {
            let kind = if err.status >= 500 {
                "Receiver"
            } else {
                "Sender"
            };
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>{id}</RequestId></ErrorResponse>\n"
            )
        }
        Dialect::Ec2 => format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>{id}</RequestID></Response>\n"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn standard_decodes_nested_members_and_lists() {
        let m = model::sts();
        let p = params(&[
            ("RoleArn", "arn:aws:iam::000000000000:role/r"),
            ("RoleSessionName", "session"),
            ("DurationSeconds", "900"),
            ("Tags.member.1.Key", "k"),
            ("Tags.member.1.Value", "v"),
            ("Tags.member.2.Key", "k2"),
            ("Tags.member.2.Value", "v2"),
        ]);
        let v = decode_input(Dialect::Standard, m, "AssumeRoleRequest", &p);
        assert_eq!(v["DurationSeconds"], json!(900));
        assert_eq!(
            v["Tags"],
            json!([{"Key": "k", "Value": "v"}, {"Key": "k2", "Value": "v2"}])
        );
        assert!(m.validate_input("AssumeRole", &v).is_ok());
        let empty = decode_input(
            Dialect::Standard,
            m,
            "AssumeRoleRequest",
            &params(&[("Tags", "")]),
        );
        assert_eq!(empty["Tags"], json!([]));
    }

    #[test]
    fn standard_encodes_response_in_namespace() {
        let xml = encode_response(
            Dialect::Standard,
            model::sts(),
            "GetCallerIdentity",
            &json!({"Account": "000000000000", "Arn": "arn:aws:iam::000000000000:root", "UserId": "a<b"}),
            "rid",
        );
        assert!(xml.contains(
            "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><GetCallerIdentityResult>"
        ));
        assert!(xml.contains("<Account>000000000000</Account>"));
        assert!(xml.contains("<UserId>a&lt;b</UserId>"));
        assert!(xml.contains("<ResponseMetadata><RequestId>rid</RequestId>"));
    }

    #[test]
    fn ec2_decodes_flattened_lists_by_capitalised_location_name() {
        let m = model::ec2();
        let p = params(&[
            ("InstanceType.1", "t3.micro"),
            ("InstanceType.2", "m7g.large"),
            ("Filter.1.Name", "current-generation"),
            ("Filter.1.Value.1", "true"),
            ("MaxResults", "5"),
        ]);
        let v = decode_input(Dialect::Ec2, m, "DescribeInstanceTypesRequest", &p);
        assert_eq!(v["InstanceTypes"], json!(["t3.micro", "m7g.large"]));
        assert_eq!(
            v["Filters"],
            json!([{"Name": "current-generation", "Values": ["true"]}])
        );
        assert_eq!(v["MaxResults"], json!(5));
        let p = params(&[
            ("LaunchTemplateName", "web"),
            ("LaunchTemplateData.InstanceType", "t3.micro"),
            ("LaunchTemplateData.SecurityGroupId.1", "sg-1"),
            ("TagSpecification.1.ResourceType", "launch-template"),
            ("TagSpecification.1.Tag.1.Key", "team"),
            ("TagSpecification.1.Tag.1.Value", "a"),
        ]);
        let v = decode_input(Dialect::Ec2, m, "CreateLaunchTemplateRequest", &p);
        assert_eq!(v["LaunchTemplateData"]["SecurityGroupIds"], json!(["sg-1"]));
        assert_eq!(
            v["TagSpecifications"],
            json!([{"ResourceType": "launch-template", "Tags": [{"Key": "team", "Value": "a"}]}])
        );
    }

    #[test]
    fn ec2_encodes_without_result_wrapper_and_with_items() {
        let xml = encode_response(
            Dialect::Ec2,
            model::ec2(),
            "DescribeInstanceTypes",
            &json!({"InstanceTypes": [{"InstanceType": "t3.micro",
                "ProcessorInfo": {"SupportedArchitectures": ["x86_64"]}}]}),
            "rid",
        );
        assert!(xml.contains(
            "<DescribeInstanceTypesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>rid</requestId><instanceTypeSet><item><instanceType>t3.micro</instanceType>"
        ), "{xml}");
        assert!(
            xml.contains("<supportedArchitectures><item>x86_64</item></supportedArchitectures>")
        );
        assert!(!xml.contains("Result>"));
    }

    #[test]
    fn errors_in_each_dialect() {
        let e = ApiError::new("InvalidInstanceType", "a<b");
        let xml = encode_error(Dialect::Ec2, &e, "rid");
        assert!(xml.contains("<Response><Errors><Error><Code>InvalidInstanceType</Code><Message>a&lt;b</Message></Error></Errors><RequestID>rid</RequestID></Response>"));
        let xml = encode_error(Dialect::Standard, &e, "rid");
        assert!(xml.contains("<ErrorResponse><Error><Type>Sender</Type><Code>InvalidInstanceType</Code><Message>a&lt;b</Message></Error><RequestId>rid</RequestId></ErrorResponse>"));
        let xml = encode_error(Dialect::Standard, &ApiError::internal("x"), "rid");
        assert!(xml.contains("<Type>Receiver</Type>"));
    }
}
