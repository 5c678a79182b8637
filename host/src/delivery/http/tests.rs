//! Tests of the HTTP sender against a loopback receiver: what is sent, timeouts, redirects,
//! the SSRF guard and the answers it classifies.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap as AxumHeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

const USER_AGENT: &str = "Switchyard/test";

/// What the receiver saw of one request.
#[derive(Debug, Clone)]
struct Received {
    method: Method,
    path: String,
    peer: SocketAddr,
    headers: Vec<(String, Vec<u8>)>,
    body: Bytes,
}

type Log = Arc<Mutex<Vec<Received>>>;

/// A loopback axum server that records every request and answers by path.
struct Receiver {
    port: u16,
    log: Log,
}

impl Receiver {
    async fn start() -> Self {
        let log = Log::default();
        let app = axum::Router::new().fallback(answer).with_state(log.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let service = app.into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, service).await });
        Self { port, log }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn received(&self) -> Vec<Received> {
        self.log.lock().unwrap().clone()
    }
}

async fn answer(
    State(log): State<Log>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: AxumHeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let headers = headers
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
        .collect();
    log.lock().unwrap().push(Received { method, path: path.clone(), peer, headers, body });
    let response = Response::builder();
    let response = match path.as_str() {
        "/ok" => response.status(StatusCode::OK).body(Body::from("accepted by the receiver")),
        "/error" => response.status(StatusCode::INTERNAL_SERVER_ERROR).body(Body::from("boom")),
        "/redirect" => response
            .status(StatusCode::MOVED_PERMANENTLY)
            .header("location", "/target")
            .body(Body::from("moved")),
        "/limited" => response
            .status(StatusCode::TOO_MANY_REQUESTS)
            .header("retry-after", "120")
            .body(Body::empty()),
        // Never answers; the test runtime drops this future when the test ends.
        "/hang" => return std::future::pending().await,
        _ => response.status(StatusCode::NOT_FOUND).body(Body::empty()),
    };
    response.unwrap()
}

fn policy(allow_networks: &[&str]) -> EgressPolicy {
    EgressPolicy {
        allow_networks: allow_networks.iter().map(|network| network.parse().unwrap()).collect(),
        https_only: false,
        proxy: None,
    }
}

fn loopback_allowed() -> HttpSender {
    HttpSender::new(policy(&["127.0.0.0/8", "::1/128"]), USER_AGENT.into()).unwrap()
}

fn request(url: &str, timeout: Duration) -> OutboundRequest {
    OutboundRequest {
        url: Url::parse(url).unwrap(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: Bytes::from_static(b"{}"),
        timeout,
        tls: None,
    }
}

fn status(code: u16) -> AttemptOutcome {
    AttemptOutcome::Status { code, retry_after: None }
}

#[tokio::test]
async fn a_2xx_answer_comes_back_with_its_excerpt() {
    let receiver = Receiver::start().await;
    let result =
        loopback_allowed().send(request(&receiver.url("/ok"), Duration::from_secs(5))).await;
    assert_eq!(result.outcome, status(200));
    assert_eq!(result.response_excerpt, Bytes::from_static(b"accepted by the receiver"));
    let received = receiver.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].method, Method::POST);
}

#[tokio::test]
async fn a_5xx_answer_is_a_status() {
    let receiver = Receiver::start().await;
    let result =
        loopback_allowed().send(request(&receiver.url("/error"), Duration::from_secs(5))).await;
    assert_eq!(result.outcome, status(500));
    assert_eq!(result.response_excerpt, Bytes::from_static(b"boom"));
}

#[tokio::test]
async fn a_redirect_is_a_status_and_is_not_followed() {
    let receiver = Receiver::start().await;
    let result =
        loopback_allowed().send(request(&receiver.url("/redirect"), Duration::from_secs(5))).await;
    assert_eq!(result.outcome, status(301));
    let paths: Vec<String> = receiver.received().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/redirect"], "the redirect target was requested");
}

#[tokio::test]
async fn retry_after_is_passed_through() {
    let receiver = Receiver::start().await;
    let result =
        loopback_allowed().send(request(&receiver.url("/limited"), Duration::from_secs(5))).await;
    assert_eq!(
        result.outcome,
        AttemptOutcome::Status { code: 429, retry_after: Some("120".into()) }
    );
}

