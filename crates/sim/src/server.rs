//! The simulator's HTTP/1.1 server, on hyper 1.x (`hyper::server::conn::http1`
//! over tokio, one task per keep-alive connection). Routes the Jira REST
//! endpoints, checks the PAT, applies faults and latency, caches rendered
//! bodies, and counts statistics.
//!
//! Faults that break the HTTP exchange itself are injected below hyper:
//!
//! - a response cut mid-body ([`Fault::ResetMidBody`], [`Fault::CloseMidBody`])
//!   is a `SimBody` that promises the whole `Content-Length`, yields half of
//!   the body and then never ends; once hyper has written that half and
//!   flushes, the connection's I/O wrapper (`ConnIo`) cuts the socket (zero
//!   linger, so the close is a TCP reset, or a clean FIN) and fails the flush,
//!   so hyper drops the connection without writing anything more;
//! - a truncated body ([`Fault::TruncatedBody`]) is plain HTTP: half the body
//!   with a matching `Content-Length`, then `Connection: close`;
//! - slow first byte and latency sleep before the response head is handed to
//!   hyper; 429, 5xx and HTML pages are ordinary responses.
//!
//! Why hyper and not the former hand-written server over `httparse`: neither
//! fault injection (above) nor serving speed needed it. `cargo bench --bench
//! sim`, `sim_serve/simulator_cached_page100_changelog` (a cached 1.15 MB
//! page, keep-alive, one worker), old (f1d607b) and hyper (ebfecd7) binaries
//! run alternately, 10 runs each, 2026-12-01, shared 2-core VM (noisy, load
//! 2–13): median 436 µs hand-written vs 389 µs hyper; fastest run 152 µs vs
//! 151 µs. Details in docs/simulator.md, "Why the server is built on hyper".

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::faults::Fault;
use super::render::{self, Changelog, FieldSel};
use super::state::{Shared, SimControl, now_ms};
use super::traps::AuthTrap;
use super::{dims, jql};

const MAX_BODY: usize = 16 * 1024 * 1024;
/// DC 10's search window: `startAt + maxResults` may not exceed this.
pub const SEARCH_WINDOW: u64 = 10_000;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

struct Request {
    method: String,
    target: String,
    authorization: Option<String>,
}

/// How the body goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wire {
    Normal,
    Reset,
    Truncate,
    CloseEarly,
}

struct Response {
    status: u16,
    headers: Vec<(&'static str, String)>,
    content_type: &'static str,
    body: Bytes,
    wire: Wire,
    delay_ms: u64,
}

impl Response {
    fn json(status: u16, body: impl Into<Bytes>) -> Response {
        Response {
            status,
            headers: Vec::new(),
            content_type: "application/json;charset=UTF-8",
            body: body.into(),
            wire: Wire::Normal,
            delay_ms: 0,
        }
    }
    fn error(status: u16, msg: &str) -> Response {
        let body = serde_json::json!({"errorMessages": [msg], "errors": {}});
        Response::json(status, body.to_string())
    }
}

/// Accepts connections until `shutdown` flips; with `tls`, each is an
/// HTTPS connection ([`super::tls`]).
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let mut http = http1::Builder::new();
    // Header names as a Java servlet container writes them (`Content-Type`,
    // `Retry-After`), not hyper's lower case; no header timeout (no timer).
    http.title_case_headers(true).header_read_timeout(None);
    loop {
        tokio::select! {
            r = listener.accept() => {
                if let Ok((stream, _)) = r {
                    let _ = stream.set_nodelay(true);
                    let (sh, http) = (shared.clone(), http.clone());
                    match &tls {
                        None => tokio::spawn(serve_connection(stream, sh, http)),
                        Some(acceptor) => tokio::spawn(super::tls::serve_tls(acceptor.clone(), stream, sh, http)),
                    };
                }
            }
            _ = shutdown.changed() => break,
        }
    }
}

/// A connection's byte stream (TCP, or TLS over TCP) that a cut mid-body can
/// turn into a reset.
pub(crate) trait Socket: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// Makes the close of the underlying TCP socket a reset (RST).
    fn zero_linger(&self);
}

impl Socket for TcpStream {
    fn zero_linger(&self) {
        let _ = self.set_zero_linger();
    }
}

/// Serves one keep-alive connection until it closes.
pub(crate) async fn serve_connection<S: Socket>(stream: S, sh: Arc<Shared>, http: http1::Builder) {
    let cut = Arc::new(AtomicU8::new(CUT_NONE));
    let io = TokioIo::new(ConnIo {
        inner: stream,
        cut: cut.clone(),
        shared: sh.clone(),
    });
    let svc = service_fn(move |req| respond(sh.clone(), cut.clone(), req));
    let _ = http.serve_connection(io, svc).await;
}

