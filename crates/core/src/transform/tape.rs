//! A small read-only view over a simd-json tape (`&[Node]`): typed accessors,
//! object/array iteration without allocation, and a compact JSON writer for
//! values kept as JSON text. Walking the tape directly (instead of building a
//! `BorrowedValue` tree) is what keeps the transform close to bare parsing speed.

use simd_json::{Node, StaticNode};

/// Nodes taken by the value that starts with `n` (itself included).
#[inline]
fn span(n: &Node<'_>) -> usize {
    match n {
        Node::Object { count, .. } | Node::Array { count, .. } => count + 1,
        _ => 1,
    }
}

/// One JSON value on the tape.
#[derive(Clone, Copy, Debug)]
pub struct V<'t, 'i>(pub &'t [Node<'i>]);

impl<'t, 'i> V<'t, 'i> {
    /// The root value of a tape.
    pub fn root(tape: &'t simd_json::tape::Tape<'i>) -> Option<Self> {
        if tape.0.is_empty() {
            None
        } else {
            Some(V(&tape.0))
        }
    }

    #[inline]
    fn head(&self) -> Option<&Node<'i>> {
        self.0.first()
    }

    pub fn is_null(&self) -> bool {
        matches!(self.head(), None | Some(Node::Static(StaticNode::Null)))
    }

    #[inline]
    pub fn str(&self) -> Option<&'i str> {
        match self.head() {
            Some(Node::String(s)) => Some(s),
            _ => None,
        }
    }

    pub fn bool(&self) -> Option<bool> {
        match self.head() {
            Some(Node::Static(StaticNode::Bool(b))) => Some(*b),
            _ => None,
        }
    }

    /// An integer given as a JSON number.
    pub fn i64(&self) -> Option<i64> {
        match self.head() {
            Some(Node::Static(StaticNode::I64(v))) => Some(*v),
            Some(Node::Static(StaticNode::U64(v))) => i64::try_from(*v).ok(),
            _ => None,
        }
    }

    pub fn f64(&self) -> Option<f64> {
        match self.head() {
            Some(Node::Static(StaticNode::I64(v))) => Some(*v as f64),
            Some(Node::Static(StaticNode::U64(v))) => Some(*v as f64),
            Some(Node::Static(StaticNode::F64(v))) => Some(*v),
            _ => None,
        }
    }

    pub(crate) fn is_number(&self) -> bool {
        matches!(
            self.head(),
            Some(Node::Static(
                StaticNode::I64(_) | StaticNode::U64(_) | StaticNode::F64(_)
            ))
        )
    }

    /// An id as Jira sends them: a decimal string (`"10010"`) or a number.
    pub fn id(&self) -> Option<i64> {
        match self.head() {
            Some(Node::String(s)) => parse_i64(s),
            _ => self.i64(),
        }
    }

    pub fn is_object(&self) -> bool {
        matches!(self.head(), Some(Node::Object { .. }))
    }

    pub fn is_array(&self) -> bool {
        matches!(self.head(), Some(Node::Array { .. }))
    }

    /// Key/value pairs, if this is an object.
    pub(crate) fn obj(&self) -> Option<ObjIter<'t, 'i>> {
        match self.head() {
            Some(Node::Object { len, .. }) => Some(ObjIter {
                rest: &self.0[1..],
                left: *len,
            }),
            _ => None,
        }
    }

    /// Elements, if this is an array.
    pub(crate) fn arr(&self) -> Option<ArrIter<'t, 'i>> {
        match self.head() {
            Some(Node::Array { len, .. }) => Some(ArrIter {
                rest: &self.0[1..],
                left: *len,
            }),
            _ => None,
        }
    }

    /// The value of `key` if this is an object holding it (first occurrence).
    pub fn get(&self, key: &str) -> Option<V<'t, 'i>> {
        self.obj()?.find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// `get(key)` that is neither absent nor null.
    pub(crate) fn get_some(&self, key: &str) -> Option<V<'t, 'i>> {
        self.get(key).filter(|v| !v.is_null())
    }

    /// A string member.
    pub(crate) fn get_str(&self, key: &str) -> Option<&'i str> {
        self.get(key)?.str()
    }

    /// Writes this value as compact JSON.
    pub(crate) fn write_json(&self, out: &mut String) {
        write_value(self.0, out);
    }

    pub fn to_json(&self) -> String {
        let mut s = String::new();
        self.write_json(&mut s);
        s
    }

    /// A scalar's text (strings as they are, numbers and booleans as JSON), or
    /// the JSON text of a container; `None` for null.
    pub(crate) fn scalar_text<'a>(&self, scratch: &'a mut String) -> Option<&'a str>
    where
        'i: 'a,
    {
        match self.head() {
            None | Some(Node::Static(StaticNode::Null)) => None,
            Some(Node::String(s)) => Some(s),
            _ => {
                scratch.clear();
                self.write_json(scratch);
                Some(scratch.as_str())
            }
        }
    }
}

