//! Relaxed JSON ("rt-app JSON") with a line and column on every key and value.
//!
//! rt-app reads its workloads with json-c, which accepts `/* */` and `//` comments and trailing
//! commas. Hand-written workloads also repeat keys (`"run"` twice in one phase) and rely on key
//! order, because events run in file order. This module parses such text into a small owned
//! tree ([`Node`]) in which objects are ordered lists of members, so repeated keys survive in
//! file order, and every key and value carries its 1-based line and column.
//!
//! The tokenizer and parser are the `jsonc-parser` crate (`parse_to_ast`): it keeps object
//! properties in a `Vec` in file order (repeats included), gives every node a byte range, and
//! bounds nesting depth, so it neither drops duplicates nor overflows the stack on hostile
//! input. We switch off the JSON5 extensions that json-c does not accept (hexadecimal numbers,
//! unary plus, bare decimal points, `NaN`/`Infinity`, unquoted keys, missing commas), so a file
//! we accept is a file rt-app accepts, and convert the AST into [`Node`] with line/column
//! positions (columns count characters, not bytes).
//!
//! Deviation from json-c: json-c keeps only the last value of a repeated key; rt-app's
//! `workgen` script renames repeats (`run1`, `run2`) before rt-app sees them. We keep every
//! repeat, which is what `workgen` would have produced.

use jsonc_parser::ast;
use jsonc_parser::common::Ranged;
use jsonc_parser::{parse_to_ast, CollectOptions, ParseOptions};

/// A 1-based line and column (in characters) in the workload text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}

/// One JSON value and where it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub kind: Kind,
    pub pos: Pos,
}

/// The JSON value kinds. Numbers keep their source text so integers are never rounded.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    Null,
    Bool(bool),
    /// The number exactly as written (`12`, `-1`, `0.5`, `1e3`).
    Number(String),
    String(String),
    Array(Vec<Node>),
    /// Members in file order; keys may repeat.
    Object(Vec<Member>),
}

/// One `"key": value` member of an object.
#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    pub key: String,
    pub key_pos: Pos,
    pub value: Node,
}

/// A syntax error: where and what was expected.
#[derive(Clone, Debug, PartialEq)]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

