//! The S3 chunk store: chunks as objects `PREFIX/chunk/<blake3>` of a bucket, written with a
//! conditional put (two hosts storing one chunk never fail each other), read with one chunk of
//! read-ahead; S3's refusals as one line naming the cause. The only file (with its `owner`
//! module, the owner markers) that imports `object_store`; its async calls run on a small
//! runtime of this module's own.

mod owner;

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
    RetryConfig,
};

use super::{ChunkStore, Result, StorageError};
use crate::meters::RequestMeter;

pub use owner::{OWNERS, Owner};

/// Chunks fetched ahead of their reader, at most (each up to a chunk: bounded memory).
const READ_AHEAD: usize = 4;
/// How long one S3 request may take, from connecting to the last byte of its answer: a chunk
/// (1 MiB) moves in far less on any link a store is used over, and a silent server (stopped,
/// hung) fails it rather than the caller waiting for ever.
const REQUEST_LIMIT: Duration = Duration::from_secs(5);
/// How long connecting to S3 may take.
const CONNECT_LIMIT: Duration = Duration::from_secs(2);
/// A failed request (refused, reset, a 5xx) is tried again, after pauses from 100 ms growing
/// to under a second, up to [`RETRIES`] times while less than this has passed since its first
/// try: a server that is down fails a call after about 1.5 s, a silent one after one
/// [`REQUEST_LIMIT`] (a timed-out try is past the window), and no call lasts longer than the
/// window, a last pause and one more [`REQUEST_LIMIT`] (about 9 s).
const RETRY_WINDOW: Duration = Duration::from_secs(3);
/// How many times a failed request is tried again, at most.
const RETRIES: usize = 4;

/// Where a store's content lives in S3: `s3://BUCKET[/PREFIX]?endpoint=URL&region=NAME`.
/// Credentials come from the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`), never
/// from the URL, so the URL can be recorded in the store and shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Url {
    bucket: String,
    prefix: String,
    endpoint: Option<String>,
    region: String,
}

impl std::fmt::Display for S3Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}", self.bucket)?;
        if !self.prefix.is_empty() {
            write!(f, "/{}", self.prefix)?;
        }
        write!(f, "?region={}", self.region)?;
        if let Some(endpoint) = &self.endpoint {
            write!(f, "&endpoint={endpoint}")?;
        }
        Ok(())
    }
}

impl S3Url {
    /// Returns the S3 server this URL names: its endpoint, or AWS's for its region.
    pub fn server(&self) -> String {
        match &self.endpoint {
            Some(endpoint) => endpoint.clone(),
            None => format!("https://s3.{}.amazonaws.com", self.region),
        }
    }

    /// Parses a content URL. Parameters: `endpoint` (an S3-compatible server; `http://` is
    /// allowed for it), `region` (default `us-east-1`). Keys in the URL are refused.
    pub fn parse(url: &str) -> Result<S3Url> {
        let bad = |reason: &str| StorageError::BadUrl {
            url: url.split('?').next().unwrap_or(url).to_string(),
            reason: reason.to_string(),
        };
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| bad("a content URL starts with s3://"))?;
        let (place, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (bucket, prefix) = place.split_once('/').unwrap_or((place, ""));
        if bucket.is_empty() || bucket.contains(['@', ':']) {
            return Err(bad(
                "no bucket name (credentials go in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)",
            ));
        }
        let mut parsed = S3Url {
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
            endpoint: None,
            region: "us-east-1".to_string(),
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("endpoint", v)) => parsed.endpoint = Some(v.to_string()),
                Some(("region", v)) => parsed.region = v.to_string(),
                _ => return Err(bad("known parameters: endpoint, region")),
            }
        }
        Ok(parsed)
    }
}

/// Chunks in an S3 bucket.
pub struct S3Chunks {
    store: AmazonS3,
    url: S3Url,
    runtime: tokio::runtime::Runtime,
    // Chunks being fetched ahead of their reader, oldest first.
    ahead: Mutex<VecDeque<(String, FetchHandle)>>,
    // The store these chunks belong to, which `gc` checks the owner marker against.
    owner: Option<Owner>,
    meters: S3Meters,
}

/// The meters of the requests chunks make, by operation.
struct S3Meters {
    get: RequestMeter,
    put: RequestMeter,
    head: RequestMeter,
    delete: RequestMeter,
    list: RequestMeter,
}

impl S3Meters {
    fn new() -> Self {
        S3Meters {
            get: RequestMeter::s3("get"),
            put: RequestMeter::s3("put"),
            head: RequestMeter::s3("head"),
            delete: RequestMeter::s3("delete"),
            list: RequestMeter::s3("list"),
        }
    }
}

