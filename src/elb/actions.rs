//! Rule actions and conditions (pure): checked as ALB checks them,
//! normalised as ALB describes them, and read into the data plane's
//! [`routes`](super::routes) types.

use super::routes::{self, Cidr};
use super::shapes::{
    Action, ActionTypeEnum, FixedResponseActionConfig, ForwardActionConfig,
    HostHeaderConditionConfig, PathPatternConditionConfig, RedirectActionConfig,
    RedirectActionStatusCodeEnum, RuleCondition, TargetGroupStickinessConfig, TargetGroupTuple,
};
use super::validation;
use crate::error::ApiResult;

/// ALB's limits on one rule.
pub const MAX_CONDITION_VALUES: usize = 5;
pub const MAX_FORWARD_GROUPS: usize = 5;

const CONTENT_TYPES: &[&str] = &[
    "text/plain",
    "text/css",
    "text/html",
    "application/javascript",
    "application/json",
];

/// Check `actions` and give them back as ALB describes them (a forward to
/// one target group carries both `TargetGroupArn` and `ForwardConfig`;
/// every action has its `Order`). Returns the target groups they forward
/// to.
pub fn normalise_actions(actions: &mut [Action]) -> ApiResult<Vec<String>> {
    if actions.is_empty() {
        return Err(validation("At least one action must be specified"));
    }
    let mut groups = Vec::new();
    let n = actions.len();
    for (i, a) in actions.iter_mut().enumerate() {
        let order = a.order.unwrap_or(i as i64 + 1);
        if !(1..=50_000).contains(&order) {
            return Err(validation("Action order must be between 1 and 50000"));
        }
        a.order = Some(order);
        match a.r#type {
            ActionTypeEnum::Forward => {
                let mut tuples: Vec<TargetGroupTuple> = a
                    .forward_config
                    .as_ref()
                    .and_then(|f| f.target_groups.clone())
                    .unwrap_or_default();
                if let Some(arn) = &a.target_group_arn {
                    if tuples.is_empty() {
                        tuples.push(TargetGroupTuple {
                            target_group_arn: Some(arn.clone()),
                            weight: Some(1),
                        });
                    } else if tuples.len() != 1
                        || tuples[0].target_group_arn.as_deref() != Some(arn)
                    {
                        return Err(validation(
                            "You cannot specify a target group ARN both in the action and in the forward configuration unless they name the same single target group",
                        ));
                    }
                }
                if tuples.is_empty() {
                    return Err(validation(
                        "A target group ARN must be specified for a forward action",
                    ));
                }
                if tuples.len() > MAX_FORWARD_GROUPS {
                    return Err(validation(format!(
                        "A forward action can have at most {MAX_FORWARD_GROUPS} target groups"
                    )));
                }
                for t in &mut tuples {
                    let arn = t.target_group_arn.clone().ok_or_else(|| {
                        validation("Each target group of a forward action must have an ARN")
                    })?;
                    let w = t.weight.unwrap_or(1);
                    if !(0..=999).contains(&w) {
                        return Err(validation(format!(
                            "Target group weight '{w}' must be between 0 and 999"
                        )));
                    }
                    t.weight = Some(w);
                    if groups.contains(&arn) {
                        return Err(validation(format!(
                            "Target group '{arn}' is named more than once in the forward action"
                        )));
                    }
                    groups.push(arn);
                }
                let mut stickiness = a
                    .forward_config
                    .as_ref()
                    .and_then(|f| f.target_group_stickiness_config.clone())
                    .unwrap_or(TargetGroupStickinessConfig {
                        enabled: Some(false),
                        duration_seconds: None,
                    });
                if stickiness.enabled == Some(true) {
                    let d = stickiness.duration_seconds.ok_or_else(|| {
                        validation(
                            "A duration must be given when target group stickiness is enabled",
                        )
                    })?;
                    if !(1..=604_800).contains(&d) {
                        return Err(validation(
                            "Target group stickiness duration must be between 1 and 604800 seconds",
                        ));
                    }
                } else {
                    stickiness.enabled = Some(false);
                }
                a.target_group_arn = (tuples.len() == 1)
                    .then(|| tuples[0].target_group_arn.clone())
                    .flatten();
                a.forward_config = Some(ForwardActionConfig {
                    target_groups: Some(tuples),
                    target_group_stickiness_config: Some(stickiness),
                });
            }
            ActionTypeEnum::Redirect => {
                let r = a.redirect_config.as_mut().ok_or_else(|| {
                    validation("A redirect configuration must be specified for a redirect action")
                })?;
                check_redirect(r)?;
            }
            ActionTypeEnum::FixedResponse => {
                let f = a.fixed_response_config.as_mut().ok_or_else(|| {
                    validation(
                        "A fixed response configuration must be specified for a fixed-response action",
                    )
                })?;
                check_fixed(f)?;
            }
            other => {
                return Err(validation(format!(
                    "Action type '{}' is not supported by Berth yet",
                    other.as_str()
                )));
            }
        }
        if i + 1 < n {
            return Err(validation(
                "A rule can have only one forward, redirect or fixed-response action, and it must be the last",
            ));
        }
    }
    Ok(groups)
}

