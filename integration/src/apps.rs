//! The mesh's applications: small in-process HTTP servers (threads, std only, on top of
//! [`Backend`]) that behave like Istio's samples where the seed scenarios look.
//!
//! - bookinfo: `productpage` calls `details` and `reviews`; `reviews` v2/v3 call `ratings` and
//!   render `"Ratings service is currently unavailable"` when that call fails (v1 never calls
//!   it); `ratings` and `details` answer JSON. v2 shows black stars, v3 red ones.
//! - `httpbin` answers `/ip`, `/headers`, `/status/N`, `/get`; `sleep` answers `200 sleep` (the
//!   mesh sends "sleep's" requests through sleep's sidecar, as `kubectl exec sleep -- curl` does).
//!
//! Outgoing calls go through the workload's own sidecar (its outbound listener), with `Host:
//! <service>:<port>` as Kubernetes DNS would give, and carry the tracing headers of the
//! incoming request forward as the real samples do (Envoy cannot join spans otherwise).

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{json, Value};

use crate::{Backend, BackendResponse, HarnessError, ReceivedRequest, Request};

/// What runs behind a sidecar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum App {
    ProductPage,
    Details,
    /// `v1` (no ratings), `v2` (black stars), `v3` (red stars).
    Reviews(String),
    Ratings,
    Httpbin,
    Sleep,
}

/// The headers bookinfo's services propagate (Istio's list, plus W3C and `b3`).
pub const PROPAGATED_HEADERS: &[&str] = &[
    "x-request-id",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
    "b3",
    "x-ot-span-context",
    "traceparent",
    "tracestate",
    "end-user",
    "user-agent",
];

/// The message `reviews` shows when `ratings` fails (bookinfo's text).
pub const RATINGS_UNAVAILABLE: &str = "Ratings service is currently unavailable";

/// How long an application waits for the services it calls.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Where an application runs: its pod name and its sidecar's outbound listener.
#[derive(Clone, Debug)]
pub struct AppContext {
    pub pod_name: String,
    pub outbound: SocketAddr,
}

/// The request handler of `app`.
pub fn handler(app: &App, ctx: AppContext) -> Box<dyn Fn(&ReceivedRequest) -> BackendResponse + Send + Sync> {
    match app.clone() {
        App::ProductPage => Box::new(move |r| productpage(r, &ctx)),
        App::Details => Box::new(details),
        App::Reviews(version) => Box::new(move |r| reviews(r, &version, &ctx)),
        App::Ratings => Box::new(ratings),
        App::Httpbin => Box::new(httpbin),
        App::Sleep => Box::new(|_| BackendResponse::ok("sleep\n")),
    }
}

/// Starts `app` on 127.0.0.1 (a free port).
pub fn start(app: &App, ctx: AppContext) -> Result<Backend, HarnessError> {
    let h = handler(app, ctx);
    Backend::start(move |r| h(r))
}

/// `productpage`, `details`, `reviews-v1`..`reviews-v3`, `ratings`, `httpbin`, `sleep`.
pub fn parse_app(name: &str) -> Option<App> {
    Some(match name {
        "productpage" => App::ProductPage,
        "details" => App::Details,
        "ratings" => App::Ratings,
        "httpbin" => App::Httpbin,
        "sleep" => App::Sleep,
        other => App::Reviews(other.strip_prefix("reviews-").filter(|v| ["v1", "v2", "v3"].contains(v))?.to_string()),
    })
}

/// Serves `app` on `addr` until the process ends (thread per connection, keep-alive): what the
/// `mesh-app` binary runs in a container.
pub fn serve(app: &App, ctx: AppContext, addr: &str) -> Result<(), HarnessError> {
    use std::io::{BufReader, Write};
    use std::sync::Arc;
    let listener = std::net::TcpListener::bind(addr).map_err(|e| HarnessError::io(format!("binding {addr}"), e))?;
    let h: Arc<dyn Fn(&ReceivedRequest) -> BackendResponse + Send + Sync> = Arc::from(handler(app, ctx));
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let h = Arc::clone(&h);
        let _ = std::thread::Builder::new().name("app-conn".into()).spawn(move || {
            let mut reader = BufReader::new(&conn);
            loop {
                let Ok(Some(line)) = crate::http::read_line(&mut reader) else {
                    return;
                };
                if line.is_empty() {
                    continue;
                }
                let mut parts = line.split(' ');
                let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
                    return;
                };
                let Ok(headers) = crate::http::read_headers(&mut reader) else {
                    return;
                };
                let Ok(framing) = crate::http::framing(&headers, false) else {
                    return;
                };
                let Ok(body) = crate::http::read_body(&mut reader, framing) else {
                    return;
                };
                let close =
                    crate::http::find_header(&headers, "connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
                let req = ReceivedRequest { method: method.to_string(), path: path.to_string(), headers, body };
                let resp = h(&req);
                let mut head =
                    format!("HTTP/1.1 {} {}\r\n", resp.status, if resp.status < 400 { "OK" } else { "Error" });
                for (k, v) in &resp.headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                head.push_str(&format!("content-length: {}\r\n\r\n", resp.body.len()));
                let mut out = head.into_bytes();
                out.extend_from_slice(&resp.body);
                if (&conn).write_all(&out).is_err() || close {
                    return;
                }
            }
        });
    }
    Ok(())
}

