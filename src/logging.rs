//! tracing → juju-log (with Juju's level names) and stderr, which Juju also records.
//!
//! Every juju-log line is a hook-tool call (a process and an agent round trip), so only INFO and
//! above are forwarded, and DEBUG only while the charm's `debug` option is true. TRACE never is.
//! Values wrapped in [`crate::secret::Sensitive`] format as `***`, so they cannot leak here.

use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing::field::{Field, Visit};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::Registry;

use crate::juju::{JujuLogSink, LogLevel};

/// Turns DEBUG forwarding on once the config has been read.
#[derive(Debug, Clone, Default)]
pub struct LogHandle {
    debug: Arc<AtomicBool>,
}

impl LogHandle {
    pub fn set_debug(&self, on: bool) {
        self.debug.store(on, Ordering::Relaxed);
    }

    pub fn debug(&self) -> bool {
        self.debug.load(Ordering::Relaxed)
    }

    /// Whether an event at `level` is logged at all.
    fn wants(&self, level: Level) -> bool {
        if self.debug() {
            level <= Level::DEBUG
        } else {
            level <= Level::INFO
        }
    }
}

/// juju-log's name for a tracing level.
pub fn juju_level(level: Level) -> LogLevel {
    match level {
        Level::ERROR => LogLevel::Error,
        Level::WARN => LogLevel::Warning,
        Level::INFO => LogLevel::Info,
        Level::DEBUG => LogLevel::Debug,
        Level::TRACE => LogLevel::Trace,
    }
}

/// Collects an event's message and fields as `message key=value ...`.
#[derive(Default)]
struct Line {
    message: String,
    fields: String,
}

impl Visit for Line {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
}

/// Formats an event as the single line juju-log and stderr get.
fn format_event(event: &Event<'_>) -> String {
    let mut line = Line::default();
    event.record(&mut line);
    let mut text = line.message;
    text.push_str(&line.fields);
    text
}

/// The layer: each event at or above the threshold goes to juju-log (when in a hook) and stderr.
pub struct HookLogLayer {
    sink: Option<JujuLogSink>,
    handle: LogHandle,
    stderr: bool,
}

impl<S: Subscriber> Layer<S> for HookLogLayer {
    fn register_callsite(&self, _metadata: &'static Metadata<'static>) -> Interest {
        // The threshold changes when the config is read, so it is checked per event.
        Interest::sometimes()
    }

    fn enabled(&self, metadata: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        self.handle.wants(*metadata.level())
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let level = *event.metadata().level();
        if !self.handle.wants(level) {
            return;
        }
        let message = format_event(event);
        let juju_level = juju_level(level);
        if self.stderr {
            let _ = writeln!(std::io::stderr(), "{} {message}", juju_level.as_str());
        }
        if let Some(sink) = &self.sink
            && let Err(err) = sink.log(juju_level, &message)
        {
            // Logging through tracing here would recurse; stderr still reaches the unit log.
            let _ = writeln!(std::io::stderr(), "cannot send a line to juju-log: {err}");
        }
    }
}

/// A subscriber for a hook: juju-log through `sink` (if any) plus stderr (if `stderr`).
pub fn hook_subscriber(
    sink: Option<JujuLogSink>,
    stderr: bool,
) -> (impl Subscriber + Send + Sync, LogHandle) {
    let handle = LogHandle::default();
    let layer = HookLogLayer {
        sink,
        handle: handle.clone(),
        stderr,
    };
    (Registry::default().with(layer), handle)
}

/// Installs the hook subscriber for the whole process.
pub fn init_hook_logging(sink: JujuLogSink) -> LogHandle {
    let (subscriber, handle) = hook_subscriber(Some(sink), true);
    // Fails only if a subscriber is already installed, in which case that one stays.
    let _ = tracing::subscriber::set_global_default(subscriber);
    handle
}

