//! The one logger: every line the daemon, the FUSE adapter, the content cache and the commands
//! log goes through `tracing` to stderr (a daemon's `--log-file`), one line per event, as text
//! or JSON, with the time, the level, the pid and, in a daemon, its mount point.

use std::io::Write;
use std::path::Path;
use std::sync::OnceLock;
use std::time::SystemTime;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

use crate::cli::LogFormat;

/// The environment variable read when `--log-level` is not given.
pub const LEVEL_VAR: &str = "CRONUSFS_LOG";

/// The level and format this process was started with (a daemon is started with the same).
static SETTINGS: OnceLock<(Option<String>, LogFormat)> = OnceLock::new();

/// The mount point a daemon serves, once it knows it: every later line names it.
static MOUNT: OnceLock<String> = OnceLock::new();

/// Names `mountpoint` in every line logged from now on (once per process).
pub fn set_mount(mountpoint: &Path) {
    let _ = MOUNT.set(mountpoint.display().to_string());
}

/// Starts the logger: lines at `level` (a `tracing` filter: `warn`, `info`, `debug`,
/// `cronusfs::fuse=debug,info`, …) and above, else at [`LEVEL_VAR`]'s, else at `default`.
pub fn init(level: Option<&str>, format: LogFormat, default: &str) -> Result<(), String> {
    let _ = SETTINGS.set((level.map(str::to_string), format));
    let from_env = std::env::var(LEVEL_VAR).ok().filter(|v| !v.is_empty());
    let (filter, origin) = match (level, from_env.as_deref()) {
        (Some(l), _) => (l, "--log-level"),
        (None, Some(l)) => (l, LEVEL_VAR),
        (None, None) => (default, "the default"),
    };
    let filter = EnvFilter::try_new(filter)
        .map_err(|e| format!("invalid log level {filter:?} ({origin}): {e}"))?;
    let lines = Lines {
        format,
        pid: std::process::id(),
    };
    // A second start in one process (tests) keeps the first logger.
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(lines)
        .try_init();
    Ok(())
}

/// The options that start a daemon child logging as this process was asked to (the
/// environment, [`LEVEL_VAR`] included, it inherits).
pub fn child_args() -> Vec<String> {
    let Some((level, format)) = SETTINGS.get() else {
        return Vec::new();
    };
    let mut args = vec!["--log-format".to_string(), format_name(*format).to_string()];
    if let Some(level) = level {
        args.extend(["--log-level".to_string(), level.clone()]);
    }
    args
}

fn format_name(format: LogFormat) -> &'static str {
    match format {
        LogFormat::Text => "text",
        LogFormat::Json => "json",
    }
}

/// Writes each event as one line on stderr.
struct Lines {
    format: LogFormat,
    pid: u32,
}

impl<S: Subscriber> Layer<S> for Lines {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let meta = event.metadata();
        if *meta.level() <= tracing::Level::WARN {
            // `status` shows the last one (`.cronusfs/health`, a session's heartbeat).
            let level = match *meta.level() {
                tracing::Level::ERROR => "ERROR",
                _ => "WARN",
            };
            cronusfs::health::note_problem(level, message_of(&fields));
        }
        let time = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
        let line = match self.format {
            LogFormat::Text => text_line(&time, meta.level().as_str(), self.pid, &fields),
            LogFormat::Json => json_line(&time, meta, self.pid, fields),
        };
        // One write per line, so lines of two threads never interleave.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

/// An event's message and other fields, in the order given.
#[derive(Default)]
struct Fields {
    message: String,
    others: Vec<(&'static str, Value)>,
}

impl Fields {
    fn put(&mut self, field: &Field, value: Value) {
        match (field.name(), value) {
            ("message", Value::String(s)) => self.message = s,
            (name, value) => self.others.push((name, value)),
        }
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, Value::String(format!("{value:?}")));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::String(value.to_string()));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::from(value));
    }
}

/// `TIME LEVEL cronusfs[PID] MOUNT: MESSAGE key=value …`
fn text_line(time: &str, level: &str, pid: u32, fields: &Fields) -> String {
    let mut line = format!("{time} {level:<5} cronusfs[{pid}]");
    if let Some(mount) = MOUNT.get() {
        line.push(' ');
        line.push_str(mount);
    }
    line.push_str(": ");
    line.push_str(&message_of(fields));
    line.push('\n');
    line
}

/// `MESSAGE key=value …`: strings quoted, numbers not.
fn message_of(fields: &Fields) -> String {
    let mut text = fields.message.clone();
    for (name, value) in &fields.others {
        match value {
            Value::String(s) => text.push_str(&format!(" {name}={s:?}")),
            other => text.push_str(&format!(" {name}={other}")),
        }
    }
    text
}

/// One JSON object: `time`, `level`, `pid`, `mount` (in a daemon), `target`, `message`, then
/// the event's other fields.
fn json_line(time: &str, meta: &tracing::Metadata<'_>, pid: u32, fields: Fields) -> String {
    let mut object = Map::new();
    object.insert("time".into(), time.into());
    object.insert("level".into(), meta.level().as_str().into());
    object.insert("pid".into(), pid.into());
    if let Some(mount) = MOUNT.get() {
        object.insert("mount".into(), mount.as_str().into());
    }
    object.insert("target".into(), meta.target().into());
    object.insert("message".into(), fields.message.into());
    for (name, value) in fields.others {
        object.insert(name.into(), value);
    }
    format!("{}\n", Value::Object(object))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_line_quotes_strings_and_not_numbers() {
        let fields = Fields {
            message: "the commit failed".into(),
            others: vec![("ino", Value::from(7)), ("error", "disk full".into())],
        };
        let line = text_line("2026-12-07T07:00:00.000Z", "ERROR", 42, &fields);
        assert!(line.starts_with("2026-12-07T07:00:00.000Z ERROR cronusfs[42]"));
        assert!(line.ends_with(": the commit failed ino=7 error=\"disk full\"\n"));
    }
}
