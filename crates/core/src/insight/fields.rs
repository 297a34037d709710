//! `pipeline fields`: the field catalogue from `GET /rest/api/2/field` (id,
//! name, custom, schema type, items, custom type), filtered by kind and by a
//! substring; and [`resolve`], which turns field names or ids given by a user
//! into catalogue entries, naming close matches when one is unknown.

use serde::{Deserialize, Serialize};

use super::Format;
use super::table;
use crate::error::{Error, ExitCode, JiraKind, Result};
use crate::session::Session;

/// One field of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldInfo {
    pub id: String,
    pub name: String,
    pub custom: bool,
    /// `schema.type` (`string`, `array`, `option`, …); none for e.g. `issuekey`.
    #[serde(rename = "type")]
    pub schema_type: Option<String>,
    /// `schema.items`, the element type of an array.
    pub items: Option<String>,
    /// `schema.custom`, the custom field type key.
    pub custom_type: Option<String>,
    /// JQL clause names (`cf[10100]`, `type`, …).
    #[serde(skip)]
    pub clause_names: Vec<String>,
}

#[derive(Deserialize)]
struct RawField {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    custom: bool,
    #[serde(default)]
    schema: Option<RawSchema>,
    #[serde(default, rename = "clauseNames")]
    clause_names: Vec<String>,
}

#[derive(Deserialize)]
struct RawSchema {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    items: Option<String>,
    #[serde(default)]
    custom: Option<String>,
}

/// Parses a `/rest/api/2/field` body.
pub(crate) fn parse_catalog(body: &[u8]) -> Result<Vec<FieldInfo>> {
    let raw: Vec<RawField> = serde_json::from_slice(body).map_err(|e| {
        Error::jira(JiraKind::BadBody, format!(
            "GET /rest/api/2/field: the field catalogue is not the JSON Jira sends ({e}); check jira.base_url"
        ))
    })?;
    Ok(raw
        .into_iter()
        .map(|f| {
            let schema = f.schema.unwrap_or(RawSchema {
                kind: None,
                items: None,
                custom: None,
            });
            FieldInfo {
                name: f.name.unwrap_or_else(|| f.id.clone()),
                id: f.id,
                custom: f.custom,
                schema_type: schema.kind,
                items: schema.items,
                custom_type: schema.custom,
                clause_names: f.clause_names,
            }
        })
        .collect())
}

/// Fetches and parses the catalogue.
pub(crate) async fn fetch(client: &crate::jira::JiraClient) -> Result<Vec<FieldInfo>> {
    let body = client.fields().await?;
    parse_catalog(&body)
}

/// Which fields `pipeline fields` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    All,
    Custom,
    System,
}

/// The catalogue entries of `kind` whose id or name contains `pattern`
/// (case-insensitive), system fields first, then by name.
pub fn filter(cat: &[FieldInfo], kind: Kind, pattern: Option<&str>) -> Vec<FieldInfo> {
    let pat = pattern.map(str::to_lowercase);
    let mut out: Vec<FieldInfo> = cat
        .iter()
        .filter(|f| match kind {
            Kind::All => true,
            Kind::Custom => f.custom,
            Kind::System => !f.custom,
        })
        .filter(|f| {
            pat.as_deref().is_none_or(|p| {
                f.id.to_lowercase().contains(p) || f.name.to_lowercase().contains(p)
            })
        })
        .cloned()
        .collect();
    out.sort_by(|a, b| {
        (a.custom, a.name.to_lowercase(), &a.id).cmp(&(b.custom, b.name.to_lowercase(), &b.id))
    });
    out
}

/// Up to three catalogue entries that look like `wanted`: names or ids
/// containing it (or contained in it), then the closest by edit distance.
pub(crate) fn close_matches<'a>(cat: &'a [FieldInfo], wanted: &str) -> Vec<&'a FieldInfo> {
    let w = wanted.trim().to_lowercase();
    let mut scored: Vec<(f64, &FieldInfo)> = cat
        .iter()
        .filter_map(|f| {
            let name = f.name.to_lowercase();
            let id = f.id.to_lowercase();
            let sub = !w.is_empty()
                && (name.contains(&w) || id.contains(&w) || (name.len() >= 3 && w.contains(&name)));
            let sim = strsim::normalized_damerau_levenshtein(&w, &name)
                .max(strsim::normalized_damerau_levenshtein(&w, &id))
                .max(strsim::jaro_winkler(&w, &name) - 0.15);
            let score = if sub { 1.0 + sim } else { sim };
            (score >= 0.6).then_some((score, f))
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.id.cmp(&b.1.id)));
    scored.into_iter().take(3).map(|(_, f)| f).collect()
}

