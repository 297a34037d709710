//! Byte-level JSON writing shared by the dataset, the pre-rendered fragments
//! and the renderer: string literals escaped like Jackson, raw text, object
//! keys and Jira DC timestamps. A leaf module: it uses nothing of the crate.

/// Appends `s` as a JSON string literal (quotes included), escaping like Jackson.
pub fn write_json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if !NEEDS_ESCAPE[b as usize] {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 15) as usize]);
            }
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Bytes that need escaping inside a JSON string: controls, `"` and `\`.
static NEEDS_ESCAPE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// Appends `s` as is.
#[inline]
pub(crate) fn raw(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
}

/// A JSON string, or `null`.
pub(crate) fn opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => write_json_str(out, s),
        None => raw(out, "null"),
    }
}

/// Appends `2024-03-10T01:59:59.123-0500` (epoch ms in `tz`) without chrono's
/// format machinery (this is the renderer's hottest path).
pub fn write_ts(out: &mut Vec<u8>, tz: chrono_tz::Tz, ms: i64) {
    use chrono::{Datelike, Offset, TimeZone, Timelike};
    let Some(utc) = chrono::DateTime::from_timestamp_millis(ms) else {
        return;
    };
    let off = tz
        .offset_from_utc_datetime(&utc.naive_utc())
        .fix()
        .local_minus_utc();
    let local = utc.naive_utc() + chrono::Duration::seconds(off as i64);
    let mut b = [0u8; 28];
    let put = |b: &mut [u8; 28], at: usize, v: u32, width: usize| {
        let mut v = v;
        for k in (0..width).rev() {
            b[at + k] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(&mut b, 0, local.year().clamp(0, 9999) as u32, 4);
    b[4] = b'-';
    put(&mut b, 5, local.month(), 2);
    b[7] = b'-';
    put(&mut b, 8, local.day(), 2);
    b[10] = b'T';
    put(&mut b, 11, local.hour(), 2);
    b[13] = b':';
    put(&mut b, 14, local.minute(), 2);
    b[16] = b':';
    put(&mut b, 17, local.second(), 2);
    b[19] = b'.';
    put(&mut b, 20, ms.rem_euclid(1000) as u32, 3);
    b[23] = if off < 0 { b'-' } else { b'+' };
    let a = off.unsigned_abs() / 60;
    put(&mut b, 24, a / 60, 2);
    put(&mut b, 26, a % 60, 2);
    out.extend_from_slice(&b);
}

/// `"key":` (the key is written unescaped).
pub(crate) fn key_field(out: &mut Vec<u8>, key: &str) {
    out.push(b'"');
    raw(out, key);
    raw(out, "\":");
}
