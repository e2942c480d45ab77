//! Values: what tasks take and return, and what `get` hands back.
//!
//! A `Value` is 16 bytes: scalars live inline (no allocation per task result), strings, bytes,
//! lists and maps sit behind one thin reference-counted pointer, so cloning any value is O(1) and
//! a value can be shared by several consumers without copying. Values are immutable.

use std::cell::{Cell, RefCell};
use std::ffi::c_void;
use std::fmt;
use std::sync::Arc;

use triomphe::ThinArc;

use crate::error::{Error, ErrorKind, Result};
pub use crate::map_names::Names;

/// How deeply lists and maps may nest inside one value (and computations inside one graph entry).
/// Bounding it keeps every recursive walk (drop, clone-free printing, evaluation) far from a
/// stack overflow; deeper input gets a clear error instead.
pub const MAX_NESTING: u32 = 256;

/// A UTF-8 string (stored with a trailing NUL so C can use it directly), bytes, or a list.
type Text = ThinArc<(), u8>;
type Blob = ThinArc<(), u8>;
type Items = ThinArc<u32, Value>; // header: nesting depth of the list (1 = holds no list)
type Entries = ThinArc<MapHeader, Value>; // the map's values, in the order of its names

/// What a map value holds besides its values: its nesting depth (as a list's header) and its
/// names, shared with every map built from the same names (a map computation checks its
/// names once, when it is added, and each evaluation reuses them).
pub struct MapHeader {
    depth: u32,
    names: Arc<Names>,
}

#[derive(Clone)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Text),
    Bytes(Blob),
    List(Items),
    Pointer(Arc<Opaque>),
    /// An ordered map from UTF-8 names to values (Dask's dict).
    Map(Entries),
}

/// What kind of value a `Value` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Null,
    Bool,
    Int,
    Float,
    Str,
    Bytes,
    List,
    Pointer,
    Map,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Null => "null",
            Kind::Bool => "bool",
            Kind::Int => "int",
            Kind::Float => "float",
            Kind::Str => "string",
            Kind::Bytes => "bytes",
            Kind::List => "list",
            Kind::Pointer => "pointer",
            Kind::Map => "map",
        }
    }
}

/// A foreign object owned by daskr: the pointer, a type tag naming what it points to, and
/// the destructor run exactly once, when the last value referring to it is released.
pub struct Opaque {
    ptr: *mut c_void,
    /// The tag followed by a NUL (for C).
    tag: Box<std::ffi::CStr>,
    destructor: Option<unsafe extern "C" fn(*mut c_void)>,
}

// SAFETY: the creator of a pointer value promises (in the header) that the object may be used
// and destroyed from any thread; daskr itself never dereferences `ptr`.
unsafe impl Send for Opaque {}
unsafe impl Sync for Opaque {}

impl Opaque {
    pub fn ptr(&self) -> *mut c_void {
        self.ptr
    }
    pub fn tag(&self) -> &str {
        // SAFETY: built from a &str in `Value::pointer`.
        unsafe { std::str::from_utf8_unchecked(self.tag.to_bytes()) }
    }
    pub fn c_tag(&self) -> &std::ffi::CStr {
        &self.tag
    }
    /// The destructor given when the value was made (a wrapper can tell its own objects by it).
    pub fn destructor(&self) -> Option<unsafe extern "C" fn(*mut c_void)> {
        self.destructor
    }
}

impl Drop for Opaque {
    fn drop(&mut self) {
        if let Some(destructor) = self.destructor {
            let postponed = DEFERRED.with(|d| {
                let deferring = d.depth.get() > 0;
                if deferring {
                    d.list.borrow_mut().push((self.ptr as usize, destructor));
                }
                deferring
            });
            if !postponed {
                // SAFETY: the destructor was supplied with this pointer by the value's creator,
                // and Arc guarantees this runs once.
                unsafe { destructor(self.ptr) }
            }
        }
    }
}

type Destructor = unsafe extern "C" fn(*mut c_void);

/// Destructors postponed by `defer_destructors` on one thread. One thread-local (not two):
/// in a shared library each access is a call to the TLS resolver, on the add hot path.
struct Deferred {
    /// How many `defer_destructors` calls are running on this thread.
    depth: Cell<u32>,
    list: RefCell<Vec<(usize, Destructor)>>,
}

thread_local! {
    static DEFERRED: Deferred = const { Deferred { depth: Cell::new(0), list: RefCell::new(Vec::new()) } };
}

