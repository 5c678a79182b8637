//! Event-type globs and NATS subject patterns: parsed once, matched many times.
//!
//! Owns [`TypePattern`] (`*` any run of characters, dots included; `?` one character),
//! [`SubjectPattern`] (NATS tokens: `*` one token, `>` one or more trailing tokens) and the
//! [`PatternError`] that parsing reports. Must not allocate while matching, and must not know
//! about routes, events or filters.

use std::fmt;

/// Why a type glob or a subject pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("an event-type pattern must not be empty, e.g. `github.*`")]
    EmptyTypePattern,
    #[error("a subject pattern must not be empty, e.g. `orders.>`")]
    EmptySubjectPattern,
    #[error(
        "subject pattern `{pattern}`: token {position} is empty; tokens are separated by single \
         dots, e.g. `orders.*.created`"
    )]
    EmptyToken { pattern: String, position: usize },
    #[error("subject pattern `{pattern}`: `>` must be the last token, e.g. `orders.>`")]
    TailWildcardNotLast { pattern: String },
    #[error(
        "subject pattern `{pattern}`: token `{token}` mixes a wildcard with other characters; \
         `*` and `>` must stand alone between dots, e.g. `orders.*`"
    )]
    MixedWildcard { pattern: String, token: String },
    #[error("subject pattern `{pattern}`: NATS subjects cannot contain whitespace")]
    Whitespace { pattern: String },
}

/// A glob over event types: `*` matches any run of characters (dots included, so `github.*`
/// matches `github.pull_request.opened`), `?` exactly one character, anything else itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TypePattern {
    text: String,
    pieces: Vec<GlobPiece>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum GlobPiece {
    Literal(String),
    AnyCharacter,
    AnyRun,
}

/// A NATS subject pattern: tokens separated by `.`; `*` matches one token, `>` one or more
/// tokens and only as the last token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SubjectPattern {
    text: String,
    tokens: Vec<SubjectToken>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum SubjectToken {
    Literal(String),
    OneToken,
    Tail,
}

// === impl TypePattern ===

impl TypePattern {
    /// Parses a glob; the only invalid glob is the empty one.
    pub fn parse(text: &str) -> Result<Self, PatternError> {
        if text.is_empty() {
            return Err(PatternError::EmptyTypePattern);
        }
        let mut pieces: Vec<GlobPiece> = Vec::new();
        for character in text.chars() {
            match (character, pieces.last_mut()) {
                // Consecutive stars mean the same as one.
                ('*', Some(GlobPiece::AnyRun)) => {}
                ('*', _) => pieces.push(GlobPiece::AnyRun),
                ('?', _) => pieces.push(GlobPiece::AnyCharacter),
                (literal, Some(GlobPiece::Literal(run))) => run.push(literal),
                (literal, _) => pieces.push(GlobPiece::Literal(literal.to_string())),
            }
        }
        Ok(Self { text: text.to_owned(), pieces })
    }

    /// The glob as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The one event type the glob matches, when it has no wildcard.
    pub fn exact(&self) -> Option<&str> {
        match self.pieces.as_slice() {
            [GlobPiece::Literal(literal)] => Some(literal),
            _ => None,
        }
    }

    /// Whether `event_type` matches the whole glob.
    ///
    /// Greedy matching that remembers only the last `*`: when a later piece fails, that star
    /// swallows one more character and the pieces after it are retried. Earlier stars never
    /// need to grow again, so this stays linear for the patterns routes use.
    pub fn matches(&self, event_type: &str) -> bool {
        let mut piece_index = 0;
        let mut position = 0;
        // (index of the piece after the last star, where that star's run currently ends)
        let mut last_star: Option<(usize, usize)> = None;
        loop {
            let rest = &event_type[position..];
            let advanced = match self.pieces.get(piece_index) {
                None if rest.is_empty() => return true,
                None => None,
                Some(GlobPiece::AnyRun) => {
                    last_star = Some((piece_index + 1, position));
                    Some(0)
                }
                Some(GlobPiece::AnyCharacter) => rest.chars().next().map(char::len_utf8),
                Some(GlobPiece::Literal(literal)) => {
                    rest.starts_with(literal.as_str()).then_some(literal.len())
                }
            };
            if let Some(length) = advanced {
                piece_index += 1;
                position += length;
                continue;
            }
            let Some((after_star, run_end)) = last_star else {
                return false;
            };
            let Some(swallowed) = event_type[run_end..].chars().next() else {
                return false;
            };
            let run_end = run_end + swallowed.len_utf8();
            last_star = Some((after_star, run_end));
            piece_index = after_star;
            position = run_end;
        }
    }
}

impl fmt::Display for TypePattern {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.text)
    }
}

// === impl SubjectPattern ===

impl SubjectPattern {
    /// Parses a pattern, refusing empty tokens, a `>` before the last token, wildcards mixed
    /// with other characters inside a token, and whitespace.
    pub fn parse(text: &str) -> Result<Self, PatternError> {
        if text.is_empty() {
            return Err(PatternError::EmptySubjectPattern);
        }
        if text.chars().any(char::is_whitespace) {
            return Err(PatternError::Whitespace { pattern: text.to_owned() });
        }
        let count = text.split('.').count();
        let mut tokens = Vec::with_capacity(count);
        for (index, token) in text.split('.').enumerate() {
            let parsed = match token {
                "" => {
                    return Err(PatternError::EmptyToken {
                        pattern: text.to_owned(),
                        position: index + 1,
                    });
                }
                "*" => SubjectToken::OneToken,
                ">" if index + 1 == count => SubjectToken::Tail,
                ">" => return Err(PatternError::TailWildcardNotLast { pattern: text.to_owned() }),
                _ if token.contains(['*', '>']) => {
                    return Err(PatternError::MixedWildcard {
                        pattern: text.to_owned(),
                        token: token.to_owned(),
                    });
                }
                literal => SubjectToken::Literal(literal.to_owned()),
            };
            tokens.push(parsed);
        }
        Ok(Self { text: text.to_owned(), tokens })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the concrete `subject` matches. A subject with an empty token (`a..b`, a
    /// leading or trailing dot, or the empty string) is not a NATS subject and matches nothing.
    pub fn matches(&self, subject: &str) -> bool {
        let mut parts = subject.split('.');
        for token in &self.tokens {
            match token {
                SubjectToken::Tail => {
                    let mut rest = parts.by_ref().peekable();
                    return rest.peek().is_some() && rest.all(|part| !part.is_empty());
                }
                SubjectToken::OneToken => {
                    if parts.next().is_none_or(str::is_empty) {
                        return false;
                    }
                }
                SubjectToken::Literal(literal) => {
                    if parts.next() != Some(literal.as_str()) {
                        return false;
                    }
                }
            }
        }
        parts.next().is_none()
    }
}

impl fmt::Display for SubjectPattern {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.text)
    }
}