#[tokio::test]
async fn headers_and_body_arrive_exactly_as_given() {
    let receiver = Receiver::start().await;
    let body = Bytes::from_static(b"\x00\xff\xfe not utf-8 \x80\r\n");
    let headers: Vec<(String, String)> = [
        ("content-type", "application/octet-stream"),
        ("webhook-id", "evt_01JC0000000000000000000000"),
        ("webhook-timestamp", "1700000000"),
        ("webhook-signature", "v1,c2lnbmF0dXJl v1,b3RoZXI="),
        ("x-tenant", "acme"),
        ("x-repeated", "first"),
        ("x-repeated", "second"),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value.to_owned()))
    .collect();
    let outbound = OutboundRequest {
        url: Url::parse(&receiver.url("/ok")).unwrap(),
        headers: headers.clone(),
        body: body.clone(),
        timeout: Duration::from_secs(5),
        tls: None,
    };
    let result = loopback_allowed().send(outbound).await;
    assert_eq!(result.outcome, status(200));
    let received = receiver.received().remove(0);
    assert_eq!(received.body, body);
    let mut expected: Vec<(String, Vec<u8>)> = headers
        .into_iter()
        .map(|(name, value)| (name, value.into_bytes()))
        .chain([
            ("user-agent".to_owned(), USER_AGENT.as_bytes().to_vec()),
            // Added by reqwest to every request that does not set its own.
            ("accept".to_owned(), b"*/*".to_vec()),
            ("host".to_owned(), format!("127.0.0.1:{}", receiver.port).into_bytes()),
            ("content-length".to_owned(), body.len().to_string().into_bytes()),
        ])
        .collect();
    let mut actual = received.headers;
    expected.sort();
    actual.sort();
    assert_eq!(actual, expected);
}

#[tokio::test]
async fn an_invalid_header_fails_without_sending() {
    let receiver = Receiver::start().await;
    let mut outbound = request(&receiver.url("/ok"), Duration::from_secs(5));
    outbound.headers.push(("bad name".into(), "value".into()));
    let result = loopback_allowed().send(outbound).await;
    match result.outcome {
        AttemptOutcome::Connect(reason) => assert!(reason.contains("`bad name`"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(receiver.received().is_empty());
}

#[tokio::test]
async fn connections_are_kept_alive_and_reused() {
    let receiver = Receiver::start().await;
    let sender = loopback_allowed();
    for _ in 0..3 {
        let result = sender.send(request(&receiver.url("/ok"), Duration::from_secs(5))).await;
        assert_eq!(result.outcome, status(200));
    }
    let peers: Vec<SocketAddr> = receiver.received().into_iter().map(|r| r.peer).collect();
    assert_eq!(peers.len(), 3);
    assert!(peers.iter().all(|peer| *peer == peers[0]), "{peers:?}");
}

#[tokio::test]
async fn a_server_that_never_answers_is_a_timeout() {
    let receiver = Receiver::start().await;
    let timeout = Duration::from_millis(300);
    let result = loopback_allowed().send(request(&receiver.url("/hang"), timeout)).await;
    assert_eq!(result.outcome, AttemptOutcome::Timeout);
    assert!(result.duration >= timeout, "{:?}", result.duration);
    assert!(result.duration < timeout + Duration::from_secs(1), "{:?}", result.duration);
    assert!(result.response_excerpt.is_empty());
}

#[tokio::test]
async fn a_refused_connection_is_a_connect_failure() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let url = format!("http://127.0.0.1:{port}/");
    let result = loopback_allowed().send(request(&url, Duration::from_secs(5))).await;
    match result.outcome {
        AttemptOutcome::Connect(reason) => {
            assert!(reason.to_lowercase().contains("refused"), "{reason}");
            assert!(!reason.contains(&url), "the URL is kept out of the reason: {reason}");
        }
        other => panic!("{other:?}"),
    }
}

/// Accepts one connection, reads the request head, then writes `head` and calls `then`.
async fn raw_server<F, Fut>(head: &'static str, then: F) -> (u16, tokio::task::JoinHandle<u64>)
where
    F: FnOnce(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = u64> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buffer = [0_u8; 4096];
        let mut seen = Vec::new();
        while !seen.windows(4).any(|window| window == b"\r\n\r\n") {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return 0,
                Ok(read) => seen.extend_from_slice(&buffer[..read]),
            }
        }
        stream.write_all(head.as_bytes()).await.unwrap();
        then(stream).await
    });
    (port, task)
}