/// Parses a decimal integer with an optional leading `-`; nothing else.
pub(crate) fn parse_i64(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let (neg, digits) = match b.first()? {
        b'-' => (true, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    let mut v: i64 = 0;
    for &c in digits {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(i64::from(d))?;
    }
    Some(if neg { -v } else { v })
}

pub(crate) struct ObjIter<'t, 'i> {
    rest: &'t [Node<'i>],
    left: usize,
}

impl<'t, 'i> Iterator for ObjIter<'t, 'i> {
    type Item = (&'i str, V<'t, 'i>);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let (k, tail) = self.rest.split_first()?;
        let Node::String(k) = k else { return None };
        let n = span(tail.first()?);
        let (v, rest) = tail.split_at(n.min(tail.len()));
        self.rest = rest;
        Some((k, V(v)))
    }
}

pub(crate) struct ArrIter<'t, 'i> {
    rest: &'t [Node<'i>],
    left: usize,
}

impl<'t, 'i> Iterator for ArrIter<'t, 'i> {
    type Item = V<'t, 'i>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let n = span(self.rest.first()?);
        let (v, rest) = self.rest.split_at(n.min(self.rest.len()));
        self.rest = rest;
        Some(V(v))
    }
}

fn write_value(nodes: &[Node<'_>], out: &mut String) -> usize {
    use std::fmt::Write as _;
    let Some(head) = nodes.first() else {
        out.push_str("null");
        return 0;
    };
    match head {
        Node::String(s) => {
            write_json_str(s, out);
            1
        }
        Node::Static(st) => {
            match st {
                StaticNode::Null => out.push_str("null"),
                StaticNode::Bool(true) => out.push_str("true"),
                StaticNode::Bool(false) => out.push_str("false"),
                StaticNode::I64(v) => {
                    let _ = write!(out, "{v}");
                }
                StaticNode::U64(v) => {
                    let _ = write!(out, "{v}");
                }
                StaticNode::F64(v) => {
                    if v.is_finite() {
                        let _ = write!(out, "{v:?}");
                    } else {
                        out.push_str("null");
                    }
                }
                #[allow(unreachable_patterns)]
                _ => out.push_str("null"),
            }
            1
        }
        Node::Array { len, .. } => {
            out.push('[');
            let mut i = 1;
            for n in 0..*len {
                if n > 0 {
                    out.push(',');
                }
                i += write_value(&nodes[i.min(nodes.len())..], out);
            }
            out.push(']');
            i
        }
        Node::Object { len, .. } => {
            out.push('{');
            let mut i = 1;
            for n in 0..*len {
                if n > 0 {
                    out.push(',');
                }
                if let Some(Node::String(k)) = nodes.get(i) {
                    write_json_str(k, out);
                }
                out.push(':');
                i += 1;
                i += write_value(&nodes[i.min(nodes.len())..], out);
            }
            out.push('}');
            i
        }
    }
}

fn write_json_str(s: &str, out: &mut String) {
    use std::fmt::Write as _;
    out.push('"');
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let rep: Option<&str> = match c {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            c if (c as u32) < 0x20 => None,
            _ => continue,
        };
        out.push_str(&s[start..i]);
        match rep {
            Some(r) => out.push_str(r),
            None => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
        }
        start = i + c.len_utf8();
    }
    out.push_str(&s[start..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_and_writes_json() {
        let text = r#"{"a":[1,-2,3.5,"x\"y\u0001",true,null,{"b":{}}],"c":"d","e":[]}"#;
        let mut b = text.as_bytes().to_vec();
        let tape = simd_json::to_tape(&mut b).unwrap();
        let v = V::root(&tape).unwrap();
        assert_eq!(v.to_json(), text);
        assert_eq!(v.get_str("c"), Some("d"));
        assert_eq!(v.get("a").unwrap().arr().unwrap().count(), 7);
        assert_eq!(v.obj().unwrap().count(), 3);
        assert!(v.get("zz").is_none());
        let arr: Vec<_> = v.get("a").unwrap().arr().unwrap().collect();
        assert_eq!(arr[1].i64(), Some(-2));
        assert_eq!(arr[2].f64(), Some(3.5));
        assert!(arr[5].is_null());
        assert_eq!(arr[6].get("b").unwrap().obj().unwrap().count(), 0);
    }

    #[test]
    fn ids() {
        assert_eq!(parse_i64("10010"), Some(10010));
        assert_eq!(parse_i64("-3"), Some(-3));
        assert_eq!(parse_i64("1e3"), None);
        assert_eq!(parse_i64(""), None);
        assert_eq!(parse_i64("99999999999999999999"), None);
    }
}
