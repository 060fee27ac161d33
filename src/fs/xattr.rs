//! Extended attributes: the rows of a node. `user.cronus.<x>` shows the catalogue's row
//! `cronus:<x>` (read-only: EPERM on set and remove); every other `user.<prop>` is user row
//! `<prop>`, set as an integer when the value is a canonical decimal i64 and as a string
//! otherwise. Other namespaces are ENOTSUP, and `security.capability` (asked before every
//! write by the kernel) is ENODATA without touching the store. A set is refused when no query
//! view could name its prop (EINVAL) or when the node's list of names would pass 64 KiB
//! (ENOSPC, as on ext4), so a list made through the mount always fits `listxattr`.

use std::sync::Arc;

use super::in_past;
use super::inode::{Ino, TreeNode};
use super::{FsCore, FsError, FsResult, Namespace};
use crate::meta::query::check_view_prop;
use crate::storage::{Iden, Row, Storage, Valu, now_millis};

/// `setxattr`'s `XATTR_CREATE` and `XATTR_REPLACE`.
#[derive(Clone, Copy, Debug, Default)]
pub struct XattrFlags {
    /// Fail with EEXIST if the attribute exists.
    pub create: bool,
    /// Fail with ENODATA if it does not.
    pub replace: bool,
}

/// The answer to `getxattr`/`listxattr`: the size the caller asked for with a size-0 probe,
/// or the bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum XattrReply {
    /// The size of the value (for a probe).
    Size(u32),
    /// The value.
    Data(Vec<u8>),
}

const USER: &str = "user.";
const SYSTEM: &str = "user.cronus.";
const SYSTEM_PROP: &str = "cronus:";
/// Largest value accepted (the kernel's own limit, XATTR_SIZE_MAX).
pub const MAX_VALUE: usize = 64 * 1024;
/// Longest name accepted (XATTR_NAME_MAX).
pub const MAX_NAME: usize = 255;
/// Longest list of a node's attribute names, NUL-terminated (XATTR_LIST_MAX): the kernel
/// answers `listxattr` with E2BIG beyond it, so no set may make a list longer.
pub const MAX_LIST: usize = 64 * 1024;

/// A node's rows as (prop, value) pairs.
pub type NodeRows = Arc<Vec<(String, Valu)>>;

/// Returns about how many bytes `rows` take.
pub(super) fn rows_bytes(rows: &NodeRows) -> usize {
    (rows.iter())
        .map(|(prop, valu)| std::mem::size_of::<(String, Valu)>() + prop.len() + valu_bytes(valu))
        .sum()
}

/// Returns the bytes a value holds besides its own size.
fn valu_bytes(valu: &Valu) -> usize {
    match valu {
        Valu::Str(s) => s.len(),
        Valu::Int(_) => 0,
    }
}

/// How many nodes' rows are kept between attribute calls.
pub(super) const CACHED_NODES: usize = 256;

/// Returns the prop an attribute name stands for, and whether it is the catalogue's.
fn prop_of(name: &str) -> FsResult<(String, bool)> {
    if name == "security.capability" {
        return Err(FsError::NoAttribute);
    }
    if name.len() > MAX_NAME {
        return Err(FsError::Range);
    }
    let Some(rest) = name.strip_prefix(USER) else {
        return Err(FsError::NotSupported);
    };
    if let Some(system) = name.strip_prefix(SYSTEM) {
        return Ok((format!("{SYSTEM_PROP}{system}"), true));
    }
    if rest.is_empty() {
        return Err(FsError::InvalidArgument("empty attribute name"));
    }
    // The daemons' own props (sessions, leases, read holds) are no user's to set or remove.
    let reserved = rest.starts_with(SYSTEM_PROP) || rest.starts_with("cronusfs:");
    Ok((rest.to_string(), reserved))
}

/// Returns the attribute name of `prop`.
fn name_of(prop: &str) -> String {
    match prop.strip_prefix(SYSTEM_PROP) {
        Some(rest) => format!("{SYSTEM}{rest}"),
        None => format!("{USER}{prop}"),
    }
}

/// The attribute names of `rows` as `listxattr` returns them: sorted, each once, each
/// followed by a NUL.
fn name_list(rows: &[(String, Valu)]) -> Vec<u8> {
    let mut props: Vec<&str> = rows.iter().map(|(p, _)| p.as_str()).collect();
    props.sort_unstable();
    props.dedup();
    let mut data = Vec::new();
    for p in props {
        data.extend_from_slice(name_of(p).as_bytes());
        data.push(0);
    }
    data
}

