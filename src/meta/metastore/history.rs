//! The catalogue's past as answers: what changed between two times (`diff`), and every change
//! of one node with who made it (`log`). Both cost what changed, not what exists: `diff` reads
//! the commits of its window and the nodes they name, `log` the versions of one node's rows.

use std::collections::{BTreeMap, BTreeSet};

use super::{Metastore, NodeProps, prop};
use crate::meta::Result;
use crate::storage::{Actor, Iden, Row, Stamp, Storage, Valu, ValuRef};

/// How a node differs between two times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// Absent at the first time, there at the second.
    Added,
    /// There at the first time, absent at the second.
    Removed,
    /// An object with another version (content) at the second time.
    Version,
    /// An object at another place.
    Renamed,
    /// Other rows (attributes, modes, times).
    Rows,
}

impl ChangeKind {
    /// Returns the word `diff` prints.
    pub fn word(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Removed => "removed",
            ChangeKind::Version => "version",
            ChangeKind::Renamed => "renamed",
            ChangeKind::Rows => "rows",
        }
    }
}

/// One node that changed between two times.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeChange {
    /// The node's kind (`object`, `dataset`, `partition`, `job`, `menu`, `config`, …).
    pub kind: String,
    /// How it changed.
    pub change: ChangeKind,
    /// Its place (an object's `DATASET/KEY/JOB/NAME`, other nodes' idens), at the second time
    /// if it is there then.
    pub place: String,
    /// Its iden (an object's or dataset's uuid).
    pub iden: String,
    /// What changed: `v1→v2 <content>`, `from <old place>`, or the props whose rows changed.
    pub detail: String,
}

/// One commit that changed a node, as `log` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    /// When it landed.
    pub stamp: Stamp,
    /// Who made it (none for what was there when history began).
    pub actor: Option<Actor>,
    /// The node's version after it (objects).
    pub version: Option<i64>,
    /// The node's content after it (objects).
    pub content: Option<String>,
    /// What it did: `created`, `version`, `renamed from …`, `rows …`, `deleted`.
    pub change: String,
}

/// The first value of `p` among `rows`, as text.
fn text_of(rows: &[Row], p: &str) -> Option<String> {
    NodeProps::new(rows).0.get(p).map(|v| v.to_string())
}

/// Returns a node's place: an object's path, a folder's or link's path spelled the same way
/// (`<ds>/<key>/<job>/<path>`, from its directory and its path in the job), a partition's
/// `<ds>/<key>`, any other node's iden.
fn place_of(iden: &str, rows: &[Row]) -> String {
    if let Some(path) = text_of(rows, prop::PATH) {
        return path;
    }
    let partition = text_of(rows, prop::PARTITION_OF).zip(text_of(rows, prop::PARTITION));
    if let Some((dataset, key)) = partition {
        return format!("{dataset}/{key}");
    }
    let placed = text_of(rows, prop::DIR).zip(text_of(rows, prop::OBJECT));
    if let Some((dir, object)) = placed {
        let job_dir: Vec<&str> = dir.splitn(4, '/').take(3).collect();
        return format!("{}/{object}", job_dir.join("/"));
    }
    iden.to_string()
}

/// Returns the props whose rows differ between `before` and `after`, in byte order.
fn changed_props(before: &[Row], after: &[Row]) -> Vec<String> {
    let gone = before.iter().filter(|r| !after.contains(r));
    let came = after.iter().filter(|r| !before.contains(r));
    let props: BTreeSet<&str> = gone.chain(came).map(|r| r.prop.as_str()).collect();
    props.into_iter().map(str::to_string).collect()
}

/// Says how a node with rows `before` (at the first time) and `after` (at the second) changed;
/// `None` when it did not.
fn classify(iden: &str, before: &[Row], after: &[Row]) -> Option<NodeChange> {
    let rows = if after.is_empty() { before } else { after };
    let kind = text_of(rows, prop::KIND).unwrap_or_else(|| "node".into());
    let (place, version) = (place_of(iden, rows), |r: &[Row]| text_of(r, prop::VERSION));
    let was = text_of(before, prop::KIND);
    let (change, detail) = if before.is_empty() && !after.is_empty() {
        (ChangeKind::Added, String::new())
    } else if !after.is_empty() && was.as_deref().is_some_and(|was| was != kind) {
        // One place, another kind of node (a folder's or link's iden is its place).
        (
            ChangeKind::Added,
            format!("replaced a {}", was.unwrap_or_default()),
        )
    } else if after.is_empty() && !before.is_empty() {
        (ChangeKind::Removed, String::new())
    } else if version(before) != version(after) {
        let content = text_of(after, prop::CONTENT).unwrap_or_default();
        let (old, new) = (
            version(before).unwrap_or_default(),
            version(after).unwrap_or_default(),
        );
        (ChangeKind::Version, format!("v{old}→v{new} {content}"))
    } else if place_of(iden, before) != place {
        (
            ChangeKind::Renamed,
            format!("from {}", place_of(iden, before)),
        )
    } else {
        let props = changed_props(before, after);
        if props.is_empty() {
            return None;
        }
        (ChangeKind::Rows, props.join(","))
    };
    Some(NodeChange {
        kind,
        change,
        place,
        iden: iden.to_string(),
        detail,
    })
}

