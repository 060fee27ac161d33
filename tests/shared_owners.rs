//! Content locations and their owners (PostgreSQL + S3, `services.rs`): a store's `init`
//! claims its content location with an owner marker in the bucket, and refuses one another
//! store holds or one inside or around another store's; stores on sibling prefixes live side by
//! side and one's `gc` keeps the other's chunks; `gc` sweeps only while its marker names its
//! own store; an `init` that fails on S3 (wrong keys, no bucket, S3 down) leaves nothing and
//! says why in one line.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

use cronusfs::meta::{DatasetId, Metastore, ObjectPath};
use cronusfs::storage::ChunkStore;
use cronusfs::storage::location::{self, Location};
use cronusfs::storage::s3::{S3Chunks, S3Url};

const BIN: &str = env!("CARGO_BIN_EXE_cronusfs");

/// Runs `cronusfs ARGS…` with the test S3 keys and `env` on top.
fn cronusfs(args: &[&str], env: &[(&str, &str)]) -> Output {
    crate::services::use_s3_env();
    Command::new("timeout")
        .args(["120", BIN])
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// Asserts that `out` failed with one line on stderr containing each of `words`.
fn assert_one_line_error(out: &Output, words: &[&str]) {
    let said = stderr(out);
    assert!(!out.status.success(), "succeeded: {said}");
    assert_eq!(said.trim_end().lines().count(), 1, "not one line: {said}");
    for w in words {
        assert!(said.contains(w), "no {w:?} in: {said}");
    }
}

/// Returns a folder of the test bucket of this test's own (every location of the test is in
/// it, so no other test's store is inside or around them).
fn own_folder() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    format!("t{}_own_{n}", std::process::id())
}

/// Returns the content URL of `prefix` in the test bucket.
fn content_at(prefix: &str) -> String {
    let s3 = crate::services::seaweed();
    format!(
        "s3://{}/{prefix}?endpoint={}&region=us-east-1",
        s3.bucket, s3.endpoint
    )
}

/// Makes a store with its content at `content` through the CLI; returns its URL.
fn init(content: &str) -> String {
    let url = crate::services::pg_store_url();
    let out = cronusfs(&["init", &url, "--content", content], &[]);
    crate::mount::assert_success(&out);
    // What gc reclaims here, it reclaims at once: no history kept past the present.
    crate::mount::assert_success(&cronusfs(&["-s", &url, "history-retention", "0"], &[]));
    url
}

fn location(url: &str) -> Location {
    Location::parse(Path::new(url)).unwrap()
}

/// Asserts that nothing of a store is at `url`.
fn assert_no_store(url: &str) {
    assert!(
        !location::exists(&location(url)).unwrap(),
        "{url} holds a store"
    );
}

/// Returns the chunk store at content URL `content`.
fn s3_at(content: &str) -> S3Chunks {
    crate::services::use_s3_env();
    S3Chunks::open(&S3Url::parse(content).unwrap()).unwrap()
}

/// Returns the chunk keys stored at `content`.
fn chunks_at(content: &str) -> Vec<String> {
    s3_at(content).chunk_keys("chunk/").unwrap()
}

/// Returns the objects at `prefix` (a path of the bucket) as a chunk store: to read and
/// write owner markers and stray keys directly.
fn raw_at(prefix: &str) -> S3Chunks {
    s3_at(&content_at(prefix))
}

/// Puts an object of three chunks and a tail into the store at `url`; returns its path.
fn put_object(url: &str, seed: u8) -> ObjectPath {
    let m = open(url);
    let ds = DatasetId::random();
    m.create_dataset(ds).unwrap();
    m.add_partition(ds, "k").unwrap();
    let job = m.new_job(ds).unwrap();
    let path = ObjectPath::new(ds, "k", job, "f.bin");
    let bytes = crate::content::bytes(3 * cronusfs::meta::content::CHUNK_SIZE + 100, seed);
    m.put_object(&path, &mut &bytes[..], &mut |_| {}).unwrap();
    path
}

