//! The PostgreSQL engine: a store that several hosts share. One table per column family
//! (`k bytea PRIMARY KEY, v bytea`) in the store's schema, serializable transactions whose
//! conflicts become [`StorageError::Conflict`], a pool of connections with their statements
//! prepared once, every call bounded in time (`client`). The only module that imports
//! `tokio_postgres` and `r2d2`.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio_postgres::Statement;
use tokio_postgres::error::SqlState;

use super::engine::{
    Cf, ChangesElsewhere, Engine, EngineRead, EngineTxn, SpansVisitor, StampSlot, Visitor,
    WriteBatch, multi_get_by_spans,
};
use super::{EngineErrorKind, Result, StorageError};
use crate::meters::{self, EngineMeters};

mod batch;
mod client;
mod clock;
mod reads;
mod schema;
mod url;
use batch::batch_sql;
use client::Client;
use reads::{get_on, scan_on, spans_on};
use schema::{create_tables, tables_exist, tables_sql};
pub use url::PgUrl;

/// The rows one range of a multi-range scan may return (a `LIMIT` that keeps each range an
/// ordered index scan; far above any node's rows).
const SPAN_ROWS: i64 = 1 << 40;
/// Connections one process keeps open to the server at most.
const POOL_SIZE: u32 = 16;
/// How long a call waits for a connection from the pool (the server down or silent, the pool
/// exhausted).
const CONNECT_WAIT: Duration = Duration::from_secs(10);
/// The server's clock, epoch milliseconds (the wall clock now, not the transaction's start).
const SERVER_TIME: &str = "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint";

/// The statements of one connection, prepared when it opens: per column family, a get and
/// four scans (bounded or open-ended, with values or keys only).
struct Statements {
    get: Vec<Statement>,
    range: Vec<Statement>,
    from: Vec<Statement>,
    keys_range: Vec<Statement>,
    keys_from: Vec<Statement>,
    spans: Vec<Statement>,
}

/// One pooled connection.
pub struct PgConn {
    client: Client,
    statements: Statements,
    // Set when the connection may be inside a transaction it could not end: the pool drops it.
    broken: bool,
    // The connection's number: those numbered below the connector's `stale_before` were open
    // when the server went away, and are dropped instead of used.
    serial: u64,
}

/// Opens connections for the pool, preparing their statements, and tells the pool which ones
/// to drop after the server went away (restarted, failed over).
struct Connector {
    url: PgUrl,
    next_serial: Arc<AtomicU64>,
    stale_before: Arc<AtomicU64>,
}

impl r2d2::ManageConnection for Connector {
    type Connection = PgConn;
    type Error = StorageError;

    fn connect(&self) -> Result<PgConn> {
        let mut client = Client::connect(&self.url)?;
        // Every statement is small and short; the planner's guess for a listing's lateral
        // range scans (millions of rows) would have it JIT-compile each one: 7 ms for 3 ms of
        // work.
        // And for those scans (a node's ≈ 16 rows each), an index scan in key order costs a
        // quarter less than the bitmap heap scan the planner picks: 1.8-2.1 ms against 2.7 ms
        // per 256 nodes (EXPLAIN ANALYZE); every other statement is a primary-key get or range.
        client.batch_execute(
            "SET jit = off; SET enable_bitmapscan = off; SET enable_memoize = off",
        )?;
        let statements = prepare(&mut client, &self.url.schema)?;
        Ok(PgConn {
            client,
            statements,
            broken: false,
            serial: self.next_serial.fetch_add(1, Ordering::SeqCst),
        })
    }

    /// Checked at every checkout, without a round trip: a connection from before the server
    /// went away is not handed out.
    fn is_valid(&self, conn: &mut PgConn) -> Result<()> {
        match conn.serial < self.stale_before.load(Ordering::SeqCst) {
            true => Err(StorageError::Unreachable(
                "a connection from before the server went away".to_string(),
            )),
            false => Ok(()),
        }
    }

