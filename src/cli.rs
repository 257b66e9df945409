//! The operator CLI: what the binary does when run by hand, outside any Juju hook.

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::event::Event;
use crate::host::keys::Repository;
use crate::key_sets::token::validate_token;

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
    /// List the actions this charm implements (those in actions.yaml).
    Actions,
    /// Fernet key diagnostics.
    Fernet {
        #[command(subcommand)]
        command: FernetCommand,
    },
    /// Nagios plugins (NRPE runs them, see nrpe-external-master): one line, exit 0 OK,
    /// 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
    Check {
        #[command(subcommand)]
        check: CheckCommand,
    },
}

#[derive(Debug, Subcommand)]
enum CheckCommand {
    /// haproxy has a Keystone unit up behind each port (warning when one is down).
    Haproxy,
    /// This unit held the leader's fernet keys at its last hook, and no rotation is overdue.
    Fernet,
}

#[derive(Debug, Subcommand)]
enum FernetCommand {
    /// Read a Keystone token on stdin and report which key of the repository decrypts it and
    /// when it was issued (the token is never printed).
    ValidateToken {
        /// The key repository, e.g. /etc/keystone/fernet-keys.
        #[arg(long, default_value = "/etc/keystone/fernet-keys")]
        key_repository: std::path::PathBuf,
    },
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
        Command::Check { check } => {
            let verdict = match check {
                CheckCommand::Haproxy => crate::host::monitor::haproxy_stat()
                    .map(|stat| crate::nagios::haproxy_verdict(&stat)),
                CheckCommand::Fernet => crate::host::monitor::fernet_kept().map(|kept| {
                    crate::nagios::fernet_verdict(kept.as_ref(), crate::host::monitor::now())
                }),
            };
            let verdict = verdict.unwrap_or_else(|err| crate::nagios::Verdict {
                level: crate::nagios::Level::Unknown,
                message: err,
            });
            let _ = writeln!(out, "{}", verdict.line());
            ExitCode::from(verdict.level.exit_code())
        }
        Command::Hooks => {
            for name in Event::handled_hook_names() {
                if writeln!(out, "{name}").is_err() {
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }
        Command::Actions => {
            for name in crate::actions::ACTIONS {
                if writeln!(out, "{name}").is_err() {
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }
        Command::Fernet {
            command: FernetCommand::ValidateToken { key_repository },
        } => {
            let mut token = String::new();
            if std::io::Read::read_to_string(&mut std::io::stdin(), &mut token).is_err() {
                eprintln!("error: cannot read the token from standard input");
                return ExitCode::from(2);
            }
            let set = match Repository::new(&key_repository, None).read() {
                Ok(set) => set,
                Err(err) => {
                    eprintln!("error: {err}");
                    return ExitCode::FAILURE;
                }
            };
            let name = key_repository.display().to_string();
            match validate_token(set.as_ref(), &name, &token) {
                Ok(report) => {
                    let written = writeln!(
                        out,
                        "decrypted by key {} of {} (issued at {} unix time)",
                        report.key_index,
                        key_repository.display(),
                        report.issued_at
                    );
                    if written.is_ok() {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }
                Err(err) => {
                    eprintln!("error: {err}");
                    ExitCode::FAILURE
                }
            }
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
