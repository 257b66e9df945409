//! The unit agent's side of the hook tools: a Unix socket that the multi-call tool executable
//! talks to, as Juju's jujuc talks to the agent (JUJU_AGENT_SOCKET_ADDRESS + JUJU_CONTEXT_ID).

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread;

use anyhow::{Context, Result};
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::state::World;
use crate::tools::{ToolOutput, run_tool};

/// One tool call, as the tool executable sends it.
#[derive(Debug, Serialize, Deserialize)]
pub struct Request {
    pub context: String,
    pub tool: String,
    pub args: Vec<String>,
    /// Standard input, base64 (only read when the call uses `--file -`).
    pub stdin: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Response {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Serves tool calls for the model until the process ends.
pub struct Server {
    pub socket: PathBuf,
}

impl Server {
    pub fn start(socket: &Path, world: Arc<Mutex<World>>) -> Result<Server> {
        let listener = UnixListener::bind(socket)
            .with_context(|| format!("cannot listen on {}", socket.display()))?;
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                // One call at a time: a unit runs one hook at a time, and hooks run one after
                // another in the simulator.
                let _ = serve(stream, &world);
            }
        });
        Ok(Server {
            socket: socket.to_path_buf(),
        })
    }
}

fn serve(mut stream: UnixStream, world: &Arc<Mutex<World>>) -> Result<()> {
    let mut buffer = Vec::new();
    stream.read_to_end(&mut buffer)?;
    let request: Request = serde_json::from_slice(&buffer)?;
    let stdin = base64::engine::general_purpose::STANDARD
        .decode(request.stdin.as_bytes())
        .unwrap_or_default();
    let output = {
        let mut world = world.lock().unwrap_or_else(|p| p.into_inner());
        let current = world.current.as_ref().map(|c| c.id.clone());
        if current.as_deref() != Some(request.context.as_str()) {
            ToolOutput {
                code: 1,
                stdout: String::new(),
                stderr: "ERROR wrong context ID\n".to_owned(),
            }
        } else {
            run_tool(&mut world, &request.tool, &request.args, &stdin)
        }
    };
    let response = Response {
        code: output.code,
        stdout: output.stdout,
        stderr: output.stderr,
    };
    stream.write_all(&serde_json::to_vec(&response)?)?;
    Ok(())
}

/// The client side, used by the tool executable.
pub fn call(socket: &Path, request: &Request) -> Result<Response> {
    let mut stream = UnixStream::connect(socket)
        .with_context(|| format!("cannot reach the unit agent at {}", socket.display()))?;
    stream.write_all(&serde_json::to_vec(request)?)?;
    stream.shutdown(std::net::Shutdown::Write)?;
    let mut buffer = Vec::new();
    stream.read_to_end(&mut buffer)?;
    Ok(serde_json::from_slice(&buffer)?)
}
