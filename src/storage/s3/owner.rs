//! Who owns a content location: one marker object per store in the bucket, at
//! `cronusfs-owners/<PREFIX>/owner` (`cronusfs-owners/owner` for a store at the bucket's root),
//! naming the store's id and URL. All of a bucket's markers are listed in one request, so a
//! location that another store holds, or that is inside or around another store's, is found
//! from either side; `init` claims its location, and `gc` sweeps only a location whose marker
//! names its own store.

use futures_util::TryStreamExt;
use object_store::path::{Path as ObjectPath, PathPart};
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use super::{S3Chunks, S3Url};
use crate::storage::{Result, StorageError};

/// The folder at the bucket's root that holds every store's owner marker.
pub const OWNERS: &str = "cronusfs-owners";
/// The last segment of a marker's key.
const MARKER: &str = "owner";

/// A store as the owner of a content location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    /// The store's id (its blob `cronusfs:store-id`, made at `init`).
    pub id: String,
    /// The store's URL, without password (shown to whoever finds the location taken).
    pub store: String,
}

impl Owner {
    /// Returns the text of the marker of this owner of `content`.
    fn marker_text(&self, content: &S3Url) -> String {
        format!(
            "cronusfs content location owner\nstore-id {}\nstore {}\ncontent {content}\n",
            self.id, self.store
        )
    }

    /// Reads a marker's text; one that does not say whose it is stands for an unknown store.
    fn from_marker(text: &str, key: &ObjectPath) -> Owner {
        let field = |label: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(label))
                .map(|v| v.trim().to_string())
        };
        Owner {
            id: field("store-id ").unwrap_or_else(|| "unknown".to_string()),
            store: field("store ").unwrap_or_else(|| format!("unknown (marker {key})")),
        }
    }
}

/// Returns the key of the owner marker of the location at `prefix`.
fn marker_key(prefix: &ObjectPath) -> ObjectPath {
    let mut key = ObjectPath::from(OWNERS);
    key.extend(prefix.parts());
    key.join(MARKER)
}

/// Returns the prefix whose marker is `key`, if `key` is a marker.
fn marker_prefix(root: &ObjectPath, key: &ObjectPath) -> Option<ObjectPath> {
    let mut parts: Vec<_> = key.prefix_match(root)?.collect();
    let last = parts.pop()?;
    if name(&last) != MARKER {
        return None;
    }
    Some(parts.into_iter().collect())
}

/// Returns the text of one segment of a path.
fn name<'p>(part: &'p PathPart<'_>) -> &'p str {
    part.as_ref()
}

/// Returns whether two locations overlap: the same, or one inside the other.
fn overlap(a: &ObjectPath, b: &ObjectPath) -> bool {
    a.prefix_matches(b) || b.prefix_matches(a)
}

impl S3Chunks {
    /// Makes this content location the store `owner`'s: refuses one that another store holds
    /// or that is inside or around another store's ([`StorageError::ContentOwned`]), then
    /// writes the marker (a conditional put) unless it is there already, reads it back, and
    /// looks again for a store that claimed an overlapping location meanwhile (its own marker
    /// is removed then). Its first request lists the bucket: wrong keys, a missing bucket or a
    /// server that does not answer fail here, before anything is written.
    pub fn claim(&self, owner: &Owner) -> Result<()> {
        self.runtime.block_on(self.claim_async(owner, false))
    }

    /// [`S3Chunks::claim`] for a store that has no chunks yet (a new store, or one that gets
    /// its content location now): a location holding chunks without a marker is refused too.
    pub fn claim_new(&self, owner: &Owner) -> Result<()> {
        self.runtime.block_on(self.claim_async(owner, true))
    }

    /// Removes this location's marker if it names `owner` (an `init` that failed after
    /// claiming the location).
    pub fn release(&self, owner: &Owner) -> Result<()> {
        self.runtime.block_on(self.release_async(owner))
    }

    async fn release_async(&self, owner: &Owner) -> Result<()> {
        let key = marker_key(&self.prefix_path());
        match self.read_owner(&key).await? {
            Some(o) if o.id == owner.id => self.store.delete(&key).await.map_err(|e| self.error(e)),
            _ => Ok(()),
        }
    }

    /// Returns the location's prefix as a path of the bucket.
    fn prefix_path(&self) -> ObjectPath {
        ObjectPath::from(self.url.prefix.as_str())
    }

    async fn claim_async(&self, owner: &Owner, new: bool) -> Result<()> {
        let mine = self.prefix_path();
        if mine.parts().next().is_some_and(|p| name(&p) == OWNERS) {
            return Err(StorageError::BadUrl {
                url: self.url.to_string(),
                reason: format!("{OWNERS}/ holds the bucket's owner markers, not content"),
            });
        }
        if self.refuse_clashes(owner).await? {
            return Ok(()); // Claimed before (by this store's init or an earlier gc).
        }
        if new {
            self.refuse_chunks().await?;
        }
        let key = marker_key(&mine);
        let options = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        let text = owner.marker_text(&self.url).into_bytes();
        match self
            .store
            .put_opts(&key, PutPayload::from(text), options)
            .await
        {
            // Another store's marker put meanwhile: read back below.
            Ok(_)
            | Err(object_store::Error::AlreadyExists { .. })
            | Err(object_store::Error::Precondition { .. }) => {}
            Err(e) => return Err(self.error(e)),
        }
        match self.read_owner(&key).await? {
            Some(o) if o.id == owner.id => {}
            other => return Err(self.clash(&mine, other)),
        }
        if let Err(e) = self.refuse_clashes(owner).await {
            let _ = self.store.delete(&key).await;
            return Err(e);
        }
        Ok(())
    }

