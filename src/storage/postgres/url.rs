//! Store URLs of the PostgreSQL engine: `postgres://USER@HOST:PORT/DB?schema=NAME`, the
//! password from the URL, `PGPASSWORD` or the password file (libpq's rules), never shown.

use super::super::{Result, StorageError};
use super::client::CONNECT_LIMIT;

/// Where a PostgreSQL store lives: a `postgres://USER@HOST:PORT/DB?schema=NAME` URL. The
/// password comes from the URL or `PGPASSWORD`, and is never shown.
#[derive(Clone)]
pub struct PgUrl {
    pub(super) config: tokio_postgres::Config,
    pub(super) schema: String,
    pub(super) shown: String,
}

impl std::fmt::Debug for PgUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl std::fmt::Display for PgUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl PgUrl {
    /// Returns whether `s` names a PostgreSQL store (`postgres://` or `postgresql://`).
    pub fn is_pg_url(s: &str) -> bool {
        s.starts_with("postgres://") || s.starts_with("postgresql://")
    }

    /// Parses a store URL. `schema` (default `cronusfs`) is the PostgreSQL schema holding the
    /// store's tables, so that one database can hold several stores; every other parameter
    /// is PostgreSQL's own (`connect_timeout`, `application_name`, `sslmode=disable`…);
    /// `connect_timeout` (5 s unless given) bounds the whole connect, not only TCP's.
    pub fn parse(url: &str) -> Result<PgUrl> {
        let bad = |why: String| StorageError::BadUrl {
            url: redact(url),
            reason: why,
        };
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut schema = "cronusfs".to_string();
        let mut passed = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("schema", value)) => schema = value.to_string(),
                _ => passed.push(pair),
            }
        }
        check_schema(&schema).map_err(|why| bad(why.to_string()))?;
        let pg_url = match passed.is_empty() {
            true => base.to_string(),
            false => format!("{base}?{}", passed.join("&")),
        };
        let mut config: tokio_postgres::Config = pg_url.parse().map_err(|e| bad(format!("{e}")))?;
        if config.get_password().is_none() {
            let password = std::env::var("PGPASSWORD").ok();
            if let Some(password) = password.or_else(|| pgpass_password(&config)) {
                config.password(password);
            }
        }
        config.application_name("cronusfs");
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_LIMIT);
        }
        let shown = match query.contains("schema=") {
            true => redact(url),
            false => format!(
                "{}{}schema={schema}",
                redact(url),
                if query.is_empty() { "?" } else { "&" }
            ),
        };
        Ok(PgUrl {
            config,
            schema,
            shown,
        })
    }
}

/// Returns the password the password file (`PGPASSFILE`, default `~/.pgpass`) gives the
/// connection `config` describes, as libpq reads it: lines `host:port:db:user:password`, `*`
/// matching anything, `\:` and `\\` escaped; a file others can read is ignored.
fn pgpass_password(config: &tokio_postgres::Config) -> Option<String> {
    let path = match std::env::var_os("PGPASSFILE") {
        Some(p) => std::path::PathBuf::from(p),
        None => std::path::PathBuf::from(std::env::var_os("HOME")?).join(".pgpass"),
    };
    pgpass_lookup(config, &path)
}

/// [`pgpass_password`] with the file given.
fn pgpass_lookup(config: &tokio_postgres::Config, path: &std::path::Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    if std::fs::metadata(path).ok()?.mode() & 0o077 != 0 {
        return None;
    }
    let host = match config.get_hosts().first()? {
        tokio_postgres::config::Host::Tcp(h) => h.clone(),
        tokio_postgres::config::Host::Unix(_) => "localhost".to_string(),
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let user = config.get_user()?.to_string();
    let db = config.get_dbname().map_or(user.clone(), str::to_string);
    let wanted = [host, port, db, user];
    std::fs::read_to_string(path)
        .ok()?
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(pgpass_fields)
        .find(|f| f.len() == 5 && f[..4].iter().zip(&wanted).all(|(a, b)| a == "*" || a == b))
        .map(|f| f[4].clone())
}

/// Splits a password-file line at its unescaped colons.
fn pgpass_fields(line: &str) -> Vec<String> {
    let (mut fields, mut field, mut chars) = (Vec::new(), String::new(), line.chars());
    while let Some(c) = chars.next() {
        match c {
            '\\' => field.extend(chars.next()),
            ':' if fields.len() < 4 => fields.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    fields.push(field);
    fields
}

/// A schema name the store's SQL can hold without quoting: lower-case letters, digits, `_`.
fn check_schema(schema: &str) -> std::result::Result<(), &'static str> {
    let ok = !schema.is_empty()
        && schema.len() <= 63
        && !schema.starts_with(|c: char| c.is_ascii_digit())
        && schema
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    ok.then_some(())
        .ok_or("schema must be 1-63 of a-z, 0-9 and _, not starting with a digit")
}

/// Returns `url` with any password replaced by `***`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn the_password_file_is_read_as_libpq_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pgpass");
        std::fs::write(
            &file,
            "# comment\nother:5432:*:*:no\n127.0.0.1:5433:db:alice:wrong\n\
             127.0.0.1:*:db:alice:s\\:ecret\\\\1\n",
        )
        .unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let config: tokio_postgres::Config = "postgres://alice@127.0.0.1:5432/db".parse().unwrap();
        assert_eq!(pgpass_lookup(&config, &file).as_deref(), Some("s:ecret\\1"));
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(
            pgpass_lookup(&config, &file),
            None,
            "a file others can read is ignored"
        );
    }
}
