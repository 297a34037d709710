//! Checks the migrations in `sql/` against the table specs, with no database.
//!
//! A small parser for the subset of DDL the migrations use — `CREATE TABLE
//! [IF NOT EXISTS]` (column types, `NOT NULL`, `DEFAULT`, `CHECK`, inline or
//! table `PRIMARY KEY`), `ALTER TABLE … ADD COLUMN [IF NOT EXISTS]`, `CREATE
//! INDEX [IF NOT EXISTS] … ON t (cols) [WHERE …]`, `CREATE OR REPLACE VIEW
//! … AS SELECT …` and `CREATE OR REPLACE FUNCTION … AS $$ … $$` — replays
//! every migration of [`crate::db::MIGRATIONS`] in order into a model of the
//! schema, and compares it with [`super::SCHEMA`]: table names, column names
//! and order, types, nullability, defaults, primary keys, secondary indexes.
//! `CHECK` constraints are skipped. Views and function bodies are not specs:
//! they are only checked to read tables and views created before them. Any
//! other statement fails the test: extend the parser when a migration needs
//! more.

use super::{Column, PgType, SCHEMA, SCHEMA_MIGRATIONS, TableSpec, create_table};
use crate::db::Ident;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// An identifier or keyword, lowercased unless it was quoted.
    Word(String),
    /// A string literal, with its quotes (`''`).
    Str(String),
    Num(String),
    Punct(char),
}

fn tokenize(sql: &str) -> Vec<Tok> {
    let b: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '-' && b.get(i + 1) == Some(&'-') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if let Some(end) = dollar_quoted_end(&b, i) {
            out.push(Tok::Str(b[i..end].iter().collect()));
            i = end;
        } else if c == '\'' {
            let start = i;
            i += 1;
            while i < b.len() {
                if b[i] == '\'' && b.get(i + 1) == Some(&'\'') {
                    i += 2;
                } else if b[i] == '\'' {
                    break;
                } else {
                    i += 1;
                }
            }
            i += 1;
            out.push(Tok::Str(b[start..i.min(b.len())].iter().collect()));
        } else if c == '"' {
            let mut s = String::new();
            i += 1;
            while i < b.len() {
                if b[i] == '"' && b.get(i + 1) == Some(&'"') {
                    s.push('"');
                    i += 2;
                } else if b[i] == '"' {
                    break;
                } else {
                    s.push(b[i]);
                    i += 1;
                }
            }
            i += 1;
            out.push(Tok::Word(s));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < b.len() && (b[i].is_alphanumeric() || b[i] == '_') {
                i += 1;
            }
            out.push(Tok::Word(
                b[start..i].iter().collect::<String>().to_lowercase(),
            ));
        } else if c.is_ascii_digit() {
            let start = i;
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == '.') {
                i += 1;
            }
            out.push(Tok::Num(b[start..i].iter().collect()));
        } else {
            out.push(Tok::Punct(c));
            i += 1;
        }
    }
    out
}

