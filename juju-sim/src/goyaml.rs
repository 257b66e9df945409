//! YAML as the Juju CLI writes it with `--format yaml`: juju/cmd marshals with go-yaml v2 (Juju
//! pins its own fork of it), whose emitter is a port of libyaml. Tools that read Juju's output
//! sometimes compare it as text, so this writes the same bytes: Go map keys in go-yaml's order,
//! struct fields in declaration order, strings quoted only when go-yaml quotes them (double
//! quotes when the plain text would read back as another type, single quotes when plain text is
//! not allowed), literal block scalars for multi-line strings, and long lines folded at 80
//! columns.
//!
//! Compared with Juju's go-yaml fork on a hundred thousand generated documents, the output
//! differs only where go-yaml's own is not fixed: keys whose comparison is not transitive (`0x`,
//! `1`, `01`) come out in the order of Go's random map iteration. Letters and digits outside
//! ASCII are classed with Rust's `char` predicates, which differ from Go's Unicode tables at the
//! margins.

use std::cmp::Ordering;

/// A value to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A Go string.
    Str(String),
    /// A Go int, bool or `time.Time`, already formatted: written as it is.
    Plain(String),
    Seq(Vec<Node>),
    /// Entries in the order written: a struct's fields in declaration order, or a Go map's keys
    /// sorted with [`go_map`].
    Map(Vec<(String, Node)>),
}

impl Node {
    pub fn str(value: &str) -> Node {
        Node::Str(value.to_owned())
    }

    pub fn int(value: i64) -> Node {
        Node::Plain(value.to_string())
    }

    pub fn bool(value: bool) -> Node {
        Node::Plain(value.to_string())
    }
}

/// A Go map: go-yaml writes its keys sorted, numbers in keys compared by value.
pub fn go_map(entries: impl IntoIterator<Item = (String, Node)>) -> Node {
    let mut sorted: Vec<(String, Node)> = Vec::new();
    // An insertion sort never panics whatever the comparison does, and maps here are small.
    for (key, value) in entries {
        let at = sorted
            .iter()
            .position(|(k, _)| go_key_cmp(&key, k) == Ordering::Less)
            .unwrap_or(sorted.len());
        sorted.insert(at, (key, value));
    }
    Node::Map(sorted)
}

/// go-yaml's order of string map keys: letters by code point, non-letters before letters, and
/// runs of digits by their value.
fn go_key_cmp(a: &str, b: &str) -> Ordering {
    if go_key_less(a, b) {
        Ordering::Less
    } else if go_key_less(b, a) {
        Ordering::Greater
    } else {
        Ordering::Equal
    }
}

fn go_key_less(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    for i in 0..a.len().min(b.len()) {
        if a[i] == b[i] {
            continue;
        }
        let (a_letter, b_letter) = (a[i].is_alphabetic(), b[i].is_alphabetic());
        if a_letter && b_letter {
            return a[i] < b[i];
        }
        if a_letter || b_letter {
            return b_letter;
        }
        // Neither is a letter: compare the numbers that start here. Zeros after a nonzero
        // digit count, so both sides get the same leading 1.
        let (mut an, mut bn) = (0i64, 0i64);
        if a[i] == '0' || b[i] == '0' {
            for j in (0..i).rev() {
                if !a[j].is_ascii_digit() {
                    break;
                }
                if a[j] != '0' {
                    (an, bn) = (1, 1);
                    break;
                }
            }
        }
        let number = |s: &[char], mut n: i64| -> (i64, usize) {
            let mut end = i;
            while end < s.len() && s[end].is_ascii_digit() {
                n = n
                    .wrapping_mul(10)
                    .wrapping_add(i64::from(s[end] as u8 - b'0'));
                end += 1;
            }
            (n, end)
        };
        let ((an, a_end), (bn, b_end)) = (number(&a, an), number(&b, bn));
        if an != bn {
            return an < bn;
        }
        if a_end != b_end {
            return a_end < b_end;
        }
        return a[i] < b[i];
    }
    a.len() < b.len()
}

