//! `pipeline preview`: live issues of a JQL query, through the shared client,
//! as an aligned table that fits the terminal, or as JSON/CSV for piping.
//! Field names are resolved to ids through the field catalogue. Writes nothing.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::fields::{FieldInfo, fetch, resolve};
use super::{Format, table};
use crate::error::{Error, ExitCode, Result};
use crate::jira::JiraClient;
use crate::jira::client::{Req, parse_json};
use crate::session::Session;

/// Columns shown when `--fields` is not given.
pub(crate) const DEFAULT_FIELDS: [&str; 5] =
    ["issuetype", "status", "assignee", "updated", "summary"];
/// Most issues one preview fetches.
pub const MAX_LIMIT: u32 = 1000;

/// `pipeline preview` options.
#[derive(Debug, Clone)]
pub struct PreviewOptions {
    /// The JQL query, sent to Jira as written.
    pub jql: String,
    /// Fields to show, by id or name; empty: issuetype,status,assignee,updated,summary.
    pub fields: Vec<String>,
    /// How many issues to show (1..=[`MAX_LIMIT`]).
    pub limit: u32,
    /// Output format.
    pub format: Format,
}

/// One issue as Jira sent it, reduced to the chosen fields.
#[derive(Debug, Clone, Serialize)]
pub struct PreviewIssue {
    pub id: String,
    pub key: String,
    /// Field id → the value exactly as Jira sent it (`null` when absent).
    pub fields: Map<String, Value>,
}

/// A column: a field of the catalogue.
#[derive(Debug, Clone, Serialize)]
pub struct Column {
    pub id: String,
    pub name: String,
    /// The schema type (`datetime` values are shortened in the table).
    #[serde(skip)]
    pub kind: Option<String>,
}

/// What `preview` shows (also its JSON shape).
#[derive(Debug, Clone, Serialize)]
pub struct Preview {
    pub jql: String,
    /// `total` as Jira reported it.
    pub total: Option<u64>,
    pub columns: Vec<Column>,
    pub issues: Vec<PreviewIssue>,
}

#[derive(Deserialize)]
struct RawResult {
    #[serde(default)]
    total: Option<u64>,
    #[serde(default)]
    issues: Vec<RawIssue>,
}

#[derive(Deserialize)]
struct RawIssue {
    #[serde(default)]
    id: Value,
    #[serde(default)]
    key: String,
    #[serde(default)]
    fields: Map<String, Value>,
}

const SCOPE_HINT: &str = "check the scope's project, issue_types and jql in the configuration";

/// Fetches up to `limit` issues of `jql` with `fields` (ids), paging by what
/// the server returns (it may cap `maxResults`).
pub(crate) async fn fetch_issues(
    client: &JiraClient,
    jql: &str,
    fields: &[FieldInfo],
    limit: u32,
    page_size: u32,
) -> Result<Preview> {
    let ids: Vec<String> = fields.iter().map(|f| f.id.clone()).collect();
    let mut issues = Vec::new();
    let mut total = None;
    while (issues.len() as u32) < limit {
        let want = (limit - issues.len() as u32).min(page_size.max(1));
        let req = Req {
            post: true,
            path: "/rest/api/2/search".into(),
            query: Vec::new(),
            json: Some(serde_json::json!({
                "jql": jql,
                "startAt": issues.len(),
                "maxResults": want,
                "fields": ids,
            })),
            jql: Some(jql.to_string()),
            page: Some((issues.len() as u64, want)),
        };
        let page: RawResult = client
            .execute(&req, |resp| parse_json::<RawResult>(&resp))
            .await
            .map_err(|e| match e {
                // The JQL is the user's own here, not a scope's.
                Error::Jira { kind, msg } => Error::Jira {
                    kind,
                    msg: msg.replace(SCOPE_HINT, "check the --jql query"),
                },
                other => other,
            })?;
        total = page.total.or(total);
        let got = page.issues.len();
        for r in page.issues {
            let id = match r.id {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                _ => String::new(),
            };
            let mut f = Map::new();
            for c in &ids {
                f.insert(c.clone(), r.fields.get(c).cloned().unwrap_or(Value::Null));
            }
            issues.push(PreviewIssue {
                id,
                key: r.key,
                fields: f,
            });
        }
        if got == 0 || total.is_some_and(|t| issues.len() as u64 >= t) {
            break;
        }
    }
    issues.truncate(limit as usize);
    Ok(Preview {
        jql: jql.to_string(),
        total,
        columns: fields
            .iter()
            .map(|f| Column {
                id: f.id.clone(),
                name: f.name.clone(),
                kind: f.schema_type.clone(),
            })
            .collect(),
        issues,
    })
}

