//! Registered menus and configurations: each a node of rows (kind, uuid, name, size, content)
//! whose message bytes are a content like any object's, and whose Cronus info is a blob.

use std::io::Read;

use prost::Message;

use super::{Metastore, NodeProps, info_key, not_found, prop, rows_of};
use crate::meta::content::{ContentStore, Manifest};
use crate::meta::name_rules::check_uuid;
use crate::meta::{MetaError, Result};
use crate::pb::cronus::{Configuration, Menu};
use crate::pb::store::{ConfigObjectInfo, CronusObject, MenuObjectInfo, cronus_object};
use crate::storage::{Iden, PropQuery, RowWrite, Storage, Valu, now_millis};

/// A menu or configuration to register: its kind (`menu`, `config`), identity and Cronus info.
#[derive(Clone)]
pub(crate) struct RegisteredMessage<'a> {
    pub kind: &'a str,
    pub uuid: &'a str,
    pub name: &'a str,
    pub info: cronus_object::Info,
}

impl<S: Storage> Metastore<S> {
    /// Registers a menu (uuid and name from the message) and stores its bytes.
    pub fn register_menu(&self, menu: &Menu, info: MenuObjectInfo) -> Result<()> {
        check_uuid("menu uuid", &menu.uuid)?;
        let info = cronus_object::Info::Menu(info);
        self.register_message("menu", &menu.uuid, &menu.name, &menu.encode_to_vec(), info)
    }

    /// Registers a configuration (uuid and name from the message) and stores its bytes.
    pub fn register_config(&self, config: &Configuration, info: ConfigObjectInfo) -> Result<()> {
        check_uuid("configuration uuid", &config.uuid)?;
        let info = cronus_object::Info::Config(info);
        self.register_message(
            "config",
            &config.uuid,
            &config.name,
            &config.encode_to_vec(),
            info,
        )
    }

    fn register_message(
        &self,
        kind: &str,
        uuid: &str,
        name: &str,
        bytes: &[u8],
        info: cronus_object::Info,
    ) -> Result<()> {
        let _put = self.leases().hold_off_gc_for_new_write()?;
        let manifest = self.content().write_chunks(&mut &bytes[..], &mut |_| {})?;
        let message = RegisteredMessage {
            kind,
            uuid,
            name,
            info,
        };
        self.in_txn(|txn| self.register_message_in(txn, message.clone(), &manifest))
    }

    /// Registers a menu or configuration whose bytes are stored as `manifest`, in `txn`.
    pub(crate) fn register_message_in(
        &self,
        txn: &dyn RowWrite,
        message: RegisteredMessage<'_>,
        manifest: &Manifest,
    ) -> Result<()> {
        let RegisteredMessage {
            kind,
            uuid,
            name,
            info,
        } = message;
        self.leases().check_held_in(txn)?;
        let iden = Iden::new(uuid)?;
        if !txn.rows_by_id(&iden)?.is_empty() {
            return Err(MetaError::DuplicateUuid(uuid.to_string()));
        }
        let now = now_millis();
        txn.add_rows(&rows_of(
            &iden,
            now,
            &[
                (prop::KIND, kind.into()),
                (prop::UUID, uuid.into()),
                (prop::NAME, name.into()),
                (prop::CREATED, now.into()),
                (prop::CONTENT, manifest.id.to_string().into()),
                (prop::SIZE, (manifest.size as i64).into()),
            ],
        ))?;
        ContentStore::commit_manifest(txn, manifest)?;
        let object = CronusObject {
            name: name.into(),
            uuid: uuid.into(),
            info: Some(info),
            ..Default::default()
        };
        Ok(txn.blob_set(&info_key(uuid), &object.encode_to_vec())?)
    }

    /// Returns the registered menu `uuid`.
    pub fn menu(&self, uuid: &str) -> Result<Menu> {
        let bytes = self.menu_bytes(uuid)?;
        Menu::decode(bytes.as_slice()).map_err(|e| MetaError::Corrupt(format!("menu {uuid}: {e}")))
    }

    /// Returns the bytes of the registered menu `uuid`, as they were registered.
    pub fn menu_bytes(&self, uuid: &str) -> Result<Vec<u8>> {
        self.message_bytes("menu", uuid)
            .map_err(|e| not_found(e, || MetaError::NoSuchMenu(uuid.into())))
    }

    /// Returns the registered configuration `uuid`.
    pub fn config(&self, uuid: &str) -> Result<Configuration> {
        let bytes = self.config_bytes(uuid)?;
        Configuration::decode(bytes.as_slice())
            .map_err(|e| MetaError::Corrupt(format!("configuration {uuid}: {e}")))
    }

    /// Returns the bytes of the registered configuration `uuid`, as they were registered.
    pub fn config_bytes(&self, uuid: &str) -> Result<Vec<u8>> {
        self.message_bytes("config", uuid)
            .map_err(|e| not_found(e, || MetaError::NoSuchConfig(uuid.into())))
    }

    fn message_bytes(&self, kind: &str, uuid: &str) -> Result<Vec<u8>> {
        let rows = self.store.rows_by_id(&Iden::new(uuid)?)?;
        let node = NodeProps::new(&rows);
        if node.kind() != Some(kind) {
            return Err(MetaError::NoSuchObject(uuid.to_string()));
        }
        let mut bytes = Vec::new();
        self.content()
            .reader(node.str(prop::CONTENT)?.parse()?)?
            .read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    /// Returns the uuids of the registered menus (`kind` "menu") or configurations ("config").
    pub fn registered(&self, kind: &str) -> Result<Vec<String>> {
        let kind = Valu::from(kind);
        let rows = self
            .store
            .rows_by_prop(&PropQuery::new(prop::KIND).valu(&kind))?;
        Ok(rows.into_iter().map(|r| r.iden.to_string()).collect())
    }
}