/// Says whether a node whose rows have `props` may have attribute `prop` set with `flags`:
/// EEXIST or ENODATA as the flags ask, ENOSPC when a new name would make the node's list of
/// names longer than 64 KiB.
fn admit_set(props: &mut dyn Iterator<Item = &str>, prop: &str, flags: XattrFlags) -> FsResult<()> {
    let mut names: Vec<&str> = props.collect();
    let exists = names.contains(&prop);
    if flags.create && exists {
        return Err(FsError::Exists);
    }
    if flags.replace && !exists {
        return Err(FsError::NoAttribute);
    }
    if exists {
        return Ok(());
    }
    names.sort_unstable();
    names.dedup();
    let listed: usize = names.iter().map(|p| listed_len(p)).sum();
    if listed + listed_len(prop) > MAX_LIST {
        return Err(FsError::NoSpace(
            "the list of attribute names would pass 64 KiB",
        ));
    }
    Ok(())
}

/// The bytes `prop` takes in a list of names: its name and a NUL.
fn listed_len(prop: &str) -> usize {
    name_of(prop).len() + 1
}

/// Answers a request for `data` with a buffer of `size` bytes (0: a size probe).
fn reply(data: Vec<u8>, size: u32) -> FsResult<XattrReply> {
    let len = u32::try_from(data.len()).map_err(|_| FsError::TooBig)?;
    match size {
        0 => Ok(XattrReply::Size(len)),
        s if s < len => Err(FsError::Range),
        _ => Ok(XattrReply::Data(data)),
    }
}

impl<S: Storage> Namespace<S> {
    /// The iden whose rows are `node`'s attributes (datasets, partitions, jobs, objects,
    /// menus and configurations), or `None`.
    pub(super) fn xattr_iden(&self, node: &TreeNode) -> FsResult<Option<Iden>> {
        match node {
            TreeNode::Partitions(_) | TreeNode::Jobs(..) => Ok(None),
            other => self.iden_of(other),
        }
    }

    /// The rows of `node` as attributes: committed rows, or for a pending file the rows kept
    /// for its first commit.
    pub(super) fn xattr_rows(&self, node: &TreeNode) -> FsResult<Vec<(String, Valu)>> {
        if let TreeNode::Object(id) = node {
            return self.file_rows(*id);
        }
        let rows: Vec<Row> = match self.xattr_iden(node)? {
            Some(iden) => self.meta.node_rows(&iden)?,
            None => Vec::new(),
        };
        Ok(rows.into_iter().map(|r| (r.prop, r.valu)).collect())
    }

    /// Returns the rows of node `ino` as attributes: the ones read last if nothing changed
    /// through the core since, else read again.
    fn cached_rows(&self, ino: Ino, node: &TreeNode) -> FsResult<NodeRows> {
        let now = self.generations.now(self.reach(node));
        self.xattrs
            .get_or(ino, now, || Ok(Arc::new(self.xattr_rows(node)?)))
    }

    /// Returns attribute `name` of `ino` (values of a prop with several rows are joined by
    /// newlines).
    pub fn getxattr(&self, ino: Ino, name: &str, size: u32) -> FsResult<XattrReply> {
        let (prop, _) = prop_of(name)?;
        let node = self.node(ino)?;
        let mut values: Vec<String> = self
            .cached_rows(ino, &node)?
            .iter()
            .filter(|(p, _)| *p == prop)
            .map(|(_, v)| v.to_string())
            .collect();
        if values.is_empty() {
            return Err(FsError::NoAttribute);
        }
        if prop == crate::meta::prop::HISTORY {
            // `<version>:<content>`: by version, not as text (10 after 9, not after 1).
            values.sort_by_key(|v| crate::meta::history_version(v).unwrap_or(i64::MAX));
        }
        reply(values.join("\n").into_bytes(), size)
    }

    /// Lists the attribute names of `ino`, each followed by a NUL.
    pub fn listxattr(&self, ino: Ino, size: u32) -> FsResult<XattrReply> {
        let node = self.node(ino)?;
        if let TreeNode::Symlink(..) = node {
            // The kernel reads no `user.` attribute of a link (`getfattr -h -d`, `rsync -X`
            // would fail on every name listed); `cronusfs rows` shows its rows.
            return reply(Vec::new(), size);
        }
        let rows = self.cached_rows(ino, &node)?;
        reply(name_list(rows.as_slice()), size)
    }
}

impl<S: Storage> FsCore<S> {
    /// Returns attribute `name` of `ino` (see [`Namespace::getxattr`]).
    pub fn getxattr(&self, ino: Ino, name: &str, size: u32) -> FsResult<XattrReply> {
        in_past!(self, ino.0, |core| core.getxattr(ino, name, size));
        self.ns.getxattr(ino, name, size)
    }

    /// Lists the attribute names of `ino`, each followed by a NUL.
    pub fn listxattr(&self, ino: Ino, size: u32) -> FsResult<XattrReply> {
        in_past!(self, ino.0, |core| core.listxattr(ino, size));
        self.ns.listxattr(ino, size)
    }

