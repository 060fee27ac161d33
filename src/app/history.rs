//! `cronusfs diff` and `log`: the store's past from the command line, as lines a script can
//! read (tab-separated, times in RFC 3339 that `--at` takes back).

use anyhow::{Result, bail};
use cronusfs::meta::{DatasetId, LogEntry, MetaError, ObjectId, ObjectPath, RestorePlace};
use cronusfs::storage::history::{parse_time, show_micros};
use cronusfs::storage::{Iden, Storage};

use super::catalog::{Place, as_of};
use super::{Catalog, Console};
use crate::cli::SnapshotCommand;

/// Reads a time argument (RFC 3339) as µs, or says what one looks like.
pub fn time_arg(text: &str) -> Result<i64> {
    match parse_time(text) {
        Some(micros) => Ok(micros),
        None => bail!("{text:?} is not a time: give one as RFC 3339, like 2026-12-06T01:30:00Z"),
    }
}

/// Runs `diff T1 [T2] [PLACE]`.
pub fn diff(m: &Catalog, io: &mut Console<'_>, args: &[String]) -> Result<()> {
    let t1 = time_arg(&args[0])?;
    let (mut t2, mut place) = (None, None);
    for arg in &args[1..] {
        match parse_time(arg) {
            Some(t) if t2.is_none() && place.is_none() => t2 = Some(t),
            _ if place.is_none() => place = Some(arg.trim_start_matches("datasets/")),
            _ => bail!("diff takes T1, then T2 and PLACE: {arg:?} is one too many"),
        }
    }
    let t2 = match t2 {
        Some(t) => t,
        None => m.storage().history_bounds()?.now,
    };
    if t2 < t1 {
        bail!(
            "T2 ({}) is before T1 ({})",
            show_micros(t2),
            show_micros(t1)
        );
    }
    for c in m.diff(t1, t2, place)? {
        let (kind, change) = (c.kind, c.change.word());
        let (place, iden, detail) = (field(&c.place), field(&c.iden), field(&c.detail));
        writeln!(io.out, "{kind}\t{change}\t{place}\t{iden}\t{detail}")?;
    }
    Ok(())
}

/// Runs `log OBJECT|UUID [--at T]`.
pub fn log(m: &Catalog, io: &mut Console<'_>, node: &str, at: Option<&str>) -> Result<()> {
    let iden = match node.parse::<ObjectId>() {
        Ok(id) => id.iden(),
        Err(_) if uuid::Uuid::parse_str(node).is_ok() => Iden::new(node)?,
        // The iden `diff` prints for a folder, link, partition or job.
        Err(_)
            if ["/folders/", "/partitions/", "/jobs/"]
                .iter()
                .any(|p| node.contains(p)) =>
        {
            Iden::new(node)?
        }
        Err(_) => place_iden(m, node, at)?,
    };
    let entries = m.log(&iden)?;
    if entries.is_empty() {
        bail!("history keeps nothing of {node}");
    }
    for e in entries {
        writeln!(io.out, "{}", log_line(&e))?;
    }
    Ok(())
}

/// Returns the iden of what is at `place` (`DATASET/KEY/JOB/NAME`), at `at` if given: an
/// object, else a folder or link.
fn place_iden(m: &Catalog, place: &str, at: Option<&str>) -> Result<Iden> {
    let then = as_of(m, at)?;
    let m = then.as_ref().unwrap_or(m);
    let path = Place::parse(place)?.object(place, None)?;
    match m.object(&path) {
        Ok(o) => Ok(o.id.iden()),
        Err(MetaError::NoSuchObject(_)) if m.placed_at(&path)?.is_some() => {
            Ok(Catalog::folder_iden(&path)?)
        }
        Err(e) => Err(e.into()),
    }
}

/// Returns one `log` line.
fn log_line(e: &LogEntry) -> String {
    let time = match e.stamp.micros {
        0 => "before-history".to_string(),
        t => show_micros(t),
    };
    let who = match &e.actor {
        Some(a) => format!(
            "{}\t{}\t{}\t{}",
            field(&a.host),
            a.pid,
            a.uid,
            field(&a.what)
        ),
        None => "-\t-\t-\t-".to_string(),
    };
    let version = e.version.map_or("-".into(), |v| v.to_string());
    let content = e.content.as_deref().unwrap_or("-");
    format!("{time}\t{who}\t{version}\t{content}\t{}", field(&e.change))
}

/// Returns `text` as one field of a tab-separated line: a tab or line break in it (a command
/// line can hold any) becomes a space.
pub(super) fn field(text: &str) -> String {
    text.replace(|c: char| c.is_control(), " ")
}

/// Runs `restore PLACE|UUID --at T`.
pub fn restore(m: &Catalog, io: &mut Console<'_>, place: &str, at: &str) -> Result<()> {
    let at = time_arg(at)?;
    let report = match place.parse::<ObjectId>() {
        // A bare uuid names an object, or a dataset (which `Place` reads below).
        Ok(id) if !m.at(at)?.has_dataset(place.parse()?)? => m.restore_object(id, at)?,
        _ => {
            let p = Place::parse(place.trim_start_matches("datasets/"))?;
            match (p.key, p.job, p.name) {
                (Some(key), Some(job), Some(name)) => {
                    let path = ObjectPath::new(p.dataset, &key, job, &name);
                    let Some(id) = m.at(at)?.object_id_at(&path)? else {
                        bail!("no object {path} at {}", show_micros(at));
                    };
                    m.restore_object(id, at)?
                }
                (partition, job, _) => {
                    let place = RestorePlace {
                        dataset: p.dataset,
                        partition,
                        job,
                    };
                    m.restore_place(&place, at)?
                }
            }
        }
    };
    writeln!(
        io.out,
        "restored {} objects, removed {}, {} unchanged",
        report.restored, report.removed, report.unchanged
    )?;
    Ok(())
}

/// Runs `snapshot create|ls|rm`.
pub fn snapshot(m: &Catalog, io: &mut Console<'_>, cmd: SnapshotCommand) -> Result<()> {
    match cmd {
        SnapshotCommand::Create { name, dataset, at } => {
            let at = at.as_deref().map(time_arg).transpose()?;
            let dataset = match dataset {
                Some(d) => Some(d.trim_start_matches("datasets/").parse::<DatasetId>()?),
                None => None,
            };
            let made = m.create_snapshot(&name, at, dataset)?;
            writeln!(io.out, "{}\t{}", made.name, show_micros(made.at))?;
        }
        SnapshotCommand::Ls => {
            for s in m.snapshots()? {
                let dataset = s.dataset.map_or("-".to_string(), |d| d.to_string());
                let (at, made) = (show_micros(s.at), show_micros(s.created));
                writeln!(io.out, "{}\t{at}\t{dataset}\t{made}", s.name)?;
            }
        }
        SnapshotCommand::Rm { name } => {
            m.remove_snapshot(&name)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cronusfs::storage::{Actor, Stamp};

    #[test]
    fn a_log_line_is_eight_fields_whatever_the_command_line_holds() {
        let entry = LogEntry {
            stamp: Stamp::at(1_796_520_600_250_000),
            actor: Some(Actor {
                host: "h\tost".into(),
                pid: 7,
                uid: 0,
                what: "cronusfs put 'a\tb\nc' x".into(),
            }),
            version: Some(2),
            content: None,
            change: "version".into(),
        };
        let line = log_line(&entry);
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields.len(), 8, "{line:?}");
        assert_eq!(fields[0], "2026-12-06T01:30:00.250000Z");
        assert_eq!(fields[4], "cronusfs put 'a b c' x");
        assert!(!line.contains('\n'));
    }
}
