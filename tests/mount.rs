//! Real mounts: the daemon started by `cronusfs mount`, driven by ordinary tools (mkdir, cp,
//! ls, cat, find, getfattr/setfattr, rsync, tar, redirects, dd), by pyarrow and polars, and
//! by raw system calls for the errno of every refused operation. Every mount is unmounted by
//! a guard even when a test fails, and every command runs under `timeout`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::arrow_meta::arrow_file;

const BIN: &str = env!("CARGO_BIN_EXE_cronusfs");

/// Asserts that a finished command exited 0, showing what it wrote on stderr otherwise.
pub fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A store mounted by the daemon; unmounted (lazily if need be) when dropped.
pub struct Mounted {
    pub store: PathBuf,
    pub mnt: PathBuf,
    pub log: PathBuf,
    pub tmp: tempfile::TempDir,
    extra: Vec<String>,
    /// Where the daemon keeps its files of a shared store (`XDG_CACHE_HOME` of every command).
    cache: Option<PathBuf>,
    /// More environment for every command.
    env: Vec<(String, String)>,
}

impl Mounted {
    pub fn new() -> Self {
        Self::with_options(&[])
    }

    /// Mounts a new store with extra `cronusfs mount` options.
    pub fn with_options(extra: &[&str]) -> Self {
        Self::with_store_in(None, extra)
    }

    /// Mounts a new store with more environment for every command (the daemon's included).
    pub fn with_env(env: &[(&str, &str)]) -> Self {
        Self::made(None, &[], env)
    }

    /// Mounts a new store with extra `cronusfs mount` options and more environment.
    pub fn with_options_and_env(extra: &[&str], env: &[(&str, &str)]) -> Self {
        Self::made(None, extra, env)
    }

    /// Mounts a new store made in directory `dir` (default: the test's scratch directory).
    pub fn with_store_in(dir: Option<&Path>, extra: &[&str]) -> Self {
        Self::made(dir, extra, &[])
    }

    fn made(dir: Option<&Path>, extra: &[&str], env: &[(&str, &str)]) -> Self {
        Self::made_filled(dir, extra, env, &|_| {})
    }

    /// Mounts a new store that `fill` was given before the mount (the store's directory,
    /// made by `cronusfs init`), with extra `cronusfs mount` options.
    pub fn filled(extra: &[&str], fill: &dyn Fn(&Path)) -> Self {
        Self::made_filled(None, extra, &[], fill)
    }

    fn made_filled(
        dir: Option<&Path>,
        extra: &[&str],
        env: &[(&str, &str)],
        fill: &dyn Fn(&Path),
    ) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let store = dir.unwrap_or(tmp.path()).join("store");
        let mnt = tmp.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        let out = Command::new(BIN).arg("init").arg(&store).output().unwrap();
        assert!(out.status.success());
        fill(&store);
        let m = Mounted {
            log: tmp.path().join("daemon.log"),
            store,
            mnt,
            tmp,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            cache: None,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        m.mount();
        m
    }

    /// Mounts a new shared store: rows on the test PostgreSQL server, content in the test S3
    /// bucket, made with `cronusfs init URL --content s3://…`.
    pub fn shared() -> Self {
        Self::shared_with(&[])
    }

    /// [`Mounted::shared`] with more environment for every command (the daemon's included).
    pub fn shared_with(env: &[(&str, &str)]) -> Self {
        Self::shared_at(crate::services::pg_store_url(), env)
    }

    /// [`Mounted::shared_with`] for a store at `url` (a new schema of some test server).
    pub fn shared_at(url: String, env: &[(&str, &str)]) -> Self {
        Self::shared_on(url, crate::services::s3_content_url(), env)
    }

    /// [`Mounted::shared`] with extra `cronusfs mount` options (for its other daemons too).
    pub fn shared_with_options(extra: &[&str]) -> Self {
        let url = crate::services::pg_store_url();
        Self::shared_made(url, crate::services::s3_content_url(), extra, &[])
    }

    /// [`Mounted::shared_at`] with the content at `content` (an `s3://` URL).
    pub fn shared_on(url: String, content: String, env: &[(&str, &str)]) -> Self {
        Self::shared_made(url, content, &[], env)
    }

