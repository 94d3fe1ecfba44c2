//! The client side of `berth` subcommands that talk to a running server.
//! It finds the server and credentials as the aws CLI does: `--endpoint-url`
//! (or `AWS_ENDPOINT_URL`), `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`,
//! `AWS_REGION` / `AWS_DEFAULT_REGION`, and signs each call with SigV4.

use bytes::Bytes;
use chrono::Utc;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::wire::sigv4::Signer;

pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:4566";

/// An error the server answered with, or why no answer came.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{code}: {message}")]
    Api { code: String, message: String },
    #[error("cannot reach Berth at {endpoint}: {detail} (is `berth server` running? see --endpoint-url)")]
    Unreachable { endpoint: String, detail: String },
}

pub struct Client {
    endpoint: url::Url,
    signer: Signer,
    /// Where the region came from, for messages.
    region_source: &'static str,
    http: HttpClient<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
}

fn env(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
}

impl Client {
    /// A client for `endpoint` (else `AWS_ENDPOINT_URL`, else the default)
    /// with the credentials and region of the environment (else Berth's
    /// built-in test key and us-east-1).
    pub fn from_env(endpoint: Option<&str>, region: Option<&str>) -> anyhow::Result<Client> {
        let raw = endpoint
            .map(str::to_string)
            .or_else(|| env(&["AWS_ENDPOINT_URL_ECS", "AWS_ENDPOINT_URL"]))
            .unwrap_or_else(|| DEFAULT_ENDPOINT.into());
        let endpoint = url::Url::parse(&raw)
            .map_err(|e| anyhow::anyhow!("--endpoint-url {raw:?} is not a URL: {e}"))?;
        if endpoint.scheme() != "http" {
            anyhow::bail!("--endpoint-url must be an http:// URL (got {raw})");
        }
        let (region, region_source) = match (region, env(&["AWS_REGION", "AWS_DEFAULT_REGION"])) {
            (Some(r), _) => (r.to_string(), "from --region"),
            (None, Some(r)) => (r, "from $AWS_REGION or $AWS_DEFAULT_REGION"),
            (None, None) => (
                "us-east-1".to_string(),
                "the default: no --region, $AWS_REGION or $AWS_DEFAULT_REGION",
            ),
        };
        let signer = Signer {
            access_key: env(&["AWS_ACCESS_KEY_ID"]).unwrap_or_else(|| "test".into()),
            secret_key: env(&["AWS_SECRET_ACCESS_KEY"]).unwrap_or_else(|| "test".into()),
            region,
            service: "ecs".into(),
        };
        let http = HttpClient::builder(TokioExecutor::new()).build_http();
        Ok(Client {
            endpoint,
            signer,
            region_source,
            http,
        })
    }

    /// The region calls are signed for.
    pub fn region(&self) -> &str {
        &self.signer.region
    }

    /// Where that region came from (for messages).
    pub fn region_source(&self) -> &'static str {
        self.region_source
    }

    /// The server's URL.
    pub fn endpoint(&self) -> &str {
        self.endpoint.as_str()
    }

    /// Call `target` (`Prefix.Operation`) with a JSON 1.1 body.
    pub async fn call(&self, target: &str, body: &Value) -> Result<Value, ClientError> {
        self.call_service("ecs", target, body).await
    }

    /// Call a JSON 1.1 service other than ECS (signed for `service`).
    pub async fn call_service(
        &self,
        service: &str,
        target: &str,
        body: &Value,
    ) -> Result<Value, ClientError> {
        let (status, bytes) = self
            .send(
                service,
                "application/x-amz-json-1.1",
                Some(target),
                body.to_string().into_bytes(),
            )
            .await?;
        let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(v);
        }
        let code = v
            .get("__type")
            .and_then(Value::as_str)
            .map(|t| t.rsplit('#').next().unwrap_or(t).to_string())
            .unwrap_or_else(|| status.to_string());
        let message = v
            .get("message")
            .or(v.get("Message"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        Err(ClientError::Api { code, message })
    }

    /// Call a Query-protocol service (signed for `service`): `Action` of
    /// `version` with `params`; the answer's `<ActionResult>` as JSON
    /// (elements as objects, `member` lists as arrays, text as strings).
    pub async fn call_query(
        &self,
        service: &str,
        version: &str,
        action: &str,
        params: &[(&str, &str)],
    ) -> Result<Value, ClientError> {
        let enc = |s: &str| {
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        let mut body = format!("Action={}&Version={}", enc(action), enc(version));
        for (k, v) in params {
            body.push_str(&format!("&{}={}", enc(k), enc(v)));
        }
        let (status, bytes) = self
            .send(
                service,
                "application/x-www-form-urlencoded; charset=utf-8",
                None,
                body.into_bytes(),
            )
            .await?;
        let v = xml_to_json(&String::from_utf8_lossy(&bytes));
        if status.is_success() {
            let result = format!("{action}Result");
            return Ok(v
                .get(format!("{action}Response"))
                .and_then(|r| r.get(&result))
                .cloned()
                .unwrap_or(Value::Null));
        }
        let err = &v["ErrorResponse"]["Error"];
        Err(ClientError::Api {
            code: err["Code"]
                .as_str()
                .map_or_else(|| status.to_string(), str::to_string),
            message: err["Message"].as_str().unwrap_or_default().to_string(),
        })
    }

    /// POST a signed body; the status and the answer's bytes.
    async fn send(
        &self,
        service: &str,
        content_type: &str,
        target: Option<&str>,
        body: Vec<u8>,
    ) -> Result<(hyper::StatusCode, Bytes), ClientError> {
        let unreachable = |detail: String| ClientError::Unreachable {
            endpoint: self.endpoint.to_string(),
            detail,
        };
        let host = match self.endpoint.port() {
            Some(p) => format!("{}:{p}", self.endpoint.host_str().unwrap_or_default()),
            None => self.endpoint.host_str().unwrap_or_default().to_string(),
        };
        let mut headers = vec![
            ("host".to_string(), host),
            ("content-type".to_string(), content_type.to_string()),
        ];
        if let Some(t) = target {
            headers.push(("x-amz-target".to_string(), t.to_string()));
        }
        let signer = Signer {
            service: service.to_string(),
            ..self.signer.clone()
        };
        let signed = signer.sign("POST", "/", "", &headers, &body, Utc::now());
        let mut req = hyper::Request::post(self.endpoint.as_str());
        for (n, v) in headers.iter().chain(signed.iter()) {
            req = req.header(n.as_str(), v.as_str());
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| unreachable(e.to_string()))?;
        let resp = self
            .http
            .request(req)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| unreachable(e.to_string()))?
            .to_bytes();
        Ok((status, bytes))
    }
}

