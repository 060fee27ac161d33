//! Naming a store: a directory (RocksDB, one host) or a `postgres://` URL (rows in PostgreSQL,
//! shared by hosts); creating it (its content location claimed first, then the store made in
//! one write, so a failure leaves nothing), and opening it with the chunk store its recorded
//! content location names (its own blob side store, or an S3 bucket owned by the store).

use std::path::{Path, PathBuf};

use super::faulty::FaultyEngine;
use super::postgres::{PgEngine, PgUrl};
use super::retry::transact;
use super::rocks::RocksEngine;
use super::s3::{Owner, S3Chunks, S3Url};
use super::{ChunkStore, Result, RocksStore, RowRead, RowStore, RowWrite, Storage, StorageError};

/// The blob holding a store's content location (`s3://…`); absent: chunks are in the store.
pub const CONTENT_LOCATION: &str = "cronusfs:content";
/// The blob holding a store's creation time, epoch milliseconds as an 8-byte big-endian i64:
/// what every Synapse storage layer records (written where the row store is made).
pub const CREATED: &str = super::keys::SYN_CREATED;
/// The blob holding a store's id (a UUID made at `init`, or when a store made before ids
/// first needs one): what its content location's owner marker names.
pub const STORE_ID: &str = "cronusfs:store-id";

/// Where a store is.
#[derive(Clone, Debug)]
pub enum Location {
    /// A directory holding a RocksDB database.
    Dir(PathBuf),
    /// Tables in a PostgreSQL database.
    Postgres(Box<PgUrl>),
}

impl Location {
    /// Reads a store argument: a `postgres://` (or `postgresql://`) URL, else a directory.
    pub fn parse(arg: &Path) -> Result<Location> {
        match arg.to_str() {
            Some(s) if PgUrl::is_pg_url(s) => Ok(Location::Postgres(Box::new(PgUrl::parse(s)?))),
            Some(s) if s.contains("://") => Err(StorageError::BadUrl {
                url: s.split('?').next().unwrap_or(s).to_string(),
                reason: "a store is a directory or a postgres:// URL".to_string(),
            }),
            _ => Ok(Location::Dir(arg.to_path_buf())),
        }
    }

    /// Returns whether several hosts can use the store at once.
    pub fn is_shared(&self) -> bool {
        matches!(self, Location::Postgres(_))
    }

    /// Returns the directory on this host of the files of the daemon serving the store at
    /// `mountpoint` (its record and staging files; a store directory's daemon also has its
    /// socket there): the store directory itself, or for a shared store a private directory
    /// under `cache_root` named after the store's URL and the mount point, so that several
    /// daemons of one shared store can run on one host.
    pub fn daemon_dir(&self, cache_root: &Path, mountpoint: &Path) -> PathBuf {
        match self {
            Location::Dir(dir) => dir.clone(),
            Location::Postgres(url) => {
                let mut hasher = blake3::Hasher::new();
                hasher.update(url.to_string().as_bytes());
                hasher.update(b"\0");
                hasher.update(mountpoint.as_os_str().as_encoded_bytes());
                cache_root
                    .join("stores")
                    .join(&hasher.finalize().to_hex()[..24])
            }
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Dir(dir) => write!(f, "{}", dir.display()),
            Location::Postgres(url) => write!(f, "{url}"),
        }
    }
}

/// An open store: its rows (and blobs, manifests among them), and the chunk store of its
/// contents when they are not in its own blob side store.
pub struct OpenStore {
    /// The row store.
    pub rows: Box<dyn Storage>,
    /// Where chunks are, when elsewhere.
    pub chunks: Option<Box<dyn ChunkStore>>,
}

impl std::fmt::Debug for OpenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenStore")
            .field("separate_chunks", &self.chunks.is_some())
            .finish()
    }
}

