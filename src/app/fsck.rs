//! `cronusfs fsck`: the row indexes, every content's chunks and hashes, the content of every
//! object, menu and configuration, and the daemon's content cache, in memory that does not
//! grow with the store.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use anyhow::{Result, bail};
use cronusfs::meta::sorted_runs::{Membership, RUN_BYTES, SortedRuns, visit_into};
use cronusfs::meta::{ContentId, ContentStore, MetaError, ObjectId, prop};
use cronusfs::storage::{Iden, PropQuery, Row, Storage, Valu};
use uuid::Uuid;

use super::progress::{Progress, Unit};
use super::{Catalog, Console};

/// Runs `fsck`: every content's chunks and hashes, every object's content, the row indexes.
/// An engine error (a damaged file) is one more problem, not the end of the check; each
/// problem names the object, menu, configuration, dataset, content or row it affects. When the
/// list of contents cannot be read whole, that is one problem, and the content of each object
/// and message is checked on its own: only those whose own content fails are named. Every list
/// is read a page at a time or kept in sorted runs on disk: the memory does not grow with the
/// store.
pub fn run(m: &Catalog, io: &mut Console<'_>, cache: Option<&Path>) -> Result<()> {
    let mut problems = match m.storage().check_indexes() {
        Ok(found) => found,
        Err(e) => vec![format!("row indexes: {e}")],
    };
    let content = m.content();
    let mut contents = Contents::check(content, &mut problems)?;
    check_messages(m, &mut contents, &mut problems);
    let objects = check_objects(m, &mut contents, &mut problems)?;
    match m.placed_problems(m.storage()) {
        Ok(found) => problems.extend(found),
        Err(e) => problems.push(format!("folders and links: {e}")),
    }
    let cached = check_cache(&content, cache, io, &mut problems)?;
    for p in &problems {
        writeln!(io.out, "{p}")?;
    }
    if !problems.is_empty() {
        bail!("{} problems found", problems.len());
    }
    writeln!(
        io.out,
        "clean: {} contents, {objects} objects, row indexes agree{cached}",
        contents.listed.unwrap_or_default()
    )?;
    Ok(())
}

/// What fsck found of one content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Found {
    /// Every chunk present, readable and matching its hash; the bytes hash to the id.
    Sound,
    /// Its manifest or a chunk unreadable, missing or not matching.
    Damaged,
    /// Not stored at all.
    Missing,
}

/// The stored contents as fsck checks them: all of them, from the list of contents; or, when
/// that list cannot be read whole (a damaged file under it), each one an object or a message
/// refers to, on its own, when first asked about.
struct Contents<'c> {
    store: ContentStore<'c>,
    /// How many contents the list of contents holds; `None` when it could not be read.
    listed: Option<u64>,
    /// The listed contents, as a sorted set, until the objects are checked against them.
    ids: Option<SortedRuns<32>>,
    /// The contents found damaged (only those are kept in memory).
    damaged: HashSet<ContentId>,
    /// When the list could not be read: what each content checked on its own is.
    checked: HashMap<ContentId, Found>,
}

impl<'c> Contents<'c> {
    /// Checks every content of the list of contents, adding what is wrong to `problems`;
    /// when the list cannot be read, says so there and leaves each content to be checked on
    /// its own.
    fn check(store: ContentStore<'c>, problems: &mut Vec<String>) -> Result<Self> {
        let mut contents = Contents {
            store,
            listed: None,
            ids: None,
            damaged: HashSet::new(),
            checked: HashMap::new(),
        };
        let ids = match store.sorted_ids(RUN_BYTES) {
            Ok(ids) => ids,
            Err(e) => {
                problems.push(format!("the list of contents: {e}"));
                return Ok(contents);
            }
        };
        let mut bar = Progress::new("fsck contents", Unit::Items, Some(ids.pushed()));
        let (mut again, mut count) = (SortedRuns::new(RUN_BYTES), 0);
        for id in ids.into_sorted()? {
            let id = ContentId::from_bytes(id?);
            if contents.verify(id, problems) == Found::Damaged {
                contents.damaged.insert(id);
            }
            again.push(*id.as_bytes())?;
            count += 1;
            bar.update(count);
        }
        (contents.listed, contents.ids) = (Some(count), Some(again));
        Ok(contents)
    }

    /// Returns what content `id` is, asked in any order (menus and configurations): damaged
    /// if checked so, else whether its manifest is stored; checked now on its own when the
    /// list could not be read.
    fn of(&mut self, id: ContentId, problems: &mut Vec<String>) -> Found {
        if self.damaged.contains(&id) {
            return Found::Damaged;
        }
        if self.listed.is_some() {
            return match self.store.contains(id) {
                Ok(true) => Found::Sound,
                Ok(false) => Found::Missing,
                Err(e) => {
                    problems.push(format!("content {id}: its manifest: {e}"));
                    Found::Damaged
                }
            };
        }
        if let Some(found) = self.checked.get(&id) {
            return *found;
        }
        let found = self.check_one(id, problems);
        self.checked.insert(id, found);
        found
    }

    /// Checks content `id` without the list of contents: its manifest, then its chunks.
    fn check_one(&self, id: ContentId, problems: &mut Vec<String>) -> Found {
        match self.store.contains(id) {
            Ok(true) => self.verify(id, problems),
            Ok(false) => Found::Missing,
            Err(e) => {
                problems.push(format!("content {id}: its manifest: {e}"));
                Found::Damaged
            }
        }
    }