/// Where the dollar-quoted string (`$$…$$`, `$tag$…$tag$`) starting at
/// `b[i]` ends (exclusive; the end of the text if unclosed), or `None` when
/// no dollar quote starts there (`$1` is a parameter, not a quote).
fn dollar_quoted_end(b: &[char], i: usize) -> Option<usize> {
    let in_word = i > 0 && (b[i - 1].is_alphanumeric() || b[i - 1] == '_');
    if b[i] != '$' || in_word || b.get(i + 1).is_some_and(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut j = i + 1;
    while j < b.len() && (b[j].is_alphanumeric() || b[j] == '_') {
        j += 1;
    }
    if b.get(j) != Some(&'$') {
        return None;
    }
    let tag = &b[i..=j];
    let body = j + 1;
    Some(
        (body..=b.len().saturating_sub(tag.len()))
            .find(|&k| &b[k..k + tag.len()] == tag)
            .map_or(b.len(), |k| k + tag.len()),
    )
}

/// Tokens back to normalised text: single spaces, none inside parentheses
/// or before a comma.
fn render(toks: &[Tok]) -> String {
    let mut s = String::new();
    let mut prev: Option<&Tok> = None;
    for t in toks {
        let text = match t {
            Tok::Word(w) | Tok::Str(w) | Tok::Num(w) => w.clone(),
            Tok::Punct(p) => p.to_string(),
        };
        let glue = matches!(t, Tok::Punct('(' | ')' | ',' | '.' | ':'))
            || matches!(prev, Some(Tok::Punct('(' | '.' | ':')) | None);
        if !glue {
            s.push(' ');
        }
        s.push_str(&text);
        prev = Some(t);
    }
    s
}

fn norm(sql: &str) -> String {
    render(&tokenize(sql))
}

/// The schema a sequence of migrations builds.
#[derive(Debug, Default, PartialEq)]
struct Model {
    tables: Vec<Table>,
    views: Vec<String>,
    functions: Vec<String>,
}

impl Model {
    /// A table or view of this name exists.
    fn has_relation(&self, name: &str) -> bool {
        self.tables.iter().any(|t| t.name == name) || self.views.iter().any(|v| v == name)
    }
}

#[derive(Debug, Default, PartialEq)]
struct Table {
    name: String,
    /// `(name, type, declared nullable, default)`.
    columns: Vec<(String, PgType, bool, Option<String>)>,
    key: Vec<String>,
    /// `(name, columns, predicate)`.
    indexes: Vec<(String, Vec<String>, Option<String>)>,
}

/// A cursor over one statement's tokens.
struct P<'a> {
    t: &'a [Tok],
    i: usize,
    what: String,
}

impl<'a> P<'a> {
    fn peek(&self) -> Option<&'a Tok> {
        self.t.get(self.i)
    }
    fn is(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(x)) if x == w)
    }
    fn eat(&mut self, w: &str) -> bool {
        let hit = self.is(w);
        if hit {
            self.i += 1;
        }
        hit
    }
    fn eat_all(&mut self, ws: &[&str]) -> bool {
        let save = self.i;
        if ws.iter().all(|w| self.eat(w)) {
            return true;
        }
        self.i = save;
        false
    }
    fn expect(&mut self, w: &str) {
        assert!(
            self.eat(w),
            "{}: expected {w:?} at {:?}",
            self.what,
            self.peek()
        );
    }
    fn punct(&mut self, c: char) -> bool {
        let hit = self.peek() == Some(&Tok::Punct(c));
        if hit {
            self.i += 1;
        }
        hit
    }
    fn word(&mut self) -> String {
        match self.t.get(self.i) {
            Some(Tok::Word(w)) => {
                self.i += 1;
                w.clone()
            }
            t => panic!("{}: expected a name, found {t:?}", self.what),
        }
    }
    /// `name` or `schema.name` (the schema part is dropped).
    fn table_name(&mut self) -> String {
        let mut n = self.word();
        if self.punct('.') {
            n = self.word();
        }
        n
    }
    /// `( a, b )`
    fn name_list(&mut self) -> Vec<String> {
        assert!(self.punct('('), "{}: expected (", self.what);
        let mut v = vec![self.word()];
        while self.punct(',') {
            v.push(self.word());
        }
        assert!(self.punct(')'), "{}: expected )", self.what);
        v
    }
    /// Tokens up to the next top-level `,` or `)` or one of `stop` (not consumed).
    fn until(&mut self, stop: &[&str]) -> &'a [Tok] {
        let start = self.i;
        let mut depth = 0;
        while let Some(t) = self.peek() {
            match t {
                Tok::Punct('(') => depth += 1,
                Tok::Punct(')') if depth == 0 => break,
                Tok::Punct(')') => depth -= 1,
                Tok::Punct(',') if depth == 0 => break,
                Tok::Word(w) if depth == 0 && stop.contains(&w.as_str()) => break,
                _ => {}
            }
            self.i += 1;
        }
        &self.t[start..self.i]
    }
    /// Skips one parenthesised group (a `CHECK`'s condition).
    fn skip_group(&mut self) {
        assert!(self.punct('('), "{}: expected (", self.what);
        let mut depth = 1;
        while depth > 0 {
            match self.peek() {
                Some(Tok::Punct('(')) => depth += 1,
                Some(Tok::Punct(')')) => depth -= 1,
                None => panic!("{}: unbalanced parentheses", self.what),
                _ => {}
            }
            self.i += 1;
        }
    }
    fn done(&self) -> bool {
        self.i >= self.t.len()
    }
}