/// An XML document as JSON: each element an object of its children (text
/// when it has none), `member` children gathered into an array.
pub fn xml_to_json(xml: &str) -> Value {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    reader.config_mut().trim_text(true);
    // Each open element: its name, its children, its `member`s, its text.
    type Open = (String, serde_json::Map<String, Value>, Vec<Value>, String);
    let mut stack: Vec<Open> = vec![(
        String::new(),
        serde_json::Map::new(),
        Vec::new(),
        String::new(),
    )];
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).to_string();
                stack.push((name, serde_json::Map::new(), Vec::new(), String::new()));
            }
            Ok(Event::Empty(e)) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).to_string();
                if let Some(top) = stack.last_mut() {
                    top.1.insert(name, Value::String(String::new()));
                }
            }
            Ok(Event::Text(t)) => {
                if let Some(top) = stack.last_mut() {
                    top.3.push_str(&t.unescape().unwrap_or_default());
                }
            }
            Ok(Event::End(_)) => {
                let Some((name, fields, members, text)) = stack.pop() else {
                    break;
                };
                let value = if !members.is_empty() {
                    Value::Array(members)
                } else if !fields.is_empty() {
                    Value::Object(fields)
                } else {
                    Value::String(text)
                };
                if let Some(parent) = stack.last_mut() {
                    if name == "member" {
                        parent.2.push(value);
                    } else {
                        parent.1.insert(name, value);
                    }
                }
            }
            Ok(Event::Eof) | Err(_) => break,
            _ => {}
        }
    }
    stack
        .pop()
        .map_or(Value::Null, |(_, fields, _, _)| Value::Object(fields))
}

/// Lay out a table for people: columns two spaces apart, those from
/// `right_from` on right-aligned (numbers), trailing spaces trimmed.
pub fn render_table(header: &[&str], rows: &[Vec<String>], right_from: usize) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let w = widths[i];
                if i >= right_from {
                    format!("{c:>w$}")
                } else {
                    format!("{c:<w$}")
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = line(header.to_vec());
    out.push('\n');
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out
}

/// Run a client future to completion from a CLI subcommand (no runtime of
/// its own yet).
pub fn block_on<F: std::future::Future>(fut: F) -> anyhow::Result<F::Output> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(fut))
}

#[cfg(test)]
mod tests {
    use super::xml_to_json;
    use serde_json::json;

    #[test]
    fn query_answers_read_as_json() {
        let xml = r#"<DescribeTargetHealthResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/">
  <DescribeTargetHealthResult>
    <TargetHealthDescriptions>
      <member><Target><Id>10.0.0.1</Id><Port>80</Port></Target><TargetHealth><State>healthy</State></TargetHealth></member>
      <member><Target><Id>10.0.0.2</Id><Port>80</Port></Target><TargetHealth><State>draining</State></TargetHealth></member>
    </TargetHealthDescriptions>
    <Empty/>
    <Escaped>a &amp; b</Escaped>
  </DescribeTargetHealthResult>
  <ResponseMetadata><RequestId>r</RequestId></ResponseMetadata>
</DescribeTargetHealthResponse>"#;
        let v = xml_to_json(xml);
        let r = &v["DescribeTargetHealthResponse"]["DescribeTargetHealthResult"];
        assert_eq!(
            r["TargetHealthDescriptions"][1]["TargetHealth"]["State"],
            "draining"
        );
        assert_eq!(
            r["TargetHealthDescriptions"][0]["Target"],
            json!({"Id": "10.0.0.1", "Port": "80"})
        );
        assert_eq!(r["Empty"], "");
        assert_eq!(r["Escaped"], "a & b");
    }
}
