//! The operator CLI: what the binary does when run by hand, outside any Juju hook.

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::event::Event;

/// Keystone charm: run by Juju through `dispatch` for every hook and action; run by hand, a
/// small operator tool.
#[derive(Debug, Parser)]
#[command(name = "keystone-charm", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the hooks this charm handles (every other hook is logged and ignored).
    Hooks,
}

/// Runs the CLI with the process's arguments.
pub fn run() -> ExitCode {
    run_with(std::env::args_os(), &mut std::io::stdout())
}

/// Runs the CLI with `args` (program name first), writing results to `out`.
pub fn run_with(
    args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
    out: &mut dyn Write,
) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(err) => {
            // --help and --version are "errors" that print to stdout and exit 0.
            let _ = err.print();
            return ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(2));
        }
    };
    match cli.command {
        Command::Hooks => {
            for name in Event::handled_hook_names() {
                if writeln!(out, "{name}").is_err() {
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hooks_lists_every_handled_hook() {
        let mut out = Vec::new();
        assert_eq!(
            run_with(["keystone-charm", "hooks"], &mut out),
            ExitCode::SUCCESS
        );
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines.contains(&"install"));
        assert!(lines.contains(&"shared-db-relation-changed"));
        assert!(lines.contains(&"secret-rotate"));
        assert_eq!(lines.len(), Event::handled_hook_names().len());
    }

    #[test]
    fn unknown_subcommands_are_usage_errors() {
        let mut out = Vec::new();
        assert_eq!(
            run_with(["keystone-charm", "frobnicate"], &mut out),
            ExitCode::from(2)
        );
        assert!(out.is_empty());
    }
}