    /// Sets user attribute `name` of `ino` to `value`. A prop no query view can name
    /// (`user.a=b`, `user.a/b`: see [`check_view_prop`]) is EINVAL; a new name that would make
    /// the node's list of names longer than 64 KiB (XATTR_LIST_MAX) is ENOSPC, as on ext4.
    pub fn setxattr(&self, ino: Ino, name: &str, value: &[u8], flags: XattrFlags) -> FsResult<()> {
        in_past!(self, ino.0, |core| core.setxattr(ino, name, value, flags));
        let _change = self.ns.change_at(ino);
        let (prop, system) = prop_of(name)?;
        self.writable()?;
        if system {
            return Err(FsError::NotPermitted);
        }
        check_view_prop(&prop)?;
        if value.len() > MAX_VALUE {
            return Err(FsError::TooBig);
        }
        let text = std::str::from_utf8(value)
            .map_err(|_| FsError::InvalidArgument("attribute values must be UTF-8 text"))?;
        let node = self.ns.node(ino)?;
        Self::refuse_view(&node)?;
        let valu = Valu::from_text(text);
        let admit = |props: &mut dyn Iterator<Item = &str>| admit_set(props, &prop, flags);
        // A file not committed yet keeps its rows for its first commit.
        if let TreeNode::Object(id) = node
            && let Some(done) =
                (self.ns.uncommitted).pending_row_if(id, &prop, Some(valu.clone()), admit)
        {
            return done;
        }
        let iden = self.ns.xattr_iden(&node)?.ok_or(FsError::NotPermitted)?;
        // The flags and the size of the name list are checked on the rows the write's own
        // transaction read: two `XATTR_CREATE`s of one name cannot both succeed.
        let mut refused = Ok(());
        let row = [(prop.as_str(), valu, now_millis())];
        self.ns
            .meta
            .set_node_rows_read_back(&iden, &row, false, &mut |rows| {
                refused = admit(&mut rows.iter().map(|r| r.prop.as_str()));
                refused.is_ok()
            })?;
        refused
    }

    /// Removes user attribute `name` of `ino`.
    pub fn removexattr(&self, ino: Ino, name: &str) -> FsResult<()> {
        in_past!(self, ino.0, |core| core.removexattr(ino, name));
        let _change = self.ns.change_at(ino);
        let (prop, system) = prop_of(name)?;
        self.writable()?;
        if system {
            return Err(FsError::NotPermitted);
        }
        let node = self.ns.node(ino)?;
        Self::refuse_view(&node)?;
        if !self.ns.xattr_rows(&node)?.iter().any(|(p, _)| *p == prop) {
            return Err(FsError::NoAttribute);
        }
        if let TreeNode::Object(id) = node
            && self.ns.uncommitted.pending_row(id, &prop, None)
        {
            return Ok(());
        }
        let iden = self.ns.xattr_iden(&node)?.ok_or(FsError::NotPermitted)?;
        self.ns.meta.del_node_row(&iden, &prop)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_props_and_back() {
        assert_eq!(
            prop_of("user.cronus.size").unwrap(),
            ("cronus:size".into(), true)
        );
        assert_eq!(
            prop_of("user.cronus.arrow:num_rows").unwrap(),
            ("cronus:arrow:num_rows".into(), true)
        );
        assert_eq!(prop_of("user.quality").unwrap(), ("quality".into(), false));
        assert_eq!(prop_of("user.cronus:x").unwrap(), ("cronus:x".into(), true));
        assert!(matches!(prop_of("trusted.x"), Err(FsError::NotSupported)));
        assert!(matches!(
            prop_of("security.capability"),
            Err(FsError::NoAttribute)
        ));
        assert!(matches!(prop_of("user."), Err(FsError::InvalidArgument(_))));
        assert_eq!(
            name_of("cronus:arrow:num_rows"),
            "user.cronus.arrow:num_rows"
        );
        assert_eq!(name_of("quality"), "user.quality");
    }

    #[test]
    fn the_name_list_is_sorted_once_each_and_nul_terminated() {
        let rows: Vec<(String, Valu)> = [("q", 1), ("cronus:size", 5), ("q", 2), ("a", 3)]
            .into_iter()
            .map(|(p, v)| (p.to_string(), Valu::Int(v)))
            .collect();
        assert_eq!(
            name_list(&rows),
            b"user.a\0user.cronus.size\0user.q\0".to_vec()
        );
        assert!(name_list(&[]).is_empty());
    }

    #[test]
    fn replies_probe_fit_and_range() {
        assert_eq!(reply(b"abc".to_vec(), 0).unwrap(), XattrReply::Size(3));
        assert_eq!(
            reply(b"abc".to_vec(), 3).unwrap(),
            XattrReply::Data(b"abc".to_vec())
        );
        assert!(matches!(reply(b"abc".to_vec(), 2), Err(FsError::Range)));
    }
}
