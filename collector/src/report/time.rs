//! Time units and calendar arithmetic shared by the rollups, the report
//! sections and the pages (kept apart so those modules need not import each
//! other for a constant).

/// One hour, ms.
pub const HOUR_MS: i64 = 3_600_000;
/// One day, ms.
pub const DAY_MS: i64 = 86_400_000;

/// Start of the UTC hour containing `ms`.
pub fn hour_of(ms: i64) -> i64 {
    ms.div_euclid(HOUR_MS) * HOUR_MS
}

/// Start (UTC ms) of the local day containing `ms`.
pub fn day_of(ms: i64, offset_min: i64) -> i64 {
    let off = offset_min * 60_000;
    (ms + off).div_euclid(DAY_MS) * DAY_MS - off
}
