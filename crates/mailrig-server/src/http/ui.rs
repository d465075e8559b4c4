//! `/`: a small server-rendered HTML page, a tiny Mailpit: every mailbox with
//! its message count, and the newest messages with links to their raw text and
//! JSON. No JavaScript, no build step; every value from a message is
//! HTML-escaped, since senders choose them.

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::State;
use axum::response::Html;

use super::extract::{ApiQuery, NoParams};
use super::view;
use crate::state::ServerState;

/// How many of the newest messages the page lists.
pub const NEWEST: usize = 50;

pub async fn index(State(state): State<Arc<ServerState>>, _: ApiQuery<NoParams>) -> Html<String> {
    Html(render(&state))
}

pub fn render(state: &ServerState) -> String {
    let host = escape(&state.world.identity.hostname);
    let mut out = String::with_capacity(8192);
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>mailrig — {host}</title>\
<style>body{{font-family:system-ui,sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse;margin-bottom:2em}}\
td,th{{border-bottom:1px solid #ddd;padding:.3em .8em;text-align:left}}th{{background:#f4f4f4}}\
.n{{text-align:right}}code{{font-size:90%}}</style></head><body>\n\
<h1>mailrig — {host}</h1>\n<p>JSON API: <a href=\"/api/v1/health\">/api/v1</a> · \
<a href=\"/metrics\">/metrics</a></p>\n"
    );

    out.push_str("<h2>Mailboxes</h2>\n<table><tr><th>mailbox</th><th class=\"n\">messages</th><th class=\"n\">unseen</th></tr>\n");
    for d in view::domain_summaries(state) {
        let _ = writeln!(
            out,
            "<tr><th colspan=\"3\">{} ({} messages)</th></tr>",
            escape(&d.name),
            d.messages
        );
        for m in d.mailboxes {
            let _ = writeln!(
                out,
                "<tr><td><a href=\"/api/v1/mailboxes/{a}/messages\">{a}</a></td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                m.messages,
                m.unseen,
                a = escape(&m.address)
            );
        }
    }
    out.push_str("</table>\n");

    let newest = view::newest_messages(state, NEWEST);
    let _ = writeln!(out, "<h2>Newest messages</h2>");
    if newest.is_empty() {
        out.push_str("<p>No messages yet.</p>\n");
    } else {
        out.push_str("<table><tr><th>received</th><th>mailbox</th><th>from</th><th>subject</th><th class=\"n\">size</th><th></th></tr>\n");
        for m in newest {
            let a = escape(&m.mailbox);
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{a}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td>\
<td><a href=\"/api/v1/mailboxes/{a}/messages/{uid}/raw\">raw</a> · <a href=\"/api/v1/mailboxes/{a}/messages/{uid}\">json</a></td></tr>",
                m.internal_date.format("%Y-%m-%d %H:%M:%S"),
                escape(m.from.as_deref().unwrap_or("")),
                escape(m.subject.as_deref().unwrap_or("(no subject)")),
                m.size,
                uid = m.uid
            );
        }
        out.push_str("</table>\n");
    }
    out.push_str("</body></html>\n");
    out
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<b a=\"x\">&'"),
            "&lt;b a=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
