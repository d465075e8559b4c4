//! The probe report as one self-contained HTML page (`mailrig probe --format
//! html`): the same domain × mailbox grid as the web page, each cell coloured
//! by its verdict, and the verdict details, for CI artifacts and for sending
//! to a customer. Inline CSS only, no script, nothing loaded from elsewhere;
//! every value goes through maud, which escapes it.

use maud::{DOCTYPE, Markup, html};

use super::Report;
use crate::verdict::{MailboxResult, Verdict};

const CSS: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1d232a}\
h1{font-size:1.3em}.ok{color:#2e7d32}.bad{color:#c62828}\
.domain{margin:1em 0;border:1px solid #d9dee3;border-radius:6px}\
.domain h2{font-size:1em;margin:0;padding:.4em .6em;background:#eef1f4}\
.cells{display:flex;flex-wrap:wrap;gap:4px;padding:6px}\
.cell{min-width:6em;padding:.2em .4em;border:1px solid #d9dee3;border-radius:4px;font-size:.85em;text-align:center}\
.v-delivered{background:#e6f4e7;border-color:#a9d3ab}\
.v-missing,.v-rejected,.v-misrouted,.v-unreadable,.v-misfiled,.v-stuck-upstream{background:#fde7e7;border-color:#c62828;color:#c62828}\
.v-deferred,.v-duplicated,.v-altered,.v-delivered-unauthenticated{background:#fff4e0;border-color:#e0a040}\
.none{color:#69737d;font-style:italic}td.smtp{font-family:ui-monospace,monospace;font-size:.9em}td.via,td.mailbox{white-space:nowrap}\
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.25em .5em;border-bottom:1px solid #d9dee3;vertical-align:top}";

impl Report {
    /// The report as a self-contained HTML page.
    pub fn to_html(&self) -> String {
        page(self).into_string()
    }
}

fn page(r: &Report) -> Markup {
    let ok = r.summary.all_delivered && r.error.is_none();
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "mailrig probe — " (r.target) }
                style { (maud::PreEscaped(CSS)) }
            }
            body {
                h1 { "Delivery probe of " (r.target) }
                p class=(if ok { "ok" } else { "bad" }) {
                    @if let Some(e) = &r.error { "The probe could not run: " (e) }
                    @else if ok { "Every one of " (r.summary.total) " mailboxes got its message." }
                    @else { (r.summary.total - r.summary.counts.delivered) " of " (r.summary.total) " mailboxes did not get their message as sent." }
                }
                p { "Run " code { (r.run_id) } ", started " (r.started_at) ", " (r.duration_ms) " ms" @if r.timed_out { ", timed out" } "." }
                @for d in &r.domains {
                    section.domain {
                        h2 { (d.domain) " — " (Report::domain_line(d)) }
                        div.cells {
                            @for m in r.mailboxes.iter().filter(|m| m.domain == d.domain) {
                                div class={ "cell v-" (m.verdict.as_str()) } title=(m.reason) data-address=(m.address) {
                                    (m.address.split('@').next().unwrap_or(&m.address)) br; (m.verdict.as_str())
                                }
                            }
                        }
                    }
                }
                h2 { "Mailboxes that did not get their message" }
                table {
                    tr { th { "mailbox" } th { "verdict" } th { "SMTP reply" } th { "why" } th { "read via" } }
                    @for m in r.mailboxes.iter().filter(|m| m.verdict != Verdict::Delivered) {
                        tr {
                            td.mailbox { (m.address) }
                            td class="bad" { (m.verdict.as_str()) }
                            td.smtp { (smtp_reply(m)) }
                            td { (m.reason) }
                            td.via { (m.read_via) }
                        }
                    }
                }
            }
        }
    }
}

/// The SMTP column: the reply that refused the probe, or the `250` that
/// took it (a probe accepted and then lost is the interesting case), or
/// why there is none.
fn smtp_reply(m: &MailboxResult) -> Markup {
    html! {
        @if let Some(s) = &m.smtp {
            span.bad { (s) }
        } @else if let Some(s) = &m.accepted {
            (s)
        } @else if m.verdict == Verdict::Unreadable {
            span.none { "not sent" }
        } @else {
            span.none { "no reply" }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::report::tests::seed_report;

    #[test]
    fn the_page_has_the_grid_and_escapes_every_value() {
        let page = seed_report().to_html();
        assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
        assert_eq!(
            page.matches("class=\"cell v-missing\"").count(),
            23,
            "{page}"
        );
        assert_eq!(
            page.matches("class=\"cell v-delivered\"").count(),
            5,
            "{page}"
        );
        assert!(page.contains("data-address=\"user03@patente.test\""));
        assert!(page.contains("<th>SMTP reply</th>"), "{page}");
        // A missing row shows the 250 that took the probe, a rejected one
        // its refusal, an unreadable one that nothing was sent.
        assert_eq!(
            page.matches("<td class=\"smtp\">250 2.0.0 Ok: queued as 4B7F</td>")
                .count(),
            23,
            "{page}"
        );
        assert!(
            page.contains(
                "<td class=\"smtp\"><span class=\"bad\">550 5.1.1 User unknown</span></td>"
            ),
            "{page}"
        );
        assert!(
            page.contains("<td class=\"smtp\"><span class=\"none\">not sent</span></td>"),
            "{page}"
        );
        // Reasons carry `<&"'>`: escaped, never markup.
        assert!(
            page.contains("reason for missing &lt;&amp;&quot;'&gt;"),
            "{page}"
        );
        assert!(!page.contains("<&\""));
        assert!(!page.contains("<script"));
        assert!(!page.contains("http://") && !page.contains("https://"));
    }
}
