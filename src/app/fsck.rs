//! `cronusfs fsck`: the row indexes, every content's chunks and hashes, the content of every
//! object, menu and configuration, and the daemon's content cache.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Result, bail};
use cronusfs::meta::{ContentId, ContentStore, prop};
use cronusfs::storage::{Iden, Storage};

use super::{Catalog, Console};

/// Runs `fsck`: every content's chunks and hashes, every object's content, the row indexes.
/// An engine error (a damaged file) is one more problem, not the end of the check; each
/// problem names the object, menu, configuration, dataset, content or row it affects. When the
/// list of contents cannot be read whole, that is one problem, and the content of each object
/// and message is checked on its own: only those whose own content fails are named.
pub fn run(m: &Catalog, io: &mut Console<'_>, cache: Option<&Path>) -> Result<()> {
    let mut problems = match m.storage().check_indexes() {
        Ok(found) => found,
        Err(e) => vec![format!("row indexes: {e}")],
    };
    let content = m.content();
    let mut contents = Contents::check(content, &mut problems);
    check_messages(m, &mut contents, &mut problems);
    let objects = check_objects(m, &mut contents, &mut problems);
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

/// The stored contents as fsck checks them: all at once, from the list of contents; or, when
/// that list cannot be read whole (a damaged file under it), each one an object or a message
/// refers to, on its own, when first asked about.
struct Contents<'c> {
    store: ContentStore<'c>,
    /// How many contents the list of contents holds; `None` when it could not be read.
    listed: Option<usize>,
    /// What each content checked so far is.
    found: HashMap<ContentId, Found>,
}

impl<'c> Contents<'c> {
    /// Checks every content of the list of contents, adding what is wrong to `problems`;
    /// when the list cannot be read, says so there and leaves each content to [`Contents::of`].
    fn check(store: ContentStore<'c>, problems: &mut Vec<String>) -> Self {
        let mut contents = Contents {
            store,
            listed: None,
            found: HashMap::new(),
        };
        match store.ids() {
            Ok(ids) => {
                for id in &ids {
                    let found = contents.verify(*id, problems);
                    contents.found.insert(*id, found);
                }
                contents.listed = Some(ids.len());
            }
            Err(e) => problems.push(format!("the list of contents: {e}")),
        }
        contents
    }

    /// Returns what content `id` is: as checked from the list of contents (missing when not
    /// in it), or, when the list could not be read, checked now on its own (once; what is
    /// wrong goes to `problems`).
    fn of(&mut self, id: ContentId, problems: &mut Vec<String>) -> Found {
        if let Some(found) = self.found.get(&id) {
            return *found;
        }
        let found = match self.listed {
            Some(_) => Found::Missing,
            None => self.check_one(id, problems),
        };
        self.found.insert(id, found);
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

/// Names every object whose content is damaged or missing; returns how many objects there are.
fn check_objects(m: &Catalog, contents: &mut Contents<'_>, problems: &mut Vec<String>) -> usize {
    let datasets = m.datasets().unwrap_or_else(|e| {
        problems.push(format!("the list of datasets: {e}"));
        Vec::new()
    });
    let mut objects = 0;
    for ds in datasets {
        let listed = match m.list(ds, "", "") {
            Ok(listed) => listed,
            Err(e) => {
                problems.push(format!("dataset {ds}: its objects: {e}"));
                continue;
            }
        };
        for o in listed {
            objects += 1;
            match contents.of(o.content, problems) {
                Found::Sound => {}
                Found::Damaged => problems.push(format!(
                    "object {} ({}): its content {} is damaged",
                    o.path, o.id, o.content
                )),
                Found::Missing => problems.push(format!(
                    "object {} ({}) refers to missing content {}",
                    o.path, o.id, o.content
                )),
            }
        }
    }
    objects
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
