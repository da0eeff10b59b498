//! The durable spool: every result is appended to checksummed segment files
//! before it is sent, and removed only after the collector acknowledges it.
//!
//! - Bounded by bytes and by age; when over, the oldest segments are dropped
//!   and every dropped result is counted (reported in heartbeats).
//! - Only results already synced to disk are handed to the exporter, so a
//!   power cut can lose at most the unsynced tail (one fsync interval by
//!   default), and never a result the collector has seen.
//! - Recovery at start never fails on bad data: a torn or garbled tail is
//!   cut off and counted; sequence numbers up to the durable reservation are
//!   given up rather than reused, so the collector's dedupe can never swallow
//!   a new result.

pub mod frame;
pub mod lock;
pub mod meta;

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use pantau_proto::v1 as pb;
use prost::Message;
use tokio::sync::Notify;
use tracing::{error, warn};

use crate::model::{Observation, ProbeKind, Record, unix_ms};
use meta::Meta;

/// How often appended data is made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    /// fsync after every append: nothing is lost, slowest.
    Always,
    /// fsync at most this often: a power cut loses at most this window.
    Interval(Duration),
    /// Never fsync: the OS decides; a power cut can lose more.
    Never,
}

/// Spool settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolConfig {
    /// Directory holding segments and the meta file.
    pub dir: PathBuf,
    /// Most bytes kept on disk.
    pub max_bytes: u64,
    /// Oldest result kept.
    pub max_age: Duration,
    /// Durability policy.
    pub fsync: Fsync,
}

impl SpoolConfig {
    /// Segment size: an eighth of the cap, between 4 KiB and 8 MiB, so the
    /// drop granularity stays small relative to the cap.
    pub fn segment_bytes(&self) -> u64 {
        (self.max_bytes / 8).clamp(4096, 8 * 1024 * 1024)
    }
}

/// Counters describing the spool, sent in Hello and heartbeats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpoolState {
    /// Current epoch.
    pub epoch: u64,
    /// Lowest unacknowledged seq held, 0 when empty.
    pub first_seq: u64,
    /// Seq the next record gets.
    pub next_seq: u64,
    /// Unacknowledged records held.
    pub records: u64,
    /// Bytes on disk.
    pub bytes: u64,
    /// Results dropped in this epoch.
    pub dropped: u64,
    /// Corrupt bytes skipped in this epoch.
    pub corrupt_bytes: u64,
    /// Sequence numbers given up after corruption.
    pub seq_skipped: u64,
}

/// Why the spool cannot be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// The disk or directory failed.
    #[error("spool {path}: {op}: {source}")]
    Io {
        /// File or directory.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// Cause.
        source: std::io::Error,
    },
    /// Another process has the spool open: two writers would hand out the
    /// same sequence numbers to different results.
    #[error(
        "direktori spool {dir} sedang dipakai proses pantau-agent lain (misalnya layanan \
         pantau-agent). Hanya satu pantau-agent boleh memakai satu spool. Hentikan dulu yang \
         lain (`sudo systemctl stop pantau-agent`), atau jalankan dengan konfigurasi lain yang \
         memakai direktori spool dan token agen sendiri.\n\
         the spool directory {dir} is in use by another pantau-agent process (for example the \
         pantau-agent service). Only one pantau-agent may use a spool. Stop the other one first \
         (`sudo systemctl stop pantau-agent`), or run with another configuration that has its \
         own spool directory and agent token."
    )]
    InUse {
        /// The spool directory.
        dir: PathBuf,
    },
}

impl SpoolError {
    /// Whether another process holds the spool (retrying later may work).
    pub fn in_use(&self) -> bool {
        matches!(self, SpoolError::InUse { .. })
    }
}

fn err<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(std::io::Error) -> SpoolError + 'a {
    move |source| SpoolError::Io {
        path: path.to_path_buf(),
        op,
        source,
    }
}

/// What recovery found, for logs and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Valid records found.
    pub records: u64,
    /// Corrupt bytes cut off.
    pub corrupt_bytes: u64,
    /// Sequence numbers given up.
    pub seq_skipped: u64,
    /// Records lost in gaps between segments.
    pub lost: u64,
    /// Whether a new epoch was started.
    pub new_epoch: bool,
}

/// Reservation step: the meta file is fsynced once per this many seqs.
const RESERVE_BLOCK: u64 = 256;

