//! Which body row each delivery of a fan-out sends, and how many deliveries use each row.
//!
//! Every event stored gets a row for its own body. A delivery sends the first row of its
//! fan-out whose bytes equal its body (its event's own, most often, or a split event's, or
//! another delivery's transformed body), or a row of its own. Each row counts the events and
//! deliveries that use it (`payloads.refs`, schema migration 10), so that retention deletes a
//! body when the last of them goes, without indexes from bodies back to the rows that use
//! them: two b-trees fewer written by every commit. Counting here, before anything is
//! inserted, gives each new row its final count in its INSERT: no second write of the row.

use bytes::Bytes;

/// The body rows of one fan-out, and the choice of each delivery among them.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Sharing<'a> {
    /// The rows, in order: the origin event's, each derived event's (one per event, equal
    /// bodies or not), then the deliveries' own in order of first use. Each with how many of
    /// the fan-out's deliveries send it.
    pub rows: Vec<(&'a Bytes, i64)>,
    /// Per delivery, in the order given, the index of the row it sends in `rows`.
    pub deliveries: Vec<usize>,
}

/// Plans the rows of a fan-out from `origin`'s body, the bodies of the events derived from it
/// and the bodies of its deliveries. Bodies are compared by their bytes, far cheaper than
/// hashing them (most fan-outs send one body to every endpoint).
pub(super) fn plan<'a>(
    origin: &'a Bytes,
    derived: impl IntoIterator<Item = &'a Bytes>,
    deliveries: impl IntoIterator<Item = &'a Bytes>,
) -> Sharing<'a> {
    let mut rows: Vec<(&Bytes, i64)> = vec![(origin, 0)];
    rows.extend(derived.into_iter().map(|body| (body, 0)));
    let deliveries = deliveries
        .into_iter()
        .map(|body| {
            let index = match rows.iter().position(|(known, _)| *known == body) {
                Some(index) => index,
                None => {
                    rows.push((body, 0));
                    rows.len() - 1
                }
            };
            rows[index].1 += 1;
            index
        })
        .collect();
    Sharing { rows, deliveries }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliveries_of_an_unchanged_body_share_the_events_row() {
        let body = Bytes::from_static(b"{}");
        let sharing = plan(&body, [], [&body, &body, &body]);
        assert_eq!(sharing, Sharing { rows: vec![(&body, 3)], deliveries: vec![0, 0, 0] });
    }

    #[test]
    fn each_event_keeps_a_row_and_equal_transformed_bodies_share_one() {
        let origin = Bytes::from_static(b"[1,2]");
        let (one, two) = (Bytes::from_static(b"1"), Bytes::from_static(b"2"));
        let also_one = Bytes::from_static(b"1");
        let (slack, slack_again) =
            (Bytes::from_static(b"{\"text\":\"1\"}"), Bytes::from("{\"text\":\"1\"}"));
        let sharing = plan(&origin, [&one, &two], [&also_one, &slack, &two, &slack_again]);
        // A derived event's delivery sends the first equal row: the first derived event's.
        assert_eq!(sharing.deliveries, vec![1, 3, 2, 3]);
        let counts: Vec<i64> = sharing.rows.iter().map(|(_, count)| *count).collect();
        assert_eq!(counts, vec![0, 1, 1, 2]);
        assert_eq!(sharing.rows[3].0, &slack);
    }

    #[test]
    fn a_derived_event_equal_to_its_origin_still_has_its_own_row() {
        let body = Bytes::from_static(b"{}");
        let copy = body.clone();
        let sharing = plan(&body, [&copy], [&copy]);
        // The delivery sends the first equal row, the origin's; the derived event keeps its own.
        assert_eq!(sharing, Sharing { rows: vec![(&body, 1), (&copy, 0)], deliveries: vec![0] });
    }
}
