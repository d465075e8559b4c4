//! Who may use the HTTP API: the checks that keep a web page the user visits
//! from reading mail or changing fault rules through the browser.
//!
//! Three attacks are in view, and each check stops one:
//!
//! * **DNS rebinding** — a page on `evil.test` re-points its name at
//!   127.0.0.1 and reads `/api/v1/...` as a same-origin request. Its requests
//!   still say `Host: evil.test`, so only loopback names and addresses
//!   (`localhost`, `*.localhost`, 127.0.0.0/8, `::1`), the address the
//!   connection arrived on and the names given with
//!   [`AccessPolicy::allow_host`] (`serve --http-allow-host`) are answered;
//!   anything else is a 403.
//! * **Cross-site requests** — a page can make the browser send a "simple"
//!   request (GET, or POST with `text/plain`, a form type or no body) without
//!   asking first. Request bodies must therefore be JSON or TOML
//!   ([`BODY_TYPES`], else 415), types a browser only sends cross-site after
//!   a CORS preflight this server never grants; and a state-changing request
//!   whose `Origin` is not this server's own, or whose `Sec-Fetch-Site` is
//!   `cross-site`/`same-site`, is a 403 (this covers the bodiless
//!   `POST .../enable`).
//! * **Anyone on the network** — when a token is set
//!   ([`AccessPolicy::token`], `serve --http-token` or `MAILRIG_HTTP_TOKEN`),
//!   every request needs it, as `Authorization: Bearer TOKEN`, as the
//!   password of HTTP Basic, or in the `SameSite=Strict` cookie that
//!   [`super::login`] sets for a browser; else 401 (for a browser asking
//!   for a page: the login form).
//!   Without a token the API is open to whoever passes the checks above.
//!
//! The decision ([`AccessPolicy::check`]) is a pure function of the request
//! head and the connection's local address, tested by tables below;
//! [`guard`] is the thin middleware that applies it.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::serve::IncomingStream;
use base64::Engine;
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;

use super::error::ApiError;

/// The request body types the API reads: JSON everywhere, TOML where a
/// fault rule is posted. `text/toml` is accepted as an alias of the
/// registered `application/toml`.
pub const BODY_TYPES: [&str; 3] = ["application/json", "application/toml", "text/toml"];

/// Why an [`AccessPolicy`] setting is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    #[error(
        "HTTP allowed host '{0}' is not a host name or IP address (give a name such as mail.test or an address, without scheme or port; '*' allows any host)"
    )]
    BadHost(String),
    #[error(
        "the HTTP token must be 1 to 1024 visible ASCII characters (no spaces), as it travels in an Authorization header"
    )]
    BadToken,
}

/// Which requests the HTTP API answers: allowed `Host` names and an
/// optional token. The default answers loopback only, without a token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessPolicy {
    /// Names and addresses answered besides loopback, lower case, without a
    /// trailing dot; `*` answers any host.
    hosts: Vec<String>,
    token: Option<String>,
}

impl AccessPolicy {
    /// Also answers requests for this host name or address (`*`: any host,
    /// which turns the DNS-rebinding check off).
    pub fn allow_host(mut self, name: &str) -> Result<Self, AccessError> {
        let name = normalize_host_setting(name).ok_or_else(|| AccessError::BadHost(name.into()))?;
        if !self.hosts.contains(&name) {
            self.hosts.push(name);
        }
        Ok(self)
    }

    /// Requires this token with every request.
    pub fn token(mut self, token: &str) -> Result<Self, AccessError> {
        let ok = (1..=1024).contains(&token.len()) && token.bytes().all(|b| b.is_ascii_graphic());
        if !ok {
            return Err(AccessError::BadToken);
        }
        self.token = Some(token.to_string());
        Ok(self)
    }

    /// Whether `given` is the token (compared in constant time).
    pub fn token_matches(&self, given: &[u8]) -> bool {
        self.token
            .as_ref()
            .is_some_and(|want| bool::from(given.ct_eq(want.as_bytes())))
    }

    /// Whether a token is required.
    pub fn requires_token(&self) -> bool {
        self.token.is_some()
    }

    /// The host names allowed besides loopback, as given.
    pub fn allowed_hosts(&self) -> &[String] {
        &self.hosts
    }

