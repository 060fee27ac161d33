//! `cronusfs menu|config|dataset|partition|job|put|get|ls|find|gc|fsck`: the Cronus catalogue from
//! the command line.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, bail};
use cronusfs::meta::{
    DatasetId, DirNodeFold, JobId, MatchRows, ObjectId, ObjectPath, RestorePlace, Term,
};
use cronusfs::pb::cronus::{Configuration, Menu};
use cronusfs::pb::store::{ConfigObjectInfo, MenuObjectInfo};
use prost::Message;

use super::history::field;
use super::progress::{Progress, ProgressRead, Unit};
use super::{Console, message_shape};
use crate::cli::{Command, DatasetCommand, JobCommand, MessageCommand, PartitionCommand};

use super::Catalog;

/// Runs a catalogue command: every command but `init`, `rows`, the Cronus import/export and
/// `gen-man`, which `app::run` handles itself.
/// `cache` is the content cache of the store's daemon, which `fsck` checks too (a store
/// directory's `cache/`).
pub fn run(m: &Catalog, io: &mut Console<'_>, cmd: Command, cache: Option<&Path>) -> Result<()> {
    match cmd {
        Command::Menu(c) => message(m, io, MessageKind::Menu, c),
        Command::Config(c) => message(m, io, MessageKind::Config, c),
        Command::Dataset(c) => dataset(m, io, c),
        Command::Partition(c) => partition(m, io, c),
        Command::Job(c) => job(m, io, c),
        Command::Put { file, target } => put(m, io, &file, &target),
        Command::Get { object, output, at } => {
            let then = as_of(m, at.as_deref())?;
            get(then.as_ref().unwrap_or(m), io, &object, output.as_deref())
        }
        Command::Ls { place, at } => ls(as_of(m, at.as_deref())?.as_ref().unwrap_or(m), io, &place),
        Command::Find { terms, at } => {
            find(as_of(m, at.as_deref())?.as_ref().unwrap_or(m), io, &terms)
        }
        Command::Gc { .. } => gc(m, io),
        // Run by a daemon for the command line: the one path given (or the second of two) is
        // the directory, relative to the command's working directory.
        Command::ExportCronus {
            store,
            dir,
            name,
            at,
        } => {
            let dir = dir.or(store).context("no DIR given")?;
            let dir = io.path(&dir);
            export(m, io, &dir, (&name, at.as_deref()))
        }
        Command::Fsck { .. } => super::fsck::run(m, io, cache),
        Command::Status => super::store_sessions::status(m, io),
        Command::SessionTtl { seconds } => super::store_sessions::session_ttl(m, io, seconds),
        Command::Diff { args } => super::history::diff(m, io, &args),
        Command::Log { node, at } => super::history::log(m, io, &node, at.as_deref()),
        Command::Snapshot(c) => super::history::snapshot(m, io, c),
        Command::Restore { place, at } => super::history::restore(m, io, &place, &at),
        Command::HistoryRetention { duration } => {
            super::store_sessions::history_retention(m, io, duration)
        }
        Command::Init { .. }
        | Command::Upgrade { .. }
        | Command::Rows(_)
        | Command::ImportCronus { .. }
        | Command::Mount(_)
        | Command::Umount { .. }
        | Command::Stats { .. }
        | Command::Profile { .. }
        | Command::GenMan { .. } => bail!("not a catalogue command"),
    }
}

/// Returns the catalogue as it was at `at` (RFC 3339), if a time is given.
pub(super) fn as_of(m: &Catalog, at: Option<&str>) -> Result<Option<Catalog>> {
    let Some(text) = at else {
        return Ok(None);
    };
    Ok(Some(m.at(super::history::time_arg(text)?)?))
}

/// Which registered message a `menu`/`config` command is about.
#[derive(Clone, Copy)]
pub enum MessageKind {
    /// Artemis menus.
    Menu,
    /// Artemis job configurations.
    Config,
}