/// The document juju/cmd prints for `root`: one trailing newline.
pub fn to_string(root: &Node) -> String {
    let mut emitter = Emitter {
        out: String::new(),
        column: 0,
        whitespace: true,
        indention: true,
    };
    emitter.node(root, -1, Context::Root);
    // juju/cmd trims the trailing newlines and adds one back.
    let trimmed = emitter.out.trim_end_matches('\n');
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("{trimmed}\n")
    }
}

const BEST_INDENT: isize = 2;
const BEST_WIDTH: usize = 80;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Context {
    Root,
    SequenceItem,
    MappingValue,
    /// A key written on its own line after `? ` (too long or multi-line for a simple key).
    ComplexKey,
    SimpleKey,
}

struct Emitter {
    out: String,
    column: usize,
    /// The last thing written was whitespace (or nothing yet on this line).
    whitespace: bool,
    /// Only indentation (and indicators such as `- `) so far on this line.
    indention: bool,
}

impl Emitter {
    fn put(&mut self, c: char) {
        self.out.push(c);
        self.column += 1;
    }

    fn put_break(&mut self) {
        self.out.push('\n');
        self.column = 0;
    }

    fn write_break(&mut self, c: char) {
        if c == '\n' {
            self.put_break();
        } else {
            self.out.push(c);
            self.column = 0;
        }
    }

