//! Everything the charm knows about Juju: names, the hook environment, and the hook tools.

pub mod error;
pub mod tools;
pub mod types;

pub use error::{HookToolError, ToolResult};
pub use tools::{Databag, DatabagChanges, HookTools, NewSecret, SecretContent};
pub use types::*;
