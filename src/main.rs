//! Entry point: a Juju hook or action when Juju's environment is present, else the operator CLI.

use std::process::ExitCode;
use std::sync::Arc;

use keystone_charm::juju::{JujuContext, ProcessHookTools};
use keystone_charm::machine::Machine;
use keystone_charm::{cli, hook};

fn main() -> ExitCode {
    match JujuContext::from_env(|name| std::env::var(name).ok()) {
        Ok(Some(ctx)) => {
            let machine = Machine::system(&ctx.charm_dir);
            match hook::run(&ctx, Arc::new(ProcessHookTools::new()), &machine) {
                true => ExitCode::SUCCESS,
                false => ExitCode::FAILURE,
            }
        }
        Ok(None) => cli::run(),
        Err(err) => {
            eprintln!("keystone-charm: broken Juju environment: {err}");
            ExitCode::FAILURE
        }
    }
}