/// A call from the application through its sidecar to `host` (e.g. `ratings:9080`),
/// forwarding the propagated headers of `incoming`.
pub fn call_through_sidecar(
    ctx: &AppContext,
    incoming: &ReceivedRequest,
    host: &str,
    path: &str,
) -> Result<crate::Response, HarnessError> {
    let mut req = Request::get(path).header("host", host).timeout(CALL_TIMEOUT);
    for name in PROPAGATED_HEADERS {
        if let Some(v) = incoming.header(name) {
            req = req.header(name, v);
        }
    }
    req.send(ctx.outbound)
}

fn json_response(status: u16, body: &Value) -> BackendResponse {
    BackendResponse::new(status).header("content-type", "application/json").body(body.to_string())
}

fn path_only(path: &str) -> &str {
    path.split('?').next().unwrap_or(path)
}

fn details(r: &ReceivedRequest) -> BackendResponse {
    let path = path_only(&r.path);
    if path == "/health" {
        return json_response(200, &json!({"status": "Details is healthy"}));
    }
    let id: i64 = path.strip_prefix("/details/").and_then(|s| s.parse().ok()).unwrap_or(0);
    json_response(
        200,
        &json!({"id": id, "author": "William Shakespeare", "year": 1595, "type": "paperback", "pages": 200,
                "publisher": "PublisherA", "language": "English", "ISBN-10": "1234567890", "ISBN-13": "123-1234567890"}),
    )
}

fn ratings(r: &ReceivedRequest) -> BackendResponse {
    let path = path_only(&r.path);
    if path == "/health" {
        return json_response(200, &json!({"status": "Ratings is healthy"}));
    }
    let id: i64 = path.strip_prefix("/ratings/").and_then(|s| s.parse().ok()).unwrap_or(0);
    json_response(200, &json!({"id": id, "ratings": {"Reviewer1": 5, "Reviewer2": 4}}))
}

fn reviews(r: &ReceivedRequest, version: &str, ctx: &AppContext) -> BackendResponse {
    let path = path_only(&r.path);
    if path == "/health" {
        return json_response(200, &json!({"status": "Reviews is healthy"}));
    }
    let id = path.strip_prefix("/reviews/").unwrap_or("0");
    let texts = [
        ("Reviewer1", "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!"),
        ("Reviewer2", "Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare."),
    ];
    let color = if version == "v3" { "red" } else { "black" };
    let stars: Option<Value> = if version == "v1" {
        None
    } else {
        match call_through_sidecar(ctx, r, "ratings:9080", &format!("/ratings/{id}")) {
            Ok(resp) if resp.status == 200 => {
                serde_json::from_slice::<Value>(&resp.body).ok().map(|v| v["ratings"].clone())
            }
            _ => Some(Value::Null),
        }
    };
    let list: Vec<Value> = texts
        .iter()
        .map(|(reviewer, text)| {
            let mut review = json!({"reviewer": reviewer, "text": text});
            match &stars {
                None => {}
                Some(Value::Object(m)) => {
                    let n = m.get(*reviewer).and_then(Value::as_i64).unwrap_or(-1);
                    review["rating"] = json!({"stars": n, "color": color});
                }
                Some(_) => review["rating"] = json!({"error": RATINGS_UNAVAILABLE}),
            }
            review
        })
        .collect();
    json_response(200, &json!({"id": id, "podname": ctx.pod_name, "clustername": "null", "reviews": list}))
}

