//! A minimal HTTP/1.1 client over std's TcpStream: enough for Envoy's admin API and for the
//! fixed-rate latency probe (keep-alive, `Content-Length` bodies).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// One keep-alive connection.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// A parsed response.
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Conn {
    pub fn connect(addr: SocketAddr, timeout: Duration) -> Result<Conn, String> {
        let stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        stream.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
        stream.set_write_timeout(Some(timeout)).map_err(|e| e.to_string())?;
        Ok(Conn { stream, buf: Vec::with_capacity(4096) })
    }

    /// Sends a prepared request (see [`request_bytes`]) and reads the whole response.
    pub fn round_trip(&mut self, request: &[u8]) -> Result<Response, String> {
        self.stream.write_all(request).map_err(|e| format!("write: {e}"))?;
        self.read_response()
    }

    fn fill(&mut self) -> Result<(), String> {
        let mut chunk = [0u8; 8192];
        let n = self.stream.read(&mut chunk).map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("connection closed by peer".into());
        }
        self.buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        Ok(())
    }

    fn read_response(&mut self) -> Result<Response, String> {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            self.fill()?;
        };
        let head = String::from_utf8_lossy(self.buf.get(..head_end).unwrap_or_default()).into_owned();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| format!("bad status line: {:?}", head.lines().next().unwrap_or("")))?;
        let mut length = None;
        let mut chunked = false;
        for line in head.lines().skip(1) {
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse::<usize>().ok();
                } else if k.eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked") {
                    chunked = true;
                }
            }
        }
        let body = if chunked {
            self.read_chunked(head_end)?
        } else if let Some(len) = length {
            while self.buf.len() < head_end + len {
                self.fill()?;
            }
            let body = self.buf.get(head_end..head_end + len).unwrap_or_default().to_vec();
            self.buf.drain(..head_end + len);
            body
        } else {
            // No length: the body runs to the end of the connection.
            while self.fill().is_ok() {}
            let body = self.buf.get(head_end..).unwrap_or_default().to_vec();
            self.buf.clear();
            body
        };
        Ok(Response { status, body })
    }

    fn read_chunked(&mut self, mut pos: usize) -> Result<Vec<u8>, String> {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(i) = find(self.buf.get(pos..).unwrap_or_default(), b"\r\n") {
                    break pos + i;
                }
                self.fill()?;
            };
            let size_text = String::from_utf8_lossy(self.buf.get(pos..line_end).unwrap_or_default()).into_owned();
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| format!("bad chunk size {size_text:?}"))?;
            let data_start = line_end + 2;
            while self.buf.len() < data_start + size + 2 {
                self.fill()?;
            }
            body.extend_from_slice(self.buf.get(data_start..data_start + size).unwrap_or_default());
            pos = data_start + size + 2;
            if size == 0 {
                self.buf.drain(..pos.min(self.buf.len()));
                return Ok(body);
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A GET request for `path` with extra `headers`.
pub fn request_bytes(path: &str, host: &str, headers: &[(String, String)], close: bool) -> Vec<u8> {
    let mut r = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n");
    for (k, v) in headers {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    if close {
        r.push_str("Connection: close\r\n");
    }
    r.push_str("\r\n");
    r.into_bytes()
}

/// One GET on a fresh connection.
pub fn get(addr: SocketAddr, path: &str, headers: &[(String, String)]) -> Result<Response, String> {
    let mut conn = Conn::connect(addr, Duration::from_secs(5))?;
    conn.round_trip(&request_bytes(path, "bench", headers, true))
}

/// The body of an admin GET as text (status must be 200).
pub fn get_text(addr: SocketAddr, path: &str) -> Result<String, String> {
    let r = get(addr, path, &[])?;
    if r.status != 200 {
        return Err(format!("GET {path}: status {}", r.status));
    }
    Ok(String::from_utf8_lossy(&r.body).into_owned())
}
