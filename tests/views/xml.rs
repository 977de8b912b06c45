//! Just enough XML: elements closed in order, attributes quoted, no raw
//! `<` or `&` in text or attributes except as entities.
//!
//! The timeline's SVG is read back with it, so that the tests need no
//! crate of their own; the checker is checked here in turn.

/// Checks `doc`; returns each text run with its element's name, entities
/// decoded.
pub fn check(doc: &str) -> Result<Vec<(String, String)>, String> {
    let mut open: Vec<String> = Vec::new();
    let mut texts = Vec::new();
    let mut rest = doc.trim_end();
    let mut roots = 0;
    while !rest.is_empty() {
        if let Some(tag) = rest.strip_prefix('<') {
            let end = tag.find('>').ok_or("an unclosed tag")?;
            let inner = &tag[..end];
            rest = &tag[end + 1..];
            if let Some(name) = inner.strip_prefix('/') {
                let top = open.pop().ok_or(format!("</{name}> closes nothing"))?;
                if top != name {
                    return Err(format!("</{name}> closes <{top}>"));
                }
                continue;
            }
            let (inner, empty) = match inner.strip_suffix('/') {
                Some(inner) => (inner, true),
                None => (inner, false),
            };
            let name_end = inner.find(char::is_whitespace).unwrap_or(inner.len());
            let name = &inner[..name_end];
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(format!("bad element name {name:?}"));
            }
            attributes(&inner[name_end..])?;
            if open.is_empty() {
                roots += 1;
            }
            if !empty {
                open.push(name.to_string());
            }
        } else {
            let end = rest.find('<').unwrap_or(rest.len());
            let text = &rest[..end];
            rest = &rest[end..];
            if open.is_empty() && !text.trim().is_empty() {
                return Err(format!("text outside the root: {text:?}"));
            }
            if !text.trim().is_empty() {
                texts.push((open.last().cloned().unwrap_or_default(), decode(text)?));
            }
        }
    }
    match (open.is_empty(), roots) {
        (true, 1) => Ok(texts),
        (false, _) => Err(format!("unclosed: {open:?}")),
        (true, n) => Err(format!("{n} root elements")),
    }
}

fn attributes(mut s: &str) -> Result<(), String> {
    loop {
        s = s.trim_start();
        if s.is_empty() {
            return Ok(());
        }
        let eq = s
            .find('=')
            .ok_or(format!("an attribute without a value: {s:?}"))?;
        let name = &s[..eq];
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ':')
        {
            return Err(format!("bad attribute name {name:?}"));
        }
        let value = s[eq + 1..]
            .strip_prefix('"')
            .ok_or("an unquoted attribute")?;
        let end = value.find('"').ok_or("an unterminated attribute")?;
        decode(&value[..end])?;
        s = &value[end + 1..];
    }
}

fn decode(text: &str) -> Result<String, String> {
    if text.contains('<') {
        return Err(format!("a raw '<' in {text:?}"));
    }
    // XML 1.0's `Char`: no C0 control but tab, newline and carriage
    // return, and neither U+FFFE nor U+FFFF.
    if let Some(c) = text.chars().find(|&c| {
        (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || c == '\u{fffe}' || c == '\u{ffff}'
    }) {
        return Err(format!("a character XML forbids, {c:?}, in {text:?}"));
    }
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let end = rest[at..]
            .find(';')
            .ok_or(format!("a raw '&' in {text:?}"))?;
        out.push(match &rest[at + 1..at + end] {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "quot" => '"',
            "apos" => '\'',
            other => return Err(format!("unknown entity &{other};")),
        });
        rest = &rest[at + end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[test]
fn the_xml_checker_reads_xml_and_refuses_what_is_not() {
    let doc = r#"<svg a="1"><g><text x="2">a &lt; b &amp; &quot;c&quot;</text></g><rect/></svg>"#;
    let texts = check(doc).unwrap();
    assert_eq!(texts, [("text".to_string(), "a < b & \"c\"".to_string())]);
    for bad in [
        "<svg>",
        "<svg></g>",
        "</svg>",
        "<svg></svg><svg></svg>",
        "text<svg></svg>",
        "<svg a=1></svg>",
        r#"<svg a="1></svg>"#,
        "<svg a></svg>",
        "<svg>a < b</svg>",
        "<svg>a & b</svg>",
        "<svg>&nbsp;</svg>",
        "<svg>\u{1}</svg>",
        "<svg a=\"\u{ffff}\"></svg>",
        "<s-v></s-v>",
    ] {
        assert!(check(bad).is_err(), "accepted {bad:?}");
    }
}
