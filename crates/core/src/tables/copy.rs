//! The text-COPY row encoder ([`CopyRow`]) and its inverse, used by the
//! transform's table writers, `replay --dry-run` and tests.

use chrono::{DateTime, NaiveDate, Utc};

use super::{PgType, TableSpec};

/// The character that replaces NUL (U+0000), which PostgreSQL `text` cannot store.
pub const NUL_REPLACEMENT: char = '\u{FFFD}';

/// Builds rows in PostgreSQL's text COPY format into a byte buffer.
///
/// Call one method per column in the spec's order, then [`CopyRow::end`].
/// Text is escaped (`\\`, tab, newline, CR, backspace, form feed, vertical tab)
/// and NUL becomes U+FFFD; `None` is written as `\N`.
///
/// A row made with [`CopyRow::of`] is bound to its table: in debug builds
/// every value is checked against its column (type, nullability) and
/// [`CopyRow::end`] checks the row has every column. Release builds check
/// nothing (the hot path stays a few byte pushes per value).
pub struct CopyRow<'a> {
    buf: &'a mut Vec<u8>,
    /// Columns written so far.
    n: usize,
    spec: Option<&'static TableSpec>,
}

/// What a value written into a row is, for the debug check against its column.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Null,
    Int,
    Float,
    Bool,
    Text,
    Date,
    Timestamp,
}

impl Kind {
    fn fits(self, ty: PgType) -> bool {
        use PgType::*;
        matches!(
            (self, ty),
            (Kind::Null, _)
                | (Kind::Int, Int4 | Int8 | Bigserial)
                | (Kind::Float, Float8)
                | (Kind::Bool, Bool)
                | (Kind::Text, Text | Jsonb)
                | (Kind::Date, Date)
                | (Kind::Timestamp, Timestamptz)
        )
    }
}

impl<'a> CopyRow<'a> {
    /// A row not bound to a table (no debug checks).
    pub fn new(buf: &'a mut Vec<u8>) -> Self {
        CopyRow {
            buf,
            n: 0,
            spec: None,
        }
    }

    /// A row of table `spec` (checked in debug builds, see the type's docs).
    #[inline]
    pub fn of(spec: &'static TableSpec, buf: &'a mut Vec<u8>) -> Self {
        CopyRow {
            buf,
            n: 0,
            spec: Some(spec),
        }
    }

    #[inline]
    fn sep(&mut self, kind: Kind) {
        #[cfg(debug_assertions)]
        self.check(kind);
        #[cfg(not(debug_assertions))]
        let _ = kind;
        if self.n > 0 {
            self.buf.push(b'\t');
        }
        self.n += 1;
    }

    #[cfg(debug_assertions)]
    fn check(&self, kind: Kind) {
        let Some(spec) = self.spec else { return };
        let Some(c) = spec.columns.get(self.n) else {
            panic!(
                "table {}: a row writes more than its {} columns",
                spec.name,
                spec.columns.len()
            );
        };
        assert!(
            kind.fits(c.ty),
            "{}.{}: a {kind:?} value written into a {:?} column",
            spec.name,
            c.name,
            c.ty
        );
        assert!(
            !matches!(kind, Kind::Null) || spec.nullable(self.n),
            "{}.{}: NULL written into a NOT NULL column",
            spec.name,
            c.name
        );
    }

    pub fn null(&mut self) -> &mut Self {
        self.sep(Kind::Null);
        self.buf.extend_from_slice(b"\\N");
        self
    }

    pub fn text(&mut self, s: &str) -> &mut Self {
        self.sep(Kind::Text);
        escape_into(self.buf, s);
        self
    }

