//! The spool's small state file: epoch, ack watermark, counters and the
//! reserved sequence high-water mark. Written to a temporary file and
//! renamed, so it is either the old or the new version, never a mix.

use std::io::Write;
use std::path::Path;

/// Persistent spool counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Meta {
    /// Spool epoch.
    pub epoch: u64,
    /// Highest seq acknowledged by the collector.
    pub acked: u64,
    /// Results dropped in this epoch (spool full, too old, lost to corruption).
    pub dropped: u64,
    /// Corrupt bytes skipped in this epoch.
    pub corrupt_bytes: u64,
    /// Sequence numbers given up after corruption.
    pub seq_skipped: u64,
    /// Every seq up to this one may have been handed out.
    pub reserved: u64,
    /// Every seq up to this one was on disk (fsynced) and may have been sent.
    pub synced: u64,
    /// Sequence numbers at or below this were given up; never hand them out.
    pub floor: u64,
    /// Highest seq whose segment was evicted (spool full or too old) and
    /// already counted in `dropped`: recovery measures a gap before the
    /// first segment from `max(acked, evicted)`, so nothing is counted twice.
    pub evicted: u64,
}

/// File name inside the spool directory.
pub const FILE: &str = "spool.meta";

impl Meta {
    /// Parse `key=value` lines; `None` if anything is missing or malformed.
    pub fn parse(text: &str) -> Option<Meta> {
        let mut m = Meta::default();
        let mut seen = 0;
        for line in text.lines() {
            let (k, v) = line.split_once('=')?;
            let v: u64 = v.trim().parse().ok()?;
            match k.trim() {
                "epoch" => m.epoch = v,
                "acked" => m.acked = v,
                "dropped" => m.dropped = v,
                "corrupt_bytes" => m.corrupt_bytes = v,
                "seq_skipped" => m.seq_skipped = v,
                "reserved" => m.reserved = v,
                "synced" => m.synced = v,
                "floor" => m.floor = v,
                // Optional: files written before it existed lack it.
                "evicted" => {
                    m.evicted = v;
                    continue;
                }
                _ => continue,
            }
            seen += 1;
        }
        (seen == 8 && m.epoch != 0).then_some(m)
    }

    /// Render as `key=value` lines.
    pub fn render(&self) -> String {
        format!(
            "epoch={}\nacked={}\ndropped={}\ncorrupt_bytes={}\nseq_skipped={}\nreserved={}\nsynced={}\nfloor={}\nevicted={}\n",
            self.epoch,
            self.acked,
            self.dropped,
            self.corrupt_bytes,
            self.seq_skipped,
            self.reserved,
            self.synced,
            self.floor,
            self.evicted
        )
    }

    /// Read from `dir`; `None` when absent or unreadable.
    pub fn load(dir: &Path) -> Option<Meta> {
        Meta::parse(&std::fs::read_to_string(dir.join(FILE)).ok()?)
    }

    /// Replace the file atomically; with `durable`, fsync file and directory.
    pub fn store(&self, dir: &Path, durable: bool) -> std::io::Result<()> {
        let tmp = dir.join(format!("{FILE}.tmp"));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(self.render().as_bytes())?;
        if durable {
            f.sync_all()?;
        }
        std::fs::rename(&tmp, dir.join(FILE))?;
        if durable {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects_partial() {
        let m = Meta {
            epoch: 7,
            acked: 3,
            dropped: 1,
            corrupt_bytes: 9,
            seq_skipped: 2,
            reserved: 64,
            synced: 5,
            floor: 2,
            evicted: 11,
        };
        assert_eq!(Meta::parse(&m.render()), Some(m));
        // A file from before `evicted` existed still loads.
        let old = m.render().replace("evicted=11\n", "");
        assert_eq!(Meta::parse(&old), Some(Meta { evicted: 0, ..m }));
        assert_eq!(Meta::parse("epoch=7\nacked=3\n"), None);
        assert_eq!(Meta::parse("garbage"), None);
    }
}
