//! The simulator's JQL: a tokenizer, a recursive-descent parser into [`Query`],
//! compilation against the dataset (names resolved, date literals read in the
//! searching user's time zone) and evaluation/sorting over issue indexes.
//!
//! Supported: `project`, `issuetype`/`type`, `status`, `statusCategory`,
//! `labels`, `created`/`createdDate`, `updated`/`updatedDate`,
//! `resolved`/`resolutiondate`, `id`/`key`/`issuekey`/`issue`; operators
//! `= != < <= > >= IN NOT IN IS [NOT] EMPTY` where Jira allows them; `AND OR
//! NOT ! && || ( )`; `ORDER BY` created/updated/id/key/issuekey ASC/DESC, several
//! keys. Everything else is an error that the server answers with HTTP 400.

use std::cmp::Ordering;

use chrono::{Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;

use super::catalog::{ISSUE_TYPES, STATUSES};
use super::data::{Dataset, ID_BASE};

/// A JQL error: the message Jira would put in `errorMessages`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JqlError(pub String);

impl std::fmt::Display for JqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    Comma,
    Op(&'static str),
    Str(String),
    Word(String),
}

fn tok_text(t: &Tok) -> String {
    match t {
        Tok::LParen => "(".into(),
        Tok::RParen => ")".into(),
        Tok::Comma => ",".into(),
        Tok::Op(o) => (*o).into(),
        Tok::Str(s) => format!("\"{s}\""),
        Tok::Word(w) => w.clone(),
    }
}

fn tokenize(s: &str) -> Result<Vec<(Tok, usize)>, JqlError> {
    let cs: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < cs.len() {
        let c = cs[i];
        let pos = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let (tok, next) = match c {
            '(' => (Tok::LParen, i + 1),
            ')' => (Tok::RParen, i + 1),
            ',' => (Tok::Comma, i + 1),
            '"' | '\'' => {
                let (v, next) = lex_quoted(&cs, i)?;
                (Tok::Str(v), next)
            }
            _ => match lex_op(&cs, i) {
                Some((op, next)) => (Tok::Op(op), next),
                None => {
                    let (w, next) = lex_word(&cs, i);
                    (Tok::Word(w), next)
                }
            },
        };
        out.push((tok, pos));
        i = next;
    }
    Ok(out)
}

/// The quoted string opening at `cs[i]` (backslash escapes read); returns it
/// and the index after its closing quote.
fn lex_quoted(cs: &[char], i: usize) -> Result<(String, usize), JqlError> {
    let pos = i + 1;
    let q = cs[i];
    let mut i = i + 1;
    let mut v = String::new();
    loop {
        match cs.get(i) {
            None => {
                return Err(JqlError(format!(
                    "Error in the JQL Query: The quoted string '{v}' has not been completed. (line 1, character {pos})"
                )));
            }
            Some('\\') => {
                match cs.get(i + 1) {
                    Some('n') => v.push('\n'),
                    Some('t') => v.push('\t'),
                    Some('r') => v.push('\r'),
                    Some(&o) => v.push(o),
                    None => {}
                }
                i += 2;
            }
            Some(&ch) if ch == q => {
                i += 1;
                break;
            }
            Some(&ch) => {
                v.push(ch);
                i += 1;
            }
        }
    }
    Ok((v, i))
}

/// The operator at `cs[i]` (two characters before one), and the index after it.
fn lex_op(cs: &[char], i: usize) -> Option<(&'static str, usize)> {
    let two: String = cs[i..(i + 2).min(cs.len())].iter().collect();
    let op: Option<&'static str> = match two.as_str() {
        "!=" => Some("!="),
        "<=" => Some("<="),
        ">=" => Some(">="),
        "!~" => Some("!~"),
        "&&" => Some("&&"),
        "||" => Some("||"),
        _ => None,
    };
    if let Some(op) = op {
        return Some((op, i + 2));
    }
    let op1: Option<&'static str> = match cs[i] {
        '=' => Some("="),
        '<' => Some("<"),
        '>' => Some(">"),
        '~' => Some("~"),
        '!' => Some("!"),
        '&' => Some("&&"),
        '|' => Some("||"),
        _ => None,
    };
    op1.map(|op| (op, i + 1))
}

