//! A minimal Redis (RESP2) connection: just what the lock cycle needs.
//!
//! lockstorm speaks RESP itself rather than through a client crate so that a
//! lock cycle costs no allocation and no hop through a multiplexer task:
//! commands are encoded into a reused write buffer, replies are parsed in
//! place from a reused read buffer, and each virtual node owns its socket.
//! Replies the hot path reads are integers, nil, statuses and short bulk
//! strings, returned as [`Frame`]s that borrow the read buffer.
//!
//! A connection whose request was abandoned half-way (a timeout, a dropped
//! future) has an unknown reply pending, so callers drop it and reconnect.

use std::io;
use std::ops::Range;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Where and how to connect: parsed from `redis://[[user]:password@]host[:port][/db]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The URL as given (contains the password, if any: never print it; use `shown`).
    pub shown: String,
    /// host:port
    pub addr: String,
    /// AUTH user (Redis 6 ACL), if given.
    pub user: Option<String>,
    /// AUTH password, if given.
    pub password: Option<String>,
    /// SELECT db, if not 0.
    pub db: u32,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl Endpoint {
    /// The same endpoint reached at `addr` (the fault proxy's listener).
    pub fn via(&self, addr: String) -> Endpoint {
        Endpoint {
            addr,
            ..self.clone()
        }
    }

    /// Parse a `redis://` URL. The error says what is wrong, without the password.
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let shown = super::redact(url);
        let rest = url.strip_prefix("redis://").ok_or_else(|| {
            format!("`{shown}` is not a redis:// URL (e.g. redis://127.0.0.1:6379)")
        })?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(u) => match u.split_once(':') {
                Some((user, pass)) => (
                    (!user.is_empty()).then(|| user.to_string()),
                    Some(pass.to_string()),
                ),
                None => (None, Some(u.to_string())),
            },
        };
        if hostport.is_empty() {
            return Err(format!("`{shown}` names no host"));
        }
        let has_port = match hostport.rfind(']') {
            Some(b) => hostport[b..].contains(':'),
            None => hostport.contains(':'),
        };
        let addr = if has_port {
            let (_, port) = hostport.rsplit_once(':').unwrap_or_default();
            port.parse::<u16>()
                .map_err(|_| format!("`{shown}`: port `{port}` is not a number from 1 to 65535"))?;
            hostport.to_string()
        } else {
            format!("{hostport}:6379")
        };
        let db = if path.is_empty() {
            0
        } else {
            path.parse::<u32>()
                .map_err(|_| format!("`{shown}`: database `{path}` is not a number"))?
        };
        Ok(Endpoint {
            shown,
            addr,
            user,
            password,
            db,
        })
    }
}

/// A connection failure or a reply that makes no sense.
#[derive(Debug)]
pub enum RespError {
    /// Socket error, closed connection or timeout: the connection is dead.
    Io(io::Error),
    /// The server sent something that is not RESP.
    Protocol(&'static str),
    /// The server answered with an error reply.
    Server(String),
}

impl std::fmt::Display for RespError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RespError::Io(e) => write!(f, "{e}"),
            RespError::Protocol(m) => write!(f, "protocol error: {m}"),
            RespError::Server(m) => write!(f, "server error: {m}"),
        }
    }
}

impl From<io::Error> for RespError {
    fn from(e: io::Error) -> Self {
        RespError::Io(e)
    }
}

/// One reply, borrowing the connection's read buffer until the next read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// `+OK` and friends.
    Simple(Range<usize>),
    /// `-ERR ...`
    Error(Range<usize>),
    /// `:42`
    Int(i64),
    /// `$n` bulk string.
    Bulk(Range<usize>),
    /// `$-1` or `*-1`.
    Nil,
    /// `*n`: the next n frames are its elements.
    Array(usize),
}