/// The name inside a GreenHopper sprint string
/// (`com.atlassian.greenhopper.service.sprint.Sprint@…[id=1,…,name=Sprint 1,…]`).
fn sprint_name(s: &str) -> Option<&str> {
    if !s.starts_with("com.atlassian.greenhopper.service.sprint.Sprint@") {
        return None;
    }
    let rest = &s[s.find(",name=")? + 6..];
    Some(rest.split(",startDate=").next().unwrap_or(rest))
}

/// A Jira value as one human-readable string: users by display name,
/// options by value (`parent / child` for cascading ones), objects by
/// name/key, arrays joined with `, `, links as `blocks DEMO-7`.
pub(crate) fn display_value(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => sprint_name(s).unwrap_or(s).to_string(),
        Value::Array(a) => a
            .iter()
            .map(display_value)
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(", "),
        Value::Object(o) => {
            let text = |k: &str| o.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
            if let Some(t) = o.get("type").and_then(|t| t.as_object()) {
                // An issue link.
                let phrase = |k: &str| t.get(k).and_then(Value::as_str).unwrap_or(k).to_string();
                let key = |k: &str| {
                    o.get(k)
                        .and_then(|i| i.get("key"))
                        .and_then(Value::as_str)
                        .map(String::from)
                };
                if let Some(k) = key("outwardIssue") {
                    return format!("{} {k}", phrase("outward"));
                }
                if let Some(k) = key("inwardIssue") {
                    return format!("{} {k}", phrase("inward"));
                }
            }
            if let Some(val) = text("value") {
                return match o.get("child") {
                    Some(c) if !c.is_null() => format!("{val} / {}", display_value(c)),
                    _ => val.to_string(),
                };
            }
            for k in ["displayName", "name", "key"] {
                if let Some(s) = text(k) {
                    return s.to_string();
                }
            }
            if let Some(v) = o.get("value").or_else(|| o.get("id")) {
                return display_value(v);
            }
            Value::Object(o.clone()).to_string()
        }
    }
}

/// `2023-01-02T20:50:11.079-0500` → `2023-01-02 20:50 -0500` (the table
/// form: minutes and the offset Jira wrote); anything else unchanged.
pub(crate) fn short_time(s: &str) -> String {
    let b = s.as_bytes();
    let parts = (s.get(..10), s.get(11..16));
    if let (Some(day), Some(hm)) = parts
        && b[4] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
    {
        let offset = s.rfind(['+', '-']).filter(|i| *i > 19).map(|i| &s[i..]);
        return match offset {
            Some(o) => format!("{day} {hm} {o}"),
            None => format!("{day} {hm}"),
        };
    }
    table::clean(s)
}

/// The preview as `format` for a terminal `width` columns wide.
pub fn render(p: &Preview, format: Format, width: usize) -> Result<String> {
    let rows = |clean: bool| -> Vec<Vec<String>> {
        p.issues
            .iter()
            .map(|i| {
                std::iter::once(i.key.clone())
                    .chain(p.columns.iter().map(|c| {
                        let s = display_value(i.fields.get(&c.id).unwrap_or(&Value::Null));
                        if clean {
                            if c.kind.as_deref() == Some("datetime") {
                                short_time(&s)
                            } else {
                                table::clean(&s)
                            }
                        } else {
                            s
                        }
                    }))
                    .collect()
            })
            .collect()
    };
    Ok(match format {
        Format::Json => {
            let mut s = serde_json::to_string_pretty(p)
                .map_err(|e| Error::Other(format!("cannot encode the preview: {e}")))?;
            s.push('\n');
            s
        }
        Format::Csv => {
            let headers: Vec<String> = std::iter::once("key".to_string())
                .chain(p.columns.iter().map(|c| c.id.clone()))
                .collect();
            table::csv(&headers, &rows(false))
        }
        Format::Table => {
            let headers: Vec<String> = std::iter::once("Key".to_string())
                .chain(p.columns.iter().map(|c| table::clean(&c.name)))
                .collect();
            let r = table::render(&headers, &rows(true), width);
            let foot = match p.total {
                Some(t) => format!("{} of {t} issues", p.issues.len()),
                None => format!("{} issues", p.issues.len()),
            };
            table::with_footer(r, &foot, width)
        }
    })
}

