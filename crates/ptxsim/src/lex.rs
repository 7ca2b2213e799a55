//! Tokenizer for PTX text: identifiers (dotted opcodes, `%`-registers, `$`-labels,
//! `::` qualifiers), integer and float literals (PTX ISA "Constants"), strings and
//! punctuation; comments are dropped and each token keeps its source line.

use crate::error::SimError;

/// A token kind.
#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    /// Identifier, directive, opcode or register name.
    Ident(String),
    /// Integer literal (raw bits; `0f`/`0d` float literals are their bit patterns).
    Int(u64),
    /// Decimal floating-point literal.
    Float(f64),
    /// String literal.
    Str(String),
    /// Punctuation character.
    P(char),
}

/// A token with its source line.
#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    /// The token.
    pub t: Tok,
    /// 1-based source line.
    pub line: u32,
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || matches!(c, b'_' | b'$' | b'%' | b'.')
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'$' | b'%' | b'.')
}

fn parse_number(s: &str, line: u32) -> Result<Tok, SimError> {
    let err = || SimError::Parse { line, message: format!("bad numeric literal `{s}`") };
    let lower = s.to_ascii_lowercase();
    if (lower.starts_with("0f") && s.len() == 10) || (lower.starts_with("0d") && s.len() == 18) {
        return u64::from_str_radix(&s[2..], 16).map(Tok::Int).map_err(|_| err());
    }
    let t = lower.trim_end_matches('u');
    if let Some(h) = t.strip_prefix("0x") {
        return u64::from_str_radix(h, 16).map(Tok::Int).map_err(|_| err());
    }
    if let Some(b) = t.strip_prefix("0b") {
        return u64::from_str_radix(b, 2).map(Tok::Int).map_err(|_| err());
    }
    if t.contains('.') || t.contains('e') {
        return t.parse::<f64>().map(Tok::Float).map_err(|_| err());
    }
    if t.len() > 1 && t.starts_with('0') {
        return u64::from_str_radix(&t[1..], 8).map(Tok::Int).map_err(|_| err());
    }
    t.parse::<u64>().map(Tok::Int).map_err(|_| err())
}

/// Splits PTX text into tokens.
pub fn lex(src: &str) -> Result<Vec<Token>, SimError> {
    let b = src.as_bytes();
    let mut out = Vec::with_capacity(src.len() / 4);
    let mut i = 0;
    let mut line = 1u32;
    while i < b.len() {
        let c = b[i];
        if c == b'\n' {
            line += 1;
            i += 1;
        } else if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            i += 2;
            while i < b.len() && !(b[i] == b'*' && b.get(i + 1) == Some(&b'/')) {
                if b[i] == b'\n' {
                    line += 1;
                }
                i += 1;
            }
            i += 2;
        } else if c == b'"' {
            let start = i + 1;
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\n' {
                    line += 1;
                }
                i += 1;
            }
            out.push(Token { t: Tok::Str(src[start..i.min(b.len())].to_string()), line });
            i += 1;
        } else if c.is_ascii_digit() {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                i += 1;
            }
            out.push(Token { t: parse_number(&src[start..i], line)?, line });
        } else if is_ident_start(c) {
            let start = i;
            while i < b.len() {
                if is_ident_char(b[i]) {
                    i += 1;
                } else if b[i] == b':' && b.get(i + 1) == Some(&b':') {
                    i += 2;
                } else {
                    break;
                }
            }
            out.push(Token { t: Tok::Ident(src[start..i].to_string()), line });
        } else if b",;:[]{}()+-@!|<>=".contains(&c) {
            out.push(Token { t: Tok::P(c as char), line });
            i += 1;
        } else {
            return Err(SimError::Parse { line, message: format!("unexpected character `{}`", c as char) });
        }
    }
    Ok(out)
}
