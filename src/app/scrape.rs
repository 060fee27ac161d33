//! A mount's metrics: the Prometheus recorder every layer records through (installed in every
//! daemon), the thread that keeps it current (the core's gauges, the daemon's memory, the
//! histograms folded into buckets), what `.cronusfs/stats` shows, and the HTTP endpoint a
//! Prometheus server scrapes (`mount --metrics ADDR`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use cronusfs::fs::FsCore;
use cronusfs::meters;
use cronusfs::storage::Storage;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// How often the gauges are read again and the histograms folded.
const UPKEEP: Duration = Duration::from_secs(1);
/// How long a scraper may take to send its request or read the answer.
const CLIENT_LIMIT: Duration = Duration::from_secs(5);
/// The most scrapes answered at once; more connections are closed at once.
const MOST_CLIENTS: usize = 8;
/// The longest request head read.
const MOST_HEAD_BYTES: u64 = 8 << 10;

/// Installs the Prometheus recorder for this process: from now on every layer's metrics are
/// kept. Called before the store opens, so the engines' meters register with it.
pub fn install() -> Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets(meters::LATENCY_BUCKETS)
        .context("bad histogram buckets")?
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    meters::describe();
    let started = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    meters::set_gauge(meters::START_TIME, started.as_secs_f64());
    Ok(handle)
}

/// Shows the metrics of `core` in its `.cronusfs/stats` and, with `--metrics ADDR`, at
/// `http://ADDR/metrics` (bound now: an address in use is an error); starts the thread that
/// keeps them current.
pub fn start<S: Storage + 'static>(
    handle: PrometheusHandle,
    addr: Option<SocketAddr>,
    core: Arc<FsCore<S>>,
) -> Result<()> {
    if let Some(addr) = addr {
        serve(handle.clone(), addr)?;
    }
    let shown = handle.clone();
    core.show_stats_from(Box::new(move || shown.render()));
    keep_current(handle, core);
    Ok(())
}

/// Keeps the metrics of `core` current, once a second, for as long as the process lives.
pub fn keep_current<S: Storage + 'static>(handle: PrometheusHandle, core: Arc<FsCore<S>>) {
    let upkeep = move || {
        loop {
            let census = core.census();
            meters::set_gauge(meters::INODES, census.inodes as f64);
            meters::set_gauge(meters::INODES_HELD, census.held_inodes as f64);
            meters::set_gauge(meters::OPEN_HANDLES, census.open_handles as f64);
            if let Some(bytes) = resident_bytes() {
                meters::set_gauge(meters::RESIDENT_BYTES, bytes as f64);
            }
            handle.run_upkeep();
            std::thread::sleep(UPKEEP);
        }
    };
    let started = std::thread::Builder::new()
        .name("metrics".into())
        .spawn(upkeep);
    if let Err(e) = started {
        tracing::warn!(error = %e, "cannot start the metrics thread: gauges stay unset");
    }
}

/// Returns the daemon's resident memory, from `/proc/self/statm`.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}

/// Listens on `addr` and serves `GET /metrics` from a thread; an address that cannot be bound
/// is an error now, before the mount is made.
pub fn serve(handle: PrometheusHandle, addr: SocketAddr) -> Result<SocketAddr> {
    let listener =
        TcpListener::bind(addr).with_context(|| format!("cannot serve metrics on {addr}"))?;
    let bound = listener.local_addr()?;
    let clients = Arc::new(AtomicUsize::new(0));
    std::thread::Builder::new()
        .name("metrics-http".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                // A slow scraper holds its own thread, never the next scrape.
                if clients.fetch_add(1, Ordering::SeqCst) >= MOST_CLIENTS {
                    clients.fetch_sub(1, Ordering::SeqCst);
                    continue;
                }
                let (handle, done) = (handle.clone(), clients.clone());
                let answered = std::thread::Builder::new()
                    .name("metrics-client".into())
                    .spawn(move || {
                        let _ = answer(&handle, stream);
                        done.fetch_sub(1, Ordering::SeqCst);
                    });
                if answered.is_err() {
                    clients.fetch_sub(1, Ordering::SeqCst);
                }
            }
        })?;
    tracing::info!(%bound, "serving metrics at http://{bound}/metrics");
    Ok(bound)
}

/// Reads one request from `stream` and answers it: the metrics for `GET /metrics`.
fn answer(handle: &PrometheusHandle, stream: TcpStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(CLIENT_LIMIT))?;
    stream.set_write_timeout(Some(CLIENT_LIMIT))?;
    let mut reader = BufReader::new((&stream).take(MOST_HEAD_BYTES));
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // The rest of the head: nothing in it changes the answer.
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        line.clear();
    }
    let mut words = request_line.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, body) = match (method, path) {
        ("GET" | "HEAD", "/metrics") => ("200 OK", handle.render()),
        ("GET" | "HEAD", _) => ("404 Not Found", "only /metrics is served\n".to_string()),
        _ => ("405 Method Not Allowed", "only GET is served\n".to_string()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut out = &stream;
    out.write_all(head.as_bytes())?;
    if method != "HEAD" {
        out.write_all(body.as_bytes())?;
    }
    out.flush()
}