/// `pipeline preview`: resolve the fields, fetch, print.
pub fn exec(session: &Session, args: &PreviewOptions) -> Result<ExitCode> {
    if args.jql.trim().is_empty() {
        return Err(Error::Config(
            "--jql is empty; give a query such as --jql \"project = DEMO ORDER BY updated DESC\""
                .into(),
        ));
    }
    let cfg = session.config();
    let client = super::client(session)?;
    let wanted: Vec<String> = if args.fields.is_empty() {
        DEFAULT_FIELDS.iter().map(|s| s.to_string()).collect()
    } else {
        args.fields
            .iter()
            .filter(|f| {
                let l = f.trim().to_lowercase();
                // The key is always the first column.
                l != "key" && l != "issuekey"
            })
            .cloned()
            .collect()
    };
    let preview = session.block_on(async {
        let cat = fetch(&client).await?;
        let fields = resolve(&cat, &wanted)?;
        fetch_issues(&client, &args.jql, &fields, args.limit, cfg.jira.page_size).await
    })??;
    super::emit(&render(&preview, args.format, table::terminal_width())?)?;
    Ok(ExitCode::Success)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Preview {
        let columns: Vec<Column> = ["summary", "status", "assignee", "labels", "updated"]
            .iter()
            .map(|id| Column {
                id: id.to_string(),
                name: id.to_uppercase(),
                kind: (*id == "updated").then(|| "datetime".to_string()),
            })
            .collect();
        let mut fields = Map::new();
        fields.insert("summary".into(), json!("Line one\nline two, \"quoted\""));
        fields.insert("status".into(), json!({"name": "Open"}));
        fields.insert("assignee".into(), json!(null));
        fields.insert("labels".into(), json!(["a", "b"]));
        fields.insert("updated".into(), json!("2024-03-01T10:11:12.000+0100"));
        Preview {
            jql: "project = DEMO".into(),
            total: Some(7),
            columns,
            issues: vec![PreviewIssue {
                id: "1".into(),
                key: "DEMO-1".into(),
                fields,
            }],
        }
    }

    #[test]
    fn table_render_cleans_shortens_and_reports_dropped_columns() {
        let p = sample();
        let wide = render(&p, Format::Table, 200).unwrap();
        assert!(wide.contains("Line one line two, \"quoted\""), "{wide}");
        assert!(wide.contains("2024-03-01 10:11 +0100"), "{wide}");
        assert!(wide.ends_with("1 of 7 issues\n"), "{wide}");
        let narrow = render(&p, Format::Table, 24).unwrap();
        for l in narrow.lines() {
            assert!(table::width(l) <= 24, "{l:?}");
        }
        assert!(
            !narrow.lines().next().unwrap().contains("UPDATED"),
            "{narrow}"
        );
        assert!(
            narrow
                .lines()
                .last()
                .unwrap()
                .contains("column(s) left out"),
            "{narrow}"
        );
        let csv = render(&p, Format::Csv, 10).unwrap();
        assert_eq!(
            csv,
            "key,summary,status,assignee,labels,updated\nDEMO-1,\"Line one\nline two, \"\"quoted\"\"\",Open,,\"a, b\",2024-03-01T10:11:12.000+0100\n"
        );
    }

    #[test]
    fn table_times_are_short() {
        assert_eq!(
            short_time("2023-01-02T20:50:11.079-0500"),
            "2023-01-02 20:50 -0500"
        );
        assert_eq!(short_time("2023-01-02T20:50:11Z"), "2023-01-02 20:50");
        assert_eq!(short_time("soon\n"), "soon ");
    }

    #[test]
    fn display_values_read_like_jira_screens() {
        assert_eq!(display_value(&json!(null)), "");
        assert_eq!(display_value(&json!(21.0)), "21.0");
        assert_eq!(
            display_value(&json!({"name":"kim","displayName":"Kim Nguyễn"})),
            "Kim Nguyễn"
        );
        assert_eq!(
            display_value(&json!([{"value":"Linux","id":"1"},{"value":"Mac","id":"2"}])),
            "Linux, Mac"
        );
        assert_eq!(
            display_value(&json!({"value":"EMEA","child":{"value":"Paris"}})),
            "EMEA / Paris"
        );
        assert_eq!(
            display_value(
                &json!({"type":{"outward":"blocks","inward":"is blocked by"},"outwardIssue":{"key":"DEMO-7"}})
            ),
            "blocks DEMO-7"
        );
        assert_eq!(
            display_value(&json!([
                "com.atlassian.greenhopper.service.sprint.Sprint@89025cc1[id=1,rapidViewId=1,state=CLOSED,name=Sprint 1,startDate=2023-01-01T04:00:00.000-05:00]"
            ])),
            "Sprint 1"
        );
        assert_eq!(display_value(&json!({"key":"DEMO-1","id":"1"})), "DEMO-1");
    }
}
