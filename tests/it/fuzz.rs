//! Fuzzed input (issue 16): property tests feeding the transform search
//! pages built from the real Jira fixtures (`tests/fixtures/jira-real`) and
//! mutated at random — wrong types in any field, huge strings, deep nesting,
//! unusual escapes, NUL, lone surrogates (`"\ud800"`), duplicate keys, cut
//! or flipped bytes. The transform must never panic and never lose an issue:
//! each one becomes rows or is quarantined with a reason (or the whole page
//! is, with a reason). Case counts are modest so the suite stays fast.

use std::sync::OnceLock;

use jira_pipeline_core::config::Scope;
use jira_pipeline_core::staging::{PageKind, PageMeta, search_meta};
use jira_pipeline_core::transform::{Catalog, transform_page};
use proptest::prelude::*;
use serde_json::{Value, json};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/jira-real");

/// Every real issue of the fixtures, each given its own id and key.
fn real_issues() -> &'static Vec<Value> {
    static ISSUES: OnceLock<Vec<Value>> = OnceLock::new();
    ISSUES.get_or_init(|| {
        let read = |name: &str| -> Value {
            let p = format!("{FIXTURES}/{name}");
            let raw = std::fs::read(&p).unwrap_or_else(|e| panic!("real Jira fixture {p}: {e}"));
            serde_json::from_slice(&raw).unwrap()
        };
        let mut out = Vec::new();
        for f in [
            "jrjc-server5_issue_all-expanded_links-components-fixversions-30-histories.json",
            "jrjc-server5_issue_changelog-deleted-user-worklogid.json",
            "jrjc-server5_issue_expand-changelog_custom-items.json",
            "jrjc-server5_issue_labels-userpicker-issuelinks-changelog.json",
            "jrjc-server5_issue_subtasks.json",
        ] {
            out.push(read(f));
        }
        let search = read("jrjc-server5_search_names-schema_8-of-15.json");
        out.extend(search["issues"].as_array().unwrap().iter().cloned());
        out
    })
}

fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| {
        let raw = std::fs::read(format!("{FIXTURES}/jrjc-server5_field-list.json")).unwrap();
        Catalog::parse(&raw).unwrap()
    })
}

fn scope() -> Scope {
    Scope {
        name: "fz".into(),
        project: "TST".into(),
        issue_types: vec![],
        fields: vec!["*all".into()],
        jql: None,
    }
}

/// A value to put where Jira put something else. `Raw` is JSON text that
/// serde_json cannot hold (lone surrogates, duplicate keys, very deep
/// nesting), spliced into the page's text; its flag says whether a JSON
/// parser may refuse the page for it (numbers no double or u64 holds,
/// arrays nested past any parser's depth limit).
#[derive(Debug, Clone)]
enum Weird {
    Value(Value),
    Raw(String, bool),
}

fn weird() -> impl Strategy<Value = Weird> {
    let scalar = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        any::<String>().prop_map(Value::String),
        "[\\PC\\t\\r\\n\\\\\"]{0,40}".prop_map(Value::String),
        (1usize..400_000, any::<char>()).prop_map(|(n, c)| Value::String(c.to_string().repeat(n))),
        Just(json!("2024-13-45T25:61:00.000+9999")),
        Just(json!("x\u{0}y\u{0}")),
    ];
    let value = scalar.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    prop_oneof![
        4 => value.prop_map(Weird::Value),
        1 => prop_oneof![
            Just(r#""\ud800""#.to_string()),
            Just(r#""a\udc00b\ud83d""#.to_string()),
            Just(r#""\u0000\b\f\n\r\t\/\\\"""#.to_string()),
            Just(r#"{"id":"1","id":2,"key":"K","key":null}"#.to_string()),
            Just("-0".to_string()),
            (1usize..200).prop_map(|d| format!("{}{}", "[".repeat(d), "]".repeat(d))),
            (1usize..600).prop_map(|d| format!("{}1{}", "{\"a\":".repeat(d), "}".repeat(d))),
        ]
        .prop_map(|raw| Weird::Raw(raw, false)),
        1 => prop_oneof![
            Just("1e400".to_string()),
            Just("18446744073709551616".to_string()),
            (2000usize..3000).prop_map(|d| format!("{}{}", "[".repeat(d), "]".repeat(d))),
        ]
        .prop_map(|raw| Weird::Raw(raw, true)),
    ]
}

/// Every path inside issue `i` (the issue itself included), in a fixed order.
fn paths(v: &Value, at: Vec<String>, out: &mut Vec<Vec<String>>) {
    out.push(at.clone());
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                let mut p = at.clone();
                p.push(k.clone());
                paths(c, p, out);
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                let mut p = at.clone();
                p.push(i.to_string());
                paths(c, p, out);
            }
        }
        _ => {}
    }
}

fn at_mut<'v>(v: &'v mut Value, path: &[String]) -> &'v mut Value {
    path.iter().fold(v, |v, k| match v {
        Value::Object(m) => m.get_mut(k).unwrap(),
        Value::Array(a) => &mut a[k.parse::<usize>().unwrap()],
        _ => unreachable!(),
    })
}

