//! The Keystone charm: one binary for every Juju hook and action, and a small operator CLI.
//!
//! ARCHITECTURE.md draws one hook's path through these modules.

pub mod actions;
pub mod addresses;
pub mod cache;
pub mod certificate;
pub mod cli;
pub mod config;
pub mod database;
pub mod event;
pub mod facts;
pub mod fernet_keys;
pub mod hook;
pub mod host;
#[cfg(test)]
mod hostile_input;
#[cfg(test)]
mod idempotence;
pub mod identity;
pub mod juju;
pub mod keystone_api;
pub mod logging;
pub mod machine;
pub mod nagios;
pub mod paths;
pub mod peer_keys;
pub mod relations;
pub mod release;
pub mod render;
pub mod secret;
pub mod status;
pub mod step;
pub mod steps;
#[cfg(test)]
mod testing;