/// Returns whether `location` already holds a store.
pub fn exists(location: &Location) -> Result<bool> {
    match location {
        Location::Dir(dir) => Ok(dir.join("CURRENT").exists()),
        Location::Postgres(url) => match PgEngine::open(url, false) {
            Ok(_) => Ok(true),
            Err(StorageError::NoStore { .. }) => Ok(false),
            Err(e) => Err(e),
        },
    }
}

/// Creates the store at `location` (or opens the one there) with its content in `content`
/// (`None`: wherever it is recorded; in the store itself for a new one). A new store's content
/// location is claimed first ([`S3Chunks::claim_new`]: the bucket listed, no other store's
/// location there or inside or around it, the owner marker written and read back), then the
/// store is made with its id, creation time and content location in one write; if that
/// fails, the marker is removed: a failed creation leaves nothing. A store whose content is
/// recorded elsewhere already is [`StorageError::BadUrl`]: its chunks cannot move by a flag.
pub fn create(location: &Location, content: Option<&S3Url>) -> Result<OpenStore> {
    if exists(location)? {
        return reopen(location, content);
    }
    let owner = Owner {
        id: uuid::Uuid::new_v4().to_string(),
        store: location.to_string(),
    };
    let chunks = match content {
        Some(url) => {
            let chunks = S3Chunks::open(url)?.owned_by(owner.clone());
            chunks.claim_new(&owner)?;
            Some(chunks)
        }
        None => None,
    };
    let mut blobs = vec![(STORE_ID, owner.id.clone().into_bytes())];
    if let Some(url) = content {
        blobs.push((CONTENT_LOCATION, url.to_string().into_bytes()));
    }
    let made = make_rows(location, &blobs).and_then(|rows| {
        let ours = rows.blob_get(STORE_ID)?.as_deref() == Some(owner.id.as_bytes());
        Ok((rows, ours))
    });
    match made {
        Ok((rows, true)) => {
            let chunks = chunks.map(|c| Box::new(c) as Box<dyn ChunkStore>);
            return Ok(OpenStore { rows, chunks });
        }
        other => {
            if let Some(chunks) = &chunks {
                // Best effort: the error that matters is the creation's.
                let _ = chunks.release(&owner);
            }
            other?;
        }
    }
    // Another process made a store here meanwhile: it is opened as `init` of an existing
    // store would open it.
    reopen(location, content)
}

/// Makes a new store at `location` holding `blobs`, in one write with its format version.
fn make_rows(location: &Location, blobs: &[(&str, Vec<u8>)]) -> Result<Box<dyn Storage>> {
    Ok(match location {
        Location::Dir(dir) => Box::new(RowStore::with_blobs(RocksEngine::open(dir, true)?, blobs)?),
        Location::Postgres(url) => {
            let first = super::rowstore::first_batch(blobs)?;
            Box::new(RowStore::with_engine(PgEngine::create(url, first)?)?)
        }
    })
}

/// Opens the existing store at `location` for [`create`]: records its creation time if
/// missing, and `content` if it records no content location (claimed first).
fn reopen(location: &Location, content: Option<&S3Url>) -> Result<OpenStore> {
    let rows = open_rows(location, true)?;
    if rows.blob_get(CREATED)?.is_none() {
        rows.blob_set(CREATED, &super::now_millis().to_be_bytes())?;
    }
    let recorded = rows.blob_get(CONTENT_LOCATION)?;
    if let Some(wanted) = content {
        let text = wanted.to_string();
        match &recorded {
            None => {
                S3Chunks::open(wanted)?.claim_new(&owner_of(location, &*rows)?)?;
                rows.blob_set(CONTENT_LOCATION, text.as_bytes())?;
            }
            Some(r) if r.as_slice() != text.as_bytes() => {
                return Err(StorageError::BadUrl {
                    url: text,
                    reason: format!(
                        "this store keeps its content at {}",
                        String::from_utf8_lossy(r)
                    ),
                });
            }
            Some(_) => {}
        }
    }
    finish(location, rows)
}