/// Runs `f`, postponing the destructors of pointer values dropped on this thread meanwhile
/// until `f` has returned (even by unwinding). Destructors are user code: this keeps them out
/// of sections that hold a lock they might need (a destructor may call back into daskr).
pub(crate) fn defer_destructors<R>(f: impl FnOnce() -> R) -> R {
    struct Leave;
    impl Drop for Leave {
        fn drop(&mut self) {
            let list = DEFERRED.with(|d| {
                d.depth.set(d.depth.get() - 1);
                if d.depth.get() == 0 && !d.list.borrow().is_empty() {
                    std::mem::take(&mut *d.list.borrow_mut())
                } else {
                    Vec::new()
                }
            });
            for (ptr, destructor) in list {
                // SAFETY: postponed from Opaque::drop, which runs once per object.
                unsafe { destructor(ptr as *mut c_void) }
            }
        }
    }
    DEFERRED.with(|d| d.depth.set(d.depth.get() + 1));
    let _leave = Leave;
    f()
}

impl Value {
    /// A string value (copied).
    pub fn str(s: &str) -> Value {
        let mut with_nul = Vec::with_capacity(s.len() + 1);
        with_nul.extend_from_slice(s.as_bytes());
        with_nul.push(0);
        Value::Str(ThinArc::from_header_and_slice((), &with_nul))
    }

    /// A string value from bytes that must be UTF-8.
    pub fn str_from_utf8(bytes: &[u8]) -> Result<Value> {
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(Value::str(s)),
            Err(e) => Err(Error::invalid_argument(format!(
                "string is not valid UTF-8 (invalid byte at offset {})",
                e.valid_up_to()
            ))),
        }
    }

    /// A bytes value (copied).
    pub fn bytes(b: &[u8]) -> Value {
        Value::Bytes(ThinArc::from_header_and_slice((), b))
    }

    /// A list value; fails if it would nest deeper than [`MAX_NESTING`].
    pub fn list(items: Vec<Value>) -> Result<Value> {
        let depth = Value::list_depth(items.iter())?;
        Ok(Value::List(ThinArc::from_header_and_iter(
            depth,
            items.into_iter(),
        )))
    }

    /// A list value holding new references to `items` (read twice: their depth, then the
    /// copies), without a vector in between.
    pub(crate) fn list_of<'a, I>(items: I) -> Result<Value>
    where
        I: ExactSizeIterator<Item = &'a Value> + Clone,
    {
        let depth = Value::list_depth(items.clone())?;
        Ok(Value::List(ThinArc::from_header_and_iter(
            depth,
            items.cloned(),
        )))
    }

    /// The depth of a list of `items`, if within the limit.
    fn list_depth<'a>(items: impl Iterator<Item = &'a Value>) -> Result<u32> {
        let depth = 1 + items.map(Value::depth).max().unwrap_or(0);
        if depth > MAX_NESTING {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("list nests {depth} levels deep; the limit is {MAX_NESTING}"),
            ));
        }
        Ok(depth)
    }

    /// A map value of `entries`, in order; fails on a name given twice (naming it) or if it
    /// would nest deeper than [`MAX_NESTING`].
    pub fn map<S: AsRef<str>>(entries: Vec<(S, Value)>) -> Result<Value> {
        let names = Names::new(entries.iter().map(|(n, _)| n.as_ref()))?;
        Value::map_of(
            Arc::new(names),
            entries.into_iter().map(|(_, v)| v).collect(),
        )
    }

    /// A map value of checked `names` and their `values` (as many, in the same order); fails
    /// if it would nest deeper than [`MAX_NESTING`].
    pub fn map_of(names: Arc<Names>, values: Vec<Value>) -> Result<Value> {
        if names.len() != values.len() {
            return Err(Error::invalid_argument(format!(
                "a map of {} names given {} values",
                names.len(),
                values.len()
            )));
        }
        let depth = 1 + values.iter().map(Value::depth).max().unwrap_or(0);
        if depth > MAX_NESTING {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("map nests {depth} levels deep; the limit is {MAX_NESTING}"),
            ));
        }
        Ok(Value::Map(ThinArc::from_header_and_iter(
            MapHeader { depth, names },
            values.into_iter(),
        )))
    }

    /// An opaque pointer value; `destructor` (if any) runs once when the last reference goes.
    pub fn pointer(
        ptr: *mut c_void,
        tag: &str,
        destructor: Option<unsafe extern "C" fn(*mut c_void)>,
    ) -> Value {
        let tag =
            std::ffi::CString::new(tag.replace('\0', "\u{fffd}")).expect("NULs were replaced");
        Value::Pointer(Arc::new(Opaque {
            ptr,
            tag: tag.into_boxed_c_str(),
            destructor,
        }))
    }

    pub fn kind(&self) -> Kind {
        match self {
            Value::Null => Kind::Null,
            Value::Bool(_) => Kind::Bool,
            Value::Int(_) => Kind::Int,
            Value::Float(_) => Kind::Float,
            Value::Str(_) => Kind::Str,
            Value::Bytes(_) => Kind::Bytes,
            Value::List(_) => Kind::List,
            Value::Pointer(_) => Kind::Pointer,
            Value::Map(_) => Kind::Map,
        }
    }

    /// Nesting depth: 0 for anything but a list or a map.
    pub fn depth(&self) -> u32 {
        match self {
            Value::List(items) => items.header.header,
            Value::Map(entries) => entries.header.header.depth,
            _ => 0,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
    pub fn as_float(&self) -> Option<f64> {
        match self {
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(t) => {
                let with_nul = &t.slice;
                // SAFETY: only `Value::str` builds `Str`, from a &str plus one NUL byte.
                Some(unsafe { std::str::from_utf8_unchecked(&with_nul[..with_nul.len() - 1]) })
            }
            _ => None,
        }
    }
    /// The string's bytes followed by a NUL (for C callers).
    pub fn as_c_str_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Str(t) => Some(&t.slice),
            _ => None,
        }
    }
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(&b.slice),
            _ => None,
        }
    }
    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(items) => Some(&items.slice),
            _ => None,
        }
    }
    pub fn as_map(&self) -> Option<Map<'_>> {
        match self {
            Value::Map(entries) => Some(Map {
                names: &entries.header.header.names,
                values: &entries.slice,
            }),
            _ => None,
        }
    }
    pub fn as_pointer(&self) -> Option<&Opaque> {
        match self {
            Value::Pointer(p) => Some(p),
            _ => None,
        }
    }

    /// The error a typed accessor reports when the value has another kind.
    pub fn type_error(&self, wanted: Kind) -> Error {
        Error::new(
            ErrorKind::TypeMismatch,
            format!(
                "expected a {} value, got {}",
                wanted.name(),
                self.kind().name()
            ),
        )
    }
}