/// The bare word starting at `cs[i]`, and the index after it.
fn lex_word(cs: &[char], i: usize) -> (String, usize) {
    let start = i;
    let mut i = i;
    while i < cs.len() {
        let ch = cs[i];
        if ch.is_whitespace() || "()\",=!<>~'&|".contains(ch) {
            break;
        }
        i += 1;
    }
    (cs[start..i].iter().collect(), i)
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    fn holds<T: Ord>(self, a: T, b: T) -> bool {
        match self {
            Cmp::Eq => a == b,
            Cmp::Ne => a != b,
            Cmp::Lt => a < b,
            Cmp::Le => a <= b,
            Cmp::Gt => a > b,
            Cmp::Ge => a >= b,
        }
    }
    fn text(self) -> &'static str {
        match self {
            Cmp::Eq => "=",
            Cmp::Ne => "!=",
            Cmp::Lt => "<",
            Cmp::Le => "<=",
            Cmp::Gt => ">",
            Cmp::Ge => ">=",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Op {
    Cmp(Cmp),
    In(bool),
    IsEmpty(bool),
}

impl Op {
    fn text(&self) -> &'static str {
        match self {
            Op::Cmp(c) => c.text(),
            Op::In(false) => "in",
            Op::In(true) => "not in",
            Op::IsEmpty(false) => "is",
            Op::IsEmpty(true) => "is not",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Value {
    text: String,
    quoted: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Ast {
    All,
    And(Vec<Ast>),
    Or(Vec<Ast>),
    Not(Box<Ast>),
    Clause {
        field: String,
        op: Op,
        values: Vec<Value>,
    },
}

/// Sort fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SortField {
    Created,
    Updated,
    Id,
    Key,
}

/// A parsed JQL query (not yet bound to a dataset).
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    ast: Ast,
    pub order: Vec<(SortField, bool)>,
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    i: usize,
    len: usize,
}

fn kw(t: Option<&Tok>, k: &str) -> bool {
    matches!(t, Some(Tok::Word(w)) if w.eq_ignore_ascii_case(k))
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i).map(|t| &t.0)
    }
    fn pos(&self) -> usize {
        self.toks.get(self.i).map(|t| t.1).unwrap_or(self.len + 1)
    }
    fn err_expecting(&self, what: &str) -> JqlError {
        match self.peek() {
            Some(t) => JqlError(format!(
                "Error in the JQL Query: Expecting {what} but got '{}'. (line 1, character {})",
                tok_text(t),
                self.pos()
            )),
            None => JqlError(format!(
                "Error in the JQL Query: Expecting {what} but reached the end of the query. (line 1, character {})",
                self.pos()
            )),
        }
    }

    fn parse_or(&mut self) -> Result<Ast, JqlError> {
        let mut v = vec![self.parse_and()?];
        while kw(self.peek(), "or") || self.peek() == Some(&Tok::Op("||")) {
            self.i += 1;
            v.push(self.parse_and()?);
        }
        Ok(if v.len() == 1 {
            v.pop().unwrap_or(Ast::All)
        } else {
            Ast::Or(v)
        })
    }

    fn parse_and(&mut self) -> Result<Ast, JqlError> {
        let mut v = vec![self.parse_not()?];
        while kw(self.peek(), "and") || self.peek() == Some(&Tok::Op("&&")) {
            self.i += 1;
            v.push(self.parse_not()?);
        }
        Ok(if v.len() == 1 {
            v.pop().unwrap_or(Ast::All)
        } else {
            Ast::And(v)
        })
    }

    fn parse_not(&mut self) -> Result<Ast, JqlError> {
        if kw(self.peek(), "not") || self.peek() == Some(&Tok::Op("!")) {
            self.i += 1;
            return Ok(Ast::Not(Box::new(self.parse_not()?)));
        }
        if self.peek() == Some(&Tok::LParen) {
            self.i += 1;
            let e = self.parse_or()?;
            if self.peek() != Some(&Tok::RParen) {
                return Err(self.err_expecting("')'"));
            }
            self.i += 1;
            return Ok(e);
        }
        self.parse_clause()
    }

    fn value(&mut self) -> Result<Value, JqlError> {
        let v = match self.peek() {
            Some(Tok::Str(s)) => Value {
                text: s.clone(),
                quoted: true,
            },
            Some(Tok::Word(w))
                if !["and", "or", "not", "in", "is", "order", "empty", "null"]
                    .iter()
                    .any(|k| w.eq_ignore_ascii_case(k)) =>
            {
                Value {
                    text: w.clone(),
                    quoted: false,
                }
            }
            _ => return Err(self.err_expecting("either a value, list or function")),
        };
        self.i += 1;
        if self.peek() == Some(&Tok::LParen) && !v.quoted {
            return Err(JqlError(format!(
                "Unable to find JQL function '{}()'. The Jira simulator supports no JQL functions.",
                v.text
            )));
        }
        Ok(v)
    }

    fn parse_clause(&mut self) -> Result<Ast, JqlError> {
        let field = match self.peek() {
            Some(Tok::Word(w))
                if !["and", "or", "not", "in", "is", "order"]
                    .iter()
                    .any(|k| w.eq_ignore_ascii_case(k)) =>
            {
                w.clone()
            }
            Some(Tok::Str(s)) => s.clone(),
            _ => return Err(self.err_expecting("a field name")),
        };
        self.i += 1;
        let op = self.parse_operator(&field)?;
        if let Op::IsEmpty(_) = op {
            return Ok(Ast::Clause {
                field,
                op,
                values: vec![],
            });
        }
        let values = self.parse_values(matches!(op, Op::In(_)))?;
        Ok(Ast::Clause { field, op, values })
    }

    /// The operator after `field` (`IS [NOT] EMPTY` read whole).
    fn parse_operator(&mut self, field: &str) -> Result<Op, JqlError> {
        Ok(match self.peek() {
            Some(Tok::Op(o)) => {
                let c = match *o {
                    "=" => Cmp::Eq,
                    "!=" => Cmp::Ne,
                    "<" => Cmp::Lt,
                    "<=" => Cmp::Le,
                    ">" => Cmp::Gt,
                    ">=" => Cmp::Ge,
                    "~" | "!~" => {
                        return Err(JqlError(format!(
                            "The operator '{o}' is not supported by the '{field}' field."
                        )));
                    }
                    _ => return Err(self.err_expecting("operator")),
                };
                self.i += 1;
                Op::Cmp(c)
            }
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("in") => {
                self.i += 1;
                Op::In(false)
            }
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("not") => {
                self.i += 1;
                if !kw(self.peek(), "in") {
                    return Err(self.err_expecting("'IN'"));
                }
                self.i += 1;
                Op::In(true)
            }
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("is") => {
                self.i += 1;
                let neg = kw(self.peek(), "not");
                if neg {
                    self.i += 1;
                }
                if !(kw(self.peek(), "empty") || kw(self.peek(), "null")) {
                    return Err(self.err_expecting("EMPTY or NULL"));
                }
                self.i += 1;
                Op::IsEmpty(neg)
            }
            _ => {
                return Err(self.err_expecting(
                    "operator; the valid operators are '=', '!=', '<', '>', '<=', '>=', '~', '!~', 'IN', 'NOT IN', 'IS' and 'IS NOT'",
                ));
            }
        })
    }

    /// One value, or a parenthesised list of them after `IN`/`NOT IN`.
    fn parse_values(&mut self, in_list: bool) -> Result<Vec<Value>, JqlError> {
        Ok(if in_list {
            if self.peek() != Some(&Tok::LParen) {
                return Err(self.err_expecting("'('"));
            }
            self.i += 1;
            let mut vs = vec![self.value()?];
            while self.peek() == Some(&Tok::Comma) {
                self.i += 1;
                vs.push(self.value()?);
            }
            if self.peek() != Some(&Tok::RParen) {
                return Err(self.err_expecting("')'"));
            }
            self.i += 1;
            vs
        } else {
            vec![self.value()?]
        })
    }
}

/// Parses a JQL string.
pub fn parse(jql: &str) -> Result<Query, JqlError> {
    let toks = tokenize(jql)?;
    let mut p = Parser {
        toks,
        i: 0,
        len: jql.chars().count(),
    };
    let ast = if p.peek().is_none() || kw(p.peek(), "order") {
        Ast::All
    } else {
        p.parse_or()?
    };
    let mut order = Vec::new();
    if kw(p.peek(), "order") {
        p.i += 1;
        if !kw(p.peek(), "by") {
            return Err(p.err_expecting("'BY'"));
        }
        p.i += 1;
        loop {
            let f = match p.peek() {
                Some(Tok::Word(w)) | Some(Tok::Str(w)) => w.to_ascii_lowercase(),
                _ => return Err(p.err_expecting("a field name")),
            };
            let sf = match f.as_str() {
                "created" | "createddate" => SortField::Created,
                "updated" | "updateddate" => SortField::Updated,
                "id" => SortField::Id,
                "key" | "issuekey" | "issue" => SortField::Key,
                _ => {
                    return Err(JqlError(format!(
                        "Not able to sort using field '{f}'. The Jira simulator sorts by created, updated, id and key."
                    )));
                }
            };
            p.i += 1;
            let mut desc = false;
            if kw(p.peek(), "asc") {
                p.i += 1;
            } else if kw(p.peek(), "desc") {
                desc = true;
                p.i += 1;
            }
            order.push((sf, desc));
            if p.peek() == Some(&Tok::Comma) {
                p.i += 1;
                continue;
            }
            break;
        }
    }
    if p.peek().is_some() {
        return Err(p.err_expecting("either 'OR' or 'AND'"));
    }
    Ok(Query { ast, order })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DateField {
    Created,
    Updated,
    Resolved,
}

/// A query bound to a dataset, ready to evaluate.
#[derive(Debug, Clone)]
pub struct Compiled {
    node: Node,
    pub order: Vec<(SortField, bool)>,
}

#[derive(Debug, Clone)]
enum Node {
    All,
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    Project(bool, Vec<u16>),
    Type(bool, Vec<u8>),
    Status(bool, Vec<u8>),
    Labels(Op, Vec<String>),
    Date(DateField, Cmp, i64),
    DateEmpty(DateField, bool),
    /// Anchor set for =, !=, IN, NOT IN (missing anchors dropped), sorted.
    KeySet(bool, Vec<u32>),
    /// Range on key numbers within the anchor's project; `None` = missing anchor.
    KeyRange(Cmp, Option<(u16, u32)>),
    Nothing,
}

/// Reads a JQL date literal: epoch milliseconds (digits), or
/// `yyyy/MM/dd HH:mm`, `yyyy-MM-dd HH:mm`, `yyyy/MM/dd`, `yyyy-MM-dd` in `tz`.
pub fn parse_date(field: &str, v: &str, tz: Tz) -> Result<i64, JqlError> {
    let t = v.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse::<i64>().map_err(|_| bad_date(field, v));
    }
    let ndt = NaiveDateTime::parse_from_str(t, "%Y/%m/%d %H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M"))
        .or_else(|_| {
            NaiveDate::parse_from_str(t, "%Y/%m/%d")
                .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default())
        })
        .or_else(|_| {
            NaiveDate::parse_from_str(t, "%Y-%m-%d")
                .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default())
        })
        .map_err(|_| bad_date(field, v))?;
    Ok(local_to_ms(tz, ndt))
}

