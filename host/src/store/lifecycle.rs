//! The delivery lifecycle: which state a delivery takes, and when.
//!
//! Owns every rule about delivery states, as one pure function of the delivery's state, what
//! happened, and its endpoint's status; every backend asks it, none decides on its own. It does
//! no I/O and knows no backend. A delivery is `pending` (waiting for its next attempt),
//! `delivered`, `dead` (a dead letter: replayable while its endpoint exists) or `parked` (its
//! endpoint is disabled: resumed when it is enabled again). An endpoint that is deleted leaves a
//! tombstone: its deliveries are dead for good ("gone"), never sent again.
//!
//! A dynamic endpoint created while `server.verify_endpoints` is on must also prove that its
//! owner wants deliveries ([`Ownership`], [`next_ownership`]): until it answers its challenge,
//! it counts as disabled here, so its deliveries are created parked and wait.

use serde::{Deserialize, Serialize};

use super::{DeliveryState, NextStep};

/// An endpoint as the lifecycle sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointStatus {
    Enabled,
    /// By a 410 Gone or through the admin API.
    Disabled,
    /// A tombstone: its id never comes back.
    Deleted,
}

/// What happens to a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// It is created; `dead_letter` when a plugin failed under `on_error = "dead-letter"`.
    Created {
        dead_letter: bool,
    },
    /// An attempt on it ended and decided `next` (see [`NextStep`]). A 410 Gone's
    /// [`NextStep::DisableEndpoint`] then disables the endpoint too ([`Change::EndpointDisabled`]).
    Attempted(NextStep),
    /// It alone is sent again (manual retry): a dead or delivered delivery starts over.
    Resent,
    /// Dead letters are sent again (redrive).
    Redriven,
    EndpointDisabled,
    EndpointEnabled,
    EndpointDeleted,
}

/// The state a delivery in `state` (`None`: not created yet) takes on `change` while its
/// endpoint is `endpoint`; `None` when the change leaves it as it is (or, for
/// [`Change::Created`], never `None`).
pub fn next_state(
    state: Option<DeliveryState>,
    change: Change,
    endpoint: EndpointStatus,
) -> Option<DeliveryState> {
    use DeliveryState::{Dead, Delivered, Parked, Pending};
    match (change, state) {
        (Change::Created { dead_letter }, None) => Some(match endpoint {
            _ if dead_letter => Dead,
            // Routed just before its endpoint was deleted.
            EndpointStatus::Deleted => Dead,
            EndpointStatus::Disabled => Parked,
            EndpointStatus::Enabled => Pending,
        }),
        (Change::Created { .. }, Some(_)) | (_, None) => None,
        (Change::Attempted(next), Some(current)) => attempted(current, next, endpoint),
        (Change::Resent, Some(Dead | Delivered)) | (Change::Redriven, Some(Dead)) => match endpoint
        {
            EndpointStatus::Deleted => None,
            EndpointStatus::Disabled => Some(Parked),
            EndpointStatus::Enabled => Some(Pending),
        },
        (Change::Resent | Change::Redriven, Some(_)) => None,
        (Change::EndpointDisabled, Some(Pending)) => Some(Parked),
        (Change::EndpointEnabled, Some(Parked)) => Some(Pending),
        (Change::EndpointDeleted, Some(Pending | Parked)) => Some(Dead),
        (Change::EndpointDisabled | Change::EndpointEnabled | Change::EndpointDeleted, _) => None,
    }
}

fn attempted(
    current: DeliveryState,
    next: NextStep,
    endpoint: EndpointStatus,
) -> Option<DeliveryState> {
    use DeliveryState::{Dead, Delivered, Parked, Pending};
    match next {
        // A success is recorded as one, whatever happened meanwhile.
        NextStep::Delivered => Some(Delivered),
        NextStep::DeadLetter => Some(Dead),
        // A dead letter stays dead should an attempt that was in flight when it died (its
        // endpoint deleted) ask for another try.
        NextStep::RetryAt(_) | NextStep::DisableEndpoint if current == Dead => None,
        NextStep::DisableEndpoint => Some(Parked),
        NextStep::RetryAt(_) => match endpoint {
            EndpointStatus::Enabled => Some(Pending),
            // In flight when its endpoint was disabled: it parks like the rest.
            EndpointStatus::Disabled => Some(Parked),
            EndpointStatus::Deleted => Some(Dead),
        },
    }
}

