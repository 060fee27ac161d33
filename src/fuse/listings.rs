//! Directory listings of the FUSE adapter: `readdir` and `readdirplus` replies, `.` and `..`
//! first, then the core's entries from the offset the kernel asks for (a window of the
//! listing: a page of a big job directory); `readdirplus` gives the kernel each entry's
//! attributes for as long as the core says it may keep them.

use std::borrow::Cow;

use fuser::{
    FileHandle, FileType, Generation, INodeNo, ReplyDirectory, ReplyDirectoryPlus, Request,
};

use super::FuseFs;
use super::callers::caller;
use super::replies::{errno, file_attr, kind, ttl_of};
use crate::fs::{Attr, DirWindow, Fh, FsError, Ino};
use crate::storage::Storage;

impl<S: Storage> FuseFs<S> {
    /// Answers `readdir` of directory handle `fh` of `ino` from `offset`.
    pub(super) fn reply_listing(
        &self,
        req: &Request,
        (ino, fh): (INodeNo, FileHandle),
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let dots = match self.dots(ino) {
            Ok(d) => d,
            Err(e) => return reply.error(errno(&e)),
        };
        let first = offset.saturating_sub(dots.len() as u64);
        let window = match (self.core).readdir_at(Ino(ino.0), Fh(fh.0), first, &caller(req)) {
            Ok(w) => w,
            Err(e) => return reply.error(errno(&e)),
        };
        let dots = dots
            .iter()
            .map(|(n, i)| (n.as_str(), *i, FileType::Directory));
        let entries =
            (window.entries.iter()).map(|e| (e.name.as_str(), e.attr.ino, kind(e.attr.kind)));
        for (at, (name, ino, kind)) in
            numbered(dots, entries, &window).skip_while(|(at, _)| *at < offset)
        {
            if reply.add(INodeNo(ino.0), at + 1, kind, name) {
                break;
            }
        }
        reply.ok();
    }

    /// Answers `readdirplus` of directory handle `fh` of `ino` from `offset`.
    pub(super) fn reply_listing_plus(
        &self,
        req: &Request,
        (ino, fh): (INodeNo, FileHandle),
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let dots = match self.dots(ino) {
            Ok(d) => d,
            Err(e) => return reply.error(errno(&e)),
        };
        let first = offset.saturating_sub(dots.len() as u64);
        let window = match (self.core).readdir_at(Ino(ino.0), Fh(fh.0), first, &caller(req)) {
            Ok(w) => w,
            Err(e) => return reply.error(errno(&e)),
        };
        let mut dot_attrs = Vec::new();
        for (name, ino) in &dots {
            match self.core.getattr(*ino) {
                Ok(a) => dot_attrs.push((name.clone(), a)),
                Err(e) => return reply.error(errno(&e)),
            }
        }
        let dots = dot_attrs.iter().map(|(n, a)| (n.as_str(), a));
        let entries = window.entries.iter().map(|e| (e.name.as_str(), &e.attr));
        // Names listed before another host's change are never kept past its announcement,
        // and a view's entries depend on who lists them: the kernel keeps none of those.
        let gate = self.core.reply_gate(window.since);
        let keep = gate.ttl(ttl_of(&self.core, Ino(ino.0)));
        for (at, (name, attr)) in
            numbered(dots, entries, &window).skip_while(|(at, _)| *at < offset)
        {
            // The kernel counts every entry but `.` and `..` as a lookup.
            let counted = match name {
                "." | ".." => Cow::Borrowed(attr),
                _ => match self.held_entry(ino, name, attr, req) {
                    Ok(attr) => attr,
                    Err(FsError::NotFound) => continue, // Gone since it was listed.
                    Err(e) => return reply.error(errno(&e)),
                },
            };
            let full = reply.add(
                INodeNo(counted.ino.0),
                at + 1,
                name,
                &keep,
                &file_attr(&counted),
                Generation(0),
            );
            if full {
                if !matches!(name, "." | "..") {
                    self.core.forget(counted.ino, 1);
                }
                break;
            }
        }
        reply.ok();
        drop(gate);
    }

    /// The attributes of listed entry `name` of directory `dir`, counted as held by the kernel:
    /// as listed, or as looked up again if its number went since the listing was made.
    fn held_entry<'a>(
        &self,
        dir: INodeNo,
        name: &str,
        listed: &'a Attr,
        req: &Request,
    ) -> Result<Cow<'a, Attr>, FsError> {
        if self.core.hold(listed.ino, Ino(dir.0), name) {
            return Ok(Cow::Borrowed(listed));
        }
        let found = self.core.lookup_held(Ino(dir.0), name, &caller(req))?;
        Ok(Cow::Owned(found))
    }

    /// `.` and `..` of directory `ino`.
    fn dots(&self, ino: INodeNo) -> Result<Vec<(String, Ino)>, FsError> {
        let ino = Ino(ino.0);
        Ok(vec![
            (".".into(), ino),
            ("..".into(), self.core.parent_of(ino)?),
        ])
    }
}

/// Numbers a reply's entries with their offsets in the whole listing: the dots first, then
/// entry `k` of the listing (the window's first is `window.start`) at `dots + k`.
fn numbered<'a, T: 'a>(
    dots: impl ExactSizeIterator<Item = T> + 'a,
    entries: impl Iterator<Item = T> + 'a,
    window: &DirWindow,
) -> impl Iterator<Item = (u64, T)> + 'a {
    let first = dots.len() as u64 + window.start;
    let dots = dots.enumerate().map(|(i, d)| (i as u64, d));
    dots.chain((first..).zip(entries))
}
