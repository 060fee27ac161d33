//! The working copy of an object: the one set of bytes every writable handle of it shares, as
//! a file of a local file system is (writes from several processes, `O_APPEND` included, land
//! where ext4 would put them; a read through any writable handle sees them), and what a close
//! commits as it then is. An emptied copy written only at its end streams its chunks into the
//! content store as they come (`cp`, `>`, pyarrow); any other write, a read or a truncation
//! moves it into a staging file (an unnamed temporary file in the store's `staging/`), filled
//! from the committed content it started from.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};

use super::inode::{Ino, TreeNode};
use super::{FsCore, FsResult, ReadBytes};
use crate::meta::{
    ChunkStream, Entered, HeldManifest, MetaError, ObjectId, SetOrder, VersionDetails, prop,
};
use crate::meters;
use crate::storage::{Storage, Valu, now_millis};

struct Staging {
    file: File,
    size: u64,
}

/// The bytes the writable handles of one object share.
pub(super) struct WorkingCopy {
    /// The object (another if a commit found an object made at its path meanwhile).
    pub id: ObjectId,
    /// The object's inode.
    pub ino: Ino,
    /// The committed content the copy started from or last committed (`None`: empty).
    pub base: Option<Arc<HeldManifest>>,
    staging: Option<Staging>,
    stream: Option<ChunkStream>,
    /// Something to commit: bytes written, a truncation, or a file just created.
    pub dirty: bool,
    /// When its bytes last changed (epoch ms): the version's time.
    pub changed: i64,
    /// An mtime set (`utimens`) since its bytes last changed: the next commit keeps it, as a
    /// local file keeps a time set after its last write (`cp -p`, `rsync`, `tar -x`).
    pub mtime: Option<i64>,
    /// How many writable handles share it.
    pub handles: usize,
    /// Its last handle closed: it is no longer the object's copy.
    pub retired: bool,
}

/// A working copy, shared by its handles.
pub(super) type SharedCopy = Arc<Mutex<WorkingCopy>>;

impl WorkingCopy {
    /// Returns the copy of `id` holding `base` (the committed content; `None` for a file not
    /// committed yet).
    pub fn new(id: ObjectId, ino: Ino, base: Option<Arc<HeldManifest>>) -> Self {
        WorkingCopy {
            id,
            ino,
            base,
            staging: None,
            stream: None,
            dirty: false,
            changed: now_millis(),
            mtime: None,
            handles: 0,
            retired: false,
        }
    }

    /// Returns its size in bytes.
    pub fn size(&self) -> u64 {
        match (&self.staging, &self.stream, &self.base) {
            (Some(staging), _, _) => staging.size,
            (None, Some(stream), _) => stream.len(),
            (None, None, Some(base)) => base.size,
            (None, None, None) => 0,
        }
    }
}

impl<S: Storage> FsCore<S> {
    /// Records that working copy `wc` changed at `time` (and what its size is now).
    fn touch_copy(&self, wc: &mut WorkingCopy, time: i64) {
        wc.changed = time;
        // A write after a set mtime moves it on, the set one is gone.
        if wc.mtime.take().is_some() {
            self.ns.uncommitted.pending_row(wc.id, prop::MTIME, None);
        }
        self.ns.uncommitted.set_written(wc.id, wc.size(), time);
    }

    /// Records that `mtime` (epoch ms) was set on the object of working copy `wc`: shown at
    /// once, and kept by the copy's next commit unless a write comes first.
    pub(super) fn set_copy_mtime(&self, wc: &mut WorkingCopy, mtime: i64) {
        wc.mtime = Some(mtime);
        self.ns.uncommitted.set_written(wc.id, wc.size(), mtime);
    }

    /// Empties `wc` (`O_TRUNC`): writes at its end stream again.
    pub(super) fn empty_copy(&self, wc: &mut WorkingCopy, time: i64) {
        if let Some(stream) = wc.stream.take() {
            self.ns.meta.drop_stream(stream);
        }
        (wc.staging, wc.base) = (None, None);
        wc.stream = Some(ChunkStream::default());
        wc.dirty = true;
        self.touch_copy(wc, time);
    }

    /// Makes sure `wc` is in its staging file, holding every byte it has.
    fn stage(&self, wc: &mut WorkingCopy) -> FsResult<()> {
        if wc.staging.is_some() {
            return Ok(());
        }
        let mut staging = Staging {
            file: tempfile::tempfile_in(&self.options.staging_dir)?,
            size: 0,
        };
        if let Some(stream) = wc.stream.take() {
            let copied = {
                let mut writer = std::io::BufWriter::with_capacity(1 << 20, &staging.file);
                self.ns
                    .meta
                    .content()
                    .stream_bytes(&stream, &mut writer)
                    .and_then(|()| writer.flush().map_err(MetaError::from))
            };
            staging.size = stream.len();
            self.ns.meta.drop_stream(stream);
            copied?;
        } else if let Some(manifest) = &wc.base {
            // Holes stay holes: a sparse terabyte costs its data only.
            self.ns
                .meta
                .content()
                .copy_to_file(manifest, &staging.file)?;
            staging.size = manifest.size;
        }
        wc.staging = Some(staging);
        Ok(())
    }

    /// Writes `data` at `offset` of `wc`.
    pub(super) fn write_copy(
        &self,
        wc: &mut WorkingCopy,
        offset: u64,
        data: &[u8],
    ) -> FsResult<()> {
        match wc.stream.as_mut() {
            Some(stream) if offset == stream.len() => self.ns.meta.stream_write(stream, data)?,
            _ => {
                self.stage(wc)?;
                let staging = wc.staging.as_mut().expect("staged");
                staging.file.write_all_at(data, offset)?;
                staging.size = staging.size.max(offset + data.len() as u64);
            }
        }
        wc.dirty = true;
        self.touch_copy(wc, now_millis());
        Ok(())
    }

