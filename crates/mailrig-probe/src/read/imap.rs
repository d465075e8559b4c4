//! The IMAP side of reading back, on imap-next's client state machine
//! (imap-codec underneath): LOGIN, SELECT INBOX, `UID SEARCH` for the run id,
//! `UID FETCH` of header and text, IDLE where offered, and deletion by UID
//! that never expunges anyone else's `\Deleted` mail. `LIST "" "*"` names
//! the other folders, searched once at the end (special-use attributes such
//! as `\Junk` are read from the plain LIST answer, where Dovecot and most
//! servers put them; the virtual `\All` and `\Flagged` views and
//! `\Noselect` names are skipped, since they would show INBOX's copies again).
//!
//! imap-next does the protocol; this module only sequences commands and turns
//! responses into [`FoundMessage`]s. STARTTLS is done by hand before the state
//! machine starts (imap-next's stream does not expose the socket to upgrade),
//! with the client told to skip the greeting it already saw.

use std::num::NonZeroU32;
use std::time::Duration;

use imap_next::client::{Client, Event, Options};
use imap_next::imap_types::auth::{AuthMechanism, AuthenticateData};
use imap_next::imap_types::command::{Command, CommandBody};
use imap_next::imap_types::core::{AString, Tag, Vec1};
use imap_next::imap_types::fetch::{MessageDataItem, MessageDataItemName, Section};
use imap_next::imap_types::flag::{Flag, StoreResponse, StoreType};
use imap_next::imap_types::response::{Data, GreetingKind, Status, StatusKind, Tagged};
use imap_next::imap_types::search::SearchKey;
use imap_next::imap_types::sequence::SequenceSet;
use imap_next::stream::Stream;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio_util::sync::CancellationToken;

use super::{FoundMessage, ReadError, ScanCache, connect_tcp, tls_handshake};
use crate::message::{PROBE_HEADER, RunId, SeenHeaders, body_hash};
use crate::target::{MailboxTarget, MasterStyle, ReadProtocol, TlsMode};
use crate::tls::TlsContext;

pub(crate) struct ImapSession {
    stream: Stream,
    client: Client,
    next_tag: u32,
    limit: Duration,
    caps: Vec<String>,
    /// Set when the server refused SEARCH HEADER: scan by fetching headers.
    search_refused: bool,
    /// Set when the server refused IDLE although it advertised it.
    idle_refused: bool,
    /// The folder selected now (as LIST named it; `INBOX` after login).
    selected: String,
}

/// A folder as LIST names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListedFolder {
    pub name: String,
    /// Lower-cased name attributes (`\junk`, `\noselect`, ...).
    pub attributes: Vec<String>,
}

impl ListedFolder {
    /// Whether the folder is searched for misfiled probes: selectable, not
    /// INBOX, not a virtual view that repeats other folders' messages.
    pub fn searched(&self) -> bool {
        !self.name.eq_ignore_ascii_case("INBOX")
            && !self.attributes.iter().any(|a| {
                matches!(
                    a.as_str(),
                    "\\noselect" | "\\nonexistent" | "\\all" | "\\flagged"
                )
            })
    }
}

/// A command that did not end in a tagged OK.
enum Failure {
    /// NO or BAD, with the server's text.
    Refused(String),
    /// The connection broke, timed out, or the server said BYE.
    Broken(String),
}

impl Failure {
    fn into_read_error(self, what: &str) -> ReadError {
        match self {
            Failure::Refused(t) => ReadError::Protocol(format!("IMAP {what} refused: {t}")),
            Failure::Broken(t) => {
                ReadError::Protocol(format!("IMAP connection lost during {what}: {t}"))
            }
        }
    }
}

