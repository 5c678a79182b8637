//! Subject templates of NATS endpoints: `audit.{source}.{type}`.
//!
//! Pure. Owns the placeholders (`{source}`, `{type}`, `{subject}`, `{metadata.<key>}`) and how
//! a value becomes subject text: characters a subject cannot hold in a token (whitespace, `*`,
//! `>`) become `_`, and an empty or absent value becomes `_`, so a rendered subject is always
//! publishable. Dots inside values are kept: `{type}` = `github.push` adds two tokens, which is
//! what subscribers filtering on `audit.*.github.>` expect.

/// A parsed subject template; `Display` gives it back as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectTemplate {
    text: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Source,
    Type,
    Subject,
    Metadata(String),
}

/// What a template is rendered from.
#[derive(Debug, Clone, Copy)]
pub struct SubjectFields<'a> {
    pub source: &'a str,
    pub event_type: &'a str,
    pub subject: Option<&'a str>,
    pub metadata: &'a [(String, String)],
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error(
        "`{{{0}}}` is not a placeholder; expected `{{source}}`, `{{type}}`, `{{subject}}` or `{{metadata.<key>}}`"
    )]
    UnknownPlaceholder(String),
    #[error("a `{{` is not closed")]
    Unclosed,
    #[error("`{0}` is not a valid subject: tokens are non-empty and hold no spaces, `*` or `>`")]
    InvalidText(String),
}

impl std::fmt::Display for SubjectTemplate {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.text)
    }
}

impl SubjectTemplate {
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find('{') {
            if start > 0 {
                parts.push(Part::Text(rest[..start].to_owned()));
            }
            let end = rest[start..].find('}').ok_or(TemplateError::Unclosed)? + start;
            let name = &rest[start + 1..end];
            parts.push(match name {
                "source" => Part::Source,
                "type" => Part::Type,
                "subject" => Part::Subject,
                _ => match name.strip_prefix("metadata.").filter(|key| !key.is_empty()) {
                    Some(key) => Part::Metadata(key.to_owned()),
                    None => return Err(TemplateError::UnknownPlaceholder(name.to_owned())),
                },
            });
            rest = &rest[end + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        let template = Self { text: text.to_owned(), parts };
        // The literal parts must already form a valid subject with every placeholder filled.
        let sample = template.render(&SubjectFields {
            source: "s",
            event_type: "t",
            subject: Some("x"),
            metadata: &[],
        });
        let valid = !sample.is_empty()
            && sample.split('.').all(|token| {
                !token.is_empty()
                    && !token.contains(|c: char| c.is_whitespace() || c == '*' || c == '>')
            });
        if !valid {
            return Err(TemplateError::InvalidText(text.to_owned()));
        }
        Ok(template)
    }

    pub fn render(&self, fields: &SubjectFields<'_>) -> String {
        let mut subject = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => subject.push_str(text),
                Part::Source => push_value(&mut subject, Some(fields.source)),
                Part::Type => push_value(&mut subject, Some(fields.event_type)),
                Part::Subject => push_value(&mut subject, fields.subject),
                Part::Metadata(key) => push_value(
                    &mut subject,
                    fields
                        .metadata
                        .iter()
                        .find(|(name, _)| name == key)
                        .map(|(_, value)| value.as_str()),
                ),
            }
        }
        subject
    }
}

fn push_value(subject: &mut String, value: Option<&str>) {
    let value = value.unwrap_or_default();
    // Each dot-separated piece must stay a non-empty token.
    let pieces: Vec<String> = value
        .split('.')
        .map(|piece| {
            let cleaned: String = piece
                .chars()
                .map(|c| {
                    if c.is_whitespace() || c == '*' || c == '>' || c.is_control() {
                        '_'
                    } else {
                        c
                    }
                })
                .collect();
            if cleaned.is_empty() { "_".to_owned() } else { cleaned }
        })
        .collect();
    subject.push_str(&pieces.join("."));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_render_publishable_subjects() {
        let metadata = vec![("tenant".to_owned(), "acme corp".to_owned())];
        let fields = SubjectFields {
            source: "github",
            event_type: "github.push",
            subject: None,
            metadata: &metadata,
        };
        let table = [
            ("audit.{source}.{type}", "audit.github.github.push"),
            ("audit.{subject}", "audit._"),
            ("t.{metadata.tenant}.{metadata.missing}", "t.acme_corp._"),
            ("fixed.subject", "fixed.subject"),
        ];
        for (template, expected) in table {
            assert_eq!(SubjectTemplate::parse(template).unwrap().render(&fields), expected);
        }
        let odd = SubjectFields { event_type: "a..b*", ..fields };
        assert_eq!(SubjectTemplate::parse("x.{type}").unwrap().render(&odd), "x.a._.b_");
    }

    #[test]
    fn bad_templates_are_refused() {
        assert_eq!(
            SubjectTemplate::parse("a.{nope}"),
            Err(TemplateError::UnknownPlaceholder("nope".into()))
        );
        assert_eq!(SubjectTemplate::parse("a.{type"), Err(TemplateError::Unclosed));
        for text in ["a..b", "a.*", "", "a b.{type}", "{type}."] {
            assert!(
                matches!(SubjectTemplate::parse(text), Err(TemplateError::InvalidText(_))),
                "{text}"
            );
        }
    }
}
