//! `daskr_value_t`: values over the C ABI.

use std::ffi::{c_char, c_void};

use super::{arg_str, guard, put, status};
use crate::error::Error;
use crate::ffi::daskr_error_t;
use crate::value::{Kind, Names, Value};

/// A value: null, bool, int64, float64, UTF-8 string, bytes, list of values, an opaque
/// pointer with a type tag and destructor, or a map (UTF-8 names to values, in order). Values are immutable; one may be read from several
/// threads at once. A `daskr_value_t *` you own is freed with `daskr_value_free`; a
/// `const daskr_value_t *` you were handed is borrowed (see each function).
#[repr(transparent)]
pub struct daskr_value_t(pub(crate) Value);

/// The kinds of value.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum daskr_kind_t {
    DASKR_KIND_NULL = 0,
    DASKR_KIND_BOOL = 1,
    DASKR_KIND_INT = 2,
    DASKR_KIND_FLOAT = 3,
    DASKR_KIND_STRING = 4,
    DASKR_KIND_BYTES = 5,
    DASKR_KIND_LIST = 6,
    DASKR_KIND_POINTER = 7,
    DASKR_KIND_MAP = 8,
}

/// Destroys the object behind a pointer value.
pub type daskr_destructor_fn = Option<unsafe extern "C" fn(ptr: *mut c_void)>;

pub(crate) fn boxed(v: Value) -> *mut daskr_value_t {
    Box::into_raw(Box::new(daskr_value_t(v)))
}

/// Takes ownership of an owned value pointer.
pub(crate) unsafe fn take(v: *mut daskr_value_t) -> Option<Value> {
    (!v.is_null()).then(|| Box::from_raw(v).0)
}

/// Borrows a value pointer.
pub(crate) unsafe fn borrow<'a>(v: *const daskr_value_t) -> Option<&'a Value> {
    v.as_ref().map(|v| &v.0)
}

/// A borrowed view of an engine value as a C value.
pub(crate) fn as_c(v: &Value) -> *const daskr_value_t {
    (v as *const Value).cast()
}

/// A new null value. Owned by the caller.
#[no_mangle]
pub extern "C" fn daskr_value_null() -> *mut daskr_value_t {
    guard(|| boxed(Value::Null))
}

/// A new bool value. Owned by the caller.
#[no_mangle]
pub extern "C" fn daskr_value_bool(b: bool) -> *mut daskr_value_t {
    guard(|| boxed(Value::Bool(b)))
}

/// A new int64 value. Owned by the caller.
#[no_mangle]
pub extern "C" fn daskr_value_int(i: i64) -> *mut daskr_value_t {
    guard(|| boxed(Value::Int(i)))
}

/// A new float64 value. Owned by the caller.
#[no_mangle]
pub extern "C" fn daskr_value_float(x: f64) -> *mut daskr_value_t {
    guard(|| boxed(Value::Float(x)))
}

/// A new string value, copying `len` bytes from `s` (which must be UTF-8 and need not be
/// NUL-terminated; NULL is allowed when `len` is 0). On success `*out` is owned by the caller.
#[no_mangle]
pub unsafe extern "C" fn daskr_value_string(
    s: *const c_char,
    len: usize,
    out: *mut *mut daskr_value_t,
) -> *mut daskr_error_t {
    status(|| {
        let bytes = raw_bytes(s.cast(), len, "string")?;
        let v = Value::str_from_utf8(bytes)?;
        put(out, boxed(v), "out")
    })
}

/// A new bytes value, copying `len` bytes from `data` (NULL is allowed when `len` is 0). On
/// success `*out` is owned by the caller.
#[no_mangle]
pub unsafe extern "C" fn daskr_value_bytes(
    data: *const u8,
    len: usize,
    out: *mut *mut daskr_value_t,
) -> *mut daskr_error_t {
    status(|| {
        let bytes = raw_bytes(data, len, "bytes")?;
        put(out, boxed(Value::bytes(bytes)), "out")
    })
}

