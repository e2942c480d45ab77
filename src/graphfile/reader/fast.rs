//! The optimistic pass's own reading of the text. Its structure — the document's fields, the
//! entries of `graph`, and the usual entry, a task `{"fn": "alias:symbol", "args": [...],
//! "kwargs": {...}}` whose arguments are plain strings, small integers and lists of them — is
//! read straight from the bytes; any other entry, and `plugins` and `keys`, go to serde_json,
//! on their own text.
//!
//! Why not serde_json all the way: through serde's visitors a task of the 1M-task wavefront
//! file cost ~3,500 instructions to read (callgrind), ~1,000 of them in serde_json's generic
//! token handling and ~500 in the visitors that sort out what an object is; read here, ~1,800
//! in all, half of them the graph's own add.
//!
//! It must accept nothing the exact passes refuse and read nothing differently, so what it
//! reads itself is a subset where JSON leaves no room: strings with no escape and no control
//! character (borrowed from the text), integers of at most 18 digits with no fraction or
//! exponent (`-0` excluded: serde_json reads it as a float), `{`, `}`, `[`, `]`, `,`, `:` and
//! JSON's four whitespace bytes. Anything else is either serde_json's to read (escaped
//! strings, other values: the same parser with the same features, so the same result) or
//! makes this pass give up (`None`), and the exact passes read the file and report its first
//! error as they always have. Nesting deeper than a graph file may is measured before serde_json
//! reads a value on its own (where its own limit would count from that value, not from the
//! document): deeper than the limit, the pass gives up.

use std::borrow::Cow;

use serde::de::DeserializeSeed;
use serde_json::Value as Json;

use super::builder::{Args, Builder, Built, Entry, Kwargs, Piece, Stop};
use super::computations::EntryShape;
use super::shape::Any;
use super::top::{load_plugins, PluginsSeed, Top, MAX_FILE_DEPTH};
use crate::comp::{Comp, TaskId};
use crate::graph::{Arg, ValidKey};
use crate::value::Value;

/// A position in the text, and the strict reading of JSON's tokens from there.
pub(super) struct Cursor<'t> {
    text: &'t str,
    bytes: &'t [u8],
    at: usize,
}

impl<'t> Cursor<'t> {
    pub(super) fn new(text: &'t str, at: usize) -> Cursor<'t> {
        Cursor {
            text,
            bytes: text.as_bytes(),
            at,
        }
    }

    /// Skips JSON's whitespace (what serde_json skips: nothing else).
    #[inline]
    pub(super) fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    /// The next byte after whitespace, not taken.
    #[inline]
    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.bytes.get(self.at).copied()
    }

    /// Takes `c` (after whitespace) if it is next.
    #[inline]
    fn eat(&mut self, c: u8) -> bool {
        let next = self.peek() == Some(c);
        self.at += usize::from(next);
        next
    }

    /// Takes `c`, or gives up.
    #[inline]
    pub(super) fn expect(&mut self, c: u8) -> Option<()> {
        self.eat(c).then_some(())
    }

    /// Takes `s` (after whitespace) if the text goes on with it.
    #[inline]
    fn eat_str(&mut self, s: &[u8]) -> bool {
        self.ws();
        let next = self.bytes[self.at..].starts_with(s);
        self.at += if next { s.len() } else { 0 };
        next
    }

    /// Whether only whitespace is left.
    pub(super) fn at_end(&mut self) -> bool {
        self.peek().is_none()
    }