    /// Decides whether a request may go on: its method and headers, and the
    /// local address of the connection it came on (if known).
    pub fn check(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        local: Option<IpAddr>,
    ) -> Result<(), ApiError> {
        let host = headers.get(header::HOST).map(|v| v.as_bytes());
        if let Some(raw) = host {
            self.check_host(raw, local)?;
        }
        // The way in, and the login page's stylesheet, need no token.
        let signing_in = matches!(path, "/login" | "/logout" | "/ui/app.css");
        if !signing_in {
            self.check_token(headers)?;
        }
        if changes_state(method) {
            check_same_origin(headers, host)?;
            if path == "/login" {
                check_body_type_of(headers, &LOGIN_BODY_TYPES)?;
            } else {
                check_body_type(headers)?;
            }
        }
        Ok(())
    }

    /// The `Host` check alone.
    pub fn check_host_of(
        &self,
        headers: &HeaderMap,
        local: Option<IpAddr>,
    ) -> Result<(), ApiError> {
        match headers.get(header::HOST) {
            Some(raw) => self.check_host(raw.as_bytes(), local),
            None => Ok(()),
        }
    }

    fn check_host(&self, raw: &[u8], local: Option<IpAddr>) -> Result<(), ApiError> {
        let shown = || {
            String::from_utf8_lossy(raw)
                .chars()
                .take(200)
                .collect::<String>()
        };
        let host = std::str::from_utf8(raw)
            .ok()
            .and_then(parse_host)
            .ok_or_else(|| ApiError::HostNotAllowed(shown()))?;
        let allowed = match host {
            Host::Ip(ip) => {
                ip.is_loopback()
                    || ip.to_canonical().is_loopback()
                    || Some(ip) == local
                    || self.hosts.iter().any(|h| h.parse::<IpAddr>() == Ok(ip))
            }
            Host::Name(ref name) => {
                name == "localhost"
                    || name.ends_with(".localhost")
                    || self.hosts.iter().any(|h| h == "*" || h == name)
            }
        };
        if allowed || self.hosts.iter().any(|h| h == "*") {
            Ok(())
        } else {
            Err(ApiError::HostNotAllowed(shown()))
        }
    }

    fn check_token(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(want) = &self.token else {
            return Ok(());
        };
        let Some(given) = headers.get(header::AUTHORIZATION) else {
            return match super::login::cookie_token(headers) {
                Some(t) if self.token_matches(&t) => Ok(()),
                Some(_) => Err(ApiError::Unauthorized(
                    "the token of the sign-in cookie is wrong (sign in again at /login)",
                )),
                None => Err(ApiError::Unauthorized(
                    "this request has no Authorization header",
                )),
            };
        };
        let given = given.as_bytes();
        let (scheme, rest) = match given.iter().position(|&b| b == b' ') {
            Some(i) => (&given[..i], trim(&given[i + 1..])),
            None => (given, &[][..]),
        };
        let candidate: Vec<u8> = if scheme.eq_ignore_ascii_case(b"bearer") {
            rest.to_vec()
        } else if scheme.eq_ignore_ascii_case(b"basic") {
            // Any user name; the token is the password.
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(rest)
                .map_err(|_| ApiError::Unauthorized("the Basic credentials are not base64"))?;
            match decoded.iter().position(|&b| b == b':') {
                Some(i) => decoded[i + 1..].to_vec(),
                None => return Err(ApiError::Unauthorized("the Basic credentials have no ':'")),
            }
        } else {
            return Err(ApiError::Unauthorized(
                "the Authorization scheme is neither Bearer nor Basic",
            ));
        };
        if bool::from(candidate.ct_eq(want.as_bytes())) {
            Ok(())
        } else {
            Err(ApiError::Unauthorized("the token is wrong"))
        }
    }
}