impl<S: Storage> Metastore<S> {
    /// Returns the nodes that differ between times `t1` and `t2` (µs, `t1 < t2`), sorted by
    /// place; with `place`, only those whose place (at either time) is it or below it.
    pub fn diff(&self, t1: i64, t2: i64, place: Option<&str>) -> Result<Vec<NodeChange>> {
        let (then, later) = (self.store.as_of(t1)?, self.store.as_of(t2)?);
        let idens: BTreeSet<String> = (self.store.commits(t1, t2)?.into_iter())
            .flat_map(|c| c.nodes)
            .collect();
        let idens: Vec<Iden> = idens.into_iter().map(Iden::new).collect::<Result<_, _>>()?;
        let mut out = Vec::new();
        for batch in idens.chunks(256) {
            let (before, after) = (rows_by_node(&*then, batch)?, rows_by_node(&*later, batch)?);
            for (i, iden) in batch.iter().enumerate() {
                let Some(change) = classify(iden.as_str(), &before[i], &after[i]) else {
                    continue;
                };
                let under = |p: &str| place.is_none_or(|want| is_under(p, want));
                if under(&change.place) || under(&place_of(iden.as_str(), &before[i])) {
                    out.push(change);
                }
            }
        }
        out.sort_by(|a, b| (&a.place, &a.iden).cmp(&(&b.place, &b.iden)));
        Ok(out)
    }

    /// Returns every commit history keeps that changed node `iden`, oldest first.
    pub fn log(&self, iden: &Iden) -> Result<Vec<LogEntry>> {
        let mut by_stamp: BTreeMap<Stamp, (Vec<Row>, Vec<Row>)> = BTreeMap::new();
        for v in self.store.row_versions(iden)? {
            by_stamp.entry(v.born).or_default().0.push(v.row.clone());
            if let Some(died) = v.died {
                by_stamp.entry(died).or_default().1.push(v.row);
            }
        }
        let stamps: Vec<Stamp> = by_stamp.keys().copied().collect();
        let actors = self.store.commit_actors(&stamps)?;
        // The node's rows as the commits go by, by prop: each commit costs what it changed.
        let mut rows = NodeState::default();
        let mut out = Vec::with_capacity(stamps.len());
        for ((stamp, (added, removed)), actor) in by_stamp.into_iter().zip(actors) {
            let before = rows.summary(iden.as_str());
            for r in &removed {
                rows.remove(r);
            }
            for r in &added {
                rows.add(r);
            }
            let after = rows.summary(iden.as_str());
            let changed: BTreeSet<&str> = (added.iter().chain(&removed))
                .map(|r| r.prop.as_str())
                .collect();
            out.push(LogEntry {
                stamp,
                actor,
                version: after.version.as_deref().and_then(|v| v.parse().ok()),
                content: rows.first(prop::CONTENT),
                change: log_change(&before, &after, &changed),
            });
        }
        Ok(out)
    }
}

/// A node's rows, by prop (the values of each in the order they came).
#[derive(Default)]
struct NodeState {
    props: BTreeMap<String, Vec<Valu>>,
}

/// What `log` compares of a node before and after a commit.
struct Summary {
    exists: bool,
    version: Option<String>,
    place: String,
}

impl NodeState {
    fn add(&mut self, r: &Row) {
        self.props
            .entry(r.prop.clone())
            .or_default()
            .push(r.valu.clone());
    }

    fn remove(&mut self, r: &Row) {
        if let Some(values) = self.props.get_mut(&r.prop) {
            if let Some(at) = values.iter().position(|v| *v == r.valu) {
                values.remove(at);
            }
            if values.is_empty() {
                self.props.remove(&r.prop);
            }
        }
    }

    fn first(&self, p: &str) -> Option<String> {
        self.props.get(p)?.first().map(Valu::to_string)
    }

    fn summary(&self, iden: &str) -> Summary {
        Summary {
            exists: !self.props.is_empty(),
            version: self.first(prop::VERSION),
            place: self.first(prop::PATH).unwrap_or_else(|| iden.to_string()),
        }
    }
}

/// Says what one commit did to a node (as `classify` would of its rows before and after),
/// from what it changed: the props of the rows it added and removed.
fn log_change(before: &Summary, after: &Summary, changed: &BTreeSet<&str>) -> String {
    match (before.exists, after.exists) {
        (false, true) => "created".into(),
        (true, false) => "deleted".into(),
        _ if before.version != after.version => "version".into(),
        _ if before.place != after.place => format!("renamed from {}", before.place),
        _ if changed.is_empty() => "rows".into(),
        _ => format!(
            "rows {}",
            changed.iter().copied().collect::<Vec<_>>().join(",")
        ),
    }
}

/// Returns the rows of each of `idens` in `r`, one list per iden.
fn rows_by_node(r: &dyn Storage, idens: &[Iden]) -> Result<Vec<Vec<Row>>> {
    let mut out = vec![Vec::new(); idens.len()];
    r.visit_rows_by_idens(idens, &mut |i, p, v, t| {
        let valu = match v {
            ValuRef::Int(n) => Valu::Int(n),
            ValuRef::Str(s) => Valu::Str(s.to_string()),
        };
        out[i].push(Row::new(&idens[i], p, valu, t));
    })?;
    Ok(out)
}

/// Returns whether `place` is `want` or below it (`want` a prefix ending at a `/`).
fn is_under(place: &str, want: &str) -> bool {
    let want = want.trim_end_matches('/');
    place == want
        || place
            .strip_prefix(want)
            .is_some_and(|rest| rest.starts_with('/'))
}
