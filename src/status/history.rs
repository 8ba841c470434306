//! The last hour of each numeric measurement per meter, in memory only (no database writes):
//! [`BUCKETS`] buckets of [`BUCKET_S`] seconds, the last value of each bucket, as `f32`.
//! A series costs 480 bytes plus its key; a meter keeps at most [`MAX_SERIES`].

use std::collections::BTreeMap;

pub const BUCKET_S: i64 = 30;
pub const BUCKETS: usize = 120;
pub const MAX_SERIES: usize = 32;

#[derive(Debug, Clone)]
pub struct Series {
    /// The newest bucket number (Unix seconds / BUCKET_S).
    newest: i64,
    values: Box<[f32; BUCKETS]>,
}

impl Series {
    fn new() -> Series {
        Series {
            newest: i64::MIN,
            values: Box::new([f32::NAN; BUCKETS]),
        }
    }

    fn slot(bucket: i64) -> usize {
        bucket.rem_euclid(BUCKETS as i64) as usize
    }

    pub fn record(&mut self, ts_ms: i64, value: f64) {
        let bucket = ts_ms.div_euclid(1000 * BUCKET_S);
        if self.newest == i64::MIN || bucket - self.newest >= BUCKETS as i64 {
            self.values.fill(f32::NAN);
            self.newest = bucket;
        } else if bucket > self.newest {
            for b in self.newest + 1..=bucket {
                self.values[Self::slot(b)] = f32::NAN;
            }
            self.newest = bucket;
        } else if self.newest - bucket >= BUCKETS as i64 {
            return;
        }
        self.values[Self::slot(bucket)] = value as f32;
    }

    /// (bucket start in Unix ms, value) for the buckets of the hour before `now_ms`.
    pub fn points(&self, now_ms: i64) -> Vec<(i64, f32)> {
        if self.newest == i64::MIN {
            return Vec::new();
        }
        let now_bucket = now_ms.div_euclid(1000 * BUCKET_S);
        let first = (now_bucket - BUCKETS as i64 + 1).max(self.newest - BUCKETS as i64 + 1);
        (first..=self.newest.min(now_bucket))
            .filter_map(|b| {
                let v = self.values[Self::slot(b)];
                (!v.is_nan()).then_some((b * BUCKET_S * 1000, v))
            })
            .collect()
    }
}

/// One meter's series by telemetry key.
#[derive(Debug, Clone, Default)]
pub struct MeterHistory {
    pub series: BTreeMap<String, Series>,
}

impl MeterHistory {
    /// Records the numeric values of a reading (others are not charted).
    pub fn record(&mut self, ts_ms: i64, values: &serde_json::Map<String, serde_json::Value>) {
        for (key, v) in values {
            let Some(x) = v.as_f64() else { continue };
            if !self.series.contains_key(key) && self.series.len() >= MAX_SERIES {
                continue;
            }
            self.series
                .entry(key.clone())
                .or_insert_with(Series::new)
                .record(ts_ms, x);
        }
    }

    pub fn to_json(&self, now_ms: i64) -> serde_json::Value {
        let series: serde_json::Map<String, serde_json::Value> = self
            .series
            .iter()
            .map(|(k, s)| {
                let points: Vec<serde_json::Value> = s
                    .points(now_ms)
                    .into_iter()
                    // The shortest decimal that reads back as the f32 (20.31, not 20.309999465942383).
                    .map(|(t, v)| {
                        serde_json::json!([t, v.to_string().parse::<f64>().unwrap_or(0.0)])
                    })
                    .collect();
                (k.clone(), serde_json::Value::Array(points))
            })
            .collect();
        serde_json::json!({"bucket_s": BUCKET_S, "series": series})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_hour_of_buckets_last_value_wins_old_ones_fall_out() {
        let mut s = Series::new();
        let t0 = 1_800_000_000_000i64;
        s.record(t0, 1.0);
        s.record(t0 + 1_000, 2.0);
        s.record(t0 + 31_000, 3.0);
        let p = s.points(t0 + 31_000);
        assert_eq!(p.iter().map(|x| x.1).collect::<Vec<_>>(), [2.0, 3.0]);
        assert_eq!(p[1].0 - p[0].0, BUCKET_S * 1000);
        // An hour later the first two are gone; a late value for a gone bucket is ignored.
        s.record(t0 + 3_600_000, 4.0);
        s.record(t0, 9.0);
        let values: Vec<f32> = s.points(t0 + 3_600_000).iter().map(|x| x.1).collect();
        assert_eq!(values, [3.0, 4.0]);
        // Read later without new values: only what is within the hour.
        assert!(s.points(t0 + 3 * 3_600_000).is_empty());
        // A gap of more than an hour starts over.
        s.record(t0 + 10 * 3_600_000, 5.0);
        assert_eq!(s.points(t0 + 10 * 3_600_000).len(), 1);
    }

    #[test]
    fn only_numbers_and_at_most_max_series() {
        let mut h = MeterHistory::default();
        let mut m = serde_json::Map::new();
        m.insert("text".into(), "x".into());
        for i in 0..MAX_SERIES + 3 {
            m.insert(format!("k{i:02}"), (i as f64).into());
        }
        h.record(0, &m);
        assert_eq!(h.series.len(), MAX_SERIES);
        assert!(!h.series.contains_key("text"));
    }
}
