//! One module per relation, named after its endpoint, holding that relation's whole behaviour
//! (and [`consumers`], what the identity relations share, and [`service_passwords`], the
//! passwords they give).

pub mod certificates;
pub mod cluster;
pub mod consumers;
pub mod domain_backend;
pub mod fernet_keys;
pub mod fernet_keys_source;
pub mod ha;
pub mod identity_admin;
pub mod identity_credentials;
pub mod identity_notifications;
pub mod identity_service;
pub mod kept;
pub mod keystone_fid_service_provider;
pub mod keystone_middleware;
pub mod keystone_service;
pub mod nrpe_external_master;
pub mod service_passwords;
pub mod shared_db;
pub mod websso_trusted_dashboard;
