//! How a daemon of a shared store keeps what it read of the store (`CRONUSFS_CACHE_TTL_MS`),
//! how long the kernel keeps names and attributes, and how many members a listing reads at
//! once. The session itself is the library's (`cronusfs::meta::heartbeat`).

use std::time::Duration;

/// How long a daemon of a shared store keeps what it read of the store when it hears of no
/// change, by default: the fallback for a notification missed (a reconnect).
const CACHE_TTL_MS: u64 = 1000;

/// Returns how long a daemon of a shared store keeps what it read of the store when it hears
/// of no change (`CRONUSFS_CACHE_TTL_MS`, default 1 s).
pub fn cache_ttl() -> Duration {
    millis_from_env("CRONUSFS_CACHE_TTL_MS", CACHE_TTL_MS)
}

/// Returns how long the kernel may keep attributes and names (`CRONUSFS_ATTR_TTL_MS`,
/// default 1 s).
pub fn attr_ttl() -> Duration {
    millis_from_env("CRONUSFS_ATTR_TTL_MS", 1000)
}

/// Returns how many members of a job directory or folder a mount reads at once
/// (`CRONUSFS_LISTING_PAGE`, default [`cronusfs::fs::DEFAULT_LISTING_PAGE`]; at least 1).
pub fn listing_page() -> usize {
    let page = std::env::var("CRONUSFS_LISTING_PAGE").ok();
    let page = page.and_then(|v| v.parse().ok());
    page.unwrap_or(cronusfs::fs::DEFAULT_LISTING_PAGE).max(1)
}

fn millis_from_env(name: &str, default: u64) -> Duration {
    let ms = std::env::var(name).ok().and_then(|v| v.parse().ok());
    Duration::from_millis(ms.unwrap_or(default))
}