/// An owned reply, for the few calls off the hot path (SCAN, SCRIPT LOAD).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Status reply.
    Simple(String),
    /// Integer reply.
    Int(i64),
    /// Bulk string.
    Bulk(Vec<u8>),
    /// Nil.
    Nil,
    /// Array.
    Array(Vec<Value>),
}

const READ_CHUNK: usize = 16 * 1024;

/// One TCP connection speaking RESP2.
#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    wbuf: Vec<u8>,
    rbuf: Vec<u8>,
    rpos: usize,
    rend: usize,
}

impl Conn {
    /// Connect, AUTH and SELECT as the endpoint says, within `timeout`.
    pub async fn connect(ep: &Endpoint, timeout: Duration) -> Result<Conn, RespError> {
        let open = async {
            let stream = TcpStream::connect(&ep.addr).await?;
            stream.set_nodelay(true)?;
            let mut c = Conn {
                stream,
                wbuf: Vec::with_capacity(512),
                rbuf: vec![0; READ_CHUNK],
                rpos: 0,
                rend: 0,
            };
            if let Some(pass) = &ep.password {
                match &ep.user {
                    Some(user) => c
                        .begin(3)
                        .arg(b"AUTH")
                        .arg(user.as_bytes())
                        .arg(pass.as_bytes()),
                    None => c.begin(2).arg(b"AUTH").arg(pass.as_bytes()),
                };
                c.simple_ok().await?;
            }
            if ep.db != 0 {
                c.begin(2).arg(b"SELECT").arg_u64(u64::from(ep.db));
                c.simple_ok().await?;
            }
            Ok::<_, RespError>(c)
        };
        match tokio::time::timeout(timeout, open).await {
            Ok(r) => r,
            Err(_) => Err(RespError::Io(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no answer within {}ms", timeout.as_millis()),
            ))),
        }
    }

    /// Start a command of `n` arguments (the command name counts).
    pub fn begin(&mut self, n: usize) -> &mut Self {
        self.wbuf.push(b'*');
        push_u64(&mut self.wbuf, n as u64);
        self.wbuf.extend_from_slice(b"\r\n");
        self
    }

    /// Append one argument.
    pub fn arg(&mut self, a: &[u8]) -> &mut Self {
        self.arg_parts(a, b"")
    }

    /// Append one argument made of `a` followed by `b` (a key and a suffix).
    pub fn arg_parts(&mut self, a: &[u8], b: &[u8]) -> &mut Self {
        self.wbuf.push(b'$');
        push_u64(&mut self.wbuf, (a.len() + b.len()) as u64);
        self.wbuf.extend_from_slice(b"\r\n");
        self.wbuf.extend_from_slice(a);
        self.wbuf.extend_from_slice(b);
        self.wbuf.extend_from_slice(b"\r\n");
        self
    }

    /// Append a number as a decimal argument.
    pub fn arg_u64(&mut self, v: u64) -> &mut Self {
        let mut digits = [0u8; 20];
        let s = fmt_u64(v, &mut digits);
        self.arg(s)
    }

    /// Send everything appended since the last send.
    pub async fn send(&mut self) -> Result<(), RespError> {
        let r = self.stream.write_all(&self.wbuf).await;
        self.wbuf.clear();
        r.map_err(RespError::Io)
    }

    /// Send the pending command and read its reply.
    pub async fn call(&mut self) -> Result<Frame, RespError> {
        self.send().await?;
        self.frame().await
    }

    /// Read the next reply frame.
    pub async fn frame(&mut self) -> Result<Frame, RespError> {
        loop {
            if let Some((frame, used)) = parse(&self.rbuf[self.rpos..self.rend])? {
                let base = self.rpos;
                self.rpos += used;
                if self.rpos == self.rend {
                    self.rpos = 0;
                    self.rend = 0;
                }
                return Ok(match frame {
                    Frame::Simple(r) => Frame::Simple(r.start + base..r.end + base),
                    Frame::Error(r) => Frame::Error(r.start + base..r.end + base),
                    Frame::Bulk(r) => Frame::Bulk(r.start + base..r.end + base),
                    f => f,
                });
            }
            self.fill().await?;
        }
    }

    /// The bytes of a frame's range.
    pub fn bytes(&self, r: &Range<usize>) -> &[u8] {
        &self.rbuf[r.clone()]
    }

    /// Read more bytes, compacting or growing the buffer as needed.
    async fn fill(&mut self) -> Result<(), RespError> {
        if self.rpos > 0 {
            self.rbuf.copy_within(self.rpos..self.rend, 0);
            self.rend -= self.rpos;
            self.rpos = 0;
        }
        if self.rend == self.rbuf.len() {
            self.rbuf.resize(self.rbuf.len() * 2, 0);
        }
        let n = self.stream.read(&mut self.rbuf[self.rend..]).await?;
        if n == 0 {
            return Err(RespError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            )));
        }
        self.rend += n;
        Ok(())
    }

    /// Send the pending command; expect `+OK` (or any status).
    pub async fn simple_ok(&mut self) -> Result<(), RespError> {
        match self.call().await? {
            Frame::Simple(_) => Ok(()),
            f => Err(self.unexpected(f)),
        }
    }

    /// Send the pending command; expect an integer.
    pub async fn int(&mut self) -> Result<i64, RespError> {
        match self.call().await? {
            Frame::Int(i) => Ok(i),
            f => Err(self.unexpected(f)),
        }
    }

    /// Turn a frame the caller did not expect into an error (server errors
    /// keep their text).
    pub fn unexpected(&self, f: Frame) -> RespError {
        match f {
            Frame::Error(r) => {
                RespError::Server(String::from_utf8_lossy(self.bytes(&r)).into_owned())
            }
            _ => RespError::Protocol("unexpected reply type"),
        }
    }

    /// Read one whole reply as an owned value (off the hot path).
    pub async fn value(&mut self) -> Result<Value, RespError> {
        let mut stack: Vec<(usize, Vec<Value>)> = Vec::new();
        loop {
            let f = self.frame().await?;
            let v = match f {
                Frame::Simple(r) => {
                    Value::Simple(String::from_utf8_lossy(self.bytes(&r)).into_owned())
                }
                Frame::Error(r) => {
                    return Err(RespError::Server(
                        String::from_utf8_lossy(self.bytes(&r)).into_owned(),
                    ));
                }
                Frame::Int(i) => Value::Int(i),
                Frame::Bulk(r) => Value::Bulk(self.bytes(&r).to_vec()),
                Frame::Nil => Value::Nil,
                Frame::Array(0) => Value::Array(Vec::new()),
                Frame::Array(n) => {
                    stack.push((n, Vec::with_capacity(n.min(1024))));
                    continue;
                }
            };
            let mut v = v;
            loop {
                match stack.last_mut() {
                    None => return Ok(v),
                    Some((n, items)) => {
                        items.push(v);
                        if items.len() < *n {
                            break;
                        }
                        let (_, items) = stack.pop().unwrap_or_default();
                        v = Value::Array(items);
                    }
                }
            }
        }
    }
}