    fn write_indent(&mut self, indent: isize) {
        let indent = indent.max(0) as usize;
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.put_break();
        }
        while self.column < indent {
            self.put(' ');
        }
        self.whitespace = true;
        self.indention = true;
    }

    fn write_indicator(&mut self, text: &str, need_space: bool, is_space: bool, is_indent: bool) {
        if need_space && !self.whitespace {
            self.put(' ');
        }
        for c in text.chars() {
            self.put(c);
        }
        self.whitespace = is_space;
        self.indention = self.indention && is_indent;
    }

    /// Writes `node` inside a collection whose indentation is `parent` (-1 at the root).
    fn node(&mut self, node: &Node, parent: isize, context: Context) {
        match node {
            Node::Str(value) => {
                let style = if value.contains('\n') {
                    Style::Literal
                } else if resolves_to_string(value) && !is_base60_float(value) {
                    Style::Plain
                } else {
                    Style::Double
                };
                self.scalar(value, style, increase(parent, true), context);
            }
            Node::Plain(value) => self.scalar(value, Style::Plain, increase(parent, true), context),
            Node::Seq(items) if items.is_empty() => {
                self.write_indicator("[", true, true, false);
                self.write_indicator("]", false, false, false);
            }
            Node::Map(entries) if entries.is_empty() => {
                self.write_indicator("{", true, true, false);
                self.write_indicator("}", false, false, false);
            }
            Node::Seq(items) => {
                // A sequence that is a mapping's value starts at the key's column.
                let indentless = context == Context::MappingValue && !self.indention;
                let indent = if indentless {
                    parent
                } else {
                    increase(parent, false)
                };
                for item in items {
                    self.write_indent(indent);
                    self.write_indicator("-", true, false, true);
                    self.node(item, indent, Context::SequenceItem);
                }
            }
            Node::Map(entries) => {
                let indent = increase(parent, false);
                for (key, value) in entries {
                    self.write_indent(indent);
                    let simple = key.len() <= 128 && !analyze(key).multiline;
                    if simple {
                        self.node(&Node::Str(key.clone()), indent, Context::SimpleKey);
                        self.write_indicator(":", false, false, false);
                    } else {
                        self.write_indicator("?", true, false, true);
                        self.node(&Node::Str(key.clone()), indent, Context::ComplexKey);
                        self.write_indent(indent);
                        self.write_indicator(":", true, false, true);
                    }
                    self.node(value, indent, Context::MappingValue);
                }
            }
        }
    }

    fn scalar(&mut self, value: &str, requested: Style, indent: isize, context: Context) {
        let analysis = analyze(value);
        let simple_key = context == Context::SimpleKey;
        let mut style = requested;
        if simple_key && analysis.multiline {
            style = Style::Double;
        }
        if style == Style::Plain
            && (!analysis.block_plain_allowed || (value.is_empty() && simple_key))
        {
            style = Style::Single;
        }
        if style == Style::Single && !analysis.single_quoted_allowed {
            style = Style::Double;
        }
        if style == Style::Literal && (!analysis.block_allowed || simple_key) {
            style = Style::Double;
        }
        let chars: Vec<char> = value.chars().collect();
        match style {
            Style::Plain => self.plain(&chars, indent, !simple_key),
            Style::Single => self.single_quoted(&chars, indent, !simple_key),
            Style::Double => self.double_quoted(&chars, indent, !simple_key),
            Style::Literal => self.literal(&chars, indent),
        }
    }

    fn plain(&mut self, value: &[char], indent: isize, allow_breaks: bool) {
        if !self.whitespace {
            self.put(' ');
        }
        let (mut spaces, mut breaks) = (false, false);
        for (i, &c) in value.iter().enumerate() {
            if c == ' ' {
                let next_is_space = value.get(i + 1) == Some(&' ');
                if allow_breaks && !spaces && self.column > BEST_WIDTH && !next_is_space {
                    self.write_indent(indent);
                } else {
                    self.put(c);
                }
                spaces = true;
            } else if is_break(c) {
                if !breaks && c == '\n' {
                    self.put_break();
                }
                self.write_break(c);
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent(indent);
                }
                self.put(c);
                self.indention = false;
                spaces = false;
                breaks = false;
            }
        }
        self.whitespace = false;
        self.indention = false;
    }

    fn single_quoted(&mut self, value: &[char], indent: isize, allow_breaks: bool) {
        self.write_indicator("'", true, false, false);
        let (mut spaces, mut breaks) = (false, false);
        for (i, &c) in value.iter().enumerate() {
            if c == ' ' {
                let inner = i > 0 && i + 1 < value.len();
                let next_is_space = value.get(i + 1) == Some(&' ');
                if allow_breaks && !spaces && self.column > BEST_WIDTH && inner && !next_is_space {
                    self.write_indent(indent);
                } else {
                    self.put(c);
                }
                spaces = true;
            } else if is_break(c) {
                if !breaks && c == '\n' {
                    self.put_break();
                }
                self.write_break(c);
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent(indent);
                }
                if c == '\'' {
                    self.put('\'');
                }
                self.put(c);
                self.indention = false;
                spaces = false;
                breaks = false;
            }
        }
        self.write_indicator("'", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn double_quoted(&mut self, value: &[char], indent: isize, allow_breaks: bool) {
        // libyaml escapes every character of a value that starts with a byte order mark.
        let bom = value.first() == Some(&'\u{feff}');
        let mut spaces = false;
        self.write_indicator("\"", true, false, false);
        for (i, &c) in value.iter().enumerate() {
            if !is_printable(c) || bom || is_break(c) || c == '"' || c == '\\' {
                self.put('\\');
                match c {
                    '\0' => self.put('0'),
                    '\u{7}' => self.put('a'),
                    '\u{8}' => self.put('b'),
                    '\t' => self.put('t'),
                    '\n' => self.put('n'),
                    '\u{b}' => self.put('v'),
                    '\u{c}' => self.put('f'),
                    '\r' => self.put('r'),
                    '\u{1b}' => self.put('e'),
                    '"' => self.put('"'),
                    '\\' => self.put('\\'),
                    '\u{85}' => self.put('N'),
                    '\u{a0}' => self.put('_'),
                    '\u{2028}' => self.put('L'),
                    '\u{2029}' => self.put('P'),
                    _ => {
                        let code = u32::from(c);
                        let (letter, digits) = match code {
                            0..=0xff => ('x', 2),
                            0x100..=0xffff => ('u', 4),
                            _ => ('U', 8),
                        };
                        self.put(letter);
                        for c in format!("{code:0digits$X}").chars() {
                            self.put(c);
                        }
                    }
                }
                spaces = false;
            } else if c == ' ' {
                let inner = i > 0 && i + 1 < value.len();
                if allow_breaks && !spaces && self.column > BEST_WIDTH && inner {
                    self.write_indent(indent);
                    // A space that starts the next line would be folded away: escape it.
                    if value.get(i + 1) == Some(&' ') {
                        self.put('\\');
                    }
                } else {
                    self.put(c);
                }
                spaces = true;
            } else {
                self.put(c);
                spaces = false;
            }
        }
        self.write_indicator("\"", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn literal(&mut self, value: &[char], indent: isize) {
        self.write_indicator("|", true, false, false);
        if value.first().is_some_and(|&c| c == ' ' || is_break(c)) {
            self.write_indicator(&BEST_INDENT.to_string(), false, false, false);
        }
        // Chomping: `-` strips a missing final newline, `+` keeps extra ones.
        let chomp = match value {
            [] => Some("-"),
            [.., last] if !is_break(*last) => Some("-"),
            [_] => Some("+"),
            [.., before, _] if is_break(*before) => Some("+"),
            _ => None,
        };
        if let Some(chomp) = chomp {
            self.write_indicator(chomp, false, false, false);
        }
        self.put_break();
        self.indention = true;
        self.whitespace = true;
        let mut breaks = true;
        for &c in value {
            if is_break(c) {
                self.write_break(c);
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent(indent);
                }
                self.put(c);
                self.indention = false;
                breaks = false;
            }
        }
    }
}

/// The indentation of a collection's content (a scalar's continuation lines when `flow`).
fn increase(parent: isize, flow: bool) -> isize {
    match parent {
        p if p < 0 && flow => BEST_INDENT,
        p if p < 0 => 0,
        p => p + BEST_INDENT,
    }
}

/// What libyaml allows for a scalar, from its characters.
struct Analysis {
    multiline: bool,
    block_plain_allowed: bool,
    single_quoted_allowed: bool,
    block_allowed: bool,
}

fn analyze(value: &str) -> Analysis {
    if value.is_empty() {
        return Analysis {
            multiline: false,
            block_plain_allowed: true,
            single_quoted_allowed: true,
            block_allowed: false,
        };
    }
    let chars: Vec<char> = value.chars().collect();
    let mut block_indicators = value.starts_with("---") || value.starts_with("...");
    let (mut line_breaks, mut special) = (false, false);
    let (mut leading_space, mut leading_break) = (false, false);
    let (mut trailing_space, mut trailing_break) = (false, false);
    let (mut break_space, mut space_break) = (false, false);
    let (mut previous_space, mut previous_break) = (false, false);
    let mut preceded_by_whitespace = true;
    for (i, &c) in chars.iter().enumerate() {
        let followed_by_whitespace = chars.get(i + 1).is_none_or(|&n| n == ' ' || n == '\t');
        let last = i + 1 == chars.len();
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
                | '%' | '@' | '`' => block_indicators = true,
                '?' | ':' | '-' if followed_by_whitespace => block_indicators = true,
                _ => {}
            }
        } else {
            match c {
                ':' if followed_by_whitespace => block_indicators = true,
                '#' if preceded_by_whitespace => block_indicators = true,
                _ => {}
            }
        }
        if !is_printable(c) {
            special = true;
        }
        if c == ' ' {
            leading_space |= i == 0;
            trailing_space |= last;
            break_space |= previous_break;
            (previous_space, previous_break) = (true, false);
        } else if is_break(c) {
            line_breaks = true;
            leading_break |= i == 0;
            trailing_break |= last;
            space_break |= previous_space;
            (previous_space, previous_break) = (false, true);
        } else {
            (previous_space, previous_break) = (false, false);
        }
        preceded_by_whitespace = c == ' ' || c == '\t' || c == '\0' || is_break(c);
    }
    let mut analysis = Analysis {
        multiline: line_breaks,
        block_plain_allowed: true,
        single_quoted_allowed: true,
        block_allowed: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break {
        analysis.block_plain_allowed = false;
    }
    if trailing_space {
        analysis.block_allowed = false;
    }
    if break_space {
        analysis.block_plain_allowed = false;
        analysis.single_quoted_allowed = false;
    }
    if space_break || special {
        analysis.block_plain_allowed = false;
        analysis.single_quoted_allowed = false;
        analysis.block_allowed = false;
    }
    if line_breaks || block_indicators {
        analysis.block_plain_allowed = false;
    }
    analysis
}