    /// Sets the size of `wc`.
    pub(super) fn set_copy_len(&self, wc: &mut WorkingCopy, size: u64) -> FsResult<()> {
        self.stage(wc)?;
        let staging = wc.staging.as_mut().expect("staged");
        staging.file.set_len(size)?;
        staging.size = size;
        wc.dirty = true;
        self.touch_copy(wc, now_millis());
        Ok(())
    }

    /// Reads up to `size` bytes at `offset` of `wc`, or returns `None` when the copy is still
    /// its committed base (read that through the handle's chunks).
    pub(super) fn read_copy(
        &self,
        wc: &mut WorkingCopy,
        offset: u64,
        size: u32,
    ) -> FsResult<Option<ReadBytes>> {
        if wc.stream.is_some() {
            self.stage(wc)?; // Reading back what is being written: keep it in a file.
        }
        let Some(staging) = &wc.staging else {
            return Ok(None);
        };
        let len = u64::from(size).min(staging.size.saturating_sub(offset)) as usize;
        let mut buf = vec![0u8; len];
        let mut done = 0;
        while done < len {
            let n = staging
                .file
                .read_at(&mut buf[done..], offset + done as u64)?;
            if n == 0 {
                break;
            }
            done += n;
        }
        buf.truncate(done);
        Ok(Some(ReadBytes::Owned(buf)))
    }

    /// Gives up what `wc` holds (its last handle is gone).
    pub(super) fn drop_copy(&self, wc: &mut WorkingCopy) {
        if let Some(stream) = wc.stream.take() {
            self.ns.meta.drop_stream(stream);
        }
        wc.staging = None;
    }

    /// Returns when file `id`, not committed yet, entered its directory, and whether a time
    /// was set on the directory through this mount since (else only a later time set
    /// elsewhere keeps the directory's time from moving to it).
    fn entered(&self, id: ObjectId) -> Option<Entered> {
        let (at, seq) = self.ns.uncommitted.pending_entered(id)?;
        let path = self.ns.uncommitted.pending_path(id)?;
        let dir = self.entry_of(&path.key()).map(|(dir, _)| dir);
        let set = dir.map_or(SetOrder::Unknown, |dir| {
            self.ns.dir_time_set_order(dir, seq)
        });
        Some(Entered { at, set })
    }

    /// Commits `wc` as the object's new version, as it is now. An object unlinked (or replaced
    /// by a rename) meanwhile takes nothing: its writes vanish with its last handle.
    pub(super) fn commit_copy(&self, wc: &mut WorkingCopy) -> FsResult<()> {
        let change = self.ns.change_at(wc.ino);
        if !wc.dirty {
            return Ok(());
        }
        let pending = self.ns.uncommitted.pending_path(wc.id);
        let path = match pending.clone() {
            Some(p) => p,
            None => match self.ns.meta.object_by_id(wc.id) {
                Ok(m) => m.path,
                // Unlinked (or replaced by a rename) while open: nothing to commit to, but
                // its handles keep reading and writing the copy, as on a local disk, until
                // the last one closes and the copy goes with it.
                Err(MetaError::NoSuchObject(_)) => return Ok(()),
                Err(e) => return Err(e.into()),
            },
        };
        // A new file's mode, owner and times set before this first commit go with it, and an
        // mtime set since the last write.
        let mut rows = self.ns.uncommitted.pending_rows_timed(wc.id);
        if let Some(t) = wc.mtime {
            rows.retain(|(p, _, _)| p != prop::MTIME);
            rows.push((prop::MTIME.to_string(), Valu::Int(t), now_millis()));
        }
        let details = VersionDetails {
            time: wc.changed,
            rows: &rows,
            entered: self.entered(wc.id),
        };
        let meta = match (wc.stream.take(), &wc.staging) {
            (Some(stream), _) => {
                // The stream is spent either way: a failed commit loses these writes (close
                // reports the error) and the copy is the committed version again.
                wc.dirty = false;
                let put = self.ns.meta.put_stream(&path, wc.id, stream, details);
                let (meta, manifest) = put.inspect_err(|_| {
                    meters::count_result(meters::COMMITS, "failed");
                    self.ns.uncommitted.forget_written(wc.id)
                })?;
                wc.base = Some(Arc::new(self.ns.meta.read_holds().hold_committed(manifest)));
                meta
            }
            (None, Some(staging)) => self
                .ns
                .meta
                .put_file_id_if_new(&path, wc.id, (&staging.file, staging.size), details)
                .inspect_err(|_| meters::count_result(meters::COMMITS, "failed"))?,
            (None, None) => {
                // Nothing since the last commit but the base itself.
                wc.dirty = false;
                return Ok(());
            }
        };
        meters::count_result(meters::COMMITS, "committed");
        let was = wc.id;
        if meta.id != wc.id {
            // Another writer made an object at this path first: ours became its new version.
            self.ns.inodes.rebind(wc.ino, TreeNode::Object(meta.id));
            self.files.rebind(wc.id, meta.id);
            wc.id = meta.id;
        }
        if pending.is_some() {
            // The pending entry is the file's own, under the uuid it was created with.
            self.land_pending_rows(was, wc.id, &rows)?;
        }
        // The new rows are in the store: the generation moves past the rows read before them
        // first, so a `stat` that no longer finds the copy's size reads the new ones
        // (`Namespace::file_attr`). The copy's lock, held, keeps its next write waiting.
        drop(change);
        self.ns.uncommitted.forget_written(wc.id);
        wc.dirty = false;
        Ok(())
    }
}
