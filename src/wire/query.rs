//! The AWS Query protocol: form-encoded `Action=…&Version=…` requests decoded
//! into JSON values shaped by the service model, and XML responses and errors
//! in the service's namespace.

use std::collections::BTreeMap;

use quick_xml::escape::escape;
use serde_json::{json, Map, Value};

use crate::error::ApiError;
use crate::model::{Model, ShapeKind};

/// Decode form parameters (other than Action and Version) into the operation's
/// input shape. Values that do not parse as their type become strings and are
/// then rejected by model validation.
pub fn decode_input(model: &Model, shape: &str, params: &BTreeMap<String, String>) -> Value {
    decode(model, shape, "", params).unwrap_or_else(|| json!({}))
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
                let wire = location.as_deref().unwrap_or(name);
                if let Some(v) = decode(model, member_shape, &key(wire), params) {
                    obj.insert(name.clone(), v);
                }
            }
            (prefix.is_empty() || !obj.is_empty()).then_some(Value::Object(obj))
        }
        ShapeKind::List {
            member,
            member_location,
        } => {
            let item = member_location.as_deref().unwrap_or("member");
            let base = key(item);
            // An empty list is sent as the bare name with an empty value.
            if params.get(prefix).is_some_and(String::is_empty) {
                return Some(json!([]));
            }
            let mut out = Vec::new();
            for i in 1.. {
                match decode(model, member, &format!("{base}.{i}"), params) {
                    Some(v) => out.push(v),
                    None => break,
                }
            }
            (!out.is_empty()).then_some(Value::Array(out))
        }
        ShapeKind::Map { key: k, value: v } => {
            let mut obj = Map::new();
            for i in 1.. {
                let entry = format!("{}.{i}", key("entry"));
                let (Some(Value::String(name)), Some(val)) = (
                    decode(model, k, &format!("{entry}.key"), params),
                    decode(model, v, &format!("{entry}.value"), params),
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

/// `<OpResponse xmlns=…><OpResult>…</OpResult><ResponseMetadata>…</ResponseMetadata></OpResponse>`
pub fn encode_response(model: &Model, operation: &str, output: &Value, request_id: &str) -> String {
    let ns = model.xml_namespace.as_deref().unwrap_or("");
    let mut body = String::new();
    if let Some(shape) = model
        .operations
        .get(operation)
        .and_then(|o| o.output.clone())
    {
        body.push_str(&format!("<{operation}Result>"));
        encode_value(model, &shape, output, &mut body);
        body.push_str(&format!("</{operation}Result>"));
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{operation}Response xmlns=\"{ns}\">{body}<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{operation}Response>\n"
    )
}

/// A scalar member from its form value: numbers and booleans typed when
/// they parse, left as text otherwise (model validation then names them).
pub(crate) fn decode_scalar(kind: &ShapeKind, raw: &str) -> Value {
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

pub(crate) fn encode_value(model: &Model, shape: &str, v: &Value, out: &mut String) {
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

pub fn encode_error(err: &ApiError, request_id: &str) -> String {
    let kind = if err.status >= 500 {
        "Receiver"
    } else {
        "Sender"
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse><Error><Type>{kind}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>\n",
        escape(err.code.as_str()),
        escape(err.message.as_str())
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model;

    #[test]
    fn decodes_nested_members_and_lists() {
        let m = model::sts();
        let mut p = BTreeMap::new();
        p.insert(
            "RoleArn".to_string(),
            "arn:aws:iam::000000000000:role/r".to_string(),
        );
        p.insert("RoleSessionName".to_string(), "session".to_string());
        p.insert("DurationSeconds".to_string(), "900".to_string());
        p.insert("Tags.member.1.Key".to_string(), "k".to_string());
        p.insert("Tags.member.1.Value".to_string(), "v".to_string());
        p.insert("Tags.member.2.Key".to_string(), "k2".to_string());
        p.insert("Tags.member.2.Value".to_string(), "v2".to_string());
        let v = decode_input(m, "AssumeRoleRequest", &p);
        assert_eq!(v["DurationSeconds"], json!(900));
        assert_eq!(
            v["Tags"],
            json!([{"Key": "k", "Value": "v"}, {"Key": "k2", "Value": "v2"}])
        );
        assert!(m.validate_input("AssumeRole", &v).is_ok());
    }

    #[test]
    fn encodes_response_in_namespace() {
        let xml = encode_response(
            model::sts(),
            "GetCallerIdentity",
            &json!({"Account": "000000000000", "Arn": "arn:aws:iam::000000000000:root", "UserId": "a<b"}),
            "rid",
        );
        assert!(xml.contains(
            "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
        ));
        assert!(xml.contains("<Account>000000000000</Account>"));
        assert!(xml.contains("<UserId>a&lt;b</UserId>"));
        assert!(xml.contains("<RequestId>rid</RequestId>"));
    }
}