    fn shared_made(url: String, content: String, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        crate::services::use_s3_env();
        let cache = tmp.path().join("cache");
        let out = Command::new(BIN)
            .args(["init", &url, "--content", &content])
            .env("XDG_CACHE_HOME", &cache)
            .output()
            .unwrap();
        assert_success(&out);
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(said.contains("(content in s3://"), "{said}");
        let mnt = tmp.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        let m = Mounted {
            log: tmp.path().join("daemon.log"),
            store: PathBuf::from(url),
            mnt,
            tmp,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            cache: Some(cache),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        m.mount();
        m
    }

    /// Two daemons (hosts) of a new shared store whose own caches and whose kernels keep
    /// what they read for a minute: only announcements show one the other's changes.
    pub fn shared_pair_kept_a_minute() -> (Self, Self) {
        let minute = [
            ("CRONUSFS_CACHE_TTL_MS", "60000"),
            ("CRONUSFS_ATTR_TTL_MS", "60000"),
        ];
        let a = Self::shared_with(&minute);
        let b = a.another_daemon();
        (a, b)
    }

    /// Mounts this mount's shared store a second time, at a new mount point, by a second
    /// daemon (another host, as far as the store can tell).
    pub fn another_daemon(&self) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let mnt = tmp.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        let m = Mounted {
            log: tmp.path().join("daemon.log"),
            store: self.store.clone(),
            mnt,
            tmp,
            extra: self.extra.clone(),
            cache: self.cache.clone(),
            env: self.env.clone(),
        };
        m.mount();
        m
    }

    /// Returns a `cronusfs` command with this mount's environment.
    pub fn cronusfs(&self) -> Command {
        let mut c = Command::new("timeout");
        c.args(["120", BIN]);
        if let Some(cache) = &self.cache {
            c.env("XDG_CACHE_HOME", cache);
        }
        c.envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }

    /// Runs `cronusfs -s STORE ARGS…` with this mount's environment.
    pub fn on_store(&self, args: &[&str]) -> Output {
        self.cronusfs()
            .arg("-s")
            .arg(&self.store)
            .args(args)
            .output()
            .unwrap()
    }

    /// Returns the pid of the daemon serving this mount, from its record.
    pub fn daemon_pid(&self) -> i32 {
        let record = std::fs::read_to_string(self.record()).unwrap();
        record.lines().next().unwrap().parse().unwrap()
    }

    /// Returns the daemon's record (its pid, then the mount point).
    pub fn record(&self) -> PathBuf {
        use cronusfs::storage::location::Location;
        match (Location::parse(&self.store).unwrap(), &self.cache) {
            (Location::Dir(dir), _) => dir.join("cronusfs.mount"),
            (shared, Some(cache)) => shared
                .daemon_dir(&cache.join("cronusfs"), &self.mnt)
                .join("cronusfs.mount"),
            (_, None) => unreachable!("a shared store's mount has its cache directory"),
        }
    }