fn pg_type(words: &str, what: &str) -> PgType {
    match words {
        "integer" | "int" | "int4" => PgType::Int4,
        "bigint" | "int8" => PgType::Int8,
        "bigserial" | "serial8" => PgType::Bigserial,
        "double precision" | "float8" => PgType::Float8,
        "boolean" | "bool" => PgType::Bool,
        "text" => PgType::Text,
        "jsonb" => PgType::Jsonb,
        "date" => PgType::Date,
        "timestamptz" | "timestamp with time zone" => PgType::Timestamptz,
        other => panic!("{what}: type {other:?} is not one the specs know"),
    }
}

const CONSTRAINTS: &[&str] = &[
    "not",
    "null",
    "primary",
    "default",
    "check",
    "references",
    "unique",
    "constraint",
];

/// One column definition; returns it and whether it is an inline primary key.
fn column(p: &mut P<'_>) -> ((String, PgType, bool, Option<String>), bool) {
    let name = p.word();
    let ty_toks = p.until(CONSTRAINTS);
    let ty = pg_type(&render(ty_toks), &format!("{}, column {name}", p.what));
    let (mut nullable, mut default, mut pk) = (true, None, false);
    loop {
        if p.eat_all(&["not", "null"]) {
            nullable = false;
        } else if p.eat("null") {
        } else if p.eat_all(&["primary", "key"]) {
            pk = true;
        } else if p.eat("default") {
            default = Some(render(p.until(CONSTRAINTS)));
        } else if p.eat("check") {
            p.skip_group();
        } else {
            break;
        }
    }
    ((name, ty, nullable, default), pk)
}

fn create_table_stmt(p: &mut P<'_>, m: &mut Model) {
    p.eat_all(&["if", "not", "exists"]);
    let name = p.table_name();
    p.what = format!("table {name}");
    let mut t = Table {
        name: name.clone(),
        ..Table::default()
    };
    assert!(p.punct('('), "{}: expected (", p.what);
    loop {
        if p.eat_all(&["primary", "key"]) {
            t.key = p.name_list();
        } else if p.eat("check") {
            p.skip_group();
        } else if p.is("unique") || p.is("constraint") || p.is("foreign") {
            panic!(
                "{}: table constraints other than PRIMARY KEY and CHECK are not parsed",
                p.what
            );
        } else {
            let (c, pk) = column(p);
            if pk {
                t.key = vec![c.0.clone()];
            }
            t.columns.push(c);
        }
        if p.punct(',') {
            continue;
        }
        assert!(
            p.punct(')'),
            "{}: expected , or ) at {:?}",
            p.what,
            p.peek()
        );
        break;
    }
    assert!(
        m.tables.iter().all(|x| x.name != name),
        "table {name} is created twice"
    );
    m.tables.push(t);
}

fn alter_table_stmt(p: &mut P<'_>, m: &mut Model) {
    p.eat_all(&["if", "exists"]);
    let name = p.table_name();
    p.what = format!("ALTER TABLE {name}");
    loop {
        p.expect("add");
        p.eat("column");
        p.eat_all(&["if", "not", "exists"]);
        let (c, pk) = column(p);
        assert!(!pk, "{}: ADD COLUMN … PRIMARY KEY is not parsed", p.what);
        let t = m
            .tables
            .iter_mut()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("ALTER TABLE {name}: no such table"));
        if t.columns.iter().all(|x| x.0 != c.0) {
            t.columns.push(c);
        }
        if !p.punct(',') {
            break;
        }
    }
}