/// libyaml's printable set (non-ASCII allowed, as go-yaml turns unicode on).
fn is_printable(c: char) -> bool {
    matches!(u32::from(c), 0x0a | 0x20..=0x7e | 0xa0..=0xd7ff | 0xe000..=0xfffd) && c != '\u{feff}'
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// Whether go-yaml reads `s`, unquoted, back as a string (and not a bool, number, null or
/// timestamp), in which case it may write it plain.
fn resolves_to_string(s: &str) -> bool {
    const SPECIAL: &[&str] = &[
        "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON", "n", "N", "no",
        "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF", "", "~", "null", "Null",
        "NULL", ".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf",
        "-.Inf", "-.INF",
    ];
    let Some(first) = s.bytes().next() else {
        return false;
    };
    // go-yaml looks further only at what starts like a number, bool or null.
    let hinted =
        matches!(first, b'+' | b'-' | b'0'..=b'9' | b'.') || b"yYnNtTfFoO~".contains(&first);
    if !hinted {
        return true;
    }
    if SPECIAL.contains(&s) {
        return false;
    }
    match first {
        b'.' => !go_float(s),
        b'+' | b'-' | b'0'..=b'9' => {
            if is_timestamp(s) {
                return false;
            }
            let plain = s.replace('_', "");
            if go_int(&plain, 0).is_some() || go_uint(&plain, 0).is_some() {
                return false;
            }
            if yaml_style_float(&plain) && go_float(&plain) {
                return false;
            }
            if let Some(bits) = plain.strip_prefix("0b") {
                return go_int(bits, 2).is_none() && go_uint(bits, 2).is_none();
            }
            if let Some(bits) = plain.strip_prefix("-0b") {
                return go_int(&format!("-{bits}"), 2).is_none();
            }
            true
        }
        _ => true,
    }
}

/// Go's `strconv.ParseUint(s, base, 64)`; base 0 reads a `0x`, `0o`, `0b` or `0` prefix.
fn go_uint(s: &str, base: u32) -> Option<u64> {
    let (digits, radix) = if base != 0 {
        (s, base)
    } else if let Some(rest) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (rest, 16)
    } else if let Some(rest) = s.strip_prefix("0o").or_else(|| s.strip_prefix("0O")) {
        (rest, 8)
    } else if let Some(rest) = s.strip_prefix("0b").or_else(|| s.strip_prefix("0B")) {
        (rest, 2)
    } else if s.len() > 1 && s.starts_with('0') {
        (&s[1..], 8)
    } else {
        (s, 10)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// Go's `strconv.ParseInt(s, base, 64)`.
fn go_int(s: &str, base: u32) -> Option<i64> {
    let (negative, unsigned) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let magnitude = i128::from(go_uint(unsigned, base)?);
    i64::try_from(if negative { -magnitude } else { magnitude }).ok()
}

/// Go's `strconv.ParseFloat(s, 64)` succeeding on a decimal: Rust reads the same decimal forms
/// once Go's digit-separating underscores are gone; Go fails where the value overflows.
fn go_float(s: &str) -> bool {
    let decimal = s
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-' | '_'));
    decimal && underscores_separate_digits(s) && {
        let digits = s.replace('_', "");
        digits.parse::<f64>().is_ok_and(f64::is_finite)
    }
}

/// Go accepts an underscore in a number only between two digits.
fn underscores_separate_digits(s: &str) -> bool {
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (mut after_digit, mut after_underscore) = (false, false);
    for c in unsigned.chars() {
        if c.is_ascii_digit() {
            (after_digit, after_underscore) = (true, false);
        } else if c == '_' {
            if !after_digit {
                return false;
            }
            (after_digit, after_underscore) = (false, true);
        } else if after_underscore {
            return false;
        } else {
            after_digit = false;
        }
    }
    !after_underscore
}

/// go-yaml's float pattern, `^[-+]?(0|[1-9][0-9]*)?(\.[0-9]+)?([eE][-+][0-9]+)?$`.
fn yaml_style_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
        }
        _ => {}
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if !matches!(b.get(i), Some(b'+' | b'-')) {
            return false;
        }
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    i == b.len()
}

