//! `GET /api/v1/lab` and the page's lab panel: a running training lab's title, task, the hints
//! revealed, the last check and the score, so a trainer can project them.
//!
//! The lab (`mailrig lab`, in the command-line crate) writes its panel as JSON into
//! `DIR/.mailrig-lab/panel.json` whenever it changes (start, hint, answer, check, reset, solve,
//! stop); `mailrig serve --lab DIR` points this server at it. The server passes the document on
//! as it is, read afresh on every request, so it knows nothing of labs beyond that file's place.
//! Without `--lab`, or before the lab has written its panel, the endpoint answers 404.

use std::path::Path;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use super::extract::{ApiQuery, NoParams};
use crate::state::ServerState;

const LAB_JS: &str = include_str!("ui/lab.js");
const LAB_CSS: &str = include_str!("ui/lab.css");

/// The panel's file inside a lab directory.
pub const PANEL_FILE: &str = ".mailrig-lab/panel.json";

pub fn routes() -> Router<Arc<ServerState>> {
    Router::new().route("/lab", get(lab))
}

fn not_found(message: String) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(serde_json::json!({ "error": message })),
    )
        .into_response()
}

/// What `GET /api/v1/lab` answers for the lab directory `dir` (or none).
pub fn panel(dir: Option<&Path>) -> Result<serde_json::Value, String> {
    let Some(dir) = dir else {
        return Err("no lab: this server was started without --lab DIR".into());
    };
    let path = dir.join(PANEL_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "no lab panel at {} ({e}): start the lab with `mailrig lab start ... --dir {}`",
            path.display(),
            dir.display()
        )
    })?;
    serde_json::from_str(&text).map_err(|e| format!("{}: not a lab panel: {e}", path.display()))
}

async fn lab(State(state): State<Arc<ServerState>>, _: ApiQuery<NoParams>) -> Response {
    match panel(state.lab_dir.get().map(|p| p.as_path())) {
        Ok(doc) => ([(header::CACHE_CONTROL, "no-cache")], Json(doc)).into_response(),
        Err(message) => not_found(message),
    }
}

pub async fn lab_js(_: ApiQuery<NoParams>) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        LAB_JS,
    )
}

pub async fn lab_css(_: ApiQuery<NoParams>) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        LAB_CSS,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_lab_and_no_panel_are_told_apart() {
        assert!(panel(None).unwrap_err().contains("without --lab"));
        let tmp = tempfile::tempdir().unwrap();
        assert!(
            panel(Some(tmp.path()))
                .unwrap_err()
                .contains("no lab panel at")
        );
        std::fs::create_dir_all(tmp.path().join(".mailrig-lab")).unwrap();
        std::fs::write(tmp.path().join(PANEL_FILE), "{not json").unwrap();
        assert!(
            panel(Some(tmp.path()))
                .unwrap_err()
                .contains("not a lab panel")
        );
        std::fs::write(tmp.path().join(PANEL_FILE), r#"{"title": "t"}"#).unwrap();
        assert_eq!(panel(Some(tmp.path())).unwrap()["title"], "t");
    }
}