#[tokio::test]
async fn a_huge_answer_is_cut_at_the_excerpt_limit_and_not_downloaded() {
    const ADVERTISED: u64 = 1 << 30;
    let (port, server) = raw_server(
        "HTTP/1.1 200 OK\r\ncontent-length: 1073741824\r\n\r\n",
        |mut stream| async move {
            // Writes until the client hangs up (or, at worst, the whole advertised body).
            let block = vec![b'x'; 64 * 1024];
            let mut written = 0;
            while written < ADVERTISED {
                if stream.write_all(&block).await.is_err() {
                    break;
                }
                written += block.len() as u64;
            }
            written
        },
    )
    .await;
    let url = format!("http://127.0.0.1:{port}/");
    let result = loopback_allowed().send(request(&url, Duration::from_secs(30))).await;
    assert_eq!(result.outcome, status(200));
    assert_eq!(result.response_excerpt, Bytes::from(vec![b'x'; RESPONSE_EXCERPT_LIMIT]));
    assert!(result.duration < Duration::from_secs(5), "{:?}", result.duration);
    let written = tokio::time::timeout(Duration::from_secs(10), server).await.unwrap().unwrap();
    assert!(written < 64 << 20, "the client kept reading: {written} bytes sent");
}

#[tokio::test]
async fn a_stalled_answer_body_ends_at_the_timeout() {
    let (port, _server) = raw_server(
        "HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\npartial",
        |mut stream| async move {
            // Holds the connection open, bounded, until the client hangs up.
            let mut buffer = [0_u8; 64];
            let _ = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer)).await;
            0
        },
    )
    .await;
    let timeout = Duration::from_millis(300);
    let url = format!("http://127.0.0.1:{port}/");
    let result = loopback_allowed().send(request(&url, timeout)).await;
    assert_eq!(result.outcome, status(200));
    assert_eq!(result.response_excerpt, Bytes::from_static(b"partial"));
    assert!(result.duration < timeout + Duration::from_secs(1), "{:?}", result.duration);
}

fn assert_blocked(result: &AttemptResult, needles: &[&str]) {
    match &result.outcome {
        AttemptOutcome::Blocked(reason) => {
            for needle in needles {
                assert!(reason.contains(needle), "`{needle}` not in: {reason}");
            }
        }
        other => panic!("expected blocked, got {other:?}"),
    }
    assert!(result.response_excerpt.is_empty());
}

#[tokio::test]
async fn the_guard_blocks_loopback_before_connecting() {
    let receiver = Receiver::start().await;
    let port = receiver.port;
    let guarded = HttpSender::new(EgressPolicy::default(), USER_AGENT.into()).unwrap();
    let cases = [
        (format!("http://localhost:{port}/ok"), ["host `localhost`", "`127.0.0.1`", "(loopback)"]),
        (format!("http://127.0.0.1:{port}/ok"), ["`127.0.0.1`", "(loopback)", "allow_networks"]),
        (format!("http://[::1]:{port}/ok"), ["`::1`", "(loopback)", "allow_networks"]),
        (
            format!("http://[::ffff:127.0.0.1]:{port}/ok"),
            ["`::ffff:127.0.0.1`", "(IPv4-mapped)", "allow_networks"],
        ),
    ];
    for (url, needles) in cases {
        let result = guarded.send(request(&url, Duration::from_secs(5))).await;
        assert_blocked(&result, &needles);
    }
    assert!(receiver.received().is_empty(), "a blocked request reached the receiver");
}

#[tokio::test]
async fn allowed_networks_are_delivered_to() {
    let receiver = Receiver::start().await;
    let sender = loopback_allowed();
    for url in [
        format!("http://localhost:{}/ok", receiver.port),
        format!("http://127.0.0.1:{}/ok", receiver.port),
    ] {
        let result = sender.send(request(&url, Duration::from_secs(5))).await;
        assert_eq!(result.outcome, status(200), "{url}");
    }
    assert_eq!(receiver.received().len(), 2);
}