/// Local wall time → instant as Jira's lenient calendar does: an ambiguous
/// time (DST end) takes the earlier instant; a time in a DST gap is read with
/// the offset in force before the gap (02:30 on a spring-forward night in New
/// York becomes 03:30 EDT).
pub fn local_to_ms(tz: Tz, ndt: NaiveDateTime) -> i64 {
    match tz.from_local_datetime(&ndt) {
        LocalResult::Single(t) => t.timestamp_millis(),
        LocalResult::Ambiguous(a, _) => a.timestamp_millis(),
        LocalResult::None => {
            let before = tz
                .from_local_datetime(&(ndt - Duration::hours(3)))
                .earliest()
                .map(|t| chrono::Offset::fix(t.offset()).local_minus_utc() as i64)
                .unwrap_or(0);
            (ndt.and_utc().timestamp() - before) * 1000
        }
    }
}

fn bad_date(field: &str, v: &str) -> JqlError {
    JqlError(format!(
        "Date value '{v}' for field '{field}' is invalid. Valid formats include: 'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or epoch milliseconds (the Jira simulator supports no relative periods such as '-5d')."
    ))
}

fn unsupported_op(op: &Op, field: &str) -> JqlError {
    JqlError(format!(
        "The operator '{}' is not supported by the '{field}' field.",
        op.text()
    ))
}