fn create_index_stmt(p: &mut P<'_>, m: &mut Model) {
    p.eat_all(&["if", "not", "exists"]);
    let name = p.word();
    p.what = format!("index {name}");
    p.expect("on");
    let table = p.table_name();
    if p.eat("using") {
        p.expect("btree");
    }
    let cols = p.name_list();
    let pred = p.eat("where").then(|| render(&p.t[p.i..]));
    p.i = p.t.len();
    let t = m
        .tables
        .iter_mut()
        .find(|t| t.name == table)
        .unwrap_or_else(|| panic!("index {name}: no table {table}"));
    if t.indexes.iter().all(|x| x.0 != name) {
        t.indexes.push((name, cols, pred));
    }
}

/// Views are not specs: they only have to read known tables and views.
fn create_view_stmt(p: &mut P<'_>, m: &mut Model) {
    let name = p.table_name();
    p.what = format!("view {name}");
    p.expect("as");
    p.expect("select");
    check_reads(&p.t[p.i..], m, &p.what);
    p.i = p.t.len();
    assert!(
        m.tables.iter().all(|t| t.name != name),
        "view {name}: a table has that name"
    );
    if !m.views.contains(&name) {
        m.views.push(name);
    }
}

/// `CREATE OR REPLACE FUNCTION name(…) … AS $$ body $$ …`: the signature is
/// not parsed; the body only has to read known tables and views.
fn create_function_stmt(p: &mut P<'_>, m: &mut Model) {
    let name = p.table_name();
    p.what = format!("function {name}");
    let mut bodies = 0;
    for t in &p.t[p.i..] {
        if let Tok::Str(s) = t {
            // `$tag$body$tag$`: the tag is `$` … the next `$`.
            if let Some(inner) = s.strip_prefix('$').and_then(|r| r.find('$')) {
                let tag = &s[..inner + 2];
                let body = s[tag.len()..].strip_suffix(tag).unwrap_or_else(|| {
                    panic!("{}: unclosed {tag} quote", p.what);
                });
                check_reads(&tokenize(body), m, &p.what);
                bodies += 1;
            }
        }
    }
    assert_eq!(bodies, 1, "{}: expected one $$-quoted body", p.what);
    p.i = p.t.len();
    if !m.functions.contains(&name) {
        m.functions.push(name);
    }
}

/// Checks that every relation a query reads (the name after `FROM` or
/// `JOIN`, optionally schema-qualified) is a table or view of `m`. A
/// subquery `FROM (…)` or `JOIN LATERAL (…)` is scanned in place; `FROM f(…)`
/// is a set-returning function and not checked; the `FROM` of `extract(x
/// FROM …)` and `IS [NOT] DISTINCT FROM` reads nothing. Not handled: `WITH`
/// (a CTE name would be refused) and the second relation of `FROM a, b`
/// (not checked).
fn check_reads(toks: &[Tok], m: &Model, what: &str) {
    let word = |i: usize| match toks.get(i) {
        Some(Tok::Word(w)) => Some(w.as_str()),
        _ => None,
    };
    for i in 0..toks.len() {
        if !matches!(word(i), Some("from" | "join")) {
            continue;
        }
        let in_extract = i >= 3 && word(i - 3) == Some("extract") && toks[i - 2] == Tok::Punct('(');
        if in_extract || (i >= 1 && word(i - 1) == Some("distinct")) {
            continue;
        }
        let mut j = i + 1;
        if word(j) == Some("lateral") {
            j += 1;
        }
        let Some(mut name) = word(j) else {
            continue;
        };
        if toks.get(j + 1) == Some(&Tok::Punct('.'))
            && let Some(n) = word(j + 2)
        {
            name = n;
            j += 2;
        }
        if toks.get(j + 1) == Some(&Tok::Punct('(')) {
            continue;
        }
        assert!(
            m.has_relation(name),
            "{what}: reads {name}, which no migration created before it"
        );
    }
}