#[tokio::test]
async fn https_only_blocks_plain_http() {
    let receiver = Receiver::start().await;
    let mut egress = policy(&["127.0.0.0/8"]);
    egress.https_only = true;
    let sender = HttpSender::new(egress, USER_AGENT.into()).unwrap();
    let result = sender.send(request(&receiver.url("/ok"), Duration::from_secs(5))).await;
    assert_blocked(&result, &["`http`", "`egress.https_only`"]);
    assert!(receiver.received().is_empty());
}

/// A sender whose resolver answers from `answers` instead of asking any DNS server.
fn with_answers(egress: EgressPolicy, answers: &[(&str, &[&str])]) -> HttpSender {
    let answers = answers
        .iter()
        .map(|(name, addresses)| {
            let addresses = addresses.iter().map(|address| address.parse().unwrap()).collect();
            (name.to_string(), addresses)
        })
        .collect::<HashMap<_, _>>();
    HttpSender::with_lookup(egress, USER_AGENT.into(), Lookup::Fixed(Arc::new(answers))).unwrap()
}

#[tokio::test]
async fn a_name_is_refused_if_any_of_its_addresses_is_refused() {
    let receiver = Receiver::start().await;
    let sender = with_answers(
        policy(&["127.0.0.0/8"]),
        &[("allowed.test", &["127.0.0.1"]), ("mixed.test", &["127.0.0.1", "::1"])],
    );
    let url = format!("http://mixed.test:{}/ok", receiver.port);
    let result = sender.send(request(&url, Duration::from_secs(5))).await;
    assert_blocked(&result, &["host `mixed.test`", "`::1`", "(loopback)"]);
    assert!(receiver.received().is_empty(), "a blocked request reached the receiver");
    // The same resolver delivers to a name whose every address is allowed, on the URL's port.
    let url = format!("http://allowed.test:{}/ok", receiver.port);
    let result = sender.send(request(&url, Duration::from_secs(5))).await;
    assert_eq!(result.outcome, status(200));
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test]
async fn a_name_that_does_not_resolve_is_a_dns_failure() {
    let sender = with_answers(policy(&["127.0.0.0/8"]), &[("empty.test", &[])]);
    for (name, expected) in [
        ("missing.test", "cannot resolve `missing.test`: no such name in the test's answers"),
        ("empty.test", "`empty.test` resolved to no address"),
    ] {
        let url = format!("http://{name}/");
        let result = sender.send(request(&url, Duration::from_secs(5))).await;
        assert_eq!(result.outcome, AttemptOutcome::Dns(expected.to_owned()), "{name}");
    }
}

#[tokio::test]
async fn a_tls_failure_is_a_connect_failure() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buffer = [0_u8; 1024];
        let _ = stream.read(&mut buffer).await;
        // Not a TLS record: the handshake must fail.
        let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n").await;
    });
    let url = format!("https://127.0.0.1:{port}/");
    let result = loopback_allowed().send(request(&url, Duration::from_secs(5))).await;
    match result.outcome {
        // rustls saw the plain-text answer: TLS ran, offline, with no provider installed.
        AttemptOutcome::Connect(reason) => {
            assert!(reason.contains("corrupt message"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    server.await.unwrap();
}

#[test]
fn an_invalid_user_agent_is_refused() {
    let error = HttpSender::new(EgressPolicy::default(), "bad\nagent".into()).unwrap_err();
    assert_eq!(error.to_string(), r#"`user_agent` "bad\nagent" is not a valid header value"#);
}

#[test]
fn debug_output_leaves_out_credentials() {
    let mut outbound = request("https://hooks.example.com/T0/secret-token?key=k", Duration::ZERO);
    outbound.headers.push(("authorization".into(), "Bearer hunter2".into()));
    let debug = format!("{outbound:?}");
    assert!(debug.contains("https://hooks.example.com"), "{debug}");
    for secret in ["secret-token", "key=k", "hunter2"] {
        assert!(!debug.contains(secret), "{debug}");
    }
}