/// Methods that may change the world; GET and HEAD only read, and a
/// browser does not let a page read a cross-origin answer.
fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// A state-changing request from a browser must come from this server's own
/// page: `Origin` (sent by browsers with every POST, PUT, PATCH and DELETE)
/// must name the host the request is for, and `Sec-Fetch-Site` must not say
/// another site sent it. Clients that are not browsers send neither.
fn check_same_origin(headers: &HeaderMap, host: Option<&[u8]>) -> Result<(), ApiError> {
    if let Some(site) = headers.get("sec-fetch-site") {
        let site = site.as_bytes();
        if site.eq_ignore_ascii_case(b"cross-site") || site.eq_ignore_ascii_case(b"same-site") {
            return Err(ApiError::CrossOrigin(format!(
                "Sec-Fetch-Site: {}",
                String::from_utf8_lossy(site)
            )));
        }
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.as_bytes();
    let authority = origin
        .windows(3)
        .position(|w| w == b"://")
        .map(|i| &origin[i + 3..]);
    let same = match (authority, host) {
        (Some(a), Some(h)) => a.eq_ignore_ascii_case(trim(h)),
        _ => false,
    };
    if same {
        Ok(())
    } else {
        Err(ApiError::CrossOrigin(format!(
            "Origin: {}",
            String::from_utf8_lossy(origin)
                .chars()
                .take(200)
                .collect::<String>()
        )))
    }
}

/// The body type of `POST /login`: the browser's form.
const LOGIN_BODY_TYPES: [&str; 1] = ["application/x-www-form-urlencoded"];

/// A request that carries a body must say it is JSON or TOML.
fn check_body_type(headers: &HeaderMap) -> Result<(), ApiError> {
    check_body_type_of(headers, &BODY_TYPES)
}

fn check_body_type_of(
    headers: &HeaderMap,
    accepted: &'static [&'static str],
) -> Result<(), ApiError> {
    let has_body = headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0");
    if !has_body {
        return Ok(());
    }
    match body_type(headers) {
        Some(t) if accepted.contains(&t.as_str()) => Ok(()),
        other => Err(ApiError::UnsupportedMediaType {
            got: other,
            accepted,
        }),
    }
}

/// The media type of the request body, lower case, without parameters.
pub fn body_type(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::CONTENT_TYPE)?;
    let v = String::from_utf8_lossy(v.as_bytes());
    let essence = v
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    Some(essence.chars().take(100).collect())
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &b[start..end]
}

/// The host part of a `Host` header value.
#[derive(Debug, PartialEq, Eq)]
enum Host {
    Ip(IpAddr),
    Name(String),
}

/// `name`, `name:port`, `1.2.3.4:port`, `[::1]:port`; `None` if malformed.
fn parse_host(value: &str) -> Option<Host> {
    let value = value.trim();
    if let Some(rest) = value.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        let ip: std::net::Ipv6Addr = ip.parse().ok()?;
        return check_port(port).then_some(Host::Ip(ip.into()));
    }
    let (host, port) = match value.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (value, None),
    };
    if !check_port(port) {
        return None;
    }
    if let Ok(ip) = host.parse::<std::net::Ipv4Addr>() {
        return Some(Host::Ip(ip.into()));
    }
    let name = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    is_host_name(&name).then_some(Host::Name(name))
}

fn check_port(port: Option<&str>) -> bool {
    port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Letters, digits, `-`, `_` and dots between non-empty labels.
fn is_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// An `allow_host` setting: `*`, an IP address (brackets optional for IPv6)
/// or a host name; lower case, without a trailing dot.
fn normalize_host_setting(name: &str) -> Option<String> {
    let name = name.trim();
    if name == "*" {
        return Some(name.into());
    }
    let unbracketed = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    if let Ok(ip) = unbracketed.parse::<IpAddr>() {
        return Some(ip.to_string());
    }
    let n = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    is_host_name(&n).then_some(n)
}

/// What the HTTP server records of each connection: the address it was
/// accepted on, which the `Host` check allows besides loopback.
#[derive(Debug, Clone, Copy)]
pub struct LocalAddr(pub Option<SocketAddr>);

impl axum::extract::connect_info::Connected<IncomingStream<'_, TcpListener>> for LocalAddr {
    fn connect_info(stream: IncomingStream<'_, TcpListener>) -> Self {
        LocalAddr(stream.io().local_addr().ok())
    }
}