    fn has_broken(&self, conn: &mut PgConn) -> bool {
        if conn.client.timed_out() {
            // The server went silent: the connections opened before are not tried in turn,
            // each for as long; the next call connects anew.
            let now = self.next_serial.load(Ordering::SeqCst);
            self.stale_before.fetch_max(now, Ordering::SeqCst);
        }
        conn.broken
            || conn.client.is_closed()
            || conn.serial < self.stale_before.load(Ordering::SeqCst)
    }
}

/// The channel a store's commits are announced on (`NOTIFY`): named after its schema.
fn channel(schema: &str) -> String {
    format!("cronusfs_{}", &schema[..schema.len().min(50)])
}

fn table(schema: &str, cf: Cf) -> String {
    format!("{schema}.{}", cf.name())
}

fn prepare(client: &mut Client, schema: &str) -> Result<Statements> {
    let mut s = Statements {
        get: Vec::new(),
        range: Vec::new(),
        from: Vec::new(),
        keys_range: Vec::new(),
        keys_from: Vec::new(),
        spans: Vec::new(),
    };
    for cf in Cf::ALL {
        let t = table(schema, cf);
        s.get
            .push(client.prepare(&format!("SELECT v FROM {t} WHERE k = $1"))?);
        let scan = |cols: &str, bounded: bool| {
            let end = if bounded { " AND k < $3" } else { "" };
            format!("SELECT {cols} FROM {t} WHERE k >= $1{end} ORDER BY k LIMIT $2")
        };
        s.range.push(client.prepare(&scan("k, v", true))?);
        s.from.push(client.prepare(&scan("k, v", false))?);
        s.keys_range.push(client.prepare(&scan("k", true))?);
        s.keys_from.push(client.prepare(&scan("k", false))?);
        // Every range's entries in one round trip: a range scan of the key index per range.
        s.spans.push(client.prepare(&format!(
            "SELECT s.i, t.k, t.v \
             FROM unnest($1::bytea[], $2::bytea[]) WITH ORDINALITY AS s(lo, hi, i) \
             CROSS JOIN LATERAL \
             (SELECT k, v FROM {t} WHERE k >= s.lo AND k < s.hi ORDER BY k LIMIT {SPAN_ROWS}) t"
        ))?);
    }
    Ok(s)
}

/// An [`Engine`] over tables of a PostgreSQL database.
pub struct PgEngine {
    pool: r2d2::Pool<Connector>,
    url: PgUrl,
    // Connections numbered below this are stale; the number the next one gets (both shared
    // with the pool's connector).
    stale_before: Arc<AtomicU64>,
    next_serial: Arc<AtomicU64>,
    // The connection that LISTENs for other processes' commits (made at the first wait).
    listener: std::sync::Mutex<Option<Client>>,
    meters: EngineMeters,
}

impl std::fmt::Debug for PgEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgEngine").field("url", &self.url).finish()
    }
}

impl PgEngine {
    /// Connects to the store at `url`. With `create`, makes its schema and tables if missing;
    /// without, a database with no store there is [`StorageError::NoStore`].
    pub fn open(url: &PgUrl, create: bool) -> Result<Self> {
        let mut client = Client::connect(url)?;
        if create {
            super::retry::retry(|| create_tables(&mut client, &url.schema))?;
        } else if !tables_exist(&mut client, &url.schema)? {
            return Err(StorageError::NoStore {
                path: url.shown.clone().into(),
            });
        }
        PgEngine::pooled(url)
    }

    /// Makes a new store at `url`: its schema, its tables and `first` (the write that makes
    /// an empty engine a store), all in one transaction, so that a failure anywhere leaves
    /// nothing. A store already there (another process made it meanwhile) is opened as it is,
    /// without `first`.
    pub fn create(url: &PgUrl, first: WriteBatch) -> Result<Self> {
        let mut client = Client::connect(url)?;
        if !tables_exist(&mut client, &url.schema)? {
            let sql = format!(
                "BEGIN ISOLATION LEVEL SERIALIZABLE;{}{}",
                tables_sql(&url.schema),
                batch_sql(&url.schema, first, false)
            );
            // On failure the connection is dropped, and with it the transaction.
            client.batch_execute(&sql)?;
        }
        PgEngine::pooled(url)
    }