/// A page: issues picked from the fixtures (ids 50000+, keys FZ-n), `muts`
/// (selector, weird value, duplicate-key flag) applied inside the issues.
fn build_page(picks: &[usize], muts: &[(usize, usize, Weird, bool)]) -> (String, usize) {
    let all = real_issues();
    let mut issues: Vec<Value> = picks
        .iter()
        .enumerate()
        .map(|(n, &i)| {
            let mut v = all[i % all.len()].clone();
            v["id"] = json!((50_000 + n).to_string());
            v["key"] = json!(format!("FZ-{n}"));
            v
        })
        .collect();
    let mut raws = Vec::new();
    for (issue, sel, w, dup_key) in muts {
        let i = issue % issues.len();
        let mut ps = Vec::new();
        paths(&issues[i], vec![], &mut ps);
        let path = &ps[sel % ps.len()];
        let new = match w {
            Weird::Value(v) => v.clone(),
            Weird::Raw(text, _) => {
                raws.push(text.clone());
                json!(format!("@@RAW{}@@", raws.len() - 1))
            }
        };
        let target = at_mut(&mut issues[i], path);
        match (target, *dup_key) {
            // A second `fields` (or the key mutated) in the same object.
            (Value::Object(m), true) if !path.is_empty() || m.contains_key("fields") => {
                let k = m.keys().next().cloned().unwrap_or_else(|| "fields".into());
                m.insert(format!("@@DUP@@{k}"), new);
            }
            (t, _) => *t = new,
        }
    }
    let n = issues.len();
    let mut text = serde_json::to_string(
        &json!({"startAt": 0, "maxResults": 50, "total": n, "issues": issues}),
    )
    .unwrap();
    for (k, raw) in raws.iter().enumerate() {
        text = text.replace(&format!("\"@@RAW{k}@@\""), raw);
    }
    (text.replace("\"@@DUP@@", "\""), n)
}

fn meta() -> PageMeta {
    PageMeta {
        kind: PageKind::Search,
        ..search_meta("fz", 0, 50)
    }
}

/// The property: no panic (proptest reports one as a failure), and every
/// issue accounted for — rows or a quarantine reason, or a reason for the
/// whole page. `exact`: the page is well-formed JSON with an `issues`
/// array, so the page itself must not be refused.
fn check(body: Vec<u8>, n: usize, exact: bool) -> Result<(), TestCaseError> {
    let mut b = body;
    match transform_page(&meta(), &mut b, catalog(), &scope()) {
        Err(bad) => {
            prop_assert!(!bad.reason.trim().is_empty());
            prop_assert!(!exact, "a well-formed page was refused: {}", bad.reason);
        }
        Ok(batch) => {
            let m = &batch.meta;
            for q in &m.quarantined {
                prop_assert!(!q.reason.trim().is_empty() && !q.key.is_empty(), "{q:?}");
            }
            if exact {
                prop_assert_eq!(
                    m.issues.len() + m.quarantined.len(),
                    n,
                    "{:?}",
                    m.quarantined
                );
                for k in 0..n as i64 {
                    let id = 50_000 + k;
                    let key = format!("FZ-{k}");
                    let found = m.issues.iter().any(|v| v.id == id || v.key == key)
                        || m.quarantined
                            .iter()
                            .any(|q| q.id == Some(id) || q.key == key || q.key == format!("#{k}"));
                    prop_assert!(found, "issue {key} lost: {:?}", m.quarantined);
                }
            }
            prop_assert_eq!(batch.row_count("issue"), m.issues.len() as u64);
            for (table, rows) in &batch.data {
                prop_assert!(!rows.contains(&0), "a NUL byte in {table} rows");
            }
        }
    }
    Ok(())
}

fn picks() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0usize..64, 1..6)
}

fn mutations(max: usize) -> impl Strategy<Value = Vec<(usize, usize, Weird, bool)>> {
    prop::collection::vec(
        (
            any::<usize>(),
            any::<usize>(),
            weird(),
            prop::bool::weighted(0.15),
        ),
        1..max,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Wrong types, huge strings, NUL, odd numbers anywhere in the issues
    /// (serde_json-representable): the page is taken and each issue is
    /// rows or quarantined.
    #[test]
    fn fuzz_wrong_types_anywhere_lose_no_issue(picks in picks(), muts in mutations(5)) {
        let muts: Vec<_> = muts
            .into_iter()
            .filter(|(_, _, w, dup)| matches!(w, Weird::Value(_)) && !dup)
            .collect();
        let (body, n) = build_page(&picks, &muts);
        check(body.into_bytes(), n, true)?;
    }

    /// Lone surrogates, duplicate keys, deep nesting, NUL and other escapes
    /// spliced into the text: the page is taken and no issue is lost; only
    /// what no JSON parser takes (1e400, 2^64, 2,000 nested arrays) may cost
    /// the page, with a reason.
    #[test]
    fn fuzz_raw_json_oddities_lose_no_issue(picks in picks(), muts in mutations(4)) {
        let refusable = muts.iter().any(|(_, _, w, _)| matches!(w, Weird::Raw(_, true)));
        let (body, n) = build_page(&picks, &muts);
        check(body.into_bytes(), n, !refusable)?;
    }

    /// The real fixtures with bytes cut off or flipped: no panic.
    #[test]
    fn fuzz_cut_and_flipped_bytes_never_panic(
        picks in picks(),
        cut in prop::option::of(0.0f64..1.0),
        flips in prop::collection::vec((any::<usize>(), 1u8..=255), 0..6),
    ) {
        let (body, n) = build_page(&picks, &[]);
        let mut b = body.into_bytes();
        for (pos, x) in flips {
            let i = pos % b.len();
            b[i] ^= x;
        }
        if let Some(f) = cut {
            b.truncate((b.len() as f64 * f) as usize);
        }
        check(b, n, false)?;
    }
}

/// The unmutated pages are taken whole: every fixture issue becomes rows.
#[test]
fn fuzz_baseline_every_real_issue_becomes_rows() {
    let picks: Vec<usize> = (0..real_issues().len()).collect();
    let (body, n) = build_page(&picks, &[]);
    let mut b = body.into_bytes();
    let batch = transform_page(&meta(), &mut b, catalog(), &scope()).unwrap();
    assert_eq!(batch.meta.issues.len(), n, "{:?}", batch.meta.quarantined);
    assert!(batch.meta.quarantined.is_empty());
}