impl Query {
    /// Binds names to the dataset; date literals are read in `user_tz`.
    pub fn compile(&self, ds: &Dataset, user_tz: Tz) -> Result<Compiled, JqlError> {
        Ok(Compiled {
            node: compile(&self.ast, ds, user_tz)?,
            order: self.order.clone(),
        })
    }
}

fn compile(ast: &Ast, ds: &Dataset, tz: Tz) -> Result<Node, JqlError> {
    Ok(match ast {
        Ast::All => Node::All,
        Ast::And(v) => Node::And(
            v.iter()
                .map(|a| compile(a, ds, tz))
                .collect::<Result<_, _>>()?,
        ),
        Ast::Or(v) => Node::Or(
            v.iter()
                .map(|a| compile(a, ds, tz))
                .collect::<Result<_, _>>()?,
        ),
        Ast::Not(a) => Node::Not(Box::new(compile(a, ds, tz)?)),
        Ast::Clause { field, op, values } => compile_clause(field, op, values, ds, tz)?,
    })
}

/// `=`/`!=`/`in`/`not in` → (negated?); anything else is unsupported for the field.
fn set_op(op: &Op, field: &str) -> Result<bool, JqlError> {
    match op {
        Op::Cmp(Cmp::Eq) | Op::In(false) => Ok(false),
        Op::Cmp(Cmp::Ne) | Op::In(true) => Ok(true),
        _ => Err(unsupported_op(op, field)),
    }
}

