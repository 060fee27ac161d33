//! `restore`: an object, job, partition or dataset made what it was at a past time, as new
//! versions in one transaction. Nothing is lost: the state before the restore stays in
//! history. An object deleted since comes back with its uuid and rows; one made since (under
//! the place restored) is deleted; the directories a restored object needs come back too.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use prost::Message;

use super::dir_times::{Change, entry_changed_in};
use super::folders::folder_iden;
use super::links::{Placed, folders_in, links_in, placed_of, placed_path};
use super::objects::object_meta;
use super::tree::{job_iden, partition_iden};
use super::versions::{HISTORY_KEPT, cronus_info, history_version};
use super::{DatasetId, JobId, Metastore, NodeProps, ObjectId, ObjectPath, info_key, prop};
use crate::meta::content::has_manifest;
use crate::meta::{MetaError, Result};
use crate::storage::retry::transact;
use crate::storage::{Iden, PropQuery, Row, RowWrite, Storage, Valu, now_millis};

/// What a restore did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RestoreReport {
    /// Objects given back their state then, as a new version (or made again).
    pub restored: usize,
    /// Objects deleted: made after the time, in the place restored.
    pub removed: usize,
    /// Objects already as they were then.
    pub unchanged: usize,
}

/// A place of the tree a restore covers: a dataset, a partition or a job directory of one.
#[derive(Clone, Debug)]
pub struct RestorePlace {
    /// The dataset.
    pub dataset: DatasetId,
    /// The partition (all of them when `None`).
    pub partition: Option<String>,
    /// The job (all of them when `None`).
    pub job: Option<JobId>,
}

impl RestorePlace {
    /// Returns whether `path` is in the place.
    pub(super) fn holds(&self, path: &ObjectPath) -> bool {
        path.dataset == self.dataset
            && self.partition.as_ref().is_none_or(|k| *k == path.partition)
            && self.job.is_none_or(|j| j == path.job)
    }
}

/// One object to give back its rows of then.
struct Restored {
    id: ObjectId,
    then: Vec<Row>,
    /// Every `cronus:history` value the object ever had, and its highest version.
    history: BTreeSet<String>,
    version: i64,
}

impl<S: Storage> Metastore<S> {
    /// Makes object `id` what it was at `at` (µs): its bytes, rows and place then, as a new
    /// version; made again with its uuid if it was deleted since. Another object at its path
    /// now is [`MetaError::ObjectExists`]; an object that did not exist then,
    /// [`MetaError::NoSuchObject`].
    pub fn restore_object(&self, id: ObjectId, at: i64) -> Result<RestoreReport> {
        let then = self.at(at)?;
        let rows = then.node_rows(&id.iden())?;
        if rows.is_empty() {
            return Err(MetaError::NoSuchObject(id.to_string()));
        }
        let restored = self.restored(id, rows)?;
        self.restore_nodes(&then, &[restored], &[], None)
    }

    /// Makes every object of `place` what it was at `at` (µs): objects there then get their
    /// state back (made again if deleted since), objects made there since are deleted.
    pub fn restore_place(&self, place: &RestorePlace, at: i64) -> Result<RestoreReport> {
        let then = self.at(at)?;
        check_place_then(&then, place)?;
        let mut was = objects_in(&then, place)?;
        let is = objects_in(self, place)?;
        let kept: HashSet<ObjectId> = was.iter().map(|(id, _)| *id).collect();
        let mut removed = Vec::new();
        for (id, _) in is.into_iter().filter(|(id, _)| !kept.contains(id)) {
            // Moved in since: it goes back where it was then; made since: it goes.
            match then.node_rows(&id.iden())? {
                rows if rows.is_empty() => removed.push(id),
                rows => was.push((id, rows)),
            }
        }
        let restored = (was.into_iter())
            .map(|(id, rows)| self.restored(id, rows))
            .collect::<Result<Vec<_>>>()?;
        let folders_then = folders_in(&then, place)?;
        let mut new_folders = Vec::new();
        for (iden, rows) in folders_in(self, place)? {
            if !folders_then.contains_key(&iden) {
                new_folders.push((placed_path(&iden, &rows)?, iden));
            }
        }
        let links = Links {
            then: links_in(&then, place)?,
            now: links_in(self, place)?,
            new_folders,
        };
        self.restore_nodes(&then, &restored, &removed, Some(&links))
    }

