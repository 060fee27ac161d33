//! The store's schema in PostgreSQL: one table of key and value per column family, made (if
//! missing) in one statement batch, and the check that they exist.

use std::fmt::Write as _;

use super::client::Client;
use super::{Cf, Result, table};
use crate::storage::StorageError;
use crate::storage::keys::{FORMAT_VERSION, FORMAT_VERSION_BEFORE_HISTORY};

/// Returns the statements that make the store's schema and tables if missing.
pub(super) fn tables_sql(schema: &str) -> String {
    let mut sql = format!("CREATE SCHEMA IF NOT EXISTS {schema};");
    for cf in Cf::ALL {
        let _ = write!(
            sql,
            "CREATE TABLE IF NOT EXISTS {} (k BYTEA PRIMARY KEY, v BYTEA NOT NULL);",
            table(schema, cf)
        );
    }
    sql.push_str(&super::clock::horizon_sql(schema));
    sql
}

/// Creates the store's schema and tables if missing (one transaction; safe to race).
pub(super) fn create_tables(client: &mut Client, schema: &str) -> Result<()> {
    client.batch_execute(&tables_sql(schema))
}

/// Returns whether the store's tables exist; those of a store made before history was kept
/// are [`StorageError::FormatVersion`] (it is upgraded by a command, not by an open).
pub(super) fn tables_exist(client: &mut Client, schema: &str) -> Result<bool> {
    let row = client.query_one(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1",
        &[&schema],
    )?;
    let tables = row.get::<_, i64>(0) as usize;
    if tables >= Cf::BEFORE_HISTORY.len() && tables < Cf::ALL.len() {
        return Err(StorageError::FormatVersion {
            found: FORMAT_VERSION_BEFORE_HISTORY,
            supported: FORMAT_VERSION,
        });
    }
    Ok(tables >= Cf::ALL.len())
}
