//! A minimal threaded HTTP/1.1 backend for Envoy to route to.
//!
//! `Backend::start(handler)` listens on 127.0.0.1:0, answers every request with `handler`'s
//! response (keep-alive is honoured, as Envoy pools upstream connections), records each request
//! for assertions, and stops when dropped.

use std::io::{BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::http::{find_header, framing, read_body, read_headers, read_line};
use crate::HarnessError;

/// A request as the backend received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The request target as sent (path and query).
    pub path: String,
    /// Header fields in arrival order; names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl ReceivedRequest {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

/// What the backend answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendResponse {
    /// Status code.
    pub status: u16,
    /// Header fields (`Content-Length` is added).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// Trailer fields; when there are any the body is sent chunked, the trailers after it.
    pub trailers: Vec<(String, String)>,
}

impl BackendResponse {
    /// A response with `status` and no body.
    pub fn new(status: u16) -> Self {
        BackendResponse { status, headers: Vec::new(), body: Vec::new(), trailers: Vec::new() }
    }

    /// `200` with `body` as `text/plain`.
    pub fn ok(body: &str) -> Self {
        BackendResponse::new(200).header("content-type", "text/plain").body(body)
    }

    /// Adds a header field.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Adds a trailer field (gRPC's `grpc-status`, say).
    pub fn trailer(mut self, name: &str, value: &str) -> Self {
        self.trailers.push((name.to_string(), value.to_string()));
        self
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut head = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        for (k, v) in &self.headers {
            if !k.eq_ignore_ascii_case("content-length") {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
        }
        if self.trailers.is_empty() {
            head.push_str(&format!("content-length: {}\r\n\r\n", self.body.len()));
            let mut out = head.into_bytes();
            out.extend_from_slice(&self.body);
            return out;
        }
        head.push_str("transfer-encoding: chunked\r\n\r\n");
        let mut out = head.into_bytes();
        if !self.body.is_empty() {
            out.extend_from_slice(format!("{:x}\r\n", self.body.len()).as_bytes());
            out.extend_from_slice(&self.body);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n");
        for (k, v) in &self.trailers {
            out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

type Handler = dyn Fn(&ReceivedRequest) -> BackendResponse + Send + Sync + 'static;

struct Shared {
    handler: Box<Handler>,
    requests: Mutex<Vec<ReceivedRequest>>,
    connections: Mutex<Vec<TcpStream>>,
    stopping: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A handler that panicked poisons nothing we care about: keep going with the data.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A running backend; stops (closing its connections) when dropped.
pub struct Backend {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl Backend {
    /// Starts a backend on 127.0.0.1 (a free port) that answers with `handler`.
    pub fn start<F>(handler: F) -> Result<Backend, HarnessError>
    where
        F: Fn(&ReceivedRequest) -> BackendResponse + Send + Sync + 'static,
    {
        let listener =
            TcpListener::bind("127.0.0.1:0").map_err(|e| HarnessError::io("binding the backend to 127.0.0.1:0", e))?;
        let addr = listener.local_addr().map_err(|e| HarnessError::io("reading the backend's address", e))?;
        let shared = Arc::new(Shared {
            handler: Box::new(handler),
            requests: Mutex::new(Vec::new()),
            connections: Mutex::new(Vec::new()),
            stopping: AtomicBool::new(false),
        });
        let accept_shared = Arc::clone(&shared);
        let acceptor = std::thread::Builder::new()
            .name(format!("backend-{}", addr.port()))
            .spawn(move || accept_loop(listener, accept_shared))
            .map_err(|e| HarnessError::io("spawning the backend thread", e))?;
        Ok(Backend { addr, shared, acceptor: Some(acceptor) })
    }

    /// A backend that answers every request `200 ok`.
    pub fn ok() -> Result<Backend, HarnessError> {
        Backend::start(|_| BackendResponse::ok("ok"))
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// How many requests were received so far.
    pub fn request_count(&self) -> usize {
        lock(&self.shared.requests).len()
    }

    /// Waits until at least `n` requests arrived; returns them all.
    pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> Result<Vec<ReceivedRequest>, HarnessError> {
        let deadline = Instant::now() + timeout;
        loop {
            let seen = self.requests();
            if seen.len() >= n {
                return Ok(seen);
            }
            if Instant::now() >= deadline {
                return Err(HarnessError::Timeout(format!(
                    "backend {} got {} of {n} requests within {timeout:?}",
                    self.addr,
                    seen.len()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wake the acceptor, then end every open connection so its thread returns.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        for conn in lock(&self.shared.connections).drain(..) {
            let _ = conn.shutdown(Shutdown::Both);
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for conn in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(conn) = conn else { continue };
        if let Ok(clone) = conn.try_clone() {
            lock(&shared.connections).push(clone);
        }
        let conn_shared = Arc::clone(&shared);
        // A connection whose thread cannot be spawned is dropped (closed): the client sees it.
        let _ = std::thread::Builder::new().name("backend-conn".to_string()).spawn(move || serve(conn, conn_shared));
    }
}

/// Serves requests on one connection until the peer closes it, asks to, or sends garbage.
fn serve(conn: TcpStream, shared: Arc<Shared>) {
    let mut reader = BufReader::new(&conn);
    loop {
        let Ok(Some(request_line)) = read_line(&mut reader) else {
            return;
        };
        if request_line.is_empty() {
            continue;
        }
        let mut parts = request_line.split(' ');
        let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
            return;
        };
        let Ok(headers) = read_headers(&mut reader) else {
            return;
        };
        let Ok(body_framing) = framing(&headers, false) else {
            return;
        };
        let Ok(body) = read_body(&mut reader, body_framing) else {
            return;
        };
        let request = ReceivedRequest { method: method.to_string(), path: path.to_string(), headers, body };
        let close = request.header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let response = (shared.handler)(&request);
        lock(&shared.requests).push(request);
        if (&conn).write_all(&response.to_bytes()).is_err() || close {
            let _ = conn.shutdown(Shutdown::Both);
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Request;

    #[test]
    fn answers_and_records() -> Result<(), HarnessError> {
        let backend =
            Backend::start(|req| BackendResponse::new(201).header("x-echo-path", &req.path).body(req.body.clone()))?;
        let resp = Request::post("/hello?x=1", "payload").header("X-Test", "yes").send(backend.addr())?;
        assert_eq!(resp.status, 201);
        assert_eq!(resp.header("x-echo-path"), Some("/hello?x=1"));
        assert_eq!(resp.body_text(), "payload");
        let seen = backend.wait_for_requests(1, Duration::from_secs(5))?;
        assert_eq!(seen[0].method, "POST");
        assert_eq!(seen[0].header("x-test"), Some("yes"));
        assert_eq!(seen[0].body, b"payload");
        Ok(())
    }

    #[test]
    fn keep_alive_and_chunked_request() -> Result<(), HarnessError> {
        let backend = Backend::ok()?;
        let mut conn = TcpStream::connect(backend.addr()).map_err(|e| HarnessError::io("connect", e))?;
        conn.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| HarnessError::io("timeout", e))?;
        conn.write_all(
            b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n\
              GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .map_err(|e| HarnessError::io("write", e))?;
        let mut reader = BufReader::new(&conn);
        let first = crate::http::read_response(&mut reader, false).map_err(HarnessError::Http)?;
        let second = crate::http::read_response(&mut reader, false).map_err(HarnessError::Http)?;
        assert_eq!((first.status, second.status), (200, 200));
        let seen = backend.wait_for_requests(2, Duration::from_secs(5))?;
        assert_eq!(seen[0].body, b"abc");
        assert_eq!(seen[1].path, "/b");
        Ok(())
    }

    #[test]
    fn drop_closes_idle_connections() -> Result<(), HarnessError> {
        let backend = Backend::ok()?;
        let conn = TcpStream::connect(backend.addr()).map_err(|e| HarnessError::io("connect", e))?;
        conn.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| HarnessError::io("timeout", e))?;
        // Let the acceptor register the connection before dropping.
        std::thread::sleep(Duration::from_millis(100));
        drop(backend);
        let mut buf = [0u8; 1];
        let n = std::io::Read::read(&mut &conn, &mut buf).unwrap_or(0);
        assert_eq!(n, 0);
        Ok(())
    }
}
