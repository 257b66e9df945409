//! The Keystone charm: one binary for every Juju hook and action, and a small operator CLI.
//!
//! ARCHITECTURE.md draws one hook's path through these modules.
//!
//! The test kit, in unit tests and with the `testkit` feature (the integration tests' and benches'
//! build, never the shipped binary's): `testing` runs the charm in-process under juju-sim, each
//! unit on an in-memory machine (`Machine::twin` and the twins in `host` and `keystone_api`).

pub mod actions;
pub mod addresses;
pub mod cache;
pub mod certificate;
pub mod cli;
pub mod config;
pub mod database;
pub mod event;
pub mod facts;
pub mod hook;
pub mod host;
pub mod identity;
pub mod juju;
pub mod key_sets;
pub mod keystone_api;
pub mod logging;
pub mod machine;
pub mod nagios;
pub mod origin;
pub mod paths;
pub mod peer_keys;
pub mod peers;
pub mod relations;
pub mod release;
pub mod render;
pub mod secret;
pub mod security_checklist;
pub mod status;
pub mod step;
pub mod steps;
#[cfg(any(test, feature = "testkit"))]
pub mod testing;
