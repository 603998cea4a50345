//! Shared by the `app_*` tests: a temp SQLite database (and an executor state directory beside
//! it), removed on drop.
#![allow(dead_code)]

use std::path::PathBuf;

pub mod scenario;

/// A temp SQLite file for one test, with its WAL files and executor state directory removed on
/// drop.
pub struct TempDb(pub PathBuf);

impl TempDb {
    pub fn new(name: &str) -> TempDb {
        TempDb(
            std::env::temp_dir().join(format!("otakumori-app-{name}-{}.db", uuid::Uuid::new_v4())),
        )
    }

    pub fn url(&self) -> String {
        format!("sqlite://{}?mode=rwc", self.0.display())
    }

    /// The embedded executor's state directory, beside the database (never the default
    /// `./otakumori-executor`, which tests must not share).
    pub fn state_dir(&self) -> PathBuf {
        PathBuf::from(format!("{}-executor", self.0.display()))
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
        let _ = std::fs::remove_dir_all(self.state_dir());
    }
}
