//! FilterLogEvents' filter patterns for unstructured events, as
//! CloudWatch's filter syntax has them:
//!
//! - terms separated by spaces must all appear (`ERROR Exception`);
//! - a term in double quotes is matched as it is, spaces and all
//!   (`"Internal Server Error"`; `\"` and `\\` inside stand for `"` and `\`);
//! - a term after `-` must not appear (`ERROR -Retrying`);
//! - of the terms after `?`, at least one must appear (`?ERROR ?WARN`);
//! - an empty pattern (or `""`) matches every event.
//!
//! Terms match anywhere in the message, case-sensitively. JSON
//! (`{ $.x = 1 }`), space-delimited (`[ip, user, ...]`) and regular
//! expression (`%...%`) patterns are refused as not supported yet.

/// A parsed pattern.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FilterPattern {
    all: Vec<String>,
    none: Vec<String>,
    any: Vec<String>,
}

/// Why a pattern could not be read (the message is the client's).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid filter pattern: {0}")]
pub struct PatternError(String);

impl FilterPattern {
    pub fn parse(pattern: &str) -> Result<Self, PatternError> {
        let text = pattern.trim();
        match text.chars().next() {
            Some('{') => return Err(unsupported("JSON")),
            Some('[') => return Err(unsupported("space-delimited")),
            Some('%') => return Err(unsupported("regular expression")),
            _ => {}
        }
        let mut parsed = Self::default();
        let mut chars = text.chars().peekable();
        loop {
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
            let Some(&first) = chars.peek() else { break };
            let list = match first {
                '-' => &mut parsed.none,
                '?' => &mut parsed.any,
                _ => &mut parsed.all,
            };
            if first == '-' || first == '?' {
                chars.next();
            }
            let mut term = String::new();
            if chars.next_if_eq(&'"').is_some() {
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c) => term.push(c),
                            None => return Err(PatternError("a quoted term is not closed".into())),
                        },
                        Some(c) => term.push(c),
                        None => return Err(PatternError("a quoted term is not closed".into())),
                    }
                }
                if chars.peek().is_some_and(|c| !c.is_whitespace()) {
                    return Err(PatternError("a quoted term must be followed by a space".into()));
                }
            } else {
                while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                    if c == '"' {
                        return Err(PatternError(format!("unexpected '\"' in term {term:?}")));
                    }
                    term.push(c);
                }
                if term.is_empty() {
                    return Err(PatternError(format!("'{first}' must be followed by a term")));
                }
            }
            list.push(term);
        }
        Ok(parsed)
    }

    pub fn matches(&self, message: &str) -> bool {
        self.all.iter().all(|t| message.contains(t.as_str()))
            && !self.none.iter().any(|t| message.contains(t.as_str()))
            && (self.any.is_empty() || self.any.iter().any(|t| message.contains(t.as_str())))
    }
}

fn unsupported(kind: &str) -> PatternError {
    PatternError(format!("Berth does not support {kind} filter patterns yet; use terms and \"quoted phrases\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, message: &str) -> bool {
        FilterPattern::parse(pattern).expect(pattern).matches(message)
    }

    #[test]
    fn terms_all_must_appear() {
        assert!(matches("", "anything"));
        assert!(matches("   ", "anything"));
        assert!(matches("\"\"", "anything"));
        assert!(matches("ERROR", "[ERROR 400] BAD REQUEST"));
        assert!(!matches("ERROR", "[error 400] bad request"), "case-sensitive");
        assert!(matches("ERROR 400", "[ERROR 400] BAD REQUEST"));
        assert!(matches("400 ERROR", "[ERROR 400] BAD REQUEST"), "in any order");
        assert!(!matches("ERROR 401", "[ERROR 400] BAD REQUEST"));
        assert!(matches("ERROR", "ERRORS"), "anywhere in the message");
    }

    #[test]
    fn quoted_phrases_match_as_written() {
        assert!(matches("\"Internal Server Error\"", "500 Internal Server Error here"));
        assert!(!matches("\"Internal Server Error\"", "Internal  Server Error"));
        assert!(!matches("\"Server Internal\"", "Internal Server"));
        assert!(matches("\"a \\\"b\\\"\" c", "c a \"b\""));
        assert!(matches("\"[ERROR]\" \"x=1\"", "x=1 [ERROR]"));
    }

    #[test]
    fn exclusions_and_alternatives() {
        assert!(matches("ERROR -Retrying", "ERROR: timeout"));
        assert!(!matches("ERROR -Retrying", "ERROR: timeout, Retrying"));
        assert!(matches("-DEBUG", "INFO hello"));
        assert!(!matches("-DEBUG", "DEBUG hello"));
        assert!(matches("?ERROR ?WARN", "WARN disk"));
        assert!(matches("?ERROR ?WARN", "ERROR disk"));
        assert!(!matches("?ERROR ?WARN", "INFO disk"));
        assert!(matches("disk ?ERROR ?WARN", "WARN disk"));
        assert!(!matches("disk ?ERROR ?WARN", "WARN cpu"));
        assert!(!matches("?ERROR ?WARN -disk", "WARN disk"));
        assert!(matches("-\"two words\"", "two  words"));
        assert!(!matches("-\"two words\"", "say two words"));
    }

    #[test]
    fn malformed_and_unsupported_patterns_are_refused() {
        for bad in ["\"open", "a \"open", "-", "? x", "\"a\"b", "a\"b", "{ $.x = 1 }", "[ip, user]", "%ERR.*%"] {
            assert!(FilterPattern::parse(bad).is_err(), "{bad:?}");
        }
    }

    mod fuzz {
        //! Random patterns, from CloudWatch's syntax characters and from
        //! any text: a pattern or a `PatternError` whose message says
        //! "Invalid filter pattern" (the handler answers it as
        //! `InvalidParameterException`), and a parsed pattern matches
        //! random messages without panicking. `PROPTEST_CASES` raises the
        //! 256 cases.
        use super::super::*;
        use proptest::prelude::*;

        fn check(pattern: &str, message: &str) {
            match FilterPattern::parse(pattern) {
                Ok(p) => {
                    let _ = p.matches(message);
                }
                Err(e) => assert!(e.to_string().starts_with("Invalid filter pattern: "), "{e}"),
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

            #[test]
            fn syntax_characters(pattern in r#"[ "\\?\-{}\[\]%$.=a-cé\t]{0,40}"#, message in ".{0,40}") {
                check(&pattern, &message);
            }

            #[test]
            fn any_text(pattern in "\\PC{0,60}", message in "\\PC{0,60}") {
                check(&pattern, &message);
            }
        }
    }
}