/// Parse one frame at the start of `buf`: `None` if incomplete, else the
/// frame (ranges relative to `buf`) and the bytes it used.
fn parse(buf: &[u8]) -> Result<Option<(Frame, usize)>, RespError> {
    let Some(&kind) = buf.first() else {
        return Ok(None);
    };
    let Some(eol) = find_crlf(&buf[1..]) else {
        return Ok(None);
    };
    let line = 1..1 + eol;
    let after = 1 + eol + 2;
    Ok(Some(match kind {
        b'+' => (Frame::Simple(line), after),
        b'-' => (Frame::Error(line), after),
        b':' => (Frame::Int(parse_i64(&buf[line])?), after),
        b'$' => {
            let n = parse_i64(&buf[line])?;
            if n < 0 {
                (Frame::Nil, after)
            } else {
                let n = usize::try_from(n).map_err(|_| RespError::Protocol("bulk length"))?;
                if buf.len() < after + n + 2 {
                    return Ok(None);
                }
                (Frame::Bulk(after..after + n), after + n + 2)
            }
        }
        b'*' => {
            let n = parse_i64(&buf[line])?;
            if n < 0 {
                (Frame::Nil, after)
            } else {
                (
                    Frame::Array(
                        usize::try_from(n).map_err(|_| RespError::Protocol("array length"))?,
                    ),
                    after,
                )
            }
        }
        _ => return Err(RespError::Protocol("unknown reply type byte")),
    }))
}