impl std::fmt::Debug for S3Chunks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Chunks").field("url", &self.url).finish()
    }
}

/// Maps an `object_store` error to one line naming its cause: the keys refused, no such
/// bucket, or the server not answering (never S3's XML).
fn s3_error(url: &S3Url, e: object_store::Error) -> StorageError {
    use object_store::Error as E;
    let text = e.to_string();
    let code = s3_code(&text);
    let (bucket, server) = (url.bucket.clone(), url.server());
    let refused = matches!(e, E::PermissionDenied { .. } | E::Unauthenticated { .. })
        || text.contains("status code: 403")
        || text.contains("status code: 401")
        || matches!(
            code.as_deref(),
            Some("SignatureDoesNotMatch" | "InvalidAccessKeyId" | "AccessDenied")
        );
    match code {
        Some(c) if c == "NoSuchBucket" => StorageError::NoBucket { bucket, server },
        code if refused => StorageError::S3Refused {
            bucket,
            server,
            code: code.unwrap_or_else(|| match text.contains("status code: 401") {
                true => "HTTP 401".to_string(),
                false => "HTTP 403".to_string(),
            }),
        },
        code => StorageError::Unreachable(format!(
            "S3 at {server} (bucket {bucket}): {}",
            s3_cause(&e, code, &text)
        )),
    }
}

/// Returns S3's error code in an error's text (`<Code>NoSuchBucket</Code>`), if any.
fn s3_code(text: &str) -> Option<String> {
    let (_, rest) = text.split_once("<Code>")?;
    let (code, _) = rest.split_once("</Code>")?;
    Some(code.trim().to_string())
}