fn open(url: &str) -> Metastore<Box<dyn cronusfs::storage::Storage>> {
    crate::services::use_s3_env();
    let store = location::open(&location(url)).unwrap();
    Metastore::with_chunks(store.rows, store.chunks.expect("content in S3"))
}

#[test]
fn a_second_store_on_the_same_content_location_is_refused() {
    let folder = own_folder();
    let content = content_at(&folder);
    let first = init(&content);
    let second = crate::services::pg_store_url();
    let out = cronusfs(&["init", &second, "--content", &content], &[]);
    let holder = location(&first).to_string();
    assert_one_line_error(&out, &["is the content location of store", holder.as_str()]);
    assert_no_store(&second);
    // A location holding chunks without a marker (a store made before owner markers) is
    // refused too.
    put_object(&first, 6);
    let marker = raw_at(&format!("cronusfs-owners/{folder}"));
    assert!(marker.chunk_del("owner").unwrap() > 0);
    let third = crate::services::pg_store_url();
    let out = cronusfs(&["init", &third, "--content", &content], &[]);
    assert_one_line_error(&out, &["holds chunks but no owner marker"]);
    assert_no_store(&third);
}

#[test]
fn a_content_location_inside_or_around_another_store_s_is_refused() {
    // The case: a store keeps its chunks at `X/chunk/<h>`, another asks for `X/chunk`
    // (its chunks would be at `X/chunk/chunk/<h>`, where the first store's gc reclaims them).
    let outer = own_folder();
    let first = init(&content_at(&outer));
    let inside = crate::services::pg_store_url();
    let nested = content_at(&format!("{outer}/chunk"));
    let out = cronusfs(&["init", &inside, "--content", &nested], &[]);
    let holder = location(&first).to_string();
    assert_one_line_error(&out, &["is inside s3://", holder.as_str()]);
    assert_no_store(&inside);
    // The other way round: a store's location may not hold another's.
    let folder = own_folder();
    let deep = init(&content_at(&format!("{folder}/a/b")));
    let around = crate::services::pg_store_url();
    let out = cronusfs(&["init", &around, "--content", &content_at(&folder)], &[]);
    let held = location(&deep).to_string();
    assert_one_line_error(&out, &["holds s3://", held.as_str()]);
    assert_no_store(&around);
}

#[test]
fn stores_on_sibling_prefixes_live_side_by_side_and_one_s_gc_keeps_the_other_s_chunks() {
    let folder = own_folder();
    let (content_a, content_b) = (
        content_at(&format!("{folder}/a")),
        content_at(&format!("{folder}/data")),
    );
    let (a, b) = (init(&content_a), init(&content_b));
    // Each location's marker names its store.
    for (prefix, url) in [("a", &a), ("data", &b)] {
        let marker = raw_at(&format!("cronusfs-owners/{folder}/{prefix}"))
            .chunk_get("owner")
            .unwrap()
            .expect("an owner marker");
        let text = String::from_utf8(marker).unwrap();
        assert!(text.contains("store-id "), "{text}");
        assert!(text.contains(&location(url).to_string()), "{text}");
    }
    let gone = put_object(&a, 1);
    put_object(&a, 2);
    put_object(&b, 3);
    open(&a).delete_object(&gone).unwrap();
    let b_chunks = chunks_at(&content_b);
    assert_eq!(b_chunks.len(), 4);
    // A key deeper under A's chunk area (a nested store's chunk, as stores made before owner
    // markers could have put there) is not A's to reclaim.
    let stray = format!("chunk/chunk/{}", blake3::hash(b"stray").to_hex());
    raw_at(&format!("{folder}/a"))
        .chunk_put(&stray, b"stray", false)
        .unwrap();
    let gc = cronusfs(&["-s", &a, "gc"], &[]);
    crate::mount::assert_success(&gc);
    let said = String::from_utf8_lossy(&gc.stdout);
    assert!(said.starts_with("freed 1 contents, 4 chunks"), "{said}");
    assert_eq!(chunks_at(&content_b), b_chunks, "B's chunks are all there");
    let left = chunks_at(&content_a);
    assert!(left.contains(&stray), "{left:?}");
    assert_eq!(left.len(), 5, "A's live object and the stray key: {left:?}");
    for url in [&a, &b] {
        let fsck = cronusfs(&["-s", url, "fsck"], &[]);
        let said = String::from_utf8_lossy(&fsck.stdout);
        assert!(
            fsck.status.success() && said.starts_with("clean:"),
            "{said}"
        );
    }
}