/// One request: read the body, answer, apply the response's delay, and hand
/// hyper the head and a [`SimBody`]. An error closes the connection unanswered.
async fn respond(
    sh: Arc<Shared>,
    cut: Arc<AtomicU8>,
    req: hyper::Request<Incoming>,
) -> Result<hyper::Response<SimBody>, BoxError> {
    let (parts, body) = req.into_parts();
    let req = Request {
        method: parts.method.as_str().to_string(),
        target: parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string(),
        authorization: parts
            .headers
            .get(header::AUTHORIZATION)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
    };
    let too_large = || {
        let mut r = Response::error(413, "request body too large");
        r.headers.push(("Connection", "close".into()));
        Ok(to_hyper(&sh, &cut, r))
    };
    if body.size_hint().lower() > MAX_BODY as u64 {
        return too_large();
    }
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) if e.is::<LengthLimitError>() => return too_large(),
        Err(e) => return Err(e),
    };
    let resp = handle(&sh, &req, &body).await;
    if resp.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(resp.delay_ms)).await;
    }
    Ok(to_hyper(&sh, &cut, resp))
}

/// The hyper response for `r`, its body shaped by `r.wire`.
fn to_hyper(sh: &Arc<Shared>, cut: &Arc<AtomicU8>, r: Response) -> hyper::Response<SimBody> {
    let half = r.body.len() / 2;
    let (data, declared, cut_as) = match r.wire {
        Wire::Normal => (r.body.clone(), r.body.len(), CUT_NONE),
        Wire::Truncate => (r.body.slice(..half), half, CUT_NONE),
        Wire::Reset => (r.body.slice(..half), r.body.len(), CUT_RESET),
        Wire::CloseEarly => (r.body.slice(..half), r.body.len(), CUT_CLOSE),
    };
    let body = SimBody {
        data: Some(data),
        remaining: declared as u64,
        cut: (cut_as != CUT_NONE).then(|| (cut_as, cut.clone())),
        shared: sh.clone(),
    };
    let mut resp = hyper::Response::new(body);
    *resp.status_mut() =
        hyper::StatusCode::from_u16(r.status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(r.content_type),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, no-transform"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    for (k, v) in r.headers {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::try_from(v),
        ) {
            h.append(k, v);
        }
    }
    if r.wire != Wire::Normal {
        h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

const CUT_NONE: u8 = 0;
const CUT_RESET: u8 = 1;
const CUT_CLOSE: u8 = 2;
const CUT_DONE: u8 = 3;

/// A response body: one chunk (whose length hyper sends as `Content-Length`,
/// `remaining`), and for a cut response, a promise of more that is never kept:
/// after the chunk it arms the connection's cut and stays pending, so the
/// next flush of [`ConnIo`] cuts the connection.
pub(crate) struct SimBody {
    data: Option<Bytes>,
    remaining: u64,
    cut: Option<(u8, Arc<AtomicU8>)>,
    shared: Arc<Shared>,
}

impl Body for SimBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if let Some(d) = this.data.take() {
            this.remaining -= d.len() as u64;
            this.shared
                .stats
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .bytes_sent += d.len() as u64;
            if !d.is_empty() {
                return Poll::Ready(Some(Ok(Frame::data(d))));
            }
        }
        match &this.cut {
            // Everything hyper was given is in its write buffer; the flush
            // that writes it out cuts the connection (see `ConnIo`). No waker:
            // this body never continues.
            Some((how, flag)) => {
                flag.store(*how, Ordering::Release);
                Poll::Pending
            }
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.cut.is_none() && self.data.as_ref().is_none_or(Bytes::is_empty)
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// A connection's socket as hyper sees it: passes everything through, except
/// that a flush after a cut was armed (by a [`SimBody`]) ends the connection
/// the way the fault says, then fails so hyper gives up on it.
struct ConnIo<S> {
    inner: S,
    cut: Arc<AtomicU8>,
    shared: Arc<Shared>,
}

impl<S> ConnIo<S> {
    fn cut_error() -> std::io::Error {
        std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "simulated connection cut mid-body",
        )
    }
}

impl<S: Socket> AsyncRead for ConnIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: Socket> AsyncWrite for ConnIo<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if this.cut.load(Ordering::Acquire) == CUT_DONE {
            return Poll::Ready(Err(Self::cut_error()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if this.cut.load(Ordering::Acquire) == CUT_DONE {
            return Poll::Ready(Err(Self::cut_error()));
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        ready!(Pin::new(&mut this.inner).poll_flush(cx))?;
        match this.cut.load(Ordering::Acquire) {
            CUT_NONE => Poll::Ready(Ok(())),
            CUT_DONE => Poll::Ready(Err(Self::cut_error())),
            how => {
                // Counted before the client can see the cut.
                this.shared
                    .stats
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .cut_connections += 1;
                this.cut.store(CUT_DONE, Ordering::Release);
                if how == CUT_RESET {
                    // Closing with zero linger sends RST instead of FIN.
                    this.inner.zero_linger();
                } else {
                    // A TCP shutdown is one system call, never pending.
                    let _ = Pin::new(&mut this.inner).poll_shutdown(cx);
                }
                Poll::Ready(Err(Self::cut_error()))
            }
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.cut.load(Ordering::Acquire) != CUT_NONE {
            // Already cut (a FIN would spoil a reset).
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < b.len() => {
                let h = std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match h {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query_params(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(p), String::new()),
        })
        .collect()
}

/// The statistics name of a request path (also what `route` dispatches on).
fn endpoint_name(path: &str) -> &'static str {
    match path {
        "/rest/api/2/myself" => "myself",
        "/rest/api/2/serverInfo" => "serverInfo",
        "/rest/api/2/field" => "field",
        "/rest/api/2/search" => "search",
        "/rest/api/2/status" => "status",
        "/rest/api/2/priority" => "priority",
        "/rest/api/2/issuetype" => "issuetype",
        "/rest/api/2/resolution" => "resolution",
        "/rest/api/2/project" => "project",
        p if p.starts_with("/rest/api/2/issue/") => "issue",
        p => match project_path(p) {
            Some((_, None)) => "project",
            Some((_, Some("versions"))) => "versions",
            Some((_, Some("components"))) => "components",
            _ => "other",
        },
    }
}

/// Is `ep` one of the endpoints [`dimension`] serves?
fn is_dimension(ep: &str) -> bool {
    matches!(
        ep,
        "project" | "versions" | "components" | "status" | "priority" | "issuetype" | "resolution"
    )
}

/// `/rest/api/2/project/{idOrKey}[/{what}]` → (idOrKey, what).
fn project_path(path: &str) -> Option<(&str, Option<&str>)> {
    let rest = path.strip_prefix("/rest/api/2/project/")?;
    match rest.split_once('/') {
        None if !rest.is_empty() => Some((rest, None)),
        Some((k, what)) if !k.is_empty() && !what.contains('/') => Some((k, Some(what))),
        _ => None,
    }
}

/// The dimension endpoints: projects (list, one, versions, components),
/// statuses, priorities, issue types, resolutions. An anonymous caller sees
/// no projects (an empty list, 404 for one) and no issue types, as in a Jira
/// whose projects anonymous users cannot browse.
fn dimension(sh: &Shared, ep: &str, path: &str, auth: &Auth) -> Response {
    let ds = sh.ds.read().unwrap_or_else(|e| e.into_inner());
    let anonymous = matches!(auth, Auth::Anonymous);
    let body = match ep {
        "status" => dims::statuses_json(&ds),
        "priority" => dims::priorities_json(&ds),
        "resolution" => dims::resolutions_json(&ds),
        "issuetype" | "project" if anonymous && project_path(path).is_none() => b"[]".to_vec(),
        "issuetype" => dims::issuetypes_json(&ds),
        "project" if project_path(path).is_none() => dims::projects_json(&ds),
        _ => {
            let Some((raw_key, _)) = project_path(path) else {
                return Response::error(404, "Not found");
            };
            let key = percent_decode(raw_key);
            let found = match ep {
                _ if anonymous => None,
                "versions" => dims::versions_json(&ds, &key),
                "components" => dims::components_json(&ds, &key),
                _ => dims::project_json(&ds, &key),
            };
            match found {
                Some(b) => b,
                None => return Response::json(404, dims::no_project(&key)),
            }
        }
    };
    Response::json(200, body)
}

enum Auth {
    User,
    Anonymous,
}

fn check_auth(sh: &Shared, req: &Request, base_url: &str) -> Result<Auth, Response> {
    let Some(h) = &req.authorization else {
        return Ok(Auth::Anonymous);
    };
    let ok = h
        .strip_prefix("Bearer ")
        .map(|t| t.trim() == sh.token)
        .unwrap_or(false);
    if ok {
        return Ok(Auth::User);
    }
    let n = sh.auth_failures.fetch_add(1, Ordering::Relaxed) + 1;
    if n > sh.captcha_after as u64 {
        let mut r = Response::error(
            403,
            "CAPTCHA_CHALLENGE: too many failed logins; log in through the web UI to answer the CAPTCHA.",
        );
        r.headers.push((
            "X-Authentication-Denied-Reason",
            format!("CAPTCHA_CHALLENGE; login-url={base_url}/login.jsp"),
        ));
        r.headers
            .push(("X-Seraph-LoginReason", "AUTHENTICATION_DENIED".into()));
        return Err(r);
    }
    let mut r = Response::error(
        401,
        "You are not authenticated. Authentication required to perform this operation.",
    );
    r.headers
        .push(("X-Seraph-LoginReason", "AUTHENTICATED_FAILED".into()));
    r.headers
        .push(("WWW-Authenticate", "OAuth realm=\"jira\"".into()));
    Err(r)
}

fn fault_response(f: Fault, base: Response) -> Response {
    match f {
        Fault::RateLimit { retry_after_secs } => {
            let mut r = Response::error(
                429,
                "Rate limit exceeded. Try again after the time given in Retry-After.",
            );
            r.headers.push(("Retry-After", retry_after_secs.to_string()));
            r.headers.push(("X-RateLimit-Limit", "100".into()));
            r.headers.push(("X-RateLimit-Remaining", "0".into()));
            r.headers.push(("X-RateLimit-FillRate", "10".into()));
            r.headers.push(("X-RateLimit-Interval-Seconds", "1".into()));
            r
        }
        Fault::Status(s) => Response::error(
            s,
            &format!("Simulated server error {s}. The request may be retried."),
        ),
        Fault::HtmlBadGateway => Response {
            status: 502,
            headers: Vec::new(),
            content_type: "text/html",
            body: Bytes::from_static(
                b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
            ),
            wire: Wire::Normal,
            delay_ms: 0,
        },
        Fault::HtmlLoginPage => Response {
            status: 200,
            headers: Vec::new(),
            content_type: "text/html;charset=UTF-8",
            body: Bytes::from_static(
                b"<!DOCTYPE html>\n<html><head><title>Log in - Company SSO</title></head>\n<body><form method=\"post\" action=\"/login\"><input name=\"username\"><input type=\"password\" name=\"password\"><button>Log in</button></form></body></html>\n",
            ),
            wire: Wire::Normal,
            delay_ms: 0,
        },
        Fault::ResetMidBody => Response {
            wire: Wire::Reset,
            ..base
        },
        Fault::TruncatedBody => Response {
            wire: Wire::Truncate,
            ..base
        },
        Fault::CloseMidBody => Response {
            wire: Wire::CloseEarly,
            ..base
        },
        Fault::SlowFirstByte { ms } => Response {
            delay_ms: base.delay_ms + ms,
            ..base
        },
    }
}

/// The answer of an authentication trap other than the anonymous proxy
/// (which routes the request as anonymous instead: `None`).
fn trap_response(t: AuthTrap, path: &str, base_url: &str) -> Option<Response> {
    let html = |status: u16, body: &'static [u8]| Response {
        status,
        headers: Vec::new(),
        content_type: "text/html;charset=UTF-8",
        body: Bytes::from_static(body),
        wire: Wire::Normal,
        delay_ms: 0,
    };
    match t {
        AuthTrap::AnonymousProxy => None,
        AuthTrap::LoginPage => Some(fault_response(
            Fault::HtmlLoginPage,
            Response::json(200, Bytes::new()),
        )),
        AuthTrap::RedirectToLogin => {
            let mut r = html(302, b"");
            r.headers.push((
                "Location",
                format!(
                    "{base_url}/login.jsp?os_destination={}",
                    path.replace('/', "%2F")
                ),
            ));
            Some(r)
        }
        AuthTrap::Captcha => {
            let mut r = Response::error(
                403,
                "CAPTCHA_CHALLENGE: too many failed logins; log in through the web UI to answer the CAPTCHA.",
            );
            r.headers.push((
                "X-Authentication-Denied-Reason",
                format!("CAPTCHA_CHALLENGE; login-url={base_url}/login.jsp"),
            ));
            r.headers
                .push(("X-Seraph-LoginReason", "AUTHENTICATION_DENIED".into()));
            Some(r)
        }
        AuthTrap::ExpiredToken => {
            let mut r = Response::error(401, "The personal access token has expired.");
            r.headers
                .push(("X-Seraph-LoginReason", "AUTHENTICATED_FAILED".into()));
            r.headers.push((
                "WWW-Authenticate",
                "Bearer realm=\"jira\", error=\"invalid_token\", error_description=\"The access token expired\"".into(),
            ));
            Some(r)
        }
    }
}

/// A response to a caller whose token a proxy dropped: what Jira answers
/// anonymously, with status 200 (`{}` where Jira would refuse).
fn anonymous_200(mut r: Response) -> Response {
    if r.status != 200 {
        r.status = 200;
        r.body = Bytes::from_static(b"{}");
    }
    r
}

async fn handle(sh: &Arc<Shared>, req: &Request, body: &[u8]) -> Response {
    let (path, query) = match req.target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (req.target.clone(), String::new()),
    };
    let ep = endpoint_name(&path);
    if path.starts_with("/_sim/") {
        return admin(sh, req, &path, body).await;
    }
    let base_url = {
        let ds = sh.ds.read().unwrap_or_else(|e| e.into_inner());
        ds.base_url().to_string()
    };
    let (fault, trap) = {
        let mut f = sh.faults.lock().unwrap_or_else(|e| e.into_inner());
        (f.next(ep == "search"), f.trap)
    };
    if let Some(mut r) = trap.and_then(|t| trap_response(t, &path, &base_url)) {
        r.headers
            .push(("X-AREQUESTID", format!("trap{}", now_ms() % 100_000)));
        count_request(sh, ep, r.status, true);
        return r;
    }
    let mut resp = match fault {
        Some(
            f @ (Fault::RateLimit { .. }
            | Fault::Status(_)
            | Fault::HtmlBadGateway
            | Fault::HtmlLoginPage),
        ) => fault_response(f, Response::json(200, Bytes::new())),
        _ => {
            let auth = match trap {
                // The proxy dropped the token: Jira sees nobody.
                Some(AuthTrap::AnonymousProxy) => Ok(Auth::Anonymous),
                _ => check_auth(sh, req, &base_url),
            };
            let r = match auth {
                Err(r) => r,
                Ok(auth) => {
                    let r = route(sh, req, ep, &path, &query, body, &auth).await;
                    let r = with_user_headers(r, &auth);
                    if trap.is_some() { anonymous_200(r) } else { r }
                }
            };
            match fault {
                Some(f) => fault_response(f, r),
                None => r,
            }
        }
    };
    resp.headers.push((
        "X-AREQUESTID",
        format!(
            "{}x{}",
            now_ms() % 86_400_000 / 60_000,
            sh.searches.load(Ordering::Relaxed)
        ),
    ));
    count_request(sh, ep, resp.status, fault.is_some());
    resp
}

/// The `/_sim/` admin endpoints: the simulator's Bearer token required;
/// mutations take the dataset's write lock, so they run off the runtime's
/// workers.
async fn admin(sh: &Arc<Shared>, req: &Request, path: &str, body: &[u8]) -> Response {
    let authed = req
        .authorization
        .as_deref()
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(|t| t.trim() == sh.token)
        .unwrap_or(false);
    if !authed {
        return Response::error(401, "the admin endpoints need the simulator's Bearer token");
    }
    let ctl = SimControl { shared: sh.clone() };
    let (method, p, b) = (req.method.clone(), path.to_string(), body.to_vec());
    let (status, json) =
        tokio::task::spawn_blocking(move || super::admin::handle(&ctl, &method, &p, &b))
            .await
            .unwrap_or((
                500,
                "{\"errorMessages\":[\"admin task failed\"],\"errors\":{}}".into(),
            ));
    Response::json(status, json)
}

/// The headers Jira adds for the user it served (`X-AUSERNAME`, and the
/// Seraph login reason for a real user).
fn with_user_headers(mut r: Response, auth: &Auth) -> Response {
    r.headers.push((
        "X-AUSERNAME",
        match auth {
            Auth::User => super::catalog::SIM_USER.name.to_string(),
            Auth::Anonymous => "anonymous".to_string(),
        },
    ));
    if let Auth::User = auth {
        r.headers.push(("X-Seraph-LoginReason", "OK".into()));
    }
    r
}

/// Counts a served request in the stats.
fn count_request(sh: &Shared, ep: &str, status: u16, faulted: bool) {
    let mut st = sh.stats.lock().unwrap_or_else(|e| e.into_inner());
    st.requests += 1;
    *st.by_endpoint.entry((ep.to_string(), status)).or_insert(0) += 1;
    if status == 429 {
        st.rate_limited += 1;
    }
    if faulted {
        st.faults += 1;
    }
}

async fn route(
    sh: &Arc<Shared>,
    req: &Request,
    ep: &str,
    path: &str,
    query: &str,
    body: &[u8],
    auth: &Auth,
) -> Response {
    let params = query_params(query);
    match (req.method.as_str(), ep) {
        ("GET", "myself") => match auth {
            Auth::User => {
                let ds = sh.ds.read().unwrap_or_else(|e| e.into_inner());
                Response::json(200, render::myself(&ds, &sh.user_tz_name))
            }
            Auth::Anonymous => Response::error(
                401,
                "You are not authenticated. Authentication required to perform this operation.",
            ),
        },
        ("GET", "serverInfo") => {
            let ds = sh.ds.read().unwrap_or_else(|e| e.into_inner());
            Response::json(200, render::server_info(&ds, now_ms()))
        }
        ("GET", "field") => {
            let ds = sh.ds.read().unwrap_or_else(|e| e.into_inner());
            Response::json(200, render::field_list(&ds))
        }
        ("GET", "issue") => get_issue(sh, path, &params, auth),
        ("GET", e) if is_dimension(e) => dimension(sh, ep, path, auth),
        ("GET", "search") => search(sh, search_params_get(&params), auth).await,
        ("POST", "search") => match search_params_post(body) {
            Ok(sp) => search(sh, sp, auth).await,
            Err(r) => r,
        },
        // A known endpoint with another method.
        (_, e) if e != "other" => {
            Response::error(405, &format!("Method {} is not allowed here.", req.method))
        }
        _ => Response::json(
            404,
            serde_json::json!({"message": format!("null for uri: {path}"), "status-code": 404})
                .to_string(),
        ),
    }
}

/// Every value of the query parameter `k`.
fn all_of(params: &[(String, String)], k: &str) -> Vec<String> {
    params
        .iter()
        .filter(|(n, _)| n == k)
        .map(|(_, v)| v.clone())
        .collect()
}

/// The first value of the query parameter `k`.
fn first_of(params: &[(String, String)], k: &str) -> Option<String> {
    params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
}

/// `GET /rest/api/2/issue/{idOrKey}` (404 `Issue Does Not Exist` for a
/// deleted or unknown issue, and for an anonymous caller; an archived issue
/// is served). The changelog is whole unless
/// [`SimControl::set_changelog_cut_on_get`] applies the search cut here too.
fn get_issue(sh: &Shared, path: &str, params: &[(String, String)], auth: &Auth) -> Response {
    let id_or_key = percent_decode(path.trim_start_matches("/rest/api/2/issue/"));
    if matches!(auth, Auth::Anonymous) {
        return Response::error(404, "Issue Does Not Exist");
    }
    let sel = FieldSel::parse(&all_of(params, "fields"), FieldSel::ALL);
    let changelog = first_of(params, "expand")
        .map(|e| e.split(',').any(|x| x.trim() == "changelog"))
        .unwrap_or(false);
    let cl = match changelog {
        false => Changelog::Omit,
        true if sh.changelog_cut_on_get.load(Ordering::Relaxed) => {
            Changelog::expanded(sh.changelog_cut())
        }
        true => Changelog::Full,
    };
    let ds = sh.ds.read().unwrap_or_else(|e| e.into_inner());
    match ds.resolve(&id_or_key) {
        Some(i) => {
            let mut out = Vec::new();
            let is = ds.issue(i);
            render::write_issue(&ds, &mut out, &is, sel, cl);
            Response::json(200, out)
        }
        None => Response::error(404, "Issue Does Not Exist"),
    }
}

/// The search parameters of `GET /rest/api/2/search`.
fn search_params_get(params: &[(String, String)]) -> SearchParams {
    SearchParams {
        jql: first_of(params, "jql").unwrap_or_default(),
        start_at: first_of(params, "startAt"),
        max_results: first_of(params, "maxResults"),
        fields: all_of(params, "fields"),
        expand: all_of(params, "expand"),
    }
}

/// The search parameters of `POST /rest/api/2/search` (a JSON body; lists
/// may be given as one string, numbers as strings), or the 400.
fn search_params_post(body: &[u8]) -> Result<SearchParams, Response> {
    let v: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| Response::error(400, &format!("The request body is not valid JSON: {e}")))?;
    let list = |k: &str| -> Vec<String> {
        match v.get(k) {
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            Some(serde_json::Value::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        }
    };
    let num = |k: &str| -> Option<String> {
        match v.get(k) {
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            _ => None,
        }
    };
    Ok(SearchParams {
        jql: v
            .get("jql")
            .and_then(|j| j.as_str())
            .unwrap_or_default()
            .to_string(),
        start_at: num("startAt"),
        max_results: num("maxResults"),
        fields: list("fields"),
        expand: list("expand"),
    })
}

struct SearchParams {
    jql: String,
    start_at: Option<String>,
    max_results: Option<String>,
    fields: Vec<String>,
    expand: Vec<String>,
}

/// `12345` → `12,345`.
fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

async fn search(sh: &Arc<Shared>, p: SearchParams, auth: &Auth) -> Response {
    let (start_at, max_results) = match paging(sh, &p) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let query = match jql::parse(&p.jql) {
        Ok(q) => q,
        Err(e) => return Response::error(400, &e.0),
    };
    let cl = if expands(&p, "changelog") {
        Changelog::expanded(sh.changelog_cut())
    } else {
        Changelog::Omit
    };
    let sel = FieldSel::parse(&p.fields, FieldSel::ALL);
    let latency = sh.latency_ms.load(Ordering::Relaxed);
    if let Auth::Anonymous = auth {
        let body = format!(
            "{{\"startAt\":{start_at},\"maxResults\":{max_results},\"total\":0,\"issues\":[]}}"
        );
        let mut r = Response::json(200, body);
        r.delay_ms = latency;
        return r;
    }
    run_search_hook(sh);
    let index = sh
        .index
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .current(now_ms());
    let ds = sh.ds.read().unwrap_or_else(|e| e.into_inner());
    // What JQL matches against: the (possibly lagging) index, else the data.
    let ids: &super::data::Dataset = index.as_deref().unwrap_or(&ds);
    let gen_ = ids.generation();
    // The changelog cut is part of the key: it changes the body.
    let body_key = format!(
        "{gen_}\u{1}{}\u{1}{}\u{1}{start_at}\u{1}{max_results}\u{1}{:?}\u{1}{:?}\u{1}{cl:?}",
        ds.generation(),
        p.jql,
        sel,
        p.expand
    );
    if let Some(b) = sh
        .bodies
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&body_key)
    {
        let mut r = Response::json(200, b);
        r.delay_ms = latency;
        return r;
    }
    let matching = match matching_ids(sh, &query, ids, &p.jql) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let header = render::PageHeader {
        start_at,
        max_results,
        total: matching.len() as u64,
    };
    let body = render_page(&ds, &p, &matching, header, sel, cl);
    drop(ds);
    sh.bodies
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .put(body_key, body.clone());
    let mut r = Response::json(200, body);
    r.delay_ms = latency;
    r
}

/// True when the request's `expand` names `what`.
fn expands(p: &SearchParams, what: &str) -> bool {
    p.expand
        .iter()
        .flat_map(|e| e.split(','))
        .any(|e| e.trim() == what)
}

/// Search phase: `startAt` and `maxResults` as Jira reads them (the server's
/// cap applies; a negative `maxResults` means the cap), or the 400 for a bad
/// number and the 500 for a request past the 10,000-result window.
fn paging(sh: &Shared, p: &SearchParams) -> Result<(u64, u64), Response> {
    let parse_int = |name: &str, v: &Option<String>| -> Result<Option<i64>, Response> {
        match v {
            None => Ok(None),
            Some(s) if s.trim().is_empty() => Ok(None),
            Some(s) => s.trim().parse::<i64>().map(Some).map_err(|_| {
                Response::error(
                    400,
                    &format!("The value '{s}' for '{name}' is not a valid number."),
                )
            }),
        }
    };
    let start_at = parse_int("startAt", &p.start_at)?.unwrap_or(0).max(0) as u64;
    let cap = sh.cap as i64;
    let max_results = match parse_int("maxResults", &p.max_results)? {
        None => 50.min(cap),
        Some(m) if m < 0 => cap,
        Some(m) => m.min(cap),
    } as u64;
    if start_at + max_results > SEARCH_WINDOW {
        return Err(Response::error(
            500,
            &format!(
                "Search limit exceeded. We couldn't complete your search because it requests {} results which exceeded the search platform limit of {}. Narrow the search or page with a query that returns fewer results (startAt + maxResults must not exceed {}).",
                thousands(start_at + max_results),
                thousands(SEARCH_WINDOW),
                thousands(SEARCH_WINDOW)
            ),
        ));
    }
    Ok((start_at, max_results))
}

/// Search phase: the test's hook first (it may mutate the data), then the
/// request is counted as served.
fn run_search_hook(sh: &Arc<Shared>) {
    let seq = sh.searches.fetch_add(1, Ordering::Relaxed) + 1;
    let hook = sh.hook.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if let Some(h) = hook {
        let ctl = SimControl { shared: sh.clone() };
        h(&ctl, seq);
    }
    sh.stats
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .searches_served += 1;
}

/// Search phase: the indexes of the issues `query` matches in `ids`, cached
/// per (generation, JQL); a query that cannot be compiled is a 400.
fn matching_ids(
    sh: &Shared,
    query: &jql::Query,
    ids: &super::data::Dataset,
    text: &str,
) -> Result<Arc<Vec<u32>>, Response> {
    let gen_ = ids.generation();
    let result_key = format!("{gen_}\u{1}{text}");
    let cached = sh
        .results
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&result_key)
        .map(|(_, v)| v.clone());
    if let Some(v) = cached {
        return Ok(v);
    }
    let compiled = query
        .compile(ids, sh.user_tz)
        .map_err(|e| Response::error(400, &e.0))?;
    let v = Arc::new(compiled.run(ids));
    let mut rc = sh.results.lock().unwrap_or_else(|e| e.into_inner());
    rc.retain(|_, (g, _)| *g == gen_);
    if rc.len() > 16 {
        rc.clear();
    }
    rc.insert(result_key, (gen_, v.clone()));
    Ok(v)
}

/// Search phase: the page's body. Found issues are rendered from the live
/// data; ones deleted or archived since the index saw them are skipped (the
/// page comes out short, as in Jira). `names`/`schema` expansions are appended.
fn render_page(
    ds: &super::data::Dataset,
    p: &SearchParams,
    matching: &[u32],
    header: render::PageHeader,
    sel: FieldSel,
    cl: Changelog,
) -> Bytes {
    let from = (header.start_at as usize).min(matching.len());
    let to = (from + header.max_results as usize).min(matching.len());
    let page: Vec<u32> = matching[from..to]
        .iter()
        .copied()
        .filter(|&i| ds.is_searchable(i))
        .collect();
    let per_issue = match (sel == FieldSel::NONE, cl.is_rendered()) {
        (true, false) => 200,
        (_, true) => 12_000,
        (false, false) => 7_000,
    };
    let mut out = Vec::with_capacity(page.len() * per_issue + 128);
    render::write_search_page(ds, &mut out, header, &page, sel, cl);
    let (names, schema) = (expands(p, "names"), expands(p, "schema"));
    if names || schema {
        out.pop(); // the closing brace
        out.extend_from_slice(&render::names_and_schema(sel, names, schema));
        out.push(b'}');
    }
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use std::io::{ErrorKind, Read, Write};
    use std::net::TcpStream;

    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(10100), "10,100");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(
            percent_decode("project%20%3D%20DEMO+AND"),
            "project = DEMO AND"
        );
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%E2%9C%93"), "✓");
    }

    /// One request on a fresh connection, read to EOF or error: (head, body
    /// bytes received, declared length, the read error if any).
    fn raw(url: &str, path: &str, close: bool) -> (String, Vec<u8>, usize, Option<ErrorKind>) {
        let addr = url.trim_start_matches("http://");
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let conn = if close { "Connection: close\r\n" } else { "" };
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer sim-token\r\n{conn}\r\n"
        )
        .unwrap();
        let mut buf = Vec::new();
        let err = s.read_to_end(&mut buf).err().map(|e| e.kind());
        let split = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&buf[..split]).into_owned();
        let declared = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap()
            .parse()
            .unwrap();
        (head, buf[split + 4..].to_vec(), declared, err)
    }

    /// The cuts happen on the wire as documented, also for a body larger than
    /// hyper's write buffer (a page of 100 issues with changelogs, ~1 MB):
    /// exactly half, then FIN; at most half, then RST; a truncated body is
    /// complete HTTP and the connection closes after it.
    #[test]
    fn cuts_on_the_wire() {
        let sim = crate::Simulator::start(crate::SimConfig::default().issues(300)).unwrap();
        let path = "/rest/api/2/search?jql=&maxResults=100&expand=changelog";
        let (head, good, declared, err) = raw(sim.url(), path, true);
        assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
        assert_eq!((good.len(), err), (declared, None));
        assert!(good.len() > 800_000, "{}", good.len());
        let half = good.len() / 2;

        sim.schedule_search_faults(Fault::CloseMidBody, 1);
        let (head, body, declared, err) = raw(sim.url(), path, false);
        assert!(head.contains("Connection: close"), "{head}");
        assert_eq!((declared, body.len(), err), (good.len(), half, None));
        assert_eq!(body, good[..half]);

        sim.schedule_search_faults(Fault::ResetMidBody, 1);
        let (_, body, declared, err) = raw(sim.url(), path, false);
        assert_eq!(
            (declared, err),
            (good.len(), Some(ErrorKind::ConnectionReset))
        );
        assert!(
            body.len() <= half && good.starts_with(&body),
            "{}",
            body.len()
        );

        sim.schedule_search_faults(Fault::TruncatedBody, 1);
        let (head, body, declared, err) = raw(sim.url(), path, false);
        assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
        assert_eq!((declared, body.len(), err), (half, half, None));

        let st = sim.stats();
        assert_eq!(st.cut_connections, 2);
        assert_eq!(st.bytes_sent, (good.len() + 3 * half) as u64);
    }
}
