//! Event-type globs and NATS subject patterns: parsing and matching, nothing else.

/// A glob over event types: `*` matches any run of characters (dots included, so
/// `github.*` matches `github.pull_request.opened`), `?` one character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypePattern(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("an event-type pattern cannot be empty")]
    EmptyType,
    #[error(
        "`{0}` is not a NATS subject pattern: tokens are non-empty, `*` and `>` stand alone, `>` only last"
    )]
    Subject(String),
}

impl TypePattern {
    pub fn parse(pattern: &str) -> Result<Self, PatternError> {
        if pattern.is_empty() { Err(PatternError::EmptyType) } else { Ok(Self(pattern.to_owned())) }
    }

    pub fn matches(&self, event_type: &str) -> bool {
        glob(self.0.as_bytes(), event_type.as_bytes())
    }
}

/// Iterative glob matching with one backtrack point: linear in practice, never exponential.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(b'?') => {
                p += 1;
                t += 1;
            }
            Some(&byte) if byte == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&byte| byte == b'*')
}

/// A NATS subject pattern: `*` matches exactly one token, `>` one or more trailing tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectPattern(Vec<String>);

impl SubjectPattern {
    pub fn parse(pattern: &str) -> Result<Self, PatternError> {
        let tokens: Vec<String> = pattern.split('.').map(str::to_owned).collect();
        let last = tokens.len() - 1;
        let valid = tokens.iter().enumerate().all(|(index, token)| {
            !token.is_empty()
                && !token.chars().any(char::is_whitespace)
                && (token == "*" || token == ">" || !token.contains(['*', '>']))
                && (token != ">" || index == last)
        });
        if valid { Ok(Self(tokens)) } else { Err(PatternError::Subject(pattern.to_owned())) }
    }

    pub fn matches(&self, subject: &str) -> bool {
        let mut tokens = subject.split('.');
        for pattern in &self.0 {
            match (pattern.as_str(), tokens.next()) {
                (">", Some(token)) => return !token.is_empty(),
                (_, None) => return false,
                (_, Some("")) => return false,
                ("*", Some(_)) => {}
                (literal, Some(token)) if literal == token => {}
                _ => return false,
            }
        }
        tokens.next().is_none()
    }
}
