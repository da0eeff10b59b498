//! One writer per spool: an exclusive advisory lock (`flock`) on a file in
//! the spool directory, held as long as the spool is open.
//!
//! Two processes appending to one spool would hand out the same
//! (epoch, seq) to different results, and the collector can keep only one
//! of each. The kernel drops a `flock` when its holder exits, however it
//! exits (even `kill -9` or a crash), so a stale lock can never block a
//! restart and no lock file has to be cleaned up.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// Lock file name inside the spool directory.
pub const FILE: &str = "spool.lock";

/// An exclusive lock on a spool directory; released on drop or exit.
#[derive(Debug)]
pub struct SpoolLock {
    _file: Flock<File>,
    path: PathBuf,
}

/// Why the spool could not be locked.
#[derive(Debug)]
pub enum LockFailure {
    /// Another process holds the lock.
    Busy,
    /// The lock file could not be opened or locked.
    Io(std::io::Error),
}

impl SpoolLock {
    /// Take the lock on `dir` without waiting.
    pub fn acquire(dir: &Path) -> Result<SpoolLock, LockFailure> {
        let path = dir.join(FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(LockFailure::Io)?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(file) => Ok(SpoolLock { _file: file, path }),
            Err((_, Errno::EWOULDBLOCK)) => Err(LockFailure::Busy),
            Err((_, e)) => Err(LockFailure::Io(std::io::Error::from(e))),
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = SpoolLock::acquire(dir.path()).unwrap();
        assert!(matches!(
            SpoolLock::acquire(dir.path()),
            Err(LockFailure::Busy)
        ));
        drop(first);
        let again = SpoolLock::acquire(dir.path()).unwrap();
        assert_eq!(again.path(), dir.path().join(FILE));
    }
}
