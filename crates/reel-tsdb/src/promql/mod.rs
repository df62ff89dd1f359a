//! A PromQL subset: parser (this module) and evaluator ([`eval`]).
//!
//! Supported: vector selectors with `=`, `!=`, `=~`, `!~`; range selectors `[5m]`; `offset`;
//! number literals; parentheses; unary minus; `+ - * /` between scalars and vectors with
//! one-to-one matching (`on(...)`, `ignoring(...)`); aggregations `sum avg max min count` with
//! `by (...)` / `without (...)`; functions `rate increase delta irate avg_over_time
//! max_over_time min_over_time sum_over_time count_over_time last_over_time
//! histogram_quantile abs time`.

pub mod eval;

use crate::labels::{MatchOp, Matcher, METRIC_NAME};
use serde::Serialize;
use std::fmt;

pub use eval::QueryResult;

/// A syntax error with the byte offset in the query where it was detected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at {pos}: {message}")]
pub struct ParseError {
    pub pos: usize,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum AggOp {
    Sum,
    Avg,
    Max,
    Min,
    Count,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    Rate,
    Increase,
    Delta,
    Irate,
    AvgOverTime,
    MaxOverTime,
    MinOverTime,
    SumOverTime,
    CountOverTime,
    LastOverTime,
    HistogramQuantile,
    Abs,
    Time,
}

impl Func {
    fn from_name(name: &str) -> Option<Func> {
        Some(match name {
            "rate" => Func::Rate,
            "increase" => Func::Increase,
            "delta" => Func::Delta,
            "irate" => Func::Irate,
            "avg_over_time" => Func::AvgOverTime,
            "max_over_time" => Func::MaxOverTime,
            "min_over_time" => Func::MinOverTime,
            "sum_over_time" => Func::SumOverTime,
            "count_over_time" => Func::CountOverTime,
            "last_over_time" => Func::LastOverTime,
            "histogram_quantile" => Func::HistogramQuantile,
            "abs" => Func::Abs,
            "time" => Func::Time,
            _ => return None,
        })
    }