    /// Opens the store at `url` to upgrade it: makes the tables and sequences this version
    /// needs if missing (a store made before history was kept has none of them; daemons of the
    /// earlier version never read them), then connects as [`PgEngine::open`] does.
    pub fn open_to_upgrade(url: &PgUrl) -> Result<Self> {
        let mut client = Client::connect(url)?;
        match tables_exist(&mut client, &url.schema) {
            Ok(true) | Err(StorageError::FormatVersion { .. }) => {
                super::retry::retry(|| create_tables(&mut client, &url.schema))?;
                PgEngine::pooled(url)
            }
            Ok(false) => Err(StorageError::NoStore {
                path: url.shown.clone().into(),
            }),
            Err(e) => Err(e),
        }
    }

    /// Returns the engine of the store at `url`, whose tables exist, with its pool.
    fn pooled(url: &PgUrl) -> Result<Self> {
        let (stale_before, next_serial) =
            (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let connector = Connector {
            url: url.clone(),
            next_serial: next_serial.clone(),
            stale_before: stale_before.clone(),
        };
        let pool = r2d2::Pool::builder()
            .max_size(POOL_SIZE)
            .min_idle(Some(1))
            .connection_timeout(CONNECT_WAIT)
            .test_on_check_out(true)
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build(connector)
            .map_err(pool_error)?;
        Ok(PgEngine {
            pool,
            url: url.clone(),
            stale_before,
            next_serial,
            listener: std::sync::Mutex::new(None),
            meters: EngineMeters::new("postgres"),
        })
    }

    /// Returns the store's URL (without its password).
    pub fn url(&self) -> &PgUrl {
        &self.url
    }

    fn conn(&self) -> Result<r2d2::PooledConnection<Connector>> {
        self.pool.get().map_err(pool_error)
    }

    /// Runs `op` on a pooled connection. When the connection turns out to be closed before
    /// `op` did anything (it sets its flag once it has: a row visited), every connection of
    /// that age is marked stale and `op` runs again on a new one: after a server restart, the
    /// first call finds out, and neither it nor any later call fails for it.
    fn on_live_conn<T>(&self, op: impl FnMut(&mut PgConn, &mut bool) -> Result<T>) -> Result<T> {
        self.live_conn_for(op).map(|(out, _)| out)
    }

    /// [`PgEngine::on_live_conn`], also returning the connection `op` succeeded on.
    fn live_conn_for<T>(
        &self,
        mut op: impl FnMut(&mut PgConn, &mut bool) -> Result<T>,
    ) -> Result<(T, r2d2::PooledConnection<Connector>)> {
        let mut tries = 0;
        loop {
            let mut conn = self.conn()?;
            let mut acted = false;
            match op(&mut conn, &mut acted) {
                Ok(out) => return Ok((out, conn)),
                // A silent server: not run again (the pool drops what it had, `has_broken`).
                Err(e) if conn.client.timed_out() => return Err(e),
                Err(StorageError::Unreachable(_))
                    if !acted && conn.client.is_closed() && tries < POOL_SIZE =>
                {
                    // Every connection opened so far predates the server's going away.
                    conn.broken = true;
                    let now = self.next_serial.load(Ordering::SeqCst);
                    self.stale_before.fetch_max(now, Ordering::SeqCst);
                    tries += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Applies `batch` on `conn` in one round trip, inside the transaction `conn` has open
    /// (`begin` false) or as one of its own.
    fn apply(&self, conn: &mut PgConn, batch: WriteBatch, begin: bool) -> Result<()> {
        let announced = !batch.changed().is_empty();
        let sql = batch_sql(&self.url.schema, batch, begin);
        let applied = self.meters.write.time(|| conn.client.batch_execute(&sql));
        match applied {
            Ok(()) if announced => meters::count(meters::ANNOUNCEMENTS_SENT, 1),
            Ok(()) => {}
            // A failed statement leaves its transaction open and aborted: end it before the
            // pool hands `conn` out again.
            Err(_) => end_quietly(conn),
        }
        applied
    }
}

/// Ends whatever transaction `conn` has open; a connection that cannot is dropped by the pool.
fn end_quietly(conn: &mut PgConn) {
    if conn.client.batch_execute("ROLLBACK").is_err() {
        conn.broken = true;
    }
}

/// Returns `bytes` as a bytea literal, `'\x…'::bytea`.
fn hex_literal(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2 + 12);
    s.push_str("'\\x");
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s.push_str("'::bytea");
    s
}

/// Maps a PostgreSQL error: serialization failures and deadlocks are conflicts (run again), a
/// lost connection is [`StorageError::Unreachable`], a full disk keeps its kind.
fn pg_error(e: tokio_postgres::Error) -> StorageError {
    let message = match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    };
    let Some(code) = e.code() else {
        // No SQLSTATE: the connection failed, not a statement.
        return StorageError::Unreachable(message);
    };
    let class = &code.code()[..2];
    let kind = match code {
        c if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED => {
            return StorageError::Conflict(message);
        }
        // Connection exceptions and the server shutting down (a restart, a failover).
        _ if class == "08" || code.code().starts_with("57P") => {
            return StorageError::Unreachable(message);
        }
        c if *c == SqlState::DISK_FULL => EngineErrorKind::NoSpace,
        _ if class == "53" => EngineErrorKind::Busy,
        _ if class == "XX" => EngineErrorKind::Corruption,
        _ => EngineErrorKind::Other,
    };
    StorageError::Engine { kind, message }
}

fn pool_error(e: r2d2::Error) -> StorageError {
    // r2d2 says why the last connection failed: shown once, without its own prefix.
    let why = e.to_string().replace("store server unreachable: ", "");
    StorageError::Unreachable(format!(
        "no connection to the server within {} s ({why})",
        CONNECT_WAIT.as_secs()
    ))
}

impl EngineRead for PgEngine {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.on_live_conn(|c, _| self.meters.get.time(|| get_on(c, cf, key)))
    }

    fn scan(
        &self,
        cf: Cf,
        start: &[u8],
        end: Option<&[u8]>,
        visit: &mut Visitor<'_>,
    ) -> Result<()> {
        let scan = &self.meters.scan;
        self.on_live_conn(|c, acted| {
            scan.time(|| scan_on(c, cf, (start, end), false, (visit, acted)))
        })
    }

    fn scan_keys(
        &self,
        cf: Cf,
        start: &[u8],
        end: Option<&[u8]>,
        visit: &mut Visitor<'_>,
    ) -> Result<()> {
        let scan = &self.meters.scan;
        self.on_live_conn(|c, acted| {
            scan.time(|| scan_on(c, cf, (start, end), true, (visit, acted)))
        })
    }

    fn scan_spans(
        &self,
        cf: Cf,
        spans: &[(Vec<u8>, Vec<u8>)],
        visit: &mut SpansVisitor<'_>,
    ) -> Result<()> {
        let scan = &self.meters.scan;
        self.on_live_conn(|c, acted| scan.time(|| spans_on(c, cf, spans, (visit, acted))))
    }

    fn multi_get(&self, cf: Cf, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        multi_get_by_spans(self, cf, keys)
    }
}

impl PgEngine {
    /// Starts a transaction on a connection of the pool with `begin`.
    fn begin_with(&self, begin: &str) -> Result<PgTxn<'_>> {
        let begun =
            |c: &mut PgConn, _: &mut bool| self.meters.begin.time(|| c.client.batch_execute(begin));
        let ((), conn) = self.live_conn_for(begun)?;
        Ok(PgTxn {
            engine: self,
            conn: RefCell::new(Some(conn)),
        })
    }
}

impl Engine for PgEngine {
    type Txn<'e> = PgTxn<'e>;
    // A read-only transaction whose reads all see one snapshot; dropped, it is rolled back.
    type Snapshot<'e> = PgTxn<'e>;

