//! Who a request is: the caller whose process and user a commit names, and, for a release
//! (which the kernel sends as nobody's, pid 0), whoever opened the handle.

use std::collections::HashMap;
use std::sync::Mutex;

use fuser::Request;

use crate::fs::Caller;

/// Who sends request `req`.
pub(super) fn caller(req: &Request) -> Caller {
    Caller::new(req.uid(), req.gid(), req.pid())
}

/// Who opened each writable handle: uid, gid and pid, by handle number.
#[derive(Default)]
pub(super) struct Openers(Mutex<HashMap<u64, (u32, u32, u32)>>);

impl Openers {
    /// Remembers that request `req` opened writable handle `fh`.
    pub(super) fn opened(&self, fh: u64, req: &Request) {
        let mut openers = self.0.lock().unwrap_or_else(|e| e.into_inner());
        openers.insert(fh, (req.uid(), req.gid(), req.pid()));
    }

    /// Returns who a release of handle `fh` (request `req`) commits for: the request's
    /// process, or when the kernel sends it as nobody's, the handle's opener.
    pub(super) fn released(&self, fh: u64, req: &Request) -> Caller {
        let mut openers = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match (openers.remove(&fh), req.pid()) {
            (Some((uid, gid, pid)), 0) => Caller::new(uid, gid, pid),
            _ => caller(req),
        }
    }
}
