//! The dashboard through the real binary: HTTP checks (no UI without an admin token, the
//! viewer token in the API, cross-site POSTs refused, gzip, first-load size and the render
//! time of a 50-row list, printed) and one browser check per screen in headless Chromium
//! (Debian's `chromium`, driven by Playwright from the test venv: `tests/ui/dashboard.py`).
//! Screenshots, light and dark, go to `target/ui-screenshots/` (printed).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT_ENCODING, CONTENT_ENCODING, COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchyard_e2e::{
    Reply, TestHost, TestReceiver, eventually_async, post_webhook, tools_python, workspace_root,
};

const ADMIN: &str = "ui-admin-token";
const VIEWER: &str = "ui-viewer-token";
const WAIT: Duration = Duration::from_secs(20);

fn server() -> String {
    format!("admin_token = {{ value = \"{ADMIN}\" }}\nviewer_token = {{ value = \"{VIEWER}\" }}")
}

/// One source routed to a config endpoint whose single attempt fails while the receiver says
/// so (so dead letters are easy to make).
fn config(url: &str) -> String {
    format!(
        "[egress]\nallow_networks = [\"127.0.0.0/8\"]\n\n[sources.app]\ntype = \"http\"\n\n\
         [endpoints.shop]\nurl = \"{url}\"\nretry = {{ schedule = [] }}\n\n\
         [routes.all]\nfrom = [\"app\"]\nto = [\"shop\"]\n"
    )
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

async fn api(
    host: &TestHost,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = client().request(method, host.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn send(host: &TestHost, body: &str, headers: &[(&str, &str)]) -> String {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    post_webhook(&reqwest::Client::new(), host, "app", &all, body.to_owned()).await.unwrap()
}

/// The deliveries of `event` once they reach `status`.
async fn delivery_in(host: &TestHost, event: &str, status: &str) -> Value {
    let path = format!("/v1/admin/deliveries?event={event}");
    eventually_async(WAIT, || async {
        let (_, page) = api(host, ADMIN, Method::GET, &path, None).await;
        page["data"].as_array()?.iter().find(|d| d["status"] == status).cloned()
    })
    .await
    .unwrap_or_else(|| panic!("no delivery of `{event}` became {status}"))
}

/// Signs in with `token` as a browser would (same-origin form POST); answers the cookie.
async fn sign_in(host: &TestHost, token: &str) -> String {
    let response = client()
        .post(host.url("/ui/login"))
        .header(ORIGIN, format!("http://{}", host.address))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let line = response.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/ui", "Max-Age=43200"] {
        assert!(line.contains(part), "{line}");
    }
    assert!(!line.contains("Secure"), "no TLS here: {line}");
    line.split(';').next().unwrap().to_owned()
}

fn screenshots() -> PathBuf {
    workspace_root().join("target/ui-screenshots")
}

/// Runs one case of the browser script; panics with its output unless it passes.
fn browser(host: &TestHost, case: &str, environment: &[(&str, String)]) {
    let chromium = std::env::var("UI_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "`{chromium}` is missing: run `cargo xtask setup` (it installs Debian's chromium)"
    );
    let output = Command::new(tools_python())
        .arg(workspace_root().join("tests/ui/dashboard.py"))
        .arg(case)
        .env("UI_BASE", format!("http://{}", host.address))
        .env("UI_ADMIN", ADMIN)
        .env("UI_VIEWER", VIEWER)
        .env("UI_SHOTS", screenshots())
        .env("UI_CHROMIUM", &chromium)
        .envs(environment.iter().map(|(name, value)| (*name, value.as_str())))
        .output()
        .expect("the test venv's python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    print!("{stdout}");
    assert!(
        output.status.success(),
        "browser case `{case}` failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    println!("screenshots: {}", screenshots().display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_admin_token_there_is_no_dashboard() {
    let receiver = TestReceiver::start().await;
    let host = TestHost::start_without_admin("", &config(&receiver.url("/shop"))).await.unwrap();
    for path in ["/ui/", "/ui/login", "/ui/assets/app.css"] {
        let status = client().get(host.url(path)).send().await.unwrap().status();
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_viewer_token_reads_the_api_and_changes_nothing() {
    let receiver = TestReceiver::start().await;
    let host = TestHost::start(&server(), &config(&receiver.url("/shop"))).await.unwrap();
    let event = send(&host, "{}", &[("authorization", "Bearer viewer-must-not-see")]).await;
    for path in [
        "/v1/admin/events",
        "/v1/admin/endpoints",
        "/v1/admin/stats?window=24h",
        "/v1/admin/dead-letters",
    ] {
        let (status, _) = api(&host, VIEWER, Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    let (_, detail) =
        api(&host, VIEWER, Method::GET, &format!("/v1/admin/events/{event}?body=true"), None).await;
    assert!(!detail.to_string().contains("viewer-must-not-see"), "{detail}");
    let (_, as_admin) =
        api(&host, ADMIN, Method::GET, &format!("/v1/admin/events/{event}?body=true"), None).await;
    assert!(as_admin.to_string().contains("viewer-must-not-see"), "the admin sees what arrived");
    let changes = [
        (Method::POST, "/v1/admin/endpoints/shop/disable", json!({})),
        (Method::POST, "/v1/admin/dead-letters/redrive", json!({})),
        (Method::POST, "/v1/admin/endpoints", json!({"url": "http://127.0.0.1:9/x"})),
        (Method::POST, "/v1/admin/reload", json!({})),
    ];
    for (method, path, body) in changes {
        let (status, answer) = api(&host, VIEWER, method, path, Some(body)).await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("forbidden")),
            "{path}"
        );
    }
    let (status, _) = api(&host, "nope", Method::GET, "/v1/admin/events", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, stats) = api(&host, VIEWER, Method::GET, "/v1/admin/stats", None).await;
    assert_eq!(stats["events"], 1, "{stats}");
    assert_eq!(stats["unrouted_since_start"], 0, "the event was routed: {stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_site_post_is_refused_and_a_same_site_one_acts() {
    let receiver = TestReceiver::start().await;
    let host = TestHost::start(&server(), &config(&receiver.url("/shop"))).await.unwrap();
    let cookie = sign_in(&host, ADMIN).await;
    let post = |origin: Option<String>| {
        let mut request =
            client().post(host.url("/ui/endpoints/shop/disable")).header(COOKIE, &cookie);
        if let Some(origin) = origin {
            request = request.header(ORIGIN, origin);
        }
        request.send()
    };
    for origin in [None, Some("http://evil.example".to_owned()), Some("null".to_owned())] {
        let response = post(origin.clone()).await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{origin:?}");
    }
    let (_, endpoint) = api(&host, ADMIN, Method::GET, "/v1/admin/endpoints/shop", None).await;
    assert_eq!(endpoint["disabled"], false, "nothing changed");
    let response = post(Some(format!("http://{}", host.address))).await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (_, endpoint) = api(&host, ADMIN, Method::GET, "/v1/admin/endpoints/shop", None).await;
    assert_eq!(endpoint["disabled"], true);
    // Login forgery: a token posted from another site signs nobody in.
    let forged = client()
        .post(host.url("/ui/login"))
        .header(ORIGIN, "http://evil.example")
        .body(format!("token={ADMIN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert!(forged.headers().get(SET_COOKIE).is_none());
    // Without a session, pages send to the login form.
    let response = client().get(host.url("/ui/events")).send().await.unwrap();
    assert_eq!(response.headers()[LOCATION], "/ui/login");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_compressed_and_small_and_a_50_row_list_renders_fast() {
    let receiver = TestReceiver::start().await;
    let host = TestHost::start(&server(), &config(&receiver.url("/shop"))).await.unwrap();
    for n in 0..60 {
        send(&host, &format!("{{\"type\":\"order.created\",\"n\":{n}}}"), &[]).await;
    }
    let cookie = sign_in(&host, ADMIN).await;
    let fetch = |path: &'static str| {
        client().get(host.url(path)).header(COOKIE, &cookie).header(ACCEPT_ENCODING, "gzip").send()
    };
    // First load: the overview page, its stylesheet and its script, as transferred.
    let mut transferred = 0;
    for path in ["/ui/", "/ui/assets/app.css", "/ui/assets/app.js"] {
        let response = fetch(path).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(response.headers()[CONTENT_ENCODING], "gzip", "{path}");
        let bytes = response.bytes().await.unwrap();
        assert_gzip(&bytes);
        transferred += bytes.len();
    }
    println!("first load (overview + css + js), gzip: {transferred} bytes");
    assert!(transferred <= 60 * 1024, "first load {transferred} bytes is over 60 kB");
    // The events list holds 50 rows by default; time it server-side, warm.
    fetch("/ui/events").await.unwrap().bytes().await.unwrap();
    let mut times = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        let response = fetch("/ui/events").await.unwrap();
        let bytes = response.bytes().await.unwrap();
        times.push(started.elapsed());
        assert!(!bytes.is_empty());
    }
    times.sort();
    let page = client().get(host.url("/ui/events")).header(COOKIE, &cookie).send().await.unwrap();
    let html = page.text().await.unwrap();
    assert_eq!(html.matches("<tr><td><a href=\"/ui/events/evt_").count(), 50);
    println!(
        "events list, 50 rows (request to last byte, loopback, debug build): median {:?}, max {:?}",
        times[times.len() / 2],
        times[times.len() - 1]
    );
}

/// Gzip's magic number: the body really is compressed (decoding is the browser's job).
fn assert_gzip(bytes: &[u8]) {
    assert_eq!(bytes.get(..2), Some(&[0x1f, 0x8b][..]), "a gzip stream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_login_and_logout() {
    let receiver = TestReceiver::start().await;
    let host = TestHost::start(&server(), &config(&receiver.url("/shop"))).await.unwrap();
    send(&host, r#"{"type":"order.created","id":1}"#, &[]).await;
    browser(&host, "login_logout", &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_live_tail_shows_an_event_within_a_second() {
    let receiver = TestReceiver::start().await;
    let host = TestHost::start(&server(), &config(&receiver.url("/shop"))).await.unwrap();
    browser(&host, "live", &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_retry_turns_a_dead_delivery_into_delivered() {
    let receiver = TestReceiver::scripted(vec![Reply::Status(500)], Reply::Status(200)).await;
    let host = TestHost::start(&server(), &config(&receiver.url("/shop"))).await.unwrap();
    let event = send(&host, r#"{"type":"order.created"}"#, &[]).await;
    let dead = delivery_in(&host, &event, "dead").await;
    browser(&host, "retry", &[("UI_DELIVERY", dead["id"].to_string())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_disable_parks_and_enable_delivers() {
    let receiver = TestReceiver::start().await;
    let host = TestHost::start(&server(), &config(&receiver.url("/shop"))).await.unwrap();
    browser(&host, "disable_enable", &[("UI_ENDPOINT", "shop".into())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_rotate_shows_the_secret_once() {
    let receiver = TestReceiver::start().await;
    let host = TestHost::start(&server(), &config(&receiver.url("/shop"))).await.unwrap();
    let (status, created) = api(
        &host,
        ADMIN,
        Method::POST,
        "/v1/admin/endpoints",
        Some(json!({"url": receiver.url("/dynamic")})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["endpoint"]["id"].as_str().unwrap().to_owned();
    browser(&host, "rotate", &[("UI_ENDPOINT", id)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_the_live_tail_holds_events_while_paused_and_shows_them_on_resume() {
    let receiver = TestReceiver::start().await;
    let host = TestHost::start(&server(), &config(&receiver.url("/shop"))).await.unwrap();
    browser(&host, "live_pause", &[]);
}

/// One failed attempt (a dead letter) and two delivered: 66.7 % over 24 h, one bar with a
/// failed part; an endpoint without attempts shows no rate and no bar.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_the_endpoints_list_shows_24h_success_p95_sparkline_and_queue() {
    let receiver = TestReceiver::scripted(vec![Reply::Status(500)], Reply::Status(200)).await;
    let host = TestHost::start(&server(), &config(&receiver.url("/shop"))).await.unwrap();
    let first = send(&host, r#"{"type":"order.created","n":0}"#, &[]).await;
    delivery_in(&host, &first, "dead").await;
    for n in 1..3 {
        let event = send(&host, &format!("{{\"type\":\"order.created\",\"n\":{n}}}"), &[]).await;
        delivery_in(&host, &event, "delivered").await;
    }
    let input = json!({"url": receiver.url("/quiet"), "types": ["nothing.*"]});
    let (status, created) =
        api(&host, ADMIN, Method::POST, "/v1/admin/endpoints", Some(input)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let quiet = created["endpoint"]["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/admin/stats/endpoints?endpoints=shop,{quiet}");
    let (status, figures) = api(&host, VIEWER, Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::OK, "{figures}");
    let shop = &figures["data"][0];
    assert_eq!((shop["endpoint"].as_str(), shop["attempts"].as_u64()), (Some("shop"), Some(3)));
    assert_eq!((shop["failed"].as_u64(), shop["dead_letters"].as_u64()), (Some(1), Some(1)));
    let buckets: Vec<u64> = serde_json::from_value(shop["buckets"].clone()).unwrap();
    assert_eq!((buckets.len(), buckets[23]), (24, 3), "the last hour holds them: {buckets:?}");
    assert_eq!(figures["data"][1]["attempts"], 0);
    assert!(figures["data"][1]["success_percent"].is_null());
    browser(&host, "endpoint_figures", &[("UI_SUCCESS", "66.7 %".into()), ("UI_QUIET", quiet)]);
}

/// Edit changes the URL and the next delivery goes there; delete states how many queued
/// deliveries it drops, and then the endpoint is gone and they are dead letters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_edit_moves_deliveries_to_the_new_url_and_delete_counts_what_it_drops() {
    let mut receiver = TestReceiver::start().await;
    let host = TestHost::start(&server(), &config(&receiver.url("/shop"))).await.unwrap();
    let input = json!({"url": receiver.url("/old"), "sources": ["app"]});
    let (status, created) =
        api(&host, ADMIN, Method::POST, "/v1/admin/endpoints", Some(input)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let endpoint = created["endpoint"]["id"].as_str().unwrap().to_owned();
    let out = tempfile::NamedTempFile::new().unwrap();
    let environment = [
        ("UI_ENDPOINT", endpoint.clone()),
        ("UI_NEW_URL", receiver.url("/new")),
        ("UI_EVENT_OUT", out.path().display().to_string()),
    ];
    browser(&host, "edit_delete", &environment);
    let event = std::fs::read_to_string(out.path()).unwrap();
    let mut paths = Vec::new();
    while let Some(request) = receiver.next(Duration::from_secs(2)).await {
        if request.header("webhook-id") == Some(event.as_str()) {
            paths.push(request.path);
        }
    }
    assert!(paths.iter().any(|path| path == "/new"), "the next delivery went to /new: {paths:?}");
    assert!(!paths.iter().any(|path| path == "/old"), "none went to /old: {paths:?}");
    let (status, _) =
        api(&host, ADMIN, Method::GET, &format!("/v1/admin/endpoints/{endpoint}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let path = format!("/v1/admin/dead-letters?endpoint={endpoint}");
    let (_, dead) = api(&host, ADMIN, Method::GET, &path, None).await;
    assert_eq!(dead["data"].as_array().unwrap().len(), 2, "the parked deliveries were dropped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_bulk_redrive_redrives_what_the_dry_run_counted() {
    let receiver = TestReceiver::scripted(vec![Reply::Status(500); 3], Reply::Status(200)).await;
    let host = TestHost::start(&server(), &config(&receiver.url("/shop"))).await.unwrap();
    for n in 0..3 {
        let event = send(&host, &format!("{{\"type\":\"order.created\",\"n\":{n}}}"), &[]).await;
        delivery_in(&host, &event, "dead").await;
    }
    browser(&host, "redrive", &[("UI_DEAD", "3".into())]);
    let (_, page) = api(&host, ADMIN, Method::GET, "/v1/admin/dead-letters", None).await;
    assert_eq!(page["data"].as_array().unwrap().len(), 0, "every dead letter was redriven");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_redrive_by_selection_redrives_only_the_ticked_dead_letters() {
    let receiver = TestReceiver::scripted(vec![Reply::Status(500); 3], Reply::Status(200)).await;
    let host = TestHost::start(&server(), &config(&receiver.url("/shop"))).await.unwrap();
    for n in 0..3 {
        let event = send(&host, &format!("{{\"type\":\"order.created\",\"n\":{n}}}"), &[]).await;
        delivery_in(&host, &event, "dead").await;
    }
    browser(&host, "redrive_selected", &[]);
    let (_, page) = api(&host, ADMIN, Method::GET, "/v1/admin/dead-letters", None).await;
    assert_eq!(page["data"].as_array().unwrap().len(), 1, "the unticked one stays dead");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_a_viewer_sees_every_page_and_can_neither_act_nor_see_a_secret() {
    let receiver = TestReceiver::scripted(vec![Reply::Status(500)], Reply::Status(200)).await;
    let host = TestHost::start(&server(), &config(&receiver.url("/shop"))).await.unwrap();
    let event =
        send(&host, r#"{"type":"order.created"}"#, &[("x-api-key", "viewer-must-not-see")]).await;
    let dead = delivery_in(&host, &event, "dead").await;
    let environment = [
        ("UI_EVENT", event),
        ("UI_ENDPOINT", "shop".into()),
        ("UI_DELIVERY", dead["id"].to_string()),
    ];
    browser(&host, "viewer", &environment);
    let (_, endpoint) = api(&host, ADMIN, Method::GET, "/v1/admin/endpoints/shop", None).await;
    assert_eq!(endpoint["disabled"], false, "the viewer's POSTs changed nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_a_body_holding_a_script_is_shown_as_text_and_runs_nothing() {
    let receiver = TestReceiver::start().await;
    let host = TestHost::start(&server(), &config(&receiver.url("/shop"))).await.unwrap();
    let body =
        r#"<script>window.__pwned = 1</script><img src=x onerror="window.__pwned=2;alert(1)">"#;
    let event = send(&host, body, &[("content-type", "text/html")]).await;
    browser(&host, "script_body", &[("UI_EVENT", event)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_stream_resumes_after_the_last_event_id_then_goes_on_live() {
    let receiver = TestReceiver::start().await;
    let host = TestHost::start(&server(), &config(&receiver.url("/shop"))).await.unwrap();
    let mut sent = Vec::new();
    for n in 0..3 {
        sent.push(send(&host, &format!("{{\"type\":\"tail.check\",\"n\":{n}}}"), &[]).await);
    }
    let cookie = sign_in(&host, VIEWER).await;
    let mut response = client()
        .get(host.url("/ui/stream"))
        .header(COOKIE, &cookie)
        .header("last-event-id", &sent[0])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut text = String::new();
    let mut read_until = async |needle: &str, text: &mut String| {
        let deadline = Instant::now() + WAIT;
        while !text.contains(needle) {
            assert!(Instant::now() < deadline, "no `{needle}` in the stream:\n{text}");
            let chunk = tokio::time::timeout(WAIT, response.chunk()).await.unwrap().unwrap();
            text.push_str(&String::from_utf8_lossy(&chunk.expect("the stream stays open")));
        }
    };
    read_until(&format!("id: {}", sent[2]), &mut text).await;
    assert!(!text.contains(&format!("id: {}\n", sent[0])), "nothing before the last id seen");
    let missed = text.find(&format!("id: {}", sent[1])).expect("the missed events come first");
    assert!(missed < text.find(&format!("id: {}", sent[2])).unwrap(), "oldest first");
    let live = send(&host, r#"{"type":"tail.check","n":3}"#, &[]).await;
    read_until(&format!("id: {live}"), &mut text).await;
    assert!(text.contains("event: accepted"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_route_trace_page_says_which_route_matched_and_why_the_other_did_not() {
    let receiver = TestReceiver::start().await;
    let extra_route =
        "\n[routes.invoices]\nfrom = [\"app\"]\ntypes = [\"invoice.*\"]\nto = [\"shop\"]\n";
    let config = format!("{}{extra_route}", config(&receiver.url("/shop")));
    let host = TestHost::start(&server(), &config).await.unwrap();
    let event = send(&host, r#"{"type":"order.created"}"#, &[]).await;
    let cookie = sign_in(&host, VIEWER).await;
    let page = client()
        .get(host.url(&format!("/ui/events/{event}/trace")))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    let row = |route: &str| {
        let start = html.find(&format!("<tr><td>{route}</td>")).unwrap_or_else(|| panic!("{html}"));
        html[start..].split("</tr>").next().unwrap().to_owned()
    };
    assert!(row("all").contains("yes"), "{}", row("all"));
    let invoices = row("invoices");
    assert!(invoices.contains(">no<") && invoices.contains("✗ type"), "{invoices}");
    assert!(html.contains("id=\"trace-outcome\">accepted<"), "{html}");
    let missing = client()
        .get(host.url("/ui/events/evt_01KAQ2Y5Q0J7N7ZJ0W3M9X8RTV/trace"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_the_curl_command_of_a_delivery_run_against_the_receiver_verifies() {
    let mut receiver = TestReceiver::start().await;
    let host = TestHost::start(&server(), &config(&receiver.url("/shop"))).await.unwrap();
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let input = json!({"url": receiver.url("/dynamic"), "sources": ["app"], "secret": secret});
    let (status, created) =
        api(&host, ADMIN, Method::POST, "/v1/admin/endpoints", Some(input)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let endpoint = created["endpoint"]["id"].as_str().unwrap().to_owned();
    let body = "{\"type\":\"order.created\",\"note\":\"it's <b>\"}";
    let event = send(&host, body, &[]).await;
    let path = format!("/v1/admin/deliveries?event={event}&endpoint={endpoint}");
    let delivery = eventually_async(WAIT, || async {
        let (_, page) = api(&host, ADMIN, Method::GET, &path, None).await;
        page["data"].as_array()?.iter().find(|d| d["status"] == "delivered").cloned()
    })
    .await
    .expect("delivered once by the router");
    receiver.drain();
    let out = tempfile::NamedTempFile::new().unwrap();
    let environment = [
        ("UI_DELIVERY", delivery["id"].to_string()),
        ("UI_CURL_OUT", out.path().display().to_string()),
    ];
    browser(&host, "curl", &environment);
    let command = std::fs::read_to_string(out.path()).unwrap();
    let ran = Command::new("sh").arg("-c").arg(&command).output().unwrap();
    assert!(ran.status.success(), "{command}\n{}", String::from_utf8_lossy(&ran.stderr));
    let resent = receiver.next(WAIT).await.expect("the curl command reached the receiver");
    assert_eq!(resent.path, "/dynamic");
    assert_eq!(resent.body, body.as_bytes(), "byte for byte");
    assert_eq!(resent.header("webhook-id"), Some(event.as_str()));
    let verdicts = switchyard_e2e::verify_with_standardwebhooks(secret, &[resent]);
    assert_eq!(verdicts, [Ok(())], "the fresh signature verifies");
    let (status, _) = api(
        &host,
        VIEWER,
        Method::POST,
        &format!("/v1/admin/deliveries/{}/curl", delivery["id"]),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a viewer gets no signed command");
}

/// A Stripe source behind the `verify-stripe` plugin, routed to the receiver.
fn stripe_config(url: &str) -> String {
    format!(
        "{}\n[secrets]\nstripe = {{ value = \"whsec_test_stripe_secret\" }}\n\n\
         [plugins.verify-stripe]\npath = \"{}\"\nsecrets = [\"stripe\"]\nconfig = {{ secret = \"stripe\" }}\n\n\
         [sources.stripe]\ntype = \"http\"\nverify = [\"verify-stripe\"]\n\n\
         [routes.stripe]\nfrom = [\"stripe\"]\nto = [\"shop\"]\n",
        config(url),
        switchyard_e2e::plugin_wasm("verify-stripe").display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_event_is_signed_as_the_provider_signs_and_goes_through_the_verify_plugin() {
    let mut receiver = TestReceiver::start().await;
    let host = TestHost::start(&server(), &stripe_config(&receiver.url("/shop"))).await.unwrap();
    let (status, answer) =
        api(&host, ADMIN, Method::POST, "/v1/admin/sources/stripe/test", Some(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        (answer["outcome"].as_str(), answer["status"].as_u64()),
        (Some("accepted"), Some(202)),
        "{answer}"
    );
    assert_eq!(answer["scheme"], "stripe");
    assert!(answer["headers"]["stripe-signature"].as_str().unwrap().starts_with("t="));
    assert!(
        !answer.to_string().contains("whsec_test_stripe_secret"),
        "the secret is never answered"
    );
    let delivered = receiver.next(WAIT).await.expect("the test event is routed and delivered");
    assert!(String::from_utf8_lossy(&delivered.body).contains("switchyard.test"));
    // Signed the wrong way, the verify plugin refuses it as it would refuse the provider.
    let wrong = json!({"scheme": "github"});
    let (_, refused) =
        api(&host, ADMIN, Method::POST, "/v1/admin/sources/stripe/test", Some(wrong)).await;
    assert_eq!(
        (refused["outcome"].as_str(), refused["status"].as_u64()),
        (Some("rejected"), Some(401)),
        "{refused}"
    );
    let (status, _) =
        api(&host, VIEWER, Method::POST, "/v1/admin/sources/stripe/test", Some(json!({}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) =
        api(&host, ADMIN, Method::POST, "/v1/admin/sources/nope/test", Some(json!({}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_send_test_event_shows_what_the_provider_would_get() {
    let receiver = TestReceiver::start().await;
    let host = TestHost::start(&server(), &stripe_config(&receiver.url("/shop"))).await.unwrap();
    browser(&host, "test_event", &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_a_portal_link_shows_only_its_endpoint_and_stops_working_after_its_ttl() {
    let receiver = TestReceiver::start().await;
    let host = TestHost::start(&server(), &config(&receiver.url("/shop"))).await.unwrap();
    let input = json!({"url": receiver.url("/customer"), "sources": ["app"]});
    let (status, created) =
        api(&host, ADMIN, Method::POST, "/v1/admin/endpoints", Some(input)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let endpoint = created["endpoint"]["id"].as_str().unwrap().to_owned();
    let event = send(&host, r#"{"type":"order.created"}"#, &[]).await;
    delivery_in(&host, &event, "delivered").await;
    let path = format!("/v1/admin/deliveries?event={event}");
    let all = eventually_async(WAIT, || async {
        let (_, page) = api(&host, ADMIN, Method::GET, &path, None).await;
        let rows = page["data"].as_array()?.clone();
        (rows.len() == 2 && rows.iter().all(|d| d["status"] == "delivered")).then_some(rows)
    })
    .await
    .expect("both deliveries made");
    let id_of =
        |endpoint: &str| all.iter().find(|d| d["endpoint"] == endpoint).unwrap()["id"].to_string();
    let portal = format!("/v1/admin/endpoints/{endpoint}/portal");
    let (status, _) = api(&host, VIEWER, Method::POST, &portal, Some(json!({"ttl": "1h"}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "viewers make no links");
    let (status, link) =
        api(&host, ADMIN, Method::POST, &portal, Some(json!({"ttl": "15s"}))).await;
    assert_eq!(status, StatusCode::OK, "{link}");
    let environment = [
        ("UI_PORTAL", link["url"].as_str().unwrap().to_owned()),
        ("UI_ENDPOINT", endpoint.clone()),
        ("UI_DELIVERY", id_of(&endpoint)),
        ("UI_OTHER", id_of("shop")),
    ];
    // The ttl leaves a loaded machine time to start the browser and look before it expires.
    browser(&host, "portal", &environment);
}

/// The `app` → `shop` config with `redact` as `shop`'s transform, hiding `/card/number`.
fn redact_config(url: &str) -> String {
    let redact = switchyard_e2e::plugin_wasm("redact");
    format!(
        "[egress]\nallow_networks = [\"127.0.0.0/8\"]\n\n[sources.app]\ntype = \"http\"\n\n\
         [plugins.redact]\npath = \"{}\"\nconfig = {{ pointers = \"/card/number\" }}\n\n\
         [endpoints.shop]\nurl = \"{url}\"\ntransform = \"redact\"\n\n\
         [routes.all]\nfrom = [\"app\"]\nto = [\"shop\"]\n",
        redact.display()
    )
}

/// Two delivered events, one with a card and one with a customer's name; answers the second.
async fn card_and_name_events(host: &TestHost) -> String {
    let card = send(host, r#"{"card":{"number":"4242"}}"#, &[]).await;
    delivery_in(host, &card, "delivered").await;
    let name = send(host, r#"{"customer":{"name":"Jane"}}"#, &[]).await;
    delivery_in(host, &name, "delivered").await;
    name
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_through_a_candidate_plugin_answers_what_it_changes_and_sends_nothing() {
    let mut receiver = TestReceiver::start().await;
    let host = TestHost::start(&server(), &redact_config(&receiver.url("/shop"))).await.unwrap();
    let name = card_and_name_events(&host).await;
    let candidate = switchyard_e2e::plugin_wasm("redact");
    let request = json!({
        "candidate_path": candidate.to_str().unwrap(),
        "config": {"pointers": "/card/number,/customer/name"},
    });
    let path = "/v1/admin/plugins/redact/rerun";
    let (status, answer) = api(&host, ADMIN, Method::POST, path, Some(request.clone())).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["events"], 2);
    assert_eq!(answer["unchanged"].as_array().unwrap().len(), 1);
    let changed = &answer["changed"][0];
    assert_eq!(changed["name"], name.as_str());
    assert_eq!(
        (changed["old_verdict"].as_str(), changed["new_verdict"].as_str()),
        (Some("pass"), Some("modify"))
    );
    assert_eq!(
        changed["changes"][1]["new"]["body_json"]["customer"]["name"], "[redacted]",
        "{answer}"
    );

    let same = json!({"candidate_path": candidate.to_str().unwrap(), "limit": 1});
    let (status, answer) = api(&host, ADMIN, Method::POST, path, Some(same)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        (answer["events"].as_u64(), answer["changed"].as_array().map(Vec::len)),
        (Some(1), Some(0))
    );

    let (status, _) = api(&host, VIEWER, Method::POST, path, Some(request.clone())).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "viewers run no code");
    let (status, _) =
        api(&host, ADMIN, Method::POST, "/v1/admin/plugins/nope/rerun", Some(request)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, refused) = api(&host, ADMIN, Method::POST, path, Some(json!({}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(refused["field"], "candidate_wasm");
    let garbage = json!({"candidate_wasm": "AGFzbQ=="});
    let (status, refused) = api(&host, ADMIN, Method::POST, path, Some(garbage)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert!(refused["detail"].as_str().unwrap().contains("cannot load the candidate"), "{refused}");

    let (_, events) = api(&host, ADMIN, Method::GET, "/v1/admin/events", None).await;
    assert_eq!(events["data"].as_array().unwrap().len(), 2, "a re-run stores nothing");
    let (status, plugins) = api(&host, VIEWER, Method::GET, "/v1/admin/plugins", None).await;
    assert_eq!(status, StatusCode::OK, "{plugins}");
    let redact = &plugins["data"][0];
    assert_eq!(redact["used_by"], json!(["transform of shop"]), "{plugins}");
    assert_eq!(redact["calls"]["ok"], 2, "re-runs are not counted: {plugins}");
    assert!(redact["mean_call_ms"].as_f64().unwrap() > 0.0);
    let p50 = redact["p50_call_ms"].as_f64().unwrap();
    let p95 = redact["p95_call_ms"].as_f64().unwrap();
    assert!(0.0 < p50 && p50 <= p95, "{plugins}");
    assert!(redact["last_error"].is_null());
    assert_eq!(receiver.drain().len(), 2, "a re-run sends nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_the_plugin_rerun_shows_a_diff_for_a_changed_transform() {
    let receiver = TestReceiver::start().await;
    let host = TestHost::start(&server(), &redact_config(&receiver.url("/shop"))).await.unwrap();
    let name = card_and_name_events(&host).await;
    let candidate = switchyard_e2e::plugin_wasm("redact").display().to_string();
    browser(&host, "rerun", &[("UI_CANDIDATE", candidate), ("UI_CHANGED", name)]);
}

/// The Stripe config with `shop` signing as Standard Webhooks with a known secret.
fn signing_config(url: &str) -> String {
    stripe_config(url)
        .replace(
            "retry = { schedule = [] }\n",
            "retry = { schedule = [] }\nsecret = \"shop-key\"\n",
        )
        .replace(
            "[secrets]\n",
            "[secrets]\nshop-key = { value = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\" }\n",
        )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_signature_helper_names_the_part_that_differs_for_deliveries_and_sources() {
    let mut receiver = TestReceiver::start().await;
    let host = TestHost::start(&server(), &signing_config(&receiver.url("/shop"))).await.unwrap();
    let check = "/v1/admin/signatures/check";
    // A delivery of `shop`, as its receiver got it, checked with the endpoint's own secrets.
    let event = send(&host, r#"{"type":"order.created"}"#, &[]).await;
    let delivered = receiver.next(WAIT).await.expect("the delivery arrives");
    let headers: serde_json::Map<String, Value> =
        delivered.headers.iter().map(|(name, value)| (name.clone(), json!(value))).collect();
    let body = String::from_utf8(delivered.body.to_vec()).unwrap();
    let request = json!({"endpoint": "shop", "headers": headers, "body": body});
    let (status, answer) = api(&host, ADMIN, Method::POST, check, Some(request)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["valid"], true, "{answer}");
    assert_eq!(delivered.header("webhook-id"), Some(event.as_str()));
    let changed = json!({"endpoint": "shop", "headers": headers, "body": format!("{body}\n")});
    let (_, answer) = api(&host, ADMIN, Method::POST, check, Some(changed)).await;
    assert_eq!(
        (answer["valid"].as_bool(), answer["findings"][0]["part"].as_str()),
        (Some(false), Some("body")),
        "{answer}"
    );

    // A Stripe test event, checked with the source's secret, then with a pasted wrong one.
    let sample = r#"{"id":"evt_helper","object":"event"}"#;
    let test = json!({"body": sample});
    let (status, sent) =
        api(&host, ADMIN, Method::POST, "/v1/admin/sources/stripe/test", Some(test)).await;
    assert_eq!(status, StatusCode::OK, "{sent}");
    let request = json!({"source": "stripe", "headers": sent["headers"], "body": sample});
    let (_, answer) = api(&host, ADMIN, Method::POST, check, Some(request)).await;
    assert_eq!(answer["valid"], true, "{answer}");
    let pasted = json!({"scheme": "stripe", "secret": "whsec_not_it", "headers": sent["headers"], "body": sample});
    let (_, answer) = api(&host, ADMIN, Method::POST, check, Some(pasted.clone())).await;
    assert_eq!(answer["findings"][0]["part"], "secret", "{answer}");
    assert!(!answer.to_string().contains("whsec_not_it"), "the secret is never echoed");

    let (status, _) = api(&host, VIEWER, Method::POST, check, Some(pasted)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, refused) = api(&host, ADMIN, Method::POST, check, Some(json!({"body": ""}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    let nobody = json!({"endpoint": "nobody", "body": ""});
    let (status, _) = api(&host, ADMIN, Method::POST, check, Some(nobody)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_the_signature_helper_says_a_body_was_changed() {
    let mut receiver = TestReceiver::start().await;
    let host = TestHost::start(&server(), &signing_config(&receiver.url("/shop"))).await.unwrap();
    send(&host, r#"{"type":"order.created","total":12}"#, &[]).await;
    let delivered = receiver.next(WAIT).await.expect("the delivery arrives");
    let headers: Vec<String> = ["webhook-id", "webhook-timestamp", "webhook-signature"]
        .iter()
        .map(|name| format!("{name}: {}", delivered.header(name).unwrap()))
        .collect();
    let body = String::from_utf8(delivered.body.to_vec()).unwrap();
    let environment = [("UI_HEADERS", headers.join("\n")), ("UI_BODY", body)];
    browser(&host, "signatures", &environment);
}

/// A delivery signed before a rotation (a `v1a` ed25519 key): the helper, given the endpoint,
/// tries its current and previous keys and says the previous one matched; a changed body
/// matches none. No key is ever in an answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_the_signature_helper_says_which_key_of_a_dynamic_endpoint_matched() {
    let mut receiver = TestReceiver::start().await;
    let host = TestHost::start(&server(), &config(&receiver.url("/shop"))).await.unwrap();
    let secret = "whsk_BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";
    let input = json!({"url": receiver.url("/dynamic"), "sources": ["app"], "secret": secret});
    let (status, created) =
        api(&host, ADMIN, Method::POST, "/v1/admin/endpoints", Some(input)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let endpoint = created["endpoint"]["id"].as_str().unwrap().to_owned();
    send(&host, r#"{"type":"order.created","total":12}"#, &[]).await;
    let delivered = loop {
        let request = receiver.next(WAIT).await.expect("the delivery arrives");
        if request.path == "/dynamic" {
            break request;
        }
    };
    assert!(delivered.header("webhook-signature").unwrap().starts_with("v1a,"));
    let rotate = format!("/v1/admin/endpoints/{endpoint}/secret/rotate");
    let (status, rotated) = api(&host, ADMIN, Method::POST, &rotate, Some(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let headers: BTreeMap<&str, &str> = ["webhook-id", "webhook-timestamp", "webhook-signature"]
        .into_iter()
        .map(|name| (name, delivered.header(name).unwrap()))
        .collect();
    let body = String::from_utf8(delivered.body.to_vec()).unwrap();
    let check = |body: &str| json!({"endpoint": endpoint, "headers": headers, "body": body});
    let path = "/v1/admin/signatures/check";
    let (status, answer) = api(&host, ADMIN, Method::POST, path, Some(check(&body))).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["valid"], true, "{answer}");
    assert!(answer["key"].as_str().unwrap().starts_with("a previous key"), "{answer}");
    let changed = body.replace("12", "13");
    let (_, answer) = api(&host, ADMIN, Method::POST, path, Some(check(&changed))).await;
    assert_eq!(answer["signature_matches"], false, "{answer}");
    assert_eq!(answer["key"], "none of the endpoint's 2 keys in use (current and previous)");
    assert!(!answer.to_string().contains("whsk_") && !answer.to_string().contains("whsec_"));
    let (status, _) = api(&host, VIEWER, Method::POST, path, Some(check(&body))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a viewer cannot use a key as an oracle");
    let lines: Vec<String> =
        headers.iter().map(|(name, value)| format!("{name}: {value}")).collect();
    let environment =
        [("UI_ENDPOINT", endpoint.clone()), ("UI_HEADERS", lines.join("\n")), ("UI_BODY", body)];
    browser(&host, "signatures_endpoint_keys", &environment);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_replay_by_time_range_makes_what_the_dry_run_counted() {
    let receiver = TestReceiver::start().await;
    let host = TestHost::start(&server(), &config(&receiver.url("/shop"))).await.unwrap();
    for n in 0..3 {
        let event = send(&host, &format!("{{\"type\":\"order.created\",\"n\":{n}}}"), &[]).await;
        delivery_in(&host, &event, "delivered").await;
    }
    browser(&host, "replay", &[("UI_EVENTS", "3".into())]);
    let (_, page) =
        api(&host, ADMIN, Method::GET, "/v1/admin/deliveries?endpoint=shop", None).await;
    assert_eq!(page["data"].as_array().unwrap().len(), 6, "each event was delivered again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plugins_list_keeps_a_failing_plugins_last_error() {
    let receiver = TestReceiver::start().await;
    let hostile = switchyard_e2e::plugin_wasm("hostile");
    let config = redact_config(&receiver.url("/shop"))
        .replace("transform = \"redact\"", "transform = \"hostile\"")
        .replace(
            "[endpoints.shop]",
            &format!(
                "[plugins.hostile]\npath = \"{}\"\nconfig = {{ mode = \"panic\" }}\n\n[endpoints.shop]",
                hostile.display()
            ),
        );
    let host = TestHost::start(&server(), &config).await.unwrap();
    let _ = client()
        .post(host.url("/webhooks/app"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    let failed = eventually_async(WAIT, || async {
        let (_, plugins) = api(&host, ADMIN, Method::GET, "/v1/admin/plugins", None).await;
        let hostile = plugins["data"].as_array()?.iter().find(|p| p["id"] == "hostile")?.clone();
        (hostile["calls"]["failed"].as_u64()? >= 1).then_some(hostile)
    })
    .await
    .expect("the failed call is counted");
    let message = failed["last_error"]["message"].as_str().unwrap();
    assert!(!message.is_empty(), "{failed}");
    assert!(failed["last_error"]["at"].as_u64().unwrap() > 0);
    let cookie = sign_in(&host, VIEWER).await;
    let page = client().get(host.url("/ui/plugins")).header(COOKIE, cookie).send().await.unwrap();
    let html = page.text().await.unwrap();
    assert!(html.contains("failed 1"), "the page shows the failure count");
    assert!(html.contains("transform of shop"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_portal_retry_is_audited_as_the_portal_link() {
    let receiver = TestReceiver::start().await;
    let host = TestHost::start(&server(), &config(&receiver.url("/shop"))).await.unwrap();
    let input = json!({"url": receiver.url("/customer"), "sources": ["app"]});
    let (status, created) =
        api(&host, ADMIN, Method::POST, "/v1/admin/endpoints", Some(input)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let endpoint = created["endpoint"]["id"].as_str().unwrap().to_owned();
    let event = send(&host, r#"{"type":"order.created"}"#, &[]).await;
    let path = format!("/v1/admin/deliveries?event={event}&endpoint={endpoint}");
    let delivery = eventually_async(WAIT, || async {
        let (_, page) = api(&host, ADMIN, Method::GET, &path, None).await;
        page["data"].as_array()?.iter().find(|d| d["status"] == "delivered").cloned()
    })
    .await
    .expect("delivered to the subscriber");
    let portal = format!("/v1/admin/endpoints/{endpoint}/portal");
    let (_, link) = api(&host, ADMIN, Method::POST, &portal, Some(json!({"ttl": "1h"}))).await;
    let url = link["url"].as_str().unwrap();
    let retried = client()
        .post(host.url(&format!("{url}/deliveries/{}/retry", delivery["id"])))
        .header(ORIGIN, format!("http://{}", host.address))
        .send()
        .await
        .unwrap();
    assert!(retried.status().is_redirection(), "{}", retried.status());
    let (_, audit) =
        api(&host, ADMIN, Method::GET, "/v1/admin/audit?action=delivery.retry", None).await;
    let entry = &audit["data"][0];
    assert_eq!(entry["role"], "portal", "{audit}");
    assert_eq!(entry["outcome"], "success", "{audit}");
    let token = url.strip_prefix("/portal/").unwrap();
    let (unsigned, signature) = token.rsplit_once('.').unwrap();
    assert_eq!(entry["credential"], unsigned, "the link's id");
    assert!(!audit.to_string().contains(signature), "the link's signature is not recorded");
}

/// The test receiver's next request as the test event of `endpoint` that `delivery` sent,
/// its Standard Webhooks signature checked with `secret`.
async fn signed_test_event(receiver: &mut TestReceiver, endpoint: &str, secret: &str) -> String {
    let request = receiver.next(WAIT).await.expect("the test event reaches the receiver");
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body["type"], "switchyard.endpoint.test", "{body}");
    assert_eq!(body["endpoint"], endpoint, "{body}");
    let event = request.header("webhook-id").expect("sent as a delivery, with its id").to_owned();
    let verdicts = switchyard_e2e::verify_with_standardwebhooks(secret, &[request]);
    assert_eq!(verdicts, [Ok(())], "signed as any delivery");
    event
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_send_test_event_on_an_endpoint_delivers_a_signed_test_event() {
    let mut receiver = TestReceiver::start().await;
    let host = TestHost::start(&server(), &signing_config(&receiver.url("/shop"))).await.unwrap();
    let out = tempfile::NamedTempFile::new().unwrap();
    let environment =
        [("UI_ENDPOINT", "shop".to_owned()), ("UI_OUT", out.path().display().to_string())];
    browser(&host, "endpoint_test", &environment);
    let event =
        signed_test_event(&mut receiver, "shop", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").await;
    let delivery = std::fs::read_to_string(out.path()).unwrap();
    let (_, shown) =
        api(&host, ADMIN, Method::GET, &format!("/v1/admin/deliveries/{delivery}"), None).await;
    assert_eq!(
        (shown["event"].as_str(), shown["endpoint"].as_str()),
        (Some(&*event), Some("shop"))
    );
    let (_, stored) =
        api(&host, ADMIN, Method::GET, &format!("/v1/admin/events/{event}"), None).await;
    assert_eq!(stored["source"], "switchyard", "{stored}");
    // A viewer's page has no button, and a viewer's post is refused.
    let cookie = sign_in(&host, VIEWER).await;
    let page = client().get(host.url("/ui/endpoints/shop")).header(COOKIE, &cookie).send().await;
    let html = page.unwrap().text().await.unwrap();
    assert!(html.contains("Endpoint shop") && !html.contains("send-test"), "{html}");
    let refused = client()
        .post(host.url("/ui/endpoints/shop/test"))
        .header(COOKIE, &cookie)
        .header(ORIGIN, format!("http://{}", host.address))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(receiver.drain().is_empty(), "the viewer sent nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_the_portal_sends_a_test_event_to_its_endpoint_only() {
    let mut receiver = TestReceiver::start().await;
    let host = TestHost::start(&server(), &config(&receiver.url("/shop"))).await.unwrap();
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let input = json!({"url": receiver.url("/customer"), "sources": ["app"], "secret": secret});
    let (status, created) =
        api(&host, ADMIN, Method::POST, "/v1/admin/endpoints", Some(input)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let endpoint = created["endpoint"]["id"].as_str().unwrap().to_owned();
    let portal = format!("/v1/admin/endpoints/{endpoint}/portal");
    let (_, link) = api(&host, ADMIN, Method::POST, &portal, Some(json!({"ttl": "1h"}))).await;
    let url = link["url"].as_str().unwrap().to_owned();
    let out = tempfile::NamedTempFile::new().unwrap();
    let environment = [("UI_PORTAL", url.clone()), ("UI_OUT", out.path().display().to_string())];
    browser(&host, "portal_test", &environment);
    let event = signed_test_event(&mut receiver, &endpoint, secret).await;
    let delivery = std::fs::read_to_string(out.path()).unwrap();
    let (_, shown) =
        api(&host, ADMIN, Method::GET, &format!("/v1/admin/deliveries/{delivery}"), None).await;
    assert_eq!(
        (shown["event"].as_str(), shown["endpoint"].as_str()),
        (Some(&*event), Some(&*endpoint))
    );
    assert!(receiver.drain().is_empty(), "nothing went to `shop`");
    let (_, audit) =
        api(&host, ADMIN, Method::GET, "/v1/admin/audit?action=endpoint.test", None).await;
    let entry = &audit["data"][0];
    assert_eq!(
        (entry["role"].as_str(), entry["resource"].as_str()),
        (Some("portal"), Some(&*format!("endpoint/{endpoint}"))),
        "{audit}"
    );
    let token = url.strip_prefix("/portal/").unwrap();
    assert_eq!(entry["credential"], token.rsplit_once('.').unwrap().0, "the link's id");
}
