//! Comparing what two versions of a plugin answer for the same events: the core of
//! `switchyard plugin diff`.
//!
//! Pure: it takes each event's name and the two answers, already rendered in the fixture
//! format (what `plugin run` prints), and returns a [`DiffReport`] of what changed, which the
//! CLI prints as text and another surface (a dashboard's re-run page) can serialize as JSON.
//! Running plugins and reading files is the caller's business.
//!
//! Decisions: a body that is JSON text is compared as JSON (`body` becomes `body_json`), so a
//! change inside a body is reported at its own path and key order or spacing alone is not a
//! change; log lines, wall time and instructions are not compared (they are not the verdict).

use std::fmt;

use serde::Serialize;
use serde_json::Value;

/// One event's answers from the old and the new version.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseAnswers {
    pub name: String,
    pub old: Value,
    pub new: Value,
}

/// What changed between the two versions, event by event.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DiffReport {
    /// The events whose answer changed, in the order given.
    pub changed: Vec<CaseDiff>,
    /// The names of the events answered the same.
    pub unchanged: Vec<String>,
}

/// The changes in one event's answer.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CaseDiff {
    pub name: String,
    /// The verdict (or `failure`, or `error`) of each version, e.g. `modify` and `pass`.
    pub old_verdict: String,
    pub new_verdict: String,
    /// Every value that differs, by JSON pointer into the answer.
    pub changes: Vec<Change>,
}

/// One value that differs; `None` where the key is absent on that side.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Change {
    pub path: String,
    pub old: Option<Value>,
    pub new: Option<Value>,
}

impl DiffReport {
    pub fn is_unchanged(&self) -> bool {
        self.changed.is_empty()
    }
}

/// Compares each event's two answers.
pub fn compare(cases: Vec<CaseAnswers>) -> DiffReport {
    let mut report = DiffReport::default();
    for case in cases {
        let old = expand_bodies(case.old);
        let new = expand_bodies(case.new);
        let mut changes = Vec::new();
        differences(&old, &new, &mut String::new(), &mut changes);
        if changes.is_empty() {
            report.unchanged.push(case.name);
        } else {
            report.changed.push(CaseDiff {
                name: case.name,
                old_verdict: verdict_name(&old),
                new_verdict: verdict_name(&new),
                changes,
            });
        }
    }
    report
}

/// `modify`, `pass`, …; `failure: fatal`; `error` for a call that failed in the host.
fn verdict_name(answer: &Value) -> String {
    if let Some(verdict) = answer["verdict"].as_str() {
        verdict.to_owned()
    } else if let Some(failure) = answer["failure"].as_str() {
        format!("failure: {failure}")
    } else if answer.get("error").is_some() {
        "error".to_owned()
    } else {
        answer.to_string()
    }
}