/// Where a dynamic endpoint stands in proving that its owner wants its deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ownership {
    /// Its challenge is not answered yet; its deliveries are parked.
    PendingVerification,
    /// It answered its challenge; deliveries flow.
    Verified,
    /// It did not answer within `server.verify_timeout`; disabled, its deliveries parked. A
    /// challenge answered later (resent through the admin API) still verifies it.
    Expired,
}

/// What happens to an endpoint's ownership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnershipEvent {
    /// The endpoint answered a challenge: with a 2xx holding the challenge (`true`) or not.
    Answered { with_challenge: bool },
    /// Its verification deadline passed.
    DeadlinePassed,
}

/// The ownership an endpoint in `current` has after `event`. A verified endpoint stays
/// verified (a new URL starts a new verification, decided by the admin API).
pub fn next_ownership(current: Ownership, event: OwnershipEvent) -> Ownership {
    use Ownership::{Expired, PendingVerification, Verified};
    match (current, event) {
        (Verified, _) => Verified,
        (_, OwnershipEvent::Answered { with_challenge: true }) => Verified,
        (PendingVerification, OwnershipEvent::Answered { with_challenge: false }) => {
            PendingVerification
        }
        (PendingVerification | Expired, OwnershipEvent::DeadlinePassed) => Expired,
        (Expired, OwnershipEvent::Answered { with_challenge: false }) => Expired,
    }
}

/// How the delivery lifecycle sees an endpoint whose ownership is `ownership`: deliveries
/// flow only once it is verified.
pub fn ownership_status(ownership: Ownership) -> EndpointStatus {
    match ownership {
        Ownership::Verified => EndpointStatus::Enabled,
        Ownership::PendingVerification | Ownership::Expired => EndpointStatus::Disabled,
    }
}

