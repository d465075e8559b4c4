//! Sending probes with lettre: a few SMTP connections in parallel, each
//! sending one message after another (one recipient per message, because
//! each mailbox gets its own token), remembering the moment of each `250`.
//!
//! lettre's connection type is used directly rather than its pooled
//! transport: the prober needs the reply to each message (code, enhanced
//! code, text) and the time it arrived, and a refused recipient must not
//! cost the other probes their connection.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::extension::ClientId;

use crate::message::ProbeMessage;
use crate::target::{SmtpTarget, TlsMode};
use crate::tls::TlsContext;
use crate::verdict::{SendOutcome, SmtpReply};

/// Opens one SMTP connection: greeting, EHLO, TLS as configured, AUTH.
pub(crate) async fn connect(
    smtp: &SmtpTarget,
    tls: &TlsContext,
    limit: Duration,
) -> Result<AsyncSmtpConnection, String> {
    let work = async {
        let hello = ClientId::Domain(smtp.helo.clone());
        // Every mode: our own socket with TCP_NODELAY, handed
        // to lettre. Without it, every message waits ~40 ms for the final
        // `.` (Nagle against delayed ACKs): 1,000 probes took 11 s.
        let mut conn = match smtp.tls {
            TlsMode::None => {
                let tcp = crate::read::connect_tcp(&smtp.host, smtp.port, limit).await?;
                AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &hello)
                    .await
                    .map_err(|e| describe(&e))?
            }
            TlsMode::Tls => {
                let tcp = crate::read::connect_tcp(&smtp.host, smtp.port, limit).await?;
                let stream = crate::read::tls_handshake(tls, &smtp.host, tcp, limit)
                    .await
                    .map_err(|e| format!("TLS: {e}"))?;
                AsyncSmtpConnection::connect_with_transport(Box::new(TlsTransport(stream)), &hello)
                    .await
                    .map_err(|e| describe(&e))?
            }
            TlsMode::Starttls => {
                // Our socket too: lettre upgrades any transport it was
                // handed, so STARTTLS keeps TCP_NODELAY as well.
                let tcp = crate::read::connect_tcp(&smtp.host, smtp.port, limit).await?;
                let mut conn = AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &hello)
                    .await
                    .map_err(|e| describe(&e))?;
                if !conn.can_starttls() {
                    return Err("the server does not offer STARTTLS".to_string());
                }
                let params = tls.smtp_parameters(&smtp.host)?;
                conn.starttls(params, &hello)
                    .await
                    .map_err(|e| format!("STARTTLS: {}", describe(&e)))?;
                conn
            }
        };
        if let Some(auth) = &smtp.auth {
            let creds = Credentials::new(auth.user.clone(), auth.password.clone());
            conn.auth(&[Mechanism::Plain, Mechanism::Login], &creds)
                .await
                .map_err(|e| format!("AUTH as {}: {}", auth.user, describe(&e)))?;
        }
        Ok(conn)
    };
    tokio::time::timeout(limit, work)
        .await
        .map_err(|_| format!("no usable SMTP session within {} s", limit.as_secs_f64()))?
}

/// Implicit TLS done by us (rustls, our trust settings), for lettre.
struct TlsTransport(tokio_rustls::client::TlsStream<tokio::net::TcpStream>);

impl std::fmt::Debug for TlsTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsTransport")
    }
}

