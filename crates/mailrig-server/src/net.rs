//! The byte stream under every protocol session: plain TCP that can be
//! upgraded to TLS in place (STARTTLS / STLS), or TLS from the first byte.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// A client connection, plain or TLS.
#[derive(Debug)]
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Left behind while an upgrade is in progress or after it failed.
    Closed,
}

impl Stream {
    /// Runs the TLS handshake on a plain stream. On failure the stream is gone.
    pub async fn upgrade(self, config: Arc<ServerConfig>) -> io::Result<Stream> {
        match self {
            Stream::Plain(tcp) => {
                let tls = TlsAcceptor::from(config).accept(tcp).await?;
                Ok(Stream::Tls(Box::new(tls)))
            }
            other => Ok(other),
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "connection closed")
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Closed => Poll::Ready(Err(closed())),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Closed => Poll::Ready(Err(closed())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s).poll_flush(cx),
            Stream::Closed => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Closed => Poll::Ready(Ok(())),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Closed => Poll::Ready(Err(closed())),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
            Stream::Closed => false,
        }
    }
}

/// A plain-TCP connection's socket, lent by the driver to a writer outside
/// the session while the session waits (see [`crate::driver::Borrower`]):
/// it writes without blocking and never closes the socket. Not `Clone`: the
/// borrower hands it back when the driver reclaims it, before the driver
/// writes to the connection or closes it.
#[derive(Debug)]
pub struct Lent(std::os::fd::RawFd);

impl Lent {
    pub(crate) fn of(tcp: &TcpStream) -> Lent {
        use std::os::fd::AsRawFd as _;
        Lent(tcp.as_raw_fd())
    }

    /// Writes what the socket takes now, without waiting: `Ok(n)` may be
    /// short, and `WouldBlock` means its send buffer is full.
    pub fn try_write(&self, bytes: &[u8]) -> io::Result<usize> {
        use std::io::Write as _;
        use std::os::fd::FromRawFd as _;
        // SAFETY: the driver lends the socket only while it keeps the stream
        // open, and takes the `Lent` back before it closes the stream (see
        // `driver::read`), so the descriptor is this connection's for as
        // long as a `Lent` of it exists. `ManuallyDrop`: this is a borrow of
        // the descriptor, never closed here. tokio made the socket
        // non-blocking, and std's write sends with MSG_NOSIGNAL.
        let tcp = std::mem::ManuallyDrop::new(unsafe { std::net::TcpStream::from_raw_fd(self.0) });
        (&*tcp).write(bytes)
    }
}
