//! Jira timestamps and dates, parsed by hand (no allocation, no format strings):
//! Jira writes `2024-03-10T01:59:59.123-0500`; we also accept `+05:30`, `Z`,
//! no fraction and 1–9 fraction digits. The result is the exact UTC instant.
//! A timestamp without an offset is refused: its instant is unknown.
//!
//! Also: the fast text-COPY spelling of instants and dates, so the encoder does
//! not go through chrono's format machinery for every row.

use chrono::{DateTime, NaiveDate, Utc};

#[inline]
fn digits<const N: usize>(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + N)?;
    let mut v = 0u32;
    for &c in s {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + u32::from(d);
    }
    Some(v)
}

fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i32, m: u32, d: u32) -> i64 {
    let y = i64::from(y) - i64::from(m <= 2);
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DD` at the start of `b`: (year, month, day), checked.
fn ymd(b: &[u8]) -> Option<(i32, u32, u32)> {
    let y = digits::<4>(b, 0)? as i32;
    let m = digits::<2>(b, 5)?;
    let d = digits::<2>(b, 8)?;
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return None;
    }
    Some((y, m, d))
}

/// Parses a Jira date-time with an offset into the exact UTC instant.
pub(crate) fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    let b = s.as_bytes();
    let (y, mo, d) = ymd(b)?;
    if !matches!(b.get(10), Some(b'T') | Some(b' ')) || b.get(13) != Some(&b':') {
        return None;
    }
    let h = digits::<2>(b, 11)?;
    let mi = digits::<2>(b, 14)?;
    if b.get(16) != Some(&b':') {
        return None;
    }
    let se = digits::<2>(b, 17)?;
    if h > 23 || mi > 59 || se > 59 {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0u32;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while let Some(c) = b.get(i).filter(|c| c.is_ascii_digit()) {
            if i - start < 9 {
                nanos = nanos * 10 + u32::from(c - b'0');
            }
            i += 1;
        }
        let n = i - start;
        if n == 0 {
            return None;
        }
        for _ in n..9 {
            nanos *= 10;
        }
    }
    let offset_secs: i64 = match b.get(i) {
        Some(b'Z') if b.len() == i + 1 => 0,
        Some(&sign @ (b'+' | b'-')) => {
            let rest = &b[i + 1..];
            let (oh, om) = match rest.len() {
                4 => (digits::<2>(rest, 0)?, digits::<2>(rest, 2)?),
                5 if rest[2] == b':' => (digits::<2>(rest, 0)?, digits::<2>(rest, 3)?),
                2 => (digits::<2>(rest, 0)?, 0),
                _ => return None,
            };
            if oh > 23 || om > 59 {
                return None;
            }
            let v = i64::from(oh * 3600 + om * 60);
            if sign == b'-' { -v } else { v }
        }
        _ => return None,
    };
    let local = days_from_civil(y, mo, d) * 86_400
        + i64::from(h) * 3600
        + i64::from(mi) * 60
        + i64::from(se);
    DateTime::from_timestamp(local - offset_secs, nanos)
}

/// Parses `YYYY-MM-DD` (nothing else) into a date.
pub(crate) fn parse_date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    if b.len() != 10 {
        return None;
    }
    let (y, m, d) = ymd(b)?;
    NaiveDate::from_ymd_opt(y, m, d)
}

/// A short ASCII rendering on the stack (timestamps and dates for COPY).
pub(crate) struct Stamp {
    buf: [u8; 32],
    len: usize,
}

impl Stamp {
    fn new() -> Self {
        Stamp {
            buf: [0; 32],
            len: 0,
        }
    }
    fn push(&mut self, b: u8) {
        self.buf[self.len] = b;
        self.len += 1;
    }
    fn push2(&mut self, v: u32) {
        self.push(b'0' + (v / 10 % 10) as u8);
        self.push(b'0' + (v % 10) as u8);
    }
    pub fn as_str(&self) -> &str {
        // Only ASCII digits and punctuation are ever pushed.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

/// `2024-03-10 06:59:59.123000+00`, exactly what `CopyRow::timestamp` writes;
/// `None` for years outside 0..=9999 (use `CopyRow::timestamp` then).
pub(crate) fn timestamp_text(t: DateTime<Utc>) -> Option<Stamp> {
    use chrono::{Datelike, Timelike};
    // The naive UTC value once: DateTime's accessors re-apply the offset each call.
    let t = t.naive_utc();
    let y = u32::try_from(t.year()).ok().filter(|y| *y <= 9999)?;
    let mut s = Stamp::new();
    s.push2(y / 100);
    s.push2(y % 100);
    s.push(b'-');
    s.push2(t.month());
    s.push(b'-');
    s.push2(t.day());
    s.push(b' ');
    s.push2(t.hour());
    s.push(b':');
    s.push2(t.minute());
    s.push(b':');
    s.push2(t.second());
    s.push(b'.');
    let micros = (t.nanosecond() / 1_000).min(999_999);
    s.push2(micros / 10_000);
    s.push2((micros / 100) % 100);
    s.push2(micros % 100);
    for b in *b"+00" {
        s.push(b);
    }
    Some(s)
}

/// `2024-03-10`; `None` for years outside 0..=9999.
pub(crate) fn date_text(d: NaiveDate) -> Option<Stamp> {
    use chrono::Datelike;
    let y = u32::try_from(d.year()).ok().filter(|y| *y <= 9999)?;
    let mut s = Stamp::new();
    s.push2(y / 100);
    s.push2(y % 100);
    s.push(b'-');
    s.push2(d.month());
    s.push(b'-');
    s.push2(d.day());
    Some(s)
}

/// Writes an optional timestamp column through the fast path.
pub(crate) fn put_ts(row: &mut crate::tables::CopyRow<'_>, t: Option<DateTime<Utc>>) {
    match t {
        None => {
            row.null();
        }
        Some(t) => match timestamp_text(t) {
            Some(s) => {
                row.timestamp_str(s.as_str());
            }
            None => {
                row.timestamp(t);
            }
        },
    }
}

/// Writes an optional date column through the fast path.
pub(crate) fn put_date(row: &mut crate::tables::CopyRow<'_>, d: Option<NaiveDate>) {
    match d {
        None => {
            row.null();
        }
        Some(d) => match date_text(d) {
            Some(s) => {
                row.date_str(s.as_str());
            }
            None => {
                row.date(d);
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::CopyRow;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn jira_forms() {
        assert_eq!(
            parse_datetime("2024-03-10T01:59:59.123-0500"),
            Some(utc("2024-03-10T06:59:59.123Z"))
        );
        assert_eq!(
            parse_datetime("2010-07-26T13:29:18.262+0200"),
            Some(utc("2010-07-26T11:29:18.262Z"))
        );
        assert_eq!(
            parse_datetime("2024-01-01T00:00:00+05:30"),
            Some(utc("2023-12-31T18:30:00Z"))
        );
        assert_eq!(
            parse_datetime("2024-01-01T00:00:00Z"),
            Some(utc("2024-01-01T00:00:00Z"))
        );
        assert_eq!(
            parse_datetime("2024-01-01T00:00:00.5Z"),
            Some(utc("2024-01-01T00:00:00.5Z"))
        );
        assert_eq!(
            parse_datetime("2024-01-01T00:00:00.123456789+00"),
            Some(utc("2024-01-01T00:00:00.123456789Z"))
        );
    }

    #[test]
    fn dst_offsets_on_both_sides_give_the_right_instants() {
        // US DST starts 2024-03-10 02:00 local: -0500 before, -0400 after.
        let before = parse_datetime("2024-03-10T01:59:59.999-0500").unwrap();
        let after = parse_datetime("2024-03-10T03:00:00.000-0400").unwrap();
        assert_eq!((after - before).num_milliseconds(), 1);
        // EU DST ends 2012-10-28 03:00 CEST: 02:30 occurs twice (+0200, then +0100).
        let first = parse_datetime("2012-10-28T02:30:00.000+0200").unwrap();
        let second = parse_datetime("2012-10-28T02:30:00.000+0100").unwrap();
        assert_eq!((second - first).num_minutes(), 60);
        assert_eq!(first, utc("2012-10-28T00:30:00Z"));
    }

    #[test]
    fn refuses_garbage() {
        for s in [
            "",
            "2024-03-10",
            "2024-03-10T01:59:59",
            "2024-03-10T01:59:59.123",
            "2024-02-30T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:00:00.Z",
            "2024-01-01T00:00:00Zjunk",
            "2024-01-01T00:00:00+2400",
            "2024-01-01T00:00:00+01:0",
            "2012-04-12 00:00:00.0",
            "yesterday",
            "2024-1-01T00:00:00Z",
        ] {
            assert_eq!(parse_datetime(s), None, "{s}");
        }
        assert!(parse_datetime("2024-02-29T00:00:00Z").is_some());
    }

    #[test]
    fn dates() {
        assert_eq!(
            parse_date("2012-04-13"),
            NaiveDate::from_ymd_opt(2012, 4, 13)
        );
        assert_eq!(parse_date("2012-04-31"), None);
        assert_eq!(parse_date("2012-04-13T00:00"), None);
        assert_eq!(parse_date("12-04-13"), None);
    }

    #[test]
    fn fast_spelling_equals_copyrow() {
        for s in [
            "2024-03-10T01:59:59.123-0500",
            "1999-12-31T23:59:59.999999+0000",
            "2000-01-01T00:00:00Z",
        ] {
            let t = parse_datetime(s).unwrap();
            let mut a = Vec::new();
            CopyRow::new(&mut a).timestamp(t);
            let mut b = Vec::new();
            put_ts(&mut CopyRow::new(&mut b), Some(t));
            assert_eq!(String::from_utf8(a).unwrap(), String::from_utf8(b).unwrap());
        }
        let d = NaiveDate::from_ymd_opt(2012, 4, 3).unwrap();
        let mut a = Vec::new();
        CopyRow::new(&mut a).date(d);
        let mut b = Vec::new();
        put_date(&mut CopyRow::new(&mut b), Some(d));
        assert_eq!(a, b);
    }
}