fn compile_clause(
    field: &str,
    op: &Op,
    values: &[Value],
    ds: &Dataset,
    tz: Tz,
) -> Result<Node, JqlError> {
    let lf = field.to_ascii_lowercase();
    Ok(match lf.as_str() {
        "project" => compile_project(field, op, values, ds)?,
        "issuetype" | "type" => {
            let neg = set_op(op, field)?;
            let mut ts = Vec::new();
            for v in values {
                let t = ISSUE_TYPES
                    .iter()
                    .position(|t| t.name.eq_ignore_ascii_case(&v.text) || t.id == v.text)
                    .ok_or_else(|| not_exist(v, field))?;
                ts.push(t as u8);
            }
            Node::Type(neg, ts)
        }
        "status" => {
            let neg = set_op(op, field)?;
            let mut ss = Vec::new();
            for v in values {
                let s = STATUSES
                    .iter()
                    .position(|s| s.name.eq_ignore_ascii_case(&v.text) || s.id == v.text)
                    .ok_or_else(|| not_exist(v, field))?;
                ss.push(s as u8);
            }
            Node::Status(neg, ss)
        }
        "statuscategory" => compile_status_category(field, op, values)?,
        "labels" => match op {
            Op::Cmp(Cmp::Eq) | Op::Cmp(Cmp::Ne) | Op::In(_) | Op::IsEmpty(_) => {
                Node::Labels(op.clone(), values.iter().map(|v| v.text.clone()).collect())
            }
            _ => return Err(unsupported_op(op, field)),
        },
        "created" | "createddate" | "updated" | "updateddate" | "resolved" | "resolutiondate" => {
            compile_date(&lf, field, op, values, tz)?
        }
        "id" | "key" | "issuekey" | "issue" => compile_key(field, op, values, ds)?,
        _ => {
            return Err(JqlError(format!(
                "Field '{field}' does not exist or you do not have permission to view it."
            )));
        }
    })
}