    /// Returns what restoring object `id` to rows `then` needs of its history.
    fn restored(&self, id: ObjectId, then: Vec<Row>) -> Result<Restored> {
        let mut history = BTreeSet::new();
        let mut version = 0;
        for v in self.store.row_versions(&id.iden())? {
            match (v.row.prop.as_str(), &v.row.valu) {
                (prop::HISTORY, valu) => {
                    history.insert(valu.to_string());
                }
                (prop::VERSION, Valu::Int(n)) => version = version.max(*n),
                _ => {}
            }
        }
        Ok(Restored {
            id,
            then,
            history,
            version,
        })
    }

    /// Deletes `removed` and gives `restored` their rows of then, with the directories they
    /// need, in one transaction under a write lease (gc keeps the contents it re-references).
    /// A place restored (`links` given, else one object) has its links made what they were
    /// then too; a link where a restored object or folder goes is replaced.
    fn restore_nodes(
        &self,
        then: &Metastore<Box<dyn Storage>>,
        restored: &[Restored],
        removed: &[ObjectId],
        links: Option<&Links>,
    ) -> Result<RestoreReport> {
        let one = links.is_none();
        let _hold = self.leases().hold_off_gc_for_new_write()?;
        let mut paths = (restored.iter())
            .map(|r| Ok(object_meta(&r.then)?.path))
            .collect::<Result<Vec<_>>>()?;
        if let Some(links) = links {
            for (iden, rows) in &links.then {
                paths.push(placed_path(iden, rows)?);
            }
        }
        let dirs = dirs_of(then, &paths)?;
        let now = now_millis();
        transact(&self.store, |txn| {
            self.leases().check_held_in(txn)?;
            let mut report = RestoreReport::default();
            for id in removed {
                let rows = txn.rows_by_id(&id.iden())?;
                if let Ok(meta) = object_meta(&rows) {
                    entry_changed_in(txn, &meta.path, now, Change::Now)?;
                }
                delete_in(txn, &id.iden())?;
                report.removed += 1;
            }
            if let Some(links) = links {
                report.removed += links.remove_new(txn, now)?;
                report.removed += links.remove_new_folders(txn, now)?;
            }
            for (iden, rows, folder) in &dirs {
                let there = txn.rows_by_id(iden)?;
                if let Some(Placed::Link(_)) = placed_of(&there) {
                    clear_link(txn, iden, folder.as_ref(), one)?;
                } else if !there.is_empty() {
                    continue;
                }
                refuse_object_at(txn, folder.as_ref())?;
                txn.add_rows(rows)?;
                if let Some(folder) = folder {
                    entry_changed_in(txn, folder, now, Change::Now)?;
                }
            }
            for r in restored {
                match restore_one(txn, r, one, now)? {
                    true => report.restored += 1,
                    false => report.unchanged += 1,
                }
            }
            if let Some(links) = links {
                let (restored, unchanged) = links.bring_back(txn, now)?;
                report.restored += restored;
                report.unchanged += unchanged;
            }
            Ok(report)
        })
    }
}

/// Gives object `r` its rows of then in `txn`, as a new version; returns `false` when it is
/// already as it was. With `one` (a single object restored), another object at its path is
/// [`MetaError::ObjectExists`].
fn restore_one(txn: &dyn RowWrite, r: &Restored, one: bool, now_ms: i64) -> Result<bool> {
    let iden = r.id.iden();
    let now = txn.rows_by_id(&iden)?;
    let versioned = |p: &str| matches!(p, prop::VERSION | prop::HISTORY);
    if !now.is_empty() && same_rows(&now, &r.then, &versioned) {
        return Ok(false);
    }
    let meta = object_meta(&r.then)?;
    let path = NodeProps::new(&r.then).str(prop::PATH)?.to_string();
    let occupant = txn.rows_by_prop(&PropQuery::new(prop::PATH).valu(&Valu::from(path.clone())))?;
    if let Some(other) = occupant.iter().find(|row| row.iden != iden) {
        if one {
            return Err(MetaError::ObjectExists(path));
        }
        delete_in(txn, &other.iden)?; // Under the place: made there since.
    }
    let placed = folder_iden(&meta.path)?;
    match placed_of(&txn.rows_by_id(&placed)?) {
        Some(Placed::Folder) => return Err(MetaError::FolderExists(meta.path.to_string())),
        Some(Placed::Link(_)) => clear_link(txn, &placed, Some(&meta.path), one)?,
        None => {}
    }
    if !has_manifest(txn, meta.content)? {
        return Err(MetaError::NoSuchContent(meta.content));
    }
    // Its directory gains an entry when it comes back or back from elsewhere; the one it
    // leaves loses one.
    let was = object_meta(&now).ok().map(|m| m.path);
    if was.as_ref() != Some(&meta.path) {
        entry_changed_in(txn, &meta.path, now_ms, Change::Now)?;
        if let Some(was) = &was {
            entry_changed_in(txn, was, now_ms, Change::Now)?;
        }
    }
    let version = r.version.max(meta.version) + 1;
    let mut rows: Vec<Row> = (r.then.iter())
        .filter(|row| !matches!(row.prop.as_str(), prop::VERSION | prop::HISTORY))
        .cloned()
        .collect();
    let mut history = r.history.clone();
    history.insert(format!("{version}:{}", meta.content));
    history.retain(|h| history_version(h).is_none_or(|v| v > version - HISTORY_KEPT));
    let time = meta.modified;
    rows.push(Row::new(&iden, prop::VERSION, version, time));
    rows.extend(
        history
            .iter()
            .map(|h| Row::new(&iden, prop::HISTORY, h.as_str(), time)),
    );
    txn.del_rows_by_id(&iden)?;
    txn.add_rows(&rows)?;
    let info = cronus_info(&super::ObjectMeta { version, ..meta });
    txn.blob_set(&info_key(&r.id.to_string()), &info.encode_to_vec())?;
    Ok(true)
}

