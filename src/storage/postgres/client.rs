//! A connection to PostgreSQL whose every call has a deadline: connecting (TCP, startup and
//! authentication) within the URL's `connect_timeout` (5 s unless set), every statement
//! answered within [`STATEMENT_LIMIT`]. A server that accepts and never answers, or stops
//! answering (stopped, a lost network), fails the call with "PostgreSQL at HOST:PORT did not
//! answer within N s" instead of hanging it; the connection is closed then, its state unknown.
//! A thin synchronous layer over `tokio_postgres`, as the `postgres` crate is, with deadlines.

use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio_postgres::tls::NoTlsStream;
use tokio_postgres::types::ToSql;
use tokio_postgres::{AsyncMessage, Connection, NoTls, Notification, Row, Socket, ToStatement};

use super::super::{Result, StorageError};
use super::{PgUrl, pg_error};

/// How long connecting may take (TCP, startup and authentication) unless the URL's
/// `connect_timeout` says otherwise.
pub(super) const CONNECT_LIMIT: Duration = Duration::from_secs(5);
/// How long a statement may go unanswered: every statement of a store is small (a page of a
/// scan, a commit of one change), so a server silent this long is taken for gone.
pub(super) const STATEMENT_LIMIT: Duration = Duration::from_secs(30);
/// How long closing a connection may take (telling the server goodbye).
const CLOSE_LIMIT: Duration = Duration::from_millis(200);

/// One connection to the server.
pub struct Client {
    // Dropped before `link`: its end lets the connection tell the server goodbye.
    client: tokio_postgres::Client,
    link: Link,
}

/// The connection's I/O, driven while a call waits (as the `postgres` crate drives it).
struct Link {
    runtime: tokio::runtime::Runtime,
    // `None` once the connection has ended (closed, failed, or silent past a deadline).
    connection: Option<Connection<Socket, NoTlsStream>>,
    // `LISTEN` notifications received and not taken yet.
    notifications: VecDeque<Notification>,
    // The server as shown in errors: `HOST:PORT`.
    server: String,
    timed_out: bool,
}

/// The error of a call the server did not answer within `limit`.
fn silent(server: &str, limit: Duration) -> StorageError {
    StorageError::Unreachable(format!(
        "PostgreSQL at {server} did not answer within {} s",
        limit.as_secs().max(1)
    ))
}

/// Returns the (first) server `config` names, as `HOST:PORT`.
fn server_of(config: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let host = match (config.get_hosts().first(), config.get_hostaddrs().first()) {
        (Some(Host::Tcp(host)), _) => host.clone(),
        (Some(Host::Unix(dir)), _) => dir.display().to_string(),
        (None, Some(addr)) => addr.to_string(),
        (None, None) => "localhost".to_string(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}")
}

impl Client {
    /// Connects to the server of `url`, within its connect limit.
    pub fn connect(url: &PgUrl) -> Result<Client> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let limit = url
            .config
            .get_connect_timeout()
            .copied()
            .unwrap_or(CONNECT_LIMIT);
        let server = server_of(&url.config);
        let connecting = url.config.connect(NoTls);
        let connected = runtime.block_on(async { tokio::time::timeout(limit, connecting).await });
        let (client, connection) = match connected {
            Ok(done) => done.map_err(pg_error)?,
            Err(_) => return Err(silent(&server, limit)),
        };
        let link = Link {
            runtime,
            connection: Some(connection),
            notifications: VecDeque::new(),
            server,
            timed_out: false,
        };
        Ok(Client { client, link })
    }

    /// Returns whether the connection has ended: it takes no more calls.
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// Returns whether a call found the server silent past its deadline.
    pub fn timed_out(&self) -> bool {
        self.link.timed_out
    }

    /// Runs `query` (statements separated by `;`) with the simple query protocol.
    pub fn batch_execute(&mut self, query: &str) -> Result<()> {
        self.link.call(self.client.batch_execute(query))
    }

    /// Prepares statement `query`.
    pub fn prepare(&mut self, query: &str) -> Result<tokio_postgres::Statement> {
        self.link.call(self.client.prepare(query))
    }

    /// Runs `statement` and returns its rows.
    pub fn query<T>(&mut self, statement: &T, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>>
    where
        T: ?Sized + ToStatement,
    {
        self.link.call(self.client.query(statement, params))
    }

    /// Runs `statement`, which returns one row.
    pub fn query_one<T>(&mut self, statement: &T, params: &[&(dyn ToSql + Sync)]) -> Result<Row>
    where
        T: ?Sized + ToStatement,
    {
        self.link.call(self.client.query_one(statement, params))
    }

    /// Runs `statement`, which returns at most one row.
    pub fn query_opt<T>(
        &mut self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>>
    where
        T: ?Sized + ToStatement,
    {
        self.link.call(self.client.query_opt(statement, params))
    }

    /// Waits up to `timeout` for a notification (of a channel this connection `LISTEN`s
    /// on); returns every one received, none if the time passed.
    pub fn notifications(&mut self, timeout: Duration) -> Result<Vec<Notification>> {
        let Link {
            runtime,
            connection,
            notifications,
            ..
        } = &mut self.link;
        runtime.block_on(async {
            let mut until = pin!(tokio::time::sleep(timeout));
            poll_fn(|cx| {
                if let Err(e) = drive(connection, notifications, cx) {
                    return Poll::Ready(Err(pg_error(e)));
                }
                if !notifications.is_empty() || until.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Ok(()));
                }
                match connection {
                    Some(_) => Poll::Pending,
                    None => Poll::Ready(Err(StorageError::Unreachable(
                        "the server closed the connection".to_string(),
                    ))),
                }
            })
            .await
        })?;
        Ok(notifications.drain(..).collect())
    }
}

