//! Berth: a self-hosted container platform that speaks the Amazon ECS API.
//! See ARCHITECTURE.md for the map.

pub mod agent;
pub mod autoscaling;
pub mod catalog;
pub mod client;
pub mod clock;
pub mod config;
pub mod context;
pub mod controllers;
pub mod cost;
pub mod doctor;
pub mod ec2;
pub mod ecr;
pub mod ecs;
pub mod elb;
pub mod error;
pub mod events;
pub mod iam;
pub mod keyfile;
pub mod kms;
pub mod logs;
pub mod metrics;
pub mod migrate;
pub mod model;
pub mod paging;
pub mod placement;
pub mod platform;
pub mod pricing;
pub mod runtime;
pub mod secretsmanager;
pub mod server;
pub mod services;
pub mod settings;
pub mod shapes_gen;
pub mod ssm;
pub mod store;
pub mod sts;
#[cfg(test)]
pub mod testing;
pub mod walls;
pub mod wildcard;
pub mod wire;
