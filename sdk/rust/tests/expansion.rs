//! The attribute macros' expansion, built natively: the `handle-packed` export the macro writes
//! unpacks the event and runs the plugin function through `switchyard_sdk::entry`.

use switchyard_sdk::bindings::Guest;
use switchyard_sdk::{Event, Failure, Patch, Rejection, Verdict, Verification, packed};

/// Accepts events carrying `x-token: open`, deduplicated on `x-delivery`.
#[switchyard_sdk::verify]
fn token(event: &Event) -> Result<Verification, Failure> {
    match event.header("x-token") {
        None => Ok(Rejection::missing_signature("missing `x-token` header").into()),
        Some("open") => Ok(match event.header("x-delivery") {
            Some(delivery) => Verification::accept_with_dedupe_key(delivery),
            None => Verification::accept(),
        }),
        Some("later") => Err(Failure::retry("not ready")),
        Some(_) => Ok(Rejection::bad_signature("wrong token").into()),
    }
}

fn handle(event: Event) -> Result<Verdict, Failure> {
    let head = packed::pack(&event);
    <__SwitchyardPlugin as Guest>::handle_packed(head, event.body, event.received_at)
}

#[test]
fn the_export_runs_the_marked_function() {
    let event = Event::new("s", "t");
    assert_eq!(
        handle(event.clone()),
        Ok(Verdict::Reject(Rejection::missing_signature("missing `x-token` header")))
    );
    assert_eq!(handle(event.clone().with_header("x-token", "open")), Ok(Verdict::Pass));
    assert_eq!(
        handle(event.clone().with_header("x-token", "open").with_header("x-delivery", "d1")),
        Ok(Verdict::Modify(Patch::new().with_dedupe_key("d1")))
    );
    assert_eq!(
        handle(event.clone().with_header("x-token", "later")),
        Err(Failure::retry("not ready"))
    );
    assert_eq!(
        handle(event.with_header("x-token", "guess")),
        Ok(Verdict::Reject(Rejection::bad_signature("wrong token")))
    );
}

#[test]
fn the_marked_function_stays_callable() {
    assert_eq!(
        token(&Event::new("s", "t").with_header("X-Token", "open")),
        Ok(Verification::accept())
    );
}
