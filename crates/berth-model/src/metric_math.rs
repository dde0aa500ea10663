//! CloudWatch metric math, the part Berth evaluates: numbers, the ids of
//! other queries, `+ - * /`, unary minus, parentheses, arrays `[a, b]`,
//! and the functions `SUM`, `AVG`, `MIN`, `MAX` (of a time series: a
//! scalar over all its points; of an array: one series, per timestamp)
//! and `METRICS()` (every metric query of the request). Arithmetic
//! between two series keeps the timestamps both have; results that are
//! not finite (division by zero) are left out, as CloudWatch leaves them.
//! Pure: the caller resolves ids to values.

use std::collections::BTreeMap;

/// A time series: value by timestamp (ms).
pub type Series = BTreeMap<i64, f64>;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar(f64),
    Series(Series),
    Array(Vec<Series>),
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Number(f64),
    Id(String),
    Neg(Box<Expr>),
    Binary(Op, Box<Expr>, Box<Expr>),
    Array(Vec<Expr>),
    Call(Function, Vec<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Sub,
    Mul,
    Div,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Sum,
    Avg,
    Min,
    Max,
    Metrics,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MathError {
    #[error("Unrecognized token at position {0}")]
    Token(usize),
    #[error("Unexpected end of expression")]
    End,
    #[error("Unknown function {0}")]
    UnknownFunction(String),
    #[error("{0} takes {1}")]
    Arity(&'static str, &'static str),
    #[error("Unknown metric or expression id {0}")]
    UnknownId(String),
}

/// Parses an expression.
pub fn parse(text: &str) -> Result<Expr, MathError> {
    let mut p = Parser { s: text.as_bytes(), i: 0 };
    let e = p.expr()?;
    p.skip();
    if p.i < p.s.len() {
        return Err(MathError::Token(p.i));
    }
    Ok(e)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn skip(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip();
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expr(&mut self) -> Result<Expr, MathError> {
        let mut left = self.term()?;
        loop {
            let op = match self.peek() {
                Some(b'+') => Op::Add,
                Some(b'-') => Op::Sub,
                _ => return Ok(left),
            };
            self.i += 1;
            left = Expr::Binary(op, Box::new(left), Box::new(self.term()?));
        }
    }

    fn term(&mut self) -> Result<Expr, MathError> {
        let mut left = self.unary()?;
        loop {
            let op = match self.peek() {
                Some(b'*') => Op::Mul,
                Some(b'/') => Op::Div,
                _ => return Ok(left),
            };
            self.i += 1;
            left = Expr::Binary(op, Box::new(left), Box::new(self.unary()?));
        }
    }

    fn unary(&mut self) -> Result<Expr, MathError> {
        if self.eat(b'-') {
            return Ok(Expr::Neg(Box::new(self.unary()?)));
        }
        self.primary()
    }

    fn list(&mut self, close: u8) -> Result<Vec<Expr>, MathError> {
        let mut items = Vec::new();
        if self.eat(close) {
            return Ok(items);
        }
        loop {
            items.push(self.expr()?);
            if self.eat(close) {
                return Ok(items);
            }
            if !self.eat(b',') {
                return Err(self.peek().map_or(MathError::End, |_| MathError::Token(self.i)));
            }
        }
    }

    fn primary(&mut self) -> Result<Expr, MathError> {
        let Some(c) = self.peek() else { return Err(MathError::End) };
        let start = self.i;
        if c == b'(' {
            self.i += 1;
            let e = self.expr()?;
            return if self.eat(b')') { Ok(e) } else { Err(self.peek().map_or(MathError::End, |_| MathError::Token(self.i))) };
        }
        if c == b'[' {
            self.i += 1;
            return Ok(Expr::Array(self.list(b']')?));
        }
        if c.is_ascii_digit() || c == b'.' {
            while self.i < self.s.len() && (self.s[self.i].is_ascii_digit() || self.s[self.i] == b'.') {
                self.i += 1;
            }
            let text = std::str::from_utf8(&self.s[start..self.i]).map_err(|_| MathError::Token(start))?;
            return text.parse().map(Expr::Number).map_err(|_| MathError::Token(start));
        }
        if c.is_ascii_alphabetic() {
            while self.i < self.s.len() && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'_') {
                self.i += 1;
            }
            let name = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
            if self.eat(b'(') {
                let f = match name.as_str() {
                    "SUM" => Function::Sum,
                    "AVG" => Function::Avg,
                    "MIN" => Function::Min,
                    "MAX" => Function::Max,
                    "METRICS" => Function::Metrics,
                    _ => return Err(MathError::UnknownFunction(name)),
                };
                let args = self.list(b')')?;
                match (f, args.len()) {
                    (Function::Metrics, 0) => {}
                    (Function::Metrics, _) => return Err(MathError::Arity("METRICS", "no arguments")),
                    (_, 1) => {}
                    _ => return Err(MathError::Arity("SUM, AVG, MIN and MAX", "one argument")),
                }
                return Ok(Expr::Call(f, args));
            }
            return Ok(Expr::Id(name));
        }
        Err(MathError::Token(start))
    }
}

impl Expr {
    /// The ids the expression names (and whether it calls METRICS()).
    pub fn references(&self, out: &mut Vec<String>, metrics: &mut bool) {
        match self {
            Expr::Number(_) => {}
            Expr::Id(id) => out.push(id.clone()),
            Expr::Neg(e) => e.references(out, metrics),
            Expr::Binary(_, a, b) => {
                a.references(out, metrics);
                b.references(out, metrics);
            }
            Expr::Array(items) | Expr::Call(_, items) => {
                if matches!(self, Expr::Call(Function::Metrics, _)) {
                    *metrics = true;
                }
                items.iter().for_each(|e| e.references(out, metrics));
            }
        }
    }
}

/// Evaluates an expression; `lookup` gives an id's value, `all_metrics`
/// the series of every metric query (for METRICS()).
pub fn eval(e: &Expr, lookup: &dyn Fn(&str) -> Option<Value>, all_metrics: &[Series]) -> Result<Value, MathError> {
    Ok(match e {
        Expr::Number(n) => Value::Scalar(*n),
        Expr::Id(id) => lookup(id).ok_or_else(|| MathError::UnknownId(id.clone()))?,
        Expr::Neg(e) => binary(Op::Sub, Value::Scalar(0.0), eval(e, lookup, all_metrics)?),
        Expr::Binary(op, a, b) => binary(*op, eval(a, lookup, all_metrics)?, eval(b, lookup, all_metrics)?),
        Expr::Array(items) => {
            let mut out = Vec::new();
            for item in items {
                match eval(item, lookup, all_metrics)? {
                    Value::Series(s) => out.push(s),
                    Value::Array(a) => out.extend(a),
                    Value::Scalar(_) => return Err(MathError::Arity("an array", "time series, not numbers")),
                }
            }
            Value::Array(out)
        }
        Expr::Call(Function::Metrics, _) => Value::Array(all_metrics.to_vec()),
        Expr::Call(f, args) => {
            let arg = eval(&args[0], lookup, all_metrics)?;
            reduce(*f, arg)
        }
    })
}

fn apply(op: Op, a: f64, b: f64) -> f64 {
    match op {
        Op::Add => a + b,
        Op::Sub => a - b,
        Op::Mul => a * b,
        Op::Div => a / b,
    }
}

fn map(s: &Series, f: impl Fn(f64) -> f64) -> Series {
    s.iter().map(|(t, v)| (*t, f(*v))).filter(|(_, v)| v.is_finite()).collect()
}

fn zip(a: &Series, b: &Series, op: Op) -> Series {
    a.iter()
        .filter_map(|(t, x)| b.get(t).map(|y| (*t, apply(op, *x, *y))))
        .filter(|(_, v)| v.is_finite())
        .collect()
}

fn binary(op: Op, a: Value, b: Value) -> Value {
    use Value::{Array, Scalar, Series as S};
    match (a, b) {
        (Scalar(x), Scalar(y)) => Scalar(apply(op, x, y)),
        (S(s), Scalar(y)) => S(map(&s, |x| apply(op, x, y))),
        (Scalar(x), S(s)) => S(map(&s, |y| apply(op, x, y))),
        (S(a), S(b)) => S(zip(&a, &b, op)),
        (Array(v), Scalar(y)) => Array(v.iter().map(|s| map(s, |x| apply(op, x, y))).collect()),
        (Scalar(x), Array(v)) => Array(v.iter().map(|s| map(s, |y| apply(op, x, y))).collect()),
        (Array(v), S(b)) => Array(v.iter().map(|a| zip(a, &b, op)).collect()),
        (S(a), Array(v)) => Array(v.iter().map(|b| zip(&a, b, op)).collect()),
        (Array(a), Array(b)) => Array(a.iter().zip(&b).map(|(x, y)| zip(x, y, op)).collect()),
    }
}

fn fold(f: Function, values: &[f64]) -> f64 {
    match f {
        Function::Sum => values.iter().sum(),
        Function::Avg => values.iter().sum::<f64>() / values.len() as f64,
        Function::Min => values.iter().copied().fold(f64::INFINITY, f64::min),
        Function::Max => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        Function::Metrics => f64::NAN,
    }
}

fn reduce(f: Function, v: Value) -> Value {
    match v {
        Value::Scalar(x) => Value::Scalar(x),
        Value::Series(s) => {
            let values: Vec<f64> = s.values().copied().collect();
            Value::Scalar(if values.is_empty() { f64::NAN } else { fold(f, &values) })
        }
        Value::Array(series) => {
            let mut by_time = BTreeMap::<i64, Vec<f64>>::new();
            for s in &series {
                for (t, v) in s {
                    by_time.entry(*t).or_default().push(*v);
                }
            }
            Value::Series(by_time.into_iter().map(|(t, vs)| (t, fold(f, &vs))).filter(|(_, v)| v.is_finite()).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(points: &[(i64, f64)]) -> Series {
        points.iter().copied().collect()
    }

    fn run(text: &str) -> Result<Value, MathError> {
        let m1 = series(&[(0, 1.0), (60, 2.0), (120, 3.0)]);
        let m2 = series(&[(0, 10.0), (60, 0.0)]);
        let all = vec![m1.clone(), m2.clone()];
        let lookup = move |id: &str| match id {
            "m1" => Some(Value::Series(m1.clone())),
            "m2" => Some(Value::Series(m2.clone())),
            _ => None,
        };
        eval(&parse(text)?, &lookup, &all)
    }

    #[test]
    fn arithmetic_between_series_and_scalars() {
        assert_eq!(run("1 + 2 * 3"), Ok(Value::Scalar(7.0)));
        assert_eq!(run("(1 + 2) * -3"), Ok(Value::Scalar(-9.0)));
        assert_eq!(run("m1 * 100"), Ok(Value::Series(series(&[(0, 100.0), (60, 200.0), (120, 300.0)]))));
        assert_eq!(run("m1 + m2"), Ok(Value::Series(series(&[(0, 11.0), (60, 2.0)]))), "only shared timestamps");
        assert_eq!(run("m1 / m2"), Ok(Value::Series(series(&[(0, 0.1)]))), "division by zero leaves the point out");
        assert_eq!(run("10 - m1"), Ok(Value::Series(series(&[(0, 9.0), (60, 8.0), (120, 7.0)]))));
    }

    #[test]
    fn functions_over_series_and_arrays() {
        assert_eq!(run("SUM(m1)"), Ok(Value::Scalar(6.0)));
        assert_eq!(run("AVG(m1)"), Ok(Value::Scalar(2.0)));
        assert_eq!(run("MAX(m2)"), Ok(Value::Scalar(10.0)));
        assert_eq!(run("SUM([m1, m2])"), Ok(Value::Series(series(&[(0, 11.0), (60, 2.0), (120, 3.0)]))));
        assert_eq!(run("MIN([m1, m2])"), Ok(Value::Series(series(&[(0, 1.0), (60, 0.0), (120, 3.0)]))));
        assert_eq!(run("AVG(METRICS())"), Ok(Value::Series(series(&[(0, 5.5), (60, 1.0), (120, 3.0)]))));
        assert_eq!(run("m1 / SUM(m1) * 100"), Ok(Value::Series(series(&[(0, 1.0 / 6.0 * 100.0), (60, 2.0 / 6.0 * 100.0), (120, 3.0 / 6.0 * 100.0)]))));
    }

    #[test]
    fn errors_name_what_is_wrong() {
        assert_eq!(run("m1 +"), Err(MathError::End));
        assert_eq!(run("m1 $ 2"), Err(MathError::Token(3)));
        assert_eq!(run("FOO(m1)"), Err(MathError::UnknownFunction("FOO".into())));
        assert_eq!(run("SUM(m1, m2)"), Err(MathError::Arity("SUM, AVG, MIN and MAX", "one argument")));
        assert_eq!(run("m3 * 2"), Err(MathError::UnknownId("m3".into())));
        assert_eq!(run("[1, 2]"), Err(MathError::Arity("an array", "time series, not numbers")));
        let mut refs = Vec::new();
        let mut metrics = false;
        parse("SUM([a, b]) / c + METRICS()").unwrap().references(&mut refs, &mut metrics);
        assert_eq!(refs, vec!["a", "b", "c"]);
        assert!(metrics);
    }
}