/// Runs `menu …` or `config …`.
pub fn message(
    m: &Catalog,
    io: &mut Console<'_>,
    kind: MessageKind,
    cmd: MessageCommand,
) -> Result<()> {
    match (cmd, kind) {
        (MessageCommand::Ls, k) => {
            let tag = match k {
                MessageKind::Menu => "menu",
                MessageKind::Config => "config",
            };
            for uuid in m.registered(tag)? {
                let name = match k {
                    MessageKind::Menu => m.menu(&uuid)?.name,
                    MessageKind::Config => m.config(&uuid)?.name,
                };
                writeln!(io.out, "{uuid}\t{name}")?;
            }
        }
        (MessageCommand::New { name }, k) => {
            let uuid = uuid::Uuid::new_v4().to_string();
            let suffix = if matches!(k, MessageKind::Menu) {
                "menu"
            } else {
                "config"
            };
            let name = name.unwrap_or_else(|| format!("{uuid}.{suffix}.dat"));
            register(m, k, uuid.clone(), name, None)?;
            writeln!(io.out, "{uuid}")?;
        }
        (MessageCommand::Add { file }, k) => add_message(m, io, k, &file)?,
        (MessageCommand::Get { uuid, output }, k) => {
            let bytes = match k {
                MessageKind::Menu => m.menu_bytes(&uuid)?,
                MessageKind::Config => m.config_bytes(&uuid)?,
            };
            match output {
                Some(o) if o.as_os_str() != "-" => {
                    let o = io.path(&o);
                    std::fs::write(&o, &bytes)
                        .with_context(|| format!("cannot write {}", o.display()))?;
                }
                _ => io.out.write_all(&bytes)?,
            }
        }
    }
    Ok(())
}

/// Runs `menu add FILE` or `config add FILE`, refusing the other kind of message when the
/// bytes tell.
fn add_message(m: &Catalog, io: &mut Console<'_>, k: MessageKind, file: &Path) -> Result<()> {
    let file = io.path(file);
    let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
    match (k, message_shape::of(&bytes)) {
        (MessageKind::Config, Some(message_shape::Shape::Menu)) => bail!(
            "{} holds a Menu (it has graphs), not a Configuration: `cronusfs menu add` registers it",
            file.display()
        ),
        (MessageKind::Menu, Some(message_shape::Shape::Config)) => bail!(
            "{} holds a Configuration (tools, algos, sampler or input), not a Menu: `cronusfs config add` registers it",
            file.display()
        ),
        _ => {}
    }
    let uuid = register(m, k, String::new(), String::new(), Some(&bytes))?;
    writeln!(io.out, "{uuid}")?;
    Ok(())
}

/// Registers a new message (`bytes` absent) or the one encoded in `bytes`; returns its uuid.
fn register(
    m: &Catalog,
    kind: MessageKind,
    uuid: String,
    name: String,
    bytes: Option<&[u8]>,
) -> Result<String> {
    let what = || {
        format!(
            "not a serialised {} message",
            if matches!(kind, MessageKind::Menu) {
                "Menu"
            } else {
                "Configuration"
            }
        )
    };
    match kind {
        MessageKind::Menu => {
            let menu = match bytes {
                Some(b) => Menu::decode(b).with_context(what)?,
                None => Menu {
                    uuid,
                    name,
                    graphs: vec![],
                },
            };
            m.register_menu(
                &menu,
                MenuObjectInfo {
                    created: Some(cronusfs::meta::rowjson::timestamp_now()),
                    ..Default::default()
                },
            )?;
            Ok(menu.uuid)
        }
        MessageKind::Config => {
            let config = match bytes {
                Some(b) => Configuration::decode(b).with_context(what)?,
                None => Configuration {
                    uuid,
                    name,
                    ..Default::default()
                },
            };
            m.register_config(
                &config,
                ConfigObjectInfo {
                    created: Some(cronusfs::meta::rowjson::timestamp_now()),
                    ..Default::default()
                },
            )?;
            Ok(config.uuid)
        }
    }
}

