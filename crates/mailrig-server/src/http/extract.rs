//! Request extractors whose every rejection is a JSON [`ApiError`] naming the
//! culprit: query strings checked against the parameters an endpoint accepts
//! (an unknown one is a 400 that lists them, since a silently ignored
//! `?rcpt=` filter looks like "no entries"), path segments, and bodies.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// The query parameters of one endpoint: a struct of `Option` fields (so
/// each parameter can be read alone) and the list of their names.
pub trait QueryParams: DeserializeOwned {
    /// Every parameter name the endpoint reads, as the error lists them.
    const ACCEPTED: &'static [&'static str];
}

/// For endpoints that take no query parameters.
#[derive(Debug, Default, Deserialize)]
pub struct NoParams {}

impl QueryParams for NoParams {
    const ACCEPTED: &'static [&'static str] = &[];
}

/// The query of a request, read as `T`: a name `T` does not accept, a name
/// given twice, or a value that is not of its type is a 400 naming it.
pub struct ApiQuery<T>(pub T);

impl<T: QueryParams, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        parse_query(parts.uri.query().unwrap_or("")).map(ApiQuery)
    }
}

/// The query-string rules of [`ApiQuery`], apart from axum.
pub fn parse_query<T: QueryParams>(query: &str) -> Result<T, ApiError> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let mut seen: Vec<&str> = Vec::with_capacity(pairs.len());
    for (name, _) in &pairs {
        if !T::ACCEPTED.contains(&name.as_str()) {
            return Err(ApiError::UnknownParameter {
                name: name.chars().take(100).collect(),
                accepted: T::ACCEPTED,
            });
        }
        if seen.contains(&name.as_str()) {
            return Err(ApiError::RepeatedParameter(name.clone()));
        }
        seen.push(name);
    }
    // Each parameter alone, so that a bad value is pinned on its name.
    for (name, value) in &pairs {
        let one = serde_urlencoded::to_string([(name, value)])
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        if let Err(e) = serde_urlencoded::from_str::<T>(&one) {
            return Err(ApiError::BadValue {
                name: name.clone(),
                value: value.chars().take(100).collect(),
                reason: e.to_string(),
            });
        }
    }
    serde_urlencoded::from_str(query).map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// `Path`, with a bad path segment answered by a JSON [`ApiError`].
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| ApiPath(v))
            .map_err(|e| ApiError::BadRequest(e.body_text()))
    }
}

/// The request body as bytes; too large a body is a JSON 413.
pub struct ApiBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for ApiBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(req, state)
            .await
            .map(ApiBody)
            .map_err(|e| match e.status() {
                StatusCode::PAYLOAD_TOO_LARGE => ApiError::BodyTooLarge,
                _ => ApiError::BadRequest(e.body_text()),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Q {
        mailbox: Option<String>,
        limit: Option<usize>,
        journal: Option<bool>,
    }

    impl QueryParams for Q {
        const ACCEPTED: &'static [&'static str] = &["mailbox", "limit", "journal"];
    }

    fn err(query: &str) -> String {
        match parse_query::<Q>(query) {
            Ok(q) => panic!("{query:?} was accepted: {q:?}"),
            Err(e) => {
                assert_eq!(e.status(), StatusCode::BAD_REQUEST, "{e}");
                e.to_string()
            }
        }
    }

    #[test]
    fn good_queries_are_read() {
        assert_eq!(
            parse_query::<Q>("mailbox=anna%40kanzlei.test&limit=5&journal=true").unwrap(),
            Q {
                mailbox: Some("anna@kanzlei.test".into()),
                limit: Some(5),
                journal: Some(true),
            }
        );
        assert_eq!(
            parse_query::<Q>("").unwrap(),
            Q {
                mailbox: None,
                limit: None,
                journal: None
            }
        );
        parse_query::<NoParams>("").unwrap();
    }

    #[test]
    fn unknown_repeated_and_bad_parameters_are_named() {
        let e = err("rcpt=anna@kanzlei.test");
        assert!(e.contains("unknown query parameter 'rcpt'"), "{e}");
        assert!(e.contains("mailbox, limit, journal"), "{e}");
        let e = parse_query::<NoParams>("limit=3").unwrap_err().to_string();
        assert!(
            e.contains("'limit'") && e.contains("takes no query parameters"),
            "{e}"
        );
        let e = err("limit=1&limit=2");
        assert!(e.contains("'limit'") && e.contains("more than once"), "{e}");
        let e = err("mailbox=a&limit=many");
        assert!(e.contains("'limit'") && e.contains("'many'"), "{e}");
        let e = err("journal=perhaps");
        assert!(e.contains("'journal'") && e.contains("'perhaps'"), "{e}");
        let e = err("limit=-1");
        assert!(e.contains("'limit'"), "{e}");
        // A bare name has an empty value, which is not a number.
        let e = err("limit");
        assert!(e.contains("'limit'"), "{e}");
    }
}
