//! cronusfs: a content-addressed dataset metastore (Cronus) over a Synapse-style row store,
//! served as a filesystem. This file only declares the modules.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod fs;
pub mod fuse;
pub mod health;
pub mod meta;
pub mod meters;
pub mod pb;
pub mod storage;
