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

/// Checks the uuid of a job's entry: a uuid in its canonical spelling (lowercase, hyphenated),
/// as the original makes them, so that no entry takes an iden the store keeps for itself
/// (`cronusfs:session:…`) or a second spelling of another node's.
pub fn check_canonical_uuid(what: &'static str, uuid: &str) -> Result<()> {
    match uuid::Uuid::parse_str(uuid) {
        Ok(parsed) if parsed.hyphenated().to_string() == uuid => Ok(()),
        _ => Err(MetaError::BadName {
            what,
            name: uuid.chars().take(64).collect(),
            reason: "it is not a uuid in lowercase 8-4-4-4-12 hex digits",
        }),
    }
}

/// Checks the name of a job's entry: 1 to 1,024 bytes, no NUL (a table's is its own; export
/// writes it under another file name when it is no plain one).
pub fn check_entry_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 1024 || name.contains('\0') {
        return Err(MetaError::BadName {
            what: "entry name",
            name: name.chars().take(64).collect(),
            reason: "it is empty, longer than 1024 bytes, or holds a NUL",
        });
    }
    Ok(())
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
