//! A PromQL subset: parser (this module) and evaluator ([`eval`]).
//!
//! Supported: vector selectors with `=`, `!=`, `=~`, `!~`; range selectors `[5m]`; `offset`;
//! number and string literals; parentheses; unary minus;
//! binary operators with Prometheus' precedence (`^` right-associative, then
//! `* / % atan2`, `+ -`, comparisons `== != > < >= <=`, `and unless`, `or`): arithmetic and
//! comparisons between scalars and vectors (comparisons filter unless `bool`, which gives 0/1
//! and drops the metric name; between scalars `bool` is required), set operators
//! `and or unless` (many-to-many), vector matching `on(...)` / `ignoring(...)` with
//! one-to-one, `group_left(...)` or `group_right(...)`; aggregations
//! `sum avg max min count group stddev stdvar topk bottomk quantile count_values` with
//! `by (...)` / `without (...)`; functions `rate increase delta irate idelta deriv
//! predict_linear changes resets avg_over_time max_over_time min_over_time sum_over_time
//! count_over_time last_over_time quantile_over_time stddev_over_time stdvar_over_time
//! present_over_time absent_over_time histogram_quantile abs ceil floor round sqrt exp ln
//! log2 log10 sgn clamp clamp_min clamp_max scalar vector absent label_replace label_join sort
//! sort_desc time`.
//!
//! Not supported: the `@` modifier, subqueries, native histograms, the time-of-day functions
//! (`hour`, `day_of_week`, ...), `timestamp`, trigonometric functions, `limitk`.

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
    Group,
    Stddev,
    Stdvar,
    Topk,
    Bottomk,
    Quantile,
    CountValues,
}

impl AggOp {
    fn from_name(name: &str) -> Option<AggOp> {
        Some(match name {
            "sum" => AggOp::Sum,
            "avg" => AggOp::Avg,
            "max" => AggOp::Max,
            "min" => AggOp::Min,
            "count" => AggOp::Count,
            "group" => AggOp::Group,
            "stddev" => AggOp::Stddev,
            "stdvar" => AggOp::Stdvar,
            "topk" => AggOp::Topk,
            "bottomk" => AggOp::Bottomk,
            "quantile" => AggOp::Quantile,
            "count_values" => AggOp::CountValues,
            _ => return None,
        })
    }

    /// Whether the aggregation takes a parameter before the vector (`topk(3, x)`).
    pub fn has_param(self) -> bool {
        matches!(
            self,
            AggOp::Topk | AggOp::Bottomk | AggOp::Quantile | AggOp::CountValues
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Atan2,
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    And,
    Or,
    Unless,
}

impl BinOp {
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOp::Eq | BinOp::Ne | BinOp::Gt | BinOp::Lt | BinOp::Ge | BinOp::Le
        )
    }

    /// `and`, `or`, `unless`: many-to-many set operators between instant vectors.
    pub fn is_set(self) -> bool {
        matches!(self, BinOp::And | BinOp::Or | BinOp::Unless)
    }

    /// Prometheus' precedence: `^` > `* / % atan2` > `+ -` > comparisons > `and unless` > `or`.
    fn precedence(self) -> u8 {
        match self {
            BinOp::Or => 1,
            BinOp::And | BinOp::Unless => 2,
            BinOp::Eq | BinOp::Ne | BinOp::Gt | BinOp::Lt | BinOp::Ge | BinOp::Le => 3,
            BinOp::Add | BinOp::Sub => 4,
            BinOp::Mul | BinOp::Div | BinOp::Mod | BinOp::Atan2 => 5,
            BinOp::Pow => 6,
        }
    }

    fn name(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Mod => "%",
            BinOp::Pow => "^",
            BinOp::Atan2 => "atan2",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Gt => ">",
            BinOp::Lt => "<",
            BinOp::Ge => ">=",
            BinOp::Le => "<=",
            BinOp::And => "and",
            BinOp::Or => "or",
            BinOp::Unless => "unless",
        }
    }
}

/// Precedence of unary minus: binds tighter than `*` but looser than `^` (`-2^2` is -4).
const UNARY_OPERAND_PREC: u8 = 6;