    /// Argument kinds: `true` = range vector.
    fn signature(self) -> &'static [ArgKind] {
        use ArgKind::*;
        match self {
            Func::Rate
            | Func::Increase
            | Func::Delta
            | Func::Irate
            | Func::AvgOverTime
            | Func::MaxOverTime
            | Func::MinOverTime
            | Func::SumOverTime
            | Func::CountOverTime
            | Func::LastOverTime => &[Range],
            Func::HistogramQuantile => &[Scalar, Instant],
            Func::Abs => &[Instant],
            Func::Time => &[],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArgKind {
    Scalar,
    Instant,
    Range,
}

#[derive(Debug, Clone)]
pub struct Selector {
    /// Pre-order number of the selector in the expression; the evaluator preloads data by it.
    pub id: usize,
    pub matchers: Vec<Matcher>,
    pub range_ms: Option<i64>,
    pub offset_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grouping {
    pub without: bool,
    pub labels: Vec<String>,
}

#[derive(Debug, Clone)]
pub enum Expr {
    Number(f64),
    Selector(Selector),
    Call {
        func: Func,
        args: Vec<Expr>,
    },
    Aggregate {
        op: AggOp,
        grouping: Option<Grouping>,
        expr: Box<Expr>,
    },
    Binary {
        op: BinOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
        matching: Option<(bool, Vec<String>)>,
    },
    Neg(Box<Expr>),
}

impl Expr {
    /// Whether the expression evaluates to a scalar (no selectors below it).
    pub fn is_scalar(&self) -> bool {
        match self {
            Expr::Number(_) => true,
            Expr::Call {
                func: Func::Time, ..
            } => true,
            Expr::Neg(e) => e.is_scalar(),
            Expr::Binary { lhs, rhs, .. } => lhs.is_scalar() && rhs.is_scalar(),
            _ => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Number(f64),
    Str(String),
    Duration(i64),
    LParen,
    RParen,
    LBrace,
    RBrace,
    LBracket,
    RBracket,
    Comma,
    Eq,
    Ne,
    ReMatch,
    ReNoMatch,
    Plus,
    Minus,
    Star,
    Slash,
    Eof,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Ident(s) => write!(f, "identifier {s:?}"),
            Tok::Number(n) => write!(f, "number {n}"),
            Tok::Str(s) => write!(f, "string {s:?}"),
            Tok::Duration(d) => write!(f, "duration {d}ms"),
            Tok::Eof => write!(f, "end of input"),
            other => {
                let s = match other {
                    Tok::LParen => "(",
                    Tok::RParen => ")",
                    Tok::LBrace => "{",
                    Tok::RBrace => "}",
                    Tok::LBracket => "[",
                    Tok::RBracket => "]",
                    Tok::Comma => ",",
                    Tok::Eq => "=",
                    Tok::Ne => "!=",
                    Tok::ReMatch => "=~",
                    Tok::ReNoMatch => "!~",
                    Tok::Plus => "+",
                    Tok::Minus => "-",
                    Tok::Star => "*",
                    Tok::Slash => "/",
                    _ => "?",
                };
                write!(f, "'{s}'")
            }
        }
    }
}

fn err<T>(pos: usize, message: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError {
        pos,
        message: message.into(),
    })
}

fn unit_ms(u: &str) -> Option<i64> {
    Some(match u {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        "y" => 365 * 86_400_000,
        _ => return None,
    })
}

fn lex(src: &str) -> Result<Vec<(Tok, usize)>, ParseError> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'#' {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        let two = if i + 1 < b.len() {
            &b[i..i + 2]
        } else {
            &b[i..i + 1]
        };
        let tok = match two {
            b"!=" => Some((Tok::Ne, 2)),
            b"=~" => Some((Tok::ReMatch, 2)),
            b"!~" => Some((Tok::ReNoMatch, 2)),
            _ => None,
        };
        if let Some((t, n)) = tok {
            out.push((t, start));
            i += n;
            continue;
        }
        let single = match c {
            b'(' => Some(Tok::LParen),
            b')' => Some(Tok::RParen),
            b'{' => Some(Tok::LBrace),
            b'}' => Some(Tok::RBrace),
            b'[' => Some(Tok::LBracket),
            b']' => Some(Tok::RBracket),
            b',' => Some(Tok::Comma),
            b'=' => Some(Tok::Eq),
            b'+' => Some(Tok::Plus),
            b'-' => Some(Tok::Minus),
            b'*' => Some(Tok::Star),
            b'/' => Some(Tok::Slash),
            _ => None,
        };
        if let Some(t) = single {
            out.push((t, start));
            i += 1;
            continue;
        }
        if c == b'"' || c == b'\'' || c == b'`' {
            i += 1;
            let mut s = String::new();
            loop {
                let Some(ch) = src[i..].chars().next() else {
                    return err(start, "unterminated string");
                };
                i += ch.len_utf8();
                if ch as u32 == u32::from(c) {
                    break;
                }
                if ch == '\\' && c != b'`' {
                    let Some(e) = src[i..].chars().next() else {
                        return err(start, "unterminated string");
                    };
                    i += e.len_utf8();
                    s.push(match e {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        other => other,
                    });
                } else {
                    s.push(ch);
                }
            }
            out.push((Tok::Str(s), start));
            continue;
        }
        if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(|d| d.is_ascii_digit())) {
            // Either a duration like 1h30m or a float literal.
            let mut j = i;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            if j < b.len() && b[j].is_ascii_alphabetic() && !matches!(b[j], b'e' | b'E') {
                let mut total: i64 = 0;
                let mut k = i;
                loop {
                    let ds = k;
                    while k < b.len() && b[k].is_ascii_digit() {
                        k += 1;
                    }
                    if ds == k {
                        break;
                    }
                    let us = k;
                    while k < b.len() && b[k].is_ascii_alphabetic() {
                        k += 1;
                    }
                    let (digits, unit) = (&src[ds..us], &src[us..k]);
                    let Some(mult) = unit_ms(unit) else {
                        return err(us, format!("unknown duration unit {unit:?}"));
                    };
                    let n: i64 = digits.parse().map_err(|_| ParseError {
                        pos: ds,
                        message: "bad duration".into(),
                    })?;
                    total = total.saturating_add(n.saturating_mul(mult));
                }
                out.push((Tok::Duration(total), start));
                i = k;
                continue;
            }
            let mut k = i;
            while k < b.len() && (b[k].is_ascii_digit() || b[k] == b'.') {
                k += 1;
            }
            if k < b.len() && matches!(b[k], b'e' | b'E') {
                k += 1;
                if k < b.len() && matches!(b[k], b'+' | b'-') {
                    k += 1;
                }
                while k < b.len() && b[k].is_ascii_digit() {
                    k += 1;
                }
            }
            let n: f64 = src[i..k].parse().map_err(|_| ParseError {
                pos: start,
                message: format!("bad number {:?}", &src[i..k]),
            })?;
            out.push((Tok::Number(n), start));
            i = k;
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' || c == b':' {
            let mut k = i;
            while k < b.len() && (b[k].is_ascii_alphanumeric() || b[k] == b'_' || b[k] == b':') {
                k += 1;
            }
            out.push((Tok::Ident(src[i..k].to_string()), start));
            i = k;
            continue;
        }
        let ch = src[i..].chars().next().unwrap_or('?');
        return err(start, format!("unexpected character {ch:?}"));
    }
    out.push((Tok::Eof, src.len()));
    Ok(out)
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    i: usize,
    selectors: usize,
}

/// Parses a PromQL expression.
pub fn parse(src: &str) -> Result<Expr, ParseError> {
    let mut p = Parser {
        toks: lex(src)?,
        i: 0,
        selectors: 0,
    };
    let e = p.expr(0)?;
    if p.peek() != &Tok::Eof {
        return err(p.pos(), format!("unexpected {} after expression", p.peek()));
    }
    Ok(e)
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.i.min(self.toks.len() - 1)].0
    }
    fn pos(&self) -> usize {
        self.toks[self.i.min(self.toks.len() - 1)].1
    }
    fn next(&mut self) -> Tok {
        let t = self.peek().clone();
        if self.i < self.toks.len() - 1 {
            self.i += 1;
        }
        t
    }
    fn expect(&mut self, t: Tok) -> Result<(), ParseError> {
        if *self.peek() == t {
            self.next();
            Ok(())
        } else {
            err(self.pos(), format!("expected {t}, found {}", self.peek()))
        }
    }

    fn expr(&mut self, min_prec: u8) -> Result<Expr, ParseError> {
        let mut lhs = self.unary()?;
        loop {
            let (op, prec) = match self.peek() {
                Tok::Plus => (BinOp::Add, 1),
                Tok::Minus => (BinOp::Sub, 1),
                Tok::Star => (BinOp::Mul, 2),
                Tok::Slash => (BinOp::Div, 2),
                _ => break,
            };
            if prec < min_prec {
                break;
            }
            self.next();
            let matching = match self.peek() {
                Tok::Ident(k) if k == "on" || k == "ignoring" => {
                    let on = k == "on";
                    self.next();
                    Some((on, self.label_list()?))
                }
                _ => None,
            };
            let rhs_pos = self.pos();
            let rhs = self.expr(prec + 1)?;
            if matching.is_some() && (lhs.is_scalar() || rhs.is_scalar()) {
                return err(
                    rhs_pos,
                    "vector matching only allowed between instant vectors",
                );
            }
            lhs = Expr::Binary {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
                matching,
            };
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        match self.peek() {
            Tok::Minus => {
                self.next();
                let e = self.unary()?;
                Ok(match e {
                    Expr::Number(n) => Expr::Number(-n),
                    e => Expr::Neg(Box::new(e)),
                })
            }
            Tok::Plus => {
                self.next();
                self.unary()
            }
            _ => self.postfix(),
        }
    }

    fn postfix(&mut self) -> Result<Expr, ParseError> {
        let start = self.pos();
        let mut e = self.primary()?;
        loop {
            match self.peek() {
                Tok::LBracket => {
                    let pos = self.pos();
                    self.next();
                    let d = match self.next() {
                        Tok::Duration(d) if d > 0 => d,
                        t => {
                            return err(pos + 1, format!("expected a duration like 5m, found {t}"))
                        }
                    };
                    self.expect(Tok::RBracket)?;
                    match &mut e {
                        Expr::Selector(s) if s.range_ms.is_none() && s.offset_ms == 0 => {
                            s.range_ms = Some(d)
                        }
                        _ => return err(pos, "ranges are only allowed on vector selectors"),
                    }
                }
                Tok::Ident(k) if k == "offset" => {
                    let pos = self.pos();
                    self.next();
                    let neg = if *self.peek() == Tok::Minus {
                        self.next();
                        true
                    } else {
                        false
                    };
                    let d = match self.next() {
                        Tok::Duration(d) => d,
                        t => {
                            return err(pos, format!("expected a duration after offset, found {t}"))
                        }
                    };
                    match &mut e {
                        Expr::Selector(s) if s.offset_ms == 0 => {
                            s.offset_ms = if neg { -d } else { d }
                        }
                        _ => return err(pos, "offset must follow a selector"),
                    }
                }
                _ => break,
            }
        }
        let _ = start;
        Ok(e)
    }

    fn label_list(&mut self) -> Result<Vec<String>, ParseError> {
        self.expect(Tok::LParen)?;
        let mut out = Vec::new();
        loop {
            match self.next() {
                Tok::RParen => break,
                Tok::Ident(s) => {
                    out.push(s);
                    match self.next() {
                        Tok::Comma => continue,
                        Tok::RParen => break,
                        t => {
                            return err(
                                self.toks[self.i.saturating_sub(1)].1,
                                format!("expected ',' or ')', found {t}"),
                            )
                        }
                    }
                }
                t => {
                    return err(
                        self.toks[self.i.saturating_sub(1)].1,
                        format!("expected a label name, found {t}"),
                    )
                }
            }
        }
        Ok(out)
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        let pos = self.pos();
        match self.next() {
            Tok::Number(n) => Ok(Expr::Number(n)),
            Tok::LParen => {
                let e = self.expr(0)?;
                self.expect(Tok::RParen)?;
                Ok(e)
            }
            Tok::LBrace => {
                self.i -= 1;
                self.selector(None, pos)
            }
            Tok::Ident(name) => {
                match name.as_str() {
                    "Inf" | "inf" => return Ok(Expr::Number(f64::INFINITY)),
                    "NaN" | "nan" => return Ok(Expr::Number(f64::NAN)),
                    _ => {}
                }
                let agg = match name.as_str() {
                    "sum" => Some(AggOp::Sum),
                    "avg" => Some(AggOp::Avg),
                    "max" => Some(AggOp::Max),
                    "min" => Some(AggOp::Min),
                    "count" => Some(AggOp::Count),
                    _ => None,
                };
                if let Some(op) = agg {
                    if matches!(self.peek(), Tok::LParen | Tok::Ident(_)) {
                        return self.aggregate(op);
                    }
                }
                if *self.peek() == Tok::LParen {
                    let Some(func) = Func::from_name(&name) else {
                        return err(pos, format!("unknown function {name:?}"));
                    };
                    return self.call(func, pos);
                }
                self.selector(Some(name), pos)
            }
            t => err(pos, format!("unexpected {t}")),
        }
    }

    fn grouping(&mut self) -> Result<Option<Grouping>, ParseError> {
        match self.peek() {
            Tok::Ident(k) if k == "by" || k == "without" => {
                let without = k == "without";
                self.next();
                Ok(Some(Grouping {
                    without,
                    labels: self.label_list()?,
                }))
            }
            Tok::Ident(k) => err(
                self.pos(),
                format!("expected 'by', 'without' or '(', found identifier {k:?}"),
            ),
            _ => Ok(None),
        }
    }

    fn aggregate(&mut self, op: AggOp) -> Result<Expr, ParseError> {
        let mut grouping = self.grouping()?;
        self.expect(Tok::LParen)?;
        let arg_pos = self.pos();
        let e = self.expr(0)?;
        self.expect(Tok::RParen)?;
        if grouping.is_none() {
            grouping = self.grouping()?;
        }
        if e.is_scalar() || matches!(&e, Expr::Selector(s) if s.range_ms.is_some()) {
            return err(arg_pos, "aggregation expects an instant vector");
        }
        Ok(Expr::Aggregate {
            op,
            grouping,
            expr: Box::new(e),
        })
    }

    fn call(&mut self, func: Func, pos: usize) -> Result<Expr, ParseError> {
        self.expect(Tok::LParen)?;
        let mut args = Vec::new();
        let mut arg_pos = Vec::new();
        if *self.peek() != Tok::RParen {
            loop {
                arg_pos.push(self.pos());
                args.push(self.expr(0)?);
                if *self.peek() == Tok::Comma {
                    self.next();
                    continue;
                }
                break;
            }
        }
        self.expect(Tok::RParen)?;
        let sig = func.signature();
        if sig.len() != args.len() {
            return err(
                pos,
                format!(
                    "function expects {} argument(s), got {}",
                    sig.len(),
                    args.len()
                ),
            );
        }
        for ((kind, a), p) in sig.iter().zip(&args).zip(arg_pos) {
            let is_range = matches!(a, Expr::Selector(s) if s.range_ms.is_some());
            match kind {
                ArgKind::Range if !is_range => {
                    return err(p, "expected a range vector selector like x[5m]")
                }
                ArgKind::Instant if is_range || a.is_scalar() => {
                    return err(p, "expected an instant vector")
                }
                ArgKind::Scalar if !a.is_scalar() => return err(p, "expected a scalar"),
                _ => {}
            }
        }
        Ok(Expr::Call { func, args })
    }

    fn selector(&mut self, name: Option<String>, pos: usize) -> Result<Expr, ParseError> {
        let mut matchers = Vec::new();
        if let Some(n) = &name {
            matchers.push(Matcher::eq(METRIC_NAME, n));
        }
        if *self.peek() == Tok::LBrace {
            self.next();
            loop {
                let lpos = self.pos();
                let label = match self.next() {
                    Tok::RBrace => break,
                    Tok::Ident(s) => s,
                    t => return err(lpos, format!("expected a label name, found {t}")),
                };
                let opos = self.pos();
                let op = match self.next() {
                    Tok::Eq => MatchOp::Equal,
                    Tok::Ne => MatchOp::NotEqual,
                    Tok::ReMatch => MatchOp::Regex,
                    Tok::ReNoMatch => MatchOp::NotRegex,
                    t => {
                        return err(
                            opos,
                            format!("expected one of '=', '!=', '=~', '!~', found {t}"),
                        )
                    }
                };
                let vpos = self.pos();
                let value = match self.next() {
                    Tok::Str(s) => s,
                    t => return err(vpos, format!("expected a quoted label value, found {t}")),
                };
                matchers.push(Matcher::new(&label, op, &value).map_err(|m| ParseError {
                    pos: vpos,
                    message: m,
                })?);
                match self.next() {
                    Tok::Comma => continue,
                    Tok::RBrace => break,
                    t => {
                        return err(
                            self.toks[self.i.saturating_sub(1)].1,
                            format!("expected ',' or '}}', found {t}"),
                        )
                    }
                }
            }
        }
        if matchers.iter().all(|m| m.matches("")) {
            return err(pos, "vector selector must contain at least one matcher that does not match the empty string");
        }
        let id = self.selectors;
        self.selectors += 1;
        Ok(Expr::Selector(Selector {
            id,
            matchers,
            range_ms: None,
            offset_ms: 0,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perr(q: &str) -> String {
        match parse(q) {
            Ok(e) => panic!("parsed {q:?} as {e:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn parses_the_supported_forms() {
        for q in [
            r#"metric{a="b", c=~"x.*"}"#,
            "rate(x[5m] offset 1h)",
            "sum by (le) (rate(x_bucket[5m]))",
            "histogram_quantile(0.99, sum by (le) (rate(x_bucket[5m])))",
            "sum(x) without (a, b)",
            "a / on(job) b + 2 * -c",
            "(1 + 2) * 3",
            "avg_over_time(x[1h30m])",
            "max without (i) (x)",
            "count(x) - ignoring(z) count(y)",
        ] {
            parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
        }
    }

    #[test]
    fn errors_point_at_the_byte() {
        assert_eq!(
            perr("sum(rate(x[5m])"),
            "at 15: expected ')', found end of input"
        );
        assert_eq!(
            perr(r#"x{a="b" c="d"}"#),
            "at 8: expected ',' or '}', found identifier \"c\""
        );
        assert_eq!(
            perr("rate(x)"),
            "at 5: expected a range vector selector like x[5m]"
        );
        assert_eq!(perr("x[5q]"), "at 3: unknown duration unit \"q\"");
        assert_eq!(perr("foo(x)"), "at 0: unknown function \"foo\"");
        assert_eq!(perr(r#"{a=~""}"#), "at 0: vector selector must contain at least one matcher that does not match the empty string");
        assert_eq!(perr("x +"), "at 3: unexpected end of input");
        assert!(
            perr(r#"x{a=~"("}"#).starts_with("at 5: invalid regex \"(\": "),
            "{}",
            perr(r#"x{a=~"("}"#)
        );
    }
}
