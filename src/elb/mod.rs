//! Elastic Load Balancing v2 (Query protocol, `Version=2015-12-01`):
//! application load balancers, their listeners and rules, target groups
//! and targets, and the data plane that serves them.
//!
//! * `routes.rs` (pure): what each listener does with a request, and rule
//!   matching;
//! * `proxy.rs`: the data plane: an HTTP proxy on every listener's
//!   address and port, routing by the current table.

pub mod proxy;
pub mod routes;