    /// Fails with [`StorageError::ContentOwned`] when another store's marker is at this
    /// location or inside or around it; returns whether this store's own marker is here.
    async fn refuse_clashes(&self, owner: &Owner) -> Result<bool> {
        let mine = self.prefix_path();
        let mut found = false;
        for prefix in self.marked_prefixes().await? {
            if !overlap(&prefix, &mine) {
                continue;
            }
            match self.read_owner(&marker_key(&prefix)).await? {
                Some(o) if o.id == owner.id => found |= prefix == mine,
                None => {} // Removed since it was listed.
                other => return Err(self.clash(&prefix, other)),
            }
        }
        Ok(found)
    }

    /// Returns the prefix of every owner marker in the bucket (one listing: markers are few).
    async fn marked_prefixes(&self) -> Result<Vec<ObjectPath>> {
        let root = ObjectPath::from(OWNERS);
        let listed: Vec<ObjectMeta> = self
            .store
            .list(Some(&root))
            .try_collect()
            .await
            .map_err(|e| self.error(e))?;
        let prefixes = listed
            .iter()
            .filter_map(|m| marker_prefix(&root, &m.location));
        Ok(prefixes.collect())
    }

    /// Returns the owner the marker at `key` names, if there is one.
    async fn read_owner(&self, key: &ObjectPath) -> Result<Option<Owner>> {
        let got = match self.store.get(key).await {
            Ok(got) => got.bytes().await,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => Err(e),
        };
        let bytes = got.map_err(|e| self.error(e))?;
        Ok(Some(Owner::from_marker(
            &String::from_utf8_lossy(&bytes),
            key,
        )))
    }

    /// The error for this location meeting `other`'s location at `prefix`.
    fn clash(&self, prefix: &ObjectPath, other: Option<Owner>) -> StorageError {
        let mine = self.prefix_path();
        let theirs = S3Url {
            prefix: prefix.as_ref().to_string(),
            ..self.url.clone()
        };
        let clash = match (prefix == &mine, prefix.prefix_matches(&mine)) {
            (true, _) => "is the content location".to_string(),
            (false, true) => format!("holds {theirs}, the content location"),
            (false, false) => format!("is inside {theirs}, the content location"),
        };
        let owner = match other {
            Some(o) => format!("store {} (id {})", o.store, o.id),
            None => "a store that removed its marker meanwhile".to_string(),
        };
        StorageError::ContentOwned {
            content: self.url.to_string(),
            clash,
            owner,
        }
    }

    /// Fails unless this location holds no chunk yet: a new store's location with chunks and
    /// no marker is most likely the location of a store made before owner markers.
    async fn refuse_chunks(&self) -> Result<()> {
        let mut listed = self.store.list(Some(&self.path("chunk")));
        match listed.try_next().await.map_err(|e| self.error(e))? {
            None => Ok(()),
            Some(_) => Err(StorageError::ContentOwned {
                content: self.url.to_string(),
                clash: "holds chunks but no owner marker: it is likely the content location"
                    .to_string(),
                owner: "a store made before owner markers".to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_name_their_prefix_and_overlaps_go_by_whole_segments() {
        let root = ObjectPath::from(OWNERS);
        for prefix in ["", "a", "a/owner", "chunk/chunk"] {
            let prefix = ObjectPath::from(prefix);
            let key = marker_key(&prefix);
            assert_eq!(marker_prefix(&root, &key), Some(prefix));
        }
        assert_eq!(
            marker_key(&ObjectPath::from("")).as_ref(),
            "cronusfs-owners/owner"
        );
        assert_eq!(
            marker_key(&ObjectPath::from("a/b")).as_ref(),
            "cronusfs-owners/a/b/owner"
        );
        let root_store = ObjectPath::from("");
        let (data, data2) = (ObjectPath::from("data"), ObjectPath::from("data2"));
        assert!(
            overlap(&root_store, &data),
            "the bucket's root holds every prefix"
        );
        assert!(overlap(&data, &ObjectPath::from("data/x")));
        assert!(overlap(&ObjectPath::from("data/x"), &data));
        assert!(
            !overlap(&data, &data2),
            "siblings, though one name starts the other"
        );
    }

    #[test]
    fn a_marker_says_whose_it_is() {
        let owner = Owner {
            id: "1234".to_string(),
            store: "postgres://u:***@h:5432/db?schema=s".to_string(),
        };
        let url = S3Url::parse("s3://b/p?endpoint=http://h:1").unwrap();
        let key = marker_key(&ObjectPath::from("p"));
        assert_eq!(Owner::from_marker(&owner.marker_text(&url), &key), owner);
        assert_eq!(Owner::from_marker("garbage", &key).id, "unknown");
    }
}
