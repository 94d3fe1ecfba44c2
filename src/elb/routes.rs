//! The data plane's view of the load balancers (pure): what each listener
//! does with a request, built from the store by `table::build` and swapped
//! whole into the proxy when anything changes, so a request is always
//! routed by one consistent table.
//!
//! Rule matching follows ALB: a rule matches when every one of its
//! conditions does, a condition when any of its values does; rules are
//! tried in priority order and the default rule last. Path patterns and
//! methods are case-sensitive; host names, header and query values are not.
//! `*` matches any run of characters and `?` exactly one.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

/// Everything every listener of every load balancer does.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    /// By the address and port each listener binds.
    pub listeners: BTreeMap<SocketAddr, ListenerRoutes>,
    /// By target group ARN.
    pub groups: BTreeMap<String, GroupRoutes>,
}

/// One listener: its rules, in the order they are tried (by priority, the
/// default rule last).
#[derive(Debug, Clone, PartialEq)]
pub struct ListenerRoutes {
    pub listener_arn: String,
    pub load_balancer_arn: String,
    /// `HTTP` (HTTPS listeners are not served yet).
    pub protocol: String,
    /// The load balancer's `idle_timeout.timeout_seconds`.
    pub idle_timeout_secs: u64,
    pub rules: Vec<RuleRoutes>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RuleRoutes {
    pub rule_arn: String,
    /// Every condition must match; an empty list (the default rule)
    /// matches everything.
    pub conditions: Vec<Condition>,
    pub action: Action,
}

/// A rule condition, with its values as the API took them.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    PathPattern(Vec<String>),
    HostHeader(Vec<String>),
    HttpHeader {
        name: String,
        values: Vec<String>,
    },
    HttpRequestMethod(Vec<String>),
    /// `(key, value)` pairs; a pair without a key matches any key.
    QueryString(Vec<(Option<String>, String)>),
    SourceIp(Vec<Cidr>),
}

/// An IPv4 or IPv6 network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

/// What a matching rule does (its last action; authentication actions
/// are not served).
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Forward(Forward),
    Redirect(Redirect),
    FixedResponse(FixedResponse),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Forward {
    /// `(target group ARN, weight)`; weights 0 to 999.
    pub groups: Vec<(String, u32)>,
    /// Target group stickiness (`AWSALBTG`), in seconds, when enabled.
    pub group_stickiness_secs: Option<u64>,
}

/// A redirect; each part may use `#{protocol}`, `#{host}`, `#{port}`,
/// `#{path}` and `#{query}`, which default to the request's own.
#[derive(Debug, Clone, PartialEq)]
pub struct Redirect {
    pub protocol: String,
    pub host: String,
    pub port: String,
    pub path: String,
    pub query: String,
    /// 301 or 302.
    pub status: u16,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FixedResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Option<String>,
}

/// One target group as the proxy needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupRoutes {
    pub arn: String,
    pub algorithm: Algorithm,
    /// `stickiness.enabled` with `lb_cookie`: the `AWSALB` cookie's
    /// lifetime in seconds.
    pub stickiness_secs: Option<u64>,
    /// `slow_start.duration_seconds`, 0 when off.
    pub slow_start_secs: u64,
    /// Registered targets, draining ones included (the proxy sends them
    /// nothing new).
    pub targets: Vec<TargetRoutes>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Algorithm {
    #[default]
    RoundRobin,
    LeastOutstandingRequests,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TargetRoutes {
    /// Where requests go: the target's IP (or its instance's address) and
    /// port.
    pub addr: SocketAddr,
    pub health: Health,
    /// When the target became healthy, in milliseconds since the epoch
    /// (for slow start).
    pub healthy_since_ms: Option<i64>,
}

/// A target's health as the proxy routes by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Not yet checked: routed to only while no target is healthy.
    Initial,
    Healthy,
    Unhealthy,
    /// Deregistered: gets no new requests.
    Draining,
}

/// The parts of a request rules look at.
#[derive(Debug, Clone, Default)]
pub struct RequestView<'a> {
    pub method: &'a str,
    /// The path without the query string.
    pub path: &'a str,
    /// The `Host` header (or the authority), port included if sent.
    pub host: &'a str,
    /// Header names lower-cased.
    pub headers: Vec<(String, &'a str)>,
    /// Decoded query parameters in order.
    pub query: Vec<(String, String)>,
    pub source: Option<IpAddr>,
}