#[test]
fn gc_sweeps_only_while_the_marker_names_its_own_store() {
    let folder = own_folder();
    let content = content_at(&folder);
    let url = init(&content);
    let markers = raw_at(&format!("cronusfs-owners/{folder}"));
    let gone = put_object(&url, 4);
    open(&url).delete_object(&gone).unwrap();
    // No marker (a store made before markers): gc claims the location, then sweeps.
    assert!(markers.chunk_del("owner").unwrap() > 0);
    let gc = cronusfs(&["-s", &url, "gc"], &[]);
    crate::mount::assert_success(&gc);
    assert!(chunks_at(&content).is_empty());
    let claimed = markers.chunk_get("owner").unwrap().expect("claimed by gc");
    assert!(
        String::from_utf8(claimed)
            .unwrap()
            .contains(&location(&url).to_string())
    );
    // A marker naming another store: gc refuses and deletes nothing.
    let gone = put_object(&url, 5);
    open(&url).delete_object(&gone).unwrap();
    markers.chunk_del("owner").unwrap();
    let other =
        "cronusfs content location owner\nstore-id someone-else\nstore postgres://elsewhere\n";
    markers.chunk_put("owner", other.as_bytes(), false).unwrap();
    let gc = cronusfs(&["-s", &url, "gc"], &[]);
    assert_one_line_error(
        &gc,
        &["gc deleted nothing", "someone-else", "postgres://elsewhere"],
    );
    assert_eq!(chunks_at(&content).len(), 4, "nothing deleted");
}

/// Runs an `init` that fails on S3 with `content` and `env`, checks its one line has
/// `words` and that it left nothing, then inits the same URL with the right settings.
fn failed_init_leaves_nothing(content: &str, env: &[(&str, &str)], words: &[&str]) {
    let url = crate::services::pg_store_url();
    let out = cronusfs(&["init", &url, "--content", content], env);
    assert_one_line_error(&out, words);
    assert_no_store(&url);
    let good = content_at(&own_folder());
    let out = cronusfs(&["init", &url, "--content", &good], &[]);
    crate::mount::assert_success(&out);
    let out = cronusfs(&["-s", &url, "fsck"], &[]);
    crate::mount::assert_success(&out);
}

#[test]
fn an_init_with_wrong_s3_keys_leaves_nothing_and_says_so() {
    let bucket = crate::services::seaweed().bucket.clone();
    let cause = format!("S3 refused the keys for bucket {bucket} at http://127.0.0.1:");
    failed_init_leaves_nothing(
        &content_at(&own_folder()),
        &[("AWS_SECRET_ACCESS_KEY", "not-the-secret")],
        &[cause.as_str()],
    );
}

#[test]
fn an_init_with_a_missing_bucket_leaves_nothing_and_says_so() {
    let s3 = crate::services::seaweed();
    let bucket = format!("cronusfs-missing-{}", std::process::id());
    let content = format!("s3://{bucket}/x?endpoint={}&region=us-east-1", s3.endpoint);
    let cause = format!("no bucket {bucket} at {}", s3.endpoint);
    failed_init_leaves_nothing(&content, &[], &[cause.as_str()]);
}

#[test]
fn an_init_with_s3_down_leaves_nothing_and_says_so() {
    let endpoint = format!("http://127.0.0.1:{}", crate::services::free_port());
    let content = format!("s3://cronusfs-test/x?endpoint={endpoint}&region=us-east-1");
    let cause = format!("S3 at {endpoint}");
    failed_init_leaves_nothing(&content, &[], &["unreachable", cause.as_str()]);
}
