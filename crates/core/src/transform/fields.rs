//! The field catalogue (`/rest/api/2/field`, staged per extract run) and the
//! typing of custom fields into `issue_field_value` rows.
//!
//! A custom field's type comes from its schema in the catalogue (else from the
//! page's own `schema` map when the search was expanded with it); a value that
//! does not have the shape its schema announces, and a field nobody describes,
//! is typed from the JSON value itself. Nothing is dropped: whatever cannot be
//! typed is kept as its JSON text (`value_kind = json`).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde_json::Value as Json;

use super::tape::V;
use super::time::{parse_date, parse_datetime, put_date, put_ts};
use crate::config::Scope;
use crate::error::{Error, Result};
use crate::tables::{self, CopyRow};

/// The type of one element of a custom field's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Elem {
    Number,
    /// Short text (`value_kind = string`).
    String,
    /// Long text, e.g. a textarea (`value_kind = text`).
    Text,
    /// A select option `{id, value}`.
    Option,
    /// An object named by `name` with an `id` (version, component, …): an option row.
    Named,
    User,
    DateTime,
    Date,
    /// GreenHopper sprint (legacy `Sprint@…[…]` string, or an object).
    Sprint,
    /// Anything else: kept as JSON text.
    Json,
    /// Not described: typed from the value.
    Infer,
}

/// A custom field's type: its element type and whether the value is an array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldType {
    pub elem: Elem,
    pub array: bool,
}

impl FieldType {
    pub(crate) const INFER: FieldType = FieldType {
        elem: Elem::Infer,
        array: false,
    };

    /// From a field schema: `type`, `items`, `custom`.
    pub(crate) fn from_schema(
        ty: Option<&str>,
        items: Option<&str>,
        custom: Option<&str>,
    ) -> FieldType {
        let custom = custom.unwrap_or("");
        if custom.ends_with(":gh-sprint") {
            return FieldType {
                elem: Elem::Sprint,
                array: true,
            };
        }
        if custom.ends_with(":gh-epic-link") {
            return FieldType {
                elem: Elem::String,
                array: false,
            };
        }
        let scalar = |t: &str| match t {
            "number" => Elem::Number,
            "string" if custom.ends_with(":textarea") => Elem::Text,
            "string" => Elem::String,
            "option" => Elem::Option,
            "user" => Elem::User,
            "datetime" => Elem::DateTime,
            "date" => Elem::Date,
            "version" | "component" => Elem::Named,
            "any" => Elem::Infer,
            _ => Elem::Json,
        };
        match ty {
            Some("array") => FieldType {
                elem: items.map(scalar).unwrap_or(Elem::Infer),
                array: true,
            },
            Some(t) => FieldType {
                elem: scalar(t),
                array: false,
            },
            None => FieldType::INFER,
        }
    }
}

/// One field of the catalogue.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldDef {
    pub id: String,
    pub name: Option<String>,
    pub custom: Option<bool>,
    pub schema_type: Option<String>,
    pub schema_items: Option<String>,
    pub schema_custom: Option<String>,
    pub custom_id: Option<i64>,
    pub ty: FieldType,
}

/// The field catalogue of one extract run.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// Sorted by id, one entry per id.
    pub fields: Vec<FieldDef>,
    by_id: HashMap<String, usize>,
    by_name: HashMap<String, Vec<usize>>,
}

