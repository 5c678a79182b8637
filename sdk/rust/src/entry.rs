//! The glue between the export and a plugin function: what each attribute macro calls.
//!
//! Owns the translation of each kind's answer (`bool`, `Event`, [`Verification`], [`Verdict`],
//! bare or in a `Result`) into the `result<verdict, failure>` the host receives. Public so that a
//! native test can run a plugin function through exactly the code the host reaches:
//!
//! ```
//! use switchyard_sdk::{Event, Verdict, entry};
//!
//! fn is_push(event: &Event) -> bool {
//!     event.type_ == "github.push"
//! }
//!
//! assert_eq!(entry::filter(Event::new("github", "github.push"), is_push), Ok(Verdict::Pass));
//! assert_eq!(entry::filter(Event::new("github", "github.ping"), is_push), Ok(Verdict::Drop));
//! ```
//!
//! Must not call the host: logging or reading config is the plugin function's business.

use crate::{Event, Failure, Verdict, Verification};

/// An answer of a plugin function: a `T`, bare or in a `Result` whose error converts to a
/// [`Failure`]. Implemented for the four kinds' answers; you never implement it.
pub trait Answer<T> {
    /// The answer as the glue consumes it.
    fn into_result(self) -> Result<T, Failure>;
}

macro_rules! answers {
    ($($answer:ty),*) => {$(
        impl Answer<$answer> for $answer {
            fn into_result(self) -> Result<$answer, Failure> {
                Ok(self)
            }
        }

        impl<E: Into<Failure>> Answer<$answer> for Result<$answer, E> {
            fn into_result(self) -> Result<$answer, Failure> {
                self.map_err(Into::into)
            }
        }
    )*};
}

answers!(bool, Event, Verification, Verdict);

/// Runs a filter: `true` → `pass`, `false` → `drop`.
pub fn filter<A: Answer<bool>>(
    event: Event,
    function: impl FnOnce(&Event) -> A,
) -> Result<Verdict, Failure> {
    let keep = function(&event).into_result()?;
    Ok(if keep { Verdict::Pass } else { Verdict::Drop })
}

/// Runs a transform: the new event becomes `pass`, `modify` or `replace` per
/// [`Verdict::from_change`]. The original is cloned first, so the plugin can take it by value.
pub fn transform<A: Answer<Event>>(
    event: Event,
    function: impl FnOnce(Event) -> A,
) -> Result<Verdict, Failure> {
    let before = event.clone();
    let after = function(event).into_result()?;
    Ok(Verdict::from_change(&before, after))
}

/// Runs a verifier: see [`Verification::into_verdict`].
pub fn verify<A: Answer<Verification>>(
    event: Event,
    function: impl FnOnce(&Event) -> A,
) -> Result<Verdict, Failure> {
    Ok(function(&event).into_result()?.into_verdict())
}

/// Runs a plugin with full control: its verdict goes to the host as it is.
pub fn plugin<A: Answer<Verdict>>(
    event: Event,
    function: impl FnOnce(Event) -> A,
) -> Result<Verdict, Failure> {
    function(event).into_result()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Patch, Rejection};

    fn event() -> Event {
        Event::new("s", "t").with_body("{}")
    }

    #[test]
    fn filter_answers() {
        assert_eq!(filter(event(), |_| true), Ok(Verdict::Pass));
        assert_eq!(filter(event(), |_| false), Ok(Verdict::Drop));
        assert_eq!(filter(event(), |_| Ok::<_, Failure>(false)), Ok(Verdict::Drop));
        assert_eq!(
            filter(event(), |_| Err::<bool, _>(Failure::retry("later"))),
            Err(Failure::retry("later"))
        );
    }

    #[test]
    fn transform_answers_the_smallest_verdict() {
        assert_eq!(transform(event(), |event| event), Ok(Verdict::Pass));
        let retyped = transform(event(), |mut event| {
            event.type_ = "u".into();
            Ok::<_, Failure>(event)
        });
        assert_eq!(retyped, Ok(Verdict::Modify(Patch::new().with_type("u"))));
    }

    #[test]
    fn verify_answers() {
        assert_eq!(verify(event(), |_| Verification::accept()), Ok(Verdict::Pass));
        let rejection = Rejection::bad_signature("no");
        assert_eq!(
            verify(event(), |_| Ok::<Verification, Failure>(rejection.clone().into())),
            Ok(Verdict::Reject(rejection))
        );
    }

    #[test]
    fn plugin_answers_as_is() {
        assert_eq!(
            plugin(event(), |event| Verdict::Split(vec![event.clone(), event]))
                .map(|verdict| matches!(verdict, Verdict::Split(events) if events.len() == 2)),
            Ok(true)
        );
    }

    #[test]
    fn errors_that_convert_into_failure_are_accepted() {
        struct NotReady;
        impl From<NotReady> for Failure {
            fn from(_: NotReady) -> Failure {
                Failure::retry("not ready")
            }
        }
        assert_eq!(
            plugin(event(), |_| Err::<Verdict, _>(NotReady)),
            Err(Failure::retry("not ready"))
        );
    }
}