impl PartialEq for Value {
    /// Structural equality; floats compare by value, pointers by identity.
    fn eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Null, Value::Null) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Float(a), Value::Float(b)) => a == b,
            (Value::Str(a), Value::Str(b)) => a.slice == b.slice,
            (Value::Bytes(a), Value::Bytes(b)) => a.slice == b.slice,
            (Value::List(a), Value::List(b)) => a.slice == b.slice,
            (Value::Pointer(a), Value::Pointer(b)) => Arc::ptr_eq(a, b),
            (Value::Map(a), Value::Map(b)) => {
                let (na, nb) = (&a.header.header.names, &b.header.header.names);
                if Arc::ptr_eq(na, nb) || na == nb {
                    a.slice == b.slice
                } else {
                    // Like Python's dicts and Go's maps: the same names with equal values, in
                    // whatever order.
                    let (a, b) = (
                        self.as_map().expect("a map"),
                        other.as_map().expect("a map"),
                    );
                    a.len() == b.len() && a.iter().all(|(name, v)| b.get(name) == Some(v))
                }
            }
            _ => false,
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => write!(f, "null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x:?}"),
            Value::Str(_) => write!(f, "{:?}", self.as_str().unwrap_or_default()),
            Value::Bytes(b) => write!(f, "b{:?}", String::from_utf8_lossy(&b.slice)),
            Value::List(items) => f.debug_list().entries(&items.slice).finish(),
            Value::Pointer(p) => write!(f, "<pointer {} {:p}>", p.tag(), p.ptr()),
            Value::Map(_) => f
                .debug_map()
                .entries(self.as_map().expect("a map").iter())
                .finish(),
        }
    }
}

/// A map value's names and values, borrowed from it.
#[derive(Clone, Copy)]
pub struct Map<'v> {
    names: &'v Names,
    values: &'v [Value],
}

impl<'v> Map<'v> {
    pub fn len(&self) -> usize {
        self.values.len()
    }
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
    pub fn names(&self) -> &'v Names {
        self.names
    }
    pub fn values(&self) -> &'v [Value] {
        self.values
    }
    /// Name `i` (None out of range).
    pub fn name(&self, i: usize) -> Option<&'v str> {
        (i < self.len()).then(|| self.names.name(i))
    }
    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&'v Value> {
        self.names.find(name).map(|i| &self.values[i])
    }
    /// The entries, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&'v str, &'v Value)> + 'v {
        let (names, values) = (self.names, self.values);
        (0..values.len()).map(move |i| (names.name(i), &values[i]))
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Int(i)
    }
}
impl From<f64> for Value {
    fn from(x: f64) -> Value {
        Value::Float(x)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}
impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::str(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn value_is_sixteen_bytes() {
        assert_eq!(std::mem::size_of::<Value>(), 16);
        assert_eq!(std::mem::size_of::<Option<Value>>(), 16);
    }

    #[test]
    fn strings_keep_a_nul_for_c() {
        let v = Value::str("héllo");
        assert_eq!(v.as_str(), Some("héllo"));
        assert_eq!(v.as_c_str_bytes().unwrap().last(), Some(&0));
        assert!(Value::str_from_utf8(b"\xff").is_err());
        assert_eq!(v.as_int(), None);
    }

    #[test]
    fn list_depth_is_limited() {
        let mut v = Value::Int(1);
        for _ in 0..MAX_NESTING {
            v = Value::list(vec![v]).unwrap();
        }
        assert_eq!(v.depth(), MAX_NESTING);
        let err = Value::list(vec![v]).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidArgument);
    }

