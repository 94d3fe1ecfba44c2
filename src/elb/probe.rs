//! The target group health check's request: one `GET` on a target, judged
//! against the group's success codes the way an Application Load Balancer
//! judges it.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper::header::{HOST, USER_AGENT};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// What one health check request found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// The target answered with a status the matcher accepts.
    Healthy,
    /// The target answered, with this status, which the matcher refuses.
    ResponseCodeMismatch(u16),
    /// No answer within the check's timeout.
    Timeout,
    /// The connection could not be made or broke (refused, reset, not
    /// HTTP), with the reason.
    Failed(String),
}

/// The `User-Agent` ALB's health checks send, which applications commonly
/// recognise (and keep out of their access logs).
const HEALTH_CHECKER: &str = "ELB-HealthChecker/2.0";

/// `GET path` on `addr` with `Host: addr` and ALB's health checker
/// `User-Agent`, waiting at most `timeout` for the response's status line
/// and headers; `matcher` is the target group's `HttpCode` matcher
/// (`"200"`, `"200,202"`, `"200-299"`). Each check uses a connection of
/// its own, so a target that stops accepting connections fails its checks
/// even while older connections still work.
pub async fn probe(addr: SocketAddr, path: &str, timeout: Duration, matcher: &str) -> ProbeOutcome {
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    let exchange = async {
        let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let _ = stream.set_nodelay(true);
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        // The connection is driven alongside the request and dropped with
        // it: nothing of the check outlives the check.
        let request = Request::get(path.as_str())
            .header(HOST, addr.to_string())
            .header(USER_AGENT, HEALTH_CHECKER)
            .body(Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        let mut conn = std::pin::pin!(conn);
        let mut response = std::pin::pin!(sender.send_request(request));
        let status = |r: Result<hyper::Response<hyper::body::Incoming>, hyper::Error>| {
            r.map(|r| r.status().as_u16()).map_err(|e| e.to_string())
        };
        tokio::select! {
            biased;
            r = &mut response => status(r),
            closed = &mut conn => match closed {
                // A target that answers and closes (`Connection: close`)
                // ends the connection as the response arrives: the
                // response is there to take.
                Ok(()) => status(response.await),
                Err(e) => Err(e.to_string()),
            },
        }
    };
    match tokio::time::timeout(timeout, exchange).await {
        Err(_) => ProbeOutcome::Timeout,
        Ok(Err(reason)) => ProbeOutcome::Failed(reason),
        Ok(Ok(status)) if code_matches(matcher, status) => ProbeOutcome::Healthy,
        Ok(Ok(status)) => ProbeOutcome::ResponseCodeMismatch(status),
    }
}

/// Whether `status` is one of the codes an `HttpCode` matcher names: a
/// code (`"200"`), a comma-separated list (`"200,202"`) or an inclusive
/// range (`"200-299"`), the forms mixing freely (`"200,300-399"`). Parts
/// that do not parse match nothing.
pub fn code_matches(matcher: &str, status: u16) -> bool {
    matcher
        .split(',')
        .map(str::trim)
        .any(|part| match part.split_once('-') {
            Some((low, high)) => match (low.trim().parse::<u16>(), high.trim().parse::<u16>()) {
                (Ok(low), Ok(high)) => (low..=high).contains(&status),
                _ => false,
            },
            None => part.parse::<u16>() == Ok(status),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;
    use hyper::body::Incoming;
    use hyper::{Response, StatusCode};
    use std::convert::Infallible;
    use tokio::net::TcpListener;

    /// A health check endpoint that answers `status` to ALB's health
    /// checker (400 to anything else), after `delay`.
    async fn endpoint(status: u16, delay: Duration) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let service =
                    hyper::service::service_fn(move |req: Request<Incoming>| async move {
                        tokio::time::sleep(delay).await;
                        let from_checker =
                            req.headers().get(USER_AGENT).and_then(|v| v.to_str().ok())
                                == Some(HEALTH_CHECKER)
                                && req.headers().get(HOST).and_then(|v| v.to_str().ok())
                                    == Some(addr.to_string().as_str())
                                && req.uri().path() == "/health";
                        let status = if from_checker { status } else { 400 };
                        Ok::<_, Infallible>(
                            Response::builder()
                                .status(StatusCode::from_u16(status).unwrap())
                                .body(Full::new(Bytes::from_static(b"ok")))
                                .unwrap(),
                        )
                    });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_probe_tells_healthy_mismatch_timeout_and_failure_apart() {
        let second = Duration::from_secs(1);
        let ok = endpoint(200, Duration::ZERO).await;
        assert_eq!(
            probe(ok, "/health", second, "200").await,
            ProbeOutcome::Healthy
        );
        assert_eq!(
            probe(ok, "health", second, "200-299").await,
            ProbeOutcome::Healthy,
            "a path without its leading slash is the same path"
        );
        assert_eq!(
            probe(ok, "/other", second, "200").await,
            ProbeOutcome::ResponseCodeMismatch(400)
        );

        let failing = endpoint(500, Duration::ZERO).await;
        assert_eq!(
            probe(failing, "/health", second, "200").await,
            ProbeOutcome::ResponseCodeMismatch(500)
        );

        let slow = endpoint(200, Duration::from_secs(5)).await;
        assert_eq!(
            probe(slow, "/health", Duration::from_millis(300), "200").await,
            ProbeOutcome::Timeout
        );

        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        assert!(matches!(
            probe(closed, "/health", second, "200").await,
            ProbeOutcome::Failed(_)
        ));
    }

    #[tokio::test]
    async fn a_target_that_answers_and_closes_at_once_is_healthy() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let _ = stream.read(&mut buf).await;
                let _ = stream
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
                    )
                    .await;
                // Closed as soon as written, as one-thread-per-connection
                // servers do.
            }
        });
        for _ in 0..20 {
            assert_eq!(
                probe(addr, "/health", Duration::from_secs(1), "200").await,
                ProbeOutcome::Healthy
            );
        }
    }

    #[test]
    fn matchers_name_codes_lists_and_ranges() {
        assert!(code_matches("200", 200));
        assert!(!code_matches("200", 201));
        assert!(code_matches("200,202", 202));
        assert!(!code_matches("200,202", 201));
        assert!(code_matches("200-299", 200));
        assert!(code_matches("200-299", 299));
        assert!(!code_matches("200-299", 300));
        assert!(code_matches("200, 300-399", 302));
        assert!(!code_matches("oops", 200));
        assert!(!code_matches("", 200));
    }
}