/// Replays migrations (SQL texts, in order) into a model.
fn replay(migrations: &[(&str, &str)]) -> Model {
    let mut m = Model::default();
    for (file, sql) in migrations {
        for stmt in split_statements(sql) {
            let toks = tokenize(&stmt);
            if toks.is_empty() {
                continue;
            }
            let mut p = P {
                t: &toks,
                i: 0,
                what: format!("{file}: {}", norm(&stmt)),
            };
            if p.eat_all(&["create", "table"]) {
                create_table_stmt(&mut p, &mut m);
            } else if p.eat_all(&["alter", "table"]) {
                alter_table_stmt(&mut p, &mut m);
            } else if p.eat_all(&["create", "index"]) {
                create_index_stmt(&mut p, &mut m);
            } else if p.eat_all(&["create", "or", "replace", "view"]) {
                create_view_stmt(&mut p, &mut m);
            } else if p.eat_all(&["create", "or", "replace", "function"]) {
                create_function_stmt(&mut p, &mut m);
            } else {
                panic!(
                    "{}: statement not parsed; extend tables/ddl_check.rs",
                    p.what
                );
            }
            assert!(p.done(), "{}: trailing tokens at {:?}", p.what, p.peek());
        }
    }
    m
}

/// Splits on `;` outside string literals, dollar-quoted strings (function
/// bodies) and comments.
fn split_statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut in_str, mut in_comment) = (false, false);
    let mut prev = '\0';
    let chars: Vec<char> = sql.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        if !in_comment
            && !in_str
            && let Some(end) = dollar_quoted_end(&chars, i - 1)
        {
            cur.extend(&chars[i - 1..end]);
            i = end;
            prev = '$';
            continue;
        }
        if in_comment {
            in_comment = c != '\n';
        } else if in_str {
            in_str = c != '\'';
        } else if c == '\'' {
            in_str = true;
        } else if c == '-' && prev == '-' {
            in_comment = true;
        } else if c == ';' {
            out.push(std::mem::take(&mut cur));
            prev = c;
            continue;
        }
        cur.push(c);
        prev = c;
    }
    out.push(cur);
    out
}

/// The model of one spec, as the parser would build it from matching DDL.
fn expected(spec: &TableSpec) -> Table {
    let col = |c: &Column| (c.name.to_string(), c.ty, c.nullable, c.default.map(norm));
    Table {
        name: spec.name.to_string(),
        columns: spec.columns.iter().map(col).collect(),
        key: spec.key.iter().map(|k| k.to_string()).collect(),
        indexes: spec
            .indexes
            .iter()
            .map(|i| {
                (
                    i.name.to_string(),
                    i.columns.iter().map(|c| c.to_string()).collect(),
                    i.predicate.map(norm),
                )
            })
            .collect(),
    }
}

/// Nullability as PostgreSQL stores it: key columns are NOT NULL.
fn effective(mut t: Table) -> Table {
    for c in &mut t.columns {
        if t.key.contains(&c.0) {
            c.2 = false;
        }
    }
    t
}

#[test]
fn migrations_match_the_specs() {
    let files: Vec<(&str, &str)> = crate::db::MIGRATIONS
        .iter()
        .map(|m| (m.name, m.sql))
        .collect();
    let model = replay(&files);
    let got: Vec<&str> = model.tables.iter().map(|t| t.name.as_str()).collect();
    let want: Vec<&str> = SCHEMA.iter().map(|t| t.name).collect();
    assert_eq!(
        got, want,
        "the migrations create other tables than tables::SCHEMA lists"
    );
    for (t, spec) in model.tables.into_iter().zip(SCHEMA) {
        let (t, e) = (effective(t), effective(expected(spec)));
        assert_eq!(
            t.columns, e.columns,
            "columns of {} (sql/ vs spec)",
            spec.name
        );
        assert_eq!(t.key, e.key, "primary key of {}", spec.name);
        assert_eq!(t.indexes, e.indexes, "indexes of {}", spec.name);
    }
}