    fn begin(&self) -> Result<PgTxn<'_>> {
        self.begin_with("BEGIN ISOLATION LEVEL SERIALIZABLE")
    }

    fn snapshot(&self) -> Result<PgTxn<'_>> {
        self.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    }

    fn write(&self, batch: WriteBatch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        self.apply(&mut *self.conn()?, batch, true)
    }

    fn sync(&self) -> Result<()> {
        // A commit returns once the server has it in its write-ahead log, flushed.
        Ok(())
    }

    fn server_time(&self) -> Result<i64> {
        self.on_live_conn(|c, _| {
            let row = c.client.query_one(SERVER_TIME, &[])?;
            Ok(row.get::<_, i64>(0))
        })
    }

    fn is_shared(&self) -> bool {
        true
    }

    fn settle(&self) -> Result<i64> {
        let sql = clock::settle_sql(&self.url.schema);
        self.on_live_conn(|c, _| Ok(c.client.query_one(sql.as_str(), &[])?.get::<_, i64>(0)))
    }

    fn wait_for_change(&self, timeout: Duration) -> Result<ChangesElsewhere> {
        let mut listener = self.listener.lock().unwrap_or_else(|e| e.into_inner());
        if listener.is_none() {
            let mut client = Client::connect(&self.url)?;
            client.batch_execute(&format!("LISTEN {}", channel(&self.url.schema)))?;
            *listener = Some(client);
            // Commits made before this LISTEN were not heard.
            return Ok(ChangesElsewhere::Anything);
        }
        let client = listener.as_mut().expect("made above");
        let notes = client.notifications(timeout);
        if let Ok(notes) = &notes {
            meters::count(meters::ANNOUNCEMENTS_HEARD, notes.len() as u64);
        }
        match notes {
            Ok(notes) => Ok((notes.iter()).fold(ChangesElsewhere::Nothing, |heard, n| {
                heard.hear(n.payload())
            })),
            Err(e) => {
                *listener = None; // Made again at the next wait, which then reports Anything.
                Err(e)
            }
        }
    }
}

