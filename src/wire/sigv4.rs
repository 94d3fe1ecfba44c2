//! AWS Signature Version 4: the canonical request, the signing key, and both
//! directions — verifying what a client sent (the server) and signing what
//! Berth sends (the CLI and the benchmark's load generator).
//!
//! Verification recomputes the signature from the request as received: the
//! method, the raw path, the query, exactly the headers the client named in
//! `SignedHeaders`, and the hash of the body; then compares in constant time.

use chrono::{DateTime, NaiveDateTime, Utc};
use hmac::{Hmac, Mac};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// How far `X-Amz-Date` may be from the server's clock.
pub const MAX_SKEW_SECONDS: i64 = 15 * 60;

/// Characters SigV4 leaves unencoded: A-Z a-z 0-9 - _ . ~
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

pub fn uri_encode(s: &str) -> String {
    utf8_percent_encode(s, UNRESERVED).to_string()
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// The derived key for one day, region and service.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

/// The canonical URI: each path segment decoded then encoded once, as every
/// service but S3 canonicalises it.
pub fn canonical_uri(raw_path: &str) -> String {
    if raw_path.is_empty() {
        return "/".into();
    }
    raw_path
        .split('/')
        .map(|seg| uri_encode(&percent_decode_str(seg).decode_utf8_lossy()))
        .collect::<Vec<_>>()
        .join("/")
}

/// The canonical query string: pairs encoded, sorted by name then value.
pub fn canonical_query(raw_query: &str) -> String {
    let mut pairs: Vec<(String, String)> = raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let dec = |s: &str| {
                percent_decode_str(&s.replace('+', "%20"))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (uri_encode(&dec(k)), uri_encode(&dec(v)))
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn canonical_header_value(values: &[&str]) -> String {
    values
        .iter()
        .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join(",")
}

/// Everything of a request that the signature covers.
pub struct RequestParts<'a> {
    pub method: &'a str,
    pub raw_path: &'a str,
    pub raw_query: &'a str,
    /// (lower-case name, value) for every header received.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

pub fn canonical_request(req: &RequestParts<'_>, signed_headers: &[&str]) -> String {
    let mut out = String::with_capacity(256);
    out.push_str(req.method);
    out.push('\n');
    out.push_str(&canonical_uri(req.raw_path));
    out.push('\n');
    out.push_str(&canonical_query(req.raw_query));
    out.push('\n');
    for name in signed_headers {
        let values: Vec<&str> = req
            .headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect();
        out.push_str(name);
        out.push(':');
        out.push_str(&canonical_header_value(&values));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&signed_headers.join(";"));
    out.push('\n');
    out.push_str(&sha256_hex(req.body));
    out
}

pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

/// The parsed `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub access_key: String,
    pub date: String,
    pub region: String,
    pub service: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

impl Authorization {
    pub fn scope(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.date, self.region, self.service
        )
    }
}

/// Why a request's signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    /// No `Authorization` header (or not a SigV4 one).
    Missing,
    /// The header is there but cannot be parsed.
    Malformed(String),
    UnknownKey(String),
    BadSignature,
    Expired {
        request_time: String,
        now: String,
    },
    /// Signed for another service than the one called (its signing name).
    WrongService(String),
    /// Temporary credentials without their session token (or with
    /// another), or long-term keys with one.
    InvalidToken,
    /// Temporary credentials past their expiry.
    ExpiredToken,
}

pub fn parse_authorization(header: &str) -> Result<Authorization, AuthFailure> {
    let rest = header
        .strip_prefix(ALGORITHM)
        .ok_or(AuthFailure::Missing)?
        .trim();
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let malformed = |what: &str| {
        AuthFailure::Malformed(format!("Authorization header requires '{what}' parameter."))
    };
    let credential = credential.ok_or_else(|| malformed("Credential"))?;
    let signed = signed.ok_or_else(|| malformed("SignedHeaders"))?;
    let signature = signature.ok_or_else(|| malformed("Signature"))?;
    let parts: Vec<&str> = credential.split('/').collect();
    if parts.len() != 5 || parts[4] != "aws4_request" {
        return Err(AuthFailure::Malformed(format!(
            "Credential should be scoped to a valid region, not '{credential}'."
        )));
    }
    Ok(Authorization {
        access_key: parts[0].to_string(),
        date: parts[1].to_string(),
        region: parts[2].to_string(),
        service: parts[3].to_string(),
        signed_headers: signed.split(';').map(|s| s.to_ascii_lowercase()).collect(),
        signature: signature.to_ascii_lowercase(),
    })
}

pub fn parse_amz_date(s: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(s, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|n| n.and_utc())
}

pub fn format_amz_date(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// Verify a received request. `secret_for` looks up the secret of an access
/// key. Returns the parsed authorization on success.
pub fn verify(
    req: &RequestParts<'_>,
    now: DateTime<Utc>,
    secret_for: impl Fn(&str) -> Option<String>,
) -> Result<Authorization, AuthFailure> {
    let header = |name: &str| {
        req.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let auth = parse_authorization(header("authorization").ok_or(AuthFailure::Missing)?)?;
    let amz_date = header("x-amz-date").ok_or_else(|| {
        AuthFailure::Malformed(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
                .into(),
        )
    })?;
    let Some(secret) = secret_for(&auth.access_key) else {
        return Err(AuthFailure::UnknownKey(auth.access_key));
    };
    let request_time = parse_amz_date(amz_date)
        .ok_or_else(|| AuthFailure::Malformed(format!("Invalid X-Amz-Date '{amz_date}'.")))?;
    if (now - request_time).num_seconds().abs() > MAX_SKEW_SECONDS {
        return Err(AuthFailure::Expired {
            request_time: amz_date.to_string(),
            now: format_amz_date(now),
        });
    }
    if !auth.signed_headers.iter().any(|h| h == "host") {
        return Err(AuthFailure::BadSignature);
    }
    let signed: Vec<&str> = auth.signed_headers.iter().map(String::as_str).collect();
    let creq = canonical_request(req, &signed);
    let sts = string_to_sign(amz_date, &auth.scope(), &creq);
    let key = signing_key(&secret, &auth.date, &auth.region, &auth.service);
    let expected = hex::encode(hmac(&key, sts.as_bytes()));
    if expected.as_bytes().ct_eq(auth.signature.as_bytes()).into() {
        Ok(auth)
    } else {
        Err(AuthFailure::BadSignature)
    }
}

/// Credentials and scope for signing an outgoing request.
#[derive(Debug, Clone)]
pub struct Signer {
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
    pub service: String,
}

impl Signer {
    /// Sign a request. `headers` must already hold `host` and any others to
    /// sign; returns the `x-amz-date` and `authorization` headers to add.
    pub fn sign(
        &self,
        method: &str,
        raw_path: &str,
        raw_query: &str,
        headers: &[(String, String)],
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Vec<(String, String)> {
        let amz_date = format_amz_date(now);
        let date = &amz_date[..8];
        let mut all: Vec<(String, String)> = headers
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
            .collect();
        all.push(("x-amz-date".into(), amz_date.clone()));
        let mut names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
        names.sort();
        names.dedup();
        let parts = RequestParts {
            method,
            raw_path,
            raw_query,
            headers: &all,
            body,
        };
        let creq = canonical_request(&parts, &names);
        let scope = format!("{date}/{}/{}/aws4_request", self.region, self.service);
        let sts = string_to_sign(&amz_date, &scope, &creq);
        let key = signing_key(&self.secret_key, date, &self.region, &self.service);
        let signature = hex::encode(hmac(&key, sts.as_bytes()));
        let authorization = format!(
            "{ALGORITHM} Credential={}/{scope}, SignedHeaders={}, Signature={signature}",
            self.access_key,
            names.join(";")
        );
        vec![
            ("x-amz-date".into(), amz_date),
            ("authorization".into(), authorization),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The "get-vanilla" case of the AWS SigV4 test suite.
    #[test]
    fn aws_test_suite_get_vanilla() {
        let headers = vec![
            ("host".to_string(), "example.amazonaws.com".to_string()),
            ("x-amz-date".to_string(), "20150830T123600Z".to_string()),
        ];
        let parts = RequestParts {
            method: "GET",
            raw_path: "/",
            raw_query: "",
            headers: &headers,
            body: b"",
        };
        let creq = canonical_request(&parts, &["host", "x-amz-date"]);
        assert_eq!(
            creq,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let sts = string_to_sign(
            "20150830T123600Z",
            "20150830/us-east-1/service/aws4_request",
            &creq,
        );
        let key = signing_key(
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "20150830",
            "us-east-1",
            "service",
        );
        assert_eq!(
            hex::encode(hmac(&key, sts.as_bytes())),
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    #[test]
    fn sign_then_verify_round_trip_and_tamper() {
        let signer = Signer {
            access_key: "test".into(),
            secret_key: "secret".into(),
            region: "us-east-1".into(),
            service: "ecs".into(),
        };
        let now = Utc::now();
        let mut headers = vec![
            ("host".to_string(), "127.0.0.1:4566".to_string()),
            (
                "content-type".to_string(),
                "application/x-amz-json-1.1".to_string(),
            ),
        ];
        let body = br#"{"clusterName":"a"}"#;
        headers.extend(signer.sign("POST", "/", "", &headers, body, now));
        let lookup = |k: &str| (k == "test").then(|| "secret".to_string());
        let parts = |body: &'static [u8], headers: &'static [(String, String)]| RequestParts {
            method: "POST",
            raw_path: "/",
            raw_query: "",
            headers,
            body,
        };
        let headers: &'static [(String, String)] = Box::leak(headers.into_boxed_slice());
        assert!(verify(&parts(body, headers), now, lookup).is_ok());
        assert_eq!(
            verify(&parts(br#"{"clusterName":"b"}"#, headers), now, lookup),
            Err(AuthFailure::BadSignature)
        );
        let later = now + chrono::Duration::minutes(16);
        assert!(matches!(
            verify(&parts(body, headers), later, lookup),
            Err(AuthFailure::Expired { .. })
        ));
        let nobody = |_: &str| None;
        assert!(matches!(
            verify(&parts(body, headers), now, nobody),
            Err(AuthFailure::UnknownKey(_))
        ));
    }

    #[test]
    fn query_is_sorted_and_encoded() {
        assert_eq!(canonical_query("b=2&a=x y&a=1"), "a=1&a=x%20y&b=2");
        assert_eq!(canonical_uri("/a b/c"), "/a%20b/c");
    }
}