#[test]
fn generated_ddl_parses_back_to_its_spec() {
    for spec in SCHEMA.iter().chain([&&SCHEMA_MIGRATIONS]) {
        let ddl = create_table(&Ident::new("s"), spec);
        let model = replay(&[("generated", &ddl)]);
        let mut e = expected(spec);
        e.indexes.clear();
        assert_eq!(model.tables, vec![e], "{ddl}");
    }
}

#[test]
fn the_parser_sees_what_it_must() {
    let m = replay(&[(
        "t",
        "-- a comment; with a semicolon
         CREATE TABLE IF NOT EXISTS x (
             a bigint PRIMARY KEY,
             b text NOT NULL DEFAULT '' CHECK (b IN ('p', 'q')),
             c timestamp with time zone NOT NULL DEFAULT now()
         );
         ALTER TABLE x ADD COLUMN IF NOT EXISTS d double precision;
         CREATE INDEX IF NOT EXISTS x_b ON x (b, c) WHERE d IS NOT NULL;",
    )]);
    let t = &m.tables[0];
    assert_eq!(t.key, vec!["a"]);
    assert_eq!(
        t.columns,
        vec![
            ("a".into(), PgType::Int8, true, None),
            ("b".into(), PgType::Text, false, Some("''".into())),
            ("c".into(), PgType::Timestamptz, false, Some("now()".into())),
            ("d".into(), PgType::Float8, true, None),
        ]
    );
    assert_eq!(
        t.indexes,
        vec![(
            "x_b".into(),
            vec!["b".into(), "c".into()],
            Some("d is not null".into())
        )]
    );
}

#[test]
fn views_and_function_bodies_read_only_known_relations() {
    let m = replay(&[(
        "t",
        "CREATE TABLE x (a bigint PRIMARY KEY, t timestamptz);
         CREATE TABLE y (a bigint PRIMARY KEY);
         CREATE OR REPLACE VIEW v AS SELECT x.a, extract(epoch FROM now() - x.t) AS s
           FROM x JOIN y ON y.a = x.a
           LEFT JOIN LATERAL (SELECT count(*) FROM s.y WHERE y.a IS DISTINCT FROM x.a) c ON true;
         CREATE OR REPLACE VIEW w AS SELECT * FROM v UNION ALL SELECT a, 0 FROM generate_series(1, 2) a;
         CREATE OR REPLACE FUNCTION f(p text) RETURNS TABLE (a bigint) LANGUAGE sql
           SET search_path FROM CURRENT AS $$ SELECT a FROM w; SELECT ';' FROM x $$;
         CREATE OR REPLACE FUNCTION g() RETURNS int LANGUAGE sql AS $body$ SELECT 1 $body$;",
    )]);
    assert_eq!(m.views, vec!["v", "w"]);
    assert_eq!(m.functions, vec!["f", "g"]);
    assert_eq!(
        split_statements("SELECT $1; CREATE FUNCTION f() AS $q$ a; 'b $$ ; $q$; x").len(),
        3,
        "a dollar-quoted body is one piece of its statement; $1 is no quote"
    );
}

#[test]
#[should_panic(expected = "reads nope, which no migration created before it")]
fn a_view_joining_an_unknown_table_fails() {
    replay(&[(
        "t",
        "CREATE TABLE x (a bigint PRIMARY KEY);
         CREATE OR REPLACE VIEW v AS SELECT * FROM x JOIN nope ON true;",
    )]);
}

#[test]
#[should_panic(expected = "reads nope, which no migration created before it")]
fn a_function_body_reading_an_unknown_table_fails() {
    replay(&[(
        "t",
        "CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 FROM nope $$;",
    )]);
}
