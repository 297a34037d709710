//! The warehouse tables as data: one [`TableSpec`] per table (columns, PostgreSQL
//! types, key, merge mode) drives the temp-table DDL and merge SQL of the loader,
//! the COPY encoding of the transform, and a test that checks the migrations in
//! `sql/` agree with it — so they cannot drift apart.
//!
//! Rows travel in PostgreSQL's *text* COPY format (see [`CopyRow`]): it is
//! byte-for-byte what `COPY … FROM STDIN` reads, so the loader streams staged
//! batches into COPY with no per-value work; unlike binary COPY it does not
//! need exact OIDs per column, keeps batches readable with `zstdcat`, and is
//! compact for the short text values that dominate Jira data.

use std::fmt::Write as _;

use chrono::{DateTime, NaiveDate, Utc};

/// PostgreSQL column types used by the warehouse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgType {
    Int4,
    Int8,
    Float8,
    Bool,
    Text,
    Date,
    Timestamptz,
}

impl PgType {
    /// The SQL spelling, as in DDL and `information_schema.columns.data_type`.
    pub fn sql(self) -> &'static str {
        match self {
            PgType::Int4 => "integer",
            PgType::Int8 => "bigint",
            PgType::Float8 => "double precision",
            PgType::Bool => "boolean",
            PgType::Text => "text",
            PgType::Date => "date",
            PgType::Timestamptz => "timestamp with time zone",
        }
    }
}

/// One column of a table.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub ty: PgType,
}

const fn col(name: &'static str, ty: PgType) -> Column {
    Column { name, ty }
}

/// How incoming rows are merged into the target table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeMode {
    /// `issue`: upsert by key; a row whose `updated` is older than the stored one
    /// changes nothing; an identical row is not rewritten.
    IssueUpsert,
    /// Child rows: for every issue in the batch (that was accepted), the set of
    /// rows is replaced; unchanged rows are not rewritten. `issue_link` belongs to
    /// both its source and its target issue.
    ReplacePerIssue,
    /// Immutable history: inserted once by key, never updated.
    InsertOnce,
    /// Metadata (the field catalogue): upsert by key, rewritten only when different.
    Upsert,
}

/// A warehouse table: the single source of truth for its shape.
#[derive(Debug)]
pub struct TableSpec {
    pub name: &'static str,
    pub columns: &'static [Column],
    /// Primary key columns, in order.
    pub key: &'static [&'static str],
    pub merge: MergeMode,
}

impl TableSpec {
    /// Column names joined with `, ` (for COPY and INSERT column lists).
    pub fn column_list(&self) -> String {
        let mut s = String::new();
        for (i, c) in self.columns.iter().enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            let _ = write!(s, "{}", c.name);
        }
        s
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

use PgType::*;

pub const ISSUE: TableSpec = TableSpec {
    name: "issue",
    columns: &[
        col("issue_id", Int8),
        col("issue_key", Text),
        col("project_id", Int8),
        col("project_key", Text),
        col("issue_type", Text),
        col("status", Text),
        col("status_category", Text),
        col("priority", Text),
        col("resolution", Text),
        col("summary", Text),
        col("description", Text),
        col("assignee", Text),
        col("reporter", Text),
        col("creator", Text),
        col("created", Timestamptz),
        col("updated", Timestamptz),
        col("resolved", Timestamptz),
        col("due_date", Date),
        col("parent_id", Int8),
        col("deleted_at", Timestamptz),
    ],
    key: &["issue_id"],
    merge: MergeMode::IssueUpsert,
};

pub const ISSUE_LABEL: TableSpec = TableSpec {
    name: "issue_label",
    columns: &[col("issue_id", Int8), col("label", Text)],
    key: &["issue_id", "label"],
    merge: MergeMode::ReplacePerIssue,
};

pub const ISSUE_COMPONENT: TableSpec = TableSpec {
    name: "issue_component",
    columns: &[
        col("issue_id", Int8),
        col("component_id", Int8),
        col("component_name", Text),
    ],
    key: &["issue_id", "component_id"],
    merge: MergeMode::ReplacePerIssue,
};

pub const ISSUE_VERSION: TableSpec = TableSpec {
    name: "issue_version",
    columns: &[
        col("issue_id", Int8),
        col("version_id", Int8),
        col("relation", Text),
        col("version_name", Text),
        col("released", Bool),
        col("release_date", Date),
    ],
    key: &["issue_id", "version_id", "relation"],
    merge: MergeMode::ReplacePerIssue,
};

pub const ISSUE_LINK: TableSpec = TableSpec {
    name: "issue_link",
    columns: &[
        col("link_id", Int8),
        col("source_issue_id", Int8),
        col("target_issue_id", Int8),
        col("source_issue_key", Text),
        col("target_issue_key", Text),
        col("link_type", Text),
        col("outward", Text),
        col("inward", Text),
    ],
    key: &["link_id"],
    merge: MergeMode::ReplacePerIssue,
};

pub const CHANGELOG: TableSpec = TableSpec {
    name: "changelog",
    columns: &[
        col("history_id", Int8),
        col("issue_id", Int8),
        col("author", Text),
        col("created", Timestamptz),
    ],
    key: &["history_id"],
    merge: MergeMode::InsertOnce,
};

pub const CHANGELOG_ITEM: TableSpec = TableSpec {
    name: "changelog_item",
    columns: &[
        col("history_id", Int8),
        col("item_seq", Int4),
        col("issue_id", Int8),
        col("field", Text),
        col("field_type", Text),
        col("field_id", Text),
        col("from_value", Text),
        col("from_string", Text),
        col("to_value", Text),
        col("to_string", Text),
    ],
    key: &["history_id", "item_seq"],
    merge: MergeMode::InsertOnce,
};

/// Typed custom field values. `value_kind` says which columns are set:
/// `number` → number_value; `string`/`text` → text_value; `datetime` →
/// timestamp_value; `date` → date_value; `option` → option_id + text_value (the
/// option's value); `user` → text_value (name) + user_key; `sprint` → option_id
/// (sprint id) + text_value (name) + sprint_state; `json` → json_value (any other
/// shape, kept as its JSON text).
pub const ISSUE_FIELD_VALUE: TableSpec = TableSpec {
    name: "issue_field_value",
    columns: &[
        col("issue_id", Int8),
        col("field_id", Text),
        col("ordinal", Int4),
        col("value_kind", Text),
        col("text_value", Text),
        col("number_value", Float8),
        col("timestamp_value", Timestamptz),
        col("date_value", Date),
        col("option_id", Int8),
        col("user_key", Text),
        col("sprint_state", Text),
        col("json_value", Text),
    ],
    key: &["issue_id", "field_id", "ordinal"],
    merge: MergeMode::ReplacePerIssue,
};

pub const FIELD: TableSpec = TableSpec {
    name: "field",
    columns: &[
        col("field_id", Text),
        col("name", Text),
        col("custom", Bool),
        col("schema_type", Text),
        col("schema_items", Text),
        col("schema_custom", Text),
        col("custom_id", Int8),
    ],
    key: &["field_id"],
    merge: MergeMode::Upsert,
};

/// Every table a batch can carry, in load order (parents first).
pub const ALL: &[&TableSpec] = &[
    &FIELD,
    &ISSUE,
    &ISSUE_LABEL,
    &ISSUE_COMPONENT,
    &ISSUE_VERSION,
    &ISSUE_LINK,
    &CHANGELOG,
    &CHANGELOG_ITEM,
    &ISSUE_FIELD_VALUE,
];

/// Looks a table up by name.
pub fn by_name(name: &str) -> Option<&'static TableSpec> {
    ALL.iter().copied().find(|t| t.name == name)
}