/// Resolves field ids or names (case-insensitive; also JQL clause names such
/// as `cf[10100]`) to catalogue entries, in the order given, without
/// duplicates. An unknown or ambiguous name is a usage error (exit 2) that
/// names it and suggests close matches.
pub(crate) fn resolve(cat: &[FieldInfo], wanted: &[String]) -> Result<Vec<FieldInfo>> {
    let mut out: Vec<FieldInfo> = Vec::new();
    for w in wanted {
        let w = w.trim();
        if w.is_empty() {
            continue;
        }
        let lw = w.to_lowercase();
        let by = |pred: &dyn Fn(&FieldInfo) -> bool| -> Vec<&FieldInfo> {
            cat.iter().filter(|f| pred(f)).collect()
        };
        let mut hits = by(&|f| f.id == w);
        if hits.is_empty() {
            hits = by(&|f| f.id.to_lowercase() == lw);
        }
        if hits.is_empty() {
            hits = by(&|f| f.name.to_lowercase() == lw);
        }
        if hits.is_empty() {
            hits = by(&|f| f.clause_names.iter().any(|c| c.to_lowercase() == lw));
        }
        match hits.as_slice() {
            [one] => {
                if !out.iter().any(|f| f.id == one.id) {
                    out.push((*one).clone());
                }
            }
            [] => {
                let near = close_matches(cat, w);
                let hint = if near.is_empty() {
                    "no field looks like it".to_string()
                } else {
                    let list: Vec<String> = near
                        .iter()
                        .map(|f| format!("{:?} ({})", f.name, f.id))
                        .collect();
                    format!("did you mean {}?", list.join(" or "))
                };
                return Err(Error::Config(format!(
                    "--fields: Jira has no field named {w:?}; {hint} (`pipeline fields --match TEXT` lists the catalogue)"
                )));
            }
            many => {
                let ids: Vec<&str> = many.iter().map(|f| f.id.as_str()).collect();
                return Err(Error::Config(format!(
                    "--fields: {} fields are named {w:?} ({}); give the id instead",
                    many.len(),
                    ids.join(", ")
                )));
            }
        }
    }
    Ok(out)
}

/// `pipeline fields` options.
#[derive(Debug, Clone)]
pub struct FieldsOptions {
    /// Only custom fields.
    pub custom: bool,
    /// Only system fields.
    pub system: bool,
    /// Only fields whose id or name contains this text (case-insensitive).
    pub pattern: Option<String>,
    /// Output format.
    pub format: Format,
}

/// The columns of the catalogue table and CSV.
pub const COLUMNS: [&str; 6] = ["id", "name", "custom", "type", "items", "custom type"];

fn row(f: &FieldInfo) -> Vec<String> {
    vec![
        f.id.clone(),
        f.name.clone(),
        if f.custom { "yes" } else { "no" }.into(),
        f.schema_type.clone().unwrap_or_default(),
        f.items.clone().unwrap_or_default(),
        f.custom_type.clone().unwrap_or_default(),
    ]
}

/// The catalogue as `format`, for a terminal `width` columns wide.
pub(crate) fn format_catalog(fields: &[FieldInfo], format: Format, width: usize) -> Result<String> {
    let headers: Vec<String> = COLUMNS.iter().map(|c| c.to_string()).collect();
    Ok(match format {
        Format::Json => {
            let mut s = serde_json::to_string_pretty(fields)
                .map_err(|e| Error::Other(format!("cannot encode the catalogue: {e}")))?;
            s.push('\n');
            s
        }
        Format::Csv => table::csv(&headers, &fields.iter().map(row).collect::<Vec<_>>()),
        Format::Table => {
            let rows: Vec<Vec<String>> = fields
                .iter()
                .map(|f| row(f).iter().map(|c| table::clean(c)).collect())
                .collect();
            let r = table::render(&headers, &rows, width);
            let foot = format!(
                "{} field{}",
                fields.len(),
                if fields.len() == 1 { "" } else { "s" }
            );
            table::with_footer(r, &foot, width)
        }
    })
}