    pub fn mount(&self) {
        let out = self
            .cronusfs()
            .arg("mount")
            .arg(&self.store)
            .arg(&self.mnt)
            .arg("--log-file")
            .arg(&self.log)
            .args(&self.extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mount: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn umount(&self) {
        let out = self
            .cronusfs()
            .arg("umount")
            .arg(&self.mnt)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "umount: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs `cronusfs fsck` on this mount's store (in the daemon while it is mounted).
    pub fn fsck(&self) -> Output {
        self.cronusfs()
            .arg("--store")
            .arg(&self.store)
            .arg("fsck")
            .output()
            .unwrap()
    }

    /// Checks that `cronusfs fsck` finds the store sound (a cache entry it removed is not a
    /// problem of the store).
    pub fn assert_fsck_clean(&self) {
        let fsck = self.fsck();
        let said = String::from_utf8_lossy(&fsck.stdout);
        assert!(
            fsck.status.success() && said.lines().any(|l| l.starts_with("clean:")),
            "{said}"
        );
    }

    /// Makes a dataset with partition `k` and job 0 and returns the job directory.
    pub fn job_dir(&self) -> PathBuf {
        let ds = uuid::Uuid::new_v4();
        self.ok(&format!(
            "mkdir $M/datasets/{ds} $M/datasets/{ds}/partitions/k $M/datasets/{ds}/partitions/k/jobs/0"
        ));
        self.mnt.join(format!("datasets/{ds}/partitions/k/jobs/0"))
    }

    /// Runs `script` in bash with `$M` the mount point and `$T` a scratch directory.
    pub fn sh(&self, script: &str) -> Output {
        let mut c = Command::new("timeout");
        c.args(["60", "bash", "-euo", "pipefail", "-c", script])
            .env("M", &self.mnt)
            .env("T", self.tmp.path())
            .env("CRONUSFS", BIN);
        if let Some(cache) = &self.cache {
            c.env("XDG_CACHE_HOME", cache);
        }
        c.output().unwrap()
    }

    /// Runs `script` and returns its stdout, failing the test on a non-zero exit.
    pub fn ok(&self, script: &str) -> String {
        let out = self.sh(script);
        assert!(
            out.status.success(),
            "{script}\nstdout: {}\nstderr: {}\nlog: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        unmount_now(&self.mnt);
    }
}

/// Unmounts `mnt` if it is a mount point: `fusermount3 -u`, then `-uz` if that failed.
pub fn unmount_now(mnt: &Path) {
    if is_mounted(mnt) {
        let ok = Command::new("fusermount3").arg("-u").arg(mnt).status();
        if !ok.is_ok_and(|s| s.success()) {
            let _ = Command::new("fusermount3").arg("-uz").arg(mnt).status();
        }
    }
}

/// Unmounts its mount point when dropped, for tests that mount by hand.
pub struct Unmount(pub PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        unmount_now(&self.0);
    }
}

/// Whether `mnt` is a mount point now (read from mountinfo; never touches the mount).
pub fn is_mounted(mnt: &Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let want = mnt.to_string_lossy().replace(' ', "\\040");
    info.lines()
        .any(|l| l.split(' ').nth(4) == Some(want.as_str()))
}

#[test]
fn the_seed_scenario_with_ordinary_tools_survives_a_remount() {
    seed_scenario_with_ordinary_tools(&Mounted::new());
}

/// The seed scenario through the mount of `m` with cp, ls, getfattr, rsync, tar, mv; then the
/// CLI on the unmounted store, fsck, and a remount that still has everything.
pub fn seed_scenario_with_ordinary_tools(m: &Mounted) {
    std::fs::write(m.tmp.path().join("seed.arrow"), arrow_file(10)).unwrap();
    let ds = uuid::Uuid::new_v4().to_string();
    m.ok(&format!(
        r#"D=$M/datasets/{ds}
        mkdir $D
        for k in key1 key2 key3; do mkdir $D/partitions/$k; done
        for j in 0 1 2; do mkdir $D/partitions/key1/jobs/$j; done
        for k in key1 key2 key3; do for j in 0 1 2; do
          cp $T/seed.arrow $D/partitions/$k/jobs/$j/out.arrow
        done; done
        test "$(ls $D/partitions/key3/jobs)" = "$(printf '0\n1\n2')"
        test "$(find $D -name out.arrow | wc -l)" = 9
        cmp $T/seed.arrow $D/partitions/key2/jobs/1/out.arrow
        "#
    ));
    let job = format!("{}/datasets/{ds}/partitions/key1/jobs/0", m.mnt.display());
    let attrs = m.ok(&format!("getfattr -d {job}/out.arrow"));
    assert!(
        attrs.contains("user.cronus.arrow:num_batches=\"10\""),
        "{attrs}"
    );
    assert!(attrs.contains("user.cronus.type=\"ARROW\""), "{attrs}");
    let listing = m.ok(&format!("ls -l {job}"));
    let size = arrow_file(10).len().to_string();
    assert!(
        listing.contains(&size) && listing.contains("out.arrow"),
        "{listing}"
    );
    // Tags as xattrs; redirects, appends and dd; rsync's temp-file-and-rename; tar -x; mv of a
    // folder, in its job directory and to another.
    m.ok(&format!(
        r#"J={job}
        setfattr -n user.quality -v 10 $J/out.arrow
        test "$(getfattr --only-values -n user.quality $J/out.arrow)" = 10
        echo first > $J/log.txt
        echo second >> $J/log.txt
        test "$(cat $J/log.txt)" = "$(printf 'first\nsecond')"
        dd if=/dev/urandom of=$T/rand.bin bs=64k count=40 status=none
        dd if=$T/rand.bin of=$J/rand.bin bs=1M status=none
        cmp $T/rand.bin $J/rand.bin
        mkdir -p $T/tree/sub && echo a > $T/tree/a.txt && echo b > $T/tree/sub-b.txt
        rsync -a $T/tree/a.txt $T/tree/sub-b.txt $J/
        cmp $T/tree/a.txt $J/a.txt
        tar -C $T/tree -cf $T/files.tar a.txt sub-b.txt
        mkdir $M/datasets/{ds}/partitions/key1/jobs/9
        tar -C $M/datasets/{ds}/partitions/key1/jobs/9 -xf $T/files.tar
        cmp $T/tree/sub-b.txt $M/datasets/{ds}/partitions/key1/jobs/9/sub-b.txt
        mv $J/a.txt $M/datasets/{ds}/partitions/key2/jobs/2/moved.txt
        test ! -e $J/a.txt
        rm $J/rand.bin
        test ! -e $J/rand.bin
        mkdir -p $J/results/tmp && cp $T/tree/a.txt $J/results/tmp/a.txt
        mv $J/results/tmp $J/results/final
        test ! -e $J/results/tmp
        cmp $T/tree/a.txt $J/results/final/a.txt
        mv $J/results $M/datasets/{ds}/partitions/key3/jobs/1/results
        test ! -e $J/results
        "#
    ));
    m.umount();
    assert!(!is_mounted(&m.mnt));
    // The CLI sees what the mount did, with the tag an integer row.
    let lift = m
        .cronusfs()
        .arg("--store")
        .arg(&m.store)
        .args(["rows", "lift", "quality", "--ge", "10", "--count"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&lift.stdout).trim(), "1");
    m.assert_fsck_clean();
    m.mount();
    m.ok(&format!(
        r#"D=$M/datasets/{ds}
        for k in key1 key2 key3; do for j in 0 1 2; do
          cmp $T/seed.arrow $D/partitions/$k/jobs/$j/out.arrow
        done; done
        test "$(cat $D/partitions/key1/jobs/0/log.txt)" = "$(printf 'first\nsecond')"
        cmp $T/tree/a.txt $D/partitions/key2/jobs/2/moved.txt
        cmp $T/tree/a.txt $D/partitions/key3/jobs/1/results/final/a.txt
        test "$(getfattr --only-values -n user.quality $D/partitions/key1/jobs/0/out.arrow)" = 10
        "#
    ));
}

#[test]
fn refused_operations_get_their_errno_at_the_mount() {
    let m = Mounted::new();
    let ds = uuid::Uuid::new_v4().to_string();
    m.ok(&format!("mkdir -p $M/datasets/{ds} && mkdir $M/datasets/{ds}/partitions/k && mkdir $M/datasets/{ds}/partitions/k/jobs/0 && echo x > $M/datasets/{ds}/partitions/k/jobs/0/f"));
    let script = format!(
        r#"
import errno, os, sys
M = sys.argv[1]
D = f"{{M}}/datasets/{ds}"
J = f"{{D}}/partitions/k/jobs/0"
def expect(code, fn, *args):
    try:
        fn(*args)
    except OSError as e:
        if e.errno != code:
            sys.exit(f"{{fn.__name__}}{{args}}: errno {{errno.errorcode[e.errno]}}, expected {{errno.errorcode[code]}}")
        return
    sys.exit(f"{{fn.__name__}}{{args}} succeeded, expected {{errno.errorcode[code]}}")
expect(errno.EINVAL, os.mkdir, f"{{M}}/datasets/not-a-uuid")
expect(errno.EINVAL, os.mkdir, f"{{D}}/partitions/k/jobs/07")
expect(errno.EPERM, os.mkdir, f"{{M}}/elsewhere")
expect(errno.EPERM, os.open, f"{{M}}/datasets/file", os.O_CREAT | os.O_WRONLY)
expect(errno.EPERM, os.mkdir, f"{{M}}/menus/sub")
expect(errno.EPERM, os.link, f"{{J}}/f", f"{{J}}/hard")
expect(errno.EPERM, os.symlink, "0", f"{{D}}/partitions/k/jobs/9")
expect(errno.ENAMETOOLONG, os.open, f"{{J}}/" + "n" * 256, os.O_CREAT | os.O_WRONLY)
expect(errno.ENOTEMPTY, os.rmdir, f"{{D}}/partitions/k/jobs/0")
expect(errno.ENOENT, os.stat, f"{{J}}/missing")
expect(errno.EPERM, os.setxattr, f"{{J}}/f", "user.cronus.size", b"1")
expect(errno.ENOTSUP, os.setxattr, f"{{J}}/f", "trusted.x", b"1")
expect(errno.ENODATA, os.getxattr, f"{{J}}/f", "user.absent")
expect(errno.ENODATA, os.getxattr, f"{{J}}/f", "security.capability")
os.mkdir(f"{{M}}/datasets/{other}")
os.mkdir(f"{{M}}/datasets/{other}/partitions/k")
os.mkdir(f"{{M}}/datasets/{other}/partitions/k/jobs/0")
expect(errno.EXDEV, os.rename, f"{{J}}/f", f"{{M}}/datasets/{other}/partitions/k/jobs/0/f")
print("ok")
"#,
        other = uuid::Uuid::new_v4()
    );
    let path = m.tmp.path().join("errnos.py");
    std::fs::write(&path, script).unwrap();
    let out = m.ok(&format!("python3 {} $M", path.display()));
    assert_eq!(out.trim(), "ok");
}

#[test]
fn pyarrow_and_polars_write_and_read_on_the_mount() {
    let m = Mounted::new();
    let ds = uuid::Uuid::new_v4().to_string();
    m.ok(&format!(
        "mkdir $M/datasets/{ds} $M/datasets/{ds}/partitions/k $M/datasets/{ds}/partitions/k/jobs/0"
    ));
    let job = m.mnt.join(format!("datasets/{ds}/partitions/k/jobs/0"));
    let clients = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/arrow_clients.py");
    let python = crate::python_clients::python();
    for (how, file, rows, format) in [
        ("write-pyarrow", "pa.arrow", 10_000, "arrow"),
        ("write-polars", "pl.arrow", 2500, "arrow"),
        ("write-pyarrow-parquet", "pa.parquet", 10_000, "parquet"),
        ("write-polars-parquet", "pl.parquet", 2500, "parquet"),
    ] {
        let target = job.join(file);
        let status = Command::new("timeout")
            .arg("120")
            .arg(python)
            .arg(&clients)
            .arg(how)
            .arg(&target)
            .status()
            .unwrap();
        assert!(status.success(), "{how}");
        let out = Command::new("timeout")
            .arg("120")
            .arg(python)
            .arg(&clients)
            .arg("read")
            .arg(&target)
            .output()
            .unwrap();
        assert_success(&out);
        let seen: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(seen["pyarrow"]["rows"], rows, "{seen}");
        assert_eq!(seen["polars"]["rows"], rows, "{seen}");
        assert_eq!(seen["memory_map_equal"], true, "{seen}");
        let rows_attr = m.ok(&format!(
            "getfattr --only-values -n user.cronus.{format}:num_rows {}",
            target.display()
        ));
        assert_eq!(rows_attr, rows.to_string());
        // polars opens, truncates and writes: the first commit is empty, the name follows the
        // type of the bytes that came after.
        let name = m.ok(&format!(
            "getfattr --only-values -n user.cronus.name {}",
            target.display()
        ));
        assert!(name.ends_with(&format!(".{format}")), "{how}: {name}");
    }
}

#[test]
fn a_sigkilled_daemon_loses_nothing_whose_close_returned() {
    sigkilled_daemon_loses_nothing(&Mounted::new());
}

/// Files written through `m` by a writer logging each close, the daemon killed mid-stream:
/// every file whose close returned is intact after a remount, and fsck is clean.
pub fn sigkilled_daemon_loses_nothing(m: &Mounted) {
    let job = m.job_dir();
    let log = m.tmp.path().join("closed.txt");
    let writer = r#"
import hashlib, os, random, sys
job, log = sys.argv[1:3]
random.seed(7)
with open(log, "a") as done:
    for i in range(100000):
        data = os.urandom(random.choice([10, 5000, 300000, 1500000, 12000000]))
        try:
            with open(f"{job}/f{i}", "wb") as f:
                f.write(data)
        except OSError:
            break
        done.write(f"f{i} {hashlib.sha256(data).hexdigest()}\n")
        done.flush()
"#;
    let script = m.tmp.path().join("writer.py");
    std::fs::write(&script, writer).unwrap();
    let mut child = Command::new("timeout")
        .arg("120")
        .arg("python3")
        .arg(&script)
        .arg(&job)
        .arg(&log)
        .spawn()
        .unwrap();
    // Let it commit a good number of files, then kill the daemon mid-stream.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .count()
        < 40
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the writer made no progress"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let pid = m.daemon_pid();
    // SAFETY: kill(2) with the daemon's pid; no memory involved.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    let _ = child.wait();
    // The dead daemon leaves a stale mount (ENOTCONN): mount says so, umount clears it.
    let again = m
        .cronusfs()
        .arg("mount")
        .arg(&m.store)
        .arg(&m.mnt)
        .output()
        .unwrap();
    let msg = String::from_utf8_lossy(&again.stderr);
    assert!(
        !again.status.success() && msg.contains("whose daemon is gone"),
        "{msg}"
    );
    m.umount();
    assert!(!is_mounted(&m.mnt));
    m.mount();
    let closed = std::fs::read_to_string(&log).unwrap();
    assert!(closed.lines().count() >= 40);
    let check: String = closed
        .lines()
        .map(|l| {
            let (name, hash) = l.split_once(' ').unwrap();
            format!("{hash}  {}\n", job.join(name).display())
        })
        .collect();
    let sums = m.tmp.path().join("sums.txt");
    std::fs::write(&sums, check).unwrap();
    m.ok(&format!("sha256sum --quiet -c {}", sums.display()));
    m.umount();
    m.assert_fsck_clean();
}