impl Catalog {
    /// Parses a raw `/rest/api/2/field` response (a JSON array of fields).
    /// Entries without a string `id` are skipped; a duplicate id keeps its first entry.
    pub fn parse(raw: &[u8]) -> std::result::Result<Catalog, String> {
        let v: Json = serde_json::from_slice(raw).map_err(|e| format!("not JSON ({e})"))?;
        let Json::Array(items) = v else {
            return Err("not a /rest/api/2/field response (expected a JSON array)".into());
        };
        let mut fields: Vec<FieldDef> = Vec::with_capacity(items.len());
        for it in &items {
            let Some(id) = it.get("id").and_then(Json::as_str) else {
                continue;
            };
            let schema = it.get("schema");
            let sget = |k: &str| {
                schema
                    .and_then(|s| s.get(k))
                    .and_then(Json::as_str)
                    .map(str::to_owned)
            };
            let schema_type = sget("type");
            let schema_items = sget("items");
            let schema_custom = sget("custom");
            let custom_id = schema.and_then(|s| s.get("customId")).and_then(|c| {
                c.as_i64()
                    .or_else(|| c.as_str().and_then(|s| s.parse().ok()))
            });
            let ty = FieldType::from_schema(
                schema_type.as_deref(),
                schema_items.as_deref(),
                schema_custom.as_deref(),
            );
            fields.push(FieldDef {
                id: id.to_owned(),
                name: it.get("name").and_then(Json::as_str).map(str::to_owned),
                custom: it.get("custom").and_then(Json::as_bool),
                schema_type,
                schema_items,
                schema_custom,
                custom_id,
                ty,
            });
        }
        // Stable sort keeps the first of duplicate ids first; then drop the rest.
        fields.sort_by(|a, b| a.id.cmp(&b.id));
        fields.dedup_by(|b, a| a.id == b.id);
        Ok(Catalog::from_fields(fields))
    }

    pub(crate) fn from_fields(fields: Vec<FieldDef>) -> Catalog {
        let mut by_id = HashMap::with_capacity(fields.len());
        let mut by_name: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, f) in fields.iter().enumerate() {
            by_id.insert(f.id.clone(), i);
            if let Some(n) = &f.name {
                by_name.entry(n.clone()).or_default().push(i);
            }
        }
        Catalog {
            fields,
            by_id,
            by_name,
        }
    }

    /// Reads `staging/catalog/<run_id>.field.json.zst`; `Ok(None)` if absent.
    pub fn load(path: &Path) -> Result<Option<Catalog>> {
        if !path.exists() {
            return Ok(None);
        }
        let raw = crate::staging::read_zstd(path)?;
        Catalog::parse(&raw)
            .map(Some)
            .map_err(|msg| Error::Staging {
                path: path.to_path_buf(),
                msg: format!(
                    "the field catalogue is {msg}; delete it and rerun extract for this run, or move the run's pages out of the staging area"
                ),
            })
    }

    pub fn get(&self, id: &str) -> Option<&FieldDef> {
        self.by_id.get(id).map(|&i| &self.fields[i])
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The id of the one field named `name` (custom or system as asked);
    /// `None` when no field or several carry the name.
    pub(crate) fn unique_by_name(&self, name: &str, custom: bool) -> Option<&str> {
        let ids: Vec<&str> = self
            .by_name
            .get(name)?
            .iter()
            .map(|&i| &self.fields[i])
            .filter(|f| f.custom.unwrap_or(f.id.starts_with("customfield_")) == custom)
            .map(|f| f.id.as_str())
            .collect();
        match ids.as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }

    /// `field` table rows, one per catalogue entry, sorted by id.
    pub(crate) fn write_field_rows(&self, out: &mut Vec<u8>) -> u64 {
        for f in &self.fields {
            CopyRow::of(&tables::FIELD, out)
                .text(&f.id)
                .opt_text(f.name.as_deref())
                .opt_bool(f.custom)
                .opt_text(f.schema_type.as_deref())
                .opt_text(f.schema_items.as_deref())
                .opt_text(f.schema_custom.as_deref())
                .opt_i64(f.custom_id)
                .end();
        }
        self.fields.len() as u64
    }
}

/// Which custom fields of a scope go to `issue_field_value`.
#[derive(Debug, Clone)]
pub struct Selection {
    pub all: bool,
    pub ids: HashSet<String>,
    /// Names not found in the catalogue; resolved per page through its `names` map.
    pub names: Vec<String>,
}

