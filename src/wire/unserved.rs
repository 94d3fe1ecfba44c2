//! What Berth does not serve, said clearly: a request for an AWS service
//! or operation Berth has no handler for gets one answer, in that service's
//! own error shape, naming the service and the operation.
//!
//! `models/aws-services.json` (written by `scripts/vendor-models` from
//! botocore) indexes every AWS service: its name, signing name, protocol and
//! JSON target prefix, and for the REST services ECS users reach for most
//! (S3, Lambda, API Gateway, EKS, EFS, …) the route of each operation, so
//! that a REST request can be named too.

use std::sync::OnceLock;

use serde::Deserialize;

use crate::error::ApiError;

/// An AWS service as botocore describes it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AwsService {
    /// Its name (`S3`, `Lambda`, `SSM`).
    pub id: String,
    pub signing_name: String,
    /// botocore's protocol name: `json`, `query`, `ec2`, `rest-json`,
    /// `rest-xml`, `smithy-rpc-v2-cbor`.
    pub protocol: Option<String>,
    pub target_prefix: Option<String>,
    /// (method, request URI template, operation).
    #[serde(default)]
    pub routes: Vec<(String, String, String)>,
}

#[derive(Deserialize)]
struct Index {
    services: Vec<AwsService>,
}

fn index() -> &'static [AwsService] {
    static INDEX: OnceLock<Index> = OnceLock::new();
    &INDEX
        .get_or_init(|| {
            serde_json::from_str(include_str!("../../models/aws-services.json"))
                .expect("the vendored service index parses")
        })
        .services
}

/// The service whose JSON target prefix is `prefix`.
pub fn by_target_prefix(prefix: &str) -> Option<&'static AwsService> {
    index()
        .iter()
        .find(|s| s.target_prefix.as_deref() == Some(prefix))
}

/// The service a SigV4 credential scope names. Several share some signing
/// names (`execute-api`); the first that has routes wins, so a route can
/// name the operation.
pub fn by_signing_name(name: &str) -> Option<&'static AwsService> {
    let mut matching = index().iter().filter(|s| s.signing_name == name);
    let first = matching.next()?;
    Some(
        std::iter::once(first)
            .chain(matching)
            .find(|s| !s.routes.is_empty())
            .unwrap_or(first),
    )
}

/// The REST operation a request is, by its method, path and query: the
/// route whose template matches with the most literal parts.
pub fn rest_operation(
    service: &'static AwsService,
    method: &str,
    path: &str,
    query: &str,
) -> Option<&'static str> {
    let path_segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let query_keys: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').map_or(p, |(k, _)| k))
        .collect();
    service
        .routes
        .iter()
        .filter(|(m, _, _)| m.eq_ignore_ascii_case(method))
        .filter_map(|(_, template, op)| {
            route_score(template, &path_segments, &query_keys).map(|s| (s, op.as_str()))
        })
        // Ties (routes that differ only in headers or query members) go to
        // the plainest name: PutObject before CopyObject and UploadPart.
        .min_by_key(|(score, op)| (std::cmp::Reverse(*score), op.len(), *op))
        .map(|(_, op)| op)
}

/// How well a request URI template (`/{Bucket}/{Key+}?uploads`) matches a
/// path and query keys: `None` when it does not, else the number of literal
/// parts it matched.
fn route_score(template: &str, path: &[&str], query_keys: &[&str]) -> Option<usize> {
    let (tpath, tquery) = template.split_once('?').unwrap_or((template, ""));
    let tsegs: Vec<&str> = tpath.trim_start_matches('/').split('/').collect();
    let mut score = 0;
    let mut i = 0;
    for (n, t) in tsegs.iter().enumerate() {
        if t.starts_with('{') && t.ends_with("+}") {
            // Greedy: the rest of the path, at least one segment.
            if i >= path.len() || n != tsegs.len() - 1 {
                return None;
            }
            i = path.len();
            continue;
        }
        let seg = *path.get(i)?;
        if t.starts_with('{') && t.ends_with('}') {
            if seg.is_empty() {
                return None;
            }
        } else if *t != seg {
            return None;
        } else if !t.is_empty() {
            score += 2;
        }
        i += 1;
    }
    // A trailing slash is the same path.
    if i != path.len() && !(i + 1 == path.len() && path[i].is_empty()) {
        return None;
    }
    for q in tquery.split('&').filter(|q| !q.is_empty()) {
        let key = q.split_once('=').map_or(q, |(k, _)| k);
        if !query_keys.contains(&key) {
            return None;
        }
        score += 3;
    }
    Some(score)
}

/// The answer to a request for a service Berth does not serve. `served`
/// lists what it serves.
pub fn service(service: &str, operation: Option<&str>, served: &str) -> ApiError {
    let what = match operation {
        Some(op) => format!("the {service} operation {op}"),
        None => service.to_string(),
    };
    ApiError::new(
        "UnknownOperationException",
        format!("Berth does not serve {what}; it serves {served} (`berth doctor` lists them)."),
    )
}

/// The answer to an operation of a served service that Berth has no
/// handler for.
pub fn operation(service: &str, operation: &str) -> ApiError {
    ApiError::unknown_operation(format!(
        "Berth does not serve the {service} operation {operation} yet (`berth doctor` lists the operations it serves)."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_by_prefix_and_signing_name() {
        assert_eq!(by_target_prefix("AmazonSSM").unwrap().id, "SSM");
        assert_eq!(by_signing_name("iam").unwrap().id, "IAM");
        let s3 = by_signing_name("s3").unwrap();
        assert_eq!(
            (s3.id.as_str(), s3.protocol.as_deref()),
            ("S3", Some("rest-xml"))
        );
        assert!(by_signing_name("no-such-service").is_none());
    }

    #[test]
    fn rest_requests_are_named_by_their_route() {
        let s3 = by_signing_name("s3").unwrap();
        assert_eq!(rest_operation(s3, "GET", "/", ""), Some("ListBuckets"));
        assert_eq!(
            rest_operation(s3, "PUT", "/my-bucket", ""),
            Some("CreateBucket")
        );
        assert_eq!(
            rest_operation(s3, "PUT", "/my-bucket", "acl"),
            Some("PutBucketAcl")
        );
        assert_eq!(
            rest_operation(s3, "GET", "/b/some/key.txt", ""),
            Some("GetObject")
        );
        assert_eq!(
            rest_operation(s3, "GET", "/b", "list-type=2&prefix=x"),
            Some("ListObjectsV2")
        );
        let lambda = by_signing_name("lambda").unwrap();
        assert_eq!(
            rest_operation(lambda, "GET", "/2015-03-31/functions/fn", ""),
            Some("GetFunction")
        );
        assert_eq!(rest_operation(lambda, "GET", "/nowhere/at/all", ""), None);
    }

    #[test]
    fn answers_name_service_and_operation() {
        let e = service("S3", Some("CreateBucket"), "ECS, EC2 (subset)");
        assert_eq!(e.code, "UnknownOperationException");
        assert!(e.message.starts_with(
            "Berth does not serve the S3 operation CreateBucket; it serves ECS, EC2 (subset)"
        ));
        let e = operation("ECS", "CreateService");
        assert_eq!(
            (e.code.as_str(), e.status),
            ("UnknownOperationException", 400)
        );
        assert!(e.message.contains("ECS operation CreateService"));
    }
}