pub(crate) unsafe fn raw_bytes<'a>(
    p: *const u8,
    len: usize,
    what: &str,
) -> Result<&'a [u8], Error> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(Error::invalid_argument(format!(
            "{what} data is NULL but its length is {len}"
        )));
    }
    Ok(std::slice::from_raw_parts(p, len))
}

/// A new list of `n` values. Takes every `items[i]` (on failure too); `items` itself is
/// borrowed. Fails if an item is NULL or the list would nest deeper than 256 levels. On
/// success `*out` is owned by the caller.
#[no_mangle]
pub unsafe extern "C" fn daskr_value_list(
    items: *const *mut daskr_value_t,
    n: usize,
    out: *mut *mut daskr_value_t,
) -> *mut daskr_error_t {
    status(|| {
        let items = take_all(items, n, "items")?;
        let mut values = Vec::with_capacity(n);
        for (i, item) in items.into_iter().enumerate() {
            values.push(
                item.ok_or_else(|| Error::invalid_argument(format!("list item {i} is NULL")))?,
            );
        }
        put(out, boxed(Value::list(values)?), "out")
    })
}

/// A new map of `n` entries: `names[i]` (UTF-8) to `values[i]`, in this order. Each name is
/// NUL-terminated, or, when `name_lens` is not NULL, `name_lens[i]` bytes long (and may then
/// hold NULs). Takes every `values[i]` (on failure too); `names`, `name_lens` and `values`
/// themselves are borrowed. Fails, naming the entry, if a name is NULL, not UTF-8 or given
/// twice, if a value is NULL, or if the map would nest deeper than 256 levels. On success
/// `*out` is owned by the caller.
#[no_mangle]
pub unsafe extern "C" fn daskr_value_map(
    names: *const *const c_char,
    name_lens: *const usize,
    values: *const *mut daskr_value_t,
    n: usize,
    out: *mut *mut daskr_value_t,
) -> *mut daskr_error_t {
    status(|| {
        let values = take_all(values, n, "values")?;
        let names = map_names(names, name_lens, n)?;
        let mut vals = Vec::with_capacity(n);
        for (i, v) in values.into_iter().enumerate() {
            vals.push(v.ok_or_else(|| {
                Error::invalid_argument(format!("map value {i} (name {:?}) is NULL", names.name(i)))
            })?);
        }
        put(out, boxed(Value::map_of(names.into(), vals)?), "out")
    })
}

/// Reads the `n` names of a map being built over the C ABI (`daskr_value_map`,
/// `daskr_comp_map`), checked.
pub(crate) unsafe fn map_names(
    names: *const *const c_char,
    lens: *const usize,
    n: usize,
) -> Result<Names, Error> {
    if n == 0 {
        return Names::new([]);
    }
    if names.is_null() {
        return Err(Error::invalid_argument(format!(
            "names is NULL but the map has {n} entries"
        )));
    }
    let names = std::slice::from_raw_parts(names, n);
    let mut strs = Vec::with_capacity(n);
    for (i, &p) in names.iter().enumerate() {
        let what = format!("map name {i}");
        strs.push(if lens.is_null() {
            arg_str(p, &what)?
        } else {
            let bytes = raw_bytes(p.cast(), *lens.add(i), &what)?;
            std::str::from_utf8(bytes).map_err(|e| {
                Error::invalid_argument(format!(
                    "{what} is not valid UTF-8 (at byte {})",
                    e.valid_up_to()
                ))
            })?
        });
    }
    Names::new(strs)
}

/// Takes `n` owned value pointers (all of them, before anything can fail).
unsafe fn take_all(
    items: *const *mut daskr_value_t,
    n: usize,
    what: &str,
) -> Result<Vec<Option<Value>>, Error> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if items.is_null() {
        return Err(Error::invalid_argument(format!(
            "{what} is NULL but its length is {n}"
        )));
    }
    Ok(std::slice::from_raw_parts(items, n)
        .iter()
        .map(|&p| take(p))
        .collect())
}

