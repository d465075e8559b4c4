//! A runner for Dovecot imaptest's scripted tests (the format of
//! <https://imapwiki.org/ImapTest/ScriptedTests>), written for our own test suite:
//!
//! * [`script`] reads a script into command groups and expectations;
//! * [`args`] parses IMAP arguments, for scripts and replies alike;
//! * [`matcher`] compares a reply with an expectation (variables, directives);
//! * [`mbox`] serves the messages a script starts from;
//! * [`wire`] is one client connection;
//! * [`exec`] runs a script against a server.
#![allow(dead_code)]

pub mod args;
pub mod exec;
pub mod matcher;
pub mod mbox;
pub mod script;
pub mod wire;