impl Node {
    /// "a string", "an object", ... for error messages.
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Null => "null".to_string(),
            Kind::Bool(_) => "a boolean".to_string(),
            Kind::Number(raw) => {
                if is_integer_literal(raw) {
                    format!("the integer {raw}")
                } else {
                    format!("the non-integer number {raw}")
                }
            }
            Kind::String(_) => "a string".to_string(),
            Kind::Array(_) => "an array".to_string(),
            Kind::Object(_) => "an object".to_string(),
        }
    }

    /// The value as an integer, if it is written as one (json-c's `json_type_int`).
    pub fn as_integer(&self) -> Option<i128> {
        match &self.kind {
            Kind::Number(raw) if is_integer_literal(raw) => raw.parse::<i128>().ok(),
            _ => None,
        }
    }

    /// The value as a number of any kind.
    pub fn as_f64(&self) -> Option<f64> {
        match &self.kind {
            Kind::Number(raw) => raw.parse::<f64>().ok().filter(|v| v.is_finite()),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&[Member]> {
        match &self.kind {
            Kind::Object(m) => Some(m),
            _ => None,
        }
    }

    /// Converts to a `serde_json::Value` (for settings that another crate parses). Repeated
    /// keys keep the last value, as json-c does.
    pub fn to_serde(&self) -> serde_json::Value {
        match &self.kind {
            Kind::Null => serde_json::Value::Null,
            Kind::Bool(b) => serde_json::Value::Bool(*b),
            Kind::Number(raw) => raw
                .parse::<serde_json::Number>()
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Kind::String(s) => serde_json::Value::String(s.clone()),
            Kind::Array(items) => serde_json::Value::Array(items.iter().map(Node::to_serde).collect()),
            Kind::Object(members) => {
                let mut map = serde_json::Map::new();
                for m in members {
                    map.insert(m.key.clone(), m.value.to_serde());
                }
                serde_json::Value::Object(map)
            }
        }
    }
}

/// Writes `node` back as JSON text that [`parse`] reads into the same tree (positions aside):
/// members in order with their repeats, numbers exactly as written. The top-level object and
/// the objects directly inside it that hold objects put one member per line; everything
/// deeper stays on the line of its key, so a generated workload reads one task per line.
/// Comments are not kept (the tree has none).
pub fn to_text(node: &Node) -> String {
    let mut w = Writer::new(None);
    write_node(node, 0, &mut w);
    w.out.push('\n');
    w.out
}

/// `header` (a comment, say) followed by [`to_text`] of `node`, with every position in
/// `node` set to where [`parse`] puts it in that text: so the tree is exactly the one
/// `parse` would read back, without reading it.
pub fn to_text_placed(header: &str, node: &mut Node) -> String {
    let mut w = Writer::new(Some(Vec::new()));
    w.push_str(header);
    write_node(node, 0, &mut w);
    w.out.push('\n');
    let places = w.places.take().unwrap_or_default();
    let mut places = places.into_iter();
    place(node, &mut places);
    debug_assert!(places.next().is_none(), "a position left over");
    w.out
}

/// Set the positions of `node` from `places`, in the order [`write_node`] wrote them: a
/// value's first, then each member's key and value in turn.
fn place(node: &mut Node, places: &mut impl Iterator<Item = Pos>) {
    node.pos = places.next().expect("a position per value");
    match &mut node.kind {
        Kind::Array(items) => items.iter_mut().for_each(|item| place(item, places)),
        Kind::Object(members) => {
            for m in members {
                m.key_pos = places.next().expect("a position per key");
                place(&mut m.value, places);
            }
        }
        _ => {}
    }
}

/// The text being written, with the line and column (in characters, as [`parse`] counts
/// them) of its next character, and the positions noted so far when asked to note them.
struct Writer {
    out: String,
    line: u32,
    column: u32,
    places: Option<Vec<Pos>>,
}

impl Writer {
    fn new(places: Option<Vec<Pos>>) -> Writer {
        Writer {
            out: String::new(),
            line: 1,
            column: 1,
            places,
        }
    }

    fn push(&mut self, c: char) {
        self.out.push(c);
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
    }

    fn push_str(&mut self, s: &str) {
        s.chars().for_each(|c| self.push(c));
    }

    /// Note that a key or value starts here.
    fn note(&mut self) {
        if let Some(places) = &mut self.places {
            places.push(Pos {
                line: self.line,
                column: self.column,
            });
        }
    }
}

/// Depths at which an object that holds objects breaks its members onto lines.
const BREAK_DEPTH: usize = 2;

fn write_node(node: &Node, depth: usize, out: &mut Writer) {
    out.note();
    match &node.kind {
        Kind::Null => out.push_str("null"),
        Kind::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Kind::Number(raw) => out.push_str(raw),
        Kind::String(s) => write_string(s, out),
        Kind::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_node(item, depth + 1, out);
            }
            out.push(']');
        }
        Kind::Object(members) if members.is_empty() => out.push_str("{}"),
        Kind::Object(members) => {
            let nested = members.iter().any(|m| matches!(m.value.kind, Kind::Object(_)));
            let broken = depth == 0 || (depth < BREAK_DEPTH && nested);
            let indent = "  ".repeat(depth + 1);
            out.push('{');
            for (i, m) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                if broken {
                    out.push('\n');
                    out.push_str(&indent);
                } else {
                    out.push(' ');
                }
                out.note();
                write_string(&m.key, out);
                out.push_str(": ");
                write_node(&m.value, depth + 1, out);
            }
            if broken {
                out.push('\n');
                out.push_str(&"  ".repeat(depth));
            } else {
                out.push(' ');
            }
            out.push('}');
        }
    }
}

/// A JSON string literal: quotes, backslashes and control characters escaped.
fn write_string(s: &str, out: &mut Writer) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// True if `raw` is written as a JSON integer (no fraction, no exponent).
fn is_integer_literal(raw: &str) -> bool {
    !raw.contains(['.', 'e', 'E'])
}

/// Byte offset → line/column, computed once per text.
///
/// A column counts characters, so it needs the number of characters between the start of the
/// line and the offset. Counting them from the line start on every query made loading
/// quadratic in the length of a line (a generated workload is often one line: 20,000 task
/// keys took 2 s, 100,000 took 47 s). Instead, `chars_at` records how many characters precede
/// every `CHECKPOINT_BYTES`-th byte, so any count is a lookup plus at most that many bytes.
struct LineIndex<'a> {
    text: &'a str,
    /// Byte offset of the start of each line.
    line_starts: Vec<usize>,
    /// `chars_at[i]`: characters in `text[..i * CHECKPOINT_BYTES]`.
    chars_at: Vec<usize>,
    /// Every character is one byte (then a column is a byte count, with no scan).
    ascii: bool,
}