impl ImapSession {
    pub async fn open(
        mb: &MailboxTarget,
        tls: &TlsContext,
        limit: Duration,
    ) -> Result<ImapSession, ReadError> {
        let ep = &mb.read;
        let endpoint = ep.to_string();
        let tcp = connect_tcp(&ep.host, ep.port, limit)
            .await
            .map_err(|reason| ReadError::Connect {
                endpoint: endpoint.clone(),
                reason,
            })?;
        let tls_err = |reason: String| ReadError::Tls {
            endpoint: endpoint.clone(),
            reason,
        };
        let mut options = Options::default();
        options.crlf_relaxed = true;
        let stream = match ep.tls {
            TlsMode::None => Stream::insecure(tcp),
            TlsMode::Tls => Stream::tls(
                tls_handshake(tls, &ep.host, tcp, limit)
                    .await
                    .map_err(tls_err)?
                    .into(),
            ),
            TlsMode::Starttls => {
                let tcp = starttls(tcp, limit)
                    .await
                    .map_err(|r| tls_err(format!("STARTTLS: {r}")))?;
                options.discard_greeting = true;
                Stream::tls(
                    tls_handshake(tls, &ep.host, tcp, limit)
                        .await
                        .map_err(tls_err)?
                        .into(),
                )
            }
        };
        let mut s = ImapSession {
            stream,
            client: Client::new(options),
            next_tag: 1,
            limit,
            caps: Vec::new(),
            search_refused: false,
            idle_refused: false,
            selected: "INBOX".to_string(),
        };
        if ep.tls != TlsMode::Starttls {
            s.greeting().await?;
        }
        s.login(mb).await?;
        let caps = s
            .exec(CommandBody::Capability)
            .await
            .map_err(|f| f.into_read_error("CAPABILITY"))?;
        for d in caps {
            if let Data::Capability(list) = d {
                s.caps = list
                    .as_ref()
                    .iter()
                    .map(|c| c.to_string().to_ascii_uppercase())
                    .collect();
            }
        }
        let select = CommandBody::select("INBOX")
            .map_err(|_| ReadError::Protocol("cannot encode SELECT".into()))?;
        s.exec(select)
            .await
            .map_err(|f| f.into_read_error("SELECT INBOX"))?;
        Ok(s)
    }

    /// LOGIN with the mailbox's password, or as its user with the master
    /// credential: LOGIN `user*master`, or AUTHENTICATE PLAIN with authzid.
    async fn login(&mut self, mb: &MailboxTarget) -> Result<(), ReadError> {
        let (name, result) = match &mb.master {
            Some(m) if m.style == MasterStyle::Authzid => (
                format!("{} (authzid, as {})", m.user, mb.user),
                self.authenticate_plain(m.sasl_plain(&mb.user)).await,
            ),
            other => {
                let (name, password) = match other {
                    Some(m) => (m.login_name(&mb.user), m.password.clone()),
                    None => (mb.user.clone(), mb.password.clone()),
                };
                let login = CommandBody::login(name.clone(), password).map_err(|_| {
                    ReadError::Protocol(format!(
                        "user name or password of {} cannot be sent in IMAP",
                        mb.address
                    ))
                })?;
                (name, self.exec(login).await.map(drop))
            }
        };
        match result {
            Ok(()) => Ok(()),
            Err(Failure::Refused(reason)) => Err(ReadError::Login {
                protocol: ReadProtocol::Imap,
                user: name,
                reason,
            }),
            Err(f) => Err(f.into_read_error("LOGIN")),
        }
    }

    /// AUTHENTICATE PLAIN, the response sent after the server's `+` (so no
    /// SASL-IR is needed).
    async fn authenticate_plain(&mut self, message: Vec<u8>) -> Result<(), Failure> {
        let tag = self.tag();
        self.client.enqueue_command(Command {
            tag,
            body: CommandBody::authenticate(AuthMechanism::Plain),
        });
        let mut message = Some(message);
        loop {
            let ev =
                match tokio::time::timeout(self.limit, self.stream.next(&mut self.client)).await {
                    Err(_) => {
                        return Err(Failure::Broken(format!(
                            "no answer within {} s",
                            self.limit.as_secs_f64()
                        )));
                    }
                    Ok(Err(e)) => return Err(Failure::Broken(e.to_string())),
                    Ok(Ok(ev)) => ev,
                };
            match ev {
                Event::AuthenticateContinuationRequestReceived { .. } => {
                    let data = match message.take() {
                        Some(m) => AuthenticateData::r#continue(m),
                        None => AuthenticateData::Cancel,
                    };
                    if self.client.set_authenticate_data(data).is_err() {
                        return Err(Failure::Broken("AUTHENTICATE out of step".into()));
                    }
                }
                Event::AuthenticateStatusReceived { status, .. } => {
                    return match status {
                        Status::Tagged(Tagged { body, .. }) if body.kind == StatusKind::Ok => {
                            Ok(())
                        }
                        Status::Tagged(Tagged { body, .. }) => {
                            Err(Failure::Refused(body.text.to_string()))
                        }
                        other => Err(Failure::Broken(format!("{other:?}"))),
                    };
                }
                Event::StatusReceived {
                    status: Status::Bye(bye),
                } => {
                    return Err(Failure::Broken(format!("server said BYE: {}", bye.text)));
                }
                _ => {}
            }
        }
    }