/// Refuses a place that did not exist at the time restored (`then`): there is nothing to go
/// back to (the dataset, partition or job was made since, or never was).
fn check_place_then(then: &Metastore<Box<dyn Storage>>, place: &RestorePlace) -> Result<()> {
    let dataset = place.dataset.to_string();
    if !then.has_dataset(place.dataset)? {
        return Err(MetaError::NoSuchDataset(dataset));
    }
    if let Some(key) = &place.partition
        && !then.has_partition(place.dataset, key)?
    {
        let key = key.clone();
        return Err(MetaError::NoSuchPartition { dataset, key });
    }
    if let Some(job) = place.job
        && !then.has_job(place.dataset, job)?
    {
        return Err(MetaError::NoSuchJob {
            dataset,
            job: job.0,
        });
    }
    Ok(())
}

/// Refuses to make folder `at` again where an object is now.
fn refuse_object_at(txn: &dyn RowWrite, at: Option<&ObjectPath>) -> Result<()> {
    let Some(at) = at else {
        return Ok(());
    };
    let valu = Valu::from(at.key());
    match txn
        .rows_by_prop(&PropQuery::new(prop::PATH).valu(&valu).limit(1))?
        .first()
    {
        Some(_) => Err(MetaError::ObjectExists(at.to_string())),
        None => Ok(()),
    }
}

/// Deletes object `iden` in `txn`: its rows and its info.
fn delete_in(txn: &dyn RowWrite, iden: &Iden) -> Result<()> {
    txn.del_rows_by_id(iden)?;
    if txn.blob_has(&info_key(iden.as_str()))? {
        txn.blob_del(&info_key(iden.as_str()))?;
    }
    Ok(())
}

/// Returns the objects in `place` in catalogue `m`, with their rows.
fn objects_in<T: Storage>(
    m: &Metastore<T>,
    place: &RestorePlace,
) -> Result<Vec<(ObjectId, Vec<Row>)>> {
    let valu = Valu::from(place.dataset.to_string());
    let rows = m
        .storage()
        .rows_by_prop(&PropQuery::new(prop::DATASET).valu(&valu))?;
    let mut found = Vec::new();
    for row in rows {
        let rows = m.node_rows(&row.iden)?;
        let props = NodeProps::new(&rows);
        if props.str(prop::KIND).ok() != Some("object") {
            continue;
        }
        let meta = object_meta(&rows)?;
        if place.holds(&meta.path) {
            found.push((meta.id, rows));
        }
    }
    Ok(found)
}

/// A directory node a restored object needs: its iden, its rows then, and for a folder its
/// path.
type Dir = (Iden, Vec<Row>, Option<ObjectPath>);

