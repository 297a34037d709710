//! JQL building: correct quoting of values, the scope's own clauses, and date
//! literals for `created`/`updated` ranges.
//!
//! JQL date literals are minute-granular and read in the *searching user's*
//! time zone (from `/rest/api/2/myself`), so an instant is written as the
//! local minute in that zone. Around a DST fall-back the same local minute
//! names two instants; a lower bound is then moved back (an upper bound
//! forward) until every reading of the literal keeps the range at least as
//! wide as asked. Ranges are always `>=` lower and `<` upper.

use chrono::{DateTime, Duration, LocalResult, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use crate::config::Scope;
use crate::error::{Error, Result};

/// A JQL string literal: double quotes, with `\` and `"` escaped.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// True when `jql` contains `ORDER BY` outside quoted strings.
fn has_order_by(jql: &str) -> bool {
    let mut plain = String::with_capacity(jql.len());
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in jql.chars() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
                plain.push(' ');
            }
            None => {
                if c == '"' || c == '\'' {
                    quote = Some(c);
                    plain.push(' ');
                } else {
                    plain.push(c.to_ascii_lowercase());
                }
            }
        }
    }
    let words: Vec<&str> = plain.split_whitespace().collect();
    words.windows(2).any(|w| w[0] == "order" && w[1] == "by")
}

/// The scope's own clauses: project, issue types, and the extra JQL in parentheses.
pub(crate) fn scope_clause(scope: &Scope) -> Result<String> {
    let mut parts = vec![format!("project = {}", quote(&scope.project))];
    if !scope.issue_types.is_empty() {
        let types: Vec<String> = scope.issue_types.iter().map(|t| quote(t)).collect();
        parts.push(format!("issuetype in ({})", types.join(", ")));
    }
    if let Some(extra) = &scope.jql {
        if has_order_by(extra) {
            return Err(Error::Config(format!(
                "scope {:?}: jql must not contain ORDER BY (the extractor orders the results itself); remove it",
                scope.name
            )));
        }
        parts.push(format!("({extra})"));
    }
    Ok(parts.join(" AND "))
}

/// A date field the extractor ranges and orders on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DateField {
    Created,
    Updated,
}

impl DateField {
    pub fn name(self) -> &'static str {
        match self {
            DateField::Created => "created",
            DateField::Updated => "updated",
        }
    }
    pub fn other(self) -> DateField {
        match self {
            DateField::Created => DateField::Updated,
            DateField::Updated => DateField::Created,
        }
    }
}

/// `lo <= field < hi` (either end open).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Range {
    pub field: DateField,
    pub lo: Option<DateTime<Utc>>,
    pub hi: Option<DateTime<Utc>>,
}

/// The instant rounded down to its minute.
pub(crate) fn floor_minute(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(t)
}

/// The instant rounded up to a whole minute.
pub(crate) fn ceil_minute(t: DateTime<Utc>) -> DateTime<Utc> {
    let f = floor_minute(t);
    if f == t { f } else { f + Duration::minutes(1) }
}

const LITERAL_FORMAT: &str = "%Y/%m/%d %H:%M";

/// Every instant the local minute `naive` can mean in `tz` (none in a DST gap).
fn readings(tz: Tz, naive: chrono::NaiveDateTime) -> Vec<DateTime<Utc>> {
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) => vec![t.with_timezone(&Utc)],
        LocalResult::Ambiguous(a, b) => vec![a.with_timezone(&Utc), b.with_timezone(&Utc)],
        LocalResult::None => Vec::new(),
    }
}

/// A quoted JQL date literal for `field >= literal` that includes every
/// instant from `t` on, however Jira resolves an ambiguous local time.
pub(crate) fn lower_literal(t: DateTime<Utc>, tz: Tz) -> String {
    let mut c = floor_minute(t);
    for _ in 0..64 {
        let naive = c.with_timezone(&tz).naive_local();
        let r = readings(tz, naive);
        if !r.is_empty() && r.iter().all(|x| *x <= t) {
            return quote(&naive.format(LITERAL_FORMAT).to_string());
        }
        c -= Duration::minutes(15);
    }
    quote(
        &floor_minute(t)
            .with_timezone(&tz)
            .naive_local()
            .format(LITERAL_FORMAT)
            .to_string(),
    )
}

