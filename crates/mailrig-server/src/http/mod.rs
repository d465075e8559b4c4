//! The HTTP control API and web page: look into the fake world from a test or
//! a browser — domains, mailboxes, messages, the journal, metrics — and clean
//! it up between tests.
//!
//! Everything JSON lives under the version prefix `/api/v1` ([`api`]), errors
//! are `{"error": "..."}` with a 4xx/5xx status ([`error`]), Prometheus text is
//! at `/metrics` ([`metrics`]), and `/` is a small server-rendered HTML page
//! ([`ui`]). [`faults`] lists, adds, switches and removes fault rules;
//! [`parsed`] takes a message apart for reading; [`events`] streams what
//! happens as Server-Sent Events; [`lab`] shows a running training lab's
//! task and last check. The
//! OpenAPI description is `docs/openapi.yaml` at the repository root.
//!
//! The listener is bound to loopback by default, and [`access`] decides who
//! else may use it: only loopback or configured `Host` names (no DNS
//! rebinding), JSON or TOML bodies and same-origin state changes (no
//! cross-site requests from a web page), and an optional token.

pub mod access;
pub mod api;
pub mod error;
pub mod events;
pub mod extract;
pub mod faults;
pub mod grid;
pub mod lab;
pub mod login;
pub mod messages;
pub mod metrics;
pub mod parsed;
pub mod ui;
pub mod view;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;

pub use access::{AccessError, AccessPolicy};

use crate::state::ServerState;

/// The whole HTTP application over one fake world, behind `access`;
/// `POST /api/v1/reset` restores the fault rules of `initial`.
pub fn router(
    state: Arc<ServerState>,
    access: Arc<AccessPolicy>,
    initial: messages::InitialFaults,
) -> Router {
    Router::new()
        .route("/", get(ui::index))
        .route("/ui/app.js", get(ui::app_js))
        .route("/ui/app.css", get(ui::app_css))
        .route("/ui/lab.js", get(lab::lab_js))
        .route("/ui/lab.css", get(lab::lab_css))
        .route("/metrics", get(metrics::metrics))
        .merge(login::routes())
        .nest(
            "/api/v1",
            api::routes()
                .merge(faults::routes())
                .merge(messages::routes())
                .merge(lab::routes())
                .route("/events", get(events::events))
                .route("/grid", get(grid::get_grid))
                .route("/world/arrivals", get(crate::hosts::arrivals::handler)),
        )
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .with_state(state)
        .layer(axum::Extension(Arc::new(initial)))
        .layer(axum::Extension(access.clone()))
        .layer(axum::middleware::from_fn_with_state(access, access::guard))
}

/// Serves the HTTP API on `listener` until the server shuts down; requests in
/// flight are finished first. The fault rules of `state` now are what
/// `POST /api/v1/reset` restores: they are taken here, before the future
/// runs, so rules a test adds after start-up are not among them.
pub fn serve(
    listener: TcpListener,
    state: Arc<ServerState>,
    access: Arc<AccessPolicy>,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let initial = messages::InitialFaults::of(&state);
    async move {
        let shutdown = state.shutdown.clone();
        // The search index follows the store while the API is up.
        tokio::spawn(crate::search::follow(
            state.search.clone(),
            state.store.clone(),
            shutdown.clone(),
        ));
        let app = router(state, access, initial)
            .into_make_service_with_connect_info::<access::LocalAddr>();
        let server = axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned());
        if let Err(e) = server.await {
            tracing::warn!(error = %e, "HTTP server ended with an error");
        }
    }
}