fn check_redirect(r: &mut RedirectActionConfig) -> ApiResult<()> {
    for (default, v) in [
        ("#{protocol}", &mut r.protocol),
        ("#{host}", &mut r.host),
        ("/#{path}", &mut r.path),
        ("#{query}", &mut r.query),
        ("#{port}", &mut r.port),
    ] {
        if v.is_none() {
            *v = Some(default.to_string());
        }
    }
    let protocol = r.protocol.as_deref().unwrap_or_default();
    if !["#{protocol}", "HTTP", "HTTPS"].contains(&protocol) {
        return Err(validation(format!(
            "Redirect protocol '{protocol}' must be HTTP, HTTPS or #{{protocol}}"
        )));
    }
    let path = r.path.as_deref().unwrap_or_default();
    if !path.starts_with('/') && !path.starts_with("#{") {
        return Err(validation("Redirect path must start with '/'"));
    }
    let unchanged = r.protocol.as_deref() == Some("#{protocol}")
        && r.host.as_deref() == Some("#{host}")
        && r.port.as_deref() == Some("#{port}")
        && r.path.as_deref() == Some("/#{path}")
        && r.query.as_deref() == Some("#{query}");
    if unchanged {
        return Err(validation(
            "A redirect must change at least one of protocol, host, port, path or query, or it would loop",
        ));
    }
    Ok(())
}

fn check_fixed(f: &mut FixedResponseActionConfig) -> ApiResult<()> {
    let code = f.status_code.as_str();
    let ok = code.len() == 3
        && code.chars().all(|c| c.is_ascii_digit())
        && matches!(code.as_bytes()[0], b'2' | b'4' | b'5');
    if !ok {
        return Err(validation(format!(
            "Fixed response status code '{code}' must be a 2XX, 4XX or 5XX code"
        )));
    }
    if let Some(t) = &f.content_type {
        if !CONTENT_TYPES.contains(&t.as_str()) {
            return Err(validation(format!(
                "Fixed response content type '{t}' must be one of {}",
                CONTENT_TYPES.join(", ")
            )));
        }
    }
    if f.message_body.as_deref().unwrap_or("").len() > 1024 {
        return Err(validation(
            "Fixed response message body can be at most 1024 characters",
        ));
    }
    Ok(())
}

