//! Row, value and iden types of the row store, and the validation of props, idens and blob keys.

use std::fmt;
use std::str::FromStr;

use super::StorageError;
use super::error::clip;

/// Longest prop accepted, in bytes.
pub const MAX_PROP_LEN: usize = 1024;
/// Longest iden accepted, in bytes.
pub const MAX_IDEN_LEN: usize = 1024;
/// Longest blob key accepted, in bytes.
pub const MAX_BLOB_KEY_LEN: usize = 1024;

/// The identifier that groups the rows of one node. Any non-empty string of at most
/// [`MAX_IDEN_LEN`] bytes; by convention 32 lowercase hex digits ([`Iden::random`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Iden(String);

impl Iden {
    /// Returns `s` as an iden, or [`StorageError::BadIden`] if it is empty or too long.
    pub fn new(s: impl Into<String>) -> Result<Self, StorageError> {
        let s = s.into();
        check_length(&s, MAX_IDEN_LEN).map_err(|reason| StorageError::BadIden {
            iden: clip(&s),
            reason,
        })?;
        Ok(Iden(s))
    }

    /// Returns a new random iden: 32 lowercase hex digits (128 random bits).
    pub fn random() -> Self {
        Iden(uuid::Uuid::new_v4().simple().to_string())
    }

    /// Returns the iden as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Iden {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Iden {
    type Err = StorageError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Iden::new(s)
    }
}

/// A row value: a signed 64-bit integer or a UTF-8 string. The two never compare equal
/// (`Int(10)` ≠ `Str("10")`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Valu {
    /// An integer value.
    Int(i64),
    /// A string value, of any length.
    Str(String),
}

/// A row value borrowed from the store, for readers that do not keep the row
/// ([`crate::storage::RowRead::visit_rows_by_id`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValuRef<'a> {
    /// An integer value.
    Int(i64),
    /// A string value.
    Str(&'a str),
}

impl ValuRef<'_> {
    /// Returns the integer, or `None` for a string.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            ValuRef::Int(i) => Some(*i),
            ValuRef::Str(_) => None,
        }
    }
}

impl Valu {
    /// Returns `Int` when `s` is a canonical decimal i64 (no `+`, no leading zeros, no `-0`),
    /// else `Str`. This is how text from the command line and from xattrs becomes a value.
    pub fn from_text(s: &str) -> Valu {
        match s.parse::<i64>() {
            Ok(i) if i.to_string() == s => Valu::Int(i),
            _ => Valu::Str(s.to_string()),
        }
    }

    /// Returns the integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Valu::Int(i) => Some(*i),
            Valu::Str(_) => None,
        }
    }

    /// Returns `"int"` or `"str"`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Valu::Int(_) => "int",
            Valu::Str(_) => "str",
        }
    }
}

impl fmt::Display for Valu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Valu::Int(i) => write!(f, "{i}"),
            Valu::Str(s) => f.write_str(s),
        }
    }
}

impl From<i64> for Valu {
    fn from(i: i64) -> Self {
        Valu::Int(i)
    }
}

impl From<&str> for Valu {
    fn from(s: &str) -> Self {
        Valu::Str(s.to_string())
    }
}

impl From<String> for Valu {
    fn from(s: String) -> Self {
        Valu::Str(s)
    }
}

/// One row `(iden, prop, valu, time)`; `time` is epoch milliseconds (negative times allowed).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Row {
    /// The node the row belongs to.
    pub iden: Iden,
    /// The property name.
    pub prop: String,
    /// The value.
    pub valu: Valu,
    /// When the row was made, in epoch milliseconds.
    pub time: i64,
}

impl Row {
    /// Returns a row from its four fields (the prop is validated when the row is stored).
    pub fn new(iden: &Iden, prop: &str, valu: impl Into<Valu>, time: i64) -> Row {
        Row {
            iden: iden.clone(),
            prop: prop.to_string(),
            valu: valu.into(),
            time,
        }
    }
}

// The reason `check_length` gives names 1024 bytes: every limit must be that.
const _: () = assert!(MAX_PROP_LEN == 1024 && MAX_IDEN_LEN == 1024 && MAX_BLOB_KEY_LEN == 1024);

/// Checks that `name` (a prop, iden or blob key) is non-empty and at most `max` bytes; the
/// error is why not.
fn check_length(name: &str, max: usize) -> Result<(), &'static str> {
    if name.is_empty() {
        Err("empty")
    } else if name.len() > max {
        Err("longer than 1024 bytes")
    } else {
        Ok(())
    }
}

/// Checks that `prop` can be stored: non-empty and at most [`MAX_PROP_LEN`] bytes.
pub(crate) fn check_prop(prop: &str) -> Result<(), StorageError> {
    check_length(prop, MAX_PROP_LEN).map_err(|reason| StorageError::BadProp {
        prop: clip(prop),
        reason,
    })
}

/// Checks that `key` can name a blob: non-empty and at most [`MAX_BLOB_KEY_LEN`] bytes.
pub(crate) fn check_blob_key(key: &str) -> Result<(), StorageError> {
    check_length(key, MAX_BLOB_KEY_LEN).map_err(|reason| StorageError::BadBlobKey {
        key: clip(key),
        reason,
    })
}

/// Returns the current time in epoch milliseconds.
pub fn now_millis() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.map(|d| d.as_millis() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_integers_only() {
        assert_eq!(Valu::from_text("10"), Valu::Int(10));
        assert_eq!(Valu::from_text("-9223372036854775808"), Valu::Int(i64::MIN));
        assert_eq!(Valu::from_text("010"), Valu::Str("010".into()));
        assert_eq!(Valu::from_text("+1"), Valu::Str("+1".into()));
        assert_eq!(Valu::from_text("-0"), Valu::Str("-0".into()));
        assert_eq!(
            Valu::from_text("9223372036854775808"),
            Valu::Str("9223372036854775808".into())
        );
        assert_eq!(Valu::from_text(""), Valu::Str(String::new()));
    }

    #[test]
    fn prop_limits() {
        assert!(check_prop("a").is_ok());
        assert!(check_prop(&"p".repeat(1024)).is_ok());
        assert!(matches!(check_prop(""), Err(StorageError::BadProp { .. })));
        assert!(matches!(
            check_prop(&"p".repeat(1025)),
            Err(StorageError::BadProp { .. })
        ));
    }
}
