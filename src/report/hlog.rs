//! `latency.hlog`: the acquire latencies (µs) as an HdrHistogram interval
//! log, one compressed histogram per interval, readable by the standard
//! HdrHistogram tools (HistogramLogProcessor, hdr-plot, ...).

use std::io;
use std::time::{Duration, SystemTime};

use hdrhistogram::Histogram;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};

use crate::metrics::RunResult;

/// The log's bytes.
pub fn render(r: &RunResult) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut ser = V2DeflateSerializer::new();
    let mut builder = IntervalLogWriterBuilder::new();
    builder
        .add_comment(&format!(
            "lockstorm {} acquire latency (microseconds), scenario {}, {}:{}",
            env!("CARGO_PKG_VERSION"),
            r.scenario_name,
            r.backend_kind,
            r.backend_variant
        ))
        .with_start_time(SystemTime::UNIX_EPOCH)
        .with_base_time(SystemTime::UNIX_EPOCH);
    let mut w = builder
        .begin_log_with(&mut out, &mut ser)
        .map_err(io::Error::other)?;
    let tag = Tag::new("acquire");
    let mut de = Deserializer::new();
    for iv in &r.interval_histograms {
        let h: Histogram<u64> = de
            .deserialize(&mut iv.encoded.as_slice())
            .map_err(|e| io::Error::other(format!("{e:?}")))?;
        w.write_histogram(
            &h,
            Duration::from_secs_f64(iv.start_s),
            Duration::from_secs_f64(iv.duration_s),
            tag,
        )
        .map_err(|e| io::Error::other(format!("{e:?}")))?;
    }
    drop(w);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};

    #[test]
    fn round_trips_through_the_standard_reader() {
        let bytes = super::render(&crate::report::fixture::result()).unwrap();
        let mut hists = 0;
        for e in IntervalLogIterator::new(&bytes) {
            if let LogEntry::Interval(i) = e.unwrap() {
                assert_eq!(i.tag().unwrap().as_str(), "acquire");
                assert_eq!(i.duration().as_secs(), 1);
                let mut de = hdrhistogram::serialization::Deserializer::new();
                let decoded = base64_decode(i.encoded_histogram());
                let h: hdrhistogram::Histogram<u64> =
                    de.deserialize(&mut decoded.as_slice()).unwrap();
                assert_eq!(h.len(), 2);
                assert_eq!(h.max(), h.highest_equivalent(900));
                hists += 1;
            }
        }
        assert_eq!(hists, 1);
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.contains("#[StartTime:"));
    }

    fn base64_decode(s: &str) -> Vec<u8> {
        // Minimal standard-alphabet decoder for the test only.
        let mut out = Vec::new();
        let mut buf = 0u32;
        let mut bits = 0;
        for c in s.bytes() {
            let v = match c {
                b'A'..=b'Z' => c - b'A',
                b'a'..=b'z' => c - b'a' + 26,
                b'0'..=b'9' => c - b'0' + 52,
                b'+' => 62,
                b'/' => 63,
                _ => continue,
            };
            buf = (buf << 6) | u32::from(v);
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((buf >> bits) as u8);
            }
        }
        out
    }
}
