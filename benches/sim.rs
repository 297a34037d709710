//! Simulator benchmarks (criterion, `cargo bench --bench sim`):
//!
//! - `sim_render`: rendering search pages without HTTP (`Dataset::search_page_body`),
//!   100 issues with and without changelogs — what `bench transform` uses to
//!   generate input.
//! - `sim_serve`: serving a cached 100-issue page over keep-alive HTTP/1.1 from
//!   a one-worker simulator, against a baseline in the same run: a plain
//!   thread writing the same pre-built response over loopback TCP. The ratio
//!   shows what the simulator's HTTP layer costs over the raw socket.
//!
//! Throughput is in bytes of response bodies.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use jira_sim::{Dataset, SimConfig, Simulator};

fn render(c: &mut Criterion) {
    let keys: Vec<String> = ["DEMO", "ALPHA", "BETA"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let ds = Dataset::new(42, 100_000, &keys);
    let mut g = c.benchmark_group("sim_render");
    for changelog in [false, true] {
        let len = ds.search_page_body(5000, 100, changelog).len();
        g.throughput(Throughput::Bytes(len as u64));
        let name = if changelog {
            "page100_changelog"
        } else {
            "page100"
        };
        let mut start = 0u32;
        g.bench_function(name, |b| {
            b.iter(|| {
                start = (start + 100) % 99_000;
                ds.search_page_body(start, 100, changelog)
            })
        });
    }
    g.finish();
}

/// A keep-alive HTTP/1.1 client reading whole responses; returns body bytes.
struct Client {
    w: TcpStream,
    r: BufReader<TcpStream>,
    req: Vec<u8>,
    body: Vec<u8>,
}

impl Client {
    fn new(addr: &str, path: &str, token: &str) -> Client {
        let s = TcpStream::connect(addr).unwrap();
        s.set_nodelay(true).unwrap();
        let req =
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\r\n")
                .into_bytes();
        Client {
            r: BufReader::with_capacity(1 << 20, s.try_clone().unwrap()),
            w: s,
            req,
            body: Vec::new(),
        }
    }

    fn get(&mut self) -> usize {
        self.w.write_all(&self.req).unwrap();
        let mut len = 0usize;
        let mut line = String::new();
        loop {
            line.clear();
            self.r.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line
                .strip_prefix("Content-Length: ")
                .or_else(|| line.strip_prefix("content-length: "))
            {
                len = v.trim().parse().unwrap();
            }
        }
        self.body.resize(len, 0);
        self.r.read_exact(&mut self.body).unwrap();
        len
    }
}

/// A trivial server thread answering every request with `response`.
fn baseline_server(response: Vec<u8>) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { return };
            let response = response.clone();
            std::thread::spawn(move || {
                s.set_nodelay(true).ok();
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut w = s;
                let mut line = String::new();
                loop {
                    line.clear();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    if line == "\r\n" && w.write_all(&response).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

fn serve(c: &mut Criterion) {
    let sim = Simulator::start(
        SimConfig::default()
            .issues(20_000)
            .projects(3)
            .threads(1)
            .max_results(100),
    )
    .unwrap();
    let addr = sim.url().trim_start_matches("http://").to_string();
    let path = "/rest/api/2/search?jql=project%20%3D%20DEMO%20ORDER%20BY%20key%20ASC&startAt=100&maxResults=100&expand=changelog";
    let mut client = Client::new(&addr, path, sim.token());
    let len = client.get(); // renders and caches the page
    let body = client.body.clone();
    let mut response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json;charset=UTF-8\r\nContent-Length: {len}\r\n\r\n"
    )
    .into_bytes();
    response.extend_from_slice(&body);
    let base_addr = baseline_server(response);
    let mut base = Client::new(&base_addr, path, "x");

    let mut g = c.benchmark_group("sim_serve");
    g.throughput(Throughput::Bytes(len as u64));
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("baseline_raw_socket_page100_changelog", |b| {
        b.iter(|| base.get())
    });
    g.bench_function("simulator_cached_page100_changelog", |b| {
        b.iter(|| client.get())
    });
    g.finish();
}

criterion_group!(benches, render, serve);
criterion_main!(benches);
