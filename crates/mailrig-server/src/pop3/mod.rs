//! POP3 server over the message store (to be built).
