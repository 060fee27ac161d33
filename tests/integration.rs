//! The one integration-test binary (one link step): the backend conformance suite for every
//! backend, model-based property tests, fault injection, RocksDB reopen/lock/crash tests, the
//! CLI and the man pages.

#[macro_use]
mod conformance;
mod access_log;
mod arrow_meta;
mod backends;
mod cli;
mod cli_catalog;
mod cli_naming;
mod content;
mod crash;
mod cronus_import;
mod cronus_io;
mod faults;
mod fs_attrs;
mod fs_core;
mod fs_dirs;
mod fs_links;
mod fs_renames;
mod fs_tools;
mod full_disk;
mod fuzz;
mod history;
mod history_mount;
mod history_paths;
mod history_restore;
mod man_pages;
mod metastore;
mod metrics;
mod model;
mod mount;
mod mount_daemon;
mod mount_trees;
mod mount_writers;
mod parquet_meta;
mod passthrough;
mod properties;
mod proto_compat;
mod python_clients;
mod query_views;
mod rocks_store;
mod services;
mod shared_gc;
mod shared_history;
mod shared_owners;
mod shared_sessions;
mod shared_silence;
mod shared_store;
mod trust;
mod trust_attack;
mod trust_cli;
mod trust_fsck;
mod trust_handles;
mod trust_names;
mod trust_views;