/// Runs `dataset …`.
pub fn dataset(m: &Catalog, io: &mut Console<'_>, cmd: DatasetCommand) -> Result<()> {
    match cmd {
        DatasetCommand::Create { menu, config } => {
            writeln!(io.out, "{}", m.register_dataset(&menu, &config)?)?
        }
        DatasetCommand::Ls => {
            for ds in m.datasets()? {
                writeln!(io.out, "{ds}")?;
            }
        }
        DatasetCommand::Show { dataset } => {
            let ds: DatasetId = dataset.parse()?;
            let (menu, config) = m
                .dataset_transform(ds)?
                .unwrap_or_else(|| ("-".into(), "-".into()));
            let jobs: Vec<String> = m.jobs(ds)?.iter().map(|j| j.to_string()).collect();
            writeln!(io.out, "dataset     {ds}")?;
            writeln!(io.out, "menu        {menu}")?;
            writeln!(io.out, "config      {config}")?;
            writeln!(io.out, "partitions  {}", m.partitions(ds)?.join(" "))?;
            writeln!(io.out, "jobs        {}", jobs.join(" "))?;
        }
    }
    Ok(())
}

/// Runs `partition …`.
pub fn partition(m: &Catalog, io: &mut Console<'_>, cmd: PartitionCommand) -> Result<()> {
    match cmd {
        PartitionCommand::Add { dataset, keys } => {
            let ds: DatasetId = dataset.parse()?;
            for key in keys {
                m.add_partition(ds, &key)?;
            }
        }
        PartitionCommand::Ls { dataset } => {
            for key in m.partitions(dataset.parse()?)? {
                writeln!(io.out, "{key}")?;
            }
        }
    }
    Ok(())
}

/// Runs `job …`.
pub fn job(m: &Catalog, io: &mut Console<'_>, cmd: JobCommand) -> Result<()> {
    match cmd {
        JobCommand::New { dataset } => writeln!(io.out, "{}", m.new_job(dataset.parse()?)?)?,
        JobCommand::Ls { dataset } => {
            for job in m.jobs(dataset.parse()?)? {
                writeln!(io.out, "{job}")?;
            }
        }
    }
    Ok(())
}

/// A place in the catalogue as the CLI names it: `DATASET[/KEY[/JOB[/NAME]]]`, the path below
/// `datasets/` in the mount without `partitions/` and `jobs/` (a NAME may hold `/`: a path
/// inside the job directory).
pub(super) struct Place {
    pub(super) dataset: DatasetId,
    pub(super) key: Option<String>,
    pub(super) job: Option<JobId>,
    pub(super) name: Option<String>,
}

impl Place {
    pub(super) fn parse(text: &str) -> Result<Place> {
        let mut parts = text.splitn(4, '/');
        let ds = parts.next().unwrap_or_default();
        let dataset = ds
            .parse()
            .with_context(|| format!("{text:?}: expected DATASET/KEY/JOB/NAME"))?;
        let key = parts.next().filter(|k| !k.is_empty()).map(str::to_string);
        let job = match parts.next().filter(|j| !j.is_empty()) {
            Some(j) => Some(JobId::parse_canonical(j).with_context(|| {
                format!("{text:?}: {j:?} is not a job number (DATASET/KEY/JOB/NAME)")
            })?),
            None => None,
        };
        let name = parts.next().filter(|n| !n.is_empty()).map(str::to_string);
        Ok(Place {
            dataset,
            key,
            job,
            name,
        })
    }

    /// The object path, with `default_name` when the place names none; an error when it names
    /// no job directory.
    pub(super) fn object(&self, text: &str, default_name: Option<&str>) -> Result<ObjectPath> {
        let (Some(key), Some(job)) = (&self.key, self.job) else {
            bail!("{text:?}: expected DATASET/KEY/JOB[/NAME]");
        };
        let Some(name) = self.name.as_deref().or(default_name) else {
            bail!("{text:?}: give the object's name, DATASET/KEY/JOB/NAME");
        };
        Ok(ObjectPath::new(self.dataset, key, job, name))
    }
}

