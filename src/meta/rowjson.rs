//! Rows as JSON lines, `{"iden","prop","valu","time"}` with integers kept as numbers: the format
//! of `cronusfs rows dump|import` and of the rows sidecar of a Cronus export.

use crate::storage::{Iden, Row, StorageError, Valu, now_millis};

/// Returns `row` as one JSON object (one line).
pub fn to_json_line(row: &Row) -> String {
    let valu = match &row.valu {
        Valu::Int(i) => serde_json::Value::from(*i),
        Valu::Str(s) => serde_json::Value::from(s.as_str()),
    };
    serde_json::json!({"iden": row.iden.as_str(), "prop": row.prop, "valu": valu, "time": row.time})
        .to_string()
}

/// Why a JSON line is not a row.
#[derive(Debug, thiserror::Error)]
pub enum RowJsonError {
    /// Not JSON at all.
    #[error("not JSON")]
    NotJson,
    /// A field is missing or of the wrong type.
    #[error("field {0:?} is missing or not {1}")]
    BadField(&'static str, &'static str),
    /// The iden is not storable.
    #[error(transparent)]
    Iden(#[from] StorageError),
}

/// Parses one JSON line as written by [`to_json_line`]; a missing `time` means now.
pub fn from_json_line(line: &str) -> Result<Row, RowJsonError> {
    let v: serde_json::Value = serde_json::from_str(line).map_err(|_| RowJsonError::NotJson)?;
    let text = |name: &'static str| {
        v.get(name)
            .and_then(|f| f.as_str())
            .ok_or(RowJsonError::BadField(name, "a string"))
    };
    let valu = match v.get("valu") {
        Some(serde_json::Value::String(s)) => Valu::Str(s.clone()),
        Some(n) => Valu::Int(
            n.as_i64()
                .ok_or(RowJsonError::BadField("valu", "a string or an i64"))?,
        ),
        None => return Err(RowJsonError::BadField("valu", "a string or an i64")),
    };
    let time = match v.get("time") {
        None | Some(serde_json::Value::Null) => now_millis(),
        Some(t) => t.as_i64().ok_or(RowJsonError::BadField("time", "an i64"))?,
    };
    Ok(Row {
        iden: Iden::new(text("iden")?)?,
        prop: text("prop")?.to_string(),
        valu,
        time,
    })
}

/// Returns the current time as a protobuf `Timestamp` (for `created` fields).
pub fn timestamp_now() -> prost_types::Timestamp {
    let ms = now_millis();
    prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_and_bad_lines_are_typed() {
        let row = Row::new(&Iden::new("i\t1").unwrap(), "p", Valu::Int(-3), 7);
        assert_eq!(from_json_line(&to_json_line(&row)).unwrap(), row);
        let row = Row::new(&Iden::new("i").unwrap(), "p", "10", 7);
        assert_eq!(from_json_line(&to_json_line(&row)).unwrap(), row);
        assert!(matches!(
            from_json_line(r#"{"iden":"i","prop":"p","valu":1.5}"#),
            Err(RowJsonError::BadField("valu", _))
        ));
        assert!(matches!(from_json_line("nope"), Err(RowJsonError::NotJson)));
        assert!(matches!(
            from_json_line(r#"{"iden":"","prop":"p","valu":1}"#),
            Err(RowJsonError::Iden(_))
        ));
    }
}