impl ListenerRoutes {
    /// The first rule, in priority order, that matches the request.
    pub fn route(&self, req: &RequestView) -> Option<&RuleRoutes> {
        self.rules
            .iter()
            .find(|r| r.conditions.iter().all(|c| c.matches(req)))
    }
}

impl Condition {
    pub fn matches(&self, req: &RequestView) -> bool {
        match self {
            Condition::PathPattern(vs) => vs.iter().any(|p| wildcard(p, req.path, false)),
            Condition::HostHeader(vs) => {
                // The port is not part of the host name.
                let host = req.host.rsplit_once(':').map_or(req.host, |(h, p)| {
                    if p.chars().all(|c| c.is_ascii_digit()) && !h.ends_with(']') {
                        h
                    } else {
                        req.host
                    }
                });
                vs.iter().any(|p| wildcard(p, host, true))
            }
            Condition::HttpHeader { name, values } => {
                let name = name.to_ascii_lowercase();
                req.headers
                    .iter()
                    .filter(|(n, _)| *n == name)
                    .any(|(_, v)| values.iter().any(|p| wildcard(p, v, true)))
            }
            Condition::HttpRequestMethod(vs) => vs.iter().any(|m| m == req.method),
            Condition::QueryString(pairs) => pairs.iter().any(|(k, v)| {
                req.query.iter().any(|(qk, qv)| {
                    k.as_ref().is_none_or(|k| wildcard(k, qk, true)) && wildcard(v, qv, true)
                })
            }),
            Condition::SourceIp(nets) => req
                .source
                .is_some_and(|ip| nets.iter().any(|n| n.contains(ip))),
        }
    }
}

