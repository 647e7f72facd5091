//! Errors of a SQL job: each names the line and column it is about.

use sqlparser::tokenizer::Span;

/// What is wrong with a job, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", at(*.line, *.column))]
pub struct Error {
    /// 1-based line of the job text (0: the job as a whole).
    pub line: u64,
    /// 1-based column.
    pub column: u64,
    /// What is wrong, as a sentence.
    pub message: String,
}

fn at(line: u64, column: u64) -> String {
    if line == 0 {
        String::new()
    } else {
        format!("line {line}, column {column}: ")
    }
}

/// This crate's result.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An error about the text at `span`.
    pub fn at(span: Span, message: impl Into<String>) -> Self {
        Self { line: span.start.line, column: span.start.column, message: message.into() }
    }

    /// sqlparser's error, its `at Line: L, Column: C` suffix turned into
    /// our position; an error without one (at the end of the text) is put
    /// just after the last character of `sql`.
    pub(crate) fn syntax(sql: &str, e: sqlparser::parser::ParserError) -> Self {
        use sqlparser::parser::ParserError as P;
        let text = match e {
            P::TokenizerError(s) | P::ParserError(s) => s,
            P::RecursionLimitExceeded => "the statement is nested too deeply".to_string(),
        };
        if let Some(i) = text.rfind(" at Line: ") {
            let (msg, loc) = text.split_at(i);
            let mut nums = loc.trim_start_matches(" at Line: ").split(", Column: ").map(|n| n.trim().parse::<u64>());
            if let (Some(Ok(line)), Some(Ok(column))) = (nums.next(), nums.next()) {
                return Self { line, column, message: format!("syntax error: {msg}") };
            }
        }
        let (line, column) = end_of(sql);
        Self { line, column, message: format!("syntax error: {text}") }
    }
}

/// Line and column just after the last non-blank character of `text`.
fn end_of(text: &str) -> (u64, u64) {
    let text = text.trim_end();
    let line = text.lines().count().max(1) as u64;
    let last = text.rsplit('\n').next().unwrap_or_default();
    (line, last.chars().count() as u64 + 1)
}