    pub fn opt_text(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            Some(s) => self.text(s),
            None => self.null(),
        }
    }

    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.sep(Kind::Int);
        // Digits by hand: the transform writes millions of ids, and `fmt` is slow.
        let mut tmp = [0u8; 20];
        let mut n = tmp.len();
        let mut u = v.unsigned_abs();
        loop {
            n -= 1;
            tmp[n] = b'0' + (u % 10) as u8;
            u /= 10;
            if u == 0 {
                break;
            }
        }
        if v < 0 {
            self.buf.push(b'-');
        }
        self.buf.extend_from_slice(&tmp[n..]);
        self
    }

    pub fn opt_i64(&mut self, v: Option<i64>) -> &mut Self {
        match v {
            Some(v) => self.i64(v),
            None => self.null(),
        }
    }

    pub fn f64(&mut self, v: f64) -> &mut Self {
        if !v.is_finite() {
            return self.null();
        }
        self.sep(Kind::Float);
        // `{:?}` prints the shortest representation that round-trips.
        let _ = std::io::Write::write_fmt(self.buf, format_args!("{v:?}"));
        self
    }

    pub(crate) fn opt_f64(&mut self, v: Option<f64>) -> &mut Self {
        match v {
            Some(v) => self.f64(v),
            None => self.null(),
        }
    }

    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.sep(Kind::Bool);
        self.buf.push(if v { b't' } else { b'f' });
        self
    }

    pub(crate) fn opt_bool(&mut self, v: Option<bool>) -> &mut Self {
        match v {
            Some(v) => self.bool(v),
            None => self.null(),
        }
    }

    /// A timestamptz, written in UTC with microseconds (`2024-03-10 06:59:59.123000+00`).
    pub fn timestamp(&mut self, v: DateTime<Utc>) -> &mut Self {
        self.sep(Kind::Timestamp);
        let _ = std::io::Write::write_fmt(
            self.buf,
            format_args!("{}", v.format("%Y-%m-%d %H:%M:%S%.6f+00")),
        );
        self
    }

    pub fn opt_timestamp(&mut self, v: Option<DateTime<Utc>>) -> &mut Self {
        match v {
            Some(v) => self.timestamp(v),
            None => self.null(),
        }
    }

    pub fn date(&mut self, v: NaiveDate) -> &mut Self {
        self.sep(Kind::Date);
        let _ = std::io::Write::write_fmt(self.buf, format_args!("{}", v.format("%Y-%m-%d")));
        self
    }

    pub fn opt_date(&mut self, v: Option<NaiveDate>) -> &mut Self {
        match v {
            Some(v) => self.date(v),
            None => self.null(),
        }
    }

    /// A timestamptz already spelt as [`CopyRow::timestamp`] writes it (the
    /// transform's fast path); needs no escaping.
    pub(crate) fn timestamp_str(&mut self, s: &str) -> &mut Self {
        self.sep(Kind::Timestamp);
        self.buf.extend_from_slice(s.as_bytes());
        self
    }

    /// A date already spelt `YYYY-MM-DD`; needs no escaping.
    pub(crate) fn date_str(&mut self, s: &str) -> &mut Self {
        self.sep(Kind::Date);
        self.buf.extend_from_slice(s.as_bytes());
        self
    }

    /// Ends the row.
    #[inline]
    pub fn end(&mut self) {
        if let Some(spec) = self.spec {
            debug_assert_eq!(
                self.n,
                spec.columns.len(),
                "table {}: a row has {} values for {} columns",
                spec.name,
                self.n,
                spec.columns.len()
            );
        }
        self.buf.push(b'\n');
    }
}

/// True if any byte of `x` is below 0x0e (NUL, \\b, \\t, \\n, \\v, \\f, \\r) or a backslash.
#[inline]
fn word_needs_escape(x: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below = x.wrapping_sub(ONES * 0x0e) & !x & HIGH;
    let y = x ^ (ONES * u64::from(b'\\'));
    let backslash = y.wrapping_sub(ONES) & !y & HIGH;
    (below | backslash) != 0
}

/// Appends `s` escaped for text COPY; NUL becomes U+FFFD.
pub(crate) fn escape_into(buf: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        // Skip clean 8-byte words at once (most text needs no escaping).
        if let Some(w) = bytes.get(i..i + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(w);
            if !word_needs_escape(u64::from_le_bytes(word)) {
                i += 8;
                continue;
            }
        }
        let b = bytes[i];
        i += 1;
        let rep: &[u8] = match b {
            b'\\' => b"\\\\",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x0b => b"\\v",
            0 => "\u{FFFD}".as_bytes(),
            _ => continue,
        };
        buf.extend_from_slice(&bytes[start..i - 1]);
        buf.extend_from_slice(rep);
        start = i;
    }
    buf.extend_from_slice(&bytes[start..]);
}