impl tokio::io::AsyncRead for TlsTransport {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for TlsTransport {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl lettre::transport::smtp::client::AsyncTokioStream for TlsTransport {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

/// A lettre error in words: the reply when there is one.
fn describe(e: &lettre::transport::smtp::Error) -> String {
    match reply_of(e) {
        Some(r) => r.to_string(),
        None => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(inner) = src {
                let t = inner.to_string();
                if !s.contains(&t) {
                    s.push_str(": ");
                    s.push_str(&t);
                }
                src = inner.source();
            }
            s
        }
    }
}

fn reply_of(e: &lettre::transport::smtp::Error) -> Option<SmtpReply> {
    let code = e.status()?;
    let text = std::error::Error::source(e)
        .map(|s| s.to_string())
        .unwrap_or_default();
    Some(SmtpReply::from_code_and_text(u16::from(code), &text))
}

/// What one send produced.
fn outcome(
    result: Result<lettre::transport::smtp::response::Response, lettre::transport::smtp::Error>,
) -> SendOutcome {
    match result {
        Ok(response) => SendOutcome::Accepted {
            at: Instant::now(),
            reply: Some(SmtpReply::from_code_and_text(
                u16::from(response.code()),
                &response.message().collect::<Vec<_>>().join(" "),
            )),
        },
        Err(e) => match reply_of(&e) {
            Some(reply) => SendOutcome::Failed {
                reason: format!(
                    "{} with {reply}",
                    if reply.permanent {
                        "rejected"
                    } else {
                        "deferred"
                    }
                ),
                reply: Some(reply),
            },
            None => SendOutcome::Failed {
                reply: None,
                reason: format!("connection failed while sending: {}", describe(&e)),
            },
        },
    }
}

/// One thing to do over SMTP.
pub(crate) struct Job {
    pub index: usize,
    pub message: ProbeMessage,
    /// Only ask whether the recipient is accepted (MAIL, RCPT, RSET): for a
    /// mailbox that cannot be read, so that a rejection is still reported
    /// but no message is left where it cannot be cleaned up.
    pub rcpt_only: bool,
}

async fn rcpt_check(c: &mut AsyncSmtpConnection, msg: &ProbeMessage) -> SendOutcome {
    use lettre::transport::smtp::commands::{Mail, Rcpt, Rset};
    let from = msg.envelope.from().cloned();
    let result = async {
        c.command(Mail::new(from, vec![])).await?;
        for to in msg.envelope.to() {
            c.command(Rcpt::new(to.clone(), vec![])).await?;
        }
        c.command(Rset).await?;
        Ok::<(), lettre::transport::smtp::Error>(())
    }
    .await;
    match result {
        Ok(()) => SendOutcome::RcptAccepted,
        Err(e) => {
            let _ = c.command(Rset).await;
            outcome(Err(e))
        }
    }
}

/// Sends every message over up to `smtp.connections` connections; results
/// in the order given. `on_sent` is called after each message.
pub(crate) async fn send_all(
    smtp: &SmtpTarget,
    tls: &TlsContext,
    limit: Duration,
    messages: Vec<Job>,
    on_sent: Arc<dyn Fn() + Send + Sync>,
) -> Vec<(usize, SendOutcome)> {
    let workers = smtp.connections.clamp(1, messages.len().max(1));
    let queue = Arc::new(Mutex::new(messages.into_iter().collect::<VecDeque<_>>()));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let queue = Arc::clone(&queue);
        let smtp = smtp.clone();
        let tls = tls.clone();
        let on_sent = Arc::clone(&on_sent);
        tasks.spawn(async move {
            let mut done = Vec::new();
            let mut conn: Option<AsyncSmtpConnection> = None;
            loop {
                let next = queue.lock().map(|mut q| q.pop_front()).unwrap_or(None);
                let Some(Job {
                    index: i,
                    message: msg,
                    rcpt_only,
                }) = next
                else {
                    break;
                };
                if conn.as_ref().is_none_or(|c| c.has_broken()) {
                    conn = match connect(&smtp, &tls, limit).await {
                        Ok(c) => Some(c),
                        Err(reason) => {
                            done.push((
                                i,
                                SendOutcome::Failed {
                                    reply: None,
                                    reason: format!("cannot open an SMTP session: {reason}"),
                                },
                            ));
                            on_sent();
                            continue;
                        }
                    };
                }
                let Some(c) = conn.as_mut() else { continue };
                if rcpt_only {
                    let checked = tokio::time::timeout(limit, rcpt_check(c, &msg)).await;
                    done.push((
                        i,
                        checked.unwrap_or_else(|_| SendOutcome::Failed {
                            reply: None,
                            reason: format!("no SMTP answer within {} s", limit.as_secs_f64()),
                        }),
                    ));
                    on_sent();
                    continue;
                }
                let sent = tokio::time::timeout(limit, c.send(&msg.envelope, &msg.bytes)).await;
                let result = match sent {
                    Ok(r) => r,
                    Err(_) => {
                        done.push((
                            i,
                            SendOutcome::Failed {
                                reply: None,
                                reason: format!("no SMTP answer within {} s", limit.as_secs_f64()),
                            },
                        ));
                        conn = None;
                        on_sent();
                        continue;
                    }
                };
                done.push((i, outcome(result)));
                on_sent();
                if c.has_broken() {
                    c.abort().await;
                    conn = None;
                }
            }
            if let Some(mut c) = conn {
                let _ = c.quit().await;
            }
            done
        });
    }
    let mut all = Vec::new();
    while let Some(r) = tasks.join_next().await {
        if let Ok(done) = r {
            all.extend(done);
        }
    }
    all.sort_by_key(|(i, _)| *i);
    all
}