/// Check `conditions` and give them back as ALB describes them: `Values`
/// of `path-pattern` and `host-header` also in their config.
pub fn normalise_conditions(conditions: &mut [RuleCondition]) -> ApiResult<()> {
    if conditions.is_empty() {
        return Err(validation("A rule must have at least one condition"));
    }
    let mut values_total = 0;
    let mut once = std::collections::BTreeSet::new();
    for c in conditions.iter_mut() {
        let field = c
            .field
            .clone()
            .ok_or_else(|| validation("A condition must have a field"))?;
        let values = read_condition(c)?;
        let count = match &values {
            routes::Condition::PathPattern(v)
            | routes::Condition::HostHeader(v)
            | routes::Condition::HttpRequestMethod(v) => v.len(),
            routes::Condition::HttpHeader { values, .. } => values.len(),
            routes::Condition::QueryString(v) => v.len(),
            routes::Condition::SourceIp(v) => v.len(),
        };
        if count == 0 {
            return Err(validation(format!(
                "A '{field}' condition must have at least one value"
            )));
        }
        values_total += count;
        if [
            "path-pattern",
            "host-header",
            "http-request-method",
            "source-ip",
        ]
        .contains(&field.as_str())
            && !once.insert(field.clone())
        {
            return Err(validation(format!(
                "A rule can have only one '{field}' condition"
            )));
        }
        match values {
            routes::Condition::PathPattern(v) => {
                c.values = Some(v.clone());
                c.path_pattern_config = Some(PathPatternConditionConfig {
                    values: Some(v),
                    regex_values: None,
                });
            }
            routes::Condition::HostHeader(v) => {
                c.values = Some(v.clone());
                c.host_header_config = Some(HostHeaderConditionConfig {
                    values: Some(v),
                    regex_values: None,
                });
            }
            _ => {}
        }
    }
    if values_total > MAX_CONDITION_VALUES {
        return Err(validation(format!(
            "A rule can have at most {MAX_CONDITION_VALUES} condition values, but this one has {values_total}"
        )));
    }
    Ok(())
}

/// A condition as the data plane evaluates it; `ValidationError` when it
/// is malformed.
pub fn read_condition(c: &RuleCondition) -> ApiResult<routes::Condition> {
    let field = c.field.as_deref().unwrap_or("");
    let plain = c.values.clone().unwrap_or_default();
    let pick = |config: Option<Vec<String>>| -> Vec<String> {
        match config {
            Some(v) if !v.is_empty() => v,
            _ => plain.clone(),
        }
    };
    let too_long = |v: &[String], max: usize| v.iter().any(|s| s.is_empty() || s.len() > max);
    Ok(match field {
        "path-pattern" => {
            let v = pick(c.path_pattern_config.as_ref().and_then(|p| p.values.clone()));
            if too_long(&v, 128) {
                return Err(validation(
                    "Path pattern values must be 1 to 128 characters",
                ));
            }
            routes::Condition::PathPattern(v)
        }
        "host-header" => {
            let v = pick(c.host_header_config.as_ref().and_then(|p| p.values.clone()));
            if too_long(&v, 128) {
                return Err(validation("Host header values must be 1 to 128 characters"));
            }
            routes::Condition::HostHeader(v)
        }
        "http-header" => {
            let h = c.http_header_config.as_ref().ok_or_else(|| {
                validation("An 'http-header' condition must have an HttpHeaderConfig")
            })?;
            let name = h.http_header_name.clone().unwrap_or_default();
            let token = |s: &str| {
                !s.is_empty()
                    && s.len() <= 40
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_!#$%&'*+.^`|~".contains(c))
            };
            if !token(&name) {
                return Err(validation(format!(
                    "HTTP header name '{name}' is not valid"
                )));
            }
            let values = h.values.clone().unwrap_or_default();
            if too_long(&values, 128) {
                return Err(validation("HTTP header values must be 1 to 128 characters"));
            }
            routes::Condition::HttpHeader { name, values }
        }
        "http-request-method" => {
            let v = pick(
                c.http_request_method_config
                    .as_ref()
                    .and_then(|p| p.values.clone()),
            );
            if v.iter().any(|m| {
                m.is_empty()
                    || m.len() > 40
                    || !m.chars().all(|c| c.is_ascii_uppercase() || c == '-' || c == '_')
            }) {
                return Err(validation(
                    "HTTP request methods must be upper-case letters, hyphens or underscores, up to 40 characters",
                ));
            }
            routes::Condition::HttpRequestMethod(v)
        }
        "query-string" => {
            let pairs = c
                .query_string_config
                .as_ref()
                .and_then(|q| q.values.clone())
                .unwrap_or_default();
            let mut out = Vec::new();
            for p in pairs {
                let value = p.value.clone().unwrap_or_default();
                if value.is_empty() || value.len() > 128 {
                    return Err(validation(
                        "Query string values must be 1 to 128 characters",
                    ));
                }
                out.push((p.key.clone().filter(|k| !k.is_empty()), value));
            }
            routes::Condition::QueryString(out)
        }
        "source-ip" => {
            let v = pick(c.source_ip_config.as_ref().and_then(|p| p.values.clone()));
            let nets = v
                .iter()
                .map(|s| {
                    Cidr::parse(s).ok_or_else(|| {
                        validation(format!("'{s}' is not a valid CIDR block"))
                    })
                })
                .collect::<ApiResult<Vec<_>>>()?;
            routes::Condition::SourceIp(nets)
        }
        other => {
            return Err(validation(format!(
                "Condition field '{other}' must be one of path-pattern, host-header, http-header, http-request-method, query-string, source-ip"
            )))
        }
    })
}

