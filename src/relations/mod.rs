//! One module per relation, named after its endpoint, holding that relation's whole behaviour.

pub mod cluster;
pub mod shared_db;