/// Parser recursion limit (nesting of parentheses, calls and unary operators).
const MAX_DEPTH: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    Rate,
    Increase,
    Delta,
    Irate,
    Idelta,
    Deriv,
    PredictLinear,
    Changes,
    Resets,
    AvgOverTime,
    MaxOverTime,
    MinOverTime,
    SumOverTime,
    CountOverTime,
    LastOverTime,
    QuantileOverTime,
    StddevOverTime,
    StdvarOverTime,
    PresentOverTime,
    AbsentOverTime,
    HistogramQuantile,
    Abs,
    Ceil,
    Floor,
    Round,
    Sqrt,
    Exp,
    Ln,
    Log2,
    Log10,
    Sgn,
    Clamp,
    ClampMin,
    ClampMax,
    Scalar,
    Vector,
    Absent,
    LabelReplace,
    LabelJoin,
    Sort,
    SortDesc,
    Time,
}

impl Func {
    fn from_name(name: &str) -> Option<Func> {
        Some(match name {
            "rate" => Func::Rate,
            "increase" => Func::Increase,
            "delta" => Func::Delta,
            "irate" => Func::Irate,
            "idelta" => Func::Idelta,
            "deriv" => Func::Deriv,
            "predict_linear" => Func::PredictLinear,
            "changes" => Func::Changes,
            "resets" => Func::Resets,
            "avg_over_time" => Func::AvgOverTime,
            "max_over_time" => Func::MaxOverTime,
            "min_over_time" => Func::MinOverTime,
            "sum_over_time" => Func::SumOverTime,
            "count_over_time" => Func::CountOverTime,
            "last_over_time" => Func::LastOverTime,
            "quantile_over_time" => Func::QuantileOverTime,
            "stddev_over_time" => Func::StddevOverTime,
            "stdvar_over_time" => Func::StdvarOverTime,
            "present_over_time" => Func::PresentOverTime,
            "absent_over_time" => Func::AbsentOverTime,
            "histogram_quantile" => Func::HistogramQuantile,
            "abs" => Func::Abs,
            "ceil" => Func::Ceil,
            "floor" => Func::Floor,
            "round" => Func::Round,
            "sqrt" => Func::Sqrt,
            "exp" => Func::Exp,
            "ln" => Func::Ln,
            "log2" => Func::Log2,
            "log10" => Func::Log10,
            "sgn" => Func::Sgn,
            "clamp" => Func::Clamp,
            "clamp_min" => Func::ClampMin,
            "clamp_max" => Func::ClampMax,
            "scalar" => Func::Scalar,
            "vector" => Func::Vector,
            "absent" => Func::Absent,
            "label_replace" => Func::LabelReplace,
            "label_join" => Func::LabelJoin,
            "sort" => Func::Sort,
            "sort_desc" => Func::SortDesc,
            "time" => Func::Time,
            _ => return None,
        })
    }

    /// Argument kinds (the last one repeats for variadic functions).
    fn signature(self) -> &'static [ArgKind] {
        use ArgKind::*;
        match self {
            Func::Rate
            | Func::Increase
            | Func::Delta
            | Func::Irate
            | Func::Idelta
            | Func::Deriv
            | Func::Changes
            | Func::Resets
            | Func::AvgOverTime
            | Func::MaxOverTime
            | Func::MinOverTime
            | Func::SumOverTime
            | Func::CountOverTime
            | Func::LastOverTime
            | Func::StddevOverTime
            | Func::StdvarOverTime
            | Func::PresentOverTime
            | Func::AbsentOverTime => &[Range],
            Func::PredictLinear => &[Range, Scalar],
            Func::QuantileOverTime => &[Scalar, Range],
            Func::HistogramQuantile => &[Scalar, Instant],
            Func::Abs
            | Func::Ceil
            | Func::Floor
            | Func::Sqrt
            | Func::Exp
            | Func::Ln
            | Func::Log2
            | Func::Log10
            | Func::Sgn
            | Func::Scalar
            | Func::Absent
            | Func::Sort
            | Func::SortDesc => &[Instant],
            Func::Round => &[Instant, Scalar],
            Func::Clamp => &[Instant, Scalar, Scalar],
            Func::ClampMin | Func::ClampMax => &[Instant, Scalar],
            Func::Vector => &[Scalar],
            Func::LabelReplace => &[Instant, Str, Str, Str, Str],
            Func::LabelJoin => &[Instant, Str, Str, Str],
            Func::Time => &[],
        }
    }

    /// Fewest arguments accepted.
    fn min_args(self) -> usize {
        match self {
            Func::Round => 1,
            Func::LabelJoin => 3,
            f => f.signature().len(),
        }
    }

    fn variadic(self) -> bool {
        self == Func::LabelJoin
    }

    /// A function of one range vector alone, computed series by series (precomputable).
    pub(crate) fn is_simple_range(self) -> bool {
        self.signature() == [ArgKind::Range] && self != Func::AbsentOverTime
    }

    /// Static result type.
    fn return_type(self) -> ValueType {
        match self {
            Func::Time | Func::Scalar => ValueType::Scalar,
            _ => ValueType::Vector,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArgKind {
    Scalar,
    Instant,
    Range,
    Str,
}

/// Static type of an expression, as in Prometheus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    Scalar,
    Vector,
    Matrix,
    String,
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValueType::Scalar => "scalar",
            ValueType::Vector => "instant vector",
            ValueType::Matrix => "range vector",
            ValueType::String => "string",
        })
    }
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

