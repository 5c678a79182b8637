//! CloudEvents mapping: binary mode (`ce-*` headers) and structured mode
//! (`application/cloudevents+json`), from any headers and payload.

use switchyard::cloudevents;

use super::split_request;
use crate::{Target, hash_of, outcome_of};

pub const TARGET: Target = Target {
    name: "cloudevents",
    run,
    dictionary: &[
        "ce-specversion: 1.0\n",
        "ce-type: ",
        "ce-id: ",
        "ce-source: ",
        "ce-subject: ",
        "content-type: application/cloudevents+json\n",
        "content-type: application/json\n",
        "\"specversion\":\"1.0\"",
        "\"type\":",
        "\"id\":",
        "\"source\":",
        "\"data\":",
        "\"data_base64\":",
        "\"datacontenttype\":",
        "\"subject\":",
        "{",
        "}",
        "\n\n",
        "null",
        ",",
    ],
    max_len: 4096,
};

fn run(input: &[u8]) -> u64 {
    let (headers, payload) = split_request(input);
    match cloudevents::read(&headers, payload) {
        Ok(None) => hash_of("not a cloudevent"),
        Ok(Some(event)) => {
            let complete = !event.id.is_empty() && !event.event_type.is_empty();
            assert!(complete, "a CloudEvent without its id or type: {event:?}");
            hash_of(("event", event.event_type.contains('.')))
        }
        Err(malformed) => {
            hash_of(("malformed", malformed.reason(), outcome_of(&malformed.to_string())))
        }
    }
}