impl Selection {
    /// Resolves a scope's `fields` list (`*all`, ids, names) through the catalogue.
    pub(crate) fn resolve(scope: &Scope, catalog: &Catalog) -> Selection {
        let mut sel = Selection {
            all: scope.all_custom_fields(),
            ids: HashSet::new(),
            names: Vec::new(),
        };
        for f in &scope.fields {
            if f == "*all" {
                continue;
            }
            if catalog.by_id.contains_key(f.as_str()) || f.starts_with("customfield_") {
                sel.ids.insert(f.clone());
            }
            let by_name = catalog.by_name.get(f.as_str()).or_else(|| {
                catalog
                    .by_name
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(f))
                    .map(|(_, v)| v)
            });
            match by_name {
                Some(idx) => {
                    for &i in idx {
                        sel.ids.insert(catalog.fields[i].id.clone());
                    }
                }
                None if !f.starts_with("customfield_") => sel.names.push(f.clone()),
                None => {}
            }
        }
        sel
    }

    /// Every custom field.
    pub fn all() -> Selection {
        Selection {
            all: true,
            ids: HashSet::new(),
            names: Vec::new(),
        }
    }

    pub(crate) fn wants(&self, id: &str, page_names: Option<&HashMap<&str, &str>>) -> bool {
        if self.all || self.ids.contains(id) {
            return true;
        }
        if self.names.is_empty() {
            return false;
        }
        page_names
            .and_then(|m| m.get(id))
            .is_some_and(|n| self.names.iter().any(|w| w == n))
    }
}

/// Per-page typing context: the catalogue plus the page's own `schema` map.
pub(crate) struct Typing<'a, 't, 'i> {
    pub catalog: &'a Catalog,
    pub page_schema: HashMap<&'i str, FieldType>,
    pub page_names: Option<HashMap<&'i str, &'i str>>,
    pub selection: &'a Selection,
    _t: std::marker::PhantomData<&'t ()>,
}

impl<'a, 't, 'i> Typing<'a, 't, 'i> {
    /// `schema` and `names` are the search response's top-level maps, if expanded.
    pub fn new(
        catalog: &'a Catalog,
        selection: &'a Selection,
        schema: Option<V<'t, 'i>>,
        names: Option<V<'t, 'i>>,
    ) -> Self {
        let mut page_schema = HashMap::new();
        if let Some(obj) = schema.and_then(|s| s.obj()) {
            for (id, s) in obj {
                if id.starts_with("customfield_") && catalog.get(id).is_none() {
                    page_schema.insert(
                        id,
                        FieldType::from_schema(
                            s.get_str("type"),
                            s.get_str("items"),
                            s.get_str("custom"),
                        ),
                    );
                }
            }
        }
        let page_names = if selection.names.is_empty() {
            None
        } else {
            names.and_then(|n| n.obj()).map(|o| {
                o.filter_map(|(k, v)| v.str().map(|s| (k, s)))
                    .collect::<HashMap<_, _>>()
            })
        };
        Typing {
            catalog,
            page_schema,
            page_names,
            selection,
            _t: std::marker::PhantomData,
        }
    }

    pub(crate) fn wants(&self, id: &str) -> bool {
        self.selection.wants(id, self.page_names.as_ref())
    }

    pub(crate) fn type_of(&self, id: &str) -> FieldType {
        if let Some(f) = self.catalog.get(id) {
            return f.ty;
        }
        self.page_schema
            .get(id)
            .copied()
            .unwrap_or(FieldType::INFER)
    }
}

/// One `issue_field_value` row being built.
#[derive(Default)]
struct Fv<'s> {
    kind: &'static str,
    text: Option<&'s str>,
    number: Option<f64>,
    ts: Option<chrono::DateTime<chrono::Utc>>,
    date: Option<chrono::NaiveDate>,
    option_id: Option<i64>,
    user_key: Option<&'s str>,
    sprint_state: Option<&'s str>,
    json: Option<&'s str>,
}

/// A parsed legacy GreenHopper sprint string.
#[derive(Debug, PartialEq, Eq)]
pub struct Sprint<'s> {
    pub id: Option<i64>,
    pub name: Option<&'s str>,
    pub state: Option<&'s str>,
}

const SPRINT_PREFIX: &str = "com.atlassian.greenhopper.service.sprint.Sprint@";