/// YAML 1.1 sexagesimal numbers (`1:20`): go-yaml quotes them for other parsers' sake.
fn is_base60_float(s: &str) -> bool {
    let b = s.as_bytes();
    if !matches!(b.first(), Some(b'+' | b'-' | b'0'..=b'9')) || !s.contains(':') {
        return false;
    }
    let mut i = usize::from(matches!(b[0], b'+' | b'-'));
    if !b.get(i).is_some_and(u8::is_ascii_digit) {
        return false;
    }
    while b.get(i).is_some_and(|c| c.is_ascii_digit() || *c == b'_') {
        i += 1;
    }
    let mut groups = 0;
    while b.get(i) == Some(&b':') {
        i += 1;
        // `[0-5]?[0-9]`
        match (b.get(i), b.get(i + 1)) {
            (Some(b'0'..=b'5'), Some(b'0'..=b'9')) => i += 2,
            (Some(b'0'..=b'9'), _) => i += 1,
            _ => return false,
        }
        groups += 1;
    }
    if groups == 0 {
        return false;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        while b.get(i).is_some_and(|c| c.is_ascii_digit() || *c == b'_') {
            i += 1;
        }
    }
    i == b.len()
}

/// The timestamps go-yaml recognises: `2006-1-2`, `2006-1-2T15:4:5.999999999Z07:00` (or with a
/// lower-case `t`) and `2006-1-2 15:4:5.999999999`, with Go's range checks.
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return false;
    }
    Timestamp { b, i: 5 }.parse().is_some()
}

