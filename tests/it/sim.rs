//! The Jira DC simulator over real HTTP on 127.0.0.1: endpoints, paging and the
//! 10,000 window, JQL (filters, order, key semantics, errors, time zones across
//! DST), auth, faults, latency, mutations, the search hook, ground truth,
//! determinism, and the `pipeline simulate` command.

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset};
use jira_sim::{Dataset, Fault, FaultConfig, IssueUpdate, SimConfig, SimHandle, Simulator};
use serde_json::Value;

const TOKEN: &str = "sim-token";

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    declared: Option<usize>,
    io_error: Option<String>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {} body is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body[..self.body.len().min(300)])
            )
        })
    }
    fn complete(&self) -> bool {
        self.declared == Some(self.body.len())
    }
}

fn enc(s: &str) -> String {
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

/// One request on a fresh connection (`Connection: close`), read to EOF.
fn request(base: &str, method: &str, path: &str, auth: Option<&str>, body: Option<&str>) -> Resp {
    let addr = base.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(t) = auth {
        req.push_str(&format!("Authorization: {t}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    req.push_str("\r\n");
    if let Some(b) = body {
        req.push_str(b);
    }
    s.write_all(req.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let io_error = s.read_to_end(&mut buf).err().map(|e| e.to_string());
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&buf[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let declared = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok());
    Resp {
        status,
        headers,
        body: buf[split + 4..].to_vec(),
        declared,
        io_error,
    }
}

fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

fn get(sim: &SimHandle, path: &str) -> Resp {
    request(sim.url(), "GET", path, Some(&bearer()), None)
}

fn search(sim: &SimHandle, jql: &str, extra: &str) -> Resp {
    get(sim, &format!("/rest/api/2/search?jql={}{extra}", enc(jql)))
}

/// Every issue a JQL matches, paging with the cap.
fn search_all(sim: &SimHandle, jql: &str, fields: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut start = 0;
    loop {
        let r = search(
            sim,
            jql,
            &format!("&startAt={start}&maxResults=100&fields={fields}"),
        );
        assert_eq!(r.status, 200, "{jql}: {}", String::from_utf8_lossy(&r.body));
        let v = r.json();
        let issues = v["issues"].as_array().unwrap().clone();
        let total = v["total"].as_u64().unwrap() as usize;
        let n = issues.len();
        out.extend(issues);
        start += n;
        if n == 0 || start >= total {
            assert_eq!(out.len(), total, "{jql}: paged count equals total");
            return out;
        }
    }
}

fn ids(issues: &[Value]) -> Vec<u64> {
    issues
        .iter()
        .map(|i| i["id"].as_str().unwrap().parse().unwrap())
        .collect()
}

fn jira_ts(s: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.3f%z")
        .unwrap_or_else(|e| panic!("{s:?} is not a Jira timestamp: {e}"))
}

fn start(issues: u32, projects: usize) -> SimHandle {
    Simulator::start(
        SimConfig::default()
            .issues(issues)
            .projects(projects)
            .seed(7),
    )
    .unwrap()
}

#[test]
fn sim_myself_serverinfo_and_field_catalogue() {
    let sim = start(300, 3);
    let me = get(&sim, "/rest/api/2/myself");
    assert_eq!(me.status, 200);
    assert_eq!(me.header("X-AUSERNAME"), Some("sim.user"));
    assert_eq!(me.json()["timeZone"], "America/New_York");
    assert!(
        me.header("Content-Type")
            .unwrap()
            .starts_with("application/json")
    );

    let si = get(&sim, "/rest/api/2/serverInfo").json();
    assert_eq!(si["deploymentType"], "DataCenter");
    assert_eq!(si["versionNumbers"][0], 10);
    jira_ts(si["serverTime"].as_str().unwrap());

    let fields = get(&sim, "/rest/api/2/field").json();
    let by_id: HashMap<String, Value> = fields
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["id"].as_str().unwrap().to_string(), f.clone()))
        .collect();
    // Every field key any issue carries is described, custom ones with
    // schema.custom and schema.customId.
    let issues = search_all(&sim, "", "*all");
    let mut seen = BTreeSet::new();
    for i in &issues {
        for k in i["fields"].as_object().unwrap().keys() {
            seen.insert(k.clone());
        }
    }
    for k in &seen {
        let f = by_id
            .get(k)
            .unwrap_or_else(|| panic!("{k} missing from /field"));
        if k.starts_with("customfield_") {
            assert_eq!(f["custom"], true);
            assert!(f["schema"]["custom"].as_str().unwrap().contains(':'));
            assert_eq!(
                f["schema"]["customId"].as_u64().unwrap().to_string(),
                k.trim_start_matches("customfield_")
            );
        }
    }
    let types: BTreeSet<String> = by_id
        .values()
        .filter(|f| f["custom"] == true)
        .map(|f| {
            format!(
                "{}{}",
                f["schema"]["type"].as_str().unwrap(),
                f["schema"]["items"]
                    .as_str()
                    .map(|i| format!("/{i}"))
                    .unwrap_or_default()
            )
        })
        .collect();
    for t in [
        "number",
        "string",
        "option",
        "array/option",
        "user",
        "datetime",
        "date",
        "array/string",
        "any",
    ] {
        assert!(
            types.contains(t),
            "custom field schema {t} missing: {types:?}"
        );
    }
}

#[test]
fn sim_paging_cap_defaults_and_window() {
    let sim =
        Simulator::start(SimConfig::default().issues(400).projects(2).max_results(60)).unwrap();
    let q = "project = DEMO ORDER BY key ASC";
    let total = sim.ids_in_project("DEMO").len() as u64;
    // Capped silently; the response shows the capped value.
    let v = search(&sim, q, "&maxResults=1000").json();
    assert_eq!(v["maxResults"], 60);
    assert_eq!(v["issues"].as_array().unwrap().len(), 60);
    assert_eq!(v["total"], total);
    // Missing → 50 (under the cap).
    let v = search(&sim, q, "").json();
    assert_eq!(v["maxResults"], 50);
    assert_eq!(v["issues"].as_array().unwrap().len(), 50);
    // 0 → only the total.
    let v = search(&sim, q, "&maxResults=0").json();
    assert_eq!(v["total"], total);
    assert!(v["issues"].as_array().unwrap().is_empty());
    // Negative → the cap.
    let v = search(&sim, q, "&maxResults=-1").json();
    assert_eq!(v["maxResults"], 60);
    // Past the end → empty page, same total.
    let v = search(&sim, q, &format!("&startAt={}", total + 5)).json();
    assert!(v["issues"].as_array().unwrap().is_empty());
    assert_eq!(v["total"], total);
    // Not a number → 400.
    assert_eq!(search(&sim, q, "&maxResults=lots").status, 400);

    // The 10,000 window: startAt + (capped) maxResults > 10,000 → HTTP 500.
    let ok = search(&sim, q, "&startAt=9940&maxResults=60");
    assert_eq!(ok.status, 200);
    let bad = search(&sim, q, "&startAt=9950&maxResults=100");
    assert_eq!(bad.status, 500);
    let msg = bad.json()["errorMessages"][0].as_str().unwrap().to_string();
    assert!(msg.starts_with("Search limit exceeded."), "{msg}");
    assert!(msg.contains("requests 10,010 results"), "{msg}");
    assert!(msg.contains("limit of 10,000"), "{msg}");
    assert_eq!(bad.json()["errors"], serde_json::json!({}));
}

#[test]
fn sim_window_message_matches_dc_wording() {
    let sim = start(50, 1);
    let bad = search(&sim, "", "&startAt=10000&maxResults=100");
    assert_eq!(bad.status, 500);
    let msg = bad.json()["errorMessages"][0].as_str().unwrap().to_string();
    assert!(
        msg.starts_with("Search limit exceeded. We couldn't complete your search because it requests 10,100 results which exceeded the search platform limit of 10,000."),
        "{msg}"
    );
}

#[test]
fn sim_post_search_equals_get() {
    let sim = start(300, 3);
    let jql = "project in (DEMO, ALPHA) AND issuetype in (\"Bug\", \"Story\") ORDER BY updated ASC, id ASC";
    let g = search(
        &sim,
        jql,
        "&startAt=5&maxResults=20&fields=summary,updated,labels&expand=changelog",
    );
    let body = serde_json::json!({
        "jql": jql, "startAt": 5, "maxResults": 20,
        "fields": ["summary", "updated", "labels"], "expand": ["changelog"]
    })
    .to_string();
    let p = request(
        sim.url(),
        "POST",
        "/rest/api/2/search",
        Some(&bearer()),
        Some(&body),
    );
    assert_eq!(g.status, 200);
    assert_eq!(p.status, 200);
    assert_eq!(g.body, p.body);
    let v = p.json();
    let f = v["issues"][0]["fields"].as_object().unwrap();
    let keys: BTreeSet<&str> = f.keys().map(|k| k.as_str()).collect();
    assert_eq!(keys, BTreeSet::from(["summary", "updated", "labels"]));
    assert!(v["issues"][0]["changelog"]["histories"].is_array());
}

#[test]
fn sim_jql_filters_match_ground_truth() {
    let sim = start(900, 3);
    let truth = sim.ground_truth();
    let check = |jql: &str, pred: &dyn Fn(&jira_sim::Issue) -> bool| {
        let got: BTreeSet<u64> = ids(&search_all(&sim, jql, "key")).into_iter().collect();
        let want: BTreeSet<u64> = truth.iter().filter(|i| pred(i)).map(|i| i.id).collect();
        assert!(
            !want.is_empty() || jql.contains("nothing"),
            "{jql}: empty expectation"
        );
        assert_eq!(got, want, "{jql}");
    };
    check("project = DEMO", &|i| i.project_key == "DEMO");
    check("project = \"DEMO\"", &|i| i.project_key == "DEMO");
    check("PROJECT in (DEMO, alpha)", &|i| i.project_key != "BETA");
    check("issuetype in (\"Bug\", \"Story\")", &|i| {
        matches!(i.issue_type_name(), "Bug" | "Story")
    });
    check("type = Sub-task", &|i| i.issue_type_name() == "Sub-task");
    check("issuetype != Bug", &|i| i.issue_type_name() != "Bug");
    let mid = truth[450].updated_ms;
    check(&format!("updated >= {mid}"), &|i| i.updated_ms >= mid);
    check(&format!("updated > {mid}"), &|i| i.updated_ms > mid);
    check(&format!("updated <= {mid}"), &|i| i.updated_ms <= mid);
    let (a, b) = (truth[100].created_ms, truth[200].created_ms);
    check(&format!("created >= {a} AND created < {b}"), &|i| {
        i.created_ms >= a && i.created_ms < b
    });
    check("NOT project = DEMO", &|i| i.project_key != "DEMO");
    check(
        "(project = DEMO OR project = BETA) AND issuetype = Task",
        &|i| i.project_key != "ALPHA" && i.issue_type_name() == "Task",
    );
    check(
        "project = DEMO AND NOT (issuetype = Bug OR issuetype = Story)",
        &|i| i.project_key == "DEMO" && !matches!(i.issue_type_name(), "Bug" | "Story"),
    );
    check("status = Done", &|i| i.status_name() == "Done");
    check("statusCategory = Done", &|i| i.status_category() == "Done");
    check("labels = backend", &|i| {
        i.labels.iter().any(|l| l == "backend")
    });
    // Jira: != never matches issues without labels.
    check("labels != backend", &|i| {
        !i.labels.is_empty() && !i.labels.iter().any(|l| l == "backend")
    });
    check("labels is EMPTY", &|i| i.labels.is_empty());
    check("resolved is not EMPTY", &|i| i.resolved_ms.is_some());
}

#[test]
fn sim_jql_order_by_several_keys() {
    let sim = start(600, 3);
    let issues = search_all(
        &sim,
        "project in (DEMO, BETA) ORDER BY updated ASC, id ASC",
        "updated",
    );
    let keyed: Vec<(i64, u64)> = issues
        .iter()
        .map(|i| {
            (
                jira_ts(i["fields"]["updated"].as_str().unwrap()).timestamp_millis(),
                i["id"].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect();
    let mut sorted = keyed.clone();
    sorted.sort();
    assert_eq!(keyed, sorted);
    // Ties on updated exist in the data (bulk-edit minutes) and are broken by id.
    let issues = search_all(&sim, "ORDER BY created DESC, key ASC", "created");
    let created: Vec<i64> = issues
        .iter()
        .map(|i| jira_ts(i["fields"]["created"].as_str().unwrap()).timestamp_millis())
        .collect();
    assert!(created.windows(2).all(|w| w[0] >= w[1]));
    // Key order: project key, then number (ALPHA < BETA < DEMO; DEMO-9 < DEMO-10).
    let issues = search_all(&sim, "ORDER BY key ASC", "key");
    let keys: Vec<(String, u32)> = issues
        .iter()
        .map(|i| {
            let (p, n) = i["key"].as_str().unwrap().rsplit_once('-').unwrap();
            (p.to_string(), n.parse().unwrap())
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    assert_eq!(keys[0], ("ALPHA".to_string(), 1));
    let issues = search_all(&sim, "project = DEMO ORDER BY id DESC", "key");
    let got = ids(&issues);
    assert!(got.windows(2).all(|w| w[0] > w[1]));
}

#[test]
fn sim_jql_key_and_id_have_dc_semantics() {
    let sim = start(300, 3);
    let keys = |jql: &str| -> Vec<String> {
        search_all(&sim, &format!("{jql} ORDER BY key ASC"), "key")
            .iter()
            .map(|i| i["key"].as_str().unwrap().to_string())
            .collect()
    };
    // key > DEMO-95: DEMO issues numbered above 95 only (100 per project).
    assert_eq!(
        keys("key > DEMO-95"),
        (96..=100).map(|n| format!("DEMO-{n}")).collect::<Vec<_>>()
    );
    assert_eq!(keys("issuekey <= ALPHA-2"), vec!["ALPHA-1", "ALPHA-2"]);
    // id 10003 is DEMO-2: the comparison is on key numbers in DEMO.
    assert_eq!(keys("id < 10003"), vec!["DEMO-1"]);
    assert_eq!(
        keys("issue in (DEMO-1, BETA-1, 10001)"),
        vec!["ALPHA-1", "BETA-1", "DEMO-1"]
    );
    assert_eq!(keys("key = demo-7"), vec!["DEMO-7"]);
    // A missing anchor matches nothing, whatever the operator.
    assert!(keys("key > DEMO-5000").is_empty());
    assert!(keys("key != DEMO-5000").is_empty());
    // A deleted anchor too.
    let demo3 = 10000 + 6;
    sim.delete_issues(&[demo3]).unwrap();
    assert!(keys("key > DEMO-3").is_empty());
    assert!(!keys("key > DEMO-4").is_empty());
    // A moved issue: the old key still names it.
    let new_key = sim.move_issue(10000 + 9, "ALPHA").unwrap();
    assert_eq!(new_key, "ALPHA-101");
    assert_eq!(keys("key = DEMO-4"), vec!["ALPHA-101"]);
    assert_eq!(keys("key > ALPHA-100"), vec!["ALPHA-101"]);
    assert!(!keys("project = DEMO").contains(&"DEMO-4".to_string()));
}

#[test]
fn sim_jql_errors_answer_400() {
    let sim = start(50, 2);
    for (jql, needle) in [
        ("nosuchfield = 1", "Field 'nosuchfield' does not exist"),
        ("project = ", "Expecting"),
        ("project = DEMO AND", "Expecting"),
        ("project ~ DEMO", "operator '~'"),
        (
            "project > DEMO",
            "operator '>' is not supported by the 'project' field",
        ),
        (
            "project = NOPE",
            "The value 'NOPE' does not exist for the field 'project'",
        ),
        (
            "issuetype = Unicorn",
            "does not exist for the field 'issuetype'",
        ),
        (
            "updated >= \"2024/13/45\"",
            "Date value '2024/13/45' for field 'updated' is invalid",
        ),
        ("updated >= -5d", "is invalid"),
        ("updated >= startOfDay()", "function"),
        (
            "project = DEMO ORDER BY priority",
            "Not able to sort using field 'priority'",
        ),
        ("(project = DEMO", "Expecting"),
        ("project = \"DEMO", "has not been completed"),
        (
            "project = DEMO project = ALPHA",
            "Expecting either 'OR' or 'AND'",
        ),
    ] {
        let r = search(&sim, jql, "");
        assert_eq!(r.status, 400, "{jql}");
        let v = r.json();
        let msg = v["errorMessages"][0].as_str().unwrap();
        assert!(msg.contains(needle), "{jql}: {msg}");
        assert_eq!(v["errors"], serde_json::json!({}), "{jql}");
        let post = request(
            sim.url(),
            "POST",
            "/rest/api/2/search",
            Some(&bearer()),
            Some(&serde_json::json!({ "jql": jql }).to_string()),
        );
        assert_eq!(post.status, 400, "POST {jql}");
    }
}

#[test]
fn sim_jql_dates_read_in_user_zone_across_dst() {
    // New York: EST (-05:00) until 2024-03-10 02:00, then EDT (-04:00).
    let sim = start(60, 1);
    let utc = |s: &str| {
        chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.3f")
            .unwrap()
            .and_utc()
            .timestamp_millis()
    };
    // Place six early issues (created in Jan 2023) exactly around the instants.
    let marks = [
        (10001, utc("2024-03-10 06:29:59.999")),
        (10002, utc("2024-03-10 06:30:00.000")), // 01:30 EST
        (10003, utc("2024-03-10 07:29:59.999")),
        (10004, utc("2024-03-10 07:30:00.000")), // 03:30 EDT
        (10005, utc("2024-03-10 04:59:59.999")),
        (10006, utc("2024-03-10 05:00:00.000")), // midnight EST
    ];
    for (id, at) in marks {
        sim.update_issue_at(id, &IssueUpdate::new().add_label("dst"), at)
            .unwrap();
    }
    let keys = |jql: &str| -> Vec<u64> {
        let mut v = ids(&search_all(&sim, &format!("labels = dst AND {jql}"), "key"));
        v.sort();
        v
    };
    // After the change (EDT).
    assert_eq!(
        keys("updated >= \"2024/03/10 03:30\" AND updated < \"2024/03/10 04:00\""),
        vec![10004]
    );
    assert_eq!(keys("updated >= \"2024-03-10 03:30\""), vec![10004]);
    // Before the change (EST).
    assert_eq!(
        keys("updated >= \"2024/03/10 01:30\" AND updated < \"2024/03/10 01:31\""),
        vec![10002]
    );
    // Date-only literals: local midnight.
    assert_eq!(
        keys("updated >= \"2024/03/10\" AND updated < \"2024-03-10 01:00\""),
        vec![10006]
    );
    assert_eq!(keys("updated < \"2024-03-10\""), vec![10005]);
    // 02:30 does not exist that night: read with the EST offset (= 03:30 EDT).
    assert_eq!(
        keys("updated >= \"2024/03/10 02:30\" AND updated < \"2024/03/10 03:31\""),
        vec![10004]
    );
    // Epoch milliseconds are exact.
    let at = utc("2024-03-10 07:30:00.000");
    assert_eq!(
        keys(&format!("updated >= {at} AND updated <= {at}")),
        vec![10004]
    );
    assert_eq!(keys(&format!("updated > {}", at - 1)), vec![10004]);

    // The same literal in another user zone selects differently.
    let berlin = Simulator::start(
        SimConfig::default()
            .issues(60)
            .projects(1)
            .seed(7)
            .time_zone("Europe/Berlin"),
    )
    .unwrap();
    assert_eq!(
        get(&berlin, "/rest/api/2/myself").json()["timeZone"],
        "Europe/Berlin"
    );
    for (id, at) in marks {
        berlin
            .update_issue_at(id, &IssueUpdate::new().add_label("dst"), at)
            .unwrap();
    }
    // 08:30 Berlin (CET, +01:00) = 07:30 UTC.
    let got = ids(&search_all(
        &berlin,
        "labels = dst AND updated >= \"2024/03/10 08:30\"",
        "key",
    ));
    assert_eq!(got, vec![10004]);
    // Timestamps render in the server zone with a numeric offset; both
    // offsets of New York occur.
    let all = search_all(&sim, "", "created,updated");
    let offsets: BTreeSet<String> = all
        .iter()
        .map(|i| i["fields"]["created"].as_str().unwrap()[23..].to_string())
        .collect();
    assert_eq!(
        offsets,
        BTreeSet::from(["-0400".to_string(), "-0500".to_string()])
    );
}

#[test]
fn sim_auth_pat_401_captcha_and_anonymous() {
    let sim = Simulator::start(SimConfig::default().issues(50).captcha_after(2)).unwrap();
    // Anonymous: 200, sees nothing.
    let anon = request(
        sim.url(),
        "GET",
        "/rest/api/2/search?jql=project%3DDEMO",
        None,
        None,
    );
    assert_eq!(anon.status, 200);
    assert_eq!(anon.header("X-AUSERNAME"), Some("anonymous"));
    assert_eq!(anon.json()["total"], 0);
    assert!(anon.json()["issues"].as_array().unwrap().is_empty());
    assert_eq!(
        request(sim.url(), "GET", "/rest/api/2/myself", None, None).status,
        401
    );
    // Wrong token: 401 AUTHENTICATED_FAILED.
    for _ in 0..2 {
        let r = request(
            sim.url(),
            "GET",
            "/rest/api/2/myself",
            Some("Bearer wrong"),
            None,
        );
        assert_eq!(r.status, 401);
        assert_eq!(
            r.header("X-Seraph-LoginReason"),
            Some("AUTHENTICATED_FAILED")
        );
        assert!(r.json()["errorMessages"].is_array());
    }
    // Then the CAPTCHA challenge.
    let r = request(
        sim.url(),
        "GET",
        "/rest/api/2/search",
        Some("Bearer wrong"),
        None,
    );
    assert_eq!(r.status, 403);
    assert_eq!(
        r.header("X-Seraph-LoginReason"),
        Some("AUTHENTICATION_DENIED")
    );
    let reason = r.header("X-Authentication-Denied-Reason").unwrap();
    assert!(
        reason.starts_with("CAPTCHA_CHALLENGE; login-url="),
        "{reason}"
    );
    // Basic credentials are not the PAT either.
    let r = request(
        sim.url(),
        "GET",
        "/rest/api/2/myself",
        Some("Basic c2ltOnNpbQ=="),
        None,
    );
    assert_eq!(r.status, 403);
    // The right PAT still works (PATs are not subject to the CAPTCHA).
    assert_eq!(get(&sim, "/rest/api/2/myself").status, 200);
    sim.reset_auth_failures();
    let r = request(
        sim.url(),
        "GET",
        "/rest/api/2/myself",
        Some("Bearer wrong"),
        None,
    );
    assert_eq!(r.status, 401);
    let st = sim.stats();
    assert_eq!(st.count("myself", 401), 4);
    assert_eq!(st.count("search", 403), 1);
}

#[test]
fn sim_scheduled_faults_each_kind() {
    let sim = start(200, 2);
    let q = "project = DEMO ORDER BY key ASC";
    let good = search(&sim, q, "&maxResults=30");
    assert_eq!(good.status, 200);

    sim.schedule_search_faults(
        Fault::RateLimit {
            retry_after_secs: 7,
        },
        2,
    );
    for _ in 0..2 {
        let r = search(&sim, q, "&maxResults=30");
        assert_eq!(r.status, 429);
        assert_eq!(r.header("Retry-After"), Some("7"));
        for h in [
            "X-RateLimit-Limit",
            "X-RateLimit-Remaining",
            "X-RateLimit-FillRate",
            "X-RateLimit-Interval-Seconds",
        ] {
            assert!(r.header(h).is_some(), "{h}");
        }
    }
    assert_eq!(search(&sim, q, "&maxResults=30").body, good.body);

    for code in [500, 502, 503] {
        sim.schedule_search_faults(Fault::Status(code), 1);
        let r = search(&sim, q, "&maxResults=30");
        assert_eq!(r.status, code);
        assert!(r.json()["errorMessages"].is_array());
    }
    sim.schedule_search_faults(Fault::HtmlBadGateway, 1);
    let r = search(&sim, q, "&maxResults=30");
    assert_eq!(r.status, 502);
    assert!(r.header("Content-Type").unwrap().starts_with("text/html"));
    assert!(r.body.starts_with(b"<html>"));

    // Reset mid-body: the full Content-Length is promised, half arrives.
    sim.schedule_search_faults(Fault::ResetMidBody, 1);
    let r = search(&sim, q, "&maxResults=30");
    assert_eq!(r.status, 200);
    assert_eq!(r.declared, Some(good.body.len()));
    assert!(!r.complete());
    assert!(r.body.len() <= good.body.len() / 2, "{}", r.body.len());
    let _ = r.io_error;

    // Clean close mid-body: same, without the reset.
    sim.schedule_search_faults(Fault::CloseMidBody, 1);
    let r = search(&sim, q, "&maxResults=30");
    assert_eq!(r.declared, Some(good.body.len()));
    assert!(!r.complete());

    // Truncated with a correct status: valid HTTP, broken JSON.
    sim.schedule_search_faults(Fault::TruncatedBody, 1);
    let r = search(&sim, q, "&maxResults=30");
    assert_eq!(r.status, 200);
    assert!(r.complete());
    assert_eq!(r.body.len(), good.body.len() / 2);
    assert!(serde_json::from_slice::<Value>(&r.body).is_err());

    // Non-search endpoints are untouched by search schedules; the any-endpoint
    // schedule hits the next request whatever it is.
    sim.schedule_faults(Fault::Status(503), 1);
    assert_eq!(get(&sim, "/rest/api/2/serverInfo").status, 503);
    assert_eq!(get(&sim, "/rest/api/2/serverInfo").status, 200);

    let st = sim.stats();
    assert_eq!(st.rate_limited, 2);
    assert_eq!(st.count("search", 429), 2);
    assert_eq!(st.count("search", 502), 2);
    assert_eq!(st.cut_connections, 2);
    assert!(st.bytes_sent >= 3 * good.body.len() as u64);
}

#[test]
fn sim_probabilistic_faults_are_seeded() {
    let run = || {
        let faults = FaultConfig {
            seed: 11,
            rate_503: 0.3,
            rate_429: 0.2,
            ..FaultConfig::default()
        };
        let sim = Simulator::start(SimConfig::default().issues(30).faults(faults)).unwrap();
        let seq: Vec<u16> = (0..40)
            .map(|_| search(&sim, "", "&maxResults=1").status)
            .collect();
        // Other endpoints are not affected (faults scope: search).
        assert!((0..10).all(|_| get(&sim, "/rest/api/2/field").status == 200));
        seq
    };
    let a = run();
    assert_eq!(a, run());
    assert!(
        a.contains(&503) && a.contains(&429) && a.contains(&200),
        "{a:?}"
    );
    // Faults can be replaced at run time.
    let sim = start(30, 1);
    sim.set_faults(FaultConfig {
        rate_500: 1.0,
        ..FaultConfig::default()
    });
    assert_eq!(search(&sim, "", "").status, 500);
    sim.clear_faults();
    assert_eq!(search(&sim, "", "").status, 200);
}

#[test]
fn sim_latency_and_slow_first_byte_delay_responses() {
    // Lower bounds only: a delay can never make a response faster.
    let sim = Simulator::start(SimConfig::default().issues(20).latency_ms(150)).unwrap();
    let t = Instant::now();
    assert_eq!(search(&sim, "", "").status, 200);
    assert!(t.elapsed() >= Duration::from_millis(150));
    sim.set_latency_ms(0);
    sim.schedule_search_faults(Fault::SlowFirstByte { ms: 200 }, 1);
    let t = Instant::now();
    assert_eq!(search(&sim, "", "").status, 200);
    assert!(t.elapsed() >= Duration::from_millis(200));
}

#[test]
fn sim_issue_endpoint_fields_and_changelog_shape() {
    let sim = start(400, 2);
    let truth = sim.ground_truth();
    let with_hist = truth.iter().find(|i| i.histories.len() >= 3).unwrap();
    let r = get(
        &sim,
        &format!("/rest/api/2/issue/{}?expand=changelog", with_hist.key),
    );
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["id"], with_hist.id.to_string());
    let cl = &v["changelog"];
    let hs = cl["histories"].as_array().unwrap();
    assert_eq!(cl["total"].as_u64().unwrap() as usize, hs.len());
    assert_eq!(cl["maxResults"], cl["total"]);
    assert_eq!(cl["startAt"], 0);
    let times: Vec<i64> = hs
        .iter()
        .map(|h| jira_ts(h["created"].as_str().unwrap()).timestamp_millis())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "oldest first");
    assert_eq!(
        *times.last().unwrap(),
        jira_ts(v["fields"]["updated"].as_str().unwrap()).timestamp_millis()
    );
    // Items over the whole dataset: DC shape, custom fields by display name.
    let mut saw_custom = false;
    let mut saw_due = false;
    for i in search_all(&sim, "", "key&expand=changelog") {
        for h in i["changelog"]["histories"].as_array().unwrap() {
            for it in h["items"].as_array().unwrap() {
                let o = it.as_object().unwrap();
                let keys: BTreeSet<&str> = o.keys().map(|k| k.as_str()).collect();
                assert_eq!(
                    keys,
                    BTreeSet::from(["field", "fieldtype", "from", "fromString", "to", "toString"])
                );
                if it["fieldtype"] == "custom" {
                    saw_custom = true;
                    assert!(!it["field"].as_str().unwrap().starts_with("customfield_"));
                }
                if it["field"] == "duedate" {
                    saw_due = true;
                    assert!(it["toString"].as_str().unwrap().ends_with(" 00:00:00.0"));
                }
            }
        }
    }
    assert!(saw_custom && saw_due);

    // Field selection on GET issue.
    let v = get(&sim, "/rest/api/2/issue/10000?fields=summary,status").json();
    let keys: BTreeSet<String> = v["fields"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        keys,
        BTreeSet::from(["summary".to_string(), "status".to_string()])
    );
    assert!(v.get("changelog").is_none());
    let v = get(&sim, "/rest/api/2/issue/10000?fields=-description").json();
    assert!(v["fields"].get("description").is_none());
    assert!(v["fields"].get("summary").is_some());
    assert!(v["fields"].get("customfield_10100").is_some());
    assert_eq!(get(&sim, "/rest/api/2/issue/DEMO-99999").status, 404);
    assert_eq!(get(&sim, "/rest/api/2/nothing").status, 404);
}

#[test]
fn sim_data_has_realistic_shapes() {
    let sim = start(1500, 3);
    let issues = search_all(&sim, "", "*all");
    let text = |v: &Value| v.as_str().unwrap_or("").to_string();
    let mut links: HashMap<String, Vec<(String, String, String)>> = HashMap::new();
    let (mut inward, mut outward, mut parents, mut subtasks) = (0, 0, 0, 0);
    let (mut null_assignee, mut nul, mut sprint, mut epic) = (0, 0, 0, 0);
    let mut desc_chars = BTreeSet::new();
    for i in &issues {
        let f = &i["fields"];
        for ts in ["created", "updated"] {
            let s = text(&f[ts]);
            assert_eq!(s.len(), 28, "{s}");
            jira_ts(&s);
        }
        if f["assignee"].is_null() {
            null_assignee += 1;
        } else {
            for k in ["name", "key", "displayName", "emailAddress", "active"] {
                assert!(f["assignee"].get(k).is_some(), "user.{k}");
            }
        }
        assert!(f["status"]["statusCategory"]["key"].is_string());
        let d = text(&f["description"]);
        if d.contains('\u{0}') {
            nul += 1;
        }
        for c in ['\t', '\r', '\n', '\\', '"', '🚀'] {
            if d.contains(c) {
                desc_chars.insert(c);
            }
        }
        for l in f["issuelinks"].as_array().unwrap() {
            let t = &l["type"];
            for k in ["id", "name", "inward", "outward"] {
                assert!(t[k].is_string(), "link type {k}");
            }
            let (dir, other) = if l.get("outwardIssue").is_some() {
                outward += 1;
                ("out", &l["outwardIssue"])
            } else {
                inward += 1;
                ("in", &l["inwardIssue"])
            };
            assert!(other["fields"]["status"].is_object());
            links.entry(text(&l["id"])).or_default().push((
                text(&i["key"]),
                dir.to_string(),
                text(&other["key"]),
            ));
        }
        if f.get("parent").is_some() {
            parents += 1;
            assert_eq!(f["issuetype"]["subtask"], true);
        }
        subtasks += f["subtasks"].as_array().unwrap().len();
        if let Some(s) = f["customfield_10107"].as_array() {
            sprint += 1;
            assert!(text(&s[0]).starts_with("com.atlassian.greenhopper.service.sprint.Sprint@"));
            assert!(text(&s[0]).contains("[id="));
        }
        if f["customfield_10108"].is_string() {
            epic += 1;
        }
    }
    // Each link appears on both issues, in opposite directions.
    for (id, ends) in &links {
        assert_eq!(ends.len(), 2, "link {id}: {ends:?}");
        assert_eq!(ends[0].0, ends[1].2);
        assert_eq!(ends[1].0, ends[0].2);
        assert_ne!(ends[0].1, ends[1].1);
    }
    assert!(inward > 50 && outward > 50);
    assert_eq!(parents, subtasks);
    assert!(parents > 20);
    assert!(null_assignee > 5 && sprint > 100 && epic > 20);
    assert!(nul >= 1, "a rare NUL in some description");
    assert_eq!(desc_chars.len(), 6, "{desc_chars:?}");
}

#[test]
fn sim_mutations_and_ground_truth() {
    let sim = start(600, 3);
    let before = chrono::Utc::now().timestamp_millis();
    // An issue with a label and at least one link.
    let target = sim
        .ground_truth()
        .into_iter()
        .find(|i| !i.labels.is_empty() && !i.links.is_empty() && i.status_name() != "Done")
        .unwrap();
    let other_id = target.links[0].other_id;
    let old_label = target.labels[0].clone();
    sim.update_issue(
        target.id,
        &IssueUpdate::new()
            .summary("Changed ✓ \"quoted\"")
            .status("Done")
            .remove_label(old_label.clone())
            .add_label("synced")
            .remove_all_links()
            .story_points(Some(5.0)),
    )
    .unwrap();
    let after = chrono::Utc::now().timestamp_millis();
    let now = sim.issue(target.id).unwrap();
    assert_eq!(now.summary, "Changed ✓ \"quoted\"");
    assert_eq!(now.status_name(), "Done");
    assert_eq!(now.resolution_name(), Some("Fixed"));
    assert!(now.labels.contains(&"synced".to_string()));
    assert!(!now.labels.contains(&old_label));
    assert!(now.links.is_empty());
    assert!(now.updated_ms >= before && now.updated_ms <= after);
    assert_eq!(now.histories.len(), target.histories.len() + 1);
    let last = now.histories.last().unwrap();
    let fields: Vec<&str> = last.items.iter().map(|i| i.field.as_str()).collect();
    for f in [
        "summary",
        "status",
        "resolution",
        "labels",
        "Link",
        "Story Points",
    ] {
        assert!(fields.contains(&f), "{f} in {fields:?}");
    }
    // The other end of a removed link lost it and was updated too.
    let other = sim.issue(other_id).unwrap();
    assert!(other.links.iter().all(|l| l.other_id != target.id));
    assert!(other.updated_ms >= before);
    // HTTP agrees with the ground truth.
    let v = get(
        &sim,
        &format!("/rest/api/2/issue/{}?expand=changelog", target.id),
    )
    .json();
    assert_eq!(v["fields"]["summary"], "Changed ✓ \"quoted\"");
    assert_eq!(v["fields"]["issuelinks"].as_array().unwrap().len(), 0);
    assert_eq!(v["fields"]["customfield_10100"], 5.0);
    assert_eq!(
        jira_ts(v["fields"]["updated"].as_str().unwrap()).timestamp_millis(),
        now.updated_ms
    );
    let found = ids(&search_all(&sim, &format!("updated >= {before}"), "key"));
    assert!(found.contains(&target.id) && found.contains(&other_id));

    // Add a link: both ends show it.
    sim.update_issue(target.id, &IssueUpdate::new().add_link(10005, "Blocks"))
        .unwrap();
    let link = &sim.issue(target.id).unwrap().links[0];
    assert!(link.outward && link.other_id == 10005);
    assert!(
        sim.issue(10005)
            .unwrap()
            .links
            .iter()
            .any(|l| l.id == link.id && !l.outward)
    );

    // Move: new key, same id; the old key still resolves.
    let moved = sim
        .ground_truth()
        .into_iter()
        .find(|i| i.project_key == "DEMO" && i.subtasks.is_empty() && i.parent.is_none())
        .unwrap();
    let new_key = sim.move_issue(moved.id, "BETA").unwrap();
    assert!(new_key.starts_with("BETA-"));
    let v = get(&sim, &format!("/rest/api/2/issue/{}", moved.key)).json();
    assert_eq!(v["key"], new_key);
    assert_eq!(v["id"], moved.id.to_string());
    assert!(ids(&search_all(&sim, "project = BETA", "key")).contains(&moved.id));
    assert!(!ids(&search_all(&sim, "project = DEMO", "key")).contains(&moved.id));
    let hist = sim
        .issue(moved.id)
        .unwrap()
        .histories
        .last()
        .unwrap()
        .clone();
    assert!(
        hist.items
            .iter()
            .any(|i| i.field == "Key" && i.to_string.as_deref() == Some(new_key.as_str()))
    );

    // Delete: gone from search, GET and the ground truth; links to it vanish.
    let victim = sim
        .ground_truth()
        .into_iter()
        .find(|i| !i.links.is_empty() && i.parent.is_none())
        .unwrap();
    let linked = victim.links[0].other_id;
    sim.delete_issues(&[victim.id]).unwrap();
    assert_eq!(
        get(&sim, &format!("/rest/api/2/issue/{}", victim.id)).status,
        404
    );
    assert!(!ids(&search_all(&sim, "", "key")).contains(&victim.id));
    assert!(sim.ground_truth().iter().all(|i| i.id != victim.id));
    assert!(sim.deleted_ids().contains(&victim.id));
    assert!(
        sim.issue(linked)
            .map(|i| i.links.iter().all(|l| l.other_id != victim.id))
            .unwrap_or(true)
    );
    let truth_total = sim.ground_truth().len();
    assert_eq!(
        search(&sim, "", "&maxResults=0").json()["total"],
        truth_total
    );
}

#[test]
fn sim_bulk_edit_lands_in_one_minute() {
    let sim = start(1200, 2);
    let ids_demo = sim.ids_in_project("DEMO");
    assert_eq!(ids_demo.len(), 600);
    let stamps = sim
        .bulk_edit(&ids_demo, &IssueUpdate::new().add_label("bulk"))
        .unwrap();
    let minute = stamps[0] - stamps[0].rem_euclid(60_000);
    assert!(stamps.iter().all(|t| t - t.rem_euclid(60_000) == minute));
    let got = search_all(
        &sim,
        &format!("updated >= {minute} ORDER BY updated ASC, id ASC"),
        "updated",
    );
    assert_eq!(got.len(), 600);
    let truth = sim.ground_truth();
    assert_eq!(
        truth
            .iter()
            .filter(|i| i.labels.contains(&"bulk".to_string()))
            .count(),
        600
    );
}

#[test]
fn sim_hook_updates_issues_while_a_client_pages() {
    let sim = start(300, 1);
    let first = ids(&search_all(&sim, "ORDER BY updated ASC, id ASC", "key"))[0];
    let calls = Arc::new(AtomicU64::new(0));
    let c2 = calls.clone();
    let served_before = sim.stats().searches_served;
    sim.set_search_hook(move |ctl, _seq| {
        // The second search request after the hook is installed.
        if c2.fetch_add(1, Ordering::SeqCst) + 1 == 2 {
            ctl.update_issue(first, &IssueUpdate::new().summary("touched mid-run"))
                .unwrap();
        }
    });
    // Page 1 holds `first`; before page 2 is served it is updated and
    // moves to the end of the order, so a naive pager sees it twice.
    let pages = search_all(&sim, "ORDER BY updated ASC, id ASC", "summary");
    let got = ids(&pages);
    assert_eq!(got[0], first);
    assert_eq!(*got.last().unwrap(), first);
    assert_eq!(
        pages.last().unwrap()["fields"]["summary"],
        "touched mid-run"
    );
    assert!(calls.load(Ordering::SeqCst) >= 3);
    assert_eq!(
        sim.stats().searches_served - served_before,
        calls.load(Ordering::SeqCst)
    );
    sim.clear_search_hook();
}

#[test]
fn sim_is_deterministic() {
    let keys: Vec<String> = ["DEMO", "ALPHA"].iter().map(|s| s.to_string()).collect();
    let a = Dataset::new(5, 500, &keys);
    let b = Dataset::new(5, 500, &keys);
    let c = Dataset::new(6, 500, &keys);
    assert_eq!(
        a.search_page_body(100, 100, true),
        b.search_page_body(100, 100, true)
    );
    assert_ne!(
        a.search_page_body(100, 100, true),
        c.search_page_body(100, 100, true)
    );
    let page: Value = serde_json::from_slice(&a.search_page_body(0, 50, false)).unwrap();
    assert_eq!(page["issues"].as_array().unwrap().len(), 50);
    assert_eq!(page["total"], 500);
    // Over HTTP too (the self URLs carry each server's port).
    let s1 = start(500, 2);
    let s2 = start(500, 2);
    let q = "ORDER BY key ASC";
    let b1 = String::from_utf8(search(&s1, q, "&expand=changelog").body).unwrap();
    let b2 = String::from_utf8(search(&s2, q, "&expand=changelog").body).unwrap();
    assert_eq!(b1.replace(s1.url(), "URL"), b2.replace(s2.url(), "URL"));
}

#[test]
fn sim_works_with_a_keep_alive_reqwest_client() {
    let sim = start(300, 2);
    let url = sim.url().to_string();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let client = reqwest::Client::new();
        let mut total = 0;
        for page in 0..5 {
            let r = client
                .get(format!("{url}/rest/api/2/search"))
                .query(&[
                    ("jql", "project = DEMO ORDER BY key ASC"),
                    ("startAt", &(page * 20).to_string()),
                    ("maxResults", "20"),
                ])
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            let v: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
            total += v["issues"].as_array().unwrap().len();
        }
        assert_eq!(total, 100);
        let r = client
            .post(format!("{url}/rest/api/2/search"))
            .bearer_auth(TOKEN)
            .header("Content-Type", "application/json")
            .body(serde_json::json!({"jql": "project = ALPHA", "maxResults": 5}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
        assert_eq!(v["issues"].as_array().unwrap().len(), 5);
    });
}

#[test]
fn sim_simulate_command_prints_url_and_serves() {
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("pipeline"))
        .args([
            "simulate",
            "--port",
            "0",
            "--issues",
            "40",
            "--projects",
            "DEMO,OPS",
            "--tz",
            "Europe/Berlin",
        ])
        .env_remove("DATABASE_URL")
        .current_dir(std::env::temp_dir())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let url = line.trim().rsplit(' ').next().unwrap().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{line}");
    let mut rest = String::new();
    out.read_line(&mut rest).unwrap();
    out.read_line(&mut rest).unwrap();
    assert!(rest.contains("JIRA_PAT=sim-token"), "{rest}");
    let me = request(&url, "GET", "/rest/api/2/myself", Some(&bearer()), None);
    let r = request(
        &url,
        "GET",
        "/rest/api/2/search?jql=project%3DOPS&maxResults=0",
        Some(&bearer()),
        None,
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(me.json()["timeZone"], "Europe/Berlin");
    assert_eq!(r.json()["total"], 20);
}

#[test]
fn sim_admin_endpoints_script_mutations_and_faults() {
    let sim = start(300, 3);
    let post = |path: &str, body: Value| {
        request(
            sim.url(),
            "POST",
            path,
            Some(&bearer()),
            Some(&body.to_string()),
        )
    };
    assert_eq!(
        request(sim.url(), "GET", "/_sim/stats", None, None).status,
        401
    );
    let r = post(
        "/_sim/update",
        serde_json::json!({"ids": [10001], "summary": "via admin", "add_labels": ["adm"]}),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(sim.issue(10001).unwrap().summary, "via admin");
    let r = post(
        "/_sim/move",
        serde_json::json!({"id": 10003, "project": "BETA"}),
    );
    assert_eq!(r.json()["key"], "BETA-101");
    post("/_sim/delete", serde_json::json!({"ids": [10004]}));
    assert!(sim.issue(10004).is_none());
    let r = post(
        "/_sim/bulk-edit",
        serde_json::json!({"project": "DEMO", "count": 50, "add_label": "b"}),
    );
    assert_eq!(r.json()["edited"], 50);
    post(
        "/_sim/faults",
        serde_json::json!({"fault": "429", "count": 1, "retry_after": 3}),
    );
    let r = search(&sim, "", "");
    assert_eq!((r.status, r.header("Retry-After")), (429, Some("3")));
    assert_eq!(search(&sim, "", "").status, 200);
    let truth = get(&sim, "/_sim/truth").json();
    assert_eq!(truth["issues"].as_array().unwrap().len(), 299);
    assert_eq!(truth["deleted"], serde_json::json!([10004]));
    let st = get(&sim, "/_sim/stats").json();
    assert_eq!(st["rate_limited"], 1);
    assert_eq!(
        post("/_sim/faults", serde_json::json!({"fault": "nope"})).status,
        400
    );
}

#[test]
fn sim_search_expand_names_and_schema() {
    let sim = start(50, 1);
    let plain = search(&sim, "", "&fields=summary,customfield_10102").json();
    assert!(plain.get("names").is_none());
    let v = search(
        &sim,
        "",
        "&fields=summary,customfield_10102&expand=names,schema",
    )
    .json();
    assert_eq!(v["names"]["summary"], "Summary");
    assert_eq!(v["names"]["customfield_10102"], "Severity");
    assert_eq!(v["schema"]["customfield_10102"]["type"], "option");
    assert_eq!(v["schema"]["customfield_10102"]["customId"], 10102);
    assert_eq!(v["issues"].as_array().unwrap().len(), 50);
}

#[test]
fn sim_more_than_10000_matches_need_slicing() {
    let sim = Simulator::start(SimConfig::default().issues(12_000).projects(1)).unwrap();
    let q = "project = DEMO ORDER BY key ASC";
    let v = search(&sim, q, "&startAt=9900&maxResults=100").json();
    assert_eq!(v["total"], 12_000);
    assert_eq!(v["issues"][0]["key"], "DEMO-9901");
    assert_eq!(search(&sim, q, "&startAt=10000&maxResults=1").status, 500);
    // The tail is reachable only through a narrower query.
    let v = search(
        &sim,
        "project = DEMO AND key > DEMO-10000 ORDER BY key ASC",
        "&maxResults=1",
    )
    .json();
    assert_eq!(v["total"], 2_000);
    assert_eq!(v["issues"][0]["key"], "DEMO-10001");
}

/// Large scale: 1,000,000 issues, a 12,000-issue bulk edit in one minute.
/// `cargo test --release --test it sim_million -- --ignored --nocapture`
#[test]
#[ignore]
fn sim_million_issues_soak() {
    let t = Instant::now();
    let sim = Simulator::start(SimConfig::default().issues(1_000_000).projects(5)).unwrap();
    println!("started 1M issues in {:?}", t.elapsed());
    let q = "project = DEMO ORDER BY updated ASC, id ASC";
    for page in 0..3 {
        let t = Instant::now();
        let r = search(
            &sim,
            q,
            &format!("&startAt={}&maxResults=100&expand=changelog", page * 100),
        );
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["total"], 200_000);
        println!("page {page}: {} bytes in {:?}", r.body.len(), t.elapsed());
    }
    let ids: Vec<u64> = sim
        .ids_in_project("ALPHA")
        .into_iter()
        .take(12_000)
        .collect();
    let stamps = sim
        .bulk_edit(&ids, &IssueUpdate::new().add_label("bulk"))
        .unwrap();
    let minute = stamps[0] - stamps[0].rem_euclid(60_000);
    let v = search(&sim, &format!("updated >= {minute}"), "&maxResults=0").json();
    assert_eq!(v["total"], 12_000);
    assert_eq!(
        search(
            &sim,
            &format!("updated >= {minute}"),
            "&startAt=9950&maxResults=100"
        )
        .status,
        500
    );
}

#[test]
fn sim_html_login_page_and_poisoned_issues() {
    let sim = start(100, 1);
    sim.schedule_search_faults(Fault::HtmlLoginPage, 1);
    let r = search(&sim, "", "");
    assert_eq!(r.status, 200);
    assert!(r.header("Content-Type").unwrap().starts_with("text/html"));
    assert!(serde_json::from_slice::<Value>(&r.body).is_err());

    sim.poison_issue(10005, jira_sim::Poison::WrongType)
        .unwrap();
    sim.poison_issue(10007, jira_sim::Poison::BadDate).unwrap();
    assert_eq!(sim.poisoned_ids(), vec![10005, 10007]);
    let v = get(&sim, "/rest/api/2/issue/10005").json();
    assert_eq!(v["fields"]["customfield_10100"], "lots");
    let v = get(&sim, "/rest/api/2/issue/10007").json();
    assert_eq!(v["fields"]["created"], "yesterday");
    // Poisoning counts as a change: an incremental query finds both.
    let before = chrono::Utc::now().timestamp_millis() - 60_000;
    let got = ids(&search_all(
        &sim,
        &format!("updated >= {before} ORDER BY id"),
        "key",
    ));
    assert_eq!(got, vec![10005, 10007]);
    // Every other issue is intact.
    let v = search(&sim, "key = DEMO-1", "").json();
    assert!(
        v["issues"][0]["fields"]["created"]
            .as_str()
            .unwrap()
            .starts_with("20")
    );
}

#[test]
fn sim_ground_truth_matches_rendered_json() {
    let sim = start(600, 3);
    // Some churn first: updates, a move, deletions (an epic among them).
    let truth = sim.ground_truth();
    let epic = truth
        .iter()
        .find(|i| i.issue_type_name() == "Epic")
        .unwrap()
        .id;
    sim.delete_issues(&[epic, 10020]).unwrap();
    sim.update_issue(10030, &IssueUpdate::new().remove_all_links().add_label("x"))
        .unwrap();
    sim.update_issue(10031, &IssueUpdate::new().add_link(10032, "Relates"))
        .unwrap();
    sim.move_issue(10033, "ALPHA").unwrap();
    let truth: HashMap<u64, jira_sim::Issue> =
        sim.ground_truth().into_iter().map(|i| (i.id, i)).collect();
    let issues = search_all(&sim, "", "*all&expand=changelog");
    assert_eq!(issues.len(), truth.len());
    let str_ids = |v: &Value| -> Vec<u64> {
        let mut x: Vec<u64> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().parse().unwrap())
            .collect();
        x.sort();
        x
    };
    for i in &issues {
        let id: u64 = i["id"].as_str().unwrap().parse().unwrap();
        let t = &truth[&id];
        let f = &i["fields"];
        assert_eq!(i["key"], t.key);
        assert_eq!(f["project"]["key"], t.project_key);
        assert_eq!(f["summary"], t.summary);
        assert_eq!(f["status"]["name"], t.status_name());
        assert_eq!(f["issuetype"]["name"], t.issue_type_name());
        assert_eq!(
            jira_ts(f["updated"].as_str().unwrap()).timestamp_millis(),
            t.updated_ms
        );
        assert_eq!(
            jira_ts(f["created"].as_str().unwrap()).timestamp_millis(),
            t.created_ms
        );
        assert_eq!(f["labels"], serde_json::json!(t.labels));
        let sorted = |v: Vec<(u64, String)>| {
            let mut ids: Vec<u64> = v.into_iter().map(|x| x.0).collect();
            ids.sort();
            ids
        };
        assert_eq!(str_ids(&f["components"]), sorted(t.components.clone()));
        assert_eq!(str_ids(&f["fixVersions"]), sorted(t.fix_versions.clone()));
        assert_eq!(str_ids(&f["versions"]), sorted(t.versions.clone()));
        let mut links = t.link_ids();
        links.sort();
        assert_eq!(str_ids(&f["issuelinks"]), links);
        let hist: Vec<u64> = i["changelog"]["histories"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["id"].as_str().unwrap().parse().unwrap())
            .collect();
        assert_eq!(hist, t.history_ids());
        let present: Vec<(String, Value)> = sim.custom_values(t);
        for (k, v) in f.as_object().unwrap() {
            if k.starts_with("customfield_") {
                let want = present
                    .iter()
                    .find(|(id, _)| id == k)
                    .map(|(_, v)| v.clone())
                    .unwrap_or(Value::Null);
                assert_eq!(v, &want, "{} {k}", t.key);
            }
        }
        assert_eq!(
            f["parent"]["id"]
                .as_str()
                .map(|s| s.parse::<u64>().unwrap()),
            t.parent.map(|p| 10000 + p as u64)
        );
        assert_eq!(f["assignee"]["name"].as_str(), t.assignee_name());
    }
}

#[test]
fn sim_truth_index_and_visitor_agree_with_ground_truth() {
    let sim = start(200, 2);
    sim.delete_issues(&[10010]).unwrap();
    let full = sim.ground_truth();
    let index = sim.truth_index();
    assert_eq!(index.len(), full.len());
    for (t, (id, key, updated)) in full.iter().zip(&index) {
        assert_eq!((t.id, &t.key, t.updated_ms), (*id, key, *updated));
    }
    let mut n = 0;
    sim.visit_ground_truth(|i| {
        assert_eq!(i, &full[n]);
        n += 1;
    });
    assert_eq!(n, full.len());
}

#[test]
fn sim_serves_concurrent_clients_while_issues_change() {
    let sim = start(900, 3);
    let url = sim.url().to_string();
    let ctl = sim.control();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let writer = std::thread::spawn(move || {
        let mut n = 0u64;
        while !stop2.load(Ordering::SeqCst) {
            ctl.update_issue(10000 + n % 900, &IssueUpdate::new().add_label("churn"))
                .unwrap();
            n += 1;
            std::thread::sleep(Duration::from_millis(2));
        }
        n
    });
    let readers: Vec<_> = (0..8)
        .map(|k| {
            let url = url.clone();
            std::thread::spawn(move || {
                for p in 0..6 {
                    let path = format!(
                        "/rest/api/2/search?jql={}&startAt={}&maxResults=50&expand=changelog",
                        enc("ORDER BY updated ASC, id ASC"),
                        (k * 6 + p) * 10
                    );
                    let r = request(&url, "GET", &path, Some(&bearer()), None);
                    assert_eq!(r.status, 200);
                    assert_eq!(r.json()["issues"].as_array().unwrap().len(), 50);
                }
            })
        })
        .collect();
    for r in readers {
        r.join().unwrap();
    }
    stop.store(true, Ordering::SeqCst);
    assert!(writer.join().unwrap() > 0);
    assert_eq!(sim.stats().count("search", 200), 48);
}

#[test]
fn sim_index_lag_hides_changes_from_jql_for_a_while() {
    let sim = start(200, 2);
    sim.set_index_lag_ms(400);
    let before = chrono::Utc::now().timestamp_millis();
    sim.update_issue(
        10002,
        &IssueUpdate::new().summary("late").add_label("lagged"),
    )
    .unwrap();
    sim.delete_issues(&[10004]).unwrap();
    // The database has the change at once ...
    assert_eq!(sim.issue(10002).unwrap().summary, "late");
    let v = get(&sim, "/rest/api/2/issue/10002").json();
    assert_eq!(v["fields"]["summary"], "late");
    // ... the index does not yet: JQL on the new values finds nothing, while
    // a found issue renders its live fields and a deleted one is left out.
    assert_eq!(search(&sim, "labels = lagged", "").json()["total"], 0);
    assert_eq!(
        search(&sim, &format!("updated >= {before}"), "").json()["total"],
        0
    );
    let v = search(
        &sim,
        "key in (DEMO-2, DEMO-3) ORDER BY key",
        "&fields=summary",
    )
    .json();
    assert_eq!(v["total"], 2, "DEMO-3 (id 10004) is still in the index");
    let issues = v["issues"].as_array().unwrap();
    assert_eq!(issues.len(), 1, "but it is not loaded");
    assert_eq!(issues[0]["fields"]["summary"], "late");
    // After the lag the index catches up, with the change's original `updated`.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v = search(&sim, "labels = lagged", "&fields=updated").json();
        if v["total"] == 1 {
            let t = jira_ts(v["issues"][0]["fields"]["updated"].as_str().unwrap());
            assert!(t.timestamp_millis() >= before);
            assert_eq!(t.timestamp_millis(), sim.issue(10002).unwrap().updated_ms);
            break;
        }
        assert!(Instant::now() < deadline, "the index never caught up");
        std::thread::sleep(Duration::from_millis(50));
    }
    sim.set_index_lag_ms(0);
    assert_eq!(search(&sim, "key = DEMO-3", "").json()["total"], 0);
}