#[derive(Debug)]
struct Segment {
    first: u64,
    /// Last seq in the segment (first - 1 when empty).
    last: u64,
    bytes: u64,
    newest_ms: i64,
    path: PathBuf,
}

impl Segment {
    fn unacked(&self, acked: u64) -> u64 {
        self.last
            .saturating_sub(acked.max(self.first.saturating_sub(1)))
    }
}

struct Inner {
    meta: Meta,
    next_seq: u64,
    durable_seq: u64,
    segments: VecDeque<Segment>,
    writer: Option<File>,
    dirty: bool,
    /// (seq of the next record at `offset`, segment first seq, offset).
    read_hint: Option<(u64, u64, u64)>,
    failed: bool,
    /// After a failed write the segment may end in a partial frame: start a new one.
    force_new: bool,
}

/// The durable spool shared by the scheduler and the exporter.
pub struct DiskSpool {
    cfg: SpoolConfig,
    inner: Mutex<Inner>,
    /// Held while the spool is open: one writer per directory.
    _lock: lock::SpoolLock,
    /// Woken when records become available to send.
    pub appended: Notify,
}

impl std::fmt::Debug for DiskSpool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskSpool")
            .field("dir", &self.cfg.dir)
            .field("state", &self.state())
            .finish()
    }
}

fn seg_name(first: u64) -> String {
    format!("seg-{first:020}.log")
}

fn parse_seg_name(name: &str) -> Option<u64> {
    name.strip_prefix("seg-")?
        .strip_suffix(".log")?
        .parse()
        .ok()
}

fn new_epoch() -> u64 {
    (rand::random::<u64>() >> 1) | 1
}