    static DROPS: AtomicUsize = AtomicUsize::new(0);
    unsafe extern "C" fn count_drop(_p: *mut c_void) {
        DROPS.fetch_add(1, Ordering::SeqCst);
    }

    #[test]
    fn pointer_destructor_runs_once_after_last_clone() {
        let v = Value::pointer(8 as *mut c_void, "thing", Some(count_drop));
        let w = v.clone();
        let l = Value::list(vec![v, w.clone()]).unwrap();
        drop(w);
        assert_eq!(DROPS.load(Ordering::SeqCst), 0);
        assert_eq!(l.as_list().unwrap()[0].as_pointer().unwrap().tag(), "thing");
        drop(l);
        assert_eq!(DROPS.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn maps_keep_order_refuse_a_name_twice_and_nest_like_lists() {
        let m = Value::map(vec![("b", Value::Int(1)), ("a", Value::str("x"))]).unwrap();
        let map = m.as_map().unwrap();
        assert_eq!(map.iter().map(|(n, _)| n).collect::<Vec<_>>(), ["b", "a"]);
        assert_eq!(map.get("a"), Some(&Value::str("x")));
        assert_eq!(map.get("c"), None);
        assert_eq!(map.name(2), None);
        assert_eq!(m.kind().name(), "map");
        assert_eq!(m.depth(), 1);
        let e = Value::map(vec![("k", Value::Null), ("k", Value::Null)]).unwrap_err();
        assert!(e.message.contains("\"k\" is given twice"), "{}", e.message);

        let mut v = Value::Int(1);
        for i in 0..MAX_NESTING {
            v = if i % 2 == 0 {
                Value::map(vec![("x", v)]).unwrap()
            } else {
                Value::list(vec![v]).unwrap()
            };
        }
        assert_eq!(v.depth(), MAX_NESTING);
        let err = Value::map(vec![("deep", v.clone())]).unwrap_err();
        assert!(err.message.contains("nests"), "{}", err.message);
        assert!(Value::list(vec![v]).is_err());
    }

    #[test]
    fn maps_are_equal_by_entries_in_any_order() {
        let ab = Value::map(vec![("a", Value::Int(1)), ("b", Value::Int(2))]).unwrap();
        let ba = Value::map(vec![("b", Value::Int(2)), ("a", Value::Int(1))]).unwrap();
        let ab2 = Value::map(vec![("a", Value::Int(1)), ("b", Value::Int(3))]).unwrap();
        let a = Value::map(vec![("a", Value::Int(1))]).unwrap();
        assert_eq!(ab, ab.clone());
        assert_eq!(ab, ba);
        assert_ne!(ab, ab2);
        assert_ne!(ab, a);
        assert_ne!(a, ab);
        assert_ne!(a, Value::list(vec![Value::Int(1)]).unwrap());
        assert_eq!(format!("{ba:?}"), r#"{"b": 2, "a": 1}"#);
    }

    static MAP_DROPS: AtomicUsize = AtomicUsize::new(0);
    unsafe extern "C" fn count_map_drop(_p: *mut c_void) {
        MAP_DROPS.fetch_add(1, Ordering::SeqCst);
    }

    #[test]
    fn a_pointer_in_a_map_is_released_once() {
        let p = Value::pointer(8 as *mut c_void, "thing", Some(count_map_drop));
        let m = Value::map(vec![("p", p.clone()), ("q", p)]).unwrap();
        let outer = Value::map(vec![("m", m.clone()), ("again", m.clone())]).unwrap();
        drop(m);
        assert_eq!(MAP_DROPS.load(Ordering::SeqCst), 0);
        drop(outer.clone());
        assert_eq!(MAP_DROPS.load(Ordering::SeqCst), 0);
        drop(outer);
        assert_eq!(MAP_DROPS.load(Ordering::SeqCst), 1);
        // A map refused (a name twice) releases what it was given.
        let p = Value::pointer(9 as *mut c_void, "thing", Some(count_map_drop));
        assert!(Value::map(vec![("x", p.clone()), ("x", p)]).is_err());
        assert_eq!(MAP_DROPS.load(Ordering::SeqCst), 2);
    }
}