/// A quoted JQL date literal for `field < literal` that includes every
/// instant before `t`, however Jira resolves an ambiguous local time.
pub(crate) fn upper_literal(t: DateTime<Utc>, tz: Tz) -> String {
    let mut c = ceil_minute(t);
    for _ in 0..64 {
        let naive = c.with_timezone(&tz).naive_local();
        let r = readings(tz, naive);
        if !r.is_empty() && r.iter().all(|x| *x >= t) {
            return quote(&naive.format(LITERAL_FORMAT).to_string());
        }
        c += Duration::minutes(15);
    }
    quote(
        &ceil_minute(t)
            .with_timezone(&tz)
            .naive_local()
            .format(LITERAL_FORMAT)
            .to_string(),
    )
}

/// `base AND <ranges> ORDER BY <order> ASC, key ASC`.
pub(crate) fn search_jql(base: &str, ranges: &[Range], order: DateField, tz: Tz) -> String {
    let mut s = String::with_capacity(base.len() + 96);
    s.push_str(base);
    for r in ranges {
        if let Some(lo) = r.lo {
            s.push_str(&format!(
                " AND {} >= {}",
                r.field.name(),
                lower_literal(lo, tz)
            ));
        }
        if let Some(hi) = r.hi {
            s.push_str(&format!(
                " AND {} < {}",
                r.field.name(),
                upper_literal(hi, tz)
            ));
        }
    }
    s.push_str(&format!(" ORDER BY {} ASC, key ASC", order.name()));
    s
}

/// `base AND <ranges>` (for counting; no order needed).
pub(crate) fn count_jql(base: &str, ranges: &[Range], tz: Tz) -> String {
    let mut s = String::with_capacity(base.len() + 96);
    s.push_str(base);
    for r in ranges {
        if let Some(lo) = r.lo {
            s.push_str(&format!(
                " AND {} >= {}",
                r.field.name(),
                lower_literal(lo, tz)
            ));
        }
        if let Some(hi) = r.hi {
            s.push_str(&format!(
                " AND {} < {}",
                r.field.name(),
                upper_literal(hi, tz)
            ));
        }
    }
    s
}

