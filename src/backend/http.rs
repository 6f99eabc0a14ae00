//! A minimal HTTP/1.1 client for etcd's gRPC JSON gateway (`/v3/...`).
//!
//! Why hand-written: the `etcd` backend talks to etcd through the gateway so
//! that `cargo build` needs no `protoc` (etcd-client's build script does),
//! and what it needs from HTTP is tiny — `POST` with a JSON body on one
//! keep-alive connection, replies with `Content-Length` or chunked bodies,
//! and reading a chunked stream line by line (Watch). hyper or reqwest would
//! add a connection pool per node we would then have to defeat (each virtual
//! node must own its connections, and a request abandoned at the acquire
//! timeout must close exactly its connection). Buffers are reused, so a
//! request costs no allocation once they have grown.

use std::io::Write as _;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Largest response body accepted (etcd's answers here are a few hundred bytes).
const MAX_BODY: usize = 4 << 20;

/// Why an HTTP exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Connecting, reading or writing failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The server answered something that is not HTTP/1.1 as expected.
    #[error("bad HTTP response: {0}")]
    Protocol(&'static str),
    /// The connection did not open in time.
    #[error("connect timed out")]
    ConnectTimeout,
}

/// One HTTP/1.1 connection.
#[derive(Debug)]
pub struct HttpConn {
    io: BufReader<TcpStream>,
    host: String,
    out: Vec<u8>,
    line: Vec<u8>,
    /// Body of the last response (or the data of the last stream chunks).
    pub body: Vec<u8>,
    /// Bytes of `body` already handed out as stream lines.
    consumed: usize,
    /// The server said it will close the connection after this response.
    pub closing: bool,
    /// The stream's last chunk has been read.
    ended: bool,
    /// A request was sent and its answer not read to the end (the caller
    /// dropped the future): the connection is out of step and must go.
    pub busy: bool,
}

impl HttpConn {
    /// Connect to `addr` (`host:port`); `host` is sent as the Host header.
    pub async fn connect(addr: &str, host: &str, timeout: Duration) -> Result<Self, HttpError> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| HttpError::ConnectTimeout)??;
        stream.set_nodelay(true)?;
        Ok(HttpConn {
            io: BufReader::with_capacity(16 * 1024, stream),
            host: host.to_string(),
            out: Vec::with_capacity(512),
            line: Vec::with_capacity(256),
            body: Vec::with_capacity(1024),
            consumed: 0,
            closing: false,
            ended: false,
            busy: false,
        })
    }

    /// Send `POST path` with a JSON body.
    pub async fn send(&mut self, path: &str, json: &[u8]) -> Result<(), HttpError> {
        self.out.clear();
        // Writing into a Vec cannot fail.
        let _ = write!(
            self.out,
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.host,
            json.len()
        );
        self.out.extend_from_slice(json);
        self.io.get_mut().write_all(&self.out).await?;
        Ok(())
    }

    /// `POST path` and read the whole answer into `body`; the status code.
    pub async fn post(&mut self, path: &str, json: &[u8]) -> Result<u16, HttpError> {
        self.busy = true;
        self.send(path, json).await?;
        let (status, chunked, len) = self.head().await?;
        self.body.clear();
        self.consumed = 0;
        if chunked {
            while self.chunk().await? {}
        } else if let Some(n) = len {
            if n > MAX_BODY {
                return Err(HttpError::Protocol("body too large"));
            }
            self.body.resize(n, 0);
            self.io.read_exact(&mut self.body).await?;
        } else {
            self.closing = true;
            self.io.read_to_end(&mut self.body).await?;
        }
        self.busy = false;
        Ok(status)
    }

    /// `POST path` and read only the status line and headers: the body is a
    /// chunked stream read with [`HttpConn::next_line`].
    pub async fn open_stream(&mut self, path: &str, json: &[u8]) -> Result<u16, HttpError> {
        self.send(path, json).await?;
        let (status, chunked, _) = self.head().await?;
        self.body.clear();
        self.consumed = 0;
        self.ended = false;
        if !chunked {
            return Err(HttpError::Protocol("expected a chunked stream"));
        }
        Ok(status)
    }

    /// The next newline-terminated message of a stream opened with
    /// [`HttpConn::open_stream`], without the newline; `None` at its end.
    pub async fn next_line(&mut self) -> Result<Option<&[u8]>, HttpError> {
        loop {
            if let Some(i) = self.body[self.consumed..].iter().position(|&b| b == b'\n') {
                let start = self.consumed;
                self.consumed += i + 1;
                return Ok(Some(&self.body[start..start + i]));
            }
            if self.consumed > 0 {
                self.body.drain(..self.consumed);
                self.consumed = 0;
            }
            if self.ended {
                return Ok(None);
            }
            if !self.chunk().await? {
                self.ended = true;
                if self.body.is_empty() {
                    return Ok(None);
                }
                self.body.push(b'\n');
            }
        }
    }

    async fn read_line(&mut self) -> Result<(), HttpError> {
        self.line.clear();
        let n = self.io.read_until(b'\n', &mut self.line).await?;
        if n == 0 {
            return Err(HttpError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        while matches!(self.line.last(), Some(b'\n' | b'\r')) {
            self.line.pop();
        }
        Ok(())
    }

    /// Status line and headers: (status, chunked, content length).
    async fn head(&mut self) -> Result<(u16, bool, Option<usize>), HttpError> {
        self.read_line().await?;
        let status = self
            .line
            .strip_prefix(b"HTTP/1.1 ")
            .or_else(|| self.line.strip_prefix(b"HTTP/1.0 "))
            .and_then(|r| r.get(..3))
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| d.parse::<u16>().ok())
            .ok_or(HttpError::Protocol("no status line"))?;
        let (mut chunked, mut len) = (false, None);
        loop {
            self.read_line().await?;
            if self.line.is_empty() {
                break;
            }
            let Some(colon) = self.line.iter().position(|&b| b == b':') else {
                continue;
            };
            let (name, value) = self.line.split_at(colon);
            let value = value[1..].trim_ascii();
            if name.eq_ignore_ascii_case(b"content-length") {
                len = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok());
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                chunked = value.eq_ignore_ascii_case(b"chunked");
            } else if name.eq_ignore_ascii_case(b"connection") {
                self.closing = value.eq_ignore_ascii_case(b"close");
            }
        }
        Ok((status, chunked, len))
    }

    /// Append the next chunk to `body`; false after the last (empty) chunk.
    async fn chunk(&mut self) -> Result<bool, HttpError> {
        self.read_line().await?;
        let hex = self
            .line
            .split(|&b| b == b';')
            .next()
            .unwrap_or_default()
            .trim_ascii();
        let size = std::str::from_utf8(hex)
            .ok()
            .and_then(|h| usize::from_str_radix(h, 16).ok())
            .ok_or(HttpError::Protocol("bad chunk size"))?;
        if size == 0 {
            // Trailers, up to the empty line.
            loop {
                self.read_line().await?;
                if self.line.is_empty() {
                    return Ok(false);
                }
            }
        }
        if self.body.len() + size > MAX_BODY {
            return Err(HttpError::Protocol("body too large"));
        }
        let at = self.body.len();
        self.body.resize(at + size, 0);
        self.io.read_exact(&mut self.body[at..]).await?;
        self.read_line().await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    async fn serve(reply: &'static [u8]) -> String {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            s.write_all(reply).await.unwrap();
        });
        addr
    }

    #[tokio::test]
    async fn reads_length_and_chunked_bodies_and_stream_lines() {
        let addr = serve(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n{\"a\"").await;
        let mut c = HttpConn::connect(&addr, "x", Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(c.post("/p", b"{}").await.unwrap(), 200);
        assert_eq!(c.body, b"{\"a\"");

        let addr = serve(
            b"HTTP/1.1 500 X\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=1\r\nde\r\n0\r\n\r\n",
        )
        .await;
        let mut c = HttpConn::connect(&addr, "x", Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(c.post("/p", b"{}").await.unwrap(), 500);
        assert_eq!(c.body, b"abcde");

        let addr = serve(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nab\nc\r\n3\r\nd\ne\r\n0\r\n\r\n",
        )
        .await;
        let mut c = HttpConn::connect(&addr, "x", Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(c.open_stream("/w", b"{}").await.unwrap(), 200);
        assert_eq!(c.next_line().await.unwrap(), Some(&b"ab"[..]));
        assert_eq!(c.next_line().await.unwrap(), Some(&b"cd"[..]));
        assert_eq!(c.next_line().await.unwrap(), Some(&b"e"[..]));
        assert_eq!(c.next_line().await.unwrap(), None);
    }
}