/// Says in a few words why a request that was not refused failed: the connection, the
/// server's error code, or the first line of the error without any XML.
fn s3_cause(e: &object_store::Error, code: Option<String>, text: &str) -> String {
    use object_store::client::{HttpError, HttpErrorKind};
    let first: &(dyn std::error::Error + 'static) = e;
    let mut at = Some(first);
    let (mut http, mut innermost) = (None, first);
    while let Some(err) = at {
        if let Some(h) = err.downcast_ref::<HttpError>() {
            http = Some(h.kind());
        }
        innermost = err;
        at = err.source();
    }
    let why = innermost.to_string();
    let why = why.lines().next().unwrap_or("").trim();
    match (http, code) {
        (Some(HttpErrorKind::Connect), _) => format!("no connection ({why})"),
        (Some(HttpErrorKind::Timeout), _) => "no answer in time".to_string(),
        (Some(_), _) => format!("the connection failed ({why})"),
        (None, Some(code)) => format!("the server answered {code}"),
        (None, None) => {
            let plain = text.split('<').next().unwrap_or("");
            plain.split_whitespace().collect::<Vec<_>>().join(" ")
        }
    }
}

impl S3Chunks {
    /// Connects to the bucket of `url` (no request is made until the first call).
    pub fn open(url: &S3Url) -> Result<S3Chunks> {
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&url.bucket)
            .with_region(&url.region)
            .with_virtual_hosted_style_request(false)
            .with_retry(RetryConfig {
                backoff: BackoffConfig::default(),
                max_retries: RETRIES,
                retry_timeout: RETRY_WINDOW,
            })
            .with_client_options(
                ClientOptions::new()
                    .with_timeout(REQUEST_LIMIT)
                    .with_connect_timeout(CONNECT_LIMIT),
            );
        let from_env = std::env::var_os("AWS_ACCESS_KEY_ID").is_some();
        if let (false, Some((key, secret))) = (from_env, credentials_file()) {
            builder = builder
                .with_access_key_id(key)
                .with_secret_access_key(secret);
        }
        if let Some(endpoint) = &url.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        let store = builder.build().map_err(|e| StorageError::BadUrl {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("cronusfs-s3")
            .enable_all()
            .build()?;
        Ok(S3Chunks {
            store,
            url: url.clone(),
            runtime,
            ahead: Mutex::new(VecDeque::new()),
            owner: None,
            meters: S3Meters::new(),
        })
    }

    /// Names the store these chunks belong to: `gc` sweeps them only while the location's
    /// owner marker names it ([`ChunkStore::check_sweep`]).
    pub fn owned_by(mut self, owner: Owner) -> Self {
        self.owner = Some(owner);
        self
    }

    /// Returns the content URL.
    pub fn url(&self) -> &S3Url {
        &self.url
    }

    fn error(&self, e: object_store::Error) -> StorageError {
        s3_error(&self.url, e)
    }

    fn path(&self, key: &str) -> ObjectPath {
        match self.url.prefix.is_empty() {
            true => ObjectPath::from(key),
            false => ObjectPath::from(format!("{}/{key}", self.url.prefix)),
        }
    }

    fn ahead(&self) -> std::sync::MutexGuard<'_, VecDeque<(String, FetchHandle)>> {
        // The map only holds handles: nothing is half-updated by a panic.
        self.ahead.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Returns the keys of the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`, default
/// `~/.aws/credentials`), profile `AWS_PROFILE` (default `default`), as the AWS tools read it.
fn credentials_file() -> Option<(String, String)> {
    let path = match std::env::var_os("AWS_SHARED_CREDENTIALS_FILE") {
        Some(p) => std::path::PathBuf::from(p),
        None => std::path::PathBuf::from(std::env::var_os("HOME")?).join(".aws/credentials"),
    };
    let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".to_string());
    profile_keys(&std::fs::read_to_string(path).ok()?, &profile)
}

/// Returns the keys of `profile` in the text of a shared credentials file.
fn profile_keys(text: &str, profile: &str) -> Option<(String, String)> {
    let (mut inside, mut key, mut secret) = (false, None, None);
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = name.trim() == profile;
        } else if let (true, Some((k, v))) = (inside, line.split_once('=')) {
            match k.trim() {
                "aws_access_key_id" => key = Some(v.trim().to_string()),
                "aws_secret_access_key" => secret = Some(v.trim().to_string()),
                _ => {}
            }
        }
    }
    Some((key?, secret?))
}

type Fetched = Result<Option<Vec<u8>>, object_store::Error>;
type FetchHandle = tokio::task::JoinHandle<Fetched>;

/// Fetches `path` from `store`: its bytes, or `None` if there is no such object (a missing
/// bucket is an error).
async fn fetch(store: AmazonS3, path: ObjectPath, meter: RequestMeter) -> Fetched {
    let started = Instant::now();
    let fetched = match store.get(&path).await {
        Ok(got) => got.bytes().await.map(|b| Some(b.to_vec())),
        Err(e @ object_store::Error::NotFound { .. }) => match s3_code(&e.to_string()).as_deref() {
            Some("NoSuchBucket") => Err(e),
            _ => Ok(None),
        },
        Err(e) => Err(e),
    };
    meter.record(started, fetched.is_err());
    fetched
}

impl ChunkStore for S3Chunks {
    fn chunk_get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let prefetched = {
            let mut ahead = self.ahead();
            let at = ahead.iter().position(|(k, _)| k == key);
            at.and_then(|i| ahead.remove(i)).map(|(_, h)| h)
        };
        if let Some(handle) = prefetched {
            // A fetch ahead that had failed before it was wanted (S3 away then, and maybe
            // back now) is not the answer: the chunk is fetched again.
            let stale = handle.is_finished();
            match self.runtime.block_on(handle) {
                Ok(Ok(found)) => return Ok(found),
                Ok(Err(e)) if !stale => return Err(self.error(e)),
                Err(e) if !stale => {
                    return Err(StorageError::Unreachable(format!("S3 read-ahead: {e}")));
                }
                _ => {}
            }
        }
        (self.runtime)
            .block_on(fetch(
                self.store.clone(),
                self.path(key),
                self.meters.get.clone(),
            ))
            .map_err(|e| self.error(e))
    }

    fn chunk_put(&self, key: &str, bytes: &[u8], _defer_durability: bool) -> Result<()> {
        let options = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        let payload = PutPayload::from(bytes.to_vec());
        let path = self.path(key);
        let put = self.store.put_opts(&path, payload, options);
        let put = self.meters.put.time(|| self.runtime.block_on(put));
        match put {
            // Stored here, or by another writer before: the same key is the same bytes.
            Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => Ok(()),
            Err(object_store::Error::Precondition { .. }) => Ok(()),
            Err(e) => Err(self.error(e)),
        }
    }

    fn persist_chunks(&self) -> Result<()> {
        // A put returns once the object is stored.
        Ok(())
    }

    fn chunk_del(&self, key: &str) -> Result<u64> {
        let path = self.path(key);
        let head = (self.meters.head).time(|| self.runtime.block_on(self.store.head(&path)));
        let size = match head {
            Ok(meta) => meta.size,
            Err(object_store::Error::NotFound { .. }) => return Ok(0),
            Err(e) => return Err(self.error(e)),
        };
        let deleted = (self.meters.delete).time(|| self.runtime.block_on(self.store.delete(&path)));
        match deleted {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(size),
            Err(e) => Err(self.error(e)),
        }
    }

    fn chunk_keys(&self, prefix: &str) -> Result<Vec<String>> {
        let mut keys = Vec::new();
        self.visit_chunk_keys(prefix, &mut |key| {
            keys.push(key);
            Ok(true)
        })?;
        keys.sort();
        Ok(keys)
    }

    fn visit_chunk_keys(&self, prefix: &str, visit: &mut super::KeysVisitor<'_>) -> Result<()> {
        let base = self.path("");
        let skip = match base.as_ref().is_empty() {
            true => 0,
            false => base.as_ref().len() + 1,
        };
        let mut listed = self
            .store
            .list(Some(&self.path(prefix.trim_end_matches('/'))));
        // The listing's pages are visited as they come: a bucket of millions is never held.
        (self.meters.list).time(|| {
            self.runtime.block_on(async {
                while let Some(meta) = listed.try_next().await.map_err(|e| self.error(e))? {
                    let key = &meta.location.as_ref()[skip..];
                    if key.starts_with(prefix) && !visit(key.to_string())? {
                        break;
                    }
                }
                Ok(())
            })
        })
    }

    fn reclaim_chunk_space(&self) -> Result<()> {
        Ok(())
    }

    fn prefetch_chunk(&self, key: &str) {
        let mut ahead = self.ahead();
        if ahead.iter().any(|(k, _)| k == key) {
            return;
        }
        if ahead.len() >= READ_AHEAD {
            // The oldest fetch was for a reader that moved elsewhere: drop it.
            if let Some((_, stale)) = ahead.pop_front() {
                stale.abort();
            }
        }
        let handle = self.runtime.spawn(fetch(
            self.store.clone(),
            self.path(key),
            self.meters.get.clone(),
        ));
        ahead.push_back((key.to_string(), handle));
    }

    fn check_sweep(&self) -> Result<()> {
        let claimed = match &self.owner {
            Some(owner) => self.claim(owner),
            None => Err(StorageError::BadUrl {
                url: self.url.to_string(),
                reason: "no store is named as the owner of these chunks".to_string(),
            }),
        };
        claimed.map_err(|e| StorageError::SweepRefused(Box::new(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_from_the_profile_asked_for() {
        let text = "[default]\naws_access_key_id = A1\naws_secret_access_key=S1\n\
                    [bench]\naws_access_key_id=A2\n aws_secret_access_key = S2 \n";
        assert_eq!(
            profile_keys(text, "default"),
            Some(("A1".into(), "S1".into()))
        );
        assert_eq!(
            profile_keys(text, "bench"),
            Some(("A2".into(), "S2".into()))
        );
        assert_eq!(profile_keys(text, "none"), None);
    }

    /// An `object_store` error as a refused S3 request gives it: the status, then S3's XML.
    fn refusal(status: &str, code: &str) -> object_store::Error {
        let body = format!(
            "Server returned non-2xx status code: {status}: <?xml version=\"1.0\"?>\n\
             <Error><Code>{code}</Code>\n<Message>m</Message></Error>"
        );
        object_store::Error::Generic {
            store: "S3",
            source: Box::new(std::io::Error::other(body)),
        }
    }

    #[test]
    fn s3_refusals_read_as_one_line_naming_the_cause() {
        let url = S3Url::parse("s3://b/p?endpoint=http://h:1").unwrap();
        let keys = s3_error(&url, refusal("403 Forbidden", "SignatureDoesNotMatch"));
        assert!(matches!(keys, StorageError::S3Refused { .. }), "{keys:?}");
        assert_eq!(
            keys.to_string(),
            "S3 refused the keys for bucket b at http://h:1 (SignatureDoesNotMatch)"
        );
        let bucket = s3_error(&url, refusal("404 Not Found", "NoSuchBucket"));
        assert_eq!(bucket.to_string(), "no bucket b at http://h:1");
        let other = s3_error(&url, refusal("500 Internal Server Error", "InternalError"));
        let text = other.to_string();
        assert!(matches!(other, StorageError::Unreachable(_)), "{other:?}");
        assert!(!text.contains('\n') && !text.contains('<'), "{text}");
        assert!(text.contains("InternalError"), "{text}");
    }

    #[test]
    fn a_content_url_names_a_bucket_and_never_keys() {
        let url = S3Url::parse("s3://b/some/prefix/?endpoint=http://h:1&region=r").unwrap();
        assert_eq!(
            url.to_string(),
            "s3://b/some/prefix?region=r&endpoint=http://h:1"
        );
        assert_eq!(S3Url::parse(&url.to_string()).unwrap(), url);
        assert!(S3Url::parse("s3://AK:SK@b").is_err());
        assert!(S3Url::parse("s3://b?secret=x").is_err());
        assert!(S3Url::parse("http://b").is_err());
    }
}