fn not_exist(v: &Value, f: &str) -> JqlError {
    JqlError(format!(
        "The value '{}' does not exist for the field '{f}'.",
        v.text
    ))
}

/// `project`: by key, id or name.
fn compile_project(field: &str, op: &Op, values: &[Value], ds: &Dataset) -> Result<Node, JqlError> {
    let neg = set_op(op, field)?;
    let mut ps = Vec::new();
    for v in values {
        let p = ds
            .project_index(&v.text)
            .or_else(|| {
                v.text
                    .parse::<u64>()
                    .ok()
                    .and_then(|id| ds.projects().iter().position(|p| p.id == id))
            })
            .or_else(|| {
                ds.projects()
                    .iter()
                    .position(|p| p.name.eq_ignore_ascii_case(&v.text))
            })
            .ok_or_else(|| not_exist(v, field))?;
        ps.push(p as u16);
    }
    Ok(Node::Project(neg, ps))
}

/// `statusCategory`: by name, key or id; the statuses of the categories.
fn compile_status_category(field: &str, op: &Op, values: &[Value]) -> Result<Node, JqlError> {
    let neg = set_op(op, field)?;
    let mut ss = Vec::new();
    for v in values {
        let matching: Vec<u8> = STATUSES
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                s.category_name.eq_ignore_ascii_case(&v.text)
                    || s.category_key.eq_ignore_ascii_case(&v.text)
                    || s.category_id.to_string() == v.text
            })
            .map(|(i, _)| i as u8)
            .collect();
        if matching.is_empty() {
            return Err(not_exist(v, field));
        }
        ss.extend(matching);
    }
    Ok(Node::Status(neg, ss))
}

/// `created`/`updated`/`resolved` (and aliases; `lf` lower-cased), dates read in `tz`.
fn compile_date(
    lf: &str,
    field: &str,
    op: &Op,
    values: &[Value],
    tz: Tz,
) -> Result<Node, JqlError> {
    let df = match lf {
        "created" | "createddate" => DateField::Created,
        "updated" | "updateddate" => DateField::Updated,
        _ => DateField::Resolved,
    };
    Ok(match op {
        Op::Cmp(c) => Node::Date(df, *c, parse_date(field, &values[0].text, tz)?),
        Op::IsEmpty(neg) => Node::DateEmpty(df, *neg),
        Op::In(_) => return Err(unsupported_op(op, field)),
    })
}

/// `id`/`key`/`issuekey`/`issue`: a set of issues, or a key range in one project.
fn compile_key(field: &str, op: &Op, values: &[Value], ds: &Dataset) -> Result<Node, JqlError> {
    Ok(match op {
        Op::Cmp(Cmp::Eq) | Op::Cmp(Cmp::Ne) | Op::In(_) => {
            let neg = matches!(op, Op::Cmp(Cmp::Ne) | Op::In(true));
            let mut set: Vec<u32> = values.iter().filter_map(|v| ds.resolve(&v.text)).collect();
            // Sorted for binary search: `id in (…)` lists run to 1000 ids.
            set.sort_unstable();
            set.dedup();
            if set.is_empty() {
                // A missing or deleted anchor matches nothing (even with != / NOT IN).
                Node::Nothing
            } else {
                Node::KeySet(neg, set)
            }
        }
        Op::Cmp(c) => {
            let anchor = ds.resolve(&values[0].text).map(|i| {
                let c = ds.core(i);
                (c.project, c.number)
            });
            Node::KeyRange(*c, anchor)
        }
        Op::IsEmpty(_) => return Err(unsupported_op(op, field)),
    })
}

