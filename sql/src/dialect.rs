//! The Flink dialect: sqlparser's generic grammar plus Flink's forms, added
//! through sqlparser's `Dialect` hooks.
//!
//! - `parse_statement`: Flink's `CREATE TABLE`, whose column list may hold
//!   computed columns (`ts AS TO_TIMESTAMP_LTZ(ts_ms, 3)`) and one
//!   `WATERMARK FOR col AS expr`, followed by `WITH ('k' = 'v', ...)`.
//!   Computed columns become sqlparser's generated columns (`AS expr`,
//!   virtual). sqlparser's `CreateTable` has no place for a watermark, so
//!   the dialect keeps each table's watermark beside the statements, in
//!   the order the tables were parsed; [`parse`] pairs them again.
//! - `parse_prefix`: the window table function arguments `TABLE t [PARTITION
//!   BY col | (col, ...)]` and `DESCRIPTOR(col, ...)`, as in
//!   `TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '5' SECOND)` or
//!   `SESSION(TABLE t PARTITION BY id, DESCRIPTOR(ts), INTERVAL '1'
//!   MINUTE)`. They parse into calls of the pseudo functions `TABLE(t)` or
//!   `TABLE(t, PARTITION_BY(col, ...))` and `DESCRIPTOR(col)`
//!   ([`TABLE_ARG`], [`PARTITION_ARG`], [`DESCRIPTOR_ARG`]).
//!
//! Flink constructs that the dialect recognises but Rivulet cannot run
//! (`PRIMARY KEY`, `METADATA` columns, `PARTITIONED BY`, `LIKE`) are
//! refused here, by name and position.

use crate::error::{Error, Result};
use sqlparser::ast::helpers::stmt_create_table::CreateTableBuilder;
use sqlparser::ast::{
    ColumnDef, ColumnOption, ColumnOptionDef, CreateTableOptions, DataType, Expr, Function, FunctionArg,
    FunctionArgExpr, FunctionArgumentList, FunctionArguments, GeneratedAs, GeneratedExpressionMode, Ident, ObjectName,
    SqlOption, Statement,
};
use sqlparser::dialect::Dialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Span, Token, TokenWithSpan};
use std::cell::RefCell;

/// The pseudo function `TABLE t` parses into (`TABLE(t)`).
pub const TABLE_ARG: &str = "TABLE";
/// The pseudo function `PARTITION BY col, ...` of a `TABLE t` argument
/// parses into (`PARTITION_BY(col, ...)`).
pub const PARTITION_ARG: &str = "PARTITION_BY";
/// The function `DESCRIPTOR(col)` parses into.
pub const DESCRIPTOR_ARG: &str = "DESCRIPTOR";

/// `WATERMARK FOR column AS expr` of a `CREATE TABLE`.
#[derive(Debug, Clone, PartialEq)]
pub struct WatermarkDef {
    /// The event-time column.
    pub column: Ident,
    /// The watermark expression, e.g. `ts - INTERVAL '2' SECOND`.
    pub expr: Expr,
}

/// One statement of a job: sqlparser's, plus the watermark of a `CREATE
/// TABLE`.
#[derive(Debug, Clone, PartialEq)]
pub struct JobStatement {
    /// The statement.
    pub statement: Statement,
    /// For a `CREATE TABLE`: its `WATERMARK FOR` clause, if any.
    pub watermark: Option<WatermarkDef>,
    /// Where the statement starts (its first token).
    pub at: Span,
}

/// Flink SQL on sqlparser (see the module docs).
#[derive(Debug, Default)]
pub struct FlinkDialect {
    /// One entry per `CREATE TABLE` parsed, in order.
    watermarks: RefCell<Vec<Option<WatermarkDef>>>,
}

/// Parses a job: statements separated by `;`.
///
/// # Errors
/// A syntax error, naming line, column and what was expected.
pub fn parse(sql: &str) -> Result<Vec<JobStatement>> {
    let dialect = FlinkDialect::default();
    let statements = statements(&dialect, sql).map_err(|e| Error::syntax(sql, e))?;
    let mut watermarks = dialect.watermarks.take().into_iter();
    Ok(statements
        .into_iter()
        .map(|(statement, at)| {
            let watermark =
                if matches!(statement, Statement::CreateTable(_)) { watermarks.next().flatten() } else { None };
            JobStatement { statement, watermark, at }
        })
        .collect())
}