/// `pipeline fields`: fetch, filter, print.
pub fn exec(session: &Session, args: &FieldsOptions) -> Result<ExitCode> {
    let client = super::client(session)?;
    let cat = session.block_on(fetch(&client))??;
    let kind = if args.custom {
        Kind::Custom
    } else if args.system {
        Kind::System
    } else {
        Kind::All
    };
    let shown = filter(&cat, kind, args.pattern.as_deref());
    super::emit(&format_catalog(
        &shown,
        args.format,
        table::terminal_width(),
    )?)?;
    Ok(ExitCode::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cat() -> Vec<FieldInfo> {
        parse_catalog(
            br#"[
            {"id":"summary","name":"Summary","custom":false,"schema":{"type":"string","system":"summary"},"clauseNames":["summary"]},
            {"id":"issuetype","name":"Issue Type","custom":false,"schema":{"type":"issuetype"},"clauseNames":["issuetype","type"]},
            {"id":"customfield_10100","name":"Story Points","custom":true,"schema":{"type":"number","custom":"x:float","customId":10100},"clauseNames":["cf[10100]","Story Points"]},
            {"id":"customfield_10103","name":"Platforms","custom":true,"schema":{"type":"array","items":"option","custom":"x:multiselect"}},
            {"id":"customfield_10200","name":"Team","custom":true},
            {"id":"customfield_10201","name":"Team","custom":true},
            {"id":"issuekey","name":"Key","custom":false}
        ]"#,
        )
        .unwrap()
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_schema_parts() {
        let c = cat();
        let p = c.iter().find(|f| f.id == "customfield_10103").unwrap();
        assert_eq!(p.schema_type.as_deref(), Some("array"));
        assert_eq!(p.items.as_deref(), Some("option"));
        assert_eq!(p.custom_type.as_deref(), Some("x:multiselect"));
        assert!(
            c.iter()
                .find(|f| f.id == "issuekey")
                .unwrap()
                .schema_type
                .is_none()
        );
        assert!(parse_catalog(b"<html>").is_err());
    }

    #[test]
    fn filters_by_kind_and_substring() {
        let c = cat();
        assert!(filter(&c, Kind::Custom, None).iter().all(|f| f.custom));
        assert!(filter(&c, Kind::System, None).iter().all(|f| !f.custom));
        let m = filter(&c, Kind::All, Some("POINT"));
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].id, "customfield_10100");
        assert_eq!(filter(&c, Kind::All, Some("10103"))[0].name, "Platforms");
    }

    #[test]
    fn resolves_ids_names_and_clause_names() {
        let c = cat();
        let r = resolve(
            &c,
            &names(&[
                "summary",
                "story points",
                "customfield_10103",
                "TYPE",
                "cf[10100]",
            ]),
        )
        .unwrap();
        let ids: Vec<&str> = r.iter().map(|f| f.id.as_str()).collect();
        // "cf[10100]" names Story Points again: no duplicate column.
        assert_eq!(
            ids,
            [
                "summary",
                "customfield_10100",
                "customfield_10103",
                "issuetype"
            ]
        );
    }

    #[test]
    fn unknown_name_suggests_close_matches() {
        let e = resolve(&cat(), &names(&["Story Pints"])).unwrap_err();
        let m = e.to_string();
        assert!(m.contains("\"Story Pints\""), "{m}");
        assert!(
            m.contains("Story Points") && m.contains("customfield_10100"),
            "{m}"
        );
        assert_eq!(e.exit_code(), ExitCode::Usage);
        let e = resolve(&cat(), &names(&["Team"])).unwrap_err();
        assert!(
            e.to_string()
                .contains("customfield_10200, customfield_10201"),
            "{e}"
        );
    }
}
