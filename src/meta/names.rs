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

/// Checks a uuid taken from a registered message: non-empty, at most 255 bytes, no `/` or NUL.
pub fn check_uuid(what: &'static str, uuid: &str) -> Result<()> {
    check_component(what, uuid)
}

#[cfg(test)]
mod tests {
    use super::*;

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
