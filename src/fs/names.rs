//! `KnownNames`: the objects this mount has seen at each path (`<ds>/<key>/<job>/<name>`), so
//! that a lookup the kernel repeats (its dentry expired or was dropped) fetches the object's
//! rows by id in one read instead of finding the id through the path index first. A hint only:
//! the rows fetched must still name that path (another host may have moved or removed it).

use std::collections::HashMap;
use std::sync::Mutex;

use crate::meta::ObjectId;

/// How many paths are remembered; a full map starts over.
const CAPACITY: usize = 1 << 17;

/// Paths and the object last seen at each.
#[derive(Default)]
pub struct KnownNames {
    paths: Mutex<HashMap<String, ObjectId>>,
}

impl KnownNames {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, ObjectId>> {
        // A map of hints: whatever a panic left is still only hints.
        self.paths.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Returns the object last seen at `path`, if any.
    pub fn get(&self, path: &str) -> Option<ObjectId> {
        self.lock().get(path).copied()
    }

    /// Remembers that `id` is at `path`.
    pub fn remember(&self, path: String, id: ObjectId) {
        let mut paths = self.lock();
        if paths.len() >= CAPACITY {
            paths.clear();
        }
        paths.insert(path, id);
    }

    /// Returns the paths this mount last saw object `id` at.
    pub fn paths_of(&self, id: ObjectId) -> Vec<String> {
        let paths = self.lock();
        paths
            .iter()
            .filter(|(_, seen)| **seen == id)
            .map(|(path, _)| path.clone())
            .collect()
    }

    /// Forgets `path` (the object there moved or went).
    pub fn forget(&self, path: &str) {
        self.lock().remove(path);
    }
}