impl Compiled {
    /// Does live issue `i` match?
    pub fn matches(&self, ds: &Dataset, i: u32) -> bool {
        eval(&self.node, ds, i)
    }

    /// Every live, unarchived issue that matches, sorted by the query's
    /// ORDER BY (then id).
    pub fn run(&self, ds: &Dataset) -> Vec<u32> {
        let mut v: Vec<u32> = (0..ds.len())
            .filter(|&i| ds.is_searchable(i) && self.matches(ds, i))
            .collect();
        self.sort(ds, &mut v);
        v
    }

    fn sort(&self, ds: &Dataset, v: &mut [u32]) {
        if self.order.is_empty() || self.order == [(SortField::Id, false)] {
            return;
        }
        // Project rank by key text, for key order (project key, then number).
        let mut rank: Vec<usize> = (0..ds.projects().len()).collect();
        rank.sort_by(|&a, &b| ds.projects()[a].key.cmp(&ds.projects()[b].key));
        let mut prank = vec![0usize; rank.len()];
        for (r, &p) in rank.iter().enumerate() {
            prank[p] = r;
        }
        v.sort_by(|&a, &b| {
            let ca = ds.core(a);
            let cb = ds.core(b);
            for &(f, desc) in &self.order {
                let o = match f {
                    SortField::Created => ca.created.cmp(&cb.created),
                    SortField::Updated => ca.updated.cmp(&cb.updated),
                    SortField::Id => a.cmp(&b),
                    SortField::Key => (prank[ca.project as usize], ca.number)
                        .cmp(&(prank[cb.project as usize], cb.number)),
                };
                let o = if desc { o.reverse() } else { o };
                if o != Ordering::Equal {
                    return o;
                }
            }
            a.cmp(&b)
        });
    }
}

fn eval(n: &Node, ds: &Dataset, i: u32) -> bool {
    let c = ds.core(i);
    match n {
        Node::All => true,
        Node::Nothing => false,
        Node::And(v) => v.iter().all(|x| eval(x, ds, i)),
        Node::Or(v) => v.iter().any(|x| eval(x, ds, i)),
        Node::Not(x) => !eval(x, ds, i),
        Node::Project(neg, ps) => ps.contains(&c.project) != *neg,
        Node::Type(neg, ts) => ts.contains(&c.itype) != *neg,
        Node::Status(neg, ss) => ss.contains(&c.status) != *neg,
        Node::Labels(op, vals) => {
            let labels = ds.labels_of(i);
            let has = |v: &String| labels.iter().any(|l| l.eq_ignore_ascii_case(v));
            match op {
                Op::IsEmpty(neg) => labels.is_empty() != *neg,
                Op::Cmp(Cmp::Eq) | Op::In(false) => vals.iter().any(has),
                // Jira: != and NOT IN never match issues without labels.
                _ => !labels.is_empty() && !vals.iter().any(has),
            }
        }
        Node::Date(f, cmp, ms) => match f {
            DateField::Created => cmp.holds(c.created, *ms),
            DateField::Updated => cmp.holds(c.updated, *ms),
            DateField::Resolved => match ds.issue(i).resolved_ms {
                Some(r) => cmp.holds(r, *ms),
                None => false,
            },
        },
        Node::DateEmpty(f, neg) => {
            let empty = match f {
                DateField::Resolved => ds.issue(i).resolved_ms.is_none(),
                _ => false,
            };
            empty != *neg
        }
        Node::KeySet(neg, set) => set.binary_search(&i).is_ok() != *neg,
        Node::KeyRange(cmp, anchor) => match anchor {
            Some((p, num)) => c.project == *p && cmp.holds(c.number, *num),
            None => false,
        },
    }
}

