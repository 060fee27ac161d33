//! Validation of the names users give: partition keys and object names (one path component
//! each in the mounted tree), and the menu/config uuids taken from messages.

use super::{MetaError, Result};

/// Longest partition key or object name, in bytes (a path component).
pub const MAX_NAME_BYTES: usize = 255;

/// Checks that `name` can be a partition key or object name: 1–255 bytes, no `/` or NUL, not
/// `.` or `..`. `what` names the kind of thing in the error.
pub fn check_component(what: &'static str, name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        "it is empty"
    } else if name.len() > MAX_NAME_BYTES {
        "it is longer than 255 bytes"
    } else if name.contains('/') {
        "it contains '/'"
    } else if name.contains('\0') {
        "it contains a NUL byte"
    } else if name == "." || name == ".." {
        "it is '.' or '..'"
    } else {
        return Ok(());
    };
    Err(MetaError::BadName {
        what,
        name: name.chars().take(64).collect(),
        reason,
    })
}

/// Longest object name (a path inside its job directory).
pub const MAX_OBJECT_NAME_BYTES: usize = 4096;

/// Checks an object name: a name, or a relative path of names (`sub/dir/file`) when the
/// object lives in a folder of its job directory.
pub fn check_object_name(name: &str) -> Result<()> {
    if name.len() > MAX_OBJECT_NAME_BYTES {
        return Err(MetaError::BadName {
            what: "object name",
            name: name.chars().take(64).collect(),
            reason: "it is longer than 4096 bytes",
        });
    }
    name.split('/')
        .try_for_each(|part| check_component("object name", part))
}

/// Checks a uuid taken from a registered message: non-empty, at most 255 bytes, no `/` or NUL.
pub fn check_uuid(what: &'static str, uuid: &str) -> Result<()> {
    check_component(what, uuid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names_may_be_relative_paths() {
        for ok in ["f", "sub/f", "a/b/c.arrow"] {
            assert!(check_object_name(ok).is_ok(), "{ok:?}");
        }
        for bad in ["", "/f", "f/", "a//b", "a/./b", "a/../b", "a\0b"] {
            assert!(check_object_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn components() {
        for ok in ["key1", "a.b", "x".repeat(255).as_str(), "ünïcode", " "] {
            assert!(check_component("partition key", ok).is_ok(), "{ok:?}");
        }
        for bad in ["", "a/b", "a\0b", ".", "..", "x".repeat(256).as_str()] {
            assert!(
                matches!(
                    check_component("partition key", bad),
                    Err(MetaError::BadName { .. })
                ),
                "{bad:?}"
            );
        }
    }
}
