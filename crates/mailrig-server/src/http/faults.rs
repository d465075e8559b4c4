//! The fault-rule endpoints, `/api/v1/faults`: the place where rules of the
//! fault plan will be listed, added and removed at run time, once the fault
//! injector exists. Until then every method answers 501 with a JSON error, so
//! a client learns the endpoint is known but not yet available.

use std::sync::Arc;

use axum::Router;
use axum::routing::any;

use super::error::ApiError;
use crate::state::ServerState;

pub fn routes() -> Router<Arc<ServerState>> {
    Router::new()
        .route("/faults", any(not_yet))
        .route("/faults/{*rest}", any(not_yet))
}

async fn not_yet() -> ApiError {
    ApiError::NotImplemented("fault rules cannot be changed over HTTP yet")
}