/// Every state change `change` makes while the endpoint is `endpoint`, as `(from, to)` pairs:
/// what a backend applies to many deliveries at once.
pub fn moves(change: Change, endpoint: EndpointStatus) -> Vec<(DeliveryState, DeliveryState)> {
    DeliveryState::ALL
        .into_iter()
        .filter_map(|from| next_state(Some(from), change, endpoint).map(|to| (from, to)))
        .filter(|(from, to)| from != to)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use DeliveryState::{Dead, Delivered, Parked, Pending};
    use EndpointStatus::{Deleted, Disabled, Enabled};

    const RETRY: NextStep = NextStep::RetryAt(5);

    #[test]
    fn the_lifecycle_table() {
        #[rustfmt::skip]
        let table: &[(Option<DeliveryState>, Change, EndpointStatus, Option<DeliveryState>)] = &[
            // Created.
            (None, Change::Created { dead_letter: false }, Enabled, Some(Pending)),
            (None, Change::Created { dead_letter: false }, Disabled, Some(Parked)),
            (None, Change::Created { dead_letter: false }, Deleted, Some(Dead)),
            (None, Change::Created { dead_letter: true }, Enabled, Some(Dead)),
            (None, Change::Created { dead_letter: true }, Disabled, Some(Dead)),
            (Some(Pending), Change::Created { dead_letter: false }, Enabled, None),
            // Attempts.
            (Some(Pending), Change::Attempted(NextStep::Delivered), Enabled, Some(Delivered)),
            (Some(Pending), Change::Attempted(RETRY), Enabled, Some(Pending)),
            (Some(Pending), Change::Attempted(RETRY), Deleted, Some(Dead)),
            (Some(Pending), Change::Attempted(NextStep::DeadLetter), Enabled, Some(Dead)),
            (Some(Pending), Change::Attempted(NextStep::DisableEndpoint), Enabled, Some(Parked)),
            (Some(Parked), Change::Attempted(RETRY), Disabled, Some(Parked)),
            (Some(Parked), Change::Attempted(RETRY), Enabled, Some(Pending)),
            (Some(Parked), Change::Attempted(NextStep::Delivered), Disabled, Some(Delivered)),
            (Some(Dead), Change::Attempted(RETRY), Deleted, None),
            (Some(Dead), Change::Attempted(RETRY), Enabled, None),
            (Some(Dead), Change::Attempted(NextStep::DisableEndpoint), Enabled, None),
            (Some(Dead), Change::Attempted(NextStep::Delivered), Deleted, Some(Delivered)),
            (Some(Dead), Change::Attempted(NextStep::DeadLetter), Deleted, Some(Dead)),
            (None, Change::Attempted(NextStep::Delivered), Enabled, None),
            // Sent again, one or every dead letter.
            (Some(Dead), Change::Resent, Enabled, Some(Pending)),
            (Some(Delivered), Change::Resent, Enabled, Some(Pending)),
            (Some(Dead), Change::Resent, Disabled, Some(Parked)),
            (Some(Dead), Change::Resent, Deleted, None),
            (Some(Pending), Change::Resent, Enabled, None),
            (Some(Parked), Change::Resent, Disabled, None),
            (Some(Dead), Change::Redriven, Enabled, Some(Pending)),
            (Some(Dead), Change::Redriven, Disabled, Some(Parked)),
            (Some(Dead), Change::Redriven, Deleted, None),
            (Some(Delivered), Change::Redriven, Enabled, None),
            (Some(Pending), Change::Redriven, Enabled, None),
            // The endpoint changes.
            (Some(Pending), Change::EndpointDisabled, Disabled, Some(Parked)),
            (Some(Dead), Change::EndpointDisabled, Disabled, None),
            (Some(Delivered), Change::EndpointDisabled, Disabled, None),
            (Some(Parked), Change::EndpointEnabled, Enabled, Some(Pending)),
            (Some(Pending), Change::EndpointEnabled, Enabled, None),
            (Some(Dead), Change::EndpointEnabled, Enabled, None),
            (Some(Pending), Change::EndpointDeleted, Deleted, Some(Dead)),
            (Some(Parked), Change::EndpointDeleted, Deleted, Some(Dead)),
            (Some(Delivered), Change::EndpointDeleted, Deleted, None),
            (Some(Dead), Change::EndpointDeleted, Deleted, None),
        ];
        for &(state, change, endpoint, expected) in table {
            assert_eq!(
                next_state(state, change, endpoint),
                expected,
                "{state:?} on {change:?} while {endpoint:?}"
            );
        }
    }

    #[test]
    fn bulk_moves_follow_the_table() {
        assert_eq!(moves(Change::EndpointDisabled, Disabled), [(Pending, Parked)]);
        assert_eq!(moves(Change::EndpointEnabled, Enabled), [(Parked, Pending)]);
        assert_eq!(moves(Change::EndpointDeleted, Deleted), [(Pending, Dead), (Parked, Dead)]);
        assert_eq!(moves(Change::Redriven, Enabled), [(Dead, Pending)]);
        assert_eq!(moves(Change::Redriven, Disabled), [(Dead, Parked)]);
        assert!(moves(Change::Redriven, Deleted).is_empty());
    }

    #[test]
    fn the_ownership_table() {
        use Ownership::{Expired, PendingVerification, Verified};
        let answered = OwnershipEvent::Answered { with_challenge: true };
        let wrong = OwnershipEvent::Answered { with_challenge: false };
        let late = OwnershipEvent::DeadlinePassed;
        #[rustfmt::skip]
        let table = [
            (PendingVerification, answered, Verified),
            (PendingVerification, wrong, PendingVerification),
            (PendingVerification, late, Expired),
            (Expired, answered, Verified),
            (Expired, wrong, Expired),
            (Expired, late, Expired),
            (Verified, answered, Verified),
            (Verified, wrong, Verified),
            (Verified, late, Verified),
        ];
        for (current, event, expected) in table {
            assert_eq!(next_ownership(current, event), expected, "{current:?} on {event:?}");
        }
    }

    #[test]
    fn only_a_verified_endpoint_gets_deliveries() {
        // Until then its deliveries are created parked, as for a disabled endpoint.
        for (ownership, created) in [
            (Ownership::PendingVerification, Parked),
            (Ownership::Expired, Parked),
            (Ownership::Verified, Pending),
        ] {
            let change = Change::Created { dead_letter: false };
            let state = next_state(None, change, ownership_status(ownership));
            assert_eq!(state, Some(created), "{ownership:?}");
        }
    }

    #[test]
    fn a_created_delivery_always_has_a_state() {
        for dead_letter in [false, true] {
            for endpoint in [Enabled, Disabled, Deleted] {
                let created = next_state(None, Change::Created { dead_letter }, endpoint);
                assert!(created.is_some(), "{dead_letter} {endpoint:?}");
            }
        }
    }
}