    /// A string with neither escapes nor control characters, borrowed from the text; None
    /// (nothing taken) for any other string or any other value.
    #[inline(always)]
    fn plain_str(&mut self) -> Option<&'t str> {
        self.ws();
        let (&quote, rest) = self.bytes.get(self.at..)?.split_first()?;
        if quote != b'"' {
            return None;
        }
        let len = find_special(rest)?;
        if rest.get(len) != Some(&b'"') {
            return None;
        }
        let body = self.at + 1;
        self.at = body + len + 1;
        // Both ends are at ASCII bytes (quotes), so on character boundaries.
        self.text.get(body..body + len)
    }

    /// Any string, borrowed if plain, else decoded by serde_json (its escapes, its errors);
    /// None if it is not a valid string.
    fn string(&mut self) -> Option<Cow<'t, str>> {
        if let Some(s) = self.plain_str() {
            return Some(Cow::Borrowed(s));
        }
        if self.peek() != Some(b'"') {
            return None;
        }
        let start = self.at;
        let mut i = start + 1;
        loop {
            match *self.bytes.get(i)? {
                b'"' => break,
                b'\\' => i += 2,
                _ => i += 1,
            }
        }
        let s = serde_json::from_str::<String>(&self.text[start..=i]).ok()?;
        self.at = i + 1;
        Some(Cow::Owned(s))
    }

    /// An integer of at most 18 digits (so it fits an i64) with no fraction or exponent, as
    /// serde_json reads it (an int); None (nothing taken) for any other value, `-0` included
    /// (serde_json reads it as the float -0.0).
    #[inline]
    fn small_int(&mut self) -> Option<i64> {
        self.ws();
        let rest = &self.bytes[self.at..];
        let negative = rest.first() == Some(&b'-');
        let digits = &rest[usize::from(negative)..];
        let n = digits.iter().take_while(|b| b.is_ascii_digit()).count();
        let leading_zero = digits.first() == Some(&b'0') && (n > 1 || negative);
        if n == 0 || n > 18 || leading_zero || matches!(digits.get(n), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        let value = digits[..n]
            .iter()
            .fold(0i64, |v, d| v * 10 + i64::from(d - b'0'));
        self.at += usize::from(negative) + n;
        Some(if negative { -value } else { value })
    }

    /// The text of the value that starts here, and how many levels of arrays and objects it
    /// nests (0 for a scalar); taken. A forgiving scan: whether the text is JSON is for
    /// serde_json to say when it reads it.
    fn value_text(&mut self) -> Option<(&'t str, usize)> {
        self.ws();
        let start = self.at;
        let (mut depth, mut deepest) = (0usize, 0usize);
        let mut i = start;
        loop {
            match *self.bytes.get(i)? {
                b'"' => {
                    i += 1;
                    loop {
                        i += find_special(self.bytes.get(i..)?)?;
                        match self.bytes[i] {
                            b'"' => break,
                            b'\\' => i += 2,
                            // A control character: serde_json will refuse it.
                            _ => i += 1,
                        }
                    }
                    i += 1;
                    if depth == 0 {
                        break;
                    }
                }
                b'[' | b'{' => {
                    depth += 1;
                    deepest = deepest.max(depth);
                    i += 1;
                }
                b']' | b'}' => {
                    if depth == 0 {
                        break;
                    }
                    depth -= 1;
                    i += 1;
                    if depth == 0 {
                        break;
                    }
                }
                b',' | b' ' | b'\n' | b'\t' | b'\r' if depth == 0 => break,
                _ => i += 1,
            }
        }
        self.at = i;
        // `i` is just past a quote or bracket, or at an ASCII byte: a character boundary.
        Some((&self.text[start..i], deepest))
    }
}

/// The offset of the first byte that ends a plain run of string text — a quote, a backslash
/// or a control character — eight bytes at a time.
#[inline(always)]
fn find_special(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut chunks = bytes.chunks_exact(8);
    let mut i = 0;
    for chunk in &mut chunks {
        let w = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        let quote = w ^ (ONES * u64::from(b'"'));
        let slash = w ^ (ONES * u64::from(b'\\'));
        // The high bit of each byte that is zero (for quote and slash) or below 0x20 (for w):
        // exact for the lowest such byte, which is the one wanted (a borrow only runs upward
        // from a byte that is itself flagged).
        let found = (quote.wrapping_sub(ONES) & !quote
            | slash.wrapping_sub(ONES) & !slash
            | w.wrapping_sub(ONES * 0x20) & !w)
            & HIGH;
        if found != 0 {
            return Some(i + found.trailing_zeros() as usize / 8);
        }
        i += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .map(|p| i + p)
}

/// Reads the document: its fields, `graph`'s entries into the builder (or put off), and what
/// else it holds. None on anything the exact passes must look at.
pub(super) fn document<'t>(c: &mut Cursor<'t>, b: &mut Builder<'t>) -> Option<Top> {
    let mut top = Top::default();
    let mut seen_graph = false;
    c.expect(b'{')?;
    if !c.eat(b'}') {
        loop {
            let field = c.string()?;
            c.expect(b':')?;
            match &*field {
                "plugins" if top.plugins.is_none() => {
                    let plugins = on_its_own(c, 1, PluginsSeed)?;
                    // Loaded now, so the entries after it find their functions.
                    b.plugins = Some(load_plugins(&plugins, b.base_dir).ok()?);
                    top.plugins = Some(plugins);
                }
                "keys" if top.keys.is_none() => {
                    // `null` counts as given: a second `keys` is still a repeated field.
                    let keys = on_its_own(c, 1, std::marker::PhantomData::<Option<Json>>)?;
                    top.keys = Some(keys.unwrap_or(Json::Null));
                }
                "graph" if !seen_graph => {
                    seen_graph = true;
                    graph(c, b)?;
                }
                // Unknown or repeated: an error.
                _ => return None,
            }
            if !c.eat(b',') {
                break;
            }
        }
        c.expect(b'}')?;
    }
    (seen_graph && c.at_end()).then_some(top)
}