/// sqlparser's `parse_statements`, keeping where each statement starts.
fn statements(dialect: &FlinkDialect, sql: &str) -> std::result::Result<Vec<(Statement, Span)>, ParserError> {
    let mut p = Parser::new(dialect).try_with_sql(sql)?;
    let mut out = Vec::new();
    let mut expect_delimiter = false;
    loop {
        while p.consume_token(&Token::SemiColon) {
            expect_delimiter = false;
        }
        let next = p.peek_token();
        if next.token == Token::EOF {
            break;
        }
        if expect_delimiter {
            return p.expected("end of statement (;)", next);
        }
        out.push((p.parse_statement()?, next.span));
        expect_delimiter = true;
    }
    Ok(out)
}

impl Dialect for FlinkDialect {
    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        ch == '`'
    }

    fn is_identifier_start(&self, ch: char) -> bool {
        ch.is_alphabetic() || ch == '_'
    }

    fn is_identifier_part(&self, ch: char) -> bool {
        ch.is_alphanumeric() || ch == '_' || ch == '$'
    }

    fn supports_boolean_literals(&self) -> bool {
        true
    }

    fn parse_statement(&self, parser: &mut Parser<'_>) -> Option<std::result::Result<Statement, ParserError>> {
        let [a, b] = parser.peek_tokens();
        if !is_keyword(&a, Keyword::CREATE) {
            return None;
        }
        let temporary = is_keyword(&b, Keyword::TEMPORARY);
        let table_at = if temporary { 2 } else { 1 };
        if !is_keyword(&parser.peek_nth_token(table_at).token, Keyword::TABLE) {
            return None;
        }
        for _ in 0..=table_at {
            parser.next_token();
        }
        Some(self.create_table(parser, temporary))
    }

    fn parse_prefix(&self, parser: &mut Parser<'_>) -> Option<std::result::Result<Expr, ParserError>> {
        let [a, b] = parser.peek_tokens();
        if is_keyword(&a, Keyword::TABLE) && matches!(b, Token::Word(_)) {
            parser.next_token();
            return Some(parser.parse_object_name(false).and_then(|name| {
                let Some(ident) = name.0.last().and_then(|p| p.as_ident()).cloned() else {
                    return Ok(pseudo_call(TABLE_ARG, vec![]));
                };
                let mut args = vec![Expr::Identifier(ident)];
                if parser.parse_keywords(&[Keyword::PARTITION, Keyword::BY]) {
                    // One column, or a list in parentheses: a bare list
                    // would swallow the DESCRIPTOR argument after it.
                    let cols = if parser.consume_token(&Token::LParen) {
                        let cols = parser.parse_comma_separated(|p| p.parse_identifier())?;
                        parser.expect_token(&Token::RParen)?;
                        cols
                    } else {
                        vec![parser.parse_identifier()?]
                    };
                    args.push(pseudo_call(PARTITION_ARG, cols.into_iter().map(Expr::Identifier).collect()));
                }
                Ok(pseudo_call(TABLE_ARG, args))
            }));
        }
        if is_word(&a, DESCRIPTOR_ARG) && b == Token::LParen {
            parser.next_token();
            parser.next_token();
            let cols = parser.parse_comma_separated(|p| p.parse_identifier());
            return Some(cols.and_then(|cols| {
                parser.expect_token(&Token::RParen)?;
                Ok(pseudo_call(DESCRIPTOR_ARG, cols.into_iter().map(Expr::Identifier).collect()))
            }));
        }
        None
    }
}

