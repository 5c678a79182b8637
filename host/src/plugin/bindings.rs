//! The one `bindgen!` over `sdk/wit`, and the conversions between its types and the host's.
//!
//! Owns the mapping of WIT values onto [`crate::event::Event`] and [`crate::verdict`] types;
//! nothing outside `plugin` sees a generated type.

use bytes::Bytes;

use crate::event;
use crate::verdict;

wasmtime::component::bindgen!({
    path: "../sdk/wit",
    world: "switchyard:plugin/plugin",
});

use self::switchyard::plugin::types as wit;

/// The event as the guest receives it.
pub fn to_guest(event: &event::Event) -> wit::Event {
    wit::Event {
        id: event.id.to_string(),
        source: event.source.clone(),
        type_: event.event_type.clone(),
        subject: event.subject.clone(),
        headers: event.headers.clone(),
        body: event.body.to_vec(),
        received_at: event.received_at,
        metadata: event.metadata.clone(),
    }
}

/// The guest's answer in host terms.
pub fn from_guest(
    answer: Result<wit::Verdict, wit::Failure>,
) -> Result<verdict::Verdict, verdict::GuestFailure> {
    match answer {
        Ok(verdict) => Ok(verdict_from_guest(verdict)),
        Err(wit::Failure::Retry(message)) => Err(verdict::GuestFailure::Retry(message)),
        Err(wit::Failure::Fatal(message)) => Err(verdict::GuestFailure::Fatal(message)),
    }
}

fn verdict_from_guest(answer: wit::Verdict) -> verdict::Verdict {
    use verdict::Verdict;
    match answer {
        wit::Verdict::Drop => Verdict::Drop,
        wit::Verdict::Pass => Verdict::Pass,
        wit::Verdict::Modify(patch) => Verdict::Modify(verdict::Patch {
            set_headers: patch.set_headers,
            remove_headers: patch.remove_headers,
            set_metadata: patch.set_metadata,
            event_type: patch.type_,
            subject: patch.subject,
            body: patch.body.map(Bytes::from),
        }),
        wit::Verdict::Replace(event) => Verdict::Replace(event_from_guest(event)),
        wit::Verdict::Split(events) => {
            Verdict::Split(events.into_iter().map(event_from_guest).collect())
        }
        wit::Verdict::Reject(rejection) => Verdict::Reject(verdict::Rejection {
            status: rejection.status,
            code: rejection.code,
            message: rejection.message,
        }),
    }
}

fn event_from_guest(event: wit::Event) -> verdict::GuestEvent {
    verdict::GuestEvent {
        event_type: event.type_,
        subject: event.subject,
        headers: event.headers,
        body: Bytes::from(event.body),
        metadata: event.metadata,
    }
}
