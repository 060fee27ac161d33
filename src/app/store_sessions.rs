//! `status --store STORE`, `session-ttl` and `history-retention`: the sessions a store records,
//! the one time-to-live the store holds them to (by the store's clock), and how long it keeps history.

use std::time::Duration;

use cronusfs::storage::history::show_micros;

use anyhow::Result;
use cronusfs::storage::Storage;

use super::{Catalog, Console};

/// Runs `status --store STORE`: every session of the store, one line each, timed by the
/// store's clock, with the time-to-live it is held to; a daemon's then says, on a line of its
/// own, what it said of its health at its last heartbeat.
pub fn status(m: &Catalog, io: &mut Console<'_>) -> Result<()> {
    let sessions = m.sessions().list()?;
    if sessions.is_empty() {
        writeln!(io.out, "no sessions: the store is not mounted anywhere")?;
    }
    let bounds = m.storage().history_bounds()?;
    writeln!(
        io.out,
        "history: kept {} (from {}), since {}, {} snapshots",
        duration(m.history_retention()?),
        show_micros(bounds.floor),
        show_micros(bounds.since),
        m.snapshots()?.len()
    )?;
    let now = m.storage().server_time()?;
    let store_ttl = m.sessions().ttl()?.as_millis() as i64;
    for s in sessions {
        writeln!(
            io.out,
            "{}\tpid {}\t{}\tup {:.0} s\tbeat {:.1} s ago\tttl {} s",
            s.host,
            s.pid,
            s.mountpoint,
            (now - s.started) as f64 / 1000.0,
            (now - s.heartbeat) as f64 / 1000.0,
            seconds(s.ttl_under(store_ttl))
        )?;
        if let Some(health) = &s.health {
            writeln!(io.out, "  health: {health}")?;
        }
    }
    Ok(())
}

/// Runs `session-ttl [SECONDS]`: prints the store's session time-to-live, or sets it.
pub fn session_ttl(m: &Catalog, io: &mut Console<'_>, set: Option<Duration>) -> Result<()> {
    let Some(ttl) = set else {
        let ttl = m.sessions().ttl()?;
        writeln!(io.out, "{} s", seconds(ttl.as_millis() as i64))?;
        return Ok(());
    };
    let old = m.sessions().set_ttl(ttl)?;
    writeln!(
        io.out,
        "session time-to-live {} s (was {} s): every process of the store takes it at its \
         next heartbeat",
        seconds(ttl.as_millis() as i64),
        seconds(old.as_millis() as i64)
    )?;
    Ok(())
}

/// Runs `history-retention [DURATION]`: prints how long the store keeps its history, or
/// sets it.
pub fn history_retention(m: &Catalog, io: &mut Console<'_>, set: Option<Duration>) -> Result<()> {
    let Some(retention) = set else {
        writeln!(io.out, "{}", duration(m.history_retention()?))?;
        return Ok(());
    };
    let old = m.set_history_retention(retention)?;
    writeln!(
        io.out,
        "history kept {} (was {}): the next gc reclaims what only older times need",
        duration(retention),
        duration(old)
    )?;
    Ok(())
}

/// Returns `d` in the largest unit that shows it whole (`30 days`, `12 hours`, `90 s`).
fn duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => "0 s".into(),
        s if s % 86_400 == 0 => format!("{} days", s / 86_400),
        s if s % 3600 == 0 => format!("{} hours", s / 3600),
        s if s % 60 == 0 => format!("{} minutes", s / 60),
        s => format!("{s} s"),
    }
}

/// Returns `ms` milliseconds as seconds, without trailing zeros (`30`, `1.5`, `0.25`).
fn seconds(ms: i64) -> String {
    let text = format!("{}.{:03}", ms / 1000, (ms % 1000).abs());
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn seconds_are_shown_without_trailing_zeros() {
        assert_eq!(super::seconds(30_000), "30");
        assert_eq!(super::seconds(1500), "1.5");
        assert_eq!(super::seconds(250), "0.25");
        assert_eq!(super::seconds(100_000), "100");
    }
}
