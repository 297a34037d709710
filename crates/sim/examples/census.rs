//! Measures how fast the simulator lists issue ids the way the pipeline's
//! census does: id-only search pages (`fields=id`, `maxResults` = the cap)
//! over one-month `created` windows per project, `ORDER BY id ASC`, from two
//! concurrent keep-alive clients. Prints ids per second.
//!
//! ```sh
//! cargo run -p jira-sim --release --example census [-- ISSUES [CAP]]
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use jira_sim::{SimConfig, Simulator};

/// One keep-alive connection to the simulator.
struct Client {
    addr: String,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn connect(url: &str) -> std::io::Result<Client> {
        let addr = url.trim_start_matches("http://").to_string();
        let s = TcpStream::connect(&addr)?;
        s.set_nodelay(true)?;
        Ok(Client {
            addr,
            reader: BufReader::new(s.try_clone()?),
            writer: s,
        })
    }

    /// `GET path`: (status, body).
    fn get(&mut self, path: &str) -> std::io::Result<(u16, Vec<u8>)> {
        write!(
            self.writer,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer sim-token\r\n\r\n",
            self.addr
        )?;
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status = line.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        let mut len = 0;
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; len];
        self.reader.read_exact(&mut body)?;
        Ok((status, body))
    }
}

/// The number after `"name":` in a JSON body (top-level numbers only).
fn number(body: &[u8], name: &str) -> u64 {
    let pat = format!("\"{name}\":");
    body.windows(pat.len())
        .position(|w| w == pat.as_bytes())
        .map(|p| {
            body[p + pat.len()..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .fold(0, |n, b| n * 10 + (b - b'0') as u64)
        })
        .unwrap_or(0)
}

/// Issues in a page: occurrences of `"key":"`.
fn issues_in(body: &[u8]) -> u64 {
    body.windows(7).filter(|w| w == b"\"key\":\"").count() as u64
}

fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Lists every id of one (project, month) window; returns how many.
fn list_window(c: &mut Client, project: &str, y: i32, m: u32, cap: u32) -> std::io::Result<u64> {
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    let jql = format!(
        "project = \"{project}\" AND created >= \"{y}/{m:02}/01 00:00\" AND created < \"{ny}/{nm:02}/01 00:00\" ORDER BY id ASC"
    );
    let mut start = 0;
    let mut seen = 0;
    loop {
        let path = format!(
            "/rest/api/2/search?jql={}&fields=id&startAt={start}&maxResults={cap}",
            pct(&jql)
        );
        let (status, body) = c.get(&path)?;
        if status != 200 {
            return Err(std::io::Error::other(format!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(&body)
            )));
        }
        let n = issues_in(&body);
        seen += n;
        start += n;
        if n == 0 || start >= number(&body, "total") {
            return Ok(seen);
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<u32> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let issues = args.first().copied().unwrap_or(1_000_000);
    let cap = args.get(1).copied().unwrap_or(1000);
    let t = Instant::now();
    let sim = Simulator::start(
        SimConfig::default()
            .issues(issues)
            .max_results(cap)
            .threads(2),
    )?;
    println!("{issues} issues generated in {:.2?}", t.elapsed());
    let mut windows = Vec::new();
    // Created instants span 2023..2025 in UTC: December 2022 in New York
    // holds the first hours.
    for p in ["DEMO", "ALPHA", "BETA"] {
        windows.push((p, 2022, 12));
        for y in 2023..=2025 {
            for m in 1..=12 {
                windows.push((p, y, m));
            }
        }
    }
    let windows = Arc::new(windows);
    let next = Arc::new(AtomicUsize::new(0));
    let t = Instant::now();
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (windows, next, url) = (windows.clone(), next.clone(), sim.url().to_string());
            std::thread::spawn(move || -> std::io::Result<u64> {
                let mut c = Client::connect(&url)?;
                let mut n = 0;
                while let Some(&(p, y, m)) = windows.get(next.fetch_add(1, Ordering::Relaxed)) {
                    n += list_window(&mut c, p, y, m, cap)?;
                }
                Ok(n)
            })
        })
        .collect();
    let mut total = 0;
    for w in workers {
        total += w.join().map_err(|_| "a client panicked")??;
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "listed {total} ids in {secs:.2} s with 2 clients: {:.0} ids/s ({} requests)",
        total as f64 / secs,
        sim.stats().endpoint_total("search")
    );
    if total != issues as u64 {
        return Err(format!("listed {total} ids, expected {issues}").into());
    }
    Ok(())
}