/// Opens the store at `location` to decide an upgrade, whatever its format version: returns
/// it (to read only) and the version it is in. A store directory is upgraded by the open
/// itself; a shared store keeps its format until [`upgrade`].
pub fn open_to_upgrade(location: &Location) -> Result<(Box<dyn Storage>, u32)> {
    match location {
        Location::Dir(dir) => {
            let store = RocksStore::open(dir)?;
            Ok((Box::new(store), super::keys::FORMAT_VERSION))
        }
        Location::Postgres(url) => {
            let (store, version) = RowStore::open_to_upgrade(PgEngine::open_to_upgrade(url)?)?;
            Ok((Box::new(store), version))
        }
    }
}

/// Upgrades the store at `location` to the format this build reads; returns when its history
/// begins (µs of the store clock). Run it once no daemon of an earlier version uses the store.
pub fn upgrade(location: &Location) -> Result<i64> {
    match location {
        Location::Dir(dir) => RocksStore::open(dir)?.history_bounds().map(|b| b.since),
        Location::Postgres(url) => {
            let (store, _) = RowStore::open_to_upgrade(PgEngine::open_to_upgrade(url)?)?;
            store.upgrade()
        }
    }
}

/// Opens the existing store at `location`, with the chunk store its content location names.
pub fn open(location: &Location) -> Result<OpenStore> {
    finish(location, open_rows(location, false)?)
}

/// The environment variable that makes the first N transaction commits of a store directory
/// opened by this process conflict, as another writer's commits would: fault injection, so
/// that tests see retries through a real mount (`CRONUSFS_INJECT_CONFLICTS=N`).
pub const INJECT_CONFLICTS: &str = "CRONUSFS_INJECT_CONFLICTS";

fn open_rows(location: &Location, create: bool) -> Result<Box<dyn Storage>> {
    let conflicts = std::env::var(INJECT_CONFLICTS).ok();
    let conflicts = conflicts.and_then(|n| n.parse::<u64>().ok());
    Ok(match (location, create) {
        (Location::Dir(dir), false) if let Some(n) = conflicts => {
            let faulty = FaultyEngine::new(RocksEngine::open(dir, false)?);
            faulty.conflict_commits(n);
            Box::new(RowStore::with_engine(faulty)?)
        }
        (Location::Dir(dir), true) => Box::new(RocksStore::create(dir)?),
        (Location::Dir(dir), false) => Box::new(RocksStore::open(dir)?),
        (Location::Postgres(url), _) => {
            Box::new(RowStore::with_engine(PgEngine::open(url, create)?)?)
        }
    })
}

/// Returns the store at `location` (`rows`) as the owner of a content location: its id,
/// made now if it has none (a store made before stores had ids), and its URL.
fn owner_of(location: &Location, rows: &dyn Storage) -> Result<Owner> {
    let id = match rows.blob_get(STORE_ID)? {
        Some(id) => id,
        None => transact(rows, |txn| match txn.blob_get(STORE_ID)? {
            Some(id) => Ok::<_, StorageError>(id),
            None => {
                let id = uuid::Uuid::new_v4().to_string().into_bytes();
                txn.blob_set(STORE_ID, &id)?;
                Ok(id)
            }
        })?,
    };
    let id = String::from_utf8(id)
        .map_err(|_| StorageError::Corruption("the store id is not UTF-8".to_string()))?;
    Ok(Owner {
        id,
        store: location.to_string(),
    })
}

fn finish(location: &Location, rows: Box<dyn Storage>) -> Result<OpenStore> {
    let chunks = match rows.blob_get(CONTENT_LOCATION)? {
        None => None,
        Some(raw) => {
            let text = String::from_utf8(raw).map_err(|_| {
                StorageError::Corruption("the content location is not UTF-8".to_string())
            })?;
            let url = S3Url::parse(&text)?;
            let owner = owner_of(location, &*rows)?;
            Some(Box::new(S3Chunks::open(&url)?.owned_by(owner)) as Box<dyn ChunkStore>)
        }
    };
    Ok(OpenStore { rows, chunks })
}
