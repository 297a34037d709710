//! A minimal blocking HTTP/1.1 client for the simulator's own tests (the
//! crate has no HTTP client dependency): one request per connection.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A response: status, head (lower-cased header names) and body.
pub struct Resp {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Resp {
    /// The body as JSON (panics with the body text if it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

/// Sends `method path` with the default token (and `body` as JSON if given).
pub fn request(url: &str, method: &str, path: &str, body: Option<&str>) -> Resp {
    send(
        url,
        method,
        path,
        body,
        "Authorization: Bearer sim-token\r\n",
    )
}

/// `GET path` without credentials (anonymous).
pub fn get_anonymous(url: &str, path: &str) -> Resp {
    send(url, "GET", path, None, "")
}

fn send(url: &str, method: &str, path: &str, body: Option<&str>, auth: &str) -> Resp {
    let addr = url.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).ok();
    let b = body.unwrap_or("");
    let ct = if body.is_some() {
        "Content-Type: application/json\r\n"
    } else {
        ""
    };
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}{ct}Content-Length: {}\r\nConnection: close\r\n\r\n{b}",
        b.len()
    )
    .expect("write");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).expect("read");
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&buf[..split]).to_ascii_lowercase();
    let status = head[9..12].parse().expect("a status");
    Resp {
        status,
        head,
        body: buf[split + 4..].to_vec(),
    }
}

/// `GET path`.
pub fn get(url: &str, path: &str) -> Resp {
    request(url, "GET", path, None)
}

/// `POST path` with a JSON body.
pub fn post(url: &str, path: &str, body: &serde_json::Value) -> Resp {
    request(url, "POST", path, Some(&body.to_string()))
}

/// Percent-encodes a query value.
pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `GET /rest/api/2/search?jql=…&…extra`, as JSON (asserting 200).
pub fn search(url: &str, jql: &str, extra: &str) -> serde_json::Value {
    let r = get(url, &format!("/rest/api/2/search?jql={}{extra}", enc(jql)));
    assert_eq!(r.status, 200, "{jql}: {}", String::from_utf8_lossy(&r.body));
    r.json()
}

/// The ids of a search page's issues.
pub fn ids(page: &serde_json::Value) -> Vec<u64> {
    page["issues"]
        .as_array()
        .expect("issues")
        .iter()
        .map(|i| i["id"].as_str().expect("id").parse().expect("numeric id"))
        .collect()
}