impl DiskSpool {
    /// Open the spool, recovering whatever is on disk. Bad data is cut off
    /// and counted, never fatal; only an unusable directory, or one another
    /// process has open ([`SpoolError::InUse`]), is an error.
    pub fn open(cfg: SpoolConfig) -> Result<(DiskSpool, Recovery), SpoolError> {
        let dir = cfg.dir.clone();
        std::fs::create_dir_all(&dir).map_err(err(&dir, "create directory"))?;
        // Before anything is read: recovery must not race a live writer.
        let held = match lock::SpoolLock::acquire(&dir) {
            Ok(l) => l,
            Err(lock::LockFailure::Busy) => return Err(SpoolError::InUse { dir }),
            Err(lock::LockFailure::Io(e)) => return Err(err(&dir, "lock directory")(e)),
        };
        let stored = Meta::load(&dir);
        let mut rec = Recovery::default();
        let mut names: Vec<(u64, PathBuf)> = std::fs::read_dir(&dir)
            .map_err(err(&dir, "list directory"))?
            .filter_map(|e| e.ok())
            .filter_map(|e| Some((parse_seg_name(e.file_name().to_str()?)?, e.path())))
            .collect();
        names.sort();

        let mut meta = stored.unwrap_or_default();
        let mut segments = VecDeque::new();
        // Below the first segment, everything up to the ack watermark was
        // delivered and everything up to `evicted` already counted as
        // dropped; a gap above both was cut (a deleted or set-aside first
        // segment) and is lost. Without a meta file nothing is known.
        let mut prev_last: Option<u64> = stored.map(|m| m.acked.max(m.evicted));
        let mut corrupt = false;
        for (first, path) in names {
            let scan = scan_segment(&path, first, meta.epoch);
            if scan.epoch_mismatch {
                // Data of another epoch (meta lost or replaced): not ours to resend under this epoch.
                warn!(path = %path.display(), "spool segment from another epoch; set aside");
                let _ = std::fs::rename(&path, path.with_extension("other-epoch"));
                continue;
            }
            if meta.epoch == 0
                && let Some(e) = scan.epoch
            {
                meta.epoch = e;
            }
            if scan.corrupt_bytes > 0 {
                corrupt = true;
                rec.corrupt_bytes += scan.corrupt_bytes;
                warn!(path = %path.display(), bytes = scan.corrupt_bytes, "corrupt spool tail cut off");
                if let Err(e) = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .and_then(|f| f.set_len(scan.good_len))
                {
                    error!(path = %path.display(), error = %e, "cannot truncate corrupt segment; set aside");
                    let _ = std::fs::rename(&path, path.with_extension("corrupt"));
                    continue;
                }
            }
            if scan.count == 0 {
                let _ = std::fs::remove_file(&path);
                continue;
            }
            if let Some(p) = prev_last
                && scan.first > p + 1
            {
                rec.lost += scan.first - p - 1;
            }
            prev_last = Some(scan.last);
            rec.records += scan.count;
            segments.push_back(Segment {
                first: scan.first,
                last: scan.last,
                bytes: scan.good_len,
                newest_ms: scan.newest_ms,
                path,
            });
        }
        if meta.epoch == 0 {
            meta = Meta {
                epoch: new_epoch(),
                ..Meta::default()
            };
            rec.new_epoch = true;
        }
        let last_good = segments
            .back()
            .map_or(meta.acked, |s| s.last.max(meta.acked));
        let mut next_seq = (last_good + 1).max(meta.floor + 1);
        // Records known to have been synced are missing: data was cut, not just an unsynced tail lost.
        corrupt |= meta.synced > last_good;
        if corrupt && meta.reserved >= next_seq {
            // Seqs in the cut-off tail may have reached the collector before a
            // garbling; never hand them out again.
            rec.seq_skipped = meta.reserved + 1 - next_seq;
            next_seq = meta.reserved + 1;
            meta.floor = meta.reserved;
        }
        meta.dropped += rec.lost;
        meta.corrupt_bytes += rec.corrupt_bytes;
        meta.seq_skipped += rec.seq_skipped;
        meta.reserved = meta.reserved.max(next_seq - 1);
        meta.synced = meta.synced.min(last_good);
        meta.store(&dir, true).map_err(err(&dir, "write meta"))?;
        let inner = Inner {
            meta,
            next_seq,
            durable_seq: next_seq - 1,
            segments,
            writer: None,
            dirty: false,
            read_hint: None,
            failed: false,
            force_new: false,
        };
        Ok((
            DiskSpool {
                cfg,
                inner: Mutex::new(inner),
                _lock: held,
                appended: Notify::new(),
            },
            rec,
        ))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Every mutation leaves the files consistent before it can panic.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Number an observation and append it. Returns its seq.
    pub fn append(&self, kind: Option<ProbeKind>, obs: Observation) -> u64 {
        let mut g = self.lock();
        let seq = g.next_seq;
        g.next_seq += 1;
        let observed_ms = unix_ms(obs.observed_at);
        let rec = Record {
            epoch: g.meta.epoch,
            seq,
            kind,
            obs,
        };
        let payload = pb::Result::from(&rec).encode_to_vec();
        let mut buf = Vec::with_capacity(payload.len() + frame::HEADER);
        frame::encode(&payload, &mut buf);
        if let Err(e) = self.write(&mut g, seq, &buf, observed_ms) {
            // The disk failed: the result cannot be kept. Count it so the gap
            // is declared (a later recovery may count the same gap again:
            // over-counting is the safe side).
            if !g.failed {
                error!(error = %e, "spool write failed; results are being dropped until the disk recovers");
            }
            g.failed = true;
            g.meta.dropped += 1;
            g.writer = None;
            g.force_new = true;
            let _ = g.meta.store(&self.cfg.dir, false);
        } else {
            g.failed = false;
        }
        self.enforce_bounds(&mut g);
        let durable = match self.cfg.fsync {
            Fsync::Always => self.sync(&mut g),
            Fsync::Never => {
                g.durable_seq = seq;
                true
            }
            Fsync::Interval(_) => false,
        };
        drop(g);
        if durable {
            self.appended.notify_one();
        }
        seq
    }

    fn write(
        &self,
        g: &mut Inner,
        seq: u64,
        buf: &[u8],
        observed_ms: i64,
    ) -> Result<(), SpoolError> {
        if seq > g.meta.reserved {
            g.meta.reserved = seq + RESERVE_BLOCK;
            g.meta
                .store(&self.cfg.dir, true)
                .map_err(err(&self.cfg.dir, "reserve sequence numbers"))?;
        }
        let need_new = g.force_new
            || match g.segments.back() {
                None => true,
                Some(s) => {
                    s.bytes >= self.cfg.segment_bytes() || g.writer.is_none() && s.last + 1 != seq
                }
            };
        if need_new {
            if g.dirty {
                self.sync(g);
            }
            let path = self.cfg.dir.join(seg_name(seq));
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(err(&path, "create segment"))?;
            g.segments.push_back(Segment {
                first: seq,
                last: seq - 1,
                bytes: 0,
                newest_ms: observed_ms,
                path,
            });
            g.writer = Some(f);
            g.force_new = false;
        } else if g.writer.is_none() {
            let path = g
                .segments
                .back()
                .map(|s| s.path.clone())
                .unwrap_or_default();
            g.writer = Some(
                OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .map_err(err(&path, "open segment"))?,
            );
        }
        let seg_path = g
            .segments
            .back()
            .map(|s| s.path.clone())
            .unwrap_or_default();
        g.writer
            .as_mut()
            .expect("writer set above")
            .write_all(buf)
            .map_err(err(&seg_path, "append"))?;
        let s = g.segments.back_mut().expect("segment set above");
        s.last = seq;
        s.bytes += buf.len() as u64;
        s.newest_ms = s.newest_ms.max(observed_ms);
        g.dirty = true;
        Ok(())
    }

    /// Make appended records durable and available to send.
    pub fn flush(&self) {
        let mut g = self.lock();
        let synced = self.sync(&mut g);
        drop(g);
        if synced {
            self.appended.notify_one();
        }
    }

    fn sync(&self, g: &mut Inner) -> bool {
        if !g.dirty {
            return false;
        }
        if let Some(w) = &g.writer
            && let Err(e) = w.sync_data()
        {
            error!(error = %e, "spool fsync failed");
            return false;
        }
        g.dirty = false;
        g.durable_seq = g.next_seq - 1;
        // Remember what may now be sent, so recovery can tell a cut in synced
        // data from a lost unsynced tail. Not fsynced: a stale value only
        // weakens that check, it never causes reuse of a sent seq.
        g.meta.synced = g.durable_seq;
        if let Err(e) = g.meta.store(&self.cfg.dir, false) {
            warn!(error = %e, "cannot update spool meta");
        }
        true
    }

    fn enforce_bounds(&self, g: &mut Inner) {
        let oldest_allowed = unix_ms(SystemTime::now()) - self.cfg.max_age.as_millis() as i64;
        loop {
            let total: u64 = g.segments.iter().map(|s| s.bytes).sum();
            let too_big = total > self.cfg.max_bytes;
            let too_old = g
                .segments
                .front()
                .is_some_and(|s| s.newest_ms < oldest_allowed);
            if !(too_big || too_old) || g.segments.len() < 2 {
                return;
            }
            let s = g.segments.pop_front().expect("len >= 2");
            let lost = s.unacked(g.meta.acked);
            g.meta.dropped += lost;
            g.meta.evicted = g.meta.evicted.max(s.last);
            if lost > 0 {
                warn!(
                    first = s.first,
                    last = s.last,
                    lost,
                    reason = if too_big { "spool full" } else { "too old" },
                    "dropping oldest spooled results"
                );
            }
            g.read_hint = None;
            // Counted durably before the file goes: recovery then measures
            // from `evicted` and never counts these results a second time.
            if g.meta.store(&self.cfg.dir, true).is_ok() {
                let _ = std::fs::remove_file(&s.path);
            }
        }
    }

    /// Durable records with seq above `after`, in order, at most `max`.
    pub fn after(&self, after: u64, max: usize) -> Vec<pb::Result> {
        let mut g = self.lock();
        let limit = g.durable_seq;
        let mut out = Vec::new();
        let mut cursor = after;
        let segs: Vec<(u64, u64, PathBuf)> = g
            .segments
            .iter()
            .filter(|s| s.last > cursor)
            .map(|s| (s.first, s.last, s.path.clone()))
            .collect();
        for (first, _last, path) in segs {
            if out.len() >= max || cursor >= limit {
                break;
            }
            let start = match g.read_hint {
                Some((seq, seg, off)) if seg == first && seq == cursor + 1 => off,
                _ => 0,
            };
            let Ok(f) = File::open(&path) else { continue };
            let mut r = std::io::BufReader::new(f);
            if r.seek(SeekFrom::Start(start)).is_err() {
                continue;
            }
            let mut pos = start;
            while out.len() < max {
                let Some((payload, n)) = read_frame(&mut r) else {
                    break;
                };
                let Ok(rec) = pb::Result::decode(payload.as_slice()) else {
                    break;
                };
                if rec.seq > limit {
                    break;
                }
                pos += n;
                if rec.seq > cursor {
                    cursor = rec.seq;
                    out.push(rec);
                }
            }
            g.read_hint = Some((cursor + 1, first, pos));
        }
        out
    }

    /// Forget every record of `epoch` up to `up_to`; deletes fully acked segments.
    pub fn ack(&self, epoch: u64, up_to: u64) {
        let mut g = self.lock();
        if epoch != g.meta.epoch || up_to <= g.meta.acked {
            return;
        }
        g.meta.acked = up_to.min(g.next_seq - 1);
        let mut done = Vec::new();
        while g.segments.len() > 1 && g.segments.front().is_some_and(|s| s.last <= g.meta.acked) {
            done.push(g.segments.pop_front().expect("checked").path);
        }
        // The watermark is on disk before any segment goes (durably when one
        // does), so recovery never mistakes a removed, acked segment for a
        // cut one and declares its results lost.
        if let Err(e) = g.meta.store(&self.cfg.dir, !done.is_empty()) {
            warn!(error = %e, "cannot record ack in spool meta; results may be resent (the collector ignores duplicates)");
            return;
        }
        for path in done {
            let _ = std::fs::remove_file(path);
        }
    }

    /// Current counters.
    pub fn state(&self) -> SpoolState {
        let g = self.lock();
        let acked = g.meta.acked;
        let records: u64 = g.segments.iter().map(|s| s.unacked(acked)).sum();
        let first_seq = g
            .segments
            .iter()
            .find(|s| s.last > acked)
            .map_or(0, |s| s.first.max(acked + 1));
        SpoolState {
            epoch: g.meta.epoch,
            first_seq,
            next_seq: g.next_seq,
            records,
            bytes: g.segments.iter().map(|s| s.bytes).sum(),
            dropped: g.meta.dropped,
            corrupt_bytes: g.meta.corrupt_bytes,
            seq_skipped: g.meta.seq_skipped,
        }
    }

    /// The spool directory.
    pub fn dir(&self) -> &Path {
        &self.cfg.dir
    }

    /// The durability policy.
    pub fn fsync_policy(&self) -> Fsync {
        self.cfg.fsync
    }
}

/// Read one whole, checksummed frame; `None` at the end or on damage.
fn read_frame(r: &mut impl std::io::Read) -> Option<(Vec<u8>, u64)> {
    let mut head = [0u8; frame::HEADER];
    r.read_exact(&mut head).ok()?;
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    if len == 0 || len > frame::MAX_PAYLOAD {
        return None;
    }
    let mut buf = head.to_vec();
    buf.resize(frame::HEADER + len, 0);
    r.read_exact(&mut buf[frame::HEADER..]).ok()?;
    match frame::decode(&buf) {
        frame::Read::Frame(p, n) => Some((p.to_vec(), n as u64)),
        _ => None,
    }
}

struct Scan {
    first: u64,
    last: u64,
    count: u64,
    good_len: u64,
    corrupt_bytes: u64,
    newest_ms: i64,
    epoch: Option<u64>,
    epoch_mismatch: bool,
}

/// Read a segment, stopping at the first bad frame.
fn scan_segment(path: &Path, named_first: u64, epoch: u64) -> Scan {
    let bytes = std::fs::read(path).unwrap_or_default();
    let mut s = Scan {
        first: named_first,
        last: named_first.saturating_sub(1),
        count: 0,
        good_len: 0,
        corrupt_bytes: 0,
        newest_ms: 0,
        epoch: None,
        epoch_mismatch: false,
    };
    let mut pos = 0usize;
    let mut expect = named_first;
    while pos < bytes.len() {
        let frame::Read::Frame(payload, n) = frame::decode(&bytes[pos..]) else {
            break;
        };
        let Ok(r) = pb::Result::decode(payload) else {
            break;
        };
        if r.seq != expect {
            break;
        }
        let want = if epoch != 0 { Some(epoch) } else { s.epoch };
        if want.is_some_and(|w| w != r.epoch) {
            s.epoch_mismatch = s.count == 0 && epoch != 0;
            break;
        }
        s.epoch = Some(r.epoch);
        let observed = r
            .observed_at
            .as_ref()
            .and_then(pantau_proto::millis_from_timestamp)
            .unwrap_or(0);
        s.newest_ms = s.newest_ms.max(observed);
        s.last = r.seq;
        s.count += 1;
        expect += 1;
        pos += n;
    }
    s.good_len = pos as u64;
    s.corrupt_bytes = (bytes.len() - pos) as u64;
    s
}

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;
