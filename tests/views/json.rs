//! Just enough JSON: objects, arrays, strings with escapes, numbers, and
//! the three literals.
//!
//! The timeline's Chrome trace is read back with it, so that the tests
//! need no crate of their own; the parser is checked here in turn.

use std::collections::BTreeMap;

#[derive(Debug)]
pub enum Value {
    Null,
    Bool(#[allow(dead_code)] bool),
    Number(f64),
    String(String),
    Array(Vec<Value>),
    Object(BTreeMap<String, Value>),
}

impl Value {
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(map) => map.get(key),
            _ => None,
        }
    }
    pub fn array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }
    pub fn string(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
    pub fn number(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }
}

pub fn parse(text: &str) -> Result<Value, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    let v = p.value()?;
    p.ws();
    if p.i != p.s.len() {
        return Err(format!("trailing text at byte {}", p.i));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) -> Result<(), String> {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected {:?} at byte {}", c as char, self.i))
        }
    }
    fn value(&mut self) -> Result<Value, String> {
        self.ws();
        match self.s.get(self.i) {
            Some(b'{') => {
                self.i += 1;
                let mut map = BTreeMap::new();
                self.ws();
                if self.s.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Ok(Value::Object(map));
                }
                loop {
                    self.ws();
                    let key = self.string()?;
                    self.eat(b':')?;
                    if map.insert(key.clone(), self.value()?).is_some() {
                        return Err(format!("key {key:?} twice"));
                    }
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(Value::Object(map));
                        }
                        _ => return Err(format!("bad object at byte {}", self.i)),
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(Value::Array(items));
                }
                loop {
                    items.push(self.value()?);
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Value::Array(items));
                        }
                        _ => return Err(format!("bad array at byte {}", self.i)),
                    }
                }
            }
            Some(b'"') => Ok(Value::String(self.string()?)),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'n') => self.literal("null", Value::Null),
            Some(c) if *c == b'-' || c.is_ascii_digit() => self.number(),
            _ => Err(format!("unexpected byte at {}", self.i)),
        }
    }
    /// JSON's grammar, stricter than Rust's `parse`: `-?(0|[1-9][0-9]*)
    /// (.[0-9]+)?([eE][+-]?[0-9]+)?`.
    fn number(&mut self) -> Result<Value, String> {
        let start = self.i;
        let digits = |p: &mut Self| {
            let from = p.i;
            while p.s.get(p.i).is_some_and(u8::is_ascii_digit) {
                p.i += 1;
            }
            p.i - from
        };
        if self.s[self.i] == b'-' {
            self.i += 1;
        }
        let leading_zero = self.s.get(self.i) == Some(&b'0');
        let whole = digits(self);
        let mut ok = whole == 1 || (whole > 1 && !leading_zero);
        if self.s.get(self.i) == Some(&b'.') {
            self.i += 1;
            ok &= digits(self) > 0;
        }
        if matches!(self.s.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.s.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            ok &= digits(self) > 0;
        }
        let text = std::str::from_utf8(&self.s[start..self.i]).unwrap();
        match (ok, text.parse()) {
            (true, Ok(n)) => Ok(Value::Number(n)),
            _ => Err(format!("bad number {text:?}")),
        }
    }
    fn hex4(&mut self) -> Result<u32, String> {
        let hex = self
            .s
            .get(self.i..self.i + 4)
            .and_then(|h| std::str::from_utf8(h).ok())
            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or(format!("bad \\u escape at byte {}", self.i))?;
        self.i += 4;
        Ok(u32::from_str_radix(hex, 16).unwrap())
    }
    fn literal(&mut self, word: &str, v: Value) -> Result<Value, String> {
        if self.s[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            Ok(v)
        } else {
            Err(format!("bad literal at byte {}", self.i))
        }
    }
    fn string(&mut self) -> Result<String, String> {
        self.eat(b'"')?;
        let mut out = Vec::new();
        loop {
            let c = *self.s.get(self.i).ok_or("unterminated string")?;
            self.i += 1;
            match c {
                b'"' => return String::from_utf8(out).map_err(|e| e.to_string()),
                b'\\' => {
                    let e = *self.s.get(self.i).ok_or("unterminated escape")?;
                    self.i += 1;
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'u' => {
                            let mut code = self.hex4()?;
                            // A character past U+FFFF comes as a pair.
                            if (0xd800..0xdc00).contains(&code)
                                && self.s[self.i..].starts_with(b"\\u")
                            {
                                self.i += 2;
                                let low = self.hex4()?;
                                if !(0xdc00..0xe000).contains(&low) {
                                    return Err(format!("a lone surrogate before {}", self.i));
                                }
                                code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
                            }
                            let c = char::from_u32(code).ok_or("a lone surrogate")?;
                            out.extend_from_slice(c.to_string().as_bytes());
                        }
                        _ => return Err(format!("bad escape at byte {}", self.i)),
                    }
                }
                c if c < 0x20 => return Err(format!("raw control byte at {}", self.i)),
                c => out.push(c),
            }
        }
    }
}

/// The checkers check the renderers, so they are checked too: each accepts
/// what it must, and rejects what a renderer bug would produce.
#[test]
fn the_json_parser_reads_json_and_refuses_what_is_not() {
    let doc = r#" {"a": [1, -2.5e3, 0.25, true, null], "b": "x\"\\\u00e9\ud83d\ude00\n"} "#;
    let v = parse(doc).unwrap();
    let a = v.get("a").and_then(Value::array).unwrap();
    assert_eq!(a[0].number(), Some(1.0));
    assert_eq!(a[1].number(), Some(-2500.0));
    assert_eq!(a[2].number(), Some(0.25));
    assert!(matches!(a[3], Value::Bool(true)));
    assert!(matches!(a[4], Value::Null));
    assert_eq!(
        v.get("b").and_then(Value::string),
        Some("x\"\\\u{e9}\u{1f600}\n")
    );
    assert_eq!(parse("[]").unwrap().array().map(<[_]>::len), Some(0));
    for bad in [
        "",
        "{",
        "[1,]",
        "[1 2]",
        r#"{"a":1,}"#,
        r#"{"a":1,"a":2}"#,
        "01",
        "1.",
        ".5",
        "1e",
        "NaN",
        "inf",
        "-",
        "tru",
        r#""\u12""#,
        r#""\ud800""#,
        r#""\ud800\u0041""#,
        r#""\q""#,
        "\"a\nb\"",
        "\"open",
        "1 2",
    ] {
        assert!(parse(bad).is_err(), "accepted {bad:?}");
    }
}
