//! The Python Cronus' saved metastores (`BaseObjectStore.save_store()`): each one's
//! `CronusObjectStore` message kept under its stored name `<uuid>.<name>.cronus.pb`, so that
//! `BaseObjectStore(root, name, store_uuid=…)` reopens it. Everything the tree holds is in the
//! tree already; the message keeps the store's identity and the entries that have no place in
//! it (files registered from outside the store, by their address).

use prost::Message;

use super::Metastore;
use crate::meta::{MetaError, Result};
use crate::pb::store::CronusObjectStore;
use crate::storage::Storage;

/// The blob key of the saved metastore named `name`.
fn saved_key(name: &str) -> String {
    format!("cronus-store/{name}")
}

impl<S: Storage> Metastore<S> {
    /// Saves (or replaces) `store`, under its `name` (the stored name the original reopens it
    /// by). A name with `/` or NUL in it, or an empty one, is refused.
    pub fn save_cronus_store(&self, store: &CronusObjectStore) -> Result<()> {
        let name = &store.name;
        if name.is_empty() || name.contains('/') || name.contains('\0') {
            return Err(MetaError::BadName {
                what: "saved metastore name",
                name: name.chars().take(64).collect(),
                reason: "empty, or with `/` or NUL in it",
            });
        }
        let bytes = store.encode_to_vec();
        self.in_txn(|txn| Ok(txn.blob_set(&saved_key(name), &bytes)?))
    }

    /// Returns the metastore saved under `name`, if one is.
    pub fn cronus_store(&self, name: &str) -> Result<Option<CronusObjectStore>> {
        let Some(bytes) = self.store.blob_get(&saved_key(name))? else {
            return Ok(None);
        };
        let store = CronusObjectStore::decode(bytes.as_slice())
            .map_err(|e| MetaError::Corrupt(format!("saved metastore {name}: {e}")))?;
        Ok(Some(store))
    }
}