/// A serializable transaction on one connection of the pool; dropped uncommitted, it is
/// rolled back.
pub struct PgTxn<'e> {
    engine: &'e PgEngine,
    conn: RefCell<Option<r2d2::PooledConnection<Connector>>>,
}

impl PgTxn<'_> {
    fn with_conn<T>(&self, op: impl FnOnce(&mut PgConn) -> Result<T>) -> Result<T> {
        // One connection answers one statement at a time: a read from inside a scan's visitor
        // is refused, not a panic.
        let mut conn = self
            .conn
            .try_borrow_mut()
            .map_err(|_| StorageError::Engine {
                kind: EngineErrorKind::NotSupported,
                message: "a read inside a scan of the same PostgreSQL transaction".into(),
            })?;
        let conn = conn
            .as_mut()
            .expect("a transaction has its connection until it ends");
        op(conn)
    }
}

impl EngineRead for PgTxn<'_> {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let get = &self.engine.meters.get;
        self.with_conn(|c| get.time(|| get_on(c, cf, key)))
    }

    fn scan(
        &self,
        cf: Cf,
        start: &[u8],
        end: Option<&[u8]>,
        visit: &mut Visitor<'_>,
    ) -> Result<()> {
        let scan = &self.engine.meters.scan;
        self.with_conn(|c| scan.time(|| scan_on(c, cf, (start, end), false, (visit, &mut true))))
    }

    fn scan_keys(
        &self,
        cf: Cf,
        start: &[u8],
        end: Option<&[u8]>,
        visit: &mut Visitor<'_>,
    ) -> Result<()> {
        let scan = &self.engine.meters.scan;
        self.with_conn(|c| scan.time(|| scan_on(c, cf, (start, end), true, (visit, &mut true))))
    }

    fn scan_spans(
        &self,
        cf: Cf,
        spans: &[(Vec<u8>, Vec<u8>)],
        visit: &mut SpansVisitor<'_>,
    ) -> Result<()> {
        let scan = &self.engine.meters.scan;
        self.with_conn(|c| scan.time(|| spans_on(c, cf, spans, (visit, &mut true))))
    }

    fn multi_get(&self, cf: Cf, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        multi_get_by_spans(self, cf, keys)
    }
}

impl EngineTxn for PgTxn<'_> {
    fn commit(self, batch: WriteBatch) -> Result<()> {
        let mut conn = self.conn.borrow_mut().take().expect("committed once");
        self.engine.apply(&mut conn, batch, false)
    }
}

impl Drop for PgTxn<'_> {
    fn drop(&mut self) {
        if let Some(mut conn) = self.conn.get_mut().take() {
            end_quietly(&mut conn);
        }
    }
}
