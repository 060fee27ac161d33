//! Naming a store: a directory (RocksDB, one host) or a `postgres://` URL (rows in PostgreSQL,
//! shared by hosts), and opening it with the chunk store its recorded content location names
//! (its own blob side store, or an S3 bucket).

use std::path::{Path, PathBuf};

use super::postgres::{PgEngine, PgUrl};
use super::s3::{S3Chunks, S3Url};
use super::{ChunkStore, Result, RocksStore, RowRead, RowStore, RowWrite, Storage, StorageError};

/// The blob holding a store's content location (`s3://…`); absent: chunks are in the store.
pub const CONTENT_LOCATION: &str = "cronusfs:content";
/// The blob holding a store's creation time, epoch milliseconds as an 8-byte big-endian i64:
/// what every Synapse storage layer records.
pub const CREATED: &str = "syn:core:created";

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
/// (`None`: wherever it is recorded; in the store itself for a new one). A bucket that cannot
/// be listed is an error here rather than at the first write. A store whose content is
/// recorded elsewhere already is [`StorageError::BadUrl`]: its chunks cannot move by a flag.
pub fn create(location: &Location, content: Option<&S3Url>) -> Result<OpenStore> {
    let rows = open_rows(location, true)?;
    if rows.blob_get(CREATED)?.is_none() {
        rows.blob_set(CREATED, &super::now_millis().to_be_bytes())?;
    }
    let recorded = rows.blob_get(CONTENT_LOCATION)?;
    if let Some(wanted) = content {
        let text = wanted.to_string();
        match &recorded {
            None => {
                S3Chunks::open(wanted)?.chunk_keys("cronusfs-probe/")?;
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
    finish(rows)
}

/// Opens the existing store at `location`, with the chunk store its content location names.
pub fn open(location: &Location) -> Result<OpenStore> {
    finish(open_rows(location, false)?)
}

fn open_rows(location: &Location, create: bool) -> Result<Box<dyn Storage>> {
    Ok(match (location, create) {
        (Location::Dir(dir), true) => Box::new(RocksStore::create(dir)?),
        (Location::Dir(dir), false) => Box::new(RocksStore::open(dir)?),
        (Location::Postgres(url), _) => {
            Box::new(RowStore::with_engine(PgEngine::open(url, create)?)?)
        }
    })
}

fn finish(rows: Box<dyn Storage>) -> Result<OpenStore> {
    let chunks = match rows.blob_get(CONTENT_LOCATION)? {
        None => None,
        Some(raw) => {
            let text = String::from_utf8(raw).map_err(|_| {
                StorageError::Corruption("the content location is not UTF-8".to_string())
            })?;
            let url = S3Url::parse(&text)?;
            Some(Box::new(S3Chunks::open(&url)?) as Box<dyn ChunkStore>)
        }
    };
    Ok(OpenStore { rows, chunks })
}
