//! The Prometheus remote-write 1.0 wire format: a protobuf `WriteRequest`,
//! snappy block-compressed. Only the messages and fields Pantau sends are
//! defined (field numbers as in Prometheus' `prompb/types.proto` and
//! `remote.proto`); metadata, exemplars and native histograms are not used.

use prost::Message;

/// `prometheus.WriteRequest`.
#[derive(Clone, PartialEq, Message)]
pub struct WriteRequest {
    /// Series with their samples.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// `prometheus.TimeSeries`.
#[derive(Clone, PartialEq, Message)]
pub struct TimeSeries {
    /// Labels, including `__name__`, sorted by name.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// Samples, oldest first.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

/// `prometheus.Label`.
#[derive(Clone, PartialEq, Message)]
pub struct Label {
    /// Label name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Label value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `prometheus.Sample`.
#[derive(Clone, PartialEq, Message)]
pub struct Sample {
    /// Value.
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// The HTTP body: the encoded request, snappy block format (not framed).
pub fn body(req: &WriteRequest) -> Vec<u8> {
    let raw = req.encode_to_vec();
    snap::raw::Encoder::new()
        .compress_vec(&raw)
        .expect("snappy compresses any input below 4 GiB")
}

/// Why a body could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not snappy block format.
    #[error("snappy: {0}")]
    Snappy(#[from] snap::Error),
    /// Not a `WriteRequest`.
    #[error("protobuf: {0}")]
    Protobuf(#[from] prost::DecodeError),
}

/// Decode a body (tests and diagnostics).
pub fn decode(body: &[u8]) -> Result<WriteRequest, DecodeError> {
    let raw = snap::raw::Decoder::new().decompress_vec(body)?;
    Ok(WriteRequest::decode(raw.as_slice())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_round_trips_and_matches_the_prometheus_field_layout() {
        let req = WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![Label {
                    name: "__name__".into(),
                    value: "up".into(),
                }],
                samples: vec![Sample {
                    value: 1.0,
                    timestamp: 1_700_000_000_123,
                }],
            }],
        };
        let b = body(&req);
        assert_eq!(decode(&b).unwrap(), req);
        // Hand-encoded protobuf of the same request, as Prometheus' prompb
        // would write it: timeseries(1){labels(1){name(1) value(2)} samples(2){value(1) timestamp(2)}}.
        let mut ts = Vec::new();
        let mut t = 1_700_000_000_123u64;
        while t >= 0x80 {
            ts.push((t as u8 & 0x7f) | 0x80);
            t >>= 7;
        }
        ts.push(t as u8);
        let mut label = vec![0x0a, 8];
        label.extend_from_slice(b"__name__");
        label.extend_from_slice(&[0x12, 2]);
        label.extend_from_slice(b"up");
        let mut sample = vec![0x09];
        sample.extend_from_slice(&1.0f64.to_le_bytes());
        sample.push(0x10);
        sample.extend_from_slice(&ts);
        let mut series = vec![0x0a, label.len() as u8];
        series.extend_from_slice(&label);
        series.extend_from_slice(&[0x12, sample.len() as u8]);
        series.extend_from_slice(&sample);
        let mut want = vec![0x0a, series.len() as u8];
        want.extend_from_slice(&series);
        assert_eq!(req.encode_to_vec(), want);
        let raw = snap::raw::Decoder::new().decompress_vec(&b).unwrap();
        assert_eq!(raw, want);
    }
}
