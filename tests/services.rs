//! Real PostgreSQL and SeaweedFS (S3) servers for the shared-store tests: each started once per
//! test process, bound to 127.0.0.1 on a free port, and stopped (its files deleted) by a
//! watchdog shell as soon as the test process is gone, however it ended.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Where Debian's PostgreSQL 15 server programs are.
const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A running PostgreSQL server.
pub struct Postgres {
    /// Its TCP port on 127.0.0.1.
    pub port: u16,
    /// Its data directory's parent (removed by the watchdog).
    pub dir: PathBuf,
}

/// A running SeaweedFS server with an S3 gateway and one bucket.
pub struct Seaweed {
    /// The S3 endpoint, `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The bucket the tests use.
    pub bucket: String,
    /// The shell command that starts the server (same ports, same data) and records its pid.
    start: String,
    dir: PathBuf,
}

/// The S3 credentials the test server accepts.
pub const S3_KEY: (&str, &str) = ("cronusfs-test", "cronusfs-test-secret");

/// Returns a free TCP port on 127.0.0.1 (free when asked; the server binds it right after):
/// below the kernel's ephemeral range (32768 and up), so that no outgoing connection takes the
/// port of a server stopped to be started again, and never one this process handed out before.
pub fn free_port() -> u16 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    const FIRST: u64 = 20_000;
    const COUNT: u64 = 12_700;
    // Test processes running at once start at different places.
    let start = u64::from(std::process::id()) * 97 % COUNT;
    loop {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        assert!(n < COUNT, "no free port left below 32768");
        let port = (FIRST + (start + n) % COUNT) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts `stop` (a shell command) once this test process has exited.
fn watchdog(stop: &str) {
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {stop}",
        pid = std::process::id()
    );
    let started = Command::new("setsid")
        .args(["-f", "sh", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("setsid sh");
    assert!(started.success());
}

/// Returns the test process's PostgreSQL server, starting it on first use.
pub fn postgres() -> &'static Postgres {
    static PG: OnceLock<Postgres> = OnceLock::new();
    PG.get_or_init(start_postgres)
}

/// Starts a PostgreSQL server of the calling test's own (to restart it, say), stopped like the
/// shared one when the test process ends.
pub fn private_postgres() -> Postgres {
    start_postgres()
}

/// `sh -c script` as user `postgres` (PostgreSQL's programs refuse to run as root).
fn as_postgres(script: String) -> Command {
    let mut c = Command::new("runuser");
    c.args(["-u", "postgres", "--", "sh", "-c", &script]);
    c
}

fn start_postgres() -> Postgres {
    assert!(
        Path::new(PG_BIN).join("initdb").exists(),
        "PostgreSQL 15 is not installed (scripts/setup.sh installs it)"
    );
    let dir = tempfile::Builder::new()
        .prefix("cronusfs-pg-")
        .tempdir()
        .unwrap()
        .keep();
    run(Command::new("chown").args(["postgres:postgres"]).arg(&dir));
    let port = free_port();
    let (d, bin) = (dir.display(), PG_BIN);
    run(&mut as_postgres(format!(
        "{bin}/initdb -D {d}/data -A trust -U postgres -E UTF8 --no-locale >{d}/initdb.log 2>&1"
    )));
    // Durability as in production (fsync on); the tests measure nothing.
    run(&mut as_postgres(format!(
        "{bin}/pg_ctl -D {d}/data -l {d}/log -w -o \"-c listen_addresses=127.0.0.1 -p {port} -k {d} -c max_connections=300\" start >/dev/null"
    )));
    watchdog(&format!(
        "runuser -u postgres -- {bin}/pg_ctl -D {d}/data -m immediate -w stop; rm -rf {d}"
    ));
    Postgres { port, dir }
}

impl Postgres {
    /// Stops the server (fast shutdown) and starts it again on the same port: what an
    /// administrator's restart does to the daemons using it.
    pub fn restart(&self) {
        let d = self.dir.display();
        let script = format!(
            "{PG_BIN}/pg_ctl -D {d}/data -l {d}/log -w -m fast -o \"-c listen_addresses=127.0.0.1 -p {} -k {d} -c max_connections=300\" restart >/dev/null",
            self.port
        );
        run(&mut as_postgres(script));
    }
}

impl Postgres {
    /// Runs `sql` on the server (psql, as `postgres`); returns its output, tuples only.
    pub fn sql(&self, sql: &str) -> String {
        let out = Command::new(format!("{PG_BIN}/psql"))
            .args(["-h", "127.0.0.1", "-U", "postgres", "-At", "-c", sql])
            .args(["-p", &self.port.to_string()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Makes a streaming standby of this server (`pg_basebackup -R`), started on a port of its
    /// own, and has this server's commits wait for it (`synchronous_standby_names = '*'`):
    /// what a commit returned is on both. Stopped like every test server.
    pub fn standby(&self) -> Postgres {
        let dir = tempfile::Builder::new()
            .prefix("cronusfs-pg-standby-")
            .tempdir()
            .unwrap()
            .keep();
        run(Command::new("chown").args(["postgres:postgres"]).arg(&dir));
        let (port, d, primary) = (free_port(), dir.display(), self.port);
        run(&mut as_postgres(format!(
            "{PG_BIN}/pg_basebackup -h 127.0.0.1 -p {primary} -U postgres -D {d}/data -R -X stream"
        )));
        run(&mut as_postgres(format!(
            "{PG_BIN}/pg_ctl -D {d}/data -l {d}/log -w -o \"-c listen_addresses=127.0.0.1 -p {port} -k {d} -c max_connections=300\" start >/dev/null"
        )));
        watchdog(&format!(
            "runuser -u postgres -- {PG_BIN}/pg_ctl -D {d}/data -m immediate -w stop; rm -rf {d}"
        ));
        self.sql("ALTER SYSTEM SET synchronous_standby_names = '*'");
        self.sql("SELECT pg_reload_conf()");
        let deadline = Instant::now() + Duration::from_secs(30);
        while self
            .sql("SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'")
            .trim()
            != "1"
        {
            assert!(
                Instant::now() < deadline,
                "the standby never became synchronous"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Postgres { port, dir }
    }

    /// Kills the server and its backends with SIGKILL, as a host that died would leave it.
    pub fn kill(&self) {
        let pid_file = self.dir.join("data/postmaster.pid");
        let text = std::fs::read_to_string(&pid_file).unwrap();
        let pid = text.lines().next().unwrap().trim().to_string();
        run(Command::new("sh").args(["-c", &format!("pkill -9 -P {pid}; kill -9 {pid}")]));
    }

    /// Promotes this standby to a primary (`pg_ctl promote`, waiting until it takes writes).
    pub fn promote(&self) {
        let d = self.dir.display();
        let script = format!("{PG_BIN}/pg_ctl -D {d}/data -w promote >/dev/null");
        run(&mut as_postgres(script));
    }
}

/// Returns the URL of a new, empty store on the test server (its own schema).
pub fn pg_store_url() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    format!(
        "postgres://postgres@127.0.0.1:{}/postgres?schema=t{}_{n}",
        postgres().port,
        std::process::id()
    )
}

/// Returns the test process's SeaweedFS server, starting it on first use.
pub fn seaweed() -> &'static Seaweed {
    static S3: OnceLock<Seaweed> = OnceLock::new();
    S3.get_or_init(start_seaweed)
}

/// Returns the `weed` program the services venv holds (`scripts/services.sh` installs it).
fn weed_program() -> PathBuf {
    let out = Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/services.sh"))
        .output()
        .expect("scripts/services.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// Makes the directory of a SeaweedFS server (kept: the watchdog removes it) and, in it, the
/// S3 gateway's identities file; returns both.
fn seaweed_dir(prefix: &str) -> (PathBuf, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .unwrap()
        .keep();
    let config = dir.join("s3.json");
    let identities = format!(
        r#"{{"identities":[{{"name":"cronus","credentials":[{{"accessKey":"{}","secretKey":"{}"}}],"actions":["Admin","Read","Write","List","Tagging"]}}]}}"#,
        S3_KEY.0, S3_KEY.1
    );
    std::fs::write(&config, identities).unwrap();
    (dir, config)
}

fn start_seaweed() -> Seaweed {
    let weed = weed_program();
    let (dir, config) = seaweed_dir("cronusfs-s3-");
    let (master, volume, filer, s3) = (free_port(), free_port(), free_port(), free_port());
    let (mg, fg) = (free_port(), free_port());
    let d = dir.display();
    let script = format!(
        "setsid {weed} server -ip=127.0.0.1 -ip.bind=127.0.0.1 -dir={d} -master.telemetry=false \
         -master.port={master} -master.port.grpc={mg} -volume.port={volume} -volume.port.grpc={vg} \
         -filer.port={filer} -filer.port.grpc={fg} -master.volumeSizeLimitMB=64 -volume.max=16 \
         -s3 -s3.port={s3} -s3.port.grpc={sg} -s3.config={config} -s3.port.iceberg=0 \
         -s3.port.lance=0 -metricsPort=0 >>{d}/weed.log 2>&1 </dev/null & echo $! >{d}/weed.pid",
        weed = weed.display(),
        config = config.display(),
        vg = free_port(),
        sg = free_port(),
    );
    run(Command::new("sh").args(["-c", &script]));
    watchdog(&format!("{}; rm -rf {d}", stop_script(&dir)));
    let endpoint = format!("http://127.0.0.1:{s3}");
    let bucket = "cronusfs-test".to_string();
    // `host:port.grpc`: the shell reaches the servers' gRPC ports, which are not port + 10000.
    make_bucket(
        &weed,
        &format!("{master}.{mg}"),
        &format!("{filer}.{fg}"),
        &bucket,
    );
    wait_for_s3(&endpoint, Duration::from_secs(60));
    warm_up(&endpoint, &bucket);
    Seaweed {
        endpoint,
        bucket,
        start: script,
        dir,
    }
}

/// The shell command that stops the server whose pid `dir/weed.pid` holds: TERM, then KILL
/// after 10 s (it can hang in retry loops).
fn stop_script(dir: &Path) -> String {
    let d = dir.display();
    format!(
        "p=$(cat {d}/weed.pid); kill -TERM $p; for i in $(seq 20); do kill -0 $p 2>/dev/null || break; sleep 0.5; done; kill -KILL $p 2>/dev/null; true"
    )
}

impl Seaweed {
    /// Stops the server (S3 unreachable), and waits until its port refuses connections.
    pub fn stop(&self) {
        run(Command::new("sh").args(["-c", &stop_script(&self.dir)]));
        let addr = self.endpoint.trim_start_matches("http://");
        let started = Instant::now();
        while std::net::TcpStream::connect(addr).is_ok() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "S3 at {addr} still answers"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Starts it again on the same ports with the same data.
    pub fn start(&self) {
        run(Command::new("sh").args(["-c", &self.start]));
        wait_for_s3(&self.endpoint, Duration::from_secs(60));
    }
}

/// A SeaweedFS server stopped with SIGSTOP: its sockets still accept connections and take
/// bytes, but nothing answers, as with a hung server. It runs on (SIGCONT) when this guard is
/// dropped, also when the test fails.
pub struct Frozen(i32);

impl Seaweed {
    /// Stops the server's process (SIGSTOP) until the guard returned is dropped. Only for a
    /// server of the test's own ([`private_seaweed`]): other tests share [`seaweed`].
    pub fn freeze(&self) -> Frozen {
        let pid = std::fs::read_to_string(self.dir.join("weed.pid")).unwrap();
        let pid: i32 = pid.trim().parse().unwrap();
        // SAFETY: kill only sends a signal, to the test's own server process.
        let sent = unsafe { libc::kill(pid, libc::SIGSTOP) };
        assert_eq!(sent, 0, "SIGSTOP {pid}");
        Frozen(pid)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        // SAFETY: as in `Seaweed::freeze`.
        unsafe { libc::kill(self.0, libc::SIGCONT) };
    }
}

/// Starts a SeaweedFS server of the calling test's own (to stop it, say), stopped like the
/// shared one when the test process ends.
pub fn private_seaweed() -> Seaweed {
    start_seaweed()
}

/// A SeaweedFS cluster of the calling test's own, as a replicated deployment runs it: a master
/// whose volumes keep two copies on two servers (`-defaultReplication=001`), three volume
/// servers, a filer and an S3 gateway, each a process of its own (killed when the test process
/// ends).
pub struct ReplicatedSeaweed {
    /// The S3 endpoint, `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The bucket the test uses.
    pub bucket: String,
    dir: PathBuf,
}

/// Starts a [`ReplicatedSeaweed`].
pub fn replicated_seaweed() -> ReplicatedSeaweed {
    let weed = weed_program();
    let (dir, config) = seaweed_dir("cronusfs-s3r-");
    let (w, d, c) = (weed.display(), dir.display(), config.display());
    let (master, mg, filer, fg, s3) = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    let on = "-ip=127.0.0.1 -ip.bind=127.0.0.1";
    let background = |name: &str, args: String| {
        format!(
            "mkdir -p {d}/{name}; setsid {w} {args} >{d}/{name}.log 2>&1 </dev/null & echo $! >{d}/{name}.pid; "
        )
    };
    let mut script = background(
        "master",
        format!(
            "master {on} -port={master} -port.grpc={mg} -mdir={d}/master -defaultReplication=001 -volumeSizeLimitMB=64 -telemetry=false"
        ),
    );
    script.push_str("sleep 1; ");
    for i in 0..3 {
        let (port, grpc) = (free_port(), free_port());
        script.push_str(&background(
            &format!("volume{i}"),
            format!("volume {on} -port={port} -port.grpc={grpc} -dir={d}/volume{i} -max=16 -mserver=127.0.0.1:{master}.{mg} -metricsPort=0"),
        ));
    }
    script.push_str(&background(
        "filer",
        format!("filer {on} -port={filer} -port.grpc={fg} -master=127.0.0.1:{master}.{mg} -defaultStoreDir={d}/filer -metricsPort=0"),
    ));
    run(Command::new("sh").args(["-c", &script]));
    watchdog(&format!(
        "for p in {d}/*.pid; do kill -9 $(cat $p); done; rm -rf {d}"
    ));
    let bucket = "cronusfs-replicated".to_string();
    make_bucket(
        &weed,
        &format!("{master}.{mg}"),
        &format!("{filer}.{fg}"),
        &bucket,
    );
    let gateway = background(
        "s3",
        format!(
            "s3 -ip.bind=127.0.0.1 -port={s3} -port.grpc={} -port.iceberg=0 -port.lance=0 -filer=127.0.0.1:{filer}.{fg} -config={c} -metricsPort=0",
            free_port()
        ),
    );
    run(Command::new("sh").args(["-c", &gateway]));
    let endpoint = format!("http://127.0.0.1:{s3}");
    wait_for_s3(&endpoint, Duration::from_secs(60));
    warm_up(&endpoint, &bucket);
    ReplicatedSeaweed {
        endpoint,
        bucket,
        dir,
    }
}

impl ReplicatedSeaweed {
    /// Returns the URL of new content in the bucket (`s3://BUCKET/PREFIX?endpoint=…`).
    pub fn content_url(&self, prefix: &str) -> String {
        let (bucket, endpoint) = (&self.bucket, &self.endpoint);
        format!("s3://{bucket}/{prefix}?endpoint={endpoint}&region=us-east-1")
    }

    /// Kills volume server `i` (0 to 2) with SIGKILL, as a host that died would.
    pub fn kill_volume_server(&self, i: usize) {
        let pid = std::fs::read_to_string(self.dir.join(format!("volume{i}.pid"))).unwrap();
        run(Command::new("kill").args(["-9", pid.trim()]));
    }
}

/// Creates `bucket` through `weed shell`, retrying while the servers come up.
fn make_bucket(weed: &Path, master: &str, filer: &str, bucket: &str) {
    let started = Instant::now();
    loop {
        let out = Command::new("timeout")
            .args(["20", "sh", "-c"])
            .arg(format!(
                "echo 's3.bucket.create -name {bucket}' | {} shell -master=127.0.0.1:{master} -filer=127.0.0.1:{filer}",
                weed.display()
            ))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        // An attempt that made the bucket but was reported failed leaves it there.
        if text.contains("already exists") || (out.status.success() && !text.contains("rror")) {
            return;
        }
        // Generous: with the whole suite running on two cores, a server has been seen to
        // take over a minute to come up.
        assert!(
            started.elapsed() < Duration::from_secs(150),
            "SeaweedFS did not create bucket {bucket}: {text}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Waits until the S3 port answers HTTP.
fn wait_for_s3(endpoint: &str, limit: Duration) {
    let addr = endpoint.trim_start_matches("http://");
    let started = Instant::now();
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(started.elapsed() < limit, "S3 at {endpoint} never answered");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Writes, reads and deletes one chunk in `bucket` until that works: a port that accepts is
/// not yet a server that answers in time (the first write makes its volumes), and the tests'
/// clients give up after 5 s.
fn warm_up(endpoint: &str, bucket: &str) {
    use cronusfs::storage::ChunkStore;
    use cronusfs::storage::s3::{S3Chunks, S3Url};
    use_s3_env();
    let url = format!("s3://{bucket}/warm-up?endpoint={endpoint}&region=us-east-1");
    let started = Instant::now();
    loop {
        let tried = S3Chunks::open(&S3Url::parse(&url).unwrap()).and_then(|s3| {
            s3.chunk_put("probe", b"probe", false)?;
            let back = s3.chunk_get("probe")?;
            s3.chunk_del("probe")?;
            Ok(back)
        });
        if let Ok(Some(bytes)) = &tried
            && bytes == b"probe"
        {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(150),
            "SeaweedFS at {endpoint} never stored a chunk: {tried:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Returns the `--content` URL of a new, empty place in the test bucket.
pub fn s3_content_url() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let s3 = seaweed();
    format!(
        "s3://{}/t{}_{n}?endpoint={}&region=us-east-1",
        s3.bucket,
        std::process::id(),
        s3.endpoint
    )
}

/// The environment a cronusfs process needs to reach the test S3 server.
pub fn s3_env() -> [(&'static str, &'static str); 2] {
    [
        ("AWS_ACCESS_KEY_ID", S3_KEY.0),
        ("AWS_SECRET_ACCESS_KEY", S3_KEY.1),
    ]
}

/// Sets the test S3 server's credentials in this process's environment, which the library's
/// S3 client and every child process read.
pub fn use_s3_env() {
    for (k, v) in s3_env() {
        // SAFETY: every caller sets the same two values before the first S3 client reads them.
        unsafe { std::env::set_var(k, v) };
    }
}