/// Installs stderr-only logging for the operator CLI.
pub fn init_cli_logging(verbose: bool) -> LogHandle {
    let (subscriber, handle) = hook_subscriber(None, true);
    handle.set_debug(verbose);
    let _ = tracing::subscriber::set_global_default(subscriber);
    handle
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::juju::{HookTools, Juju, Status, StatusScope, UnitName};
    use crate::secret::Sensitive;
    use crate::testing::Sim;

    const UNIT: &str = "keystone/0";

    fn settled() -> Sim {
        let mut sim = Sim::keystone(1, serde_json::json!({}));
        sim.settle();
        sim
    }

    /// juju-log lines of the last hook, as `LEVEL message`.
    fn last_hook_logs(sim: &Sim) -> Vec<String> {
        let run = sim.model.hook_log().pop().unwrap();
        let logs = sim.model.logs();
        let ours: Vec<String> = logs
            .iter()
            .filter(|l| l.unit == UNIT)
            .map(|l| format!("{} {}", l.level, l.message))
            .collect();
        let n = run
            .tool_calls
            .iter()
            .filter(|c| c.starts_with("juju-log"))
            .count();
        ours[ours.len() - n..].to_vec()
    }

    #[test]
    fn levels_map_to_juju_names_and_debug_waits_for_the_option() {
        let mut sim = settled();
        assert!(sim.with_hook(UNIT, "config-changed", |juju, _, _| {
            let (subscriber, handle) = hook_subscriber(Some(juju.log_sink()), false);
            tracing::subscriber::with_default(subscriber, || {
                tracing::error!("e");
                tracing::warn!("w");
                tracing::info!(relation = "shared-db:3", "i");
                tracing::debug!("d1");
                handle.set_debug(true);
                tracing::debug!("d2");
                tracing::trace!("t");
            });
            juju.calls()["juju-log"] == 4
        }));
        assert_eq!(
            last_hook_logs(&sim),
            [
                "ERROR e",
                "WARNING w",
                "INFO i relation=shared-db:3",
                "DEBUG d2"
            ]
        );
    }

    #[test]
    fn secrets_never_reach_juju_log_or_status_in_clear() {
        let mut sim = settled();
        assert!(sim.with_hook(UNIT, "config-changed", |juju, _, _| {
            let password = Sensitive::new("hunter2-s3cret".to_owned());
            let (subscriber, _) = hook_subscriber(Some(juju.log_sink()), false);
            tracing::subscriber::with_default(subscriber, || {
                tracing::info!("admin password is {password}");
                tracing::warn!(?password, "debug-formatted");
                tracing::error!(password = %password, "display-formatted");
            });
            let status = Status::blocked(format!("cannot use password {password}"));
            juju.status_set(StatusScope::Unit, &status).unwrap();
            juju.status_set(StatusScope::Application, &status).unwrap();
            // The value itself is still there where one is meant to go.
            password.expose() == "hunter2-s3cret"
        }));
        let everything = format!(
            "{:?} {} {} {:?}",
            sim.model.logs(),
            sim.status(UNIT),
            sim.app_status(),
            sim.model.hook_log()
        );
        assert!(
            !everything.contains("hunter2"),
            "secret leaked: {everything}"
        );
        assert_eq!(
            last_hook_logs(&sim),
            [
                "INFO admin password is ***",
                "WARNING debug-formatted password=***",
                "ERROR display-formatted password=***"
            ]
        );
        assert_eq!(sim.status(UNIT), "blocked: cannot use password ***");
    }

    #[test]
    fn a_failing_juju_log_does_not_recurse() {
        let unit = UnitName::parse("keystone/0").unwrap();
        let tools: Arc<dyn HookTools> =
            Arc::new(crate::juju::ProcessHookTools::in_dir("/nonexistent-tools"));
        let juju = Juju::new(tools, unit);
        let (subscriber, _) = hook_subscriber(Some(juju.log_sink()), false);
        tracing::subscriber::with_default(subscriber, || tracing::warn!("still fine"));
        assert_eq!(juju.calls()["juju-log"], 1);
    }
}
