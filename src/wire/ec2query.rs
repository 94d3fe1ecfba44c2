//! EC2's own dialect of the Query protocol (botocore protocol `ec2`).
//!
//! Requests are form-encoded like Query, but lists are flattened
//! (`Name.1`, `Name.2`, no `member` segment) and a member is named on the
//! wire by its `locationName` with the first letter capitalised (or its name
//! when it has none). Responses are `<OpResponse xmlns=…><requestId>…`
//! followed by the output members directly — no `OpResult` wrapper, no
//! `ResponseMetadata` — with lists as `<name><item>…</item></name>`. Errors
//! are `<Response><Errors><Error><Code>…` with the request id as `RequestID`.

use std::collections::BTreeMap;

use quick_xml::escape::escape;
use serde_json::{json, Map, Value};

use crate::error::ApiError;
use crate::model::{Model, ShapeKind};

/// Decode EC2 form parameters (other than Action and Version) into the
/// operation's input shape. Values that do not parse as their type stay
/// strings, for model validation to reject.
pub fn decode_input(model: &Model, shape: &str, params: &BTreeMap<String, String>) -> Value {
    decode(model, shape, "", params).unwrap_or_else(|| json!({}))
}

/// The wire name of a structure member: its `locationName` capitalised, or
/// the member name.
fn wire_name(name: &str, location: Option<&str>) -> String {
    match location {
        Some(l) => {
            let mut c = l.chars();
            match c.next() {
                Some(first) => first.to_uppercase().chain(c).collect(),
                None => name.to_string(),
            }
        }
        None => name.to_string(),
    }
}

fn decode(
    model: &Model,
    shape: &str,
    prefix: &str,
    params: &BTreeMap<String, String>,
) -> Option<Value> {
    let key = |name: &str| {
        if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}.{name}")
        }
    };
    match &model.shape(shape).kind {
        ShapeKind::Structure { members, .. } => {
            let mut obj = Map::new();
            for (name, member_shape, location) in members {
                let wire = wire_name(name, location.as_deref());
                if let Some(v) = decode(model, member_shape, &key(&wire), params) {
                    obj.insert(name.clone(), v);
                }
            }
            (prefix.is_empty() || !obj.is_empty()).then_some(Value::Object(obj))
        }
        ShapeKind::List { member, .. } => {
            let mut out = Vec::new();
            for i in 1.. {
                match decode(model, member, &format!("{prefix}.{i}"), params) {
                    Some(v) => out.push(v),
                    None => break,
                }
            }
            (!out.is_empty()).then_some(Value::Array(out))
        }
        ShapeKind::Map { key: k, value: v } => {
            let mut obj = Map::new();
            for i in 1.. {
                let entry = format!("{prefix}.{i}");
                let (Some(Value::String(name)), Some(val)) = (
                    decode(model, k, &format!("{entry}.Key"), params),
                    decode(model, v, &format!("{entry}.Value"), params),
                ) else {
                    break;
                };
                obj.insert(name, val);
            }
            (!obj.is_empty()).then_some(Value::Object(obj))
        }
        scalar => Some(super::query::decode_scalar(scalar, params.get(prefix)?)),
    }
}

/// The XML namespace EC2 answers in: the model's, with the trailing slash
/// EC2 puts on it.
fn namespace(model: &Model) -> String {
    let ns = model.xml_namespace.as_deref().unwrap_or("");
    if ns.ends_with('/') {
        ns.to_string()
    } else {
        format!("{ns}/")
    }
}

/// `<OpResponse xmlns=…><requestId>…</requestId>…members…</OpResponse>`
pub fn encode_response(model: &Model, operation: &str, output: &Value, request_id: &str) -> String {
    let mut body = String::new();
    if let Some(shape) = model
        .operations
        .get(operation)
        .and_then(|o| o.output.clone())
    {
        super::query::encode_value(model, &shape, output, &mut body);
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{operation}Response xmlns=\"{}\"><requestId>{}</requestId>{body}</{operation}Response>\n",
        namespace(model),
        escape(request_id)
    )
}

/// `<Response><Errors><Error><Code>…</Code><Message>…</Message></Error></Errors><RequestID>…</RequestID></Response>`
pub fn encode_error(err: &ApiError, request_id: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{}</Code><Message>{}</Message></Error></Errors><RequestID>{}</RequestID></Response>\n",
        escape(err.code.as_str()),
        escape(err.message.as_str()),
        escape(request_id)
    )
}

/// Model validation speaks ECS's error codes; EC2 answers a missing member
/// with `MissingParameter` and any other bad value with
/// `InvalidParameterValue`.
pub fn validation_error(e: ApiError) -> ApiError {
    if let Some(rest) = e.message.strip_prefix("Missing required parameter '") {
        let name = rest.trim_end_matches("'.");
        return ApiError::new(
            "MissingParameter",
            format!("The request must contain the parameter {name}"),
        );
    }
    match e.code.as_str() {
        "InvalidParameterException" | "SerializationException" => {
            ApiError::new("InvalidParameterValue", e.message)
        }
        _ => e,
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
    fn decodes_flattened_lists_by_capitalised_location_name() {
        let m = model::ec2();
        let p = params(&[
            ("InstanceType.1", "t3.micro"),
            ("InstanceType.2", "m7g.large"),
            ("Filter.1.Name", "current-generation"),
            ("Filter.1.Value.1", "true"),
            ("MaxResults", "5"),
        ]);
        let v = decode_input(m, "DescribeInstanceTypesRequest", &p);
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
        let v = decode_input(m, "CreateLaunchTemplateRequest", &p);
        assert_eq!(v["LaunchTemplateData"]["SecurityGroupIds"], json!(["sg-1"]));
        assert_eq!(
            v["TagSpecifications"],
            json!([{"ResourceType": "launch-template", "Tags": [{"Key": "team", "Value": "a"}]}])
        );
    }

    #[test]
    fn encodes_without_result_wrapper_and_with_items() {
        let xml = encode_response(
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
    fn errors_have_ec2_shape() {
        let xml = encode_error(&ApiError::new("InvalidInstanceType", "a<b"), "rid");
        assert!(xml.contains("<Response><Errors><Error><Code>InvalidInstanceType</Code><Message>a&lt;b</Message></Error></Errors><RequestID>rid</RequestID></Response>"));
    }

    #[test]
    fn validation_errors_take_ec2_codes() {
        let e = validation_error(ApiError::invalid_parameter(
            "Missing required parameter 'LaunchTemplateData'.",
        ));
        assert_eq!(e.code, "MissingParameter");
        assert_eq!(
            e.message,
            "The request must contain the parameter LaunchTemplateData"
        );
        let e = validation_error(ApiError::invalid_parameter("x"));
        assert_eq!(e.code, "InvalidParameterValue");
    }
}
