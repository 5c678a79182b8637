//! A GitHub push event as a chat message: `{"text": "<pusher> pushed <n> commits to <repo>"}`
//! ("1 commit" for one). An event without those fields is a fatal failure.

use switchyard_sdk::serde_json::{Value, json};
use switchyard_sdk::{Event, Failure};

#[switchyard_sdk::transform]
fn push_to_chat(mut event: Event) -> Result<Event, Failure> {
    let push: Value = event.body_json()?;
    let pusher = push["pusher"]["name"].as_str().ok_or_else(|| missing("pusher.name"))?;
    let repository =
        push["repository"]["full_name"].as_str().ok_or_else(|| missing("repository.full_name"))?;
    let commits = push["commits"].as_array().ok_or_else(|| missing("commits"))?.len();
    let noun = if commits == 1 { "commit" } else { "commits" };
    let text = format!("{pusher} pushed {commits} {noun} to {repository}");
    event.set_body_json(&json!({ "text": text }))?;
    event.set_header("content-type", "application/json");
    Ok(event)
}

fn missing(field: &str) -> Failure {
    Failure::fatal(format!("not a push event: no `{field}`"))
}
