//! Every hook tool in one executable: invoked as `relation-get`, `config-get`, ... (by the name of
//! the link in the tools directory), it forwards the call to the simulated unit agent.

use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;

use base64::Engine as _;
use juju_sim::server::{Request, call};

fn main() -> ExitCode {
    let mut args = std::env::args();
    let argv0 = args.next().unwrap_or_default();
    let tool = Path::new(&argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let args: Vec<String> = args.collect();
    let (Ok(socket), Ok(context)) = (
        std::env::var("JUJU_AGENT_SOCKET_ADDRESS"),
        std::env::var("JUJU_CONTEXT_ID"),
    ) else {
        eprintln!(
            "ERROR JUJU_AGENT_SOCKET_ADDRESS and JUJU_CONTEXT_ID must be set (run inside a hook)"
        );
        return ExitCode::from(2);
    };
    // Standard input matters only for `--file -`.
    let wants_stdin = args.windows(2).any(|w| w[0] == "--file" && w[1] == "-")
        || args.iter().any(|a| a == "--file=-");
    let mut stdin = Vec::new();
    if wants_stdin {
        let _ = std::io::stdin().read_to_end(&mut stdin);
    }
    let request = Request {
        context,
        tool,
        args,
        stdin: base64::engine::general_purpose::STANDARD.encode(stdin),
    };
    match call(Path::new(&socket), &request) {
        Ok(response) if response.code == juju_sim::tools::KILL_THE_HOOK => {
            // The hook process is this tool's parent: it dies before the call takes effect.
            let parent = std::os::unix::process::parent_id().to_string();
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &parent])
                .status();
            ExitCode::from(137)
        }
        Ok(response) => {
            let _ = std::io::stdout().write_all(response.stdout.as_bytes());
            let _ = std::io::stderr().write_all(response.stderr.as_bytes());
            ExitCode::from(u8::try_from(response.code).unwrap_or(1))
        }
        Err(e) => {
            eprintln!("ERROR {e:#}");
            ExitCode::from(1)
        }
    }
}