impl FlinkDialect {
    /// After `CREATE [TEMPORARY] TABLE`.
    fn create_table(&self, p: &mut Parser<'_>, temporary: bool) -> std::result::Result<Statement, ParserError> {
        let if_not_exists = p.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
        let name = p.parse_object_name(false)?;
        if p.peek_keyword(Keyword::LIKE) {
            return unsupported(p, "CREATE TABLE ... LIKE is not supported");
        }
        p.expect_token(&Token::LParen)?;
        let mut columns = Vec::new();
        let mut watermark = None;
        loop {
            if is_word(&p.peek_token().token, "WATERMARK") {
                let at = p.peek_token();
                p.next_token();
                p.expect_keyword_is(Keyword::FOR)?;
                let column = p.parse_identifier()?;
                p.expect_keyword_is(Keyword::AS)?;
                let expr = p.parse_expr()?;
                if watermark.is_some() {
                    return err_at(&at, "a table has at most one WATERMARK FOR clause");
                }
                watermark = Some(WatermarkDef { column, expr });
            } else if p.peek_keyword(Keyword::PRIMARY) || p.peek_keyword(Keyword::CONSTRAINT) {
                return unsupported(p, "PRIMARY KEY constraints are not supported");
            } else {
                columns.push(column(p)?);
            }
            if p.consume_token(&Token::Comma) {
                continue;
            }
            p.expect_token(&Token::RParen)?;
            break;
        }
        if p.peek_keyword(Keyword::COMMENT) {
            p.next_token();
            p.parse_literal_string()?;
        }
        if p.peek_keyword(Keyword::PARTITIONED) {
            return unsupported(p, "PARTITIONED BY is not supported");
        }
        p.expect_keyword_is(Keyword::WITH)?;
        p.expect_token(&Token::LParen)?;
        let options = p.parse_comma_separated(|p| {
            let key_at = p.peek_token();
            let key = p.parse_literal_string()?;
            p.expect_token(&Token::Eq)?;
            let value = p.parse_expr()?;
            Ok(SqlOption::KeyValue {
                key: Ident { value: key, quote_style: Some('\''), span: key_at.span }.into(),
                value,
            })
        })?;
        p.expect_token(&Token::RParen)?;
        self.watermarks.borrow_mut().push(watermark);
        let table = CreateTableBuilder::new(name)
            .temporary(temporary)
            .if_not_exists(if_not_exists)
            .columns(columns)
            .table_options(CreateTableOptions::With(options))
            .build();
        Ok(Statement::CreateTable(table))
    }
}

/// `name TYPE [NOT NULL] [COMMENT '...']` or `name AS expr [COMMENT '...']`.
fn column(p: &mut Parser<'_>) -> std::result::Result<ColumnDef, ParserError> {
    let name = p.parse_identifier()?;
    let mut options = Vec::new();
    let data_type = if p.parse_keyword(Keyword::AS) {
        let expr = p.parse_expr()?;
        options.push(ColumnOptionDef {
            name: None,
            option: ColumnOption::Generated {
                generated_as: GeneratedAs::Always,
                sequence_options: None,
                generation_expr: Some(expr),
                generation_expr_mode: Some(GeneratedExpressionMode::Virtual),
                generated_keyword: false,
            },
        });
        DataType::Unspecified
    } else {
        let t = p.parse_data_type()?;
        if p.peek_keyword(Keyword::METADATA) {
            return unsupported(p, "METADATA columns are not supported");
        }
        if p.parse_keywords(&[Keyword::NOT, Keyword::NULL]) {
            options.push(ColumnOptionDef { name: None, option: ColumnOption::NotNull });
        } else if p.parse_keyword(Keyword::NULL) {
            options.push(ColumnOptionDef { name: None, option: ColumnOption::Null });
        }
        t
    };
    if p.parse_keyword(Keyword::COMMENT) {
        let c = p.parse_literal_string()?;
        options.push(ColumnOptionDef { name: None, option: ColumnOption::Comment(c) });
    }
    Ok(ColumnDef { name, data_type, options })
}

fn is_keyword(t: &Token, k: Keyword) -> bool {
    matches!(t, Token::Word(w) if w.keyword == k && w.quote_style.is_none())
}

/// An unquoted word, whether sqlparser knows it as a keyword or not.
fn is_word(t: &Token, word: &str) -> bool {
    matches!(t, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word))
}

fn pseudo_call(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function(Function {
        name: ObjectName::from(vec![Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: args.into_iter().map(|e| FunctionArg::Unnamed(FunctionArgExpr::Expr(e))).collect(),
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}

fn err_at<T>(at: &TokenWithSpan, msg: &str) -> std::result::Result<T, ParserError> {
    Err(ParserError::ParserError(format!("{msg}{}", at.span.start)))
}

fn unsupported<T>(p: &Parser<'_>, msg: &str) -> std::result::Result<T, ParserError> {
    err_at(&p.peek_token(), msg)
}

#[cfg(test)]
#[path = "dialect_tests.rs"]
mod tests;
