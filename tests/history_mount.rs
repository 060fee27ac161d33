//! History through a real mount against a model (issue 23): random creates, writes, appends,
//! truncates, renames, unlinks, mkdir/rmdir, setfattr/removexattr, chmod and utimes in a job
//! directory, new jobs, menus and configurations, with the time after each recorded; then, at
//! every recorded time T, the tree under `MNT/at/<T>/` (names, bytes, modes, `user.`
//! attributes, the modification times the live tree showed then, menus, configurations and
//! jobs) is the model's state at T. On RocksDB and on PostgreSQL + S3.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cronusfs::storage::history::show_micros;

use crate::mount::Mounted;

/// A file as the model has it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct File {
    bytes: Vec<u8>,
    mode: u32,
    xattrs: BTreeMap<String, String>,
}

/// The job directory's tree: each file by its path in the job directory, and the folders.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Tree {
    files: BTreeMap<String, File>,
    folders: Vec<String>,
}

/// A small deterministic generator (xorshift), so that a failure repeats.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

fn set_xattr(p: &Path, name: &str, value: &str) {
    let name = CString::new(name).unwrap();
    // SAFETY: valid NUL-terminated strings and a buffer of the given length.
    let r = unsafe {
        libc::setxattr(
            cpath(p).as_ptr(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(r, 0, "setxattr {}", p.display());
}

fn remove_xattr(p: &Path, name: &str) {
    let name = CString::new(name).unwrap();
    // SAFETY: valid NUL-terminated strings.
    let r = unsafe { libc::removexattr(cpath(p).as_ptr(), name.as_ptr()) };
    assert_eq!(r, 0, "removexattr {}", p.display());
}

/// The `user.` attributes of `p` other than the catalogue's (`user.cronus.*`).
fn user_xattrs(p: &Path) -> BTreeMap<String, String> {
    let mut names = vec![0u8; 65536];
    // SAFETY: the buffer is as long as said.
    let n = unsafe { libc::listxattr(cpath(p).as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    assert!(n >= 0, "listxattr {}", p.display());
    let mut out = BTreeMap::new();
    for name in names[..n as usize]
        .split(|b| *b == 0)
        .filter(|n| !n.is_empty())
    {
        let name = String::from_utf8(name.to_vec()).unwrap();
        if !name.starts_with("user.") || name.starts_with("user.cronus.") {
            continue;
        }
        let mut value = vec![0u8; 65536];
        let cname = CString::new(name.as_str()).unwrap();
        // SAFETY: as above.
        let len = unsafe {
            libc::getxattr(
                cpath(p).as_ptr(),
                cname.as_ptr(),
                value.as_mut_ptr().cast(),
                value.len(),
            )
        };
        assert!(len >= 0, "getxattr {name} of {}", p.display());
        value.truncate(len as usize);
        out.insert(name, String::from_utf8(value).unwrap());
    }
    out
}

/// Reads the tree under job directory `dir` as the mount shows it, with each file's mtime.
fn read_tree(dir: &Path) -> (Tree, BTreeMap<String, SystemTime>) {
    let mut tree = Tree::default();
    let mut mtimes = BTreeMap::new();
    let mut todo = vec![(dir.to_path_buf(), String::new())];
    while let Some((at, prefix)) = todo.pop() {
        for entry in std::fs::read_dir(&at).unwrap() {
            let entry = entry.unwrap();
            let name = format!("{prefix}{}", entry.file_name().to_str().unwrap());
            let meta = std::fs::symlink_metadata(entry.path()).unwrap();
            if meta.is_dir() {
                tree.folders.push(name.clone());
                todo.push((entry.path(), format!("{name}/")));
                continue;
            }
            let file = File {
                bytes: std::fs::read(entry.path()).unwrap(),
                mode: meta.permissions().mode() & 0o7777,
                xattrs: user_xattrs(&entry.path()),
            };
            mtimes.insert(name.clone(), meta.modified().unwrap());
            tree.files.insert(name, file);
        }
    }
    tree.folders.sort();
    (tree, mtimes)
}

/// One random change to the job directory `job` and to the model `tree`.
fn change(rng: &mut Rng, job: &Path, tree: &mut Tree, step: usize) {
    let dirs: Vec<String> = std::iter::once(String::new())
        .chain(tree.folders.iter().map(|f| format!("{f}/")))
        .collect();
    let names: Vec<String> = tree.files.keys().cloned().collect();
    let pick = |rng: &mut Rng, v: &[String]| v[rng.below(v.len() as u64) as usize].clone();
    let new_name = |rng: &mut Rng| format!("{}f{}", pick(rng, &dirs), rng.below(5));
    let existing = (!names.is_empty()).then(|| pick(rng, &names));
    match (rng.below(10), existing) {
        (0 | 1, _) | (_, None) => {
            let name = new_name(rng);
            let bytes = crate::content::bytes(rng.below(3000) as usize, step as u8);
            std::fs::write(job.join(&name), &bytes).unwrap();
            let file = tree.files.entry(name).or_insert(File {
                bytes: Vec::new(),
                mode: 0o644,
                xattrs: BTreeMap::new(),
            });
            file.bytes = bytes;
        }
        (2, Some(name)) => {
            use std::io::Write;
            let more = crate::content::bytes(rng.below(500) as usize + 1, step as u8);
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(job.join(&name))
                .unwrap();
            f.write_all(&more).unwrap();
            tree.files.get_mut(&name).unwrap().bytes.extend(more);
        }
        (3, Some(name)) => {
            let file = tree.files.get_mut(&name).unwrap();
            let len = rng.below(file.bytes.len() as u64 + 1) as usize;
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(job.join(&name))
                .unwrap();
            f.set_len(len as u64).unwrap();
            file.bytes.truncate(len);
        }
        (4, Some(name)) => {
            let to = new_name(rng);
            if to != name && !tree.folders.contains(&to) {
                std::fs::rename(job.join(&name), job.join(&to)).unwrap();
                let file = tree.files.remove(&name).unwrap();
                tree.files.insert(to, file);
            }
        }
        (5, Some(name)) => {
            std::fs::remove_file(job.join(&name)).unwrap();
            tree.files.remove(&name);
        }
        (6, Some(name)) => {
            let value = format!("v{step}");
            set_xattr(&job.join(&name), "user.k", &value);
            tree.files
                .get_mut(&name)
                .unwrap()
                .xattrs
                .insert("user.k".into(), value);
        }
        (7, Some(name)) => {
            let file = tree.files.get_mut(&name).unwrap();
            if file.xattrs.remove("user.k").is_some() {
                remove_xattr(&job.join(&name), "user.k");
            }
        }
        (8, Some(name)) => {
            let mode = [0o600, 0o640, 0o644, 0o444][rng.below(4) as usize];
            let perms = std::fs::Permissions::from_mode(mode);
            std::fs::set_permissions(job.join(&name), perms).unwrap();
            tree.files.get_mut(&name).unwrap().mode = mode;
        }
        (_, Some(name)) => {
            if tree.folders.is_empty() {
                std::fs::create_dir(job.join("sub")).unwrap();
                tree.folders.push("sub".into());
            } else if !tree.files.keys().any(|f| f.starts_with("sub/")) {
                std::fs::remove_dir(job.join("sub")).unwrap();
                tree.folders.clear();
            } else {
                let when = UNIX_EPOCH + Duration::from_secs(1_700_000_000 + step as u64);
                let f = std::fs::File::options()
                    .write(true)
                    .open(job.join(&name))
                    .unwrap();
                f.set_modified(when).unwrap();
            }
        }
    }
}

/// Runs `steps` random changes through mount `m`, then checks the tree at every recorded time.
fn the_past_matches_the_model(m: &Mounted, seed: u64, steps: usize) {
    let job = m.job_dir();
    let rel = job.strip_prefix(&m.mnt).unwrap().to_path_buf();
    let jobs = rel.parent().unwrap().to_path_buf();
    let mut rng = Rng(seed);
    let (mut model, mut catalog) = (Tree::default(), Catalog::default());
    catalog.jobs.insert("0".into());
    let mut recorded = Vec::new();
    for step in 0..steps {
        match rng.below(16) {
            0 => catalog.add_message(m, "menu"),
            1 => catalog.add_message(m, "config"),
            2 => {
                let next = catalog.jobs.len().to_string();
                std::fs::create_dir(m.mnt.join(&jobs).join(&next)).unwrap();
                catalog.jobs.insert(next);
            }
            _ => change(&mut rng, &job, &mut model, step),
        }
        let (live, mtimes) = read_tree(&job);
        assert_eq!(live, model, "the live tree after step {step}");
        assert_eq!(Catalog::read(&m.mnt, &jobs), catalog, "after step {step}");
        std::thread::sleep(Duration::from_millis(2));
        recorded.push((now_micros(), model.clone(), mtimes, catalog.clone()));
        std::thread::sleep(Duration::from_millis(2));
    }
    let done = &recorded.last().unwrap().3;
    assert!(
        !done.menus.is_empty() && !done.configs.is_empty() && done.jobs.len() > 1,
        "the steps made menus, configurations and jobs: {done:?}"
    );
    for (step, (t, tree, mtimes, catalog)) in recorded.iter().enumerate() {
        let root = m.mnt.join("at").join(show_micros(*t));
        let (past, past_mtimes) = read_tree(&root.join(&rel));
        let at = show_micros(*t);
        assert_eq!(&past, tree, "at {at} (after step {step})");
        assert_eq!(&past_mtimes, mtimes, "mtimes at {at} (after step {step})");
        assert_eq!(
            &Catalog::read(&root, &jobs),
            catalog,
            "at {at} (after step {step})"
        );
    }
}

/// The model's menus and configurations (uuid → bytes) and the dataset's jobs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Catalog {
    menus: BTreeMap<String, Vec<u8>>,
    configs: BTreeMap<String, Vec<u8>>,
    jobs: std::collections::BTreeSet<String>,
}

impl Catalog {
    /// Registers a new `kind` (`menu` or `config`) through the command line.
    fn add_message(&mut self, m: &Mounted, kind: &str) {
        let out = m.on_store(&[kind, "new"]);
        crate::mount::assert_success(&out);
        let uuid = String::from_utf8(out.stdout).unwrap().trim().to_string();
        let dir = if kind == "menu" { "menus" } else { "configs" };
        // Bytes as the store serialises them: read back once, then expected at every time.
        std::thread::sleep(Duration::from_millis(1100)); // the kernel's cache of `menus/`
        let bytes = std::fs::read(m.mnt.join(dir).join(&uuid)).unwrap();
        let map = if kind == "menu" {
            &mut self.menus
        } else {
            &mut self.configs
        };
        map.insert(uuid, bytes);
    }

    /// Reads the menus, configurations and the jobs under `jobs` (relative) of tree `root`.
    fn read(root: &Path, jobs: &Path) -> Catalog {
        let messages = |dir: &str| -> BTreeMap<String, Vec<u8>> {
            (std::fs::read_dir(root.join(dir)).unwrap())
                .map(|e| e.unwrap())
                .map(|e| {
                    (
                        e.file_name().into_string().unwrap(),
                        std::fs::read(e.path()).unwrap(),
                    )
                })
                .collect()
        };
        let jobs = (std::fs::read_dir(root.join(jobs)).unwrap())
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        Catalog {
            menus: messages("menus"),
            configs: messages("configs"),
            jobs,
        }
    }
}

fn now_micros() -> i64 {
    cronusfs::storage::history::now_micros()
}

#[test]
fn the_tree_at_every_time_is_the_model_s_on_rocksdb() {
    let m = Mounted::new();
    the_past_matches_the_model(&m, 0x9e37_79b9_7f4a_7c15, 60);
    m.assert_fsck_clean();
}

#[test]
fn the_tree_at_every_time_is_the_model_s_on_postgres_and_s3() {
    let m = Mounted::shared();
    the_past_matches_the_model(&m, 0xdead_beef_cafe_f00d, 40);
}

/// Reads every job directory of every dataset under `root` (a tree's root), by place.
fn read_datasets(root: &Path) -> BTreeMap<String, Tree> {
    let mut out = BTreeMap::new();
    for ds in std::fs::read_dir(root.join("datasets")).unwrap() {
        let ds = ds.unwrap().path();
        let jobs = ds.join("partitions/k/jobs");
        let Ok(jobs) = std::fs::read_dir(&jobs) else {
            continue;
        };
        for job in jobs {
            let job = job.unwrap().path();
            let place = job.strip_prefix(root).unwrap().display().to_string();
            out.insert(place, read_tree(&job).0);
        }
    }
    out
}

#[test]
fn four_daemons_write_while_a_fifth_reads_a_time_just_past_and_its_answer_never_changes() {
    let reader = Mounted::shared();
    let writers: Vec<Mounted> = (0..4).map(|_| reader.another_daemon()).collect();
    let jobs: Vec<PathBuf> = writers.iter().map(Mounted::job_dir).collect();
    let stop = reader.tmp.path().join("stop");
    let seen = std::thread::scope(|s| {
        for (w, job) in writers.iter().zip(&jobs) {
            let stop = &stop;
            s.spawn(move || {
                w.ok(&format!(
                    "for i in $(seq 1 2000); do [ -e {1} ] && break; echo $i > {0}/f$((i % 7)); \
                     setfattr -n user.n -v $i {0}/f$((i % 7)); done",
                    job.display(),
                    stop.display()
                ))
            });
        }
        let mut seen: Vec<(i64, BTreeMap<String, Tree>)> = Vec::new();
        let grew = |seen: &[(i64, BTreeMap<String, Tree>)]| {
            seen.windows(2).filter(|w| w[0].1 != w[1].1).count()
        };
        while seen.len() < 8 || grew(&seen) < 3 {
            assert!(seen.len() < 400, "the writers' changes never showed");
            // A time just past, read once; then an earlier one again, spelled anew (so that
            // nothing the kernel kept answers for it).
            let t = now_micros() - 1000;
            let root = reader.mnt.join("at").join(show_micros(t));
            seen.push((t, read_datasets(&root)));
            let (t0, first) = &seen[seen.len() / 2];
            let again = show_micros(*t0).replace('Z', "+00:00");
            let root = reader.mnt.join("at").join(&again);
            assert_eq!(&read_datasets(&root), first, "at {again}, read again");
        }
        std::fs::write(&stop, b"").unwrap();
        seen
    });
    assert!(seen.len() >= 5, "the reader read while the daemons wrote");
    let grew = seen.windows(2).filter(|w| w[0].1 != w[1].1).count();
    assert!(grew > 0, "the reader saw writes land between its reads");
    for (t, first) in &seen {
        let again = show_micros(*t).replace('Z', "-00:00");
        let root = reader.mnt.join("at").join(&again);
        assert_eq!(&read_datasets(&root), first, "at {again}, at the end");
    }
}