/// The character that replaces NUL (U+0000), which PostgreSQL `text` cannot store.
pub const NUL_REPLACEMENT: char = '\u{FFFD}';

/// Builds rows in PostgreSQL's text COPY format into a byte buffer.
///
/// Call one `push_*` per column in the spec's order, then [`CopyRow::end`].
/// Text is escaped (`\\`, tab, newline, CR, backspace, form feed, vertical tab)
/// and NUL becomes U+FFFD; `None` is written as `\N`.
pub struct CopyRow<'a> {
    buf: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> CopyRow<'a> {
    pub fn new(buf: &'a mut Vec<u8>) -> Self {
        CopyRow { buf, first: true }
    }

    fn sep(&mut self) {
        if !self.first {
            self.buf.push(b'\t');
        }
        self.first = false;
    }

    pub fn null(&mut self) -> &mut Self {
        self.sep();
        self.buf.extend_from_slice(b"\\N");
        self
    }

    pub fn text(&mut self, s: &str) -> &mut Self {
        self.sep();
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
        self.sep();
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
        self.sep();
        // `{:?}` prints the shortest representation that round-trips.
        let _ = std::io::Write::write_fmt(self.buf, format_args!("{v:?}"));
        self
    }

    pub fn opt_f64(&mut self, v: Option<f64>) -> &mut Self {
        match v {
            Some(v) => self.f64(v),
            None => self.null(),
        }
    }

    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.sep();
        self.buf.push(if v { b't' } else { b'f' });
        self
    }

    pub fn opt_bool(&mut self, v: Option<bool>) -> &mut Self {
        match v {
            Some(v) => self.bool(v),
            None => self.null(),
        }
    }

    /// A timestamptz, written in UTC with microseconds (`2024-03-10 06:59:59.123000+00`).
    pub fn timestamp(&mut self, v: DateTime<Utc>) -> &mut Self {
        self.sep();
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
        self.sep();
        let _ = std::io::Write::write_fmt(self.buf, format_args!("{}", v.format("%Y-%m-%d")));
        self
    }

    pub fn opt_date(&mut self, v: Option<NaiveDate>) -> &mut Self {
        match v {
            Some(v) => self.date(v),
            None => self.null(),
        }
    }

    /// Ends the row.
    pub fn end(&mut self) {
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
pub fn escape_into(buf: &mut Vec<u8>, s: &str) {
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
pub fn unescape_field(field: &[u8]) -> Option<String> {
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
    fn keys_are_columns() {
        for t in ALL {
            for k in t.key {
                assert!(t.column(k).is_some(), "{}.{k}", t.name);
            }
        }
    }
}
