//! A minimal HTTP/1.1 client over `TcpStream`, and the message parsing that [`crate::Backend`]
//! shares with it.
//!
//! Enough for tests, no more: one request per connection (`Connection: close`), bodies framed by
//! `Content-Length`, `Transfer-Encoding: chunked`, or (responses only) the end of the stream.
//! Header names are lowercased when parsed.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::HarnessError;

/// How long a client waits to connect, and for each read or write, unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Upper bound for one header line, and for the number of header lines, to stop runaway reads.
const MAX_LINE: usize = 64 * 1024;
const MAX_HEADERS: usize = 256;

/// A parsed HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code, e.g. 200.
    pub status: u16,
    /// Header fields in arrival order; names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// Every value of header `name` (any case), in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().filter(|(k, _)| *k == name).map(|(_, v)| v.as_str()).collect()
    }

    /// The body as text (lossy UTF-8).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// An HTTP request to send; build with [`Request::get`] / [`Request::post`] and chain.
#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    timeout: Duration,
}

impl Request {
    /// A request with any method.
    pub fn new(method: &str, path: &str) -> Self {
        Request {
            method: method.to_string(),
            path: path.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// `GET path`.
    pub fn get(path: &str) -> Self {
        Request::new("GET", path)
    }

    /// `POST path` with a body.
    pub fn post(path: &str, body: impl Into<Vec<u8>>) -> Self {
        Request::new("POST", path).body(body)
    }

    /// Adds a header field (sent as given; `Host`, `Content-Length` and `Connection` are added
    /// unless set here).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets the connect / read / write timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The request as bytes on the wire.
    pub fn to_bytes(&self, addr: SocketAddr) -> Vec<u8> {
        let mut head = format!("{} {} HTTP/1.1\r\n", self.method, self.path);
        let has = |n: &str| self.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
        if !has("host") {
            head.push_str(&format!("Host: {addr}\r\n"));
        }
        for (k, v) in &self.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        let wants_length = !self.body.is_empty() || self.method == "POST" || self.method == "PUT";
        if wants_length && !has("content-length") && !has("transfer-encoding") {
            head.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        if !has("connection") {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }

    /// Sends the request to `addr` on a new connection and reads the whole response.
    pub fn send(&self, addr: SocketAddr) -> Result<Response, HarnessError> {
        let what = format!("{} {} to {addr}", self.method, self.path);
        let stream = TcpStream::connect_timeout(&addr, self.timeout)
            .map_err(|e| HarnessError::io(format!("connecting for {what}"), e))?;
        stream
            .set_read_timeout(Some(self.timeout))
            .and_then(|()| stream.set_write_timeout(Some(self.timeout)))
            .map_err(|e| HarnessError::io(format!("setting timeouts for {what}"), e))?;
        (&stream).write_all(&self.to_bytes(addr)).map_err(|e| HarnessError::io(format!("sending {what}"), e))?;
        let mut reader = BufReader::new(&stream);
        read_response(&mut reader, self.method == "HEAD")
            .map_err(|e| HarnessError::Http(format!("reading the response to {what}: {e}")))
    }
}

/// `GET path` on `addr`.
pub fn get(addr: SocketAddr, path: &str) -> Result<Response, HarnessError> {
    Request::get(path).send(addr)
}

/// `POST path` on `addr` with `body`.
pub fn post(addr: SocketAddr, path: &str, body: &[u8]) -> Result<Response, HarnessError> {
    Request::post(path, body).send(addr)
}

/// The first value of `name` (any case) among lowercased `headers`.
pub(crate) fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// Reads one CRLF- (or LF-) terminated line without the terminator. `Ok(None)` at a clean EOF.
pub(crate) fn read_line(r: &mut impl BufRead) -> Result<Option<String>, String> {
    let mut buf = Vec::new();
    let n = r.take(MAX_LINE as u64).read_until(b'\n', &mut buf).map_err(|e| e.to_string())?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() != Some(&b'\n') {
        return Err("line too long or connection closed mid-line".to_string());
    }
    buf.pop();
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    // Header values may carry obs-text (bytes of other encodings): kept, as U+FFFD.
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

/// Reads header lines up to the blank line; names lowercased, values trimmed.
pub(crate) fn read_headers(r: &mut impl BufRead) -> Result<Vec<(String, String)>, String> {
    let mut headers = Vec::new();
    loop {
        let line = read_line(r)?.ok_or("connection closed inside the header block")?;
        if line.is_empty() {
            return Ok(headers);
        }
        if headers.len() >= MAX_HEADERS {
            return Err("too many header lines".to_string());
        }
        let (k, v) = line.split_once(':').ok_or_else(|| format!("header line without a colon: {line:?}"))?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
}

/// How a body is delimited, from the headers.
pub(crate) enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
    None,
}

pub(crate) fn framing(headers: &[(String, String)], until_close_default: bool) -> Result<Framing, String> {
    if let Some(te) = find_header(headers, "transfer-encoding") {
        if te.to_ascii_lowercase().contains("chunked") {
            return Ok(Framing::Chunked);
        }
    }
    if let Some(cl) = find_header(headers, "content-length") {
        let n = cl.parse::<usize>().map_err(|_| format!("bad content-length {cl:?}"))?;
        return Ok(Framing::Length(n));
    }
    Ok(if until_close_default { Framing::UntilClose } else { Framing::None })
}

/// Reads a body framed as `framing` says; chunked trailers are read and dropped.
pub(crate) fn read_body(r: &mut impl BufRead, framing: Framing) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    match framing {
        Framing::None => {}
        Framing::Length(n) => {
            body.resize(n, 0);
            r.read_exact(&mut body).map_err(|e| format!("body of {n} bytes: {e}"))?;
        }
        Framing::UntilClose => {
            r.read_to_end(&mut body).map_err(|e| format!("body until close: {e}"))?;
        }
        Framing::Chunked => loop {
            let line = read_line(r)?.ok_or("connection closed inside a chunked body")?;
            let size_text = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_text, 16).map_err(|_| format!("bad chunk size line {line:?}"))?;
            if size == 0 {
                // Trailers, up to and including the blank line.
                read_headers(r)?;
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            r.read_exact(&mut body[start..]).map_err(|e| format!("chunk of {size} bytes: {e}"))?;
            let crlf = read_line(r)?.ok_or("connection closed after a chunk")?;
            if !crlf.is_empty() {
                return Err("chunk not followed by CRLF".to_string());
            }
        },
    }
    Ok(body)
}

/// Reads a whole response (status line, headers, body). Interim 1xx responses are skipped.
pub(crate) fn read_response(r: &mut impl BufRead, head_request: bool) -> Result<Response, String> {
    loop {
        let status_line = read_line(r)?.ok_or("connection closed before a status line")?;
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or("");
        if !version.starts_with("HTTP/1.") {
            return Err(format!("bad status line {status_line:?}"));
        }
        let status = parts
            .next()
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| format!("bad status line {status_line:?}"))?;
        let headers = read_headers(r)?;
        if (100..200).contains(&status) {
            continue;
        }
        let body = if head_request || status == 204 || status == 304 {
            Vec::new()
        } else {
            read_body(r, framing(&headers, true)?)?
        };
        return Ok(Response { status, headers, body });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<Response, String> {
        read_response(&mut BufReader::new(raw.as_bytes()), false)
    }

    #[test]
    fn content_length_body() -> Result<(), String> {
        let r = parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhelloEXTRA")?;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-a"), Some("b"));
        assert_eq!(r.header("X-A"), Some("b"));
        assert_eq!(r.body_text(), "hello");
        Ok(())
    }

    #[test]
    fn chunked_body_with_trailer() -> Result<(), String> {
        let r = parse(
            "HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n\
             4\r\nwasm\r\n6;ext=1\r\nixer!!\r\n0\r\nTrailer: x\r\n\r\n",
        )?;
        assert_eq!(r.status, 403);
        assert_eq!(r.body_text(), "wasmixer!!");
        Ok(())
    }

    #[test]
    fn until_close_and_interim() -> Result<(), String> {
        let r = parse("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\nServer: x\n\nrest of it")?;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("server"), Some("x"));
        assert_eq!(r.body_text(), "rest of it");
        Ok(())
    }

    #[test]
    fn malformed() {
        assert!(parse("").is_err());
        assert!(parse("SPDY 200\r\n\r\n").is_err());
        assert!(parse("HTTP/1.1 200 OK\r\nbad header\r\n\r\n").is_err());
        assert!(parse("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort").is_err());
    }

    #[test]
    fn request_bytes() -> Result<(), String> {
        let addr: SocketAddr = "127.0.0.1:80".parse().map_err(|e| format!("{e}"))?;
        let raw = Request::post("/p?q=1", "abc").header("X-Y", "z").to_bytes(addr);
        let text = String::from_utf8(raw).map_err(|e| e.to_string())?;
        assert_eq!(
            text,
            "POST /p?q=1 HTTP/1.1\r\nHost: 127.0.0.1:80\r\nX-Y: z\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc"
        );
        Ok(())
    }
}
