//! `/`: the web page — the world at a glance (a domain × mailbox grid where
//! problems stand out), the messages (search, a message view with HTML in a
//! sandbox, text, headers, source, attachments, MIME tree and journal), the
//! fault rules (switch, add, delete) and the journal, following live over
//! `GET /api/v1/events`.
//!
//! The shell is HTML from maud (escapes every value by default); the live
//! parts are one plain script, `/ui/app.js`, and one stylesheet,
//! `/ui/app.css`, both compiled into the binary: the page works offline,
//! loads nothing from elsewhere (its Content-Security-Policy says so) and
//! needs no frontend build. With a token set, the browser asks for it once
//! (HTTP Basic, any user name, the token as password) and sends it with the
//! script's requests, which are same-origin and so pass the Origin check.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use maud::{DOCTYPE, Markup, html};

use super::extract::{ApiQuery, NoParams};
use crate::state::ServerState;

const APP_JS: &str = include_str!("ui/app.js");
const APP_CSS: &str = include_str!("ui/app.css");

/// What the page may load: only its own origin (and `data:` images).
pub const PAGE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub async fn index(
    State(state): State<Arc<ServerState>>,
    axum::extract::Extension(policy): axum::extract::Extension<Arc<super::access::AccessPolicy>>,
    _: ApiQuery<NoParams>,
) -> impl IntoResponse {
    (
        [
            (header::CONTENT_SECURITY_POLICY, PAGE_CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        Html(render(&state, policy.requires_token()).into_string()),
    )
}

pub async fn app_js(_: ApiQuery<NoParams>) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        APP_JS,
    )
}

pub async fn app_css(_: ApiQuery<NoParams>) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        APP_CSS,
    )
}

/// The page's shell; `app.js` fills the views.
/// The page; `token` (the server needs one) adds the "Sign out" button.
pub fn render(state: &ServerState, token: bool) -> Markup {
    let host = &state.world.identity.hostname;
    let tabs = [
        ("world", "World", "1"),
        ("messages", "Messages", "2"),
        ("faults", "Faults", "3"),
        ("journal", "Journal", "4"),
    ];
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "mailrig — " (host) }
                link rel="stylesheet" href="/ui/app.css";
                script src="/ui/app.js" defer {}
                link rel="stylesheet" href="/ui/lab.css";
                script src="/ui/lab.js" defer {}
            }
            body data-hostname=(host) {
                header.top {
                    h1 { "mailrig" span.host { (host) } }
                    nav aria-label="Views" {
                        @for (id, label, key) in tabs {
                            a.tab href={ "#/" (id) } id={ "tab-" (id) } accesskey=(key) { (label) }
                        }
                    }
                    span #live.live title="live updates" { "connecting…" }
                    @if token {
                        form.signout method="post" action="/logout" {
                            button #signout type="submit" title="forget the token in this browser" { "Sign out" }
                        }
                    }
                }
                aside #lab-panel.lab hidden aria-label="Training lab" {}
                main {
                    section #view-world.view aria-labelledby="tab-world" {
                        div.toolbar {
                            label { "Filter " input #grid-filter type="search" placeholder="mailbox or domain"; }
                            label { input #grid-problems type="checkbox"; " only mailboxes with problems" }
                            span #grid-summary {}
                        }
                        div #grid {}
                        div #grid-detail.detail hidden {}
                    }
                    section #view-messages.view hidden aria-labelledby="tab-messages" {
                        form #search.toolbar role="search" {
                            input #q type="search" name="q" placeholder="search sender, recipient, subject, body  ( / )" aria-label="search";
                            select #search-field aria-label="search in" {
                                option value="q" { "anywhere" }
                                option value="from" { "sender" }
                                option value="to" { "recipient" }
                                option value="subject" { "subject" }
                                option value="text" { "body" }
                                option value="header" { "header (Name: value)" }
                            }
                            input #f-mailbox type="text" placeholder="mailbox" aria-label="mailbox";
                            input #f-domain type="text" placeholder="domain" aria-label="domain";
                            label { "after " input #f-after type="date"; }
                            label { "before " input #f-before type="date"; }
                            button type="submit" { "Search" }
                            button #purge type="button" class="danger" { "Delete all" }
                        }
                        div.split {
                            div.list-pane {
                                table #messages.list {
                                    thead { tr { th { "received" } th { "mailbox" } th { "from" } th { "subject" } th.n { "size" } } }
                                    tbody {}
                                }
                                div.pager {
                                    button #prev type="button" { "← newer" }
                                    span #page-info {}
                                    button #next type="button" { "older →" }
                                }
                            }
                            div #message.message-pane { p.empty { "Pick a message." } }
                        }
                    }
                    section #view-faults.view hidden aria-labelledby="tab-faults" {
                        table #faults.list {
                            thead { tr { th { "on" } th { "rule" } th { "stage" } th { "action" } th { "selectors" } th.n { "fired" } th {} } }
                            tbody {}
                        }
                        form #add-fault.add {
                            h2 { "Add a rule" }
                            p.hint { "The keys of a scenario's " code { "[[fault]]" } " table, as TOML or JSON." }
                            select #fault-format aria-label="format" {
                                option value="application/toml" { "TOML" }
                                option value="application/json" { "JSON" }
                            }
                            textarea #fault-text rows="6" spellcheck="false" aria-label="rule" {
                                "name = \"no-anna\"\nstage = \"rcpt\"\naction = \"reject\"\nmailbox = \"anna\"\ncode = 550\nenhanced = \"5.1.1\"\ntext = \"no such user\""
                            }
                            button type="submit" { "Add rule" }
                            pre #fault-error.error role="alert" hidden {}
                        }
                    }
                    section #view-journal.view hidden aria-labelledby="tab-journal" {
                        form #journal-filter.toolbar {
                            input #j-mailbox placeholder="mailbox" aria-label="mailbox";
                            input #j-rule placeholder="rule" aria-label="rule";
                            input #j-stage placeholder="stage" aria-label="stage";
                            input #j-message_id placeholder="Message-ID" aria-label="Message-ID";
                            input #j-peer placeholder="client IP" aria-label="client";
                            select #j-kind aria-label="kind" {
                                option value="" { "any kind" }
                                @for k in mailrig_core::JournalEvent::KINDS { option value=(k) { (k) } }
                            }
                            button type="submit" { "Filter" }
                            label { input #j-follow type="checkbox" checked; " follow live" }
                            button #clear-journal type="button" class="danger" { "Clear journal" }
                        }
                        table #journal.list {
                            thead { tr { th { "#" } th { "time" } th { "stage" } th { "event" } th { "rule" } th { "rcpt" } th { "from" } th { "client" } th #j-host-col hidden { "host" } } }
                            tbody {}
                        }
                        div.pager {
                            button #journal-older type="button" disabled { "older entries" }
                            span #journal-info {}
                        }
                    }
                }
                noscript { p { "The live page needs JavaScript; the JSON API is at " a href="/api/v1/health" { "/api/v1" } "." } }
            }
        }
    }
}
