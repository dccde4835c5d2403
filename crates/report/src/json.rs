//! [`PrettyJson`]: a writer of pretty-printed JSON, byte for byte the layout of
//! `serde_json::to_string_pretty` (two-space indent, `": "` after a key, `[]` and `{}` for
//! empty containers, serde_json's string escapes), for the metrics document.
//!
//! Why not serde: the document is one line per number (about 40 per task), and serde_json's
//! pretty formatter makes up to ten small writes per line (the newline, one per indent level,
//! the quotes, the key, the separator, the value), each a `memcpy` call. Writing the line
//! break and the whole indent as one slice, a key with its quotes in two, and the digits
//! without the formatting machinery, takes `Metrics::to_json` from 30.3 M to 16.1 M
//! instructions for the two documents of a 1024-task `run` (3.3% of it before).
//! The serde derives stay the reference: a test checks both give the same bytes.

/// A line break followed by the deepest indent the writer supports ([`MAX_DEPTH`] levels),
/// with a comma in front: each entry's lead is one slice of it.
const LEAD: &[u8] = b",\n                                ";

/// The deepest nesting [`PrettyJson`] writes (the metrics document goes four levels deep).
const MAX_DEPTH: usize = (LEAD.len() - 2) / 2;

/// Writes one JSON value, pretty-printed. The text is kept as bytes (pushing a number's
/// digits needs no UTF-8 check) and checked once at the end.
pub(crate) struct PrettyJson {
    out: Vec<u8>,
    /// Containers open around the next entry.
    depth: usize,
    /// Whether the innermost open container has no entry yet.
    first: bool,
}

impl PrettyJson {
    pub(crate) fn with_capacity(bytes: usize) -> Self {
        PrettyJson {
            out: Vec::with_capacity(bytes),
            depth: 0,
            first: true,
        }
    }

    /// The text written; every container must be closed.
    pub(crate) fn finish(self) -> String {
        assert_eq!(self.depth, 0, "unclosed JSON container");
        String::from_utf8(self.out).expect("JSON text is built from whole UTF-8 strings")
    }

    pub(crate) fn begin_object(&mut self) {
        self.open(b'{');
    }

    pub(crate) fn end_object(&mut self) {
        self.close(b'}');
    }

    pub(crate) fn begin_array(&mut self) {
        self.open(b'[');
    }

    pub(crate) fn end_array(&mut self) {
        self.close(b']');
    }

    /// Starts the entry `name` of the current object; its value is written next. `name` is
    /// one of the document's own keys, which need no escape (a test checks them all).
    pub(crate) fn key(&mut self, name: &'static str) {
        self.entry();
        self.out.push(b'"');
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b"\": ");
    }

    /// [`PrettyJson::key`] for a key that comes from the user (a feature name): escaped.
    pub(crate) fn key_escaped(&mut self, name: &str) {
        self.entry();
        self.string(name);
        self.out.extend_from_slice(b": ");
    }

    /// Starts the next element of the current array; its value is written next.
    pub(crate) fn element(&mut self) {
        self.entry();
    }

    pub(crate) fn u64(&mut self, v: u64) {
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        let mut rest = v;
        loop {
            at -= 1;
            digits[at] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        self.out.extend_from_slice(&digits[at..]);
    }

    pub(crate) fn i64(&mut self, v: i64) {
        if v < 0 {
            self.out.push(b'-');
        }
        self.u64(v.unsigned_abs());
    }

    pub(crate) fn bool(&mut self, v: bool) {
        self.out
            .extend_from_slice(if v { b"true" as &[u8] } else { b"false" });
    }

    pub(crate) fn null(&mut self) {
        self.out.extend_from_slice(b"null");
    }

    pub(crate) fn opt_u64(&mut self, v: Option<u64>) {
        match v {
            Some(v) => self.u64(v),
            None => self.null(),
        }
    }

    /// A string with serde_json's escapes: `"` and `\` escaped, the control characters
    /// U+0000..U+001F as `\b \t \n \f \r` or `\u00xx` (lower-case hex), everything else as is.
    pub(crate) fn string(&mut self, s: &str) {
        self.out.push(b'"');
        let bytes = s.as_bytes();
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let escape: &[u8] = match b {
                b'"' => b"\\\"",
                b'\\' => b"\\\\",
                0x08 => b"\\b",
                b'\t' => b"\\t",
                b'\n' => b"\\n",
                0x0c => b"\\f",
                b'\r' => b"\\r",
                0x00..=0x1f => b"",
                _ => continue,
            };
            self.out.extend_from_slice(&bytes[start..i]);
            if escape.is_empty() {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                self.out.extend_from_slice(b"\\u00");
                self.out.push(HEX[usize::from(b >> 4)]);
                self.out.push(HEX[usize::from(b & 0xf)]);
            } else {
                self.out.extend_from_slice(escape);
            }
            start = i + 1;
        }
        self.out.extend_from_slice(&bytes[start..]);
        self.out.push(b'"');
    }

    fn open(&mut self, bracket: u8) {
        self.out.push(bracket);
        self.depth += 1;
        assert!(self.depth <= MAX_DEPTH, "JSON nested deeper than {MAX_DEPTH}");
        self.first = true;
    }

    fn close(&mut self, bracket: u8) {
        assert!(self.depth > 0, "no JSON container to close");
        self.depth -= 1;
        if !self.first {
            self.out.extend_from_slice(&LEAD[1..2 + 2 * self.depth]);
        }
        self.out.push(bracket);
        self.first = false;
    }

    /// The line break and indent before an entry, after a comma unless it is the first.
    fn entry(&mut self) {
        let from = usize::from(self.first);
        self.out.extend_from_slice(&LEAD[from..2 + 2 * self.depth]);
        self.first = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_escapes_match_serde_json() {
        let text = "a\"b\\c\u{8}\t\n\u{c}\r\u{1}\u{1f} \u{7f} é ✓";
        let mut w = PrettyJson::with_capacity(0);
        // Keys in sorted order: `json!` sorts them unless serde_json's `preserve_order` is on.
        w.begin_object();
        w.key_escaped(text);
        w.string(text);
        w.key("empty_array");
        w.begin_array();
        w.end_array();
        w.key("empty_object");
        w.begin_object();
        w.end_object();
        w.key("numbers");
        w.begin_array();
        for v in [0, 7, u64::MAX] {
            w.element();
            w.u64(v);
        }
        for v in [-1, i64::MIN, 120] {
            w.element();
            w.i64(v);
        }
        w.element();
        w.bool(true);
        w.element();
        w.opt_u64(None);
        w.element();
        w.begin_object();
        w.key("deep");
        w.begin_array();
        w.element();
        w.bool(false);
        w.end_array();
        w.end_object();
        w.end_array();
        w.end_object();
        let expected = serde_json::to_string_pretty(&serde_json::json!({
            text: text,
            "empty_array": [],
            "empty_object": {},
            "numbers": [0, 7, u64::MAX, -1, i64::MIN, 120, true, null, {"deep": [false]}],
        }))
        .expect("serialise");
        assert_eq!(w.finish(), expected);
    }

    #[test]
    fn every_control_character_escapes_as_serde_json_does() {
        let all: String = (0u8..0x80).map(char::from).collect();
        let mut w = PrettyJson::with_capacity(0);
        w.string(&all);
        assert_eq!(w.finish(), serde_json::to_string(&all).expect("serialise"));
    }
}
