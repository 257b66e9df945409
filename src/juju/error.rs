//! Errors from talking to Juju.

use thiserror::Error;

/// A hook tool that failed, or whose output we could not understand.
#[derive(Debug, Error)]
pub enum HookToolError {
    /// The tool ran and exited non-zero. Juju uses 2 for usage errors and 1 for runtime errors.
    #[error("{tool} failed (exit {code}): {stderr}")]
    Failed {
        tool: &'static str,
        code: i32,
        stderr: String,
    },
    /// The tool could not be started at all (not on PATH outside a hook, for example).
    #[error("cannot run {tool}: {source} (is this running inside a Juju hook?)")]
    Spawn {
        tool: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The tool printed something that is not what Juju prints.
    #[error("cannot parse the output of {tool}: {detail}")]
    Parse { tool: &'static str, detail: String },
    /// The charm asked for something the tool cannot do (a bad key, say), caught before running it.
    #[error("{tool}: {detail}")]
    Invalid { tool: &'static str, detail: String },
}

impl HookToolError {
    /// Juju reports relations that are gone with "relation not found"; ops maps this the same way.
    pub fn is_relation_not_found(&self) -> bool {
        matches!(self, HookToolError::Failed { stderr, .. } if stderr.contains("relation not found"))
    }

    /// A secret that does not exist or that this unit may not see.
    pub fn is_secret_not_found(&self) -> bool {
        matches!(self, HookToolError::Failed { tool, stderr, .. }
            if tool.starts_with("secret-") && stderr.contains("not found"))
    }

    /// The unit lost leadership, or was never leader.
    pub fn is_permission_denied(&self) -> bool {
        matches!(self, HookToolError::Failed { stderr, .. }
            if stderr.contains("permission denied")
                || stderr.contains("not the leader")
                || stderr.contains("cannot write relation settings"))
    }
}

pub type ToolResult<T> = Result<T, HookToolError>;