/// Runs `put FILE DATASET/KEY/JOB[/NAME]`.
pub fn put(m: &Catalog, io: &mut Console<'_>, file: &Path, target: &str) -> Result<()> {
    let stdin = file.as_os_str() == "-";
    let file_name = (!stdin)
        .then(|| file.file_name().and_then(|n| n.to_str()))
        .flatten();
    let path = Place::parse(target)?.object(target, file_name)?;
    let (mut input, total): (Box<dyn Read + '_>, Option<u64>) = if stdin {
        (Box::new(&mut *io.input), None)
    } else {
        let f = io.path(file);
        let opened =
            std::fs::File::open(&f).with_context(|| format!("cannot open {}", f.display()))?;
        let len = (opened.metadata().ok())
            .filter(|md| md.is_file())
            .map(|md| md.len());
        (Box::new(opened), len)
    };
    let mut bar = Progress::new(&format!("put {}", path.name), Unit::Bytes, total);
    let meta = m.put_object(&path, &mut input, &mut |done| bar.update(done))?;
    drop((bar, input));
    writeln!(
        io.out,
        "{}\t{}\t{}\t{}\t{}\tversion {}",
        cli_place(&meta.path),
        meta.id,
        meta.cronus_name,
        meta.size,
        meta.file_type.as_str_name(),
        meta.version
    )?;
    Ok(())
}

/// `DATASET/KEY/JOB/NAME` of `path`.
fn cli_place(path: &ObjectPath) -> String {
    format!(
        "{}/{}/{}/{}",
        path.dataset, path.partition, path.job, path.name
    )
}

/// Runs `get OBJECT`: an object by `DATASET/KEY/JOB/NAME` or by uuid.
pub fn get(m: &Catalog, io: &mut Console<'_>, object: &str, output: Option<&Path>) -> Result<()> {
    let meta = match object.parse::<ObjectId>() {
        Ok(id) => m.object_by_id(id)?,
        Err(_) => m.object(&Place::parse(object)?.object(object, None)?)?,
    };
    let bar = Progress::new(
        &format!("get {}", meta.path.name),
        Unit::Bytes,
        Some(meta.size),
    );
    let mut reader = ProgressRead::new(m.open(&meta)?, bar);
    match output {
        Some(o) if o.as_os_str() != "-" => {
            let o = io.path(o);
            let mut file = std::fs::File::create(&o)
                .with_context(|| format!("cannot create {}", o.display()))?;
            std::io::copy(&mut reader, &mut file)?;
            file.sync_all()?;
        }
        _ => {
            std::io::copy(&mut reader, &mut io.out)?;
            io.out.flush()?;
        }
    }
    Ok(())
}

/// Runs `ls DATASET[/KEY[/JOB]]`: every object below, its path from there.
pub fn ls(m: &Catalog, io: &mut Console<'_>, place: &str) -> Result<()> {
    let at = Place::parse(place)?;
    if at.name.is_some() {
        bail!("{place:?}: ls lists DATASET, DATASET/KEY or DATASET/KEY/JOB");
    }
    if !m.has_dataset(at.dataset)? {
        bail!("no dataset {}", at.dataset);
    }
    if let Some(key) = &at.key
        && !m.has_partition(at.dataset, key)?
    {
        bail!("dataset {} has no partition {key:?}", at.dataset);
    }
    if let Some(job) = at.job
        && !m.has_job(at.dataset, job)?
    {
        bail!("dataset {} has no job {job}", at.dataset);
    }
    // Every object below the place, in folders too (one lift of the dataset's).
    let mut objects = m.list(at.dataset, "", "")?;
    objects.retain(|o| {
        at.key.as_ref().is_none_or(|k| *k == o.path.partition)
            && at.job.is_none_or(|j| j == o.path.job)
    });
    let place = RestorePlace {
        dataset: at.dataset,
        partition: at.key.clone(),
        job: at.job,
    };
    // Each line's fields after its path: objects', then links' (the target last, for the
    // content id).
    let mut lines: Vec<(ObjectPath, String)> = (objects.into_iter())
        .map(|o| {
            let fields = format!(
                "{}\t{}\t{}\t{}\t{}\t{}",
                o.size,
                o.file_type.as_str_name(),
                o.version,
                o.id,
                o.cronus_name,
                o.content
            );
            (o.path, fields)
        })
        .collect();
    for (path, target) in m.links(&place)? {
        let fields = format!("{}\tSYMLINK\t-\t-\t-\t-> {}", target.len(), field(&target));
        lines.push((path, fields));
    }
    lines.sort_by(|(a, _), (b, _)| {
        (&a.partition, a.job, &a.name).cmp(&(&b.partition, b.job, &b.name))
    });
    for (path, fields) in lines {
        let shown = match (&at.key, at.job) {
            (Some(_), Some(_)) => path.name.clone(),
            (Some(_), None) => format!("{}/{}", path.job, path.name),
            _ => format!("{}/{}/{}", path.partition, path.job, path.name),
        };
        writeln!(io.out, "{}\t{fields}", field(&shown))?;
    }
    Ok(())
}