/// Parses `com.atlassian.greenhopper.service.sprint.Sprint@1a2b[id=1,rapidViewId=2,state=CLOSED,name=Sprint 1,…]`.
/// A value runs until the next `,<identifier>=`, so names may contain commas.
pub(crate) fn parse_sprint(s: &str) -> Option<Sprint<'_>> {
    let rest = s.strip_prefix(SPRINT_PREFIX)?;
    let open = rest.find('[')?;
    let body = rest[open + 1..].strip_suffix(']')?;
    let b = body.as_bytes();
    // Start offsets of every `key=` (at 0 or after a comma).
    let mut starts = Vec::with_capacity(12);
    let mut i = 0;
    while i < b.len() {
        if i == 0 || b[i - 1] == b',' {
            let mut j = i;
            while j < b.len() && b[j].is_ascii_alphanumeric() {
                j += 1;
            }
            if j > i && j < b.len() && b[j] == b'=' {
                starts.push((i, j));
            }
        }
        i += 1;
    }
    let mut out = Sprint {
        id: None,
        name: None,
        state: None,
    };
    for (n, &(k0, eq)) in starts.iter().enumerate() {
        let end = starts.get(n + 1).map(|&(s, _)| s - 1).unwrap_or(b.len());
        let key = &body[k0..eq];
        let val = &body[eq + 1..end];
        match key {
            "id" => out.id = super::tape::parse_i64(val),
            "name" => out.name = Some(val),
            "state" => out.state = Some(val),
            _ => {}
        }
    }
    Some(out)
}

/// Writes the `issue_field_value` rows of one custom field; returns the count.
pub(crate) fn write_custom(
    out: &mut Vec<u8>,
    scratch: &mut String,
    issue_id: i64,
    field_id: &str,
    ty: FieldType,
    v: V<'_, '_>,
) -> u64 {
    let mut n = 0;
    match (ty.array, v.arr()) {
        (_, Some(items)) => {
            // Declared arrays, and arrays where a scalar was announced (typed per element).
            let elem = if ty.array { ty.elem } else { Elem::Infer };
            for (ord, item) in items.enumerate() {
                if item.is_null() {
                    continue;
                }
                if item.is_array() {
                    n += write_elem(out, scratch, issue_id, field_id, ord, Elem::Json, item);
                } else {
                    n += write_elem(out, scratch, issue_id, field_id, ord, elem, item);
                }
            }
        }
        (_, None) => {
            if !v.is_null() {
                n += write_elem(out, scratch, issue_id, field_id, 0, ty.elem, v);
            }
        }
    }
    n
}

fn write_elem(
    out: &mut Vec<u8>,
    scratch: &mut String,
    issue_id: i64,
    field_id: &str,
    ordinal: usize,
    elem: Elem,
    v: V<'_, '_>,
) -> u64 {
    let fv = typed(elem, v).or_else(|| infer(v));
    let fv = match fv {
        Some(fv) => fv,
        None => {
            scratch.clear();
            v.write_json(scratch);
            Fv {
                kind: "json",
                json: Some(scratch.as_str()),
                ..Fv::default()
            }
        }
    };
    let mut row = CopyRow::of(&tables::ISSUE_FIELD_VALUE, out);
    row.i64(issue_id)
        .text(field_id)
        .i64(ordinal as i64)
        .text(fv.kind)
        .opt_text(fv.text)
        .opt_f64(fv.number);
    put_ts(&mut row, fv.ts);
    put_date(&mut row, fv.date);
    row.opt_i64(fv.option_id)
        .opt_text(fv.user_key)
        .opt_text(fv.sprint_state)
        .opt_text(fv.json)
        .end();
    1
}

fn user_name<'s>(v: V<'_, 's>) -> Option<&'s str> {
    v.get_str("name")
        .or_else(|| v.get_str("key"))
        .or_else(|| v.get_str("displayName"))
}

/// The row for `v` typed as `elem`, or `None` when the value does not fit.
fn typed<'s>(elem: Elem, v: V<'_, 's>) -> Option<Fv<'s>> {
    match elem {
        Elem::Number => v.f64().map(|x| Fv {
            kind: "number",
            number: Some(x),
            ..Fv::default()
        }),
        Elem::String | Elem::Text => v.str().map(|s| typed_string(elem, s)),
        Elem::Option => {
            if v.get("child").is_some() {
                return None;
            }
            Some(option_row(v.get_str("value")?, v))
        }
        Elem::Named => Some(option_row(v.get_str("name")?, v)),
        Elem::User => typed_user(v),
        Elem::DateTime => v.str().map(|s| match parse_datetime(s) {
            Some(t) => Fv {
                kind: "datetime",
                ts: Some(t),
                ..Fv::default()
            },
            None => string_row(s),
        }),
        Elem::Date => v.str().map(|s| match parse_date(s) {
            Some(d) => Fv {
                kind: "date",
                date: Some(d),
                ..Fv::default()
            },
            None => string_row(s),
        }),
        Elem::Sprint => typed_sprint(v),
        Elem::Json | Elem::Infer => None,
    }
}

