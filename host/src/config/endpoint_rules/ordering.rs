//! The `ordered_by` key of an endpoint, checked into an [`OrderedBy`] with the same words for
//! the config file and the admin API: `"all"`, `{ json = "/pointer" }` or
//! `{ header = "name" }`.

use super::{Field, Problem};
use crate::traffic::ordering::OrderedBy;

/// The longest JSON pointer or header name.
pub const MAX_ORDER_SOURCE: usize = 256;

/// `ordered_by` as written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum OrderedByField<'a> {
    /// Absent: unordered.
    #[default]
    Absent,
    /// A name: only `all` is one.
    Named(&'a str),
    Settings {
        json: Option<&'a str>,
        header: Option<&'a str>,
    },
}

pub(super) fn check(
    field: &OrderedByField<'_>,
    problems: &mut Vec<(Field, Problem)>,
) -> Option<OrderedBy> {
    match *field {
        OrderedByField::Absent => None,
        OrderedByField::Named("all") => Some(OrderedBy::All),
        OrderedByField::Named(other) => {
            problems.push((Field::OrderedBy, Problem::UnknownOrderedBy(other.to_owned())));
            None
        }
        OrderedByField::Settings { json: Some(_), header: Some(_) } => {
            problems.push((Field::OrderedBy, Problem::OrderedByBoth));
            None
        }
        OrderedByField::Settings { json: None, header: None } => {
            problems.push((Field::OrderedBy, Problem::OrderedByNeither));
            None
        }
        OrderedByField::Settings { json: Some(pointer), header: None } => {
            if pointer.len() > MAX_ORDER_SOURCE || !is_pointer(pointer) {
                let problem = Problem::NotAJsonPointer(pointer.to_owned());
                problems.push((Field::OrderedByJson, problem));
                return None;
            }
            Some(OrderedBy::Json(pointer.to_owned()))
        }
        OrderedByField::Settings { json: None, header: Some(name) } => {
            let valid = name.len() <= MAX_ORDER_SOURCE && super::is_header_name(name);
            if !valid {
                let problem = Problem::NotAnOrderHeader(name.to_owned());
                problems.push((Field::OrderedByHeader, problem));
                return None;
            }
            Some(OrderedBy::Header(name.to_ascii_lowercase()))
        }
    }
}

/// An RFC 6901 pointer to a value inside the document: `/` then tokens, `~` only as `~0`
/// or `~1`. The whole document (`""`) cannot be a key.
fn is_pointer(text: &str) -> bool {
    if !text.starts_with('/') {
        return false;
    }
    let mut characters = text.chars();
    while let Some(character) = characters.next() {
        if character == '~' && !matches!(characters.next(), Some('0' | '1')) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(field: OrderedByField<'_>) -> (Option<OrderedBy>, Vec<String>) {
        let mut problems = Vec::new();
        let ordered_by = check(&field, &mut problems);
        let problems = problems.iter().map(|(field, problem)| format!("{field}: {problem}"));
        (ordered_by, problems.collect())
    }

    #[test]
    fn every_shape_is_checked() {
        let settings = |json, header| OrderedByField::Settings { json, header };
        let cases: [(OrderedByField<'_>, Option<OrderedBy>, &[&str]); 10] = [
            (OrderedByField::Absent, None, &[]),
            (OrderedByField::Named("all"), Some(OrderedBy::All), &[]),
            (
                OrderedByField::Named("everything"),
                None,
                &[
                    "ordered_by: `everything` is not an ordering; expected `all`, `{ json = \"/pointer\" }` or `{ header = \"name\" }`",
                ],
            ),
            (
                settings(Some("/customer/id"), None),
                Some(OrderedBy::Json("/customer/id".into())),
                &[],
            ),
            (settings(Some("/a~1b/~0c"), None), Some(OrderedBy::Json("/a~1b/~0c".into())), &[]),
            (
                settings(Some("customer/id"), None),
                None,
                &[
                    "ordered_by.json: `customer/id` is not a JSON pointer; expected `/` then keys, e.g. `/customer/id`",
                ],
            ),
            (
                settings(Some("/a~2"), None),
                None,
                &[
                    "ordered_by.json: `/a~2` is not a JSON pointer; expected `/` then keys, e.g. `/customer/id`",
                ],
            ),
            (
                settings(None, Some("X-Order-Key")),
                Some(OrderedBy::Header("x-order-key".into())),
                &[],
            ),
            (
                settings(Some("/id"), Some("x-key")),
                None,
                &["ordered_by: give either `json` or `header`, not both"],
            ),
            (
                settings(None, Some("bad header")),
                None,
                &["ordered_by.header: `bad header` is not a header name"],
            ),
        ];
        for (field, expected, problems) in cases {
            let (ordered_by, found) = checked(field.clone());
            assert_eq!(ordered_by, expected, "{field:?}");
            assert_eq!(found, problems.to_vec(), "{field:?}");
        }
        let (_, found) = checked(settings(None, None));
        assert_eq!(found, ["ordered_by: give `json` or `header`"]);
    }
}
