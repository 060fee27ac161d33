//! Directory handles: `opendir`, the window of its listing each handle reads (all of it; or,
//! for a job directory or folder of more members than a page, one page at a time, so that
//! listing a million entries holds one page), and `releasedir`.

use super::in_past;
use super::inode::{Ino, TreeNode};
use super::{Epoch, Fh, FsCore, FsError, FsResult, Listing};
use crate::meta::ListingCursor;
use crate::storage::Storage;

/// Members of a job directory or folder a mount reads at once, unless told otherwise
/// (`CRONUSFS_LISTING_PAGE`): 16,384, a few MiB of entries.
pub const DEFAULT_LISTING_PAGE: usize = 16_384;

/// What a directory handle reads: entries `start..start + entries.len()` of its listing,
/// where the next page starts (`None`: the window runs to the end), and the epoch the
/// window's reads began at.
#[derive(Clone)]
pub struct DirWindow {
    /// The entries, from entry `start` of the listing on.
    pub entries: Listing,
    /// The index in the whole listing of `entries[0]`.
    pub start: u64,
    /// Where the listing goes on after these entries, if it does.
    pub next: Option<ListingCursor>,
    /// The epoch the window's reads began at: what a reply giving the kernel its names passes
    /// to [`FsCore::reply_gate`].
    pub since: Epoch,
}

impl DirWindow {
    /// The index in the whole listing just past the window's entries.
    pub fn end(&self) -> u64 {
        self.start + self.entries.len() as u64
    }
}

impl<S: Storage> FsCore<S> {
    /// Opens directory `ino`.
    pub fn opendir(&self, ino: Ino) -> FsResult<Fh> {
        in_past!(self, ino.0, |core| core.opendir(ino));
        if !self.ns.node(ino)?.is_dir() {
            return Err(FsError::NotDir);
        }
        Ok(self.files.open_dir())
    }

    /// Returns the window of the listing of directory handle `fh` holding entry `offset`
    /// (its end when `offset` is past the last entry). The listing is taken at the handle's
    /// first read, and again when it is read from offset 0 (as `rewinddir` does); a query view
    /// lists what `caller` may see. A window of a big job directory is one page: reading on
    /// past it reads the next page, reading back before it starts the listing over.
    pub fn readdir_at(
        &self,
        ino: Ino,
        fh: Fh,
        offset: u64,
        caller: &super::Caller,
    ) -> FsResult<DirWindow> {
        in_past!(self, ino.0, |core| core.readdir_at(ino, fh, offset, caller));
        let (mut window, mut moved) = match self.files.window(fh) {
            Some(w) if offset != 0 && offset >= w.start => (w, false),
            _ => (self.first_window(ino, caller)?, true),
        };
        while offset >= window.end() {
            let Some(after) = window.next.take() else {
                break;
            };
            let since = self.epoch(ino);
            let (entries, next) = self.ns.next_page(ino, &after, self.options.listing_page)?;
            window = DirWindow {
                start: window.end(),
                entries,
                next,
                since,
            };
            moved = true;
        }
        // Most reads stay in the window: the handle keeps it as it is.
        if moved {
            self.files.set_window(fh, window.clone());
        }
        Ok(window)
    }

    /// The first window of directory `ino`'s listing.
    fn first_window(&self, ino: Ino, caller: &super::Caller) -> FsResult<DirWindow> {
        let since = self.epoch(ino);
        let node = self.ns.node(ino)?;
        let (mut entries, next) = match node {
            TreeNode::Snapshots => (std::sync::Arc::new(self.list_snapshots()?), None),
            _ => self.ns.first_page(ino, self.options.listing_page)?,
        };
        if let TreeNode::View(_) = node {
            entries = self.ns.visible_entries(entries, caller);
        }
        Ok(DirWindow {
            entries,
            start: 0,
            next,
            since,
        })
    }

    /// Closes directory handle `fh`.
    pub fn releasedir(&self, fh: Fh) {
        if let Some(core) = self.past_core_of_handle(fh.0) {
            return core.releasedir(fh);
        }
        self.files.release_dir(fh);
    }
}