fn productpage(r: &ReceivedRequest, ctx: &AppContext) -> BackendResponse {
    let path = path_only(&r.path);
    match path {
        "/health" => return BackendResponse::ok("Product page is healthy"),
        "/productpage" => {}
        "/" => {
            return BackendResponse::new(200)
                .header("content-type", "text/html")
                .body("<html><head><title>Simple Bookstore App</title></head><body><a href=\"/productpage\">productpage</a></body></html>\n")
        }
        _ => return BackendResponse::new(404).header("content-type", "text/plain").body("404 Not Found\n"),
    }
    let mut html = String::from(
        "<html>\n<head><title>Simple Bookstore App</title></head>\n<body>\n<h3>The Comedy of Errors</h3>\n",
    );
    match call_through_sidecar(ctx, r, "details:9080", "/details/0") {
        Ok(resp) if resp.status == 200 => {
            let d: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
            html.push_str(&format!(
                "<h4>Book Details</h4>\n<dl><dt>Type:</dt><dd>{}</dd><dt>Pages:</dt><dd>{}</dd><dt>Publisher:</dt><dd>{}</dd><dt>Language:</dt><dd>{}</dd></dl>\n",
                d["type"].as_str().unwrap_or("?"),
                d["pages"],
                d["publisher"].as_str().unwrap_or("?"),
                d["language"].as_str().unwrap_or("?"),
            ));
        }
        Ok(resp) => html.push_str(&format!("<h4>Error fetching product details!</h4>\n<p>Sorry, product details are currently unavailable for this book. (HTTP {})</p>\n", resp.status)),
        Err(_) => html.push_str("<h4>Error fetching product details!</h4>\n<p>Sorry, product details are currently unavailable for this book.</p>\n"),
    }
    match call_through_sidecar(ctx, r, "reviews:9080", "/reviews/0") {
        Ok(resp) if resp.status == 200 => {
            let v: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
            html.push_str("<h4>Book Reviews</h4>\n");
            for review in v["reviews"].as_array().map(Vec::as_slice).unwrap_or_default() {
                html.push_str(&format!(
                    "<blockquote>\n<p>{}</p>\n<small>{}</small>\n",
                    review["text"].as_str().unwrap_or(""),
                    review["reviewer"].as_str().unwrap_or("")
                ));
                if let Some(err) = review["rating"]["error"].as_str() {
                    html.push_str(&format!("<p><i>{err}</i></p>\n"));
                } else if let Some(stars) = review["rating"]["stars"].as_i64() {
                    let n = usize::try_from(stars.clamp(0, 5)).unwrap_or(0);
                    html.push_str(&format!(
                        "<font color=\"{}\">{}{}</font>\n",
                        review["rating"]["color"].as_str().unwrap_or("black"),
                        "\u{2605}".repeat(n),
                        "\u{2606}".repeat(5 - n)
                    ));
                }
                html.push_str("</blockquote>\n");
            }
            html.push_str(&format!("<dl><dt>Reviews served by:</dt><dd>{}</dd></dl>\n", v["podname"].as_str().unwrap_or("?")));
        }
        Ok(resp) => html.push_str(&format!("<h4>Error fetching product reviews!</h4>\n<p>Sorry, product reviews are currently unavailable for this book. (HTTP {})</p>\n", resp.status)),
        Err(_) => html.push_str("<h4>Error fetching product reviews!</h4>\n<p>Sorry, product reviews are currently unavailable for this book.</p>\n"),
    }
    html.push_str("</body>\n</html>\n");
    BackendResponse::new(200).header("content-type", "text/html; charset=utf-8").body(html)
}

/// `Content-Type` → `Content-Type` (httpbin shows header names in this case).
fn title_case(name: &str) -> String {
    name.split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("-")
}

fn headers_json(r: &ReceivedRequest) -> Value {
    let mut m = serde_json::Map::new();
    for (k, v) in &r.headers {
        m.insert(title_case(k), Value::String(v.clone()));
    }
    Value::Object(m)
}

fn httpbin(r: &ReceivedRequest) -> BackendResponse {
    let path = path_only(&r.path);
    if path == "/ip" {
        let origin =
            r.header("x-forwarded-for").and_then(|x| x.split(',').next()).map(str::trim).unwrap_or("127.0.0.1");
        return json_response(200, &json!({"origin": origin}));
    }
    if path == "/headers" {
        return json_response(200, &json!({"headers": headers_json(r)}));
    }
    if path == "/get" {
        return json_response(
            200,
            &json!({"args": {}, "headers": headers_json(r), "url": format!("http://{}{}", r.header("host").unwrap_or(""), r.path)}),
        );
    }
    if let Some(code) = path.strip_prefix("/status/") {
        return match code.parse::<u16>() {
            Ok(c) if (100..600).contains(&c) => BackendResponse::new(c),
            _ => BackendResponse::new(400).header("content-type", "text/plain").body("Invalid status code\n"),
        };
    }
    if path == "/" {
        return BackendResponse::new(200)
            .header("content-type", "text/html")
            .body("<html><body>httpbin.org (wasmixer mesh)</body></html>\n");
    }
    BackendResponse::new(404).header("content-type", "text/html").body("<h1>Not Found</h1>\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(path: &str) -> ReceivedRequest {
        ReceivedRequest {
            method: "GET".into(),
            path: path.into(),
            headers: vec![("x-b3-traceid".into(), "abc".into())],
            body: vec![],
        }
    }

    #[test]
    fn httpbin_endpoints() {
        assert_eq!(httpbin(&req("/status/418")).status, 418);
        assert_eq!(httpbin(&req("/status/x")).status, 400);
        let h = httpbin(&req("/headers"));
        assert!(String::from_utf8_lossy(&h.body).contains("\"X-B3-Traceid\":\"abc\""));
        assert_eq!(httpbin(&req("/ip")).body, br#"{"origin":"127.0.0.1"}"#.to_vec());
    }

    #[test]
    fn reviews_v1_never_calls_ratings() {
        // The outbound address is closed: v1 must not need it.
        let ctx = AppContext { pod_name: "reviews-v1-0".into(), outbound: SocketAddr::from(([127, 0, 0, 1], 1)) };
        let r = reviews(&req("/reviews/0"), "v1", &ctx);
        let text = String::from_utf8_lossy(&r.body).to_string();
        assert!(!text.contains("rating"), "{text}");
        let r = reviews(&req("/reviews/0"), "v3", &ctx);
        let text = String::from_utf8_lossy(&r.body).to_string();
        assert!(text.contains(RATINGS_UNAVAILABLE), "{text}");
    }
}