    async fn greeting(&mut self) -> Result<(), ReadError> {
        loop {
            let ev = tokio::time::timeout(self.limit, self.stream.next(&mut self.client))
                .await
                .map_err(|_| ReadError::Protocol("no IMAP greeting in time".into()))?
                .map_err(|e| ReadError::Protocol(format!("IMAP greeting: {e}")))?;
            if let Event::GreetingReceived { greeting } = ev {
                return match greeting.kind {
                    GreetingKind::Ok | GreetingKind::PreAuth => Ok(()),
                    GreetingKind::Bye => Err(ReadError::Protocol(format!(
                        "IMAP server said BYE: {}",
                        greeting.text
                    ))),
                };
            }
        }
    }

    fn tag(&mut self) -> Tag<'static> {
        let t = format!("p{}", self.next_tag);
        self.next_tag += 1;
        Tag::try_from(t).unwrap_or_else(|_| Tag::unvalidated("p0"))
    }

    /// Sends one command, collects its untagged data, ends at its tagged status.
    async fn exec(&mut self, body: CommandBody<'static>) -> Result<Vec<Data<'static>>, Failure> {
        let tag = self.tag();
        self.client.enqueue_command(Command {
            tag: tag.clone(),
            body,
        });
        let mut data = Vec::new();
        loop {
            let ev =
                match tokio::time::timeout(self.limit, self.stream.next(&mut self.client)).await {
                    Err(_) => {
                        return Err(Failure::Broken(format!(
                            "no answer within {} s",
                            self.limit.as_secs_f64()
                        )));
                    }
                    Ok(Err(e)) => return Err(Failure::Broken(e.to_string())),
                    Ok(Ok(ev)) => ev,
                };
            match ev {
                Event::DataReceived { data: d } => data.push(d),
                Event::StatusReceived {
                    status: Status::Tagged(Tagged { tag: t, body }),
                } if t == tag => {
                    return match body.kind {
                        StatusKind::Ok => Ok(data),
                        _ => Err(Failure::Refused(body.text.to_string())),
                    };
                }
                Event::StatusReceived {
                    status: Status::Bye(bye),
                } => {
                    return Err(Failure::Broken(format!("server said BYE: {}", bye.text)));
                }
                Event::CommandRejected { status, .. } => {
                    return Err(Failure::Refused(format!("{status:?}")));
                }
                _ => {}
            }
        }
    }

    pub fn can_idle(&self) -> bool {
        !self.idle_refused && self.caps.iter().any(|c| c == "IDLE")
    }

    fn has(&self, cap: &str) -> bool {
        self.caps.iter().any(|c| c == cap)
    }

    /// UIDs of this run's messages (SEARCH), or `None` when the server
    /// cannot search headers and every message has to be looked at.
    async fn search(&mut self, run: &RunId) -> Result<Option<Vec<NonZeroU32>>, ReadError> {
        let header = AString::try_from(PROBE_HEADER.to_string());
        let value = AString::try_from(run.as_str().to_string());
        let subject = AString::try_from(run.as_str().to_string());
        let (Ok(header), Ok(value), Ok(subject)) = (header, value, subject) else {
            return Err(ReadError::Protocol("cannot encode SEARCH".into()));
        };
        let key = SearchKey::Or(
            Box::new(SearchKey::Header(header, value)),
            Box::new(SearchKey::Subject(subject)),
        );
        self.search_key(key).await
    }

    /// UIDs of messages whose header `name` contains `value`, or `None`
    /// when the server cannot search headers.
    pub async fn search_header(
        &mut self,
        name: &str,
        value: &str,
    ) -> Result<Option<Vec<NonZeroU32>>, ReadError> {
        let (Ok(header), Ok(value)) = (
            AString::try_from(name.to_string()),
            AString::try_from(value.to_string()),
        ) else {
            return Err(ReadError::Protocol("cannot encode SEARCH".into()));
        };
        self.search_key(SearchKey::Header(header, value)).await
    }

    async fn search_key(
        &mut self,
        key: SearchKey<'static>,
    ) -> Result<Option<Vec<NonZeroU32>>, ReadError> {
        if self.search_refused {
            return Ok(None);
        }
        match self
            .exec(CommandBody::search(None, Vec1::from(key), true))
            .await
        {
            Ok(data) => Ok(Some(
                data.into_iter()
                    .flat_map(|d| match d {
                        Data::Search(uids, ..) => uids,
                        _ => Vec::new(),
                    })
                    .collect(),
            )),
            Err(Failure::Refused(why)) => {
                tracing::debug!("IMAP SEARCH refused ({why}); falling back to fetching headers");
                self.search_refused = true;
                Ok(None)
            }
            Err(f) => Err(f.into_read_error("SEARCH")),
        }
    }

    /// NOOP: lets the server report new mail before the next search.
    pub async fn noop(&mut self) -> Result<(), ReadError> {
        self.exec(CommandBody::Noop)
            .await
            .map(|_| ())
            .map_err(|f| f.into_read_error("NOOP"))
    }

    pub async fn scan(
        &mut self,
        run: &RunId,
        cache: &mut ScanCache,
    ) -> Result<Vec<FoundMessage>, ReadError> {
        // NOOP lets the server tell us about new mail before we search.
        self.noop().await?;
        let uids = match self.search(run).await? {
            Some(uids) => uids,
            None => self.all_uids().await?,
        };
        let new: Vec<NonZeroU32> = uids
            .iter()
            .copied()
            .filter(|u| !cache.contains_key(&u.to_string()))
            .collect();
        if !new.is_empty() {
            for (uid, header, text) in self.fetch(&new, true).await? {
                let headers = SeenHeaders::parse(&header);
                let found = headers.token(run).map(|token| FoundMessage {
                    folder: self.selected.clone(),
                    key: uid.to_string(),
                    token,
                    headers,
                    body_hash: body_hash(&text),
                });
                cache.insert(uid.to_string(), found);
            }
        }
        Ok(uids
            .iter()
            .filter_map(|u| cache.get(&u.to_string()).cloned().flatten())
            .collect())
    }

    /// Every UID in the mailbox (fallback when SEARCH HEADER is refused).
    pub async fn all_uids(&mut self) -> Result<Vec<NonZeroU32>, ReadError> {
        let all = SearchKey::All;
        let data = self
            .exec(CommandBody::search(None, Vec1::from(all), true))
            .await
            .map_err(|f| f.into_read_error("SEARCH ALL"))?;
        Ok(data
            .into_iter()
            .flat_map(|d| match d {
                Data::Search(uids, ..) => uids,
                _ => Vec::new(),
            })
            .collect())
    }

    /// `(uid, header, text)` of each message (`text` empty unless `with_text`).
    pub async fn fetch(
        &mut self,
        uids: &[NonZeroU32],
        with_text: bool,
    ) -> Result<Vec<(NonZeroU32, Vec<u8>, Vec<u8>)>, ReadError> {
        let set = SequenceSet::try_from(uids.to_vec())
            .map_err(|_| ReadError::Protocol("empty UID set".into()))?;
        let mut items = vec![
            MessageDataItemName::Uid,
            MessageDataItemName::BodyExt {
                section: Some(Section::Header(None)),
                partial: None,
                peek: true,
            },
        ];
        if with_text {
            items.push(MessageDataItemName::BodyExt {
                section: Some(Section::Text(None)),
                partial: None,
                peek: true,
            });
        }
        let cmd = CommandBody::fetch(set, items, true)
            .map_err(|_| ReadError::Protocol("cannot encode FETCH".into()))?;
        let data = self
            .exec(cmd)
            .await
            .map_err(|f| f.into_read_error("FETCH"))?;
        let mut out = Vec::new();
        for d in data {
            let Data::Fetch { items, .. } = d else {
                continue;
            };
            let mut uid = None;
            let mut header = Vec::new();
            let mut text = Vec::new();
            for item in items.into_iter() {
                match item {
                    MessageDataItem::Uid(u) => uid = Some(u),
                    MessageDataItem::BodyExt { section, data, .. } => {
                        let bytes = data.0.map(|s| s.as_ref().to_vec()).unwrap_or_default();
                        match section {
                            Some(Section::Header(None)) => header = bytes,
                            Some(Section::Text(None)) => text = bytes,
                            _ => {}
                        }
                    }
                    _ => {}
                }
            }
            if let Some(uid) = uid {
                out.push((uid, header, text));
            }
        }
        Ok(out)
    }

    /// IDLE until the server reports a change, `max` passes or `stop` fires.
    pub async fn idle(&mut self, max: Duration, stop: &CancellationToken) -> Result<(), ReadError> {
        let tag = self.tag();
        self.client.enqueue_command(Command {
            tag: tag.clone(),
            body: CommandBody::Idle,
        });
        let deadline = tokio::time::Instant::now() + max;
        let mut want_done = false;
        let mut done_sent = false;
        loop {
            let ev = if done_sent {
                match tokio::time::timeout(self.limit, self.stream.next(&mut self.client)).await {
                    Ok(r) => r,
                    Err(_) => {
                        return Err(ReadError::Protocol("IMAP IDLE: no answer to DONE".into()));
                    }
                }
            } else {
                tokio::select! {
                    ev = self.stream.next(&mut self.client) => ev,
                    _ = tokio::time::sleep_until(deadline), if !want_done => {
                        want_done = true;
                        done_sent = self.client.set_idle_done().is_some();
                        continue;
                    }
                    _ = stop.cancelled(), if !want_done => {
                        want_done = true;
                        done_sent = self.client.set_idle_done().is_some();
                        continue;
                    }
                }
            };
            let ev = ev.map_err(|e| {
                ReadError::Protocol(format!("IMAP connection lost during IDLE: {e}"))
            })?;
            match ev {
                Event::IdleAccepted { .. } if want_done && !done_sent => {
                    done_sent = self.client.set_idle_done().is_some();
                }
                Event::IdleRejected { .. } => {
                    self.idle_refused = true;
                    return Ok(());
                }
                Event::DataReceived { .. } if !want_done => {
                    want_done = true;
                    done_sent = self.client.set_idle_done().is_some();
                }
                Event::StatusReceived {
                    status: Status::Tagged(Tagged { tag: t, .. }),
                } if t == tag => return Ok(()),
                Event::StatusReceived {
                    status: Status::Bye(bye),
                } => {
                    return Err(ReadError::Protocol(format!(
                        "IMAP server said BYE during IDLE: {}",
                        bye.text
                    )));
                }
                _ => {}
            }
        }
    }

    /// Every folder LIST names.
    pub async fn list_folders(&mut self) -> Result<Vec<ListedFolder>, ReadError> {
        let cmd = CommandBody::list("", "*")
            .map_err(|_| ReadError::Protocol("cannot encode LIST".into()))?;
        let data = self
            .exec(cmd)
            .await
            .map_err(|f| f.into_read_error("LIST"))?;
        Ok(data
            .into_iter()
            .filter_map(|d| match d {
                Data::List { items, mailbox, .. } => Some(ListedFolder {
                    name: folder_name(&mailbox),
                    attributes: items
                        .iter()
                        .map(|a| a.to_string().to_ascii_lowercase())
                        .collect(),
                }),
                _ => None,
            })
            .collect())
    }

    /// Selects `folder` (a name as LIST gave it) unless it is selected already.
    pub async fn select(&mut self, folder: &str) -> Result<(), ReadError> {
        if self.selected == folder {
            return Ok(());
        }
        let select = CommandBody::select(folder.as_bytes().to_vec())
            .map_err(|_| ReadError::Protocol(format!("cannot encode SELECT {folder}")))?;
        self.exec(select)
            .await
            .map_err(|f| f.into_read_error(&format!("SELECT {folder}")))?;
        self.selected = folder.to_string();
        Ok(())
    }

    /// This run's messages in every searched folder but INBOX; INBOX is
    /// selected again afterwards only when needed (by [`ImapSession::select`]).
    pub async fn scan_other_folders(
        &mut self,
        run: &RunId,
        caches: &mut std::collections::HashMap<String, ScanCache>,
    ) -> Result<Vec<FoundMessage>, ReadError> {
        let mut found = Vec::new();
        for folder in self.list_folders().await? {
            if !folder.searched() {
                continue;
            }
            self.select(&folder.name).await?;
            let cache = caches.entry(folder.name.clone()).or_default();
            found.extend(self.scan(run, cache).await?);
        }
        Ok(found)
    }

    /// [`ImapSession::delete`] in `folder`.
    pub async fn delete_in(
        &mut self,
        folder: &str,
        keys: &[String],
    ) -> Result<(usize, Option<String>), ReadError> {
        self.select(folder).await?;
        self.delete(keys).await
    }

    /// Flags exactly these UIDs `\Deleted` in the selected folder and
    /// expunges them: with UID EXPUNGE (UIDPLUS) when offered; otherwise with
    /// EXPUNGE only if no other message is flagged `\Deleted`, else the probes
    /// stay flagged.
    pub async fn delete(&mut self, keys: &[String]) -> Result<(usize, Option<String>), ReadError> {
        let uids: Vec<NonZeroU32> = keys.iter().filter_map(|k| k.parse().ok()).collect();
        if uids.is_empty() {
            return Ok((0, None));
        }
        let set = || {
            SequenceSet::try_from(uids.clone())
                .map_err(|_| ReadError::Protocol("empty UID set".into()))
        };
        let store = CommandBody::store(
            set()?,
            StoreType::Add,
            StoreResponse::Silent,
            vec![Flag::Deleted],
            true,
        )
        .map_err(|_| ReadError::Protocol("cannot encode STORE".into()))?;
        self.exec(store)
            .await
            .map_err(|f| f.into_read_error("STORE \\Deleted"))?;
        if self.has("UIDPLUS") {
            self.exec(CommandBody::ExpungeUid {
                sequence_set: set()?,
            })
            .await
            .map_err(|f| f.into_read_error("UID EXPUNGE"))?;
            return Ok((uids.len(), None));
        }
        let flagged = self
            .exec(CommandBody::search(
                None,
                Vec1::from(SearchKey::Deleted),
                true,
            ))
            .await
            .map_err(|f| f.into_read_error("SEARCH DELETED"))?;
        let others = flagged
            .into_iter()
            .flat_map(|d| match d {
                Data::Search(u, ..) => u,
                _ => Vec::new(),
            })
            .any(|u| !uids.contains(&u));
        if others {
            return Ok((
                0,
                Some(format!(
                    "{} probe message(s) flagged \\Deleted but not expunged: the server lacks UIDPLUS and other mail is flagged \\Deleted too",
                    uids.len()
                )),
            ));
        }
        self.exec(CommandBody::Expunge)
            .await
            .map_err(|f| f.into_read_error("EXPUNGE"))?;
        Ok((uids.len(), None))
    }

    pub async fn logout(mut self) -> Result<(), ReadError> {
        // The server answers BYE and closes; either is fine.
        let _ = self.exec(CommandBody::Logout).await;
        Ok(())
    }
}