/// Runs `find`: the path of every node matching all `terms`, sorted.
pub fn find(m: &Catalog, io: &mut Console<'_>, terms: &[String]) -> Result<()> {
    let terms = (terms.iter())
        .map(|t| t.parse::<Term>())
        .collect::<Result<Vec<_>, _>>()?;
    let fold = DirNodeFold {
        take: &|seen: &mut MatchRows, p, v, _| seen.take(p, v),
        finish: &|seen: MatchRows| Ok(seen.finish()),
    };
    let mut partitions = HashMap::new();
    let mut paths = Vec::new();
    for found in m.map_nodes(m.find(&terms)?, &fold)? {
        for key in m.partitions_of_match(&found, &mut partitions)? {
            paths.push(found.path(key.as_deref()));
        }
    }
    paths.sort();
    for path in paths {
        // One line each, whatever the names hold.
        writeln!(io.out, "{}", field(&path))?;
    }
    Ok(())
}

/// Runs `import-cronus`.
pub fn import(m: &Catalog, io: &mut Console<'_>, dir: &Path) -> Result<()> {
    let r = cronusfs::meta::cronus_io::import_cronus(m, dir)
        .with_context(|| format!("cannot import the Cronus store in {}", dir.display()))?;
    writeln!(
        io.out,
        "imported {}: {} menus/configurations, {} datasets, {} objects, {} job entries, {} rows",
        r.store_file.display(),
        r.messages,
        r.datasets,
        r.objects,
        r.entries,
        r.rows
    )?;
    for s in &r.skipped {
        eprintln!("cronusfs: skipped {s}");
    }
    for id in &r.changed {
        eprintln!(
            "cronusfs: object {id}: its file holds other bytes than the content id recorded \
             in the rows file; imported as the file holds them"
        );
    }
    Ok(())
}

/// Runs `export-cronus`.
pub fn export(
    m: &Catalog,
    io: &mut Console<'_>,
    dir: &Path,
    (name, at): (&str, Option<&str>),
) -> Result<()> {
    use cronusfs::meta::cronus_io::{export_cronus, export_cronus_at};
    let r = match at {
        None => export_cronus(m, dir, name),
        Some(text) => {
            let at = super::history::time_arg(text)?;
            export_cronus_at(&m.at(at)?, dir, name, at)
        }
    };
    let r = r.with_context(|| format!("cannot export into {}", dir.display()))?;
    writeln!(
        io.out,
        "wrote {}: {} menus/configurations, {} datasets, {} objects, {} job entries",
        r.store_file.display(),
        r.messages,
        r.datasets,
        r.objects,
        r.entries
    )?;
    Ok(())
}

/// Runs `gc`.
pub fn gc(m: &Catalog, io: &mut Console<'_>) -> Result<()> {
    let mut bar = Progress::new("gc", Unit::Items, None);
    let r = m.gc_with_progress(&mut |done, total| {
        bar.set_total(total);
        bar.update(done);
    })?;
    drop(bar);
    write!(
        io.out,
        "freed {} contents, {} chunks, {} bytes",
        r.contents, r.chunks, r.bytes
    )?;
    if r.held > 0 {
        write!(io.out, "; kept {} contents open files read", r.held)?;
    }
    if r.history > 0 {
        write!(io.out, "; kept {} contents for history", r.history)?;
    }
    if r.snapshots > 0 {
        write!(io.out, "; kept {} contents for snapshots", r.snapshots)?;
    }
    if r.pruned > 0 {
        write!(io.out, "; pruned {} old row versions", r.pruned)?;
    }
    writeln!(io.out)?;
    Ok(())
}
