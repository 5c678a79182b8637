//! [`TestReceiver`]: a local HTTP endpoint that records every request and answers from a
//! script (statuses, headers, delays, or never), for delivery tests.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;

/// How the receiver answers one request.
#[derive(Debug, Clone)]
pub enum Reply {
    Status(u16),
    /// A status with extra response headers, e.g. `Retry-After`.
    StatusWithHeaders(u16, Vec<(&'static str, String)>),
    /// Waits, then answers.
    Delayed(Duration, u16),
    /// Never answers.
    Hang,
}

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct ReceivedRequest {
    pub arrived: Instant,
    pub path: String,
    /// Lower-case names, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl ReceivedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }
}

#[derive(Debug)]
struct Script {
    replies: Mutex<VecDeque<Reply>>,
    then: Reply,
    requests: mpsc::UnboundedSender<ReceivedRequest>,
}

#[derive(Debug)]
pub struct TestReceiver {
    pub address: SocketAddr,
    requests: mpsc::UnboundedReceiver<ReceivedRequest>,
    server: tokio::task::JoinHandle<()>,
}

impl TestReceiver {
    /// Answers 200 to everything.
    pub async fn start() -> Self {
        Self::scripted(Vec::new(), Reply::Status(200)).await
    }

    /// Answers with `replies` in order, then with `then` forever.
    pub async fn scripted(replies: Vec<Reply>, then: Reply) -> Self {
        let listener =
            tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
        let address = listener.local_addr().expect("a bound address");
        let (sender, requests) = mpsc::unbounded_channel();
        let script =
            Arc::new(Script { replies: Mutex::new(replies.into()), then, requests: sender });
        let app = axum::Router::new().fallback(answer).with_state(script);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { address, requests, server }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// The next request, waiting at most `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Option<ReceivedRequest> {
        tokio::time::timeout(timeout, self.requests.recv()).await.ok().flatten()
    }

    /// Requests that already arrived, without waiting.
    pub fn drain(&mut self) -> Vec<ReceivedRequest> {
        let mut requests = Vec::new();
        while let Ok(request) = self.requests.try_recv() {
            requests.push(request);
        }
        requests
    }
}

impl Drop for TestReceiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn answer(State(script): State<Arc<Script>>, request: Request) -> Response {
    let arrived = Instant::now();
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
    let headers = parts
        .headers
        .iter()
        .map(|(name, value)| {
            (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned())
        })
        .collect();
    let reply = script.replies.lock().unwrap().pop_front().unwrap_or_else(|| script.then.clone());
    let _ = script.requests.send(ReceivedRequest {
        arrived,
        path: parts.uri.path().to_owned(),
        headers,
        body,
    });
    match reply {
        Reply::Status(code) => status(code).into_response(),
        Reply::StatusWithHeaders(code, headers) => {
            let mut response = status(code).into_response();
            for (name, value) in headers {
                if let (Ok(name), Ok(value)) =
                    (HeaderName::try_from(name), HeaderValue::try_from(value))
                {
                    response.headers_mut().insert(name, value);
                }
            }
            response
        }
        Reply::Delayed(delay, code) => {
            tokio::time::sleep(delay).await;
            status(code).into_response()
        }
        Reply::Hang => std::future::pending().await,
    }
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}