/// Spacing of the character-count checkpoints of [`LineIndex`].
const CHECKPOINT_BYTES: usize = 256;

/// Whether `b` begins a UTF-8 character (is not a continuation byte).
fn starts_char(b: u8) -> bool {
    b & 0xC0 != 0x80
}

impl<'a> LineIndex<'a> {
    fn new(text: &'a str) -> Self {
        let mut line_starts = vec![0];
        let mut chars_at = Vec::with_capacity(text.len() / CHECKPOINT_BYTES + 1);
        let mut chars = 0;
        for (i, b) in text.bytes().enumerate() {
            if i % CHECKPOINT_BYTES == 0 {
                chars_at.push(chars);
            }
            if b == b'\n' {
                line_starts.push(i + 1);
            }
            chars += usize::from(starts_char(b));
        }
        if text.len().is_multiple_of(CHECKPOINT_BYTES) {
            // A checkpoint for the end of the text (the loop pushed one for every earlier slot).
            chars_at.push(chars);
        }
        LineIndex {
            text,
            line_starts,
            chars_at,
            ascii: chars == text.len(),
        }
    }

    /// Characters that begin in `text[..byte]`.
    fn chars_before(&self, byte: usize) -> usize {
        if self.ascii {
            return byte;
        }
        let slot = byte / CHECKPOINT_BYTES;
        self.chars_at[slot]
            + self.text.as_bytes()[slot * CHECKPOINT_BYTES..byte]
                .iter()
                .filter(|&&b| starts_char(b))
                .count()
    }

    fn pos(&self, byte: usize) -> Pos {
        let byte = byte.min(self.text.len());
        let line = match self.line_starts.binary_search(&byte) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.line_starts[line];
        let column = self.chars_before(byte) - self.chars_before(start);
        Pos {
            line: line as u32 + 1,
            column: column as u32 + 1,
        }
    }
}

/// The parser options matching json-c's tolerance (comments, trailing commas) and no more.
fn options() -> ParseOptions {
    ParseOptions {
        allow_comments: true,
        allow_trailing_commas: true,
        allow_loose_object_property_names: false,
        allow_missing_commas: false,
        allow_single_quoted_strings: false,
        allow_hexadecimal_numbers: false,
        allow_unary_plus_numbers: false,
        allow_bare_decimal_point_numbers: false,
        allow_non_finite_numbers: false,
        allow_extended_string_escapes: false,
    }
}

/// Parses relaxed JSON text into a positioned tree.
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    let index = LineIndex::new(text);
    let result = parse_to_ast(text, &CollectOptions::default(), &options()).map_err(|e| {
        let mut message = e.kind().to_string();
        // jsonc-parser capitalises its messages; ours follow the compiler style.
        if let Some(first) = message.get(0..1) {
            message = first.to_lowercase() + &message[1..];
        }
        SyntaxError {
            pos: index.pos(e.range().start),
            message,
        }
    })?;
    match result.value {
        Some(value) => Ok(convert(&value, &index)),
        None => Err(SyntaxError {
            pos: index.pos(text.len()),
            message: "expected a JSON object, found an empty file".to_string(),
        }),
    }
}