fn find_crlf(b: &[u8]) -> Option<usize> {
    b.windows(2).position(|w| w == b"\r\n")
}

fn parse_i64(b: &[u8]) -> Result<i64, RespError> {
    let (neg, digits) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() {
        return Err(RespError::Protocol("empty number"));
    }
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return Err(RespError::Protocol("bad number"));
        }
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add(i64::from(d - b'0')))
            .ok_or(RespError::Protocol("number overflow"))?;
    }
    Ok(if neg { -v } else { v })
}

/// Format `v` in decimal into `buf`, returning the digits.
pub fn fmt_u64(mut v: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    &buf[i..]
}

fn push_u64(out: &mut Vec<u8>, v: u64) {
    let mut digits = [0u8; 20];
    out.extend_from_slice(fmt_u64(v, &mut digits));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_reply_type_and_waits_for_incomplete_ones() {
        assert_eq!(parse(b"+OK\r\n").unwrap(), Some((Frame::Simple(1..3), 5)));
        assert_eq!(parse(b"-ERR x\r\n").unwrap(), Some((Frame::Error(1..6), 8)));
        assert_eq!(parse(b":-42\r\n").unwrap(), Some((Frame::Int(-42), 6)));
        assert_eq!(
            parse(b"$3\r\nabc\r\n").unwrap(),
            Some((Frame::Bulk(4..7), 9))
        );
        assert_eq!(parse(b"$-1\r\n").unwrap(), Some((Frame::Nil, 5)));
        assert_eq!(parse(b"*2\r\n").unwrap(), Some((Frame::Array(2), 4)));
        assert_eq!(parse(b"$3\r\nab").unwrap(), None);
        assert_eq!(parse(b":12").unwrap(), None);
        assert_eq!(parse(b"").unwrap(), None);
        assert!(parse(b"?x\r\n").is_err());
        assert!(parse(b":1x\r\n").is_err());
        assert!(parse(b":99999999999999999999\r\n").is_err());
    }

    #[test]
    fn endpoints_parse_with_auth_db_and_default_port() {
        let e = Endpoint::parse("redis://127.0.0.1:7001").unwrap();
        assert_eq!(
            (e.addr.as_str(), e.db, e.password.is_none()),
            ("127.0.0.1:7001", 0, true)
        );
        let e = Endpoint::parse("redis://:s3cret@localhost/2").unwrap();
        assert_eq!(e.addr, "localhost:6379");
        assert_eq!(e.db, 2);
        assert_eq!(e.password.as_deref(), Some("s3cret"));
        assert!(!format!("{e:?}").contains("s3cret"));
        let e = Endpoint::parse("redis://app:pw@h:1").unwrap();
        assert_eq!(
            (e.user.as_deref(), e.password.as_deref()),
            (Some("app"), Some("pw"))
        );
        let err = Endpoint::parse("redis://u:topsecret@h:notaport").unwrap_err();
        assert!(
            err.contains("notaport") && !err.contains("topsecret"),
            "{err}"
        );
        assert!(Endpoint::parse("http://h:1").is_err());
        assert!(Endpoint::parse("redis://h/x").is_err());
    }

    #[test]
    fn numbers_format_in_decimal_without_allocating() {
        let mut w = Vec::new();
        push_u64(&mut w, 0);
        push_u64(&mut w, 18_446_744_073_709_551_615);
        assert_eq!(w, b"018446744073709551615");
    }
}
