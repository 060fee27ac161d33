//! `cronusfs menu|config|dataset|partition|job|put|get|ls|find|gc|fsck`: the Cronus catalogue from
//! the command line.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, bail};
use cronusfs::meta::{ContentId, DatasetId, DirNodeFold, JobId, MatchRows, ObjectPath, Term, prop};
use cronusfs::pb::cronus::{Configuration, Menu};
use cronusfs::pb::store::{ConfigObjectInfo, MenuObjectInfo};
use cronusfs::storage::{Iden, Storage};
use prost::Message;

use super::Console;
use super::progress::{Progress, ProgressRead, Unit};
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
        Command::Put {
            dataset,
            key,
            job,
            name,
            file,
        } => put(m, io, &dataset, &key, job, &name, file.as_deref()),
        Command::Get {
            dataset,
            key,
            job,
            name,
            output,
        } => get(m, io, &dataset, &key, job, &name, output.as_deref()),
        Command::Ls { dataset, key, job } => ls(m, io, &dataset, &key, job),
        Command::Find { terms } => find(m, io, &terms),
        Command::Gc => gc(m, io),
        Command::Fsck => fsck(m, io, cache),
        Command::Status => sessions(m, io),
        Command::Init { .. }
        | Command::Rows(_)
        | Command::ImportCronus { .. }
        | Command::ExportCronus { .. }
        | Command::Mount(_)
        | Command::Umount { .. }
        | Command::GenMan { .. } => bail!("not a catalogue command"),
    }
}

/// Runs `status --store STORE`: every session of the store, one line each.
fn sessions(m: &Catalog, io: &mut Console<'_>) -> Result<()> {
    let sessions = m.sessions()?;
    if sessions.is_empty() {
        writeln!(io.out, "no sessions: the store is not mounted anywhere")?;
    }
    let now = cronusfs::storage::now_millis();
    for s in sessions {
        writeln!(
            io.out,
            "{}\tpid {}\t{}\tup {:.0} s\tbeat {:.1} s ago",
            s.host,
            s.pid,
            s.mountpoint,
            (now - s.started) as f64 / 1000.0,
            (now - s.heartbeat) as f64 / 1000.0
        )?;
    }
    Ok(())
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
        (MessageCommand::Add { file }, k) => {
            let file = io.path(&file);
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let uuid = register(m, k, String::new(), String::new(), Some(&bytes))?;
            writeln!(io.out, "{uuid}")?;
        }
    }
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

fn object_path(dataset: &str, key: &str, job: u32, name: &str) -> Result<ObjectPath> {
    Ok(ObjectPath::new(dataset.parse()?, key, JobId(job), name))
}

/// Runs `put`.
pub fn put(
    m: &Catalog,
    io: &mut Console<'_>,
    dataset: &str,
    key: &str,
    job: u32,
    name: &str,
    file: Option<&Path>,
) -> Result<()> {
    let path = object_path(dataset, key, job, name)?;
    let (mut input, total): (Box<dyn Read + '_>, Option<u64>) = match file {
        Some(f) if f.as_os_str() != "-" => {
            let f = io.path(f);
            let file =
                std::fs::File::open(&f).with_context(|| format!("cannot open {}", f.display()))?;
            let len = file
                .metadata()
                .ok()
                .filter(|md| md.is_file())
                .map(|md| md.len());
            (Box::new(file), len)
        }
        _ => (Box::new(&mut *io.input), None),
    };
    let mut bar = Progress::new(&format!("put {name}"), Unit::Bytes, total);
    let meta = m.put_object(&path, &mut input, &mut |done| bar.update(done))?;
    drop((bar, input));
    writeln!(
        io.out,
        "{}\t{}\t{}\tversion {}",
        meta.content,
        meta.size,
        meta.file_type.as_str_name(),
        meta.version
    )?;
    Ok(())
}

