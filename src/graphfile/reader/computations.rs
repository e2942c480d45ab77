//! Computations inside a graph entry: literals, references, lists, tasks and the objects
//! `{"ref"}`, `{"lit"}`, `{"bytes"}` and `{"map"}`, read as they arrive.

use std::borrow::Cow;

use serde::de::{MapAccess, SeqAccess};
use smallvec::SmallVec;

use super::builder::{bad, Args, At, Builder, Built, Entry, Kwargs, Piece, Step};
use super::data::{BytesShape, DataShape};
use super::shape::{drain_map, drain_seq, Any, Shape, Skip, StrSeed};
use crate::comp::Comp;
use crate::value::{Names, Value};

/// An entry's computation (a task kept in pieces).
pub(super) struct EntryShape<'b, 't> {
    pub(super) b: &'b mut Builder<'t>,
}

/// A computation inside an entry.
struct CompShape<'b, 't> {
    b: &'b mut Builder<'t>,
}

fn literal(v: Value) -> Built<Entry> {
    Ok(Entry::Piece(Piece::Lit(v)))
}

impl<'de> Shape<'de> for EntryShape<'_, '_> {
    type Out = Entry;
    fn wrong(self, got: &str) -> Built<Entry> {
        bad(format!("unexpected {got}"))
    }
    fn null(self) -> Built<Entry> {
        literal(Value::Null)
    }
    fn boolean(self, v: bool) -> Built<Entry> {
        literal(Value::Bool(v))
    }
    fn int(self, v: i64) -> Built<Entry> {
        literal(Value::Int(v))
    }
    fn float(self, v: f64) -> Built<Entry> {
        literal(Value::Float(v))
    }
    fn string(self, s: &str, _: bool) -> Built<Entry> {
        Ok(Entry::Piece(self.b.string(s)))
    }
    fn array<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Built<Entry>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(Any(CompShape { b: &mut *self.b }))? {
            match item {
                Ok(p) => items.push(p.into_comp()),
                Err(stop) => {
                    drain_seq(&mut seq)?;
                    return Ok(Err(stop).at(Step::Item(items.len())));
                }
            }
        }
        Ok(Ok(Entry::Piece(Piece::Comp(Comp::list(items)))))
    }
    fn object<A: MapAccess<'de>>(self, map: A) -> std::result::Result<Built<Entry>, A::Error> {
        read_object(self.b, map)
    }
}

impl<'de> Shape<'de> for CompShape<'_, '_> {
    type Out = Piece;
    fn wrong(self, got: &str) -> Built<Piece> {
        bad(format!("unexpected {got}"))
    }
    fn null(self) -> Built<Piece> {
        Ok(Piece::Lit(Value::Null))
    }
    fn boolean(self, v: bool) -> Built<Piece> {
        Ok(Piece::Lit(Value::Bool(v)))
    }
    fn int(self, v: i64) -> Built<Piece> {
        Ok(Piece::Lit(Value::Int(v)))
    }
    fn float(self, v: f64) -> Built<Piece> {
        Ok(Piece::Lit(Value::Float(v)))
    }
    fn string(self, s: &str, _: bool) -> Built<Piece> {
        Ok(self.b.string(s))
    }
    fn array<A: SeqAccess<'de>>(self, seq: A) -> std::result::Result<Built<Piece>, A::Error> {
        let b = self.b;
        Ok(EntryShape { b: &mut *b }.array(seq)?.map(|e| b.piece(e)))
    }
    fn object<A: MapAccess<'de>>(self, map: A) -> std::result::Result<Built<Piece>, A::Error> {
        let b = self.b;
        Ok(read_object(&mut *b, map)?.map(|e| b.piece(e)))
    }
}

impl Builder<'_> {
    /// An entry-level computation as a piece of a bigger one.
    fn piece(&self, e: Entry) -> Piece {
        match e {
            Entry::Piece(p) => p,
            Entry::Task { func, args, kwargs } => Piece::Comp(self.task(func, args, kwargs)),
        }
    }
}

/// The fields an object in a computation may have.
/// (A bit each, to tell a repeated field.)
#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Fn = 1,
    Args = 2,
    Kwargs = 4,
    Ref = 8,
    Lit = 16,
    Bytes = 32,
    Map = 64,
    Other = 0,
}

impl Field {
    fn of(name: &str) -> Field {
        match name.as_bytes() {
            b"fn" => Field::Fn,
            b"args" => Field::Args,
            b"kwargs" => Field::Kwargs,
            b"ref" => Field::Ref,
            b"lit" => Field::Lit,
            b"bytes" => Field::Bytes,
            b"map" => Field::Map,
            _ => Field::Other,
        }
    }
}