/// A new pointer value owning `ptr`: `destructor(ptr)` (if not NULL) runs exactly once, on
/// whichever thread releases the last reference — when no task, result or graph needs it
/// any more. `tag` names the type (for checks in tasks; NULL means ""). The object must be
/// safe to use and destroy from any thread. On failure nothing is taken: `ptr` stays yours.
#[no_mangle]
pub unsafe extern "C" fn daskr_value_pointer(
    ptr: *mut c_void,
    tag: *const c_char,
    destructor: daskr_destructor_fn,
    out: *mut *mut daskr_value_t,
) -> *mut daskr_error_t {
    status(|| {
        let tag = if tag.is_null() {
            ""
        } else {
            arg_str(tag, "tag")?
        };
        if out.is_null() {
            return Err(Error::invalid_argument("out is NULL"));
        }
        put(out, boxed(Value::pointer(ptr, tag, destructor)), "out")
    })
}

/// The value's kind. `value` must not be NULL (NULL reads as null).
#[no_mangle]
pub unsafe extern "C" fn daskr_value_kind(value: *const daskr_value_t) -> daskr_kind_t {
    use daskr_kind_t::*;
    guard(|| match borrow(value).map(Value::kind) {
        None | Some(Kind::Null) => DASKR_KIND_NULL,
        Some(Kind::Bool) => DASKR_KIND_BOOL,
        Some(Kind::Int) => DASKR_KIND_INT,
        Some(Kind::Float) => DASKR_KIND_FLOAT,
        Some(Kind::Str) => DASKR_KIND_STRING,
        Some(Kind::Bytes) => DASKR_KIND_BYTES,
        Some(Kind::List) => DASKR_KIND_LIST,
        Some(Kind::Pointer) => DASKR_KIND_POINTER,
        Some(Kind::Map) => DASKR_KIND_MAP,
    })
}

impl super::OnPanic for daskr_kind_t {
    fn on_panic(_: String) -> Self {
        daskr_kind_t::DASKR_KIND_NULL
    }
}

/// If `value` is a bool, stores it in `*out` and returns true; otherwise returns false and
/// leaves `*out` alone. (The same holds for every `daskr_value_get_*`.)
#[no_mangle]
pub unsafe extern "C" fn daskr_value_get_bool(value: *const daskr_value_t, out: *mut bool) -> bool {
    guard(|| get(value, out, Value::as_bool))
}

/// If `value` is an int64, stores it in `*out` and returns true.
#[no_mangle]
pub unsafe extern "C" fn daskr_value_get_int(value: *const daskr_value_t, out: *mut i64) -> bool {
    guard(|| get(value, out, Value::as_int))
}

/// If `value` is a float64, stores it in `*out` and returns true.
#[no_mangle]
pub unsafe extern "C" fn daskr_value_get_float(value: *const daskr_value_t, out: *mut f64) -> bool {
    guard(|| get(value, out, Value::as_float))
}

unsafe fn get<T>(
    value: *const daskr_value_t,
    out: *mut T,
    f: impl Fn(&Value) -> Option<T>,
) -> bool {
    match (borrow(value).and_then(f), out.is_null()) {
        (Some(x), false) => {
            out.write(x);
            true
        }
        _ => false,
    }
}

/// If `value` is a string, points `*data` at its bytes (NUL-terminated, borrowed from
/// `value`) and `*len` at its length without the NUL, and returns true. `len` may be NULL.
#[no_mangle]
pub unsafe extern "C" fn daskr_value_get_string(
    value: *const daskr_value_t,
    data: *mut *const c_char,
    len: *mut usize,
) -> bool {
    guard(|| {
        match (
            borrow(value).and_then(Value::as_c_str_bytes),
            data.is_null(),
        ) {
            (Some(b), false) => {
                data.write(b.as_ptr().cast());
                if !len.is_null() {
                    len.write(b.len() - 1);
                }
                true
            }
            _ => false,
        }
    })
}

