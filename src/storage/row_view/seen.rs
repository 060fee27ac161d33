//! What a writing view read of the committed `ByIden` entries: their values, and the spans it
//! read to their end. At commit, a row the view replaces or adds is then known to be stored
//! (with its birth) or absent without reading it again: a replaced attribute, a new object.

use std::collections::HashMap;

/// The most committed entries a view remembers; past it, its commit reads the rest.
const MAX_SEEN: usize = 4096;

/// The committed `ByIden` entries a view read, and the spans it read whole.
#[derive(Default)]
pub(super) struct Seen {
    /// Each key read: its committed value (`None`: present, read without its value).
    values: HashMap<Vec<u8>, Option<Vec<u8>>>,
    /// Spans `[start, end)` read to their end: a key in one that is not in `values` is absent.
    spans: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// Whether it stopped remembering (too many entries).
    full: bool,
}

/// What a view knows of a committed key.
pub(super) enum Known<'s> {
    /// Stored, with this value.
    Stored(&'s [u8]),
    /// Not stored.
    Absent,
    /// Not known: read it.
    Unknown,
}

impl Seen {
    /// Remembers that committed `key` holds `value` (`None`: present, value not read).
    pub fn saw(&mut self, key: &[u8], value: Option<&[u8]>) {
        if self.full {
            return;
        }
        if self.values.len() >= MAX_SEEN {
            self.full = true;
            return;
        }
        self.values.insert(key.to_vec(), value.map(<[u8]>::to_vec));
    }

    /// Remembers that every committed key of `[start, end)` was read (and passed to
    /// [`Seen::saw`]); returns at once when it stopped remembering meanwhile.
    pub fn read_whole(&mut self, start: &[u8], end: Option<&[u8]>) {
        if !self.full && self.spans.len() < MAX_SEEN {
            self.spans.push((start.to_vec(), end.map(<[u8]>::to_vec)));
        }
    }

    /// Remembers that committed `key` is absent (a point read found nothing).
    pub fn saw_absent(&mut self, key: &[u8]) {
        let end = [key, &[0]].concat();
        self.read_whole(key, Some(&end));
    }

    /// Returns what the view knows of committed `key`.
    pub fn known(&self, key: &[u8]) -> Known<'_> {
        match self.values.get(key) {
            Some(Some(value)) => Known::Stored(value),
            Some(None) => Known::Unknown,
            None if self.covers(key) => Known::Absent,
            None => Known::Unknown,
        }
    }

    fn covers(&self, key: &[u8]) -> bool {
        (self.spans.iter())
            .any(|(start, end)| start.as_slice() <= key && end.as_deref().is_none_or(|e| key < e))
    }
}