/// A folder's name as a string (`INBOX`, or the bytes LIST sent; modified
/// UTF-7 names are shown as sent).
fn folder_name(m: &imap_next::imap_types::mailbox::Mailbox<'_>) -> String {
    match m {
        imap_next::imap_types::mailbox::Mailbox::Inbox => "INBOX".to_string(),
        imap_next::imap_types::mailbox::Mailbox::Other(o) => {
            String::from_utf8_lossy(o.as_ref()).into_owned()
        }
    }
}

/// Reads the greeting and does `STARTTLS` on the raw socket.
async fn starttls(
    tcp: tokio::net::TcpStream,
    limit: Duration,
) -> Result<tokio::net::TcpStream, String> {
    let work = async {
        let mut r = BufReader::new(tcp);
        let mut line = String::new();
        r.read_line(&mut line).await.map_err(|e| e.to_string())?;
        if !line.starts_with("* OK") {
            return Err(format!("unexpected greeting: {}", line.trim_end()));
        }
        r.get_mut()
            .write_all(b"s0 STARTTLS\r\n")
            .await
            .map_err(|e| e.to_string())?;
        loop {
            line.clear();
            if r.read_line(&mut line).await.map_err(|e| e.to_string())? == 0 {
                return Err("connection closed".into());
            }
            if let Some(rest) = line.strip_prefix("s0 ") {
                if rest.to_ascii_uppercase().starts_with("OK") {
                    break;
                }
                return Err(format!("server refused: {}", rest.trim_end()));
            }
        }
        if !r.buffer().is_empty() {
            return Err("server sent data after STARTTLS OK".into());
        }
        Ok(r.into_inner())
    };
    tokio::time::timeout(limit, work)
        .await
        .map_err(|_| format!("no answer within {} s", limit.as_secs_f64()))?
}

#[cfg(test)]
mod tests {
    use super::ListedFolder;

    fn folder(name: &str, attributes: &[&str]) -> ListedFolder {
        ListedFolder {
            name: name.to_string(),
            attributes: attributes.iter().map(|a| a.to_string()).collect(),
        }
    }

    #[test]
    fn searched_folders_skip_inbox_virtual_views_and_noselect() {
        assert!(folder("Junk", &["\\hasnochildren", "\\junk"]).searched());
        assert!(folder("Archive/2026", &[]).searched());
        assert!(!folder("INBOX", &[]).searched());
        assert!(!folder("inbox", &[]).searched());
        assert!(!folder("[Gmail]/All Mail", &["\\all"]).searched());
        assert!(!folder("Starred", &["\\flagged"]).searched());
        assert!(!folder("[Gmail]", &["\\noselect"]).searched());
        assert!(!folder("Gone", &["\\nonexistent"]).searched());
    }
}