/// If `value` is bytes, points `*data` at them (borrowed from `value`) and `*len` at their
/// length, and returns true.
#[no_mangle]
pub unsafe extern "C" fn daskr_value_get_bytes(
    value: *const daskr_value_t,
    data: *mut *const u8,
    len: *mut usize,
) -> bool {
    guard(|| {
        match (
            borrow(value).and_then(Value::as_bytes),
            data.is_null(),
            len.is_null(),
        ) {
            (Some(b), false, false) => {
                data.write(b.as_ptr());
                len.write(b.len());
                true
            }
            _ => false,
        }
    })
}

/// The number of items of a list value; 0 for any other kind.
#[no_mangle]
pub unsafe extern "C" fn daskr_value_list_len(value: *const daskr_value_t) -> usize {
    guard(|| {
        borrow(value)
            .and_then(Value::as_list)
            .map_or(0, <[Value]>::len)
    })
}

/// The i-th item of a list value, borrowed from `value`; NULL if `value` is not a list or
/// `i` is out of range.
#[no_mangle]
pub unsafe extern "C" fn daskr_value_list_at(
    value: *const daskr_value_t,
    i: usize,
) -> *const daskr_value_t {
    guard(|| {
        match borrow(value)
            .and_then(Value::as_list)
            .and_then(|l| l.get(i))
        {
            Some(v) => as_c(v),
            None => std::ptr::null(),
        }
    })
}

/// The number of entries of a map value; 0 for any other kind.
#[no_mangle]
pub unsafe extern "C" fn daskr_value_map_len(value: *const daskr_value_t) -> usize {
    guard(|| borrow(value).and_then(Value::as_map).map_or(0, |m| m.len()))
}

/// The name of entry `i` of a map value (NUL-terminated, borrowed from `value`), with its
/// length without the NUL in `*len` (`len` may be NULL; a name may hold NULs); NULL if
/// `value` is not a map or `i` is out of range.
#[no_mangle]
pub unsafe extern "C" fn daskr_value_map_name(
    value: *const daskr_value_t,
    i: usize,
    len: *mut usize,
) -> *const c_char {
    guard(|| match borrow(value).and_then(Value::as_map) {
        Some(m) if i < m.len() => {
            let name = m.names().c_name(i);
            if !len.is_null() {
                len.write(name.len() - 1);
            }
            name.as_ptr().cast()
        }
        _ => std::ptr::null(),
    })
}

/// The value of entry `i` of a map value, borrowed from `value`; NULL if `value` is not a
/// map or `i` is out of range.
#[no_mangle]
pub unsafe extern "C" fn daskr_value_map_value(
    value: *const daskr_value_t,
    i: usize,
) -> *const daskr_value_t {
    guard(|| {
        match borrow(value)
            .and_then(Value::as_map)
            .and_then(|m| m.values().get(i))
        {
            Some(v) => as_c(v),
            None => std::ptr::null(),
        }
    })
}

/// The value named `name` (NUL-terminated) in a map value, borrowed from `value`; NULL if
/// `value` is not a map, `name` is NULL or not UTF-8, or the map has no such name. Maps of a
/// few entries are scanned, larger ones searched through an index.
#[no_mangle]
pub unsafe extern "C" fn daskr_value_map_get(
    value: *const daskr_value_t,
    name: *const c_char,
) -> *const daskr_value_t {
    guard(|| {
        let Ok(name) = arg_str(name, "name") else {
            return std::ptr::null();
        };
        match borrow(value)
            .and_then(Value::as_map)
            .and_then(|m| m.get(name))
        {
            Some(v) => as_c(v),
            None => std::ptr::null(),
        }
    })
}