/// An object in a computation: a task, `{"ref"}`, `{"lit"}`, `{"bytes"}` or `{"map"}`. Fields may come
/// in any order, so each is read as it comes and what the object is is decided at its end;
/// problems are ranked as the reader always has: a repeated field, then an unknown one, then
/// `fn`, `args`, `kwargs`.
fn read_object<'de, A: MapAccess<'de>>(
    b: &mut Builder<'_>,
    mut map: A,
) -> std::result::Result<Built<Entry>, A::Error> {
    let mut names: SmallVec<[Cow<'de, str>; 4]> = SmallVec::new();
    let mut seen = 0u8;
    let mut twice: Option<usize> = None;
    // The first field a task may not have.
    let mut not_task: Option<usize> = None;
    let mut func: Option<Built<u32>> = None;
    let mut args: Option<Built<Args>> = None;
    let mut kwargs: Option<Built<Kwargs>> = None;
    let mut single: Option<Built<Piece>> = None;
    while let Some(name) = map.next_key_seed(StrSeed)? {
        let field = Field::of(&name);
        if seen & field as u8 != 0 {
            twice.get_or_insert(names.len());
        }
        seen |= field as u8;
        if !matches!(field, Field::Fn | Field::Args | Field::Kwargs) {
            not_task.get_or_insert(names.len());
        }
        names.push(name);
        if twice.is_some() || field == Field::Other {
            map.next_value_seed(Skip)?;
            continue;
        }
        match field {
            Field::Fn => func = Some(map.next_value_seed(Any(FnShape { b: &mut *b }))?),
            Field::Args => args = Some(map.next_value_seed(Any(ArgsShape { b: &mut *b }))?),
            Field::Kwargs => kwargs = Some(map.next_value_seed(Any(KwargsShape { b: &mut *b }))?),
            Field::Ref => {
                let r = map.next_value_seed(Any(RefShape { b: &mut *b }))?;
                single = Some(r.at(Step::Field("ref")));
            }
            Field::Lit => {
                let v = map.next_value_seed(Any(DataShape))?;
                single = Some(v.map(Piece::Lit).at(Step::Field("lit")));
            }
            Field::Bytes => {
                let v = map.next_value_seed(Any(BytesShape))?;
                single = Some(v.map(Piece::Lit).at(Step::Field("bytes")));
            }
            Field::Map => {
                let m = map.next_value_seed(Any(MapShape { b: &mut *b }))?;
                single = Some(m.at(Step::Field("map")));
            }
            Field::Other => unreachable!("skipped above"),
        }
    }
    if let Some(i) = twice {
        // The last of repeated fields would win unseen: a reader of the file could take it
        // for another computation than the one run.
        return Ok(bad(format!("the field \"{}\" is given twice", names[i])));
    }
    if let Some(func) = func {
        if let Some(i) = not_task {
            return Ok(bad(format!(
                "a task has the unknown field '{}' (expected fn, args, kwargs)",
                names[i]
            )));
        }
        let func = match func.at(Step::Field("fn")) {
            Ok(f) => f,
            Err(stop) => return Ok(Err(stop)),
        };
        let args = match args.unwrap_or(Ok(Args::new())) {
            Ok(a) => a,
            Err(stop) => return Ok(Err(stop)),
        };
        let kwargs = match kwargs.unwrap_or(Ok(Kwargs::new())) {
            Ok(k) => k,
            Err(stop) => return Ok(Err(stop)),
        };
        return Ok(Ok(Entry::Task { func, args, kwargs }));
    }
    let only = |field: &str| -> Option<Built<Entry>> {
        let others: Vec<&str> = names.iter().map(|n| &**n).filter(|n| *n != field).collect();
        (!others.is_empty()).then(|| {
            bad(format!(
                "{{\"{field}\": ...}} must have no other field (found: {})",
                others.join(", ")
            ))
        })
    };
    for field in ["ref", "lit", "bytes", "map"] {
        if names.iter().any(|n| n == field) {
            if let Some(problem) = only(field) {
                return Ok(problem);
            }
            return Ok(single.expect("read with its field").map(Entry::Piece));
        }
    }
    Ok(bad(format!(
        "an object must be a task {{\"fn\": \"alias:symbol\", ...}}, {{\"ref\": key}}, \
         {{\"lit\": value}}, {{\"bytes\": base64}} or {{\"map\": {{name: computation, ...}}}}; \
         this one has {}",
        if names.is_empty() {
            "no field".to_string()
        } else {
            format!("the fields: {}", names.join(", "))
        }
    )))
}

/// A task's `fn`: "alias:symbol".
struct FnShape<'b, 't> {
    b: &'b mut Builder<'t>,
}

impl<'de> Shape<'de> for FnShape<'_, '_> {
    type Out = u32;
    fn wrong(self, got: &str) -> Built<u32> {
        bad(format!("expected \"alias:symbol\" (a string), got {got}"))
    }
    fn string(self, s: &str, _: bool) -> Built<u32> {
        self.b.func(s)
    }
}

/// A task's `args`: an array of computations.
struct ArgsShape<'b, 't> {
    b: &'b mut Builder<'t>,
}

impl<'de> Shape<'de> for ArgsShape<'_, '_> {
    type Out = Args;
    fn wrong(self, got: &str) -> Built<Args> {
        bad(format!("expected an array, got {got}")).at(Step::Field("args"))
    }
    fn array<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Built<Args>, A::Error> {
        let mut args = Args::new();
        while let Some(arg) = seq.next_element_seed(Any(CompShape { b: &mut *self.b }))? {
            match arg {
                Ok(p) => args.push(p),
                Err(stop) => {
                    drain_seq(&mut seq)?;
                    return Ok(Err(stop).at(Step::Arg(args.len())));
                }
            }
        }
        Ok(Ok(args))
    }
}

/// A task's `kwargs`: an object of computations.
struct KwargsShape<'b, 't> {
    b: &'b mut Builder<'t>,
}

impl<'de> Shape<'de> for KwargsShape<'_, '_> {
    type Out = Kwargs;
    fn wrong(self, got: &str) -> Built<Kwargs> {
        bad(format!(
            "expected an object of keyword arguments, got {got}"
        ))
        .at(Step::Field("kwargs"))
    }
    fn object<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Built<Kwargs>, A::Error> {
        let mut kwargs = Kwargs::new();
        while let Some(name) = map.next_key_seed(StrSeed)? {
            let step = || Step::Kwarg(name.to_string());
            let problem = if name.is_empty() || name.contains('\0') {
                Some(bad("a keyword name must be non-empty and hold no NUL"))
            } else if kwargs.iter().any(|(n, _)| *n == *name) {
                Some(bad("the keyword argument is given twice"))
            } else {
                None
            };
            if let Some(problem) = problem {
                map.next_value_seed(Skip)?;
                drain_map(&mut map)?;
                return Ok(problem.at(step()));
            }
            match map.next_value_seed(Any(CompShape { b: &mut *self.b }))? {
                Ok(p) => kwargs.push((name.into_owned(), p.into_comp())),
                Err(stop) => {
                    drain_map(&mut map)?;
                    return Ok(Err(stop).at(step()));
                }
            }
        }
        Ok(Ok(kwargs))
    }
}

/// `{"ref": key}`'s key.
struct RefShape<'b, 't> {
    b: &'b mut Builder<'t>,
}

impl<'de> Shape<'de> for RefShape<'_, '_> {
    type Out = Piece;
    fn wrong(self, got: &str) -> Built<Piece> {
        bad(format!(
            "expected the key referred to (a string), got {got}"
        ))
    }
    fn string(self, s: &str, _: bool) -> Built<Piece> {
        self.b.reference(s)
    }
}

/// `{"map": {...}}`'s object: names to computations. A map whose values are all literals is
/// a literal map (nothing to evaluate per run).
struct MapShape<'b, 't> {
    b: &'b mut Builder<'t>,
}

impl<'de> Shape<'de> for MapShape<'_, '_> {
    type Out = Piece;
    fn wrong(self, got: &str) -> Built<Piece> {
        bad(format!(
            "expected an object of names to computations, got {got}"
        ))
    }
    fn object<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Built<Piece>, A::Error> {
        let mut names: Vec<Cow<'de, str>> = Vec::new();
        let mut pieces = Vec::new();
        while let Some(name) = map.next_key_seed(StrSeed)? {
            match map.next_value_seed(Any(CompShape { b: &mut *self.b }))? {
                Ok(p) => {
                    names.push(name);
                    pieces.push(p);
                }
                Err(stop) => {
                    drain_map(&mut map)?;
                    return Ok(Err(stop).at(Step::Entry(name.into_owned())));
                }
            }
        }
        let names = match Names::new(names.iter().map(|n| &**n)) {
            Ok(names) => names,
            Err(e) => return Ok(bad(e.message)),
        };
        if pieces.iter().all(|p| matches!(p, Piece::Lit(_))) {
            let values = pieces
                .into_iter()
                .map(|p| match p {
                    Piece::Lit(v) => v,
                    _ => unreachable!("checked above: literals"),
                })
                .collect();
            return Ok(Value::map_of(names.into(), values)
                .map(Piece::Lit)
                .or_else(|e| bad(e.message)));
        }
        let comps = pieces.into_iter().map(Piece::into_comp).collect();
        Ok(Ok(Piece::Comp(Comp::map_of(names, comps))))
    }
}