/// `group_left(...)` (`left` = true: the left side is the "many" side) or `group_right(...)`,
/// with the labels copied from the "one" side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupModifier {
    pub left: bool,
    pub include: Vec<String>,
}

#[derive(Debug, Clone)]
pub enum Expr {
    Number(f64),
    /// A string literal; only valid as a function or aggregation argument.
    Str(String),
    Selector(Selector),
    Call {
        func: Func,
        args: Vec<Expr>,
    },
    Aggregate {
        op: AggOp,
        grouping: Option<Grouping>,
        expr: Box<Expr>,
        /// `k` of topk/bottomk, `φ` of quantile, the label of count_values.
        param: Option<Box<Expr>>,
    },
    Binary {
        op: BinOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
        /// `(true, labels)` = `on(labels)`, `(false, labels)` = `ignoring(labels)`.
        matching: Option<(bool, Vec<String>)>,
        /// `group_left` / `group_right`.
        group: Option<GroupModifier>,
        /// The `bool` modifier of comparisons.
        return_bool: bool,
    },
    Neg(Box<Expr>),
}

impl Expr {
    /// Whether the expression evaluates to a scalar.
    pub fn is_scalar(&self) -> bool {
        self.value_type() == ValueType::Scalar
    }

    /// The static type of the expression's value.
    pub fn value_type(&self) -> ValueType {
        match self {
            Expr::Number(_) => ValueType::Scalar,
            Expr::Str(_) => ValueType::String,
            Expr::Selector(s) if s.range_ms.is_some() => ValueType::Matrix,
            Expr::Selector(_) => ValueType::Vector,
            Expr::Call { func, .. } => func.return_type(),
            Expr::Aggregate { .. } => ValueType::Vector,
            Expr::Neg(e) => e.value_type(),
            Expr::Binary { lhs, rhs, .. } => {
                if lhs.is_scalar() && rhs.is_scalar() {
                    ValueType::Scalar
                } else {
                    ValueType::Vector
                }
            }
        }
    }
}

/// Whether `s` is a valid label name (`[a-zA-Z_][a-zA-Z0-9_]*`).
pub fn is_label_name(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
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
    Percent,
    Caret,
    EqEq,
    Gt,
    Lt,
    Ge,
    Le,
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
                    Tok::Percent => "%",
                    Tok::Caret => "^",
                    Tok::EqEq => "==",
                    Tok::Gt => ">",
                    Tok::Lt => "<",
                    Tok::Ge => ">=",
                    Tok::Le => "<=",
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
            b"==" => Some((Tok::EqEq, 2)),
            b">=" => Some((Tok::Ge, 2)),
            b"<=" => Some((Tok::Le, 2)),
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
            b'%' => Some(Tok::Percent),
            b'^' => Some(Tok::Caret),
            b'>' => Some(Tok::Gt),
            b'<' => Some(Tok::Lt),
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
    depth: usize,
}

