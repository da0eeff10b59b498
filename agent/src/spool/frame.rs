//! Record framing in segment files: `len u32 LE | crc32 u32 LE | payload`,
//! where the payload is one protobuf `pantau.v1.Result` and the CRC covers it.

/// Header bytes before each payload.
pub const HEADER: usize = 8;
/// Largest payload accepted; anything larger is corruption.
pub const MAX_PAYLOAD: usize = 64 * 1024;

/// Frame a payload.
pub fn encode(payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// Outcome of reading one frame at the start of `buf`.
#[derive(Debug, PartialEq, Eq)]
pub enum Read<'a> {
    /// A good frame: payload and total bytes consumed.
    Frame(&'a [u8], usize),
    /// Not enough bytes for a whole frame (a torn write at the tail).
    Short,
    /// The bytes are not a frame.
    Corrupt,
}

/// Read one frame.
pub fn decode(buf: &[u8]) -> Read<'_> {
    if buf.len() < HEADER {
        return Read::Short;
    }
    let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    let crc = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
    if len == 0 || len > MAX_PAYLOAD {
        return Read::Corrupt;
    }
    let Some(payload) = buf.get(HEADER..HEADER + len) else {
        return Read::Short;
    };
    if crc32fast::hash(payload) != crc {
        return Read::Corrupt;
    }
    Read::Frame(payload, HEADER + len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_damage_is_detected() {
        let mut b = Vec::new();
        encode(b"hello", &mut b);
        encode(b"world!", &mut b);
        let Read::Frame(p, n) = decode(&b) else {
            panic!()
        };
        assert_eq!((p, n), (&b"hello"[..], 13));
        assert_eq!(decode(&b[n..]), Read::Frame(b"world!", 14));
        assert_eq!(decode(&b[n..n + 10]), Read::Short);
        let mut bad = b.clone();
        bad[10] ^= 0xff;
        assert_eq!(decode(&bad), Read::Corrupt);
        assert_eq!(decode(&[0xff; 16]), Read::Corrupt);
    }
}