/// The middleware: refuses a request the policy does not allow, with a JSON
/// error that says why and what to do.
pub async fn guard(
    State(policy): State<Arc<AccessPolicy>>,
    request: Request,
    next: Next,
) -> Response {
    // Absent when the router is served without connect info (in-process tests).
    let local_ip = request
        .extensions()
        .get::<ConnectInfo<LocalAddr>>()
        .and_then(|ConnectInfo(LocalAddr(a))| *a)
        .map(|a| a.ip());
    let path = request.uri().path();
    if path == "/"
        && policy.requires_token()
        && let Some(token) = super::login::query_token(request.uri().query())
    {
        // The Host check still comes first.
        return match policy.check_host_of(request.headers(), local_ip) {
            Ok(()) => super::login::login_by_query(&policy, &token),
            Err(e) => e.into_response(),
        };
    }
    match policy.check(request.method(), path, request.headers(), local_ip) {
        Ok(()) => next.run(request).await,
        Err(ApiError::Unauthorized(_))
            if !path.starts_with("/api/")
                && super::login::wants_page(request.method(), request.headers()) =>
        {
            let why = super::login::cookie_token(request.headers())
                .map(|_| "That token is no longer right: sign in again.");
            super::login::unauthorized_page(why)
        }
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn status(p: &AccessPolicy, method: Method, pairs: &[(&str, &str)], local: &str) -> u16 {
        let local = local.parse().ok();
        match p.check(&method, "/api/v1/health", &headers(pairs), local) {
            Ok(()) => 200,
            Err(e) => e.status().as_u16(),
        }
    }

    #[test]
    fn host_header_forms() {
        let ip = |s: &str| Some(Host::Ip(s.parse().unwrap()));
        let name = |s: &str| Some(Host::Name(s.into()));
        let cases = [
            ("localhost", name("localhost")),
            ("LOCALHOST.:8025", name("localhost")),
            ("127.0.0.1:8025", ip("127.0.0.1")),
            ("[::1]:8025", ip("::1")),
            ("[::1]", ip("::1")),
            ("mail.test", name("mail.test")),
            ("::1", None),
            ("[::1]8025", None),
            ("a:b", None),
            ("host:", None),
            ("host:123456", None),
            ("exa mple", None),
            ("a..b", None),
            ("", None),
        ];
        for (value, want) in cases {
            assert_eq!(parse_host(value), want, "{value:?}");
        }
    }

    #[test]
    fn only_loopback_the_local_address_and_allowed_names_are_answered() {
        let p = AccessPolicy::default();
        let get = |host: &str, local: &str| status(&p, Method::GET, &[("host", host)], local);
        for ok in [
            "localhost:8025",
            "app.localhost",
            "127.0.0.1:8025",
            "127.9.8.7",
            "[::1]:8025",
            "[::ffff:127.0.0.1]:8025",
        ] {
            assert_eq!(get(ok, "127.0.0.1"), 200, "{ok}");
        }
        assert_eq!(get("192.168.1.5:8025", "192.168.1.5"), 200);
        for refused in [
            "evil.test:8025",
            "localhost.evil.test",
            "192.168.1.5:8025",
            "127.0.0.1.nip.io",
            "bad host",
        ] {
            assert_eq!(get(refused, "127.0.0.1"), 403, "{refused}");
        }
        // No Host at all (HTTP/1.0 clients): nothing to check.
        assert_eq!(status(&p, Method::GET, &[], "127.0.0.1"), 200);

        let p = AccessPolicy::default()
            .allow_host("Mail.Test.")
            .unwrap()
            .allow_host("[2001:db8::1]")
            .unwrap();
        assert_eq!(
            status(&p, Method::GET, &[("host", "mail.test:8025")], ""),
            200
        );
        assert_eq!(
            status(&p, Method::GET, &[("host", "[2001:db8::1]:80")], ""),
            200
        );
        assert_eq!(status(&p, Method::GET, &[("host", "other.test")], ""), 403);
        let any = AccessPolicy::default().allow_host("*").unwrap();
        assert_eq!(
            status(&any, Method::GET, &[("host", "other.test")], ""),
            200
        );
    }

    #[test]
    fn bad_settings_are_refused() {
        for bad in ["http://mail.test", "mail.test:8025", "", "a b", "a..b"] {
            assert_eq!(
                AccessPolicy::default().allow_host(bad),
                Err(AccessError::BadHost(bad.into())),
                "{bad}"
            );
        }
        for bad in ["", "two words", "tab\tin", "ümlaut"] {
            assert_eq!(
                AccessPolicy::default().token(bad),
                Err(AccessError::BadToken)
            );
        }
    }

    #[test]
    fn bodies_must_be_json_or_toml() {
        let p = AccessPolicy::default();
        let post = |pairs: &[(&str, &str)]| status(&p, Method::POST, pairs, "127.0.0.1");
        assert_eq!(
            post(&[
                ("content-length", "2"),
                ("content-type", "application/json")
            ]),
            200
        );
        assert_eq!(
            post(&[
                ("content-length", "2"),
                ("content-type", "Application/JSON; charset=utf-8")
            ]),
            200
        );
        assert_eq!(
            post(&[
                ("content-length", "2"),
                ("content-type", "application/toml")
            ]),
            200
        );
        assert_eq!(
            post(&[("content-length", "2"), ("content-type", "text/toml")]),
            200
        );
        for simple in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
        ] {
            assert_eq!(
                post(&[("content-length", "2"), ("content-type", simple)]),
                415,
                "{simple}"
            );
        }
        assert_eq!(post(&[("content-length", "2")]), 415);
        assert_eq!(
            post(&[
                ("transfer-encoding", "chunked"),
                ("content-type", "text/plain")
            ]),
            415
        );
        // No body: nothing to type (POST .../enable).
        assert_eq!(post(&[]), 200);
        assert_eq!(
            post(&[("content-length", "0"), ("content-type", "text/plain")]),
            200
        );
        // Reading is never refused for its content type.
        assert_eq!(
            status(
                &p,
                Method::GET,
                &[("content-length", "2"), ("content-type", "text/plain")],
                ""
            ),
            200
        );
    }

    #[test]
    fn state_changes_from_another_origin_are_refused() {
        let p = AccessPolicy::default();
        let post = |pairs: &[(&str, &str)]| status(&p, Method::POST, pairs, "127.0.0.1");
        let host = ("host", "127.0.0.1:8025");
        assert_eq!(post(&[host, ("origin", "http://127.0.0.1:8025")]), 200);
        assert_eq!(post(&[host, ("sec-fetch-site", "same-origin")]), 200);
        assert_eq!(post(&[host, ("sec-fetch-site", "none")]), 200);
        assert_eq!(post(&[host, ("origin", "http://evil.test")]), 403);
        assert_eq!(post(&[host, ("origin", "http://127.0.0.1:3000")]), 403);
        assert_eq!(post(&[host, ("origin", "null")]), 403);
        assert_eq!(post(&[("origin", "http://127.0.0.1:8025")]), 403);
        assert_eq!(post(&[host, ("sec-fetch-site", "cross-site")]), 403);
        assert_eq!(post(&[host, ("sec-fetch-site", "same-site")]), 403);
        for m in [Method::PUT, Method::PATCH, Method::DELETE] {
            assert_eq!(
                status(&p, m, &[host, ("origin", "http://evil.test")], ""),
                403
            );
        }
        // A cross-origin GET is harmless: the browser hides the answer.
        assert_eq!(
            status(
                &p,
                Method::GET,
                &[host, ("origin", "http://evil.test")],
                "127.0.0.1"
            ),
            200
        );
    }

    #[test]
    fn a_token_is_required_once_set() {
        let p = AccessPolicy::default().token("s3cr3t-T0ken").unwrap();
        let get = |pairs: &[(&str, &str)]| status(&p, Method::GET, pairs, "127.0.0.1");
        let basic = |user_pass: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(user_pass)
            )
        };
        assert_eq!(get(&[("authorization", "Bearer s3cr3t-T0ken")]), 200);
        assert_eq!(get(&[("authorization", "bearer  s3cr3t-T0ken ")]), 200);
        assert_eq!(
            get(&[("authorization", &basic("anyone:s3cr3t-T0ken"))]),
            200
        );
        assert_eq!(get(&[]), 401);
        assert_eq!(get(&[("authorization", "Bearer s3cr3t-T0ke")]), 401);
        assert_eq!(get(&[("authorization", "Bearer s3cr3t-T0kenX")]), 401);
        assert_eq!(get(&[("authorization", "Bearer")]), 401);
        assert_eq!(get(&[("authorization", &basic("s3cr3t-T0ken"))]), 401);
        assert_eq!(get(&[("authorization", "Basic !!!")]), 401);
        assert_eq!(get(&[("authorization", "Token s3cr3t-T0ken")]), 401);
        // The Host check comes first: a rebinding page learns nothing.
        assert_eq!(get(&[("host", "evil.test")]), 403);
        assert!(!AccessPolicy::default().requires_token());
    }
}
