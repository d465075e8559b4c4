//! Signing a browser in when the API needs a token: `/login` (a form for
//! the token), `/?token=TOKEN` (a link a trainer can hand out) and
//! `POST /logout`. A right token is kept in a cookie, `HttpOnly` and
//! `SameSite=Strict`, which the page's `fetch` calls and its `EventSource`
//! (which cannot send an `Authorization` header) carry by themselves, and
//! which a cross-site request never carries. Programs keep sending
//! `Authorization: Bearer TOKEN`.
//!
//! Why a cookie and not only HTTP Basic: the browser's Basic prompt cannot
//! be styled, says nothing of what is asked, and is not remembered by every
//! headless browser; a form that says "the token of `mailrig serve
//! --http-token`" is what a new user understands.

use std::sync::Arc;

use axum::extract::Extension;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Router, body::Body};
use base64::Engine;
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;

use super::access::AccessPolicy;
use super::error::ApiError;
use super::extract::{ApiBody, ApiQuery, NoParams};
use super::ui::PAGE_CSP;
use crate::state::ServerState;

/// The name of the cookie that holds the token (base64url, so that any
/// visible ASCII token is a valid cookie value).
pub const TOKEN_COOKIE: &str = "mailrig_token";

pub fn routes() -> Router<Arc<ServerState>> {
    Router::new()
        .route("/login", get(form).post(login))
        .route("/logout", post(logout))
}

/// The token a request's cookie carries, decoded.
pub fn cookie_token(headers: &HeaderMap) -> Option<Vec<u8>> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == TOKEN_COOKIE)
        .and_then(|(_, value)| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(value.trim_matches('"'))
                .ok()
        })
}

/// The `Set-Cookie` that keeps `token` for the browser session.
fn set_cookie(token: &str) -> HeaderValue {
    let value = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token);
    HeaderValue::from_str(&format!(
        "{TOKEN_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict"
    ))
    .expect("base64url is a valid header value")
}

/// The token of a `?token=` query, if the query has one.
pub fn query_token(query: Option<&str>) -> Option<String> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(query?)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v)
}

/// Whether a request is a browser asking for a page (not a script or a
/// program asking for JSON): a GET that accepts HTML.
pub fn wants_page(method: &axum::http::Method, headers: &HeaderMap) -> bool {
    method == axum::http::Method::GET
        && headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/html"))
}

/// The answer to a browser that asked for a page without a valid token:
/// the login form, with status 401 (no Basic challenge, so the browser
/// shows the form instead of its own prompt).
pub fn unauthorized_page(why: Option<&str>) -> Response {
    page(StatusCode::UNAUTHORIZED, why)
}

/// `/?token=TOKEN`: a right token is kept in the cookie and the browser sent
/// on to `/` (so the token leaves the address bar); a wrong one gets the form.
pub fn login_by_query(policy: &AccessPolicy, token: &str) -> Response {
    if policy.token_matches(token.as_bytes()) {
        signed_in(token)
    } else {
        unauthorized_page(Some("That token is wrong."))
    }
}

fn signed_in(token: &str) -> Response {
    let mut r = Redirect::to("/").into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, set_cookie(token));
    r
}

fn page(status: StatusCode, error: Option<&str>) -> Response {
    let mut r = (status, Html(render(error).into_string())).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn render(error: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "mailrig — sign in" }
                link rel="stylesheet" href="/ui/app.css";
            }
            body class="login" {
                main {
                    h1 { "mailrig" }
                    form method="post" action="/login" {
                        label for="token" { "Token" }
                        p class="muted" {
                            "This server was started with a token ("
                            code { "mailrig serve --http-token" } " or "
                            code { "MAILRIG_HTTP_TOKEN" } "). Enter it to open the page."
                        }
                        @if let Some(e) = error {
                            p class="error" role="alert" { (e) }
                        }
                        input id="token" name="token" type="password" autocomplete="current-password" required autofocus;
                        button type="submit" { "Sign in" }
                    }
                }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    token: String,
}

/// The body of `POST /login`; one without a `token` field is a JSON 400.
pub struct LoginBody(LoginForm);

impl<S: Send + Sync> axum::extract::FromRequest<S> for LoginBody {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let ApiBody(body) = ApiBody::from_request(req, state).await?;
        serde_urlencoded::from_bytes(&body)
            .map(LoginBody)
            .map_err(|e| {
                ApiError::BadRequest(format!(
                    "the sign-in form needs a 'token' field (application/x-www-form-urlencoded, token=...): {e}"
                ))
            })
    }
}

/// `GET /login`.
async fn form(Extension(policy): Extension<Arc<AccessPolicy>>, _: ApiQuery<NoParams>) -> Response {
    if !policy.requires_token() {
        return Redirect::to("/").into_response();
    }
    page(StatusCode::OK, None)
}

/// `POST /login` (a form body).
async fn login(
    Extension(policy): Extension<Arc<AccessPolicy>>,
    _: ApiQuery<NoParams>,
    LoginBody(f): LoginBody,
) -> Response {
    if !policy.requires_token() {
        return Redirect::to("/").into_response();
    }
    if policy.token_matches(f.token.as_bytes()) {
        signed_in(&f.token)
    } else {
        unauthorized_page(Some("That token is wrong."))
    }
}

/// `POST /logout`: forgets the cookie.
async fn logout(_: ApiQuery<NoParams>) -> Response {
    let mut r = Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, "/login")
        .body(Body::empty())
        .expect("a valid response");
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&format!(
            "{TOKEN_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"
        ))
        .expect("a valid header value"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_carries_any_visible_token() {
        let token = "a;b=c,\"d\"";
        let set = set_cookie(token);
        let pair = set.to_str().unwrap().split(';').next().unwrap().to_string();
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("other=1; {pair}")).unwrap(),
        );
        assert_eq!(cookie_token(&h).as_deref(), Some(token.as_bytes()));
        assert_eq!(cookie_token(&HeaderMap::new()), None);
    }

    #[test]
    fn the_query_token_is_found_among_others() {
        assert_eq!(query_token(Some("a=1&token=x%2By")).as_deref(), Some("x+y"));
        assert_eq!(query_token(Some("a=1")), None);
        assert_eq!(query_token(None), None);
    }
}
