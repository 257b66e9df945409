//! The Keystone charm: one binary for every Juju hook and action, and a small operator CLI.

pub mod config;
pub mod juju;
pub mod secret;