fn convert(value: &ast::Value<'_>, index: &LineIndex<'_>) -> Node {
    let pos = index.pos(value.range().start);
    let kind = match value {
        ast::Value::NullKeyword(_) => Kind::Null,
        ast::Value::BooleanLit(b) => Kind::Bool(b.value),
        ast::Value::NumberLit(n) => Kind::Number(n.value.to_string()),
        ast::Value::StringLit(s) => Kind::String(s.value.to_string()),
        ast::Value::Array(a) => Kind::Array(a.elements.iter().map(|v| convert(v, index)).collect()),
        ast::Value::Object(o) => Kind::Object(
            o.properties
                .iter()
                .map(|p| Member {
                    key: p.name.as_str().to_string(),
                    key_pos: index.pos(p.name.range().start),
                    value: convert(&p.value, index),
                })
                .collect(),
        ),
    };
    Node { kind, pos }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(node: &Node) -> Vec<(&str, u32, u32)> {
        node.as_object()
            .unwrap()
            .iter()
            .map(|m| (m.key.as_str(), m.key_pos.line, m.key_pos.column))
            .collect()
    }

    #[test]
    fn comments_trailing_commas_and_repeated_keys_in_order() {
        let text = "{ /* c */ \"run\": 1, // x\n  \"sleep\": 2,\n  \"run\": 3, }";
        let root = parse(text).unwrap();
        assert_eq!(keys(&root), vec![("run", 1, 11), ("sleep", 2, 3), ("run", 3, 3)]);
        let values: Vec<_> = root
            .as_object()
            .unwrap()
            .iter()
            .map(|m| m.value.as_integer().unwrap())
            .collect();
        assert_eq!(values, vec![1, 2, 3]);
        assert_eq!(
            root.as_object().unwrap()[2].value.pos,
            Pos { line: 3, column: 10 }
        );
    }

    #[test]
    fn columns_count_characters() {
        let root = parse("{\"é\": 1, \"b\": 2}").unwrap();
        assert_eq!(keys(&root)[1], ("b", 1, 10));
    }

    /// Columns past the character-count checkpoints, with multi-byte characters on both
    /// sides of them and on several lines, agree with counting from the line start.
    #[test]
    fn columns_on_long_lines_match_a_plain_count() {
        let mut text = String::from("{");
        for i in 0..400 {
            text += &format!("\"ké{i}€\": \"ü\",");
            if i % 97 == 96 {
                text += "\n";
            }
        }
        text += "\"end\": 0}";
        let root = parse(&text).unwrap();
        let lines: Vec<&str> = text.split('\n').collect();
        let members = root.as_object().unwrap();
        assert_eq!(members.len(), 401);
        for m in members {
            let line = lines[m.key_pos.line as usize - 1];
            let byte = line.find(&format!("\"{}\"", m.key)).unwrap();
            let expected = line[..byte].chars().count() as u32 + 1;
            assert_eq!(m.key_pos.column, expected, "key {}", m.key);
        }
    }

    #[test]
    fn syntax_error_position() {
        let e = parse("{\n  \"a\": 1\n  \"b\": 2\n}").unwrap_err();
        assert_eq!(e.pos, Pos { line: 2, column: 9 });
        assert_eq!(e.message, "expected comma");
        assert!(parse("{\"a\": 0x10}").is_err());
        assert!(parse("{a: 1}").is_err());
        assert!(parse("").is_err());
    }

    /// The tree without positions, to compare a text with what it writes back.
    fn shape(node: &Node) -> String {
        match &node.kind {
            Kind::Array(items) => format!("[{}]", items.iter().map(shape).collect::<Vec<_>>().join(",")),
            Kind::Object(members) => format!(
                "{{{}}}",
                members
                    .iter()
                    .map(|m| format!("{:?}:{}", m.key, shape(&m.value)))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn to_text_reads_back_as_the_same_tree() {
        let text = "{ /* c */ \"tasks\": { \"t\": { \"run\": 1, \"run\": 2.50, \"cpus\": [0, 3], \"x\": {} } },\n \"s\": \"a\\\"b\\\\c\\nd\\u0001\", \"n\": null, \"b\": [true, false], \"e\": [] }";
        let root = parse(text).unwrap();
        let out = to_text(&root);
        assert_eq!(shape(&parse(&out).unwrap()), shape(&root), "{out}");
        // Repeats and number spellings survive; tasks go one per line.
        assert!(out.contains("\"run\": 1, \"run\": 2.50"), "{out}");
        assert!(out.contains("\n    \"t\": { \"run\""), "{out}");
        assert!(out.starts_with("{\n  \"tasks\": {\n"), "{out}");
    }

    #[test]
    fn integers_versus_floats() {
        let root = parse("[1, -2, 1.5, 1e3]").unwrap();
        let Kind::Array(items) = &root.kind else { panic!() };
        assert_eq!(items[0].as_integer(), Some(1));
        assert_eq!(items[1].as_integer(), Some(-2));
        assert_eq!(items[2].as_integer(), None);
        assert_eq!(items[3].as_integer(), None);
        assert_eq!(items[3].as_f64(), Some(1000.0));
    }
}
