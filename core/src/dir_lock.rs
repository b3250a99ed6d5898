//! The exclusive lock a client holds on its `data_dir`.
//!
//! Two clients on one folder would each load the state, overwrite each other's changes and
//! send the queue twice. [`DataDirLock::acquire`] takes a `flock(2)` lock on
//! `<data_dir>/groupscope.lock` and keeps the file open for the client's life, so a second
//! client in this or another process fails at start instead.
//!
//! `flock` locks belong to the open file description, so a child created by `fork()` shares
//! its parent's lock through the inherited descriptor: `Client::reinit_after_fork` keeps
//! working, and the lock is released when the last process holding the descriptor closes it.
//! Releasing therefore only closes the file and never calls `LOCK_UN`, which would also
//! release the lock of the other process.

use std::fs::{File, OpenOptions};
use std::path::Path;

use crate::Error;

/// The lock file's name inside `data_dir`.
pub(crate) const LOCK_FILE_NAME: &str = "groupscope.lock";

/// An exclusive lock on a data directory, held until the value is dropped.
#[derive(Debug)]
pub(crate) struct DataDirLock {
    /// Kept open because closing the last descriptor releases the lock.
    _file: File,
}

impl DataDirLock {
    /// Creates `data_dir` if needed and locks it without waiting.
    ///
    /// # Errors
    /// [`Error::Storage`] naming the folder when another client holds the lock, or when the
    /// folder or the lock file cannot be created.
    pub(crate) fn acquire(data_dir: &Path) -> Result<DataDirLock, Error> {
        let path = data_dir.join(LOCK_FILE_NAME);
        crate::storage::create_data_dir(data_dir, &path)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::storage(&path, format!("cannot open the lock file: {e}")))?;

        match try_lock_exclusive(&file) {
            Ok(true) => Ok(DataDirLock { _file: file }),
            Ok(false) => Err(Error::storage(
                &path,
                format!(
                    "another client already uses the data_dir {}; give each client its own data_dir, or share one Client in the process",
                    data_dir.display()
                ),
            )),
            Err(e) => Err(Error::storage(
                &path,
                format!("cannot lock the data_dir {}: {e}", data_dir.display()),
            )),
        }
    }
}

/// Takes an exclusive `flock` without blocking. Returns `Ok(false)` when another open file
/// description has the lock.
#[cfg(unix)]
fn try_lock_exclusive(file: &File) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    use std::os::raw::c_int;

    // The values of LOCK_EX and LOCK_NB are the same on Linux, macOS, iOS, Android and the BSDs.
    const LOCK_EX: c_int = 2;
    const LOCK_NB: c_int = 4;
    unsafe extern "C" {
        fn flock(fd: c_int, operation: c_int) -> c_int;
    }

    loop {
        // SAFETY: `file` owns a valid open descriptor for the duration of the call, and flock
        // does not touch memory.
        if unsafe { flock(file.as_raw_fd(), LOCK_EX | LOCK_NB) } == 0 {
            return Ok(true);
        }
        let error = std::io::Error::last_os_error();
        match error.kind() {
            std::io::ErrorKind::Interrupted => continue,
            std::io::ErrorKind::WouldBlock => return Ok(false),
            _ => return Err(error),
        }
    }
}

/// NOTE: without `flock` the data directory is not locked, so two clients on one folder are
/// not detected on this platform.
#[cfg(not(unix))]
fn try_lock_exclusive(_file: &File) -> std::io::Result<bool> {
    Ok(true)
}