/// A string or text value; a sprint's `toString()` spelling becomes a sprint.
fn typed_string(elem: Elem, s: &str) -> Fv<'_> {
    match parse_sprint(s) {
        Some(sp) => sprint_row(sp.id, sp.name, sp.state),
        None => Fv {
            kind: if elem == Elem::Text { "text" } else { "string" },
            text: Some(s),
            ..Fv::default()
        },
    }
}

/// A text a typed field could not parse, kept as a string.
fn string_row(s: &str) -> Fv<'_> {
    Fv {
        kind: "string",
        text: Some(s),
        ..Fv::default()
    }
}

/// An option (or a named object: component, version…): its text and id.
fn option_row<'s>(text: &'s str, v: V<'_, 's>) -> Fv<'s> {
    Fv {
        kind: "option",
        text: Some(text),
        option_id: v.get("id").and_then(|i| i.id()),
        ..Fv::default()
    }
}

/// A user: a bare name, or an object with name and key.
fn typed_user<'s>(v: V<'_, 's>) -> Option<Fv<'s>> {
    if let Some(s) = v.str() {
        return Some(Fv {
            kind: "user",
            text: Some(s),
            ..Fv::default()
        });
    }
    if !v.is_object() {
        return None;
    }
    Some(Fv {
        kind: "user",
        text: user_name(v),
        user_key: v.get_str("key"),
        ..Fv::default()
    })
}

/// A sprint: its `toString()` spelling, or an object with a name.
fn typed_sprint<'s>(v: V<'_, 's>) -> Option<Fv<'s>> {
    if let Some(s) = v.str() {
        return parse_sprint(s).map(|sp| sprint_row(sp.id, sp.name, sp.state));
    }
    if !v.is_object() {
        return None;
    }
    let name = v.get_str("name")?;
    Some(sprint_row(
        v.get("id").and_then(|i| i.id()),
        Some(name),
        v.get_str("state"),
    ))
}

fn sprint_row<'s>(id: Option<i64>, name: Option<&'s str>, state: Option<&'s str>) -> Fv<'s> {
    Fv {
        kind: "sprint",
        text: name,
        option_id: id,
        sprint_state: state,
        ..Fv::default()
    }
}