/// Decodes one text-COPY field (the inverse of [`escape_into`], `\N` → `None`).
/// Used by `replay --dry-run` to show rows and by tests.
pub(crate) fn unescape_field(field: &[u8]) -> Option<String> {
    if field == b"\\N" {
        return None;
    }
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        if field[i] == b'\\' && i + 1 < field.len() {
            let c = field[i + 1];
            out.push(match c {
                b't' => b'\t',
                b'n' => b'\n',
                b'r' => b'\r',
                b'b' => 0x08,
                b'f' => 0x0c,
                b'v' => 0x0b,
                other => other,
            });
            i += 2;
        } else {
            out.push(field[i]);
            i += 1;
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// Splits text-COPY bytes into rows of decoded fields.
pub fn decode_rows(data: &[u8]) -> Vec<Vec<Option<String>>> {
    data.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|line| line.split(|&b| b == b'\t').map(unescape_field).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_roundtrip() {
        let s = "a\tb\nc\rd\\e\u{0}f😀\u{8}\u{b}\u{c}";
        let mut buf = Vec::new();
        escape_into(&mut buf, s);
        assert!(!buf.contains(&b'\t') && !buf.contains(&b'\n') && !buf.contains(&0));
        let back = unescape_field(&buf).unwrap();
        assert_eq!(back, s.replace('\u{0}', "\u{FFFD}"));
    }

    #[test]
    fn row_shapes() {
        let mut buf = Vec::new();
        CopyRow::new(&mut buf)
            .i64(5)
            .null()
            .text("x")
            .bool(true)
            .f64(1.5)
            .end();
        assert_eq!(buf, b"5\t\\N\tx\tt\t1.5\n");
        let rows = decode_rows(&buf);
        assert_eq!(rows[0][1], None);
        assert_eq!(rows[0][2].as_deref(), Some("x"));
    }

    #[test]
    fn escape_finds_specials_at_every_position() {
        for len in 0..20 {
            for pos in 0..len {
                for special in ['\\', '\t', '\n', '\r', '\u{0}', '\u{8}', '\u{b}', '\u{c}'] {
                    let mut s: String = "x".repeat(len);
                    s.replace_range(pos..pos + 1, &special.to_string());
                    let mut buf = Vec::new();
                    escape_into(&mut buf, &s);
                    assert_eq!(
                        unescape_field(&buf).unwrap(),
                        s.replace('\u{0}', "\u{FFFD}"),
                        "{s:?}"
                    );
                    assert!(!buf.contains(&b'\t') && !buf.contains(&b'\n') && !buf.contains(&0));
                }
            }
        }
        let mut buf = Vec::new();
        escape_into(&mut buf, "é\u{e}\u{1f}\u{7f}~😀");
        assert_eq!(buf, "é\u{e}\u{1f}\u{7f}~😀".as_bytes());
        let mut buf = Vec::new();
        CopyRow::new(&mut buf)
            .i64(i64::MIN)
            .i64(0)
            .i64(-7)
            .i64(i64::MAX)
            .end();
        assert_eq!(
            buf,
            format!("{}\t0\t-7\t{}\n", i64::MIN, i64::MAX).as_bytes()
        );
    }

    #[test]
    fn bound_rows_match_their_spec() {
        let mut buf = Vec::new();
        CopyRow::of(&crate::tables::ISSUE_LABEL, &mut buf)
            .i64(1)
            .text("a")
            .end();
        assert_eq!(buf, b"1\ta\n");
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "a row has 1 values for 2 columns")]
    fn a_short_row_is_caught() {
        let mut buf = Vec::new();
        CopyRow::of(&crate::tables::ISSUE_LABEL, &mut buf)
            .i64(1)
            .end();
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "issue_label.label: a Int value written into a Text column")]
    fn a_mistyped_value_is_caught() {
        let mut buf = Vec::new();
        CopyRow::of(&crate::tables::ISSUE_LABEL, &mut buf)
            .i64(1)
            .i64(2);
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "NULL written into a NOT NULL column")]
    fn a_null_key_is_caught() {
        let mut buf = Vec::new();
        CopyRow::of(&crate::tables::ISSUE_LABEL, &mut buf).null();
    }
}
