//! The machine the unit runs on: the modules here touch it (packages now; files and services
//! come with Keystone's own configuration).

pub mod packages;