/// `graph`'s entries.
fn graph<'t>(c: &mut Cursor<'t>, b: &mut Builder<'t>) -> Option<()> {
    c.expect(b'{')?;
    if c.eat(b'}') {
        return Some(());
    }
    loop {
        let key = c.string()?;
        // Where the entry is read again from, if it is.
        let after = c.at;
        c.expect(b':')?;
        // A key `plain_str` read has no control character, NUL included; a decoded one may.
        let valid = match &key {
            Cow::Borrowed(k) => ValidKey::nul_free(k),
            Cow::Owned(k) => ValidKey::new(k),
        };
        let before = b.graph.id_count();
        let strings = b.unsure_strings.len();
        match add_entry(c, b, valid.ok()?)? {
            // An id interned before is a key put off earlier: defined twice.
            Ok(id) if id.index() as usize == before => {
                if b.unsure_strings.len() > strings {
                    b.unsure.push((id, after, b.unsure_strings.len()));
                }
            }
            Ok(_) => return None,
            Err(Later) => {
                // Read again whole: the strings it met are read again too.
                b.unsure_strings.truncate(strings);
                // Only a key with no escapes lies in the text as it is.
                let Cow::Borrowed(k) = key else {
                    return None;
                };
                if b.graph.id_of(k).is_some() {
                    return None;
                }
                let id = b.graph.intern(k).ok()?;
                b.deferred.push((id, after));
            }
        }
        if !c.eat(b',') {
            break;
        }
    }
    c.expect(b'}')
}

/// An entry that names something not known yet: put off, to be read again.
pub(super) struct Later;

/// Reads the entry `key` (its computation, which starts here) and adds it to the graph: the
/// usual task read here, anything else by serde_json. Nothing is added if it names something
/// not known yet; None if the text is not what the exact passes would accept there.
pub(super) fn add_entry<'t>(
    c: &mut Cursor<'t>,
    b: &mut Builder<'t>,
    key: ValidKey<'_>,
) -> Option<Result<TaskId, Later>> {
    let start = c.at;
    let mut args = Args::new();
    let mut kwargs = Kwargs::new();
    let entry = match task(c, b, &mut args, &mut kwargs) {
        Some(Ok(func)) => {
            if let (Args::Simple(simple), true) = (&mut args, kwargs.is_empty()) {
                // The usual task: added as it is, with no `Entry` built.
                let func = &b.funcs[func as usize];
                let id = b.graph.add_task_simple(Some(key), func, simple);
                return Some(Ok(id.ok()?));
            }
            Ok(Entry::Task { func, args, kwargs })
        }
        Some(Err(Stop::Later)) => return Some(Err(Later)),
        Some(Err(Stop::Bad(_))) => return None,
        None => {
            c.at = start;
            // An entry is two levels down: inside the document and inside `graph`.
            on_its_own(c, 2, Any(EntryShape { b: &mut *b }))?
        }
    };
    match entry {
        Ok(entry) => Some(Ok(b.add(key.as_str(), entry).ok()?)),
        Err(Stop::Later) => Some(Err(Later)),
        Err(Stop::Bad(_)) => None,
    }
}

