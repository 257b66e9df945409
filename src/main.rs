//! Entry point: a Juju hook or action when Juju's environment is present, else the operator CLI.

use std::process::ExitCode;
use std::sync::Arc;

use keystone_charm::juju::{JujuContext, ProcessHookTools};
use keystone_charm::{charm, cli};

fn main() -> ExitCode {
    match JujuContext::from_env(|name| std::env::var(name).ok()) {
        Ok(Some(ctx)) => charm::run(&ctx, Arc::new(ProcessHookTools::new())),
        Ok(None) => cli::run(),
        Err(err) => {
            eprintln!("keystone-charm: broken Juju environment: {err}");
            ExitCode::FAILURE
        }
    }
}
