//! `to-slack`: turns an operational event of the built-in `switchyard` source into the body
//! of a Slack incoming-webhook message.
//!
//! Owns the wording of each notification type and the message shape: `text` (the one line
//! Slack shows in notifications) and one `section` block in Slack's `mrkdwn` with the details
//! the event carries (last error, consecutive failures, the delivery, admin API links, how many
//! notifications the storm guard folded in). The config key `admin_url` (e.g.
//! `https://switchyard.example.com`) turns the admin paths into links. Events of other sources,
//! and bodies that are not a JSON object, pass unchanged: it must not invent a message for
//! something it does not understand.

use switchyard_sdk::serde_json::{Map, Value, json};
use switchyard_sdk::{Event, Failure, host};

/// The built-in source whose events this plugin reshapes.
const SOURCE: &str = "switchyard";

#[switchyard_sdk::transform]
fn to_slack(mut event: Event) -> Result<Event, Failure> {
    if event.source != SOURCE {
        return Ok(event);
    }
    let Ok(Value::Object(notice)) = event.body_json::<Value>() else {
        return Ok(event);
    };
    let admin_url = host::config("admin_url").unwrap_or_default();
    let message = message(&event.type_, &notice, admin_url.trim_end_matches('/'));
    event.set_body_json(&message)?;
    event.set_header("content-type", "application/json");
    Ok(event)
}

/// The Slack message for a notification of type `event_type` with body `notice`.
fn message(event_type: &str, notice: &Map<String, Value>, admin_url: &str) -> Value {
    let (subject, what) = match notice.get("source") {
        Some(source) => ("source", source),
        None => ("endpoint", notice.get("endpoint").unwrap_or(&Value::Null)),
    };
    let id = what.get("id").and_then(Value::as_str).unwrap_or("?");
    let headline = headline(event_type, subject, id);
    let mut lines = vec![format!("*{headline}*")];
    let number = |key: &str| notice.get(key).and_then(Value::as_u64);
    if let Some(error) = notice.get("last_error").and_then(Value::as_str) {
        lines.push(format!("Last error: `{error}`"));
    }
    if let Some(failures) = number("consecutive_failures") {
        lines.push(format!("Consecutive failed attempts: {failures}"));
    }
    if let Some(delivery) = notice.get("delivery") {
        let delivery_id = delivery.get("id").and_then(Value::as_str).unwrap_or("?");
        let attempts = delivery.get("attempts").and_then(Value::as_u64);
        let attempts = attempts.map(|count| format!(" after {count} attempts")).unwrap_or_default();
        let link = link(admin_url, delivery.get("admin"), &format!("delivery {delivery_id}"));
        lines.push(format!("Delivery: {link}{attempts}"));
    }
    if let Some(more) = number("occurrences").filter(|count| *count > 1) {
        lines.push(format!("{} more since the last notification", more - 1));
    }
    lines.push(link(admin_url, what.get("admin"), &format!("{subject} {id}")));
    json!({
        "text": headline,
        "blocks": [{
            "type": "section",
            "text": {"type": "mrkdwn", "text": lines.join("\n")},
        }],
    })
}

fn headline(event_type: &str, subject: &str, id: &str) -> String {
    let what = match event_type {
        "switchyard.endpoint.failing" => "is failing",
        "switchyard.endpoint.recovered" => "recovered",
        "switchyard.endpoint.disabled" => "was disabled; its deliveries are parked",
        "switchyard.breaker.opened" => "circuit breaker opened",
        "switchyard.breaker.closed" => "circuit breaker closed",
        "switchyard.delivery.dead_lettered" => "has a new dead letter",
        "switchyard.source.rate_limited" => "is rate limited",
        other => return format!("Switchyard: {other} ({subject} `{id}`)"),
    };
    format!("Switchyard: {subject} `{id}` {what}")
}

/// `<admin_url + path|label>` when both are known, else the label and path as code.
fn link(admin_url: &str, path: Option<&Value>, label: &str) -> String {
    match path.and_then(Value::as_str) {
        Some(path) if !admin_url.is_empty() => format!("<{admin_url}{path}|{label}>"),
        Some(path) => format!("{label} (`{path}`)"),
        None => label.to_owned(),
    }
}
