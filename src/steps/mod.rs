//! The steps of a hook that are not a relation (those are in [`crate::relations`]), each with
//! its whole behaviour in one file. [`crate::hook::STEPS`] puts them in order.

pub mod admin_identity;
pub mod config_warnings;
pub mod haproxy;
pub mod packages;
pub mod policy;
pub mod policy_overrides;
pub mod python_charm_leftovers;
pub mod readiness;
pub mod release_upgrade;
pub mod series_upgrade;
pub mod workload;
