//! Reads of file handles: the working copy through a writable handle, the version committed
//! at its open through a read-only one, chunk by chunk.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use super::{Fh, FileHandle, KEPT_CHUNKS, lock};
use crate::fs::{FsCore, FsResult, ReadBytes, in_past};
use crate::meta::Manifest;
use crate::storage::Storage;

impl<S: Storage> FsCore<S> {
    /// Reads up to `size` bytes at `offset`: the working copy through a writable handle, the
    /// version committed at its open through a read-only one.
    pub fn read(&self, fh: Fh, offset: u64, size: u32) -> FsResult<ReadBytes> {
        in_past!(self, fh.0, |core| core.read(fh, offset, size));
        if let Some(bytes) = self.read_control(fh, offset, size) {
            return Ok(bytes);
        }
        let handle = self.files.handle(fh)?;
        let working = lock(&handle).working.clone();
        let manifest = match working {
            Some(wc) => {
                let mut copy = lock(&wc);
                if let Some(bytes) = self.read_copy(&mut copy, offset, size)? {
                    return Ok(bytes);
                }
                let base = copy.base.clone();
                drop(copy);
                let mut h = lock(&handle);
                if h.base.as_ref().map(|m| m.id) != base.as_ref().map(|m| m.id) {
                    (h.base, h.chunks) = (base.clone(), VecDeque::new());
                }
                base
            }
            None => lock(&handle).base.clone(),
        };
        match manifest {
            Some(m) => self.read_committed(&handle, &m, offset, size as usize),
            None => Ok(ReadBytes::Owned(Vec::new())),
        }
    }

    /// Reads up to `size` bytes at `offset` of committed content: a range of one chunk is
    /// returned as it is, a read across chunks is copied together.
    fn read_committed(
        &self,
        handle: &Mutex<FileHandle>,
        manifest: &Manifest,
        offset: u64,
        size: usize,
    ) -> FsResult<ReadBytes> {
        let Some((index, within)) = manifest.locate(offset) else {
            return Ok(ReadBytes::Owned(Vec::new()));
        };
        let first = self.chunk_of(handle, manifest, index)?;
        if first.len() - within >= size || index + 1 == manifest.chunk_count() {
            let end = within + size.min(first.len() - within);
            return Ok(ReadBytes::Shared(first, within..end));
        }
        let mut out = Vec::with_capacity(size);
        out.extend_from_slice(&first[within..]);
        let mut pos = offset + out.len() as u64;
        while out.len() < size {
            let Some((index, within)) = manifest.locate(pos) else {
                break;
            };
            let data = self.chunk_of(handle, manifest, index)?;
            let n = (data.len() - within).min(size - out.len());
            out.extend_from_slice(&data[within..within + n]);
            pos += n as u64;
        }
        Ok(ReadBytes::Owned(out))
    }

    /// Returns chunk `index` of `manifest` for `handle`: from the handle's last chunks, or
    /// fetched without holding the handle, so the kernel's parallel read-ahead requests fetch
    /// different chunks at the same time.
    fn chunk_of(
        &self,
        handle: &Mutex<FileHandle>,
        manifest: &Manifest,
        index: u64,
    ) -> FsResult<Arc<Vec<u8>>> {
        if let Some((_, data)) = lock(handle).chunks.iter().find(|(i, _)| *i == index) {
            return Ok(data.clone());
        }
        let data = Arc::new(self.ns.meta.content().chunk(manifest, index)?);
        let mut h = lock(handle);
        if !h.chunks.iter().any(|(i, _)| *i == index) {
            h.chunks.push_back((index, data.clone()));
            if h.chunks.len() > KEPT_CHUNKS {
                h.chunks.pop_front();
            }
        }
        Ok(data)
    }
}