/// Types a value nobody described, from its JSON shape; `None` → keep as JSON.
fn infer<'s>(v: V<'_, 's>) -> Option<Fv<'s>> {
    if v.is_number() {
        return typed(Elem::Number, v);
    }
    if let Some(s) = v.str() {
        if let Some(sp) = parse_sprint(s) {
            return Some(sprint_row(sp.id, sp.name, sp.state));
        }
        if let Some(t) = parse_datetime(s) {
            return Some(Fv {
                kind: "datetime",
                ts: Some(t),
                ..Fv::default()
            });
        }
        if let Some(d) = parse_date(s) {
            return Some(Fv {
                kind: "date",
                date: Some(d),
                ..Fv::default()
            });
        }
        return typed(Elem::String, v);
    }
    if v.is_object() {
        if v.get("value").is_some_and(|x| x.str().is_some()) && v.get("child").is_none() {
            return typed(Elem::Option, v);
        }
        let userish = v.get("name").is_some_and(|x| x.str().is_some())
            && (v.get("emailAddress").is_some()
                || v.get("displayName").is_some()
                || v.get("active").is_some()
                || v.get_str("self").is_some_and(|s| s.contains("/user?")));
        if userish {
            return typed(Elem::User, v);
        }
        if v.get("state").is_some()
            && v.get("name").is_some()
            && (v.get("boardId").is_some() || v.get("rapidViewId").is_some())
        {
            return typed(Elem::Sprint, v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::decode_rows;

    #[test]
    fn sprint_strings() {
        let s = "com.atlassian.greenhopper.service.sprint.Sprint@14b1c359[id=1,rapidViewId=1,state=CLOSED,name=Sprint 1, part 2,startDate=2013-07-26T11:31:09.530+10:00,endDate=<null>,completeDate=<null>,sequence=1]";
        let sp = parse_sprint(s).unwrap();
        assert_eq!(sp.id, Some(1));
        assert_eq!(sp.state, Some("CLOSED"));
        assert_eq!(sp.name, Some("Sprint 1, part 2"));
        assert_eq!(parse_sprint("Sprint 1"), None);
        let last = parse_sprint(
            "com.atlassian.greenhopper.service.sprint.Sprint@1[state=ACTIVE,id=7,name=x=y]",
        )
        .unwrap();
        assert_eq!(last.name, Some("x=y"));
        assert_eq!(last.id, Some(7));
    }

    fn rows(ty: FieldType, json: &str) -> Vec<Vec<Option<String>>> {
        let mut b = json.as_bytes().to_vec();
        let tape = simd_json::to_tape(&mut b).unwrap();
        let v = V::root(&tape).unwrap();
        let mut out = Vec::new();
        let mut scratch = String::new();
        let n = write_custom(&mut out, &mut scratch, 7, "customfield_1", ty, v);
        let r = decode_rows(&out);
        assert_eq!(r.len() as u64, n);
        r
    }

    fn t(ty: &str, items: Option<&str>, custom: Option<&str>) -> FieldType {
        FieldType::from_schema(Some(ty), items, custom)
    }

    const KIND: usize = 3;
    const TEXT: usize = 4;
    const NUM: usize = 5;
    const TS: usize = 6;
    const DATE: usize = 7;
    const OPT: usize = 8;
    const UKEY: usize = 9;
    const STATE: usize = 10;
    const JSON: usize = 11;

    #[test]
    fn typed_by_schema() {
        let r = rows(t("number", None, None), "1.457");
        assert_eq!(r[0][KIND].as_deref(), Some("number"));
        assert_eq!(r[0][NUM].as_deref(), Some("1.457"));

        let r = rows(t("option", None, None), r#"{"value":"Two","id":"10001"}"#);
        assert_eq!(r[0][KIND].as_deref(), Some("option"));
        assert_eq!(r[0][TEXT].as_deref(), Some("Two"));
        assert_eq!(r[0][OPT].as_deref(), Some("10001"));

        let r = rows(
            t("user", None, None),
            r#"{"name":"wseliga","key":"k1","displayName":"W"}"#,
        );
        assert_eq!(r[0][TEXT].as_deref(), Some("wseliga"));
        assert_eq!(r[0][UKEY].as_deref(), Some("k1"));

        let r = rows(
            t("datetime", None, None),
            r#""2012-04-12T14:26:00.000+0200""#,
        );
        assert_eq!(r[0][TS].as_deref(), Some("2012-04-12 12:26:00.000000+00"));

        let r = rows(t("date", None, None), r#""2012-04-12""#);
        assert_eq!(r[0][DATE].as_deref(), Some("2012-04-12"));

        let r = rows(
            t(
                "array",
                Some("string"),
                Some("com.atlassian.jira.plugin.system.customfieldtypes:labels"),
            ),
            r#"["a",null,"b"]"#,
        );
        assert_eq!(r.len(), 2);
        assert_eq!(r[1][2].as_deref(), Some("2"));
        assert_eq!(r[1][TEXT].as_deref(), Some("b"));

        let r = rows(
            t(
                "array",
                Some("string"),
                Some("com.pyxis.greenhopper.jira:gh-sprint"),
            ),
            r#"["com.atlassian.greenhopper.service.sprint.Sprint@1[id=3,rapidViewId=1,state=ACTIVE,name=S 3,goal=]"]"#,
        );
        assert_eq!(r[0][KIND].as_deref(), Some("sprint"));
        assert_eq!(r[0][OPT].as_deref(), Some("3"));
        assert_eq!(r[0][TEXT].as_deref(), Some("S 3"));
        assert_eq!(r[0][STATE].as_deref(), Some("ACTIVE"));

        let r = rows(
            t("any", None, Some("com.pyxis.greenhopper.jira:gh-epic-link")),
            r#""EPIC-1""#,
        );
        assert_eq!(r[0][KIND].as_deref(), Some("string"));
        assert_eq!(r[0][TEXT].as_deref(), Some("EPIC-1"));

        let r = rows(
            t("array", Some("version"), None),
            r#"[{"id":"10000","name":"1.1"},{"id":"10001","name":"2"}]"#,
        );
        assert_eq!(r.len(), 2);
        assert_eq!(r[1][OPT].as_deref(), Some("10001"));

        let cascading = r#"{"value":"A","id":"1","child":{"value":"B","id":"2"}}"#;
        let r = rows(t("option-with-child", None, None), cascading);
        assert_eq!(r[0][KIND].as_deref(), Some("json"));
        assert_eq!(r[0][JSON].as_deref(), Some(cascading));
    }

    #[test]
    fn unexpected_shapes_are_inferred_never_dropped() {
        // The real fixture: a multiselect (array of string) holding a number.
        let r = rows(t("array", Some("string"), None), "1.457");
        assert_eq!(r[0][KIND].as_deref(), Some("number"));
        // A number field holding text.
        let r = rows(t("number", None, None), r#""12 points""#);
        assert_eq!(r[0][KIND].as_deref(), Some("string"));
        assert_eq!(r[0][TEXT].as_deref(), Some("12 points"));
        // Unknown object: JSON text.
        let r = rows(FieldType::INFER, r#"{"self":"x","id":"10000","key":"TST"}"#);
        assert_eq!(r[0][KIND].as_deref(), Some("json"));
        assert_eq!(
            r[0][JSON].as_deref(),
            Some(r#"{"self":"x","id":"10000","key":"TST"}"#)
        );
        // Booleans and nested arrays.
        let r = rows(FieldType::INFER, "[true,[1,2]]");
        assert_eq!(r[0][JSON].as_deref(), Some("true"));
        assert_eq!(r[1][JSON].as_deref(), Some("[1,2]"));
        // Inferred scalars.
        let r = rows(
            FieldType::INFER,
            r#"["2012-04-12T14:26:00.000+0200","2012-04-12","x"]"#,
        );
        let kinds: Vec<_> = r.iter().map(|x| x[KIND].clone().unwrap()).collect();
        assert_eq!(kinds, ["datetime", "date", "string"]);
        // Empty arrays and null give no rows.
        assert!(rows(FieldType::INFER, "[]").is_empty());
        assert!(rows(FieldType::INFER, "null").is_empty());
    }

    #[test]
    fn catalogue_and_selection() {
        let raw = br#"[{"id":"summary","name":"Summary","custom":false,"schema":{"type":"string","system":"summary"}},
            {"id":"customfield_2","name":"Points","custom":true,"schema":{"type":"number","custom":"x:float","customId":2}},
            {"id":"customfield_1","name":"Team","custom":true,"schema":{"type":"option","custom":"x:select","customId":1}},
            {"id":"customfield_1","name":"Dup"},
            {"name":"no id"}]"#;
        let c = Catalog::parse(raw).unwrap();
        let ids: Vec<_> = c.fields.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(ids, ["customfield_1", "customfield_2", "summary"]);
        assert_eq!(c.get("customfield_2").unwrap().ty.elem, Elem::Number);
        let mut out = Vec::new();
        assert_eq!(c.write_field_rows(&mut out), 3);
        let r = decode_rows(&out);
        assert_eq!(r[1][1].as_deref(), Some("Points"));
        assert_eq!(r[1][6].as_deref(), Some("2"));
        assert_eq!(r[2][2].as_deref(), Some("f"));

        let scope = Scope {
            name: "s".into(),
            project: "P".into(),
            issue_types: vec![],
            fields: vec!["Points".into(), "customfield_9".into(), "Other".into()],
            jql: None,
        };
        let sel = Selection::resolve(&scope, &c);
        assert!(sel.wants("customfield_2", None));
        assert!(sel.wants("customfield_9", None));
        assert!(!sel.wants("customfield_1", None));
        let names: HashMap<&str, &str> = [("customfield_5", "Other")].into_iter().collect();
        assert!(sel.wants("customfield_5", Some(&names)));
        assert!(Catalog::parse(b"{\"errorMessages\":[]}").is_err());
        assert!(Catalog::parse(b"<html>").is_err());
    }
}
