//! A panic reaches juju-log with its message and location. (Its own test binary: the panic hook
//! is process-wide.) That the process then exits non-zero is Rust's: 101 when unwinding, SIGABRT
//! with the release profile's panic=abort.

use std::ffi::OsString;
use std::path::Path;
use std::sync::Arc;

use juju_sim::{Model, ToolChannel};
use keystone_charm::hook::install_panic_hook;
use keystone_charm::juju::process::{ToolReply, ToolTransport};
use keystone_charm::juju::{Juju, ProcessHookTools, ToolResult, UnitName};

/// The hook tools through the simulator's unit agent, in-process.
struct Sim(ToolChannel);

impl ToolTransport for Sim {
    fn call(
        &self,
        tool: &'static str,
        args: &[OsString],
        stdin: Option<&[u8]>,
    ) -> ToolResult<ToolReply> {
        let args: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let out = self.0.call(tool, &args, stdin.unwrap_or_default());
        Ok(ToolReply {
            code: out.code,
            stdout: out.stdout.into_bytes(),
            stderr: out.stderr,
        })
    }
}

#[test]
fn panics_are_sent_to_juju_log() {
    let line = line!() + 5;
    let hook = |_: &_, channel: &ToolChannel| {
        let unit = UnitName::parse("keystone/0").unwrap();
        let juju = Juju::new(Arc::new(ProcessHookTools::over(Sim(channel.clone()))), unit);
        install_panic_hook(juju.log_sink());
        let result = std::panic::catch_unwind(|| panic!("fernet key repository vanished"));
        let _ = std::panic::take_hook();
        i32::from(result.is_ok())
    };
    let mut model = Model::new().unwrap();
    let charm = Path::new(env!("CARGO_MANIFEST_DIR"));
    model
        .deploy_in_process("keystone", charm, 1, Default::default(), Box::new(hook))
        .unwrap();
    model.settle_unit("keystone/0").unwrap();
    let errors: Vec<String> = model
        .logs()
        .into_iter()
        .filter(|l| l.level == "ERROR")
        .map(|l| l.message)
        .collect();
    assert_eq!(
        errors[0],
        format!(
            "keystone-charm panicked at tests/panic_hook.rs:{line}: fernet key repository vanished"
        )
    );
}