    /// Checks every chunk of stored content `id` and its hash.
    fn verify(&self, id: ContentId, problems: &mut Vec<String>) -> Found {
        let found = self
            .store
            .verify(id)
            .unwrap_or_else(|e| vec![format!("content {id}: {e}")]);
        let verdict = match found.is_empty() {
            true => Found::Sound,
            false => Found::Damaged,
        };
        problems.extend(found);
        verdict
    }
}

/// Names every menu and configuration whose content is damaged.
fn check_messages(m: &Catalog, contents: &mut Contents<'_>, problems: &mut Vec<String>) {
    for kind in ["menu", "config"] {
        for uuid in m.registered(kind).unwrap_or_default() {
            let Ok(iden) = Iden::new(uuid.as_str()) else {
                continue;
            };
            let rows = m.node_rows(&iden).unwrap_or_default();
            let content: Option<ContentId> = rows
                .iter()
                .find(|r| r.prop == prop::CONTENT)
                .and_then(|r| r.valu.to_string().parse().ok());
            if let Some(id) = content
                && contents.of(id, problems) == Found::Damaged
            {
                problems.push(format!("{kind} {uuid}: its content {id} is damaged"));
            }
        }
    }
}

/// Names every object whose content is damaged or missing; returns how many objects there
/// are. The objects' content rows (a content id and the node's uuid each) are gathered in
/// sorted runs and merged with the sorted list of contents: one walk of each, whatever the
/// store holds.
fn check_objects(
    m: &Catalog,
    contents: &mut Contents<'_>,
    problems: &mut Vec<String>,
) -> Result<u64> {
    let object = Valu::from("object");
    let objects = PropQuery::new(prop::KIND).valu(&object);
    let count = m.storage().size_by_prop(&objects).unwrap_or_else(|e| {
        problems.push(format!("the list of objects: {e}"));
        0
    });
    let mut rows = SortedRuns::<48>::new(RUN_BYTES);
    let gathered = visit_into(
        |visit| (m.storage()).visit_rows_by_prop(&PropQuery::new(prop::CONTENT), visit),
        |row: Row| push_content_row(&mut rows, &row),
    );
    if let Err(e) = gathered {
        problems.push(format!("the objects' contents: {e}"));
        return Ok(count as u64);
    }
    let mut listed = contents.ids.take().map(Membership::of).transpose()?;
    let mut bar = Progress::new("fsck objects", Unit::Items, Some(rows.pushed()));
    for (done, record) in rows.into_sorted()?.enumerate() {
        bar.update(done as u64 + 1);
        let (id, node) = split_record(record?);
        let found = match (&mut listed, contents.damaged.contains(&id)) {
            (_, true) => Found::Damaged,
            (Some(listed), false) => match listed.contains(id.as_bytes())? {
                true => Found::Sound,
                // Not listed: stored since the list was read (a store in use), or missing.
                false => contents.of(id, problems),
            },
            (None, false) => contents.of(id, problems),
        };
        if found != Found::Sound {
            name_object(m, node, id, found, problems);
        }
    }
    Ok(count as u64)
}

/// Adds `row` (of `cronus:content`) to `rows` as 48 bytes: the content id, then the node's
/// uuid. A node not named by a uuid is no object, and is left out.
fn push_content_row(rows: &mut SortedRuns<48>, row: &Row) -> cronusfs::meta::Result<()> {
    let Ok(node) = Uuid::parse_str(row.iden.as_str()) else {
        return Ok(());
    };
    let id: ContentId = row.valu.to_string().parse()?;
    let mut record = [0u8; 48];
    record[..32].copy_from_slice(id.as_bytes());
    record[32..].copy_from_slice(node.as_bytes());
    Ok(rows.push(record)?)
}

/// Returns the content id and the node of a record of [`push_content_row`].
fn split_record(record: [u8; 48]) -> (ContentId, Uuid) {
    let (id, node) = record.split_at(32);
    let id = ContentId::from_bytes(id.try_into().expect("32 bytes"));
    (id, Uuid::from_bytes(node.try_into().expect("16 bytes")))
}

/// Names object `node` in `problems`, whose content `content` is `found`; a node that is no
/// object (a menu or configuration, checked on their own) is left out.
fn name_object(
    m: &Catalog,
    node: Uuid,
    content: ContentId,
    found: Found,
    problems: &mut Vec<String>,
) {
    let Ok(id) = node.to_string().parse::<ObjectId>() else {
        return;
    };
    let o = match m.object_by_id(id) {
        Ok(o) => o,
        Err(MetaError::NoSuchObject(_)) => return,
        Err(e) => return problems.push(format!("object {id}: its rows: {e}")),
    };
    if o.content != content {
        // A new version since the rows were read (a store in use): that row is gone.
        return;
    }
    problems.push(match found {
        Found::Damaged => format!("object {} ({id}): its content {content} is damaged", o.path),
        Found::Missing => format!(
            "object {} ({id}) refers to missing content {content}",
            o.path
        ),
        Found::Sound => return,
    });
}

/// Checks the daemon's content cache in `cache`. The cache is not the store: what is wrong
/// there is removed and said, not a problem. Returns what the line of a clean store adds.
fn check_cache(
    content: &ContentStore<'_>,
    cache: Option<&Path>,
    io: &mut Console<'_>,
    problems: &mut Vec<String>,
) -> Result<String> {
    Ok(
        match cache.map(|dir| (dir, cronusfs::fs::check_cache(dir, content))) {
            Some((_, Ok(check))) => {
                for removed in &check.removed {
                    writeln!(io.out, "{removed}")?;
                }
                format!(", {} cache entries sound", check.sound)
            }
            Some((dir, Err(e))) => {
                problems.push(format!("content cache {}: {e}", dir.display()));
                String::new()
            }
            None => String::new(),
        },
    )
}
