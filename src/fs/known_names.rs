//! `KnownNames`: the objects this mount has seen at each path (`<ds>/<key>/<job>/<name>`), so
//! that a lookup the kernel repeats (its dentry expired or was dropped) fetches the object's
//! rows by id in one read instead of finding the id through the path index first. A hint only:
//! the rows fetched must still name that path (another host may have moved or removed it).
//! Also the one path a lookup last found free, so that the create the kernel sends right after
//! that lookup does not look again.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::meta::{DatasetId, ObjectId, ObjectPath};

/// How many paths are remembered; a full map starts over.
const CAPACITY: usize = 1 << 17;

/// Paths and the object last seen at each, both ways.
#[derive(Default)]
struct Seen {
    by_path: HashMap<String, ObjectId>,
    by_id: HashMap<ObjectId, Vec<String>>,
}

/// Paths and the object last seen at each.
#[derive(Default)]
pub struct KnownNames {
    seen: Mutex<Seen>,
    /// The path a lookup last found free, and the core's generation before it looked.
    free: Mutex<Option<(String, u64)>>,
    /// Whether listings remember the names they show too (set once the core hears other
    /// processes' announcements: a name the kernel got from a listing must be forgotten too).
    listed_too: AtomicBool,
}

impl KnownNames {
    fn lock(&self) -> std::sync::MutexGuard<'_, Seen> {
        // A map of hints: whatever a panic left is still only hints.
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Returns the object last seen at `path`, if any.
    pub fn get(&self, path: &str) -> Option<ObjectId> {
        self.lock().by_path.get(path).copied()
    }

    /// Remembers that `id` is at `path`.
    pub fn remember(&self, path: String, id: ObjectId) {
        let mut seen = self.lock();
        if seen.by_path.len() >= CAPACITY {
            *seen = Seen::default();
        }
        if let Some(old) = seen.by_path.insert(path.clone(), id) {
            unlink(&mut seen.by_id, old, &path);
        }
        let paths = seen.by_id.entry(id).or_default();
        if !paths.contains(&path) {
            paths.push(path);
        }
    }

    /// Remembers that a lookup that began at core generation `generation` found nothing at
    /// `path`.
    pub fn remember_free(&self, path: String, generation: u64) {
        *self.free.lock().unwrap_or_else(|e| e.into_inner()) = Some((path, generation));
    }

    /// Returns whether the last lookup found `path` free and the core's generation has not
    /// moved since (it was `generation` before the caller began): nothing changed through the
    /// core, nor was a change elsewhere heard, in between.
    pub fn was_free(&self, path: &str, generation: u64) -> bool {
        let free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        free.as_ref()
            .is_some_and(|(p, g)| p == path && *g == generation)
    }

    /// From now on, listings remember the names they show ([`KnownNames::remember_listed`]).
    pub fn remember_listings(&self) {
        self.listed_too.store(true, Ordering::Relaxed);
    }

    /// Remembers that a listing showed `id` at `path`, when listings are remembered.
    pub fn remember_listed(&self, path: &ObjectPath, id: ObjectId) {
        if self.listed_too.load(Ordering::Relaxed) {
            self.remember(path.key(), id);
        }
    }

    /// Returns the paths this mount last saw object `id` at.
    /// Returns the dataset of object `id`, if this mount has seen it at a path.
    pub fn dataset_of(&self, id: ObjectId) -> Option<DatasetId> {
        let seen = self.lock();
        let path = seen.by_id.get(&id)?.first()?;
        path.split('/').next()?.parse().ok()
    }

    pub fn paths_of(&self, id: ObjectId) -> Vec<String> {
        self.lock().by_id.get(&id).cloned().unwrap_or_default()
    }

    /// Forgets `path` (the object there moved or went).
    pub fn forget(&self, path: &str) {
        let mut seen = self.lock();
        if let Some(id) = seen.by_path.remove(path) {
            unlink(&mut seen.by_id, id, path);
        }
    }
}

/// Removes `path` from the paths of `id`.
fn unlink(by_id: &mut HashMap<ObjectId, Vec<String>>, id: ObjectId, path: &str) {
    if let Some(paths) = by_id.get_mut(&id) {
        paths.retain(|p| p != path);
        if paths.is_empty() {
            by_id.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_ways_stay_in_step() {
        let known = KnownNames::default();
        let (a, b) = (ObjectId::random(), ObjectId::random());
        known.remember("d/k/0/x".into(), a);
        known.remember("d/k/0/y".into(), a);
        assert_eq!(known.paths_of(a), ["d/k/0/x", "d/k/0/y"]);
        known.remember("d/k/0/x".into(), b); // Another object at x now.
        assert_eq!(
            (known.get("d/k/0/x"), known.paths_of(a)),
            (Some(b), vec!["d/k/0/y".into()])
        );
        known.forget("d/k/0/y");
        assert!(known.paths_of(a).is_empty() && known.get("d/k/0/y").is_none());
        assert_eq!(known.paths_of(b), ["d/k/0/x"]);
    }
}