impl Cidr {
    /// `10.0.0.0/8`, `2001:db8::/32`; `None` when malformed.
    pub fn parse(text: &str) -> Option<Cidr> {
        let (a, p) = text.split_once('/')?;
        let addr: IpAddr = a.parse().ok()?;
        let prefix: u8 = p.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(Cidr { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - self.prefix as u32).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - self.prefix as u32).unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// Whether `text` matches `pattern` (`*` any run, `?` one character).
pub fn wildcard(pattern: &str, text: &str, ignore_case: bool) -> bool {
    if ignore_case {
        crate::wildcard::matches(&pattern.to_lowercase(), &text.to_lowercase())
    } else {
        crate::wildcard::matches(pattern, text)
    }
}

/// The index of the target group a weighted forward picks for a draw
/// `r` in `0..total weight`; `None` when every weight is 0.
pub fn pick_weighted(groups: &[(String, u32)], r: u64) -> Option<usize> {
    let total: u64 = groups.iter().map(|(_, w)| *w as u64).sum();
    if total == 0 {
        return None;
    }
    let mut r = r % total;
    for (i, (_, w)) in groups.iter().enumerate() {
        if r < *w as u64 {
            return Some(i);
        }
        r -= *w as u64;
    }
    None
}

impl GroupRoutes {
    /// The targets a new request may go to: the healthy ones; when none is
    /// healthy, every registered target that is not draining (ALB fails
    /// open). Empty when nothing is registered but draining targets.
    pub fn routable(&self) -> Vec<&TargetRoutes> {
        let healthy: Vec<_> = self
            .targets
            .iter()
            .filter(|t| t.health == Health::Healthy)
            .collect();
        if !healthy.is_empty() {
            return healthy;
        }
        self.targets
            .iter()
            .filter(|t| t.health != Health::Draining)
            .collect()
    }

    /// A target's share of new requests under slow start, from 0 (just
    /// healthy) to 1 (past the duration), at `now_ms`.
    pub fn slow_start_share(&self, t: &TargetRoutes, now_ms: i64) -> f64 {
        match (self.slow_start_secs, t.healthy_since_ms) {
            (0, _) | (_, None) => 1.0,
            (secs, Some(since)) => {
                let done = (now_ms - since) as f64 / (secs as f64 * 1000.0);
                done.clamp(0.1, 1.0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view<'a>(method: &'a str, path: &'a str, host: &'a str) -> RequestView<'a> {
        RequestView {
            method,
            path,
            host,
            ..Default::default()
        }
    }

    #[test]
    fn paths_are_case_sensitive_and_host_names_are_not() {
        assert!(!wildcard("/API/*", "/api/x", false));
        assert!(wildcard("*.example.com", "WWW.Example.com", true));
    }

    #[test]
    fn rules_are_tried_in_order_and_all_conditions_must_match() {
        let fixed = |status| {
            Action::FixedResponse(FixedResponse {
                status,
                content_type: None,
                body: None,
            })
        };
        let l = ListenerRoutes {
            listener_arn: "l".into(),
            load_balancer_arn: "lb".into(),
            protocol: "HTTP".into(),
            idle_timeout_secs: 60,
            rules: vec![
                RuleRoutes {
                    rule_arn: "r1".into(),
                    conditions: vec![
                        Condition::PathPattern(vec!["/api/*".into()]),
                        Condition::HttpRequestMethod(vec!["POST".into()]),
                    ],
                    action: fixed(201),
                },
                RuleRoutes {
                    rule_arn: "r2".into(),
                    conditions: vec![Condition::HostHeader(vec!["admin.*".into()])],
                    action: fixed(202),
                },
                RuleRoutes {
                    rule_arn: "default".into(),
                    conditions: vec![],
                    action: fixed(404),
                },
            ],
        };
        let arn = |v: &RequestView| l.route(v).unwrap().rule_arn.clone();
        assert_eq!(arn(&view("POST", "/api/x", "a")), "r1");
        assert_eq!(arn(&view("GET", "/api/x", "a")), "default");
        assert_eq!(arn(&view("GET", "/", "Admin.example.com:8080")), "r2");
        assert_eq!(arn(&view("POST", "/api/x", "admin.x")), "r1");
    }

    #[test]
    fn headers_queries_and_source_addresses_match() {
        let mut v = view("GET", "/", "h");
        v.headers = vec![("user-agent".into(), "Mozilla/5.0 (Mobile)")];
        v.query = vec![("version".into(), "V2".into()), ("x".into(), "1".into())];
        v.source = Some("10.1.2.3".parse().unwrap());
        assert!(Condition::HttpHeader {
            name: "User-Agent".into(),
            values: vec!["*mobile*".into()]
        }
        .matches(&v));
        assert!(!Condition::HttpHeader {
            name: "Referer".into(),
            values: vec!["*".into()]
        }
        .matches(&v));
        assert!(Condition::QueryString(vec![(Some("version".into()), "v2".into())]).matches(&v));
        assert!(Condition::QueryString(vec![(None, "1".into())]).matches(&v));
        assert!(!Condition::QueryString(vec![(Some("version".into()), "v1".into())]).matches(&v));
        let net = |s| Cidr::parse(s).unwrap();
        assert!(Condition::SourceIp(vec![net("10.0.0.0/8")]).matches(&v));
        assert!(!Condition::SourceIp(vec![net("192.168.0.0/16")]).matches(&v));
        v.source = Some("::ffff:10.1.2.3".parse().unwrap());
        assert!(Condition::SourceIp(vec![net("10.1.2.0/24")]).matches(&v));
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("1.2.3.4".parse().unwrap()));
    }

    #[test]
    fn weighted_picks_follow_the_weights() {
        let g = vec![
            ("a".to_string(), 1),
            ("b".to_string(), 0),
            ("c".to_string(), 3),
        ];
        let picks: Vec<_> = (0..4).map(|r| pick_weighted(&g, r).unwrap()).collect();
        assert_eq!(picks, vec![0, 2, 2, 2]);
        assert_eq!(pick_weighted(&[("a".to_string(), 0)], 7), None);
    }

    #[test]
    fn every_target_is_routable_when_none_is_healthy() {
        let t = |port, health| TargetRoutes {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            health,
            healthy_since_ms: None,
        };
        let mut g = GroupRoutes {
            arn: "tg".into(),
            algorithm: Algorithm::RoundRobin,
            stickiness_secs: None,
            slow_start_secs: 0,
            targets: vec![
                t(1, Health::Healthy),
                t(2, Health::Unhealthy),
                t(3, Health::Draining),
            ],
        };
        assert_eq!(g.routable().len(), 1);
        g.targets[0].health = Health::Unhealthy;
        let ports: Vec<_> = g.routable().iter().map(|t| t.addr.port()).collect();
        assert_eq!(ports, vec![1, 2]);
        g.targets.truncate(0);
        assert!(g.routable().is_empty());
    }
}
