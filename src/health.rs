//! What a daemon knows of its own health, for `cronusfs status` (through `.cronusfs/health`) and,
//! on a shared store, for every other host (with each heartbeat): whether it hears other
//! hosts' announcements, whether its session and write lease are current, whether its content
//! cache works, and the last WARN or ERROR it logged. Each part is set where it is decided
//! (the announcements' listener, the heartbeat, the content cache, the logger); one process
//! serves one mount, so the record is the process's.

use std::sync::Mutex;
use std::time::SystemTime;

/// A part of a daemon's health.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The connection that hears other hosts' commits (a shared store only).
    Announcements,
    /// The session's heartbeat and the write lease held under it.
    Leases,
}

/// The state of one part: whether it is well, since when, and what it is doing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Condition {
    /// Whether it works as it should.
    pub ok: bool,
    /// Since when it has been well (or not): the last change of `ok`.
    pub since: SystemTime,
    /// What it is doing, or what is wrong and what follows from it.
    pub detail: String,
}

/// The last WARN or ERROR line the process logged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// When.
    pub at: SystemTime,
    /// `WARN` or `ERROR`.
    pub level: &'static str,
    /// The line's message and fields.
    pub message: String,
}

/// Everything recorded of the process's health.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Health {
    /// The announcements' connection, once a listener started.
    pub announcements: Option<Condition>,
    /// The heartbeat and write lease, once a session started.
    pub leases: Option<Condition>,
    /// The last WARN or ERROR.
    pub last_problem: Option<Problem>,
}

static HEALTH: Mutex<Health> = Mutex::new(Health {
    announcements: None,
    leases: None,
    last_problem: None,
});

fn lock() -> std::sync::MutexGuard<'static, Health> {
    HEALTH.lock().unwrap_or_else(|e| e.into_inner())
}

/// Records that `part` is well (`ok`) or not, doing `detail`; returns whether it was well
/// before (`None` the first time), so that a caller logs a change once, not at every check.
pub fn set(part: Part, ok: bool, detail: impl Into<String>) -> Option<bool> {
    let mut health = lock();
    let slot = match part {
        Part::Announcements => &mut health.announcements,
        Part::Leases => &mut health.leases,
    };
    let was = slot.as_ref().map(|c| c.ok);
    let since = match slot {
        Some(c) if c.ok == ok => c.since,
        _ => SystemTime::now(),
    };
    *slot = Some(Condition {
        ok,
        since,
        detail: detail.into(),
    });
    was
}

/// Records a WARN or ERROR line the process logged.
pub fn note_problem(level: &'static str, message: String) {
    lock().last_problem = Some(Problem {
        at: SystemTime::now(),
        level,
        message,
    });
}

/// Returns what is recorded now.
pub fn now() -> Health {
    lock().clone()
}

impl Condition {
    /// `DETAIL (since TIME)`.
    pub fn show_detail(&self) -> String {
        format!(
            "{} (since {})",
            self.detail,
            humantime::format_rfc3339_seconds(self.since)
        )
    }
}

impl Problem {
    /// `TIME LEVEL MESSAGE`.
    pub fn show(&self) -> String {
        format!(
            "{} {} {}",
            humantime::format_rfc3339_seconds(self.at),
            self.level,
            self.message
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_part_keeps_since_when_it_is_in_its_state_and_the_last_problem_is_kept() {
        assert_eq!(set(Part::Leases, true, "beating"), None);
        let first = now().leases.unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert_eq!(set(Part::Leases, true, "beating again"), Some(true));
        let again = now().leases.unwrap();
        assert_eq!(
            (again.since, again.detail.as_str()),
            (first.since, "beating again")
        );
        assert_eq!(set(Part::Leases, false, "heartbeat failed"), Some(true));
        let failing = now().leases.unwrap();
        assert!(failing.since > first.since);
        assert!(!failing.ok);
        assert!(
            failing
                .show_detail()
                .starts_with("heartbeat failed (since 20")
        );
        note_problem("WARN", "something".into());
        assert!(
            now()
                .last_problem
                .unwrap()
                .show()
                .ends_with("Z WARN something")
        );
    }
}
