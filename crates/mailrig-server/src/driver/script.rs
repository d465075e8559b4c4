//! Sans-I/O exchanges for session tests: plays a table of (client bytes,
//! expected transcript) pairs through a [`Session`] exactly as the driver
//! would, without a socket. The transcript is what the server wrote, with
//! the steps that are not plain I/O marked in brackets where they happen:
//! `[pause 250ms]`, `[tarpit 100]`, `[starttls]`, `[blocking]`, `[close]`,
//! `[abort]`.

use std::sync::Arc;

use bytes::BytesMut;

use super::{Session, Step};
use crate::state::ServerState;

/// A world for session tests: the scenario text, a memory store, fresh TLS.
pub fn state(toml: &str) -> Arc<ServerState> {
    let s = mailrig_core::Scenario::parse(toml, "<test>").expect("test scenario");
    let world = Arc::clone(&s.world);
    let store = Arc::new(mailrig_core::Store::memory(&world));
    let tls = Arc::new(crate::tls::TlsMaterial::generate("mx.test").expect("tls"));
    ServerState::new(world, store, tls, s.faults.clone())
}

/// Plays `script`; the first pair's client bytes are usually empty (the
/// greeting). Panics with the exchange's index on the first difference.
/// An expected line ending in `*` matches any line with that prefix.
pub fn play<S: Session>(session: &mut S, script: &[(&[u8], &str)]) {
    let mut out = Vec::new();
    let mut inbuf = BytesMut::new();
    let mut step = session.greeting(&mut out);
    let mut closed = false;
    for (i, (client, want)) in script.iter().enumerate() {
        let mut transcript = String::new();
        if i > 0 || !client.is_empty() {
            assert!(!closed, "exchange {i}: the session already closed");
            inbuf.extend_from_slice(client);
            step = session.input(&mut inbuf, &mut out);
        }
        step = settle(session, step, &mut inbuf, &mut out, &mut transcript);
        closed = matches!(step, Step::Close | Step::Abort);
        assert!(
            matches_transcript(&transcript, want),
            "exchange {i}: client sent {:?}\n got: {transcript:?}\nwant: {want:?}",
            String::from_utf8_lossy(client)
        );
    }
}

/// Carries out steps until the session waits for input or closes.
fn settle<S: Session>(
    session: &mut S,
    mut step: Step,
    inbuf: &mut BytesMut,
    out: &mut Vec<u8>,
    transcript: &mut String,
) -> Step {
    loop {
        step = match step {
            Step::Read | Step::Watch(_) | Step::Lend(..) => break,
            Step::Continue | Step::Write => session.input(inbuf, out),
            Step::Pause { send_first, delay } => {
                let first = send_first.min(out.len());
                transcript.push_str(&String::from_utf8_lossy(&out[..first]));
                out.drain(..first);
                transcript.push_str(&format!("[pause {}ms]", delay.as_millis()));
                session.input(inbuf, out)
            }
            Step::Tarpit(bps) => {
                transcript.push_str(&format!("[tarpit {bps}]"));
                session.input(inbuf, out)
            }
            Step::StartTls(_) => {
                transcript.push_str(&String::from_utf8_lossy(out));
                out.clear();
                transcript.push_str("[starttls]");
                inbuf.clear();
                session.tls_started();
                Step::Read
            }
            Step::Blocking => {
                transcript.push_str("[blocking]");
                session.run_blocking(out)
            }
            Step::Close => {
                transcript.push_str(&String::from_utf8_lossy(out));
                out.clear();
                transcript.push_str("[close]");
                return Step::Close;
            }
            Step::Abort => {
                out.clear();
                transcript.push_str("[abort]");
                return Step::Abort;
            }
        };
    }
    transcript.push_str(&String::from_utf8_lossy(out));
    out.clear();
    step
}

fn matches_transcript(got: &str, want: &str) -> bool {
    let got: Vec<&str> = got.split_inclusive('\n').collect();
    let want: Vec<&str> = want.split_inclusive('\n').collect();
    got.len() == want.len()
        && got
            .iter()
            .zip(&want)
            .all(|(g, w)| match w.trim_end().strip_suffix('*') {
                Some(prefix) => g.starts_with(prefix),
                None => g == w,
            })
}