/// Rewrites every `"body": "<JSON text>"` as `"body_json": <the parsed JSON>`.
fn expand_bodies(value: Value) -> Value {
    match value {
        Value::Object(object) => Value::Object(
            object
                .into_iter()
                .map(|(key, value)| {
                    let parsed = match (&*key, &value) {
                        ("body", Value::String(text)) => serde_json::from_str::<Value>(text).ok(),
                        _ => None,
                    };
                    match parsed {
                        Some(parsed) => ("body_json".to_owned(), parsed),
                        None => (key, expand_bodies(value)),
                    }
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(expand_bodies).collect()),
        other => other,
    }
}

/// Collects the differences between `old` and `new` below `path` (a JSON pointer).
fn differences(old: &Value, new: &Value, path: &mut String, changes: &mut Vec<Change>) {
    match (old, new) {
        (Value::Object(old_object), Value::Object(new_object)) => {
            let mut keys: Vec<&String> = old_object.keys().collect();
            keys.extend(new_object.keys().filter(|key| !old_object.contains_key(*key)));
            for key in keys {
                let segment = key.replace('~', "~0").replace('/', "~1");
                child(&segment, old_object.get(key), new_object.get(key), path, changes);
            }
        }
        (Value::Array(old_items), Value::Array(new_items)) => {
            for index in 0..old_items.len().max(new_items.len()) {
                let segment = index.to_string();
                child(&segment, old_items.get(index), new_items.get(index), path, changes);
            }
        }
        (old, new) if old == new => {}
        (old, new) => changes.push(Change {
            path: if path.is_empty() { "/".to_owned() } else { path.clone() },
            old: Some(old.clone()),
            new: Some(new.clone()),
        }),
    }
}

/// Compares the member or item `segment` of both sides: deeper when both have it, a change
/// when only one does.
fn child(
    segment: &str,
    old: Option<&Value>,
    new: Option<&Value>,
    path: &mut String,
    changes: &mut Vec<Change>,
) {
    let length = path.len();
    path.push('/');
    path.push_str(segment);
    match (old, new) {
        (Some(old), Some(new)) => differences(old, new, path, changes),
        (old, new) => {
            changes.push(Change { path: path.clone(), old: old.cloned(), new: new.cloned() })
        }
    }
    path.truncate(length);
}

impl fmt::Display for DiffReport {
    /// One block per changed event, then a summary line:
    ///
    /// ```text
    /// changed  card-and-email: modify → modify
    ///   /patch/body_json/card/number: "4242" → "[redacted]"
    /// 1 changed, 2 unchanged
    /// ```
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        for case in &self.changed {
            writeln!(
                formatter,
                "changed  {}: {} → {}",
                case.name, case.old_verdict, case.new_verdict
            )?;
            for change in &case.changes {
                let side = |value: &Option<Value>| {
                    value.as_ref().map_or_else(|| "(absent)".to_owned(), Value::to_string)
                };
                writeln!(
                    formatter,
                    "  {}: {} → {}",
                    change.path,
                    side(&change.old),
                    side(&change.new)
                )?;
            }
        }
        write!(formatter, "{} changed, {} unchanged", self.changed.len(), self.unchanged.len())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn case(name: &str, old: Value, new: Value) -> CaseAnswers {
        CaseAnswers { name: name.into(), old, new }
    }

    #[test]
    fn identical_answers_are_unchanged() {
        let report = compare(vec![
            case("a", json!({"verdict": "pass"}), json!({"verdict": "pass"})),
            case(
                "b",
                json!({"failure": "fatal", "message": "x"}),
                json!({"failure": "fatal", "message": "x"}),
            ),
        ]);
        assert!(report.is_unchanged());
        assert_eq!(report.unchanged, ["a", "b"]);
        assert_eq!(report.to_string(), "0 changed, 2 unchanged");
    }

    #[test]
    fn json_bodies_compare_as_json() {
        let old = json!({"verdict": "modify", "patch": {"body": "{\"a\": 1, \"b\": [1, 2]}"}});
        let same = json!({"verdict": "modify", "patch": {"body": "{\"b\":[1,2],\"a\":1}"}});
        let changed = json!({"verdict": "modify", "patch": {"body": "{\"a\":1,\"b\":[1,3,4]}"}});
        let report = compare(vec![case("same", old.clone(), same), case("changed", old, changed)]);
        assert_eq!(report.unchanged, ["same"]);
        assert_eq!(
            report.changed[0].changes,
            [
                Change {
                    path: "/patch/body_json/b/1".into(),
                    old: Some(json!(2)),
                    new: Some(json!(3))
                },
                Change { path: "/patch/body_json/b/2".into(), old: None, new: Some(json!(4)) },
            ]
        );
    }

    #[test]
    fn a_verdict_change_names_both_verdicts() {
        let report = compare(vec![case(
            "event",
            json!({"verdict": "pass"}),
            json!({"verdict": "modify", "patch": {"body": "not json"}}),
        )]);
        let text = report.to_string();
        assert_eq!(
            text,
            "changed  event: pass → modify\n  \
             /verdict: \"pass\" → \"modify\"\n  \
             /patch: (absent) → {\"body\":\"not json\"}\n\
             1 changed, 0 unchanged"
        );
    }

    #[test]
    fn failures_and_errors_have_names() {
        let report = compare(vec![case(
            "event",
            json!({"failure": "fatal", "message": "bad"}),
            json!({"error": "the plugin trapped"}),
        )]);
        assert_eq!(report.changed[0].old_verdict, "failure: fatal");
        assert_eq!(report.changed[0].new_verdict, "error");
    }

    #[test]
    fn pointer_segments_are_escaped() {
        let report =
            compare(vec![case("event", json!({"a/b": {"c~d": 1}}), json!({"a/b": {"c~d": 2}}))]);
        assert_eq!(report.changed[0].changes[0].path, "/a~1b/c~0d");
    }
}