/// The action the data plane takes: the last (terminal) one. Stickiness
/// durations come from the action; the groups' own settings from the
/// table.
pub fn read_action(actions: &[Action]) -> routes::Action {
    let fixed_503 = || {
        routes::Action::FixedResponse(routes::FixedResponse {
            status: 503,
            content_type: None,
            body: None,
        })
    };
    let Some(a) = actions.iter().max_by_key(|a| a.order.unwrap_or(0)) else {
        return fixed_503();
    };
    match a.r#type {
        ActionTypeEnum::Forward => {
            let f = a.forward_config.clone().unwrap_or_default();
            let groups = f
                .target_groups
                .unwrap_or_default()
                .into_iter()
                .filter_map(|t| Some((t.target_group_arn?, t.weight.unwrap_or(1) as u32)))
                .collect();
            let sticky = f
                .target_group_stickiness_config
                .filter(|s| s.enabled == Some(true))
                .and_then(|s| s.duration_seconds)
                .map(|d| d as u64);
            routes::Action::Forward(routes::Forward {
                groups,
                group_stickiness_secs: sticky,
            })
        }
        ActionTypeEnum::Redirect => {
            let r = a.redirect_config.clone().unwrap_or_default();
            routes::Action::Redirect(routes::Redirect {
                protocol: r.protocol.unwrap_or_else(|| "#{protocol}".into()),
                host: r.host.unwrap_or_else(|| "#{host}".into()),
                port: r.port.unwrap_or_else(|| "#{port}".into()),
                path: r.path.unwrap_or_else(|| "/#{path}".into()),
                query: r.query.unwrap_or_else(|| "#{query}".into()),
                status: match r.status_code {
                    RedirectActionStatusCodeEnum::Http301 => 301,
                    RedirectActionStatusCodeEnum::Http302 => 302,
                },
            })
        }
        ActionTypeEnum::FixedResponse => {
            let f = a.fixed_response_config.clone().unwrap_or_default();
            routes::Action::FixedResponse(routes::FixedResponse {
                status: f.status_code.parse().unwrap_or(503),
                content_type: f.content_type,
                body: f.message_body,
            })
        }
        _ => fixed_503(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elb::shapes::{
        HttpHeaderConditionConfig, QueryStringConditionConfig, QueryStringKeyValuePair,
    };

    fn forward(arn: &str) -> Action {
        Action {
            r#type: ActionTypeEnum::Forward,
            target_group_arn: Some(arn.into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_forward_to_one_group_is_described_both_ways() {
        let mut a = vec![forward("tg-a")];
        assert_eq!(normalise_actions(&mut a).unwrap(), vec!["tg-a"]);
        let f = a[0].forward_config.clone().unwrap();
        assert_eq!(f.target_groups.unwrap()[0].weight, Some(1));
        assert_eq!(a[0].order, Some(1));
        assert_eq!(
            f.target_group_stickiness_config.unwrap().enabled,
            Some(false)
        );
    }

    #[test]
    fn weights_and_groups_are_bounded() {
        let tuples = |w: i64| Action {
            r#type: ActionTypeEnum::Forward,
            forward_config: Some(ForwardActionConfig {
                target_groups: Some(vec![
                    TargetGroupTuple {
                        target_group_arn: Some("a".into()),
                        weight: Some(w),
                    },
                    TargetGroupTuple {
                        target_group_arn: Some("b".into()),
                        weight: Some(1),
                    },
                ]),
                target_group_stickiness_config: None,
            }),
            ..Default::default()
        };
        assert!(normalise_actions(&mut [tuples(1000)]).is_err());
        let mut ok = [tuples(3)];
        assert_eq!(normalise_actions(&mut ok).unwrap(), vec!["a", "b"]);
        assert_eq!(ok[0].target_group_arn, None);
        match read_action(&ok) {
            routes::Action::Forward(f) => {
                assert_eq!(f.groups, vec![("a".to_string(), 3), ("b".to_string(), 1)])
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn malformed_actions_are_refused() {
        let fixed = |code: &str, ct: Option<&str>| Action {
            r#type: ActionTypeEnum::FixedResponse,
            fixed_response_config: Some(FixedResponseActionConfig {
                status_code: code.into(),
                content_type: ct.map(String::from),
                message_body: None,
            }),
            ..Default::default()
        };
        assert!(normalise_actions(&mut [fixed("200", Some("text/plain"))]).is_ok());
        assert!(normalise_actions(&mut [fixed("302", None)]).is_err());
        assert!(normalise_actions(&mut [fixed("200", Some("image/png"))]).is_err());
        assert!(normalise_actions(&mut [forward("a"), forward("b")]).is_err());
        let mut loop_redirect = [Action {
            r#type: ActionTypeEnum::Redirect,
            redirect_config: Some(RedirectActionConfig::default()),
            ..Default::default()
        }];
        assert!(normalise_actions(&mut loop_redirect).is_err());
        let mut to_https = [Action {
            r#type: ActionTypeEnum::Redirect,
            redirect_config: Some(RedirectActionConfig {
                protocol: Some("HTTPS".into()),
                port: Some("443".into()),
                ..Default::default()
            }),
            ..Default::default()
        }];
        assert!(normalise_actions(&mut to_https).is_ok());
        match read_action(&to_https) {
            routes::Action::Redirect(r) => {
                assert_eq!(
                    (r.protocol.as_str(), r.port.as_str(), r.status),
                    ("HTTPS", "443", 301)
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn conditions_are_checked_and_read() {
        let cond = |field: &str, values: &[&str]| RuleCondition {
            field: Some(field.into()),
            values: Some(values.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        };
        let mut ok = vec![cond("path-pattern", &["/api/*"])];
        normalise_conditions(&mut ok).unwrap();
        assert_eq!(
            ok[0].path_pattern_config.as_ref().unwrap().values,
            Some(vec!["/api/*".to_string()])
        );
        assert!(normalise_conditions(&mut [cond(
            "path-pattern",
            &["/a", "/b", "/c", "/d", "/e", "/f"]
        )])
        .is_err());
        assert!(normalise_conditions(&mut [cond("cookie", &["x"])]).is_err());
        assert!(normalise_conditions(&mut [cond("source-ip", &["10.0.0.0/40"])]).is_err());
        assert!(normalise_conditions(&mut [cond("http-request-method", &["get"])]).is_err());
        assert!(normalise_conditions(&mut [
            cond("path-pattern", &["/a"]),
            cond("path-pattern", &["/b"])
        ])
        .is_err());
        assert!(normalise_conditions(&mut []).is_err());
        let header = RuleCondition {
            field: Some("http-header".into()),
            http_header_config: Some(HttpHeaderConditionConfig {
                http_header_name: Some("X-Env".into()),
                values: Some(vec!["blue".into()]),
                regex_values: None,
            }),
            ..Default::default()
        };
        assert_eq!(
            read_condition(&header).unwrap(),
            routes::Condition::HttpHeader {
                name: "X-Env".into(),
                values: vec!["blue".into()]
            }
        );
        let query = RuleCondition {
            field: Some("query-string".into()),
            query_string_config: Some(QueryStringConditionConfig {
                values: Some(vec![QueryStringKeyValuePair {
                    key: None,
                    value: Some("x".into()),
                }]),
            }),
            ..Default::default()
        };
        assert_eq!(
            read_condition(&query).unwrap(),
            routes::Condition::QueryString(vec![(None, "x".into())])
        );
    }
}
