//! The Keystone charm: one binary for every Juju hook and action, and a small operator CLI.

pub mod actions;
pub mod charm;
pub mod cli;
pub mod config;
pub mod converge;
pub mod event;
pub mod fernet_keys;
pub mod host;
pub mod identity;
pub mod juju;
pub mod keystone_api;
pub mod logging;
pub mod relations;
pub mod render;
pub mod secret;
pub mod status;
pub mod workload;