/// Parses a PromQL expression.
pub fn parse(src: &str) -> Result<Expr, ParseError> {
    let mut p = Parser {
        toks: lex(src)?,
        i: 0,
        selectors: 0,
        depth: 0,
    };
    let e = p.expr(0)?;
    if p.peek() != &Tok::Eof {
        return err(p.pos(), format!("unexpected {} after expression", p.peek()));
    }
    if e.value_type() == ValueType::String {
        return err(
            0,
            "string literals are only allowed as function or aggregation arguments",
        );
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

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return err(self.pos(), "expression nested too deeply");
        }
        Ok(())
    }

    fn expr(&mut self, min_prec: u8) -> Result<Expr, ParseError> {
        self.enter()?;
        let r = self.expr_inner(min_prec);
        self.depth -= 1;
        r
    }

    fn binop(&self) -> Option<BinOp> {
        Some(match self.peek() {
            Tok::Plus => BinOp::Add,
            Tok::Minus => BinOp::Sub,
            Tok::Star => BinOp::Mul,
            Tok::Slash => BinOp::Div,
            Tok::Percent => BinOp::Mod,
            Tok::Caret => BinOp::Pow,
            Tok::EqEq => BinOp::Eq,
            Tok::Ne => BinOp::Ne,
            Tok::Gt => BinOp::Gt,
            Tok::Lt => BinOp::Lt,
            Tok::Ge => BinOp::Ge,
            Tok::Le => BinOp::Le,
            Tok::Ident(k) => match k.as_str() {
                "and" => BinOp::And,
                "or" => BinOp::Or,
                "unless" => BinOp::Unless,
                "atan2" => BinOp::Atan2,
                _ => return None,
            },
            _ => return None,
        })
    }

    fn expr_inner(&mut self, min_prec: u8) -> Result<Expr, ParseError> {
        let lhs_pos = self.pos();
        let mut lhs = self.unary()?;
        while let Some(op) = self.binop() {
            let prec = op.precedence();
            if prec < min_prec {
                break;
            }
            let op_pos = self.pos();
            self.next();
            let mut return_bool = false;
            if matches!(self.peek(), Tok::Ident(k) if k == "bool") {
                if !op.is_comparison() {
                    return err(
                        self.pos(),
                        "bool modifier can only be used on comparison operators",
                    );
                }
                self.next();
                return_bool = true;
            }
            let matching = match self.peek() {
                Tok::Ident(k) if k == "on" || k == "ignoring" => {
                    let on = k == "on";
                    self.next();
                    Some((on, self.label_list()?))
                }
                _ => None,
            };
            let group = match self.peek() {
                Tok::Ident(k) if k == "group_left" || k == "group_right" => {
                    let k = k.clone();
                    let left = k == "group_left";
                    let gpos = self.pos();
                    self.next();
                    if matching.is_none() {
                        return err(gpos, format!("{k} must follow on(...) or ignoring(...)"));
                    }
                    if op.is_set() {
                        return err(
                            gpos,
                            format!("no grouping allowed for \"{}\" operation", op.name()),
                        );
                    }
                    let include = if *self.peek() == Tok::LParen {
                        self.label_list()?
                    } else {
                        Vec::new()
                    };
                    if let Some((true, on)) = &matching {
                        if let Some(l) = include.iter().find(|l| on.contains(l)) {
                            return err(
                                gpos,
                                format!(
                                    "label {l:?} must not occur in ON and GROUP clause at once"
                                ),
                            );
                        }
                    }
                    Some(GroupModifier { left, include })
                }
                _ => None,
            };
            let rhs_pos = self.pos();
            // `^` is right-associative, everything else left-associative.
            let rhs = self.expr(if op == BinOp::Pow { prec } else { prec + 1 })?;
            let (lt, rt) = (lhs.value_type(), rhs.value_type());
            for (t, p) in [(lt, lhs_pos), (rt, rhs_pos)] {
                if !matches!(t, ValueType::Scalar | ValueType::Vector) {
                    return err(
                        p,
                        format!("binary expression must contain only scalar and instant vector types, found {t}"),
                    );
                }
            }
            let any_scalar = lt == ValueType::Scalar || rt == ValueType::Scalar;
            if op.is_set() && any_scalar {
                return err(
                    op_pos,
                    format!(
                        "set operator \"{}\" not allowed in binary scalar expression",
                        op.name()
                    ),
                );
            }
            if op.is_comparison()
                && lt == ValueType::Scalar
                && rt == ValueType::Scalar
                && !return_bool
            {
                return err(op_pos, "comparisons between scalars must use BOOL modifier");
            }
            if matching.is_some() && any_scalar {
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
                group,
                return_bool,
            };
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        match self.peek() {
            Tok::Minus | Tok::Plus => {
                let neg = *self.peek() == Tok::Minus;
                let pos = self.pos();
                self.next();
                let e = self.expr(UNARY_OPERAND_PREC)?;
                if !matches!(e.value_type(), ValueType::Scalar | ValueType::Vector) {
                    return err(
                        pos,
                        format!(
                            "unary expression only allowed on scalars or instant vectors, found {}",
                            e.value_type()
                        ),
                    );
                }
                Ok(match e {
                    e if !neg => e,
                    Expr::Number(n) => Expr::Number(-n),
                    e => Expr::Neg(Box::new(e)),
                })
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
            Tok::Str(s) => Ok(Expr::Str(s)),
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
                if let Some(op) = AggOp::from_name(&name) {
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
        let mut param = None;
        if op.has_param() {
            let ppos = self.pos();
            let p = self.expr(0)?;
            if op == AggOp::CountValues {
                match &p {
                    Expr::Str(s) if is_label_name(s) => {}
                    Expr::Str(s) => return err(ppos, format!("invalid label name {s:?}")),
                    _ => return err(ppos, "expected a string (the label name)"),
                }
            } else if !p.is_scalar() {
                return err(
                    ppos,
                    format!("expected a scalar parameter, found {}", p.value_type()),
                );
            }
            self.expect(Tok::Comma)?;
            param = Some(Box::new(p));
        }
        let arg_pos = self.pos();
        let e = self.expr(0)?;
        self.expect(Tok::RParen)?;
        if grouping.is_none() {
            grouping = self.grouping()?;
        }
        if e.value_type() != ValueType::Vector {
            return err(arg_pos, "aggregation expects an instant vector");
        }
        Ok(Expr::Aggregate {
            op,
            grouping,
            expr: Box::new(e),
            param,
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
        let (min, max) = (
            func.min_args(),
            if func.variadic() {
                usize::MAX
            } else {
                sig.len()
            },
        );
        if args.len() < min || args.len() > max {
            let expected = if min == max {
                min.to_string()
            } else if max == usize::MAX {
                format!("at least {min}")
            } else {
                format!("{min} to {max}")
            };
            return err(
                pos,
                format!(
                    "function expects {expected} argument(s), got {}",
                    args.len()
                ),
            );
        }
        for (i, (a, p)) in args.iter().zip(arg_pos).enumerate() {
            let kind = sig
                .get(i)
                .or(sig.last())
                .copied()
                .unwrap_or(ArgKind::Instant);
            let t = a.value_type();
            match kind {
                ArgKind::Range if !matches!(a, Expr::Selector(s) if s.range_ms.is_some()) => {
                    return err(p, "expected a range vector selector like x[5m]")
                }
                ArgKind::Instant if t != ValueType::Vector => {
                    return err(p, "expected an instant vector")
                }
                ArgKind::Scalar if t != ValueType::Scalar => return err(p, "expected a scalar"),
                ArgKind::Str if t != ValueType::String => return err(p, "expected a string"),
                _ => {}
            }
        }
        match (func, args.get(1), args.get(4)) {
            (Func::LabelReplace | Func::LabelJoin, Some(Expr::Str(dst)), _)
                if !is_label_name(dst) =>
            {
                return err(pos, format!("invalid destination label name {dst:?}"));
            }
            (Func::LabelReplace, _, Some(Expr::Str(re))) => {
                if let Err(e) = eval::anchored_regex(re) {
                    return err(pos, e);
                }
            }
            _ => {}
        }
        if func == Func::LabelJoin {
            for a in &args[3..] {
                if let Expr::Str(s) = a {
                    if !is_label_name(s) {
                        return err(pos, format!("invalid source label name {s:?}"));
                    }
                }
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
