//! TCP connections the sandbox can abort mid-request, for the `reset` faults.
//!
//! [`ResettableListener`] wraps the listener given to `start`; every accepted socket becomes a
//! [`ResettableStream`] sharing a flag with the [`Connection`] that handlers receive as
//! `ConnectInfo`. [`Connection::reset`] raises the flag: from then on every read, write, flush
//! and shutdown of that socket fails with `ConnectionReset`, so hyper gives up on the connection
//! without writing the handler's response, and the socket, set to `SO_LINGER 0`, closes with a
//! TCP RST. The client sees a connection error (reset by peer), never an HTTP status. Every
//! request in flight on that connection is lost with it, as with a real reset. Without a reset
//! the wrapper only forwards.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// A TCP listener whose connections can be reset from a handler.
#[derive(Debug)]
pub(crate) struct ResettableListener(pub TcpListener);

impl Listener for ResettableListener {
    type Io = ResettableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        // axum's own loop: retries, and backs off on errors such as too many open files.
        let (stream, addr) = Listener::accept(&mut self.0).await;
        let stream = ResettableStream {
            inner: stream,
            reset: Arc::new(AtomicBool::new(false)),
            aborted: false,
        };
        (stream, addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// An accepted socket that fails every operation once its [`Connection`] was reset.
#[derive(Debug)]
pub(crate) struct ResettableStream {
    inner: TcpStream,
    reset: Arc<AtomicBool>,
    /// `SO_LINGER 0` already set.
    aborted: bool,
}

impl ResettableStream {
    /// `Some(error)` once reset: the socket is then set to close with an RST.
    fn failure(&mut self) -> Option<io::Error> {
        if !self.reset.load(Ordering::Acquire) {
            return None;
        }
        if !self.aborted {
            self.aborted = true;
            if let Err(error) = self.inner.set_zero_linger() {
                tracing::debug!(message = "Cannot set SO_LINGER 0.", %error);
            }
        }
        Some(io::Error::new(
            io::ErrorKind::ConnectionReset,
            "sandbox fault: connection reset",
        ))
    }
}

impl AsyncRead for ResettableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.failure() {
            Some(error) => Poll::Ready(Err(error)),
            None => Pin::new(&mut self.inner).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ResettableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.failure() {
            Some(error) => Poll::Ready(Err(error)),
            None => Pin::new(&mut self.inner).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.failure() {
            Some(error) => Poll::Ready(Err(error)),
            None => Pin::new(&mut self.inner).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.failure() {
            Some(error) => Poll::Ready(Err(error)),
            None => Pin::new(&mut self.inner).poll_flush(cx),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.failure() {
            Some(error) => Poll::Ready(Err(error)),
            None => Pin::new(&mut self.inner).poll_shutdown(cx),
        }
    }
}

/// The handler's side of one connection (`ConnectInfo<Connection>`).
#[derive(Debug, Clone)]
pub(crate) struct Connection {
    reset: Arc<AtomicBool>,
}

impl Connection {
    /// Makes the connection fail: whatever the handler then returns is never written.
    pub(crate) fn reset(&self) {
        self.reset.store(true, Ordering::Release);
    }
}

impl Connected<IncomingStream<'_, ResettableListener>> for Connection {
    fn connect_info(stream: IncomingStream<'_, ResettableListener>) -> Self {
        Self {
            reset: stream.io().reset.clone(),
        }
    }
}