/// The id of issue index `i` (for messages).
pub fn id_of(i: u32) -> u64 {
    ID_BASE + i as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ny() -> Tz {
        chrono_tz::America::New_York
    }

    fn ds() -> Dataset {
        Dataset::new(1, 30, &["DEMO".to_string(), "ALPHA".to_string()])
    }

    #[test]
    fn parses_the_extractors_queries() {
        for q in [
            "project = \"DEMO\" AND updated >= 1700000000000 ORDER BY updated ASC, id ASC",
            "project = DEMO AND issuetype in (\"Bug\", \"Story\") AND created >= \"2024/01/01 00:00\" AND created < \"2024-02-01\" ORDER BY created ASC, key ASC",
            "project in (DEMO, ALPHA) AND (key > DEMO-5 OR NOT id = 10001)",
            "ORDER BY key DESC",
            "",
            "project = DEMO && !(type = Bug || type = Story)",
        ] {
            let p = parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
            p.compile(&ds(), ny())
                .unwrap_or_else(|e| panic!("{q}: {e}"));
        }
        let q = parse("created >= 1 ORDER BY created ASC, key DESC, id").unwrap();
        assert_eq!(
            q.order,
            vec![
                (SortField::Created, false),
                (SortField::Key, true),
                (SortField::Id, false)
            ]
        );
    }

    #[test]
    fn and_binds_tighter_than_or() {
        let d = ds();
        // i=0 DEMO-1 (Bug?) — check via evaluation against explicit sets.
        let a = parse("key = DEMO-1 OR key = DEMO-2 AND key = DEMO-3")
            .unwrap()
            .compile(&d, ny())
            .unwrap();
        let got: Vec<String> = a.run(&d).iter().map(|&i| d.key_of(i)).collect();
        assert_eq!(got, vec!["DEMO-1"]);
    }

    #[test]
    fn dates_are_minutes_in_the_user_zone() {
        let ms = |s: &str| parse_date("updated", s, ny()).unwrap();
        // EST before the switch, EDT after.
        assert_eq!(ms("2024/03/10 01:59"), 1_710_053_940_000);
        assert_eq!(ms("2024-03-10 03:00"), 1_710_054_000_000);
        // 02:30 is in the gap: read with the pre-gap offset (= 03:30 EDT).
        assert_eq!(ms("2024/03/10 02:30"), ms("2024/03/10 03:30"));
        // 01:30 on 3 November 2024 happens twice: the earlier (EDT) instant.
        assert_eq!(ms("2024/11/03 01:30"), 1_730_611_800_000);
        assert_eq!(ms("2024-03-10"), 1_710_046_800_000);
        assert_eq!(ms("1700000000123"), 1_700_000_000_123);
        assert!(parse_date("updated", "-5d", ny()).is_err());
        assert!(parse_date("updated", "2024/02/30", ny()).is_err());
        assert!(parse_date("updated", "10/03/2024", ny()).is_err());
    }

    #[test]
    fn errors_name_the_problem() {
        let e = |q: &str| match parse(q) {
            Err(e) => e.0,
            Ok(p) => p
                .compile(&ds(), ny())
                .err()
                .map(|e| e.0)
                .unwrap_or_default(),
        };
        assert!(e("summary ~ foo").contains("operator '~'"));
        assert!(e("project = NOPE").contains("'NOPE' does not exist"));
        assert!(e("foo = 1").contains("Field 'foo' does not exist"));
        assert!(e("project in DEMO").contains("Expecting '('"));
        assert!(e("project = DEMO ORDER BY rank").contains("Not able to sort"));
        assert!(e("project = DEMO)").contains("Expecting either 'OR' or 'AND'"));
        assert!(e("created in (1, 2)").contains("operator 'in'"));
    }

    #[test]
    fn missing_anchor_matches_nothing() {
        let d = ds();
        for q in [
            "key = DEMO-999",
            "key != DEMO-999",
            "key > DEMO-999",
            "id < 99999",
        ] {
            let c = parse(q).unwrap().compile(&d, ny()).unwrap();
            assert!(c.run(&d).is_empty(), "{q}");
        }
    }
}