/// Polls `connection` until it waits, keeping the notifications it received; a connection
/// that ended is dropped (with its error, if it failed).
fn drive(
    connection: &mut Option<Connection<Socket, NoTlsStream>>,
    notifications: &mut VecDeque<Notification>,
    cx: &mut Context<'_>,
) -> std::result::Result<(), tokio_postgres::Error> {
    while let Some(conn) = connection.as_mut() {
        match conn.poll_message(cx) {
            Poll::Ready(Some(Ok(AsyncMessage::Notification(n)))) => notifications.push_back(n),
            // Notices ("schema … already exists, skipping").
            Poll::Ready(Some(Ok(_))) => {}
            Poll::Ready(Some(Err(e))) => {
                *connection = None;
                return Err(e);
            }
            Poll::Ready(None) => *connection = None,
            Poll::Pending => break,
        }
    }
    Ok(())
}

impl Link {
    /// Runs `call`, driving the connection, until it is answered or [`STATEMENT_LIMIT`]
    /// passes; then the connection is closed (whatever the server does later is not waited
    /// for) and the call fails.
    fn call<T>(
        &mut self,
        call: impl Future<Output = std::result::Result<T, tokio_postgres::Error>>,
    ) -> Result<T> {
        let Link {
            runtime,
            connection,
            notifications,
            ..
        } = self;
        let answered = runtime.block_on(async {
            let mut call = pin!(call);
            let mut deadline = pin!(tokio::time::sleep(STATEMENT_LIMIT));
            poll_fn(|cx| {
                if let Err(e) = drive(connection, notifications, cx) {
                    return Poll::Ready(Some(Err(e)));
                }
                if let Poll::Ready(out) = call.as_mut().poll(cx) {
                    return Poll::Ready(Some(out));
                }
                deadline.as_mut().poll(cx).map(|()| None)
            })
            .await
        });
        match answered {
            Some(out) => out.map_err(pg_error),
            None => {
                self.timed_out = true;
                self.connection = None;
                Err(silent(&self.server, STATEMENT_LIMIT))
            }
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // The client is gone (dropped first): the connection sends its goodbye (Terminate)
        // and closes. Both are local writes, so a silent server cannot hold them up.
        let Some(mut connection) = self.connection.take() else {
            return;
        };
        let closed = poll_fn(|cx| {
            loop {
                match connection.poll_message(cx) {
                    Poll::Ready(Some(Ok(_))) => continue,
                    Poll::Ready(_) => return Poll::Ready(()),
                    Poll::Pending => return Poll::Pending,
                }
            }
        });
        let _ = self
            .runtime
            .block_on(async { tokio::time::timeout(CLOSE_LIMIT, closed).await });
    }
}