/// The value that starts here read by serde_json on its own text with `seed`, `levels`
/// levels below the document's top: None if that is not valid JSON or nests deeper than a
/// graph file may.
fn on_its_own<'t, S: DeserializeSeed<'t>>(
    c: &mut Cursor<'t>,
    levels: usize,
    seed: S,
) -> Option<S::Value> {
    let (text, depth) = c.value_text()?;
    if levels + depth > MAX_FILE_DEPTH {
        return None;
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let value = seed.deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(value)
}

/// How deeply lists may nest in a task's arguments read by hand (deeper ones are read by
/// serde_json): far inside the depth limit, so it needs no measuring.
const HAND_LISTS: usize = 4;

/// A task, `{"fn": "alias:symbol", "args": [...], "kwargs": {...}}` (fields in any order,
/// `args` and `kwargs` optional) whose arguments are plain strings, small integers and lists of
/// them: read into `args` and `kwargs` as `read_object` reads it, its function returned. None if
/// the entry is anything else (the cursor is left anywhere), or if its function is wrong (for
/// `read_object` to say how).
fn task<'t>(
    c: &mut Cursor<'t>,
    b: &mut Builder<'t>,
    args: &mut Args,
    kwargs: &mut Kwargs,
) -> Option<Built<u32>> {
    c.ws();
    let start = c.at;
    let mut func: Option<Built<u32>> = None;
    let (mut has_args, mut has_kwargs) = (false, false);
    let mut more = match b.task_opening {
        // Opened as the last task was: the same bytes, read the same way, up to the arguments.
        Some((opening, f)) if c.eat_str(opening.as_bytes()) => {
            func = Some(Ok(f));
            has_args = true;
            arguments(c, b, args)?;
            c.eat(b',')
        }
        _ => {
            c.expect(b'{')?;
            true
        }
    };
    while more {
        // The names as the writers write them; any other spelling ("f\u006e") is read by
        // `read_object`.
        if c.eat_str(b"\"fn\"") && func.is_none() {
            c.expect(b':')?;
            func = Some(b.func(c.plain_str()?));
        } else if c.eat_str(b"\"args\"") && !has_args {
            c.expect(b':')?;
            has_args = true;
            c.expect(b'[')?;
            if let (Some(Ok(f)), false) = (&func, has_kwargs) {
                // `fn` then `args`: how the next task likely opens too.
                b.task_opening = Some((&c.text[start..c.at], *f));
            }
            arguments(c, b, args)?;
        } else if c.eat_str(b"\"kwargs\"") && !has_kwargs {
            c.expect(b':')?;
            has_kwargs = true;
            c.expect(b'{')?;
            if !c.eat(b'}') {
                loop {
                    let name = c.plain_str()?;
                    // `KwargsShape`'s problems (a plain name holds no NUL) are its to report.
                    if name.is_empty() || kwargs.iter().any(|(n, _)| n == name) {
                        return None;
                    }
                    c.expect(b':')?;
                    let value = piece(c, b, HAND_LISTS)?.into_comp();
                    kwargs.push((name.to_string(), value));
                    if !c.eat(b',') {
                        break;
                    }
                }
                c.expect(b'}')?;
            }
        } else {
            return None;
        }
        more = c.eat(b',');
    }
    c.expect(b'}')?;
    // `read_object`'s order: the function first, then the arguments.
    match func? {
        Err(Stop::Bad(_)) => None,
        func => Some(func),
    }
}

/// A task's arguments after `args`' `[`, up to its `]`.
fn arguments<'t>(c: &mut Cursor<'t>, b: &mut Builder<'t>, args: &mut Args) -> Option<()> {
    if !c.eat(b']') {
        loop {
            push_arg(c, b, args)?;
            if !c.eat(b',') {
                break;
            }
        }
        c.expect(b']')?;
    }
    Some(())
}

/// An argument read by hand into `args`, as `ArgsShape` reads it (`piece`, then
/// `Args::push`), with the usual ones — plain strings and small integers while every argument
/// so far was a reference or a literal — pushed straight to the simple arguments.
#[inline]
fn push_arg<'t>(c: &mut Cursor<'t>, b: &mut Builder<'t>, args: &mut Args) -> Option<()> {
    if let Args::Simple(simple) = args {
        if let Some(s) = c.plain_str() {
            match b.string(s) {
                Piece::Ref(id) => simple.push(Arg::Ref(id)),
                Piece::Lit(v) => simple.push(Arg::Lit(v)),
                Piece::Comp(_) => return None,
            }
            return Some(());
        }
        if let Some(i) = c.small_int() {
            simple.push(Arg::Lit(Value::Int(i)));
            return Some(());
        }
    }
    args.push(piece(c, b, HAND_LISTS)?);
    Some(())
}

/// An argument read by hand, as `CompShape` reads it: a plain string (a reference or a
/// string), a small integer, or a list of them (`lists` levels deep at most). None for
/// anything else.
fn piece<'t>(c: &mut Cursor<'t>, b: &mut Builder<'t>, lists: usize) -> Option<Piece> {
    if let Some(s) = c.plain_str() {
        return Some(b.string(s));
    }
    if lists > 0 && c.eat(b'[') {
        let mut items = Vec::new();
        if !c.eat(b']') {
            loop {
                items.push(piece(c, b, lists - 1)?.into_comp());
                if !c.eat(b',') {
                    break;
                }
            }
            c.expect(b']')?;
        }
        return Some(Piece::Comp(Comp::list(items)));
    }
    Some(Piece::Lit(Value::Int(c.small_int()?)))
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};

    use super::find_special;

    /// The eight-at-a-time scan finds what a byte-by-byte one finds, wherever the byte is
    /// and whatever surrounds it (bytes above 0x7f, several special bytes in one word).
    #[test]
    fn find_special_finds_the_first_quote_backslash_or_control_byte() {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        let pool = [
            b'a', b'"', b'\\', 0x00, 0x1f, 0x20, 0x21, 0x7f, 0x80, 0xff, 0xe9, b'5',
        ];
        for _ in 0..20_000 {
            let len = rng.random_range(0..40);
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    if rng.random_range(0..4) == 0 {
                        pool[rng.random_range(0..pool.len())]
                    } else {
                        rng.random_range(0x20..=0xff)
                    }
                })
                .collect();
            let naive = bytes
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20);
            assert_eq!(find_special(&bytes), naive, "{bytes:?}");
        }
    }
}