struct Timestamp<'a> {
    b: &'a [u8],
    i: usize,
}

impl Timestamp<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn digit(&mut self) -> Option<u32> {
        let c = self.peek().filter(u8::is_ascii_digit)?;
        self.i += 1;
        Some(u32::from(c - b'0'))
    }

    /// Go's non-padded fields: one digit, or two when a second follows.
    fn number(&mut self) -> Option<u32> {
        let first = self.digit()?;
        Some(match self.digit() {
            Some(second) => first * 10 + second,
            None => first,
        })
    }

    fn expect(&mut self, c: u8) -> Option<()> {
        (self.peek() == Some(c)).then(|| self.i += 1)
    }

    fn parse(&mut self) -> Option<()> {
        let year = self.b[..4]
            .iter()
            .fold(0u32, |n, c| n * 10 + u32::from(c - b'0'));
        let month = self.number()?;
        self.expect(b'-')?;
        let day = self.number()?;
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
        let days = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => return None,
        };
        if day < 1 || day > days {
            return None;
        }
        let Some(separator) = self.peek() else {
            return Some(());
        };
        if !matches!(separator, b'T' | b't' | b' ') {
            return None;
        }
        self.i += 1;
        // Go's time.Parse takes a run of spaces for the layout's one.
        while separator == b' ' && self.peek() == Some(b' ') {
            self.i += 1;
        }
        let hour = self.number()?;
        self.expect(b':')?;
        let minute = self.number()?;
        self.expect(b':')?;
        let second = self.number()?;
        if hour >= 24 || minute >= 60 || second >= 60 {
            return None;
        }
        if matches!(self.peek(), Some(b'.' | b','))
            && self.b.get(self.i + 1).is_some_and(u8::is_ascii_digit)
        {
            self.i += 1;
            while self.digit().is_some() {}
        }
        if separator != b' ' {
            match self.peek()? {
                b'Z' => self.i += 1,
                b'+' | b'-' => {
                    self.i += 1;
                    let hours = self.digit()? * 10 + self.digit()?;
                    self.expect(b':')?;
                    let minutes = self.digit()? * 10 + self.digit()?;
                    if hours > 24 || minutes > 60 {
                        return None;
                    }
                }
                _ => return None,
            }
        }
        (self.i == self.b.len()).then_some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(entries: Vec<(&str, Node)>) -> String {
        to_string(&Node::Map(
            entries
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
        ))
    }

    fn value(s: &str) -> String {
        doc(vec![("k", Node::str(s))])
    }

    #[test]
    fn strings_that_read_back_as_other_types_are_double_quoted() {
        for s in [
            "12345",
            "0x1f",
            "-7",
            "1.5",
            "1e+3",
            "true",
            "on",
            "y",
            "NO",
            "~",
            "null",
            "",
            ".inf",
            "2024-01-31",
            "2024-1-2T3:04:05Z",
            "1:20",
            "1_000",
            ".5_1",
            "2001-12-14  21:59:43.10",
        ] {
            assert_eq!(value(s), format!("k: \"{s}\"\n"), "{s:?}");
        }
    }

    #[test]
    fn strings_that_read_back_as_strings_are_plain() {
        for s in [
            "09",
            "1.2.3",
            "127.0.1.1/32",
            "80/tcp",
            "local:webapp-0",
            "1e5",
            "2024-13-01",
            "-foo",
            "a b",
            "yes please",
            "0b2",
            "e+5",
            "._5",
            ".5_",
        ] {
            assert_eq!(value(s), format!("k: {s}\n"), "{s:?}");
        }
    }

    #[test]
    fn indicators_and_edge_spaces_need_single_quotes() {
        assert_eq!(value("a: b"), "k: 'a: b'\n");
        assert_eq!(value(" lead"), "k: ' lead'\n");
        assert_eq!(value("trail "), "k: 'trail '\n");
        assert_eq!(value("{\"a\": 1}"), "k: '{\"a\": 1}'\n");
        assert_eq!(value("it's #1"), "k: 'it''s #1'\n");
        assert_eq!(value("a #b"), "k: 'a #b'\n");
        assert_eq!(value("a#b"), "k: a#b\n");
        assert_eq!(value("- x"), "k: '- x'\n");
        assert_eq!(value("---"), "k: '---'\n");
    }

    #[test]
    fn unprintable_characters_are_escaped_in_double_quotes() {
        assert_eq!(value("a\tb"), "k: \"a\\tb\"\n");
        assert_eq!(value("bell\u{7}"), "k: \"bell\\a\"\n");
        assert_eq!(value("del\u{7f}"), "k: \"del\\x7F\"\n");
        assert_eq!(value("smile \u{1f600}"), "k: \"smile \\U0001F600\"\n");
        assert_eq!(value("café"), "k: café\n");
    }

    #[test]
    fn multi_line_strings_are_literal_blocks_with_chomping() {
        assert_eq!(value("a\nb"), "k: |-\n  a\n  b\n");
        assert_eq!(
            doc(vec![("k", Node::str("a\n\nb\n")), ("z", Node::str("x"))]),
            "k: |\n  a\n\n  b\nz: x\n"
        );
        assert_eq!(
            doc(vec![("k", Node::str("a\n\n")), ("z", Node::str("x"))]),
            "k: |+\n  a\n\nz: x\n"
        );
        assert_eq!(value(" a\nb"), "k: |2-\n   a\n  b\n");
        // A space before a newline rules the block out.
        assert_eq!(value("a \nb"), "k: \"a \\nb\"\n");
    }

    #[test]
    fn long_lines_fold_at_spaces_past_column_80() {
        let text = "lorem ipsum ".repeat(10);
        // The first space past column 80 becomes a line break; the rest stay on one line.
        let first = "lorem ipsum ".repeat(7);
        let rest = "lorem ipsum ".repeat(3);
        assert_eq!(
            value(text.trim_end()),
            format!("k: {}\n  {}\n", first.trim_end(), rest.trim_end())
        );
        let long_word = "x".repeat(100);
        assert_eq!(value(&long_word), format!("k: {long_word}\n"));
    }

    #[test]
    fn empty_collections_are_flow_and_sequences_in_mappings_are_indentless() {
        let out = doc(vec![
            ("ports", Node::Seq(vec![])),
            ("data", Node::Map(vec![])),
            (
                "items",
                Node::Seq(vec![
                    Node::Map(vec![
                        ("a".to_owned(), Node::int(1)),
                        ("b".to_owned(), Node::Map(vec![])),
                    ]),
                    Node::str("x"),
                ]),
            ),
            (
                "nested",
                Node::Map(vec![("c".to_owned(), Node::Seq(vec![Node::bool(true)]))]),
            ),
        ]);
        assert_eq!(
            out,
            "ports: []\ndata: {}\nitems:\n- a: 1\n  b: {}\n- x\nnested:\n  c:\n  - true\n"
        );
    }

    #[test]
    fn map_keys_sort_as_go_yaml_sorts_them() {
        let keys = [
            "b", "a10", "a9", "a-b", "ab", "A", "_x", "a09", "unit/10", "unit/2",
        ];
        let Node::Map(sorted) = go_map(keys.iter().map(|k| (k.to_string(), Node::int(0)))) else {
            panic!("a map");
        };
        let order: Vec<&str> = sorted.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            order,
            [
                "_x", "A", "a-b", "a9", "a09", "a10", "ab", "b", "unit/2", "unit/10"
            ]
        );
    }

    #[test]
    fn keys_are_quoted_like_values_and_long_keys_are_complex() {
        assert_eq!(doc(vec![("0", Node::str("x"))]), "\"0\": x\n");
        assert_eq!(doc(vec![("", Node::str("x"))]), "\"\": x\n");
        let long = "k".repeat(129);
        assert_eq!(
            doc(vec![(&long, Node::str("v"))]),
            format!("? {long}\n: v\n")
        );
    }

    #[test]
    fn output_parses_back_to_the_same_strings() {
        let tricky = [
            "plain",
            "12345",
            "",
            "a: b",
            "it's",
            "\ttab",
            "line\nline\n",
            " lead\n",
            "trail \nx",
            &"word ".repeat(40),
            "\u{feff}bom",
            "\"quoted\"",
            "back\\slash",
        ];
        let node = go_map(
            tricky
                .iter()
                .enumerate()
                .map(|(i, s)| (format!("k{i}"), Node::str(s))),
        );
        let parsed: std::collections::BTreeMap<String, String> =
            serde_norway::from_str(&to_string(&node)).expect("valid YAML");
        for (i, s) in tricky.iter().enumerate() {
            assert_eq!(parsed[&format!("k{i}")], *s, "{s:?}");
        }
    }
}
