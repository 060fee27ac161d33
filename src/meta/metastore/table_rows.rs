//! The rows recording a table file's metadata (Arrow or Parquet, `cronus:arrow:*` and
//! `cronus:parquet:*`), and the metadata read back from an object's rows.

use super::{NodeProps, prop};
use crate::meta::table_meta::{TableField, TableFormat, TableMeta};
use crate::meta::{MetaError, Result};
use crate::storage::{MAX_PROP_LEN, Row, Valu};

/// The props recording one format's table metadata.
struct TableProps {
    columns: &'static str,
    rows: &'static str,
    batches: &'static str,
    schema: &'static str,
    field: &'static str,
    meta: &'static str,
}

const ARROW_PROPS: TableProps = TableProps {
    columns: prop::ARROW_COLUMNS,
    rows: prop::ARROW_ROWS,
    batches: prop::ARROW_BATCHES,
    schema: prop::ARROW_SCHEMA,
    field: prop::ARROW_FIELD,
    meta: prop::ARROW_META,
};

const PARQUET_PROPS: TableProps = TableProps {
    columns: prop::PARQUET_COLUMNS,
    rows: prop::PARQUET_ROWS,
    batches: prop::PARQUET_ROW_GROUPS,
    schema: prop::PARQUET_SCHEMA,
    field: prop::PARQUET_FIELD,
    meta: prop::PARQUET_META,
};

fn props_of(format: TableFormat) -> &'static TableProps {
    match format {
        TableFormat::Arrow => &ARROW_PROPS,
        TableFormat::Parquet => &PARQUET_PROPS,
    }
}

/// The rows recording `table`. Per-field and per-key rows whose prop would be longer than the
/// row store allows are left out (the schema row still has them).
pub(super) fn table_rows(table: &TableMeta) -> Vec<(String, Valu)> {
    let props = props_of(table.format);
    let schema: Vec<serde_json::Value> = table
        .fields
        .iter()
        .map(|f| serde_json::json!({"name": f.name, "type": f.data_type, "nullable": f.nullable}))
        .collect();
    let count = |n: u64| Valu::Int(i64::try_from(n).unwrap_or(i64::MAX));
    let mut rows = vec![
        (props.columns.to_string(), count(table.num_columns() as u64)),
        (props.rows.to_string(), count(table.num_rows)),
        (props.batches.to_string(), count(table.num_batches)),
        (
            props.schema.to_string(),
            Valu::Str(serde_json::Value::Array(schema).to_string()),
        ),
    ];
    if let Some(writer) = &table.created_by {
        rows.push((prop::PARQUET_CREATED_BY.to_string(), writer.as_str().into()));
    }
    let fields =
        (table.fields.iter()).map(|f| (format!("{}{}", props.field, f.name), f.data_type.clone()));
    let meta = (table.metadata.iter()).map(|(k, v)| (format!("{}{k}", props.meta), v.clone()));
    rows.extend(
        fields
            .chain(meta)
            .filter(|(p, _)| p.len() <= MAX_PROP_LEN)
            .map(|(p, v)| (p, Valu::Str(v))),
    );
    rows
}

/// Rebuilds the table metadata recorded in an object's rows, if any.
pub(super) fn table_of(rows: &[Row], n: &NodeProps<'_>) -> Result<Option<TableMeta>> {
    let (format, schema) = match (n.str(prop::ARROW_SCHEMA), n.str(prop::PARQUET_SCHEMA)) {
        (Ok(schema), _) => (TableFormat::Arrow, schema),
        (_, Ok(schema)) => (TableFormat::Parquet, schema),
        _ => return Ok(None),
    };
    let props = props_of(format);
    let bad = || MetaError::Corrupt("invalid table schema row".into());
    let parsed: Vec<serde_json::Value> = serde_json::from_str(schema).map_err(|_| bad())?;
    let fields = parsed
        .iter()
        .map(|f| {
            Some(TableField {
                name: f.get("name")?.as_str()?.to_string(),
                data_type: f.get("type")?.as_str()?.to_string(),
                nullable: f.get("nullable")?.as_bool()?,
            })
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(bad)?;
    let metadata = rows
        .iter()
        .filter_map(|r| {
            Some((
                r.prop.strip_prefix(props.meta)?.to_string(),
                r.valu.to_string(),
            ))
        })
        .collect();
    let count = |p| n.int(p).map(|i| i as u64);
    Ok(Some(TableMeta {
        format,
        fields,
        num_rows: count(props.rows)?,
        num_batches: count(props.batches)?,
        metadata,
        created_by: n.str(prop::PARQUET_CREATED_BY).ok().map(str::to_string),
    }))
}