/// Returns the directories the objects and links restored at `paths` need (dataset, partition,
/// job and folders), with their rows then.
fn dirs_of(then: &Metastore<Box<dyn Storage>>, paths: &[ObjectPath]) -> Result<Vec<Dir>> {
    let mut idens = BTreeMap::new();
    for path in paths {
        idens.insert(path.dataset.iden(), None);
        idens.insert(partition_iden(path.dataset, &path.partition), None);
        idens.insert(job_iden(path.dataset, path.job), None);
        let mut folder = path.name.as_str();
        while let Some((up, _)) = folder.rsplit_once('/') {
            let at = ObjectPath::new(path.dataset, &path.partition, path.job, up);
            idens.insert(folder_iden(&at)?, Some(at));
            folder = up;
        }
    }
    let mut dirs = Vec::with_capacity(idens.len());
    for (iden, folder) in idens {
        let rows = then.node_rows(&iden)?;
        dirs.push((iden, rows, folder));
    }
    Ok(dirs)
}

/// Deletes the link at `iden` (place `at`) for a folder or object restored there, in `txn`;
/// restoring one object, it is [`MetaError::ObjectExists`] instead (remove it first).
fn clear_link(txn: &dyn RowWrite, iden: &Iden, at: Option<&ObjectPath>, one: bool) -> Result<()> {
    if one {
        let at = at.map_or_else(|| iden.to_string(), ObjectPath::to_string);
        return Err(MetaError::ObjectExists(at));
    }
    txn.del_rows_by_id(iden)?;
    Ok(())
}

/// The links of a place restored: then and now, by iden, with their rows; and the folders
/// made there since, with their places.
struct Links {
    then: BTreeMap<Iden, Vec<Row>>,
    now: BTreeMap<Iden, Vec<Row>>,
    new_folders: Vec<(ObjectPath, Iden)>,
}

impl Links {
    /// Deletes the folders made in the place since, deepest first, in `txn` at `now` (epoch
    /// ms): once the objects and links made since are gone (and those moved in since are moved
    /// back), nothing is left in them. Returns how many.
    fn remove_new_folders(&self, txn: &dyn RowWrite, now: i64) -> Result<usize> {
        let mut deepest_first: Vec<&(ObjectPath, Iden)> = self.new_folders.iter().collect();
        deepest_first.sort_by_key(|(at, _)| std::cmp::Reverse(at.name.matches('/').count()));
        for (at, iden) in &deepest_first {
            txn.del_rows_by_id(iden)?;
            entry_changed_in(txn, at, now, Change::Now)?;
        }
        Ok(deepest_first.len())
    }

    /// Deletes the links made in the place since, in `txn` at `now` (epoch ms); returns how
    /// many.
    fn remove_new(&self, txn: &dyn RowWrite, now: i64) -> Result<usize> {
        let new: Vec<(&Iden, &Vec<Row>)> = (self.now.iter())
            .filter(|(iden, _)| !self.then.contains_key(*iden))
            .collect();
        for (iden, rows) in &new {
            txn.del_rows_by_id(iden)?;
            entry_changed_in(txn, &placed_path(iden, rows)?, now, Change::Now)?;
        }
        Ok(new.len())
    }

    /// Gives the links of then their rows of then, in `txn` (a folder made at one's place
    /// since is [`MetaError::FolderExists`]); returns how many changed and how many were
    /// already so.
    fn bring_back(&self, txn: &dyn RowWrite, now_ms: i64) -> Result<(usize, usize)> {
        let (mut restored, mut unchanged) = (0, 0);
        for (iden, rows) in &self.then {
            let now = txn.rows_by_id(iden)?;
            if same_rows(&now, rows, &|_| false) {
                unchanged += 1;
                continue;
            }
            let at = placed_path(iden, rows)?;
            if let Some(Placed::Folder) = placed_of(&now) {
                // A folder made since where a link was: move it away to bring the link back.
                return Err(MetaError::FolderExists(at.to_string()));
            }
            refuse_object_at(txn, Some(&at))?;
            txn.del_rows_by_id(iden)?;
            txn.add_rows(rows)?;
            if now.is_empty() {
                entry_changed_in(txn, &at, now_ms, Change::Now)?;
            }
            restored += 1;
        }
        Ok((restored, unchanged))
    }
}

/// Returns whether two nodes' rows say the same (props and values), but the props `ignored`.
fn same_rows(a: &[Row], b: &[Row], ignored: &dyn Fn(&str) -> bool) -> bool {
    let set = |rows: &[Row]| -> HashSet<(String, String)> {
        (rows.iter())
            .filter(|r| !ignored(&r.prop))
            .map(|r| (r.prop.clone(), r.valu.to_string()))
            .collect()
    };
    set(a) == set(b)
}
