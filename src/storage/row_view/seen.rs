//! What a writing view read of the committed `ByIden` entries: their values, and the spans it
//! read to their end. At commit, a row the view replaces or adds is then known to be stored
//! (with its birth) or absent without reading it again: a replaced attribute, a new object.

use std::ops::Range;

/// The most committed entries a view remembers; past it, its commit reads the rest.
const MAX_SEEN: usize = 4096;
/// The most bytes of keys and values it keeps.
const MAX_SEEN_BYTES: usize = 16 << 20;

/// The committed `ByIden` entries a view read, and the spans it read whole. Keys and values
/// are kept back to back in one buffer (a read of a node's rows costs no allocation per row);
/// the entries are sorted once, when the commit first asks.
#[derive(Default)]
pub(super) struct Seen {
    /// The keys and values read.
    bytes: Vec<u8>,
    /// Each key read, and its committed value (`None`: present, read without its value).
    entries: Vec<(Range<usize>, Option<Range<usize>>)>,
    /// Whether `entries` is sorted by key.
    sorted: bool,
    /// Spans `[start, end)` read to their end: a key in one that is not an entry is absent.
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
        let size = key.len() + value.map_or(0, <[u8]>::len);
        if self.entries.len() >= MAX_SEEN || self.bytes.len() + size > MAX_SEEN_BYTES {
            self.full = true;
            return;
        }
        let key = self.keep(key);
        let value = value.map(|v| self.keep(v));
        self.entries.push((key, value));
        self.sorted = false;
    }

    fn keep(&mut self, data: &[u8]) -> Range<usize> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(data);
        start..self.bytes.len()
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

    /// Sorts what was read for [`Seen::known`]; a key read twice keeps a read with its value.
    pub fn sort(&mut self) {
        if self.sorted {
            return;
        }
        let bytes = &self.bytes;
        // Among equal keys, reads with a value first.
        self.entries.sort_by(|(a, va), (b, vb)| {
            (bytes[a.clone()].cmp(&bytes[b.clone()])).then(vb.is_some().cmp(&va.is_some()))
        });
        self.sorted = true;
    }

    /// Returns what the view knows of committed `key` (after [`Seen::sort`]; unsorted, it
    /// knows nothing).
    pub fn known(&self, key: &[u8]) -> Known<'_> {
        if !self.sorted {
            return Known::Unknown;
        }
        let first = self
            .entries
            .partition_point(|(k, _)| &self.bytes[k.clone()] < key);
        match self.entries.get(first) {
            Some((k, Some(v))) if &self.bytes[k.clone()] == key => {
                Known::Stored(&self.bytes[v.clone()])
            }
            Some((k, None)) if &self.bytes[k.clone()] == key => Known::Unknown,
            _ if self.covers(key) => Known::Absent,
            _ => Known::Unknown,
        }
    }

    fn covers(&self, key: &[u8]) -> bool {
        (self.spans.iter())
            .any(|(start, end)| start.as_slice() <= key && end.as_deref().is_none_or(|e| key < e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(seen: &Seen, key: &[u8]) -> Option<Vec<u8>> {
        match seen.known(key) {
            Known::Stored(v) => Some(v.to_vec()),
            Known::Absent | Known::Unknown => None,
        }
    }

    #[test]
    fn knows_what_it_read_in_any_order() {
        let mut seen = Seen::default();
        seen.saw(b"b", Some(b"2"));
        seen.saw(b"a", None);
        seen.saw(b"c", Some(b"3"));
        seen.saw(b"a", Some(b"1"));
        seen.read_whole(b"a", Some(b"d"));
        assert!(matches!(seen.known(b"b"), Known::Unknown), "unsorted");
        seen.sort();
        assert_eq!(stored(&seen, b"a").as_deref(), Some(&b"1"[..]));
        assert_eq!(stored(&seen, b"b").as_deref(), Some(&b"2"[..]));
        assert_eq!(stored(&seen, b"c").as_deref(), Some(&b"3"[..]));
        assert!(matches!(seen.known(b"bb"), Known::Absent), "inside a span");
        assert!(
            matches!(seen.known(b"e"), Known::Unknown),
            "outside every span"
        );
        seen.saw(b"e", None);
        seen.sort();
        assert!(
            matches!(seen.known(b"e"), Known::Unknown),
            "read without its value"
        );
        assert_eq!(stored(&seen, b"c").as_deref(), Some(&b"3"[..]));
    }

    #[test]
    fn stops_remembering_when_full() {
        let mut seen = Seen::default();
        for i in 0..=MAX_SEEN as u32 {
            seen.saw(&i.to_be_bytes(), Some(b"v"));
        }
        seen.read_whole(b"", None);
        seen.sort();
        assert!(seen.full);
        assert!(matches!(
            seen.known(&u32::MAX.to_be_bytes()),
            Known::Unknown
        ));
        assert_eq!(
            stored(&seen, &7u32.to_be_bytes()).as_deref(),
            Some(&b"v"[..])
        );
    }
}
