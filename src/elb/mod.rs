//! Elastic Load Balancing v2 (Query protocol, `Version=2015-12-01`):
//! application load balancers, their listeners and rules, target groups
//! and targets, and the data plane that serves them.
//!
//! * `routes.rs` (pure): what each listener does with a request, and rule
//!   matching;
//! * `proxy.rs`: the data plane: an HTTP proxy on every listener's
//!   address and port, routing by the current table;
//! * `probe.rs`: the health check's request to a target, and ALB's
//!   success-code matchers.

pub mod probe;
pub mod proxy;
pub mod routes;