/// If `value` is a pointer value — and, when `tag` is not NULL, its type tag equals `tag` —
/// stores the pointer in `*out` and returns true. The object stays owned by the value.
#[no_mangle]
pub unsafe extern "C" fn daskr_value_get_pointer(
    value: *const daskr_value_t,
    tag: *const c_char,
    out: *mut *mut c_void,
) -> bool {
    guard(|| {
        let Some(p) = borrow(value).and_then(Value::as_pointer) else {
            return false;
        };
        if !tag.is_null() && std::ffi::CStr::from_ptr(tag).to_bytes() != p.tag().as_bytes() {
            return false;
        }
        if out.is_null() {
            return false;
        }
        out.write(p.ptr());
        true
    })
}

/// The type tag of a pointer value (NUL-terminated, borrowed from `value`: valid while it
/// lives), or NULL for any other kind.
#[no_mangle]
pub unsafe extern "C" fn daskr_value_pointer_tag(value: *const daskr_value_t) -> *const c_char {
    guard(|| match borrow(value).and_then(Value::as_pointer) {
        Some(p) => p.c_tag().as_ptr(),
        None => std::ptr::null(),
    })
}

/// The destructor a pointer value was made with (NULL for none, or for any other kind). A
/// wrapper can compare it with its own to tell the objects it made from foreign ones.
#[no_mangle]
pub unsafe extern "C" fn daskr_value_pointer_destructor(
    value: *const daskr_value_t,
) -> daskr_destructor_fn {
    guard(|| {
        borrow(value)
            .and_then(Value::as_pointer)
            .and_then(|p| p.destructor())
    })
}

/// A new reference to the same value (O(1): values are immutable and shared). Owned by the
/// caller; NULL if `value` is NULL.
#[no_mangle]
pub unsafe extern "C" fn daskr_value_clone(value: *const daskr_value_t) -> *mut daskr_value_t {
    guard(|| match borrow(value) {
        Some(v) => boxed(v.clone()),
        None => std::ptr::null_mut(),
    })
}

/// Structural equality (floats by value, pointers by identity). NULLs are equal only to NULL.
#[no_mangle]
pub unsafe extern "C" fn daskr_value_equal(
    a: *const daskr_value_t,
    b: *const daskr_value_t,
) -> bool {
    guard(|| borrow(a) == borrow(b))
}

/// Frees a value you own. A pointer value's destructor runs if this was its last reference.
/// NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn daskr_value_free(value: *mut daskr_value_t) {
    guard(|| drop(take(value)))
}

/// Encodes `value` in daskr's binary value encoding (docs/value-encoding.md: versioned,
/// compact, the form values take between processes and machines). On success `*out` is a new
/// bytes value holding the message, owned by the caller. Pointer values cannot be encoded
/// (`DASKR_ERROR_INVALID_ARGUMENT`, naming the pointer's type).
#[no_mangle]
pub unsafe extern "C" fn daskr_value_encode(
    value: *const daskr_value_t,
    out: *mut *mut daskr_value_t,
) -> *mut daskr_error_t {
    status(|| {
        let v = borrow(value).ok_or_else(|| Error::invalid_argument("value is NULL"))?;
        let bytes = crate::encode::encode(v)?;
        put(out, boxed(Value::bytes(&bytes)), "out")
    })
}

/// Decodes a message made by `daskr_value_encode` (`len` bytes at `data`). On success `*out`
/// is the value, owned by the caller. Malformed, truncated or too deeply nested input is a
/// `DASKR_ERROR_INVALID_ARGUMENT` saying where; it is never trusted.
#[no_mangle]
pub unsafe extern "C" fn daskr_value_decode(
    data: *const u8,
    len: usize,
    out: *mut *mut daskr_value_t,
) -> *mut daskr_error_t {
    status(|| {
        let bytes = raw_bytes(data, len, "encoded")?;
        let v = crate::encode::decode(bytes)?;
        put(out, boxed(v), "out")
    })
}