/// Runs `get`.
pub fn get(
    m: &Catalog,
    io: &mut Console<'_>,
    dataset: &str,
    key: &str,
    job: u32,
    name: &str,
    output: Option<&Path>,
) -> Result<()> {
    let meta = m.object(&object_path(dataset, key, job, name)?)?;
    let bar = Progress::new(&format!("get {name}"), Unit::Bytes, Some(meta.size));
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

/// Runs `ls`.
pub fn ls(m: &Catalog, io: &mut Console<'_>, dataset: &str, key: &str, job: u32) -> Result<()> {
    let objects = m.objects(dataset.parse()?, key, JobId(job))?;
    for o in objects {
        writeln!(
            io.out,
            "{}\t{}\t{}\t{}\t{}",
            o.path.name,
            o.size,
            o.file_type.as_str_name(),
            o.version,
            o.content
        )?;
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
        writeln!(io.out, "{path}")?;
    }
    Ok(())
}

/// Runs `import-cronus`.
pub fn import(m: &Catalog, io: &mut Console<'_>, dir: &Path) -> Result<()> {
    let r = cronusfs::meta::cronus_io::import_cronus(m, dir)
        .with_context(|| format!("cannot import the Cronus store in {}", dir.display()))?;
    writeln!(
        io.out,
        "imported {}: {} menus/configurations, {} datasets, {} objects, {} rows",
        r.store_file.display(),
        r.messages,
        r.datasets,
        r.objects,
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
pub fn export(m: &Catalog, io: &mut Console<'_>, dir: &Path, name: &str) -> Result<()> {
    let r = cronusfs::meta::cronus_io::export_cronus(m, dir, name)
        .with_context(|| format!("cannot export into {}", dir.display()))?;
    writeln!(
        io.out,
        "wrote {}: {} menus/configurations, {} datasets, {} objects",
        r.store_file.display(),
        r.messages,
        r.datasets,
        r.objects
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
    writeln!(
        io.out,
        "freed {} contents, {} chunks, {} bytes",
        r.contents, r.chunks, r.bytes
    )?;
    Ok(())
}

/// Runs `fsck`: every content's chunks and hashes, every object's content, the row indexes.
/// An engine error (a damaged file) is one more problem, not the end of the check; each
/// problem names the object, menu, configuration, dataset, content or row it affects.
pub fn fsck(m: &Catalog, io: &mut Console<'_>, cache: Option<&Path>) -> Result<()> {
    let mut problems = match m.storage().check_indexes() {
        Ok(found) => found,
        Err(e) => vec![format!("row indexes: {e}")],
    };
    let content = m.content();
    let ids = content.ids().unwrap_or_else(|e| {
        problems.push(format!("the list of contents: {e}"));
        Vec::new()
    });
    let mut damaged = HashSet::new();
    for id in &ids {
        let found = content.verify(*id)?;
        if !found.is_empty() {
            damaged.insert(*id);
        }
        problems.extend(found);
    }
    check_messages(m, &damaged, &mut problems);
    let stored: HashSet<ContentId> = ids.iter().copied().collect();
    let objects = check_objects(m, (&stored, &damaged), &mut problems);
    // The cache is not the store: what is wrong there is removed and said, not a problem.
    let cached = match cache.map(|dir| (dir, cronusfs::fs::check_cache(dir, &content))) {
        Some((_, Ok(check))) => {
            for removed in &check.removed {
                writeln!(io.out, "{removed}")?;
            }
            format!(", {} cache entries sound", check.sound)
        }
        Some((dir, Err(e))) => {
            problems.push(format!("content cache {}: {e}", dir.display()));
            String::new()
        }
        None => String::new(),
    };
    for p in &problems {
        writeln!(io.out, "{p}")?;
    }
    if !problems.is_empty() {
        bail!("{} problems found", problems.len());
    }
    writeln!(
        io.out,
        "clean: {} contents, {objects} objects, row indexes agree{cached}",
        ids.len()
    )?;
    Ok(())
}

/// Names every menu and configuration whose content is damaged.
fn check_messages(m: &Catalog, damaged: &HashSet<ContentId>, problems: &mut Vec<String>) {
    for kind in ["menu", "config"] {
        for uuid in m.registered(kind).unwrap_or_default() {
            let Ok(iden) = Iden::new(uuid.as_str()) else {
                continue;
            };
            let rows = m.node_rows(&iden).unwrap_or_default();
            let content: Option<ContentId> = rows
                .iter()
                .find(|r| r.prop == prop::CONTENT)
                .and_then(|r| r.valu.to_string().parse().ok());
            if let Some(id) = content.filter(|id| damaged.contains(id)) {
                problems.push(format!("{kind} {uuid}: its content {id} is damaged"));
            }
        }
    }
}

/// Names every object whose content is damaged or missing (not among the `stored` ones);
/// returns how many objects there are.
fn check_objects(
    m: &Catalog,
    (stored, damaged): (&HashSet<ContentId>, &HashSet<ContentId>),
    problems: &mut Vec<String>,
) -> usize {
    let datasets = m.datasets().unwrap_or_else(|e| {
        problems.push(format!("the list of datasets: {e}"));
        Vec::new()
    });
    let mut objects = 0;
    for ds in datasets {
        let listed = match m.list(ds, "", "") {
            Ok(listed) => listed,
            Err(e) => {
                problems.push(format!("dataset {ds}: its objects: {e}"));
                continue;
            }
        };
        for o in listed {
            objects += 1;
            if damaged.contains(&o.content) {
                problems.push(format!(
                    "object {} ({}): its content {} is damaged",
                    o.path, o.id, o.content
                ));
            } else if !stored.contains(&o.content) {
                problems.push(format!(
                    "object {} ({}) refers to missing content {}",
                    o.path, o.id, o.content
                ));
            }
        }
    }
    objects
}
