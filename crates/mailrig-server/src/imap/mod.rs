//! IMAP4rev1 server over the message store (to be built).
