//! Every service Berth serves, registered once in the request pipeline.
//! Adding a service is its own folder and one line here.

use std::sync::Arc;

use crate::ecs::Ecs;
use crate::logs::Logs;
use crate::wire::Registry;
use crate::{autoscaling, ec2, platform, sts};

/// The registry of every service, over the state they share.
pub fn registry(ecs: &Arc<Ecs>, logs: &Arc<Logs>) -> Registry {
    let mut r = Registry::default();
    r.add(ecs.clone().service())
        .add(logs.clone().service())
        .add(ec2::service(ecs.clone()))
        .add(autoscaling::service(ecs.clone()))
        .add(sts::service())
        .add(platform::service(ecs.clone()));
    r
}