/// Parses a Jira timestamp: `2023-05-01T12:34:56.000+0200` (also `Z` and
/// `+02:00` forms).
pub fn parse_jira_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")
        .or_else(|_| DateTime::parse_from_rfc3339(s))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(types: &[&str], jql: Option<&str>) -> Scope {
        Scope {
            name: "s".into(),
            project: "ABC".into(),
            issue_types: types.iter().map(|s| s.to_string()).collect(),
            fields: vec!["*all".into()],
            jql: jql.map(String::from),
        }
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn quoting() {
        assert_eq!(quote("Bug"), "\"Bug\"");
        assert_eq!(quote("User \"Story\""), "\"User \\\"Story\\\"\"");
        assert_eq!(quote("a\\b"), "\"a\\\\b\"");
    }

    #[test]
    fn scope_clause_quotes_and_wraps() {
        let q = scope_clause(&scope(
            &["Bug", "Sub-task", "It's \"big\""],
            Some("labels = x OR priority = High"),
        ))
        .unwrap();
        assert_eq!(
            q,
            "project = \"ABC\" AND issuetype in (\"Bug\", \"Sub-task\", \"It's \\\"big\\\"\") AND (labels = x OR priority = High)"
        );
        assert_eq!(
            scope_clause(&scope(&[], None)).unwrap(),
            "project = \"ABC\""
        );
    }

    #[test]
    fn order_by_in_extra_jql_refused_but_not_in_strings() {
        let e = scope_clause(&scope(&[], Some("labels = x order  by created"))).unwrap_err();
        assert!(e.to_string().contains("ORDER BY"), "{e}");
        assert!(scope_clause(&scope(&[], Some("summary ~ \"order by\""))).is_ok());
    }

    #[test]
    fn literals_in_user_zone() {
        let ny: Tz = "America/New_York".parse().unwrap();
        // Winter: UTC-5.
        assert_eq!(
            lower_literal(utc("2024-01-15T15:07:42Z"), ny),
            "\"2024/01/15 10:07\""
        );
        assert_eq!(
            upper_literal(utc("2024-01-15T15:07:42Z"), ny),
            "\"2024/01/15 10:08\""
        );
        // Summer: UTC-4.
        assert_eq!(
            lower_literal(utc("2024-07-01T12:00:00Z"), ny),
            "\"2024/07/01 08:00\""
        );
        assert_eq!(
            lower_literal(utc("2024-07-01T12:00:00Z"), chrono_tz::UTC),
            "\"2024/07/01 12:00\""
        );
    }

    #[test]
    fn dst_fall_back_never_narrows_the_range() {
        let ny: Tz = "America/New_York".parse().unwrap();
        // 2024-11-03 01:30 happens twice in New York: 05:30Z (EDT) and 06:30Z (EST).
        let first = utc("2024-11-03T05:30:00Z");
        let lit = lower_literal(first, ny);
        assert_eq!(lit, "\"2024/11/03 00:45\"", "before the repeated hour");
        let second = utc("2024-11-03T06:30:00Z");
        assert_eq!(lower_literal(second, ny), "\"2024/11/03 01:30\"");
        // An upper bound at the first 01:30 must cover it whichever reading Jira picks.
        let up = upper_literal(first, ny);
        assert_eq!(up, "\"2024/11/03 01:30\"", "both readings are >= 05:30Z");
        // Spring forward (2024-03-10 02:00 -> 03:00): instants just after map to 03:xx.
        assert_eq!(
            lower_literal(utc("2024-03-10T07:05:00Z"), ny),
            "\"2024/03/10 03:05\""
        );
        // Exhaustive: around both changes, every reading of a lower literal is <= t
        // and of an upper literal >= t.
        for start in ["2024-03-10T05:00:00Z", "2024-11-03T04:00:00Z"] {
            let mut t = utc(start);
            for _ in 0..(4 * 60) {
                for (lit, lower) in [(lower_literal(t, ny), true), (upper_literal(t, ny), false)] {
                    let naive = chrono::NaiveDateTime::parse_from_str(
                        lit.trim_matches('"'),
                        LITERAL_FORMAT,
                    )
                    .unwrap();
                    let r = readings(ny, naive);
                    assert!(!r.is_empty(), "{lit}");
                    for x in r {
                        if lower {
                            assert!(x <= t && t - x <= Duration::hours(2), "{t} {lit}");
                        } else {
                            assert!(x >= t && x - t <= Duration::hours(2), "{t} {lit}");
                        }
                    }
                }
                t += Duration::seconds(61);
            }
        }
    }

    #[test]
    fn search_jql_shape() {
        let q = search_jql(
            "project = \"A\"",
            &[Range {
                field: DateField::Created,
                lo: Some(utc("2024-01-01T00:00:00Z")),
                hi: Some(utc("2024-02-01T00:00:00Z")),
            }],
            DateField::Created,
            chrono_tz::UTC,
        );
        assert_eq!(
            q,
            "project = \"A\" AND created >= \"2024/01/01 00:00\" AND created < \"2024/02/01 00:00\" ORDER BY created ASC, key ASC"
        );
    }

    #[test]
    fn jira_times_parse() {
        assert_eq!(
            parse_jira_time("2023-05-01T12:34:56.000+0200"),
            Some(utc("2023-05-01T10:34:56Z"))
        );
        assert_eq!(
            parse_jira_time("2023-05-01T12:34:56.123Z"),
            Some(utc("2023-05-01T12:34:56.123Z"))
        );
        assert!(parse_jira_time("yesterday").is_none());
    }
}
