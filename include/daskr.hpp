// daskr.hpp: a header-only C++17 wrapper over the daskr C ABI (include/daskr.h).
//
//   daskr::Graph g;
//   auto x = g.add_value("x", 1);                                    // 'x': 1
//   auto inc = daskr::Func("inc", [](daskr::Call &c) { return c.arg<int64_t>(0) + 1; });
//   g.add_task("y", inc, {x});                                       // 'y': (inc, 'x')
//   int64_t y = g.get("y").as<int64_t>();                            // 2
//
// What it gives:
//  - RAII, move-only handles: Graph, Value, Func, Comp (a computation being built), Cancel.
//    Every C object is freed exactly once, on every path (including exceptions).
//  - Any callable as a task: a lambda (with captures), a std::function, a function object.
//    It is called as `f(daskr::Call &)`; whatever it returns becomes the task's result (see
//    `to_value` below for what converts), `void` returns null (or what `call.ret` set).
//    One C trampoline adapts them all; the callable is owned by the daskr_func_t (freed
//    through daskr_func_new's free function when the last graph using it is gone).
//  - Exceptions both ways: a failed get or build call throws daskr::Error (kind, key, keys,
//    message); an exception thrown inside a task is caught by the trampoline and becomes
//    that task's failure (its what() is the message) -- it never unwinds into Rust.
//  - C++ objects as values: return a std::unique_ptr<T> (or daskr::Value::object) and the
//    object travels as a pointer value tagged with its type; the value deletes it exactly
//    once. Reading it back (`call.object<T>(0)`, `value.object<T>()`) checks the tag.
//  - daskr::key("x", 0, 1) renders a Dask tuple key as one canonical string: "('x', 0, 1)".
//
// Threading: a task may run on any of daskr's threads, concurrently with itself; a callable
// that mutates captured state must synchronise. Callbacks are never concurrent with each
// other. Graph::get may run from several threads at once on one graph; changing a graph
// while a get runs throws Error(DASKR_ERROR_GRAPH_IN_USE).

#ifndef DASKR_HPP
#define DASKR_HPP

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <initializer_list>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <unordered_map>
#include <utility>
#include <vector>

#include "daskr.h"

// An error path kept out of the hot function that checks for it.
#if defined(__GNUC__)
#define DASKR_DETAIL_COLD __attribute__((noinline, cold))
#else
#define DASKR_DETAIL_COLD
#endif

namespace daskr {

class Value;
class ValueView;
class MapView;
struct MapEntry;
class Call;

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// An error from daskr (or from this wrapper, e.g. a value of the wrong type). Copies the
/// C error's kind, key, keys and message; the daskr_error_t itself is freed on the spot.
class Error : public std::exception {
public:
    Error(daskr_error_kind_t kind, std::string message, std::optional<std::string> key = std::nullopt,
          std::vector<std::string> keys = {})
        : kind_(kind), key_(std::move(key)), keys_(std::move(keys)), message_(std::move(message)) {
        what_ = std::string(kind_name()) + ": " + message_;
    }

    /// Takes `e` (frees it) and copies what it says.
    static Error take(daskr_error_t *e) {
        std::unique_ptr<daskr_error_t, decltype(&daskr_error_free)> owned(e, &daskr_error_free);
        const char *k = daskr_error_key(e);
        std::vector<std::string> keys;
        for (size_t i = 0, n = daskr_error_keys_len(e); i < n; i++) {
            const char *s = daskr_error_keys_at(e, i);
            keys.emplace_back(s ? s : "");
        }
        const char *m = daskr_error_message(e);
        return Error(daskr_error_kind(e), m ? m : "", k ? std::optional<std::string>(k) : std::nullopt,
                     std::move(keys));
    }

    daskr_error_kind_t kind() const noexcept { return kind_; }
    /// The stable name of the kind: "task_failed", "cycle", "missing_key", ...
    const char *kind_name() const noexcept {
        const char *n = daskr_error_kind_name(kind_);
        return n ? n : "unknown";
    }
    /// The key at fault, if the error is about one key.
    const std::optional<std::string> &key() const noexcept { return key_; }
    /// Other keys involved: the keys on a cycle, the missing dependency.
    const std::vector<std::string> &keys() const noexcept { return keys_; }
    /// daskr's message (it names the key and what went wrong).
    const std::string &message() const noexcept { return message_; }
    /// "<kind>: <message>".
    const char *what() const noexcept override { return what_.c_str(); }

private:
    daskr_error_kind_t kind_;
    std::optional<std::string> key_;
    std::vector<std::string> keys_;
    std::string message_;
    std::string what_;
};

namespace detail {
/// Throws the error if there is one (taking it).
inline void check(daskr_error_t *e) {
    if (e) throw Error::take(e);
}

[[noreturn]] inline void type_error(std::string message) {
    throw Error(DASKR_ERROR_TYPE_MISMATCH, std::move(message));
}

inline const char *kind_str(daskr_kind_t k) {
    switch (k) {
    case DASKR_KIND_NULL: return "null";
    case DASKR_KIND_BOOL: return "bool";
    case DASKR_KIND_INT: return "int";
    case DASKR_KIND_FLOAT: return "float";
    case DASKR_KIND_STRING: return "string";
    case DASKR_KIND_BYTES: return "bytes";
    case DASKR_KIND_LIST: return "list";
    case DASKR_KIND_POINTER: return "pointer";
    case DASKR_KIND_MAP: return "map";
    }
    return "unknown";
}

struct ValueDeleter {
    void operator()(daskr_value_t *v) const noexcept { daskr_value_free(v); }
};
using ValuePtr = std::unique_ptr<daskr_value_t, ValueDeleter>;

template <class T> struct is_vector : std::false_type {};
template <class T, class A> struct is_vector<std::vector<T, A>> : std::true_type {};
/// std::map<std::string, U> and std::unordered_map<std::string, U>: converted to and from
/// map values.
template <class T> struct is_string_map : std::false_type {};
template <class U, class C, class A> struct is_string_map<std::map<std::string, U, C, A>> : std::true_type {};
template <class U, class H, class E, class A>
struct is_string_map<std::unordered_map<std::string, U, H, E, A>> : std::true_type {};
template <class T> struct is_map_ordered : std::false_type {};
template <class U, class C, class A> struct is_map_ordered<std::map<std::string, U, C, A>> : std::true_type {};
template <class T> struct is_optional : std::false_type {};
template <class T> struct is_optional<std::optional<T>> : std::true_type {};
template <class T> struct is_unique_ptr : std::false_type {};
template <class T> struct is_unique_ptr<std::unique_ptr<T>> : std::true_type {};
template <class T> inline constexpr bool dependent_false = false;
} // namespace detail

// ---------------------------------------------------------------------------------------
// Type tags for C++ objects carried as pointer values
// ---------------------------------------------------------------------------------------

/// The tag a C++ object of type T carries inside a pointer value: by default its
/// `typeid(T).name()` (stable within one program and across libraries built by the same
/// compiler). Give a type a readable or cross-compiler name with DASKR_TYPE_TAG(T, "name")
/// at global scope, or pass a tag explicitly to Value::object.
template <class T> struct type_tag {
    static std::string name() { return typeid(T).name(); }
};

#define DASKR_TYPE_TAG(TYPE, NAME)                        \
    template <> struct daskr::type_tag<TYPE> {            \
        static std::string name() { return (NAME); }      \
    }

namespace detail {
template <class T> void delete_object(void *p) noexcept { delete static_cast<T *>(p); }
} // namespace detail

/// Bytes (a bytes value), as opposed to a list of small ints.
struct Bytes {
    std::vector<std::uint8_t> data;
    Bytes() = default;
    explicit Bytes(std::vector<std::uint8_t> d) : data(std::move(d)) {}
    Bytes(const void *p, size_t n)
        : data(static_cast<const std::uint8_t *>(p), static_cast<const std::uint8_t *>(p) + n) {}
    explicit Bytes(std::string_view s) : Bytes(s.data(), s.size()) {}
    bool operator==(const Bytes &o) const { return data == o.data; }
};

/// Borrowed bytes inside a value (valid while the value lives).
struct BytesView {
    const std::uint8_t *data = nullptr;
    size_t size = 0;
    std::string_view str() const { return {reinterpret_cast<const char *>(data), size}; }
};

// ---------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------

template <class T> struct from_value; // specialised below for every readable type

namespace detail {
/// `ValueView::get<T>`: T if `v` is one, in one C call.
template <class T> std::optional<T> try_get(const daskr_value_t *v) noexcept {
    if constexpr (std::is_same_v<T, bool>) {
        bool b;
        if (daskr_value_get_bool(v, &b)) return b;
    } else if constexpr (std::is_integral_v<T>) {
        int64_t i;
        if (!daskr_value_get_int(v, &i)) return std::nullopt;
        if constexpr (std::is_same_v<T, int64_t>) {
            return i;
        } else {
            bool fits = std::is_signed_v<T> ? (i >= static_cast<int64_t>(std::numeric_limits<T>::min()) &&
                                               i <= static_cast<int64_t>(std::numeric_limits<T>::max()))
                                            : (i >= 0 && static_cast<uint64_t>(i) <= std::numeric_limits<T>::max());
            if (fits) return static_cast<T>(i);
        }
    } else if constexpr (std::is_floating_point_v<T>) {
        double x;
        int64_t i;
        if (daskr_value_get_float(v, &x)) return static_cast<T>(x);
        if (daskr_value_get_int(v, &i)) return static_cast<T>(i);
    } else if constexpr (std::is_same_v<T, std::string_view>) {
        const char *s;
        size_t n;
        if (daskr_value_get_string(v, &s, &n)) return std::string_view(s, n);
    } else {
        static_assert(dependent_false<T>, "daskr: get<T> reads bool, integers, floats and std::string_view "
                                          "(use as<T>() for the others)");
    }
    return std::nullopt;
}
} // namespace detail

/// A borrowed value: a task's argument, or an item of a Value. Valid while what it was
/// borrowed from lives (a task's arguments: until the task returns; an item: while its
/// Value lives). Reading never copies more than the C++ type asked for.
class ValueView {
public:
    ValueView() = default;
    explicit ValueView(const daskr_value_t *v) : v_(v) {}

    const daskr_value_t *raw() const noexcept { return v_; }
    daskr_kind_t kind() const noexcept { return v_ ? daskr_value_kind(v_) : DASKR_KIND_NULL; }
    bool is_null() const noexcept { return kind() == DASKR_KIND_NULL; }

    /// Converts to T; throws Error(DASKR_ERROR_TYPE_MISMATCH) if the value is not a T.
    /// T: bool, any integer type (range-checked), double/float (ints convert too),
    /// std::string, std::string_view (borrowed), Bytes, BytesView (borrowed),
    /// std::vector<U> (a list, items converted; nests), std::optional<U> (null -> nullopt),
    /// std::map / std::unordered_map<std::string, U> (a map, entries converted),
    /// Value (a new reference), ValueView.
    template <class T> T as() const { return from_value<T>::get(*this); }

    /// The value as T if it is one, else nullopt: no exception, one C call — the way to read
    /// an argument that may be of several kinds in a hot task. T: bool, an integer type
    /// (nullopt if out of range), double/float (ints convert too), std::string_view
    /// (borrowed); as<T>() reads every other type.
    template <class T> std::optional<T> get() const noexcept { return detail::try_get<T>(v_); }

    /// Whether the value converts to T (without throwing).
    template <class T> bool is() const {
        if constexpr (std::is_arithmetic_v<T> || std::is_same_v<T, std::string_view>)
            return get<T>().has_value();
        try {
            (void)as<T>();
            return true;
        } catch (const Error &) {
            return false;
        }
    }

    /// Items of a list (0 for any other kind).
    size_t size() const noexcept { return daskr_value_list_len(v_); }
    /// The i-th item of a list, borrowed. Throws if this is not a list or i is out of range.
    ValueView operator[](size_t i) const {
        if (kind() != DASKR_KIND_LIST)
            detail::type_error(std::string("expected a list, got ") + detail::kind_str(kind()));
        const daskr_value_t *item = daskr_value_list_at(v_, i);
        if (!item)
            throw Error(DASKR_ERROR_INVALID_ARGUMENT,
                        "list index " + std::to_string(i) + " out of range (size " + std::to_string(size()) + ")");
        return ValueView(item);
    }

    /// The entries of a map value, borrowed: iterate `for (auto [name, value] : v.map())`,
    /// look up with `v.map()["name"]` or `.find("name")`. Throws if this is not a map.
    MapView map() const;
    /// The value named `name` in a map, borrowed. Throws if this is not a map or has no
    /// such name (naming it).
    ValueView operator[](std::string_view name) const;

    /// The C++ object behind a pointer value made from a T. Throws unless the value is a
    /// pointer value whose tag is type_tag<T>::name() (or `tag`, if given). The object
    /// stays owned by the value (and may be shared by several tasks at once).
    template <class T> T &object(const char *tag = nullptr) const {
        std::string want = tag ? std::string(tag) : type_tag<T>::name();
        void *p = nullptr;
        if (!daskr_value_get_pointer(v_, want.c_str(), &p)) {
            const char *have = daskr_value_pointer_tag(v_);
            if (have)
                detail::type_error("expected an object tagged '" + want + "', got one tagged '" + have + "'");
            detail::type_error("expected an object tagged '" + want + "', got " + detail::kind_str(kind()));
        }
        return *static_cast<T *>(p);
    }
    /// The tag of a pointer value, or nullopt for any other kind.
    std::optional<std::string_view> tag() const {
        const char *t = daskr_value_pointer_tag(v_);
        if (!t) return std::nullopt;
        return std::string_view(t);
    }

    /// Structural equality (floats by value, pointers by identity).
    bool operator==(const ValueView &o) const noexcept { return daskr_value_equal(v_, o.v_); }
    bool operator!=(const ValueView &o) const noexcept { return !(*this == o); }

    /// A new owned reference to the same value (O(1)).
    Value clone() const;

protected:
    const daskr_value_t *v_ = nullptr;
};

/// An owned value (move-only; `clone()` makes another reference in O(1)). Read it through
/// the ValueView methods it inherits: `as<T>()`, `[i]`, `object<T>()`, ...
class Value : public ValueView {
public:
    /// Null.
    Value() : Value(daskr_value_null()) {}
    /// Takes `v` (owned).
    explicit Value(daskr_value_t *v) : ValueView(v) {
        if (!v) throw Error(DASKR_ERROR_INVALID_ARGUMENT, "value is NULL");
    }
    Value(Value &&o) noexcept : ValueView(o.v_) { o.v_ = nullptr; }
    Value &operator=(Value &&o) noexcept {
        if (this != &o) {
            daskr_value_free(mut());
            v_ = o.v_;
            o.v_ = nullptr;
        }
        return *this;
    }
    Value(const Value &) = delete;
    Value &operator=(const Value &) = delete;
    // A moved-from or released Value holds nothing: no call into the library for it.
    ~Value() {
        if (v_) daskr_value_free(mut());
    }

    /// Gives up ownership: the caller must free (or pass on) the pointer.
    daskr_value_t *release() noexcept {
        daskr_value_t *p = mut();
        v_ = nullptr;
        return p;
    }
    ValueView view() const noexcept { return ValueView(v_); }
    using ValueView::object; // reading an object back: value.object<T>()
    using ValueView::map;    // reading a map's entries: value.map()

    static Value null() { return Value(daskr_value_null()); }
    static Value boolean(bool b) { return Value(daskr_value_bool(b)); }
    static Value integer(int64_t i) { return Value(daskr_value_int(i)); }
    static Value number(double x) { return Value(daskr_value_float(x)); }
    static Value string(std::string_view s) {
        daskr_value_t *out = nullptr;
        detail::check(daskr_value_string(s.data(), s.size(), &out));
        return Value(out);
    }
    static Value bytes(const void *data, size_t n) {
        daskr_value_t *out = nullptr;
        detail::check(daskr_value_bytes(static_cast<const uint8_t *>(data), n, &out));
        return Value(out);
    }
    static Value list(std::vector<Value> items) {
        std::vector<daskr_value_t *> raw;
        raw.reserve(items.size());
        for (auto &v : items) raw.push_back(v.release()); // taken by daskr_value_list, even on failure
        daskr_value_t *out = nullptr;
        detail::check(daskr_value_list(raw.data(), raw.size(), &out));
        return Value(out);
    }
    /// A map of `entries` (names to values), in this order: `Value::map({{"file", v}, ...})`.
    /// Throws if a name is given twice (naming it) or the map would nest too deeply.
    static Value map(std::initializer_list<MapEntry> entries);
    /// A map of `entries` (names to values), in this order.
    static Value map(std::vector<std::pair<std::string, Value>> entries) {
        std::vector<const char *> names;
        std::vector<size_t> lens;
        std::vector<daskr_value_t *> raw;
        names.reserve(entries.size());
        lens.reserve(entries.size());
        raw.reserve(entries.size());
        for (auto &[name, v] : entries) {
            names.push_back(name.data());
            lens.push_back(name.size());
            raw.push_back(v.release()); // taken by daskr_value_map, even on failure
        }
        daskr_value_t *out = nullptr;
        detail::check(daskr_value_map(names.data(), lens.data(), raw.data(), raw.size(), &out));
        return Value(out);
    }
    /// A pointer value owning `obj`, tagged `tag` (default type_tag<T>::name()); the
    /// object is deleted exactly once, when the last reference to the value goes.
    template <class T> static Value object(std::unique_ptr<T> obj, const std::string &tag = type_tag<T>::name()) {
        if (!obj) return null();
        daskr_value_t *out = nullptr;
        detail::check(daskr_value_pointer(obj.get(), tag.c_str(), &detail::delete_object<T>, &out));
        obj.release(); // owned by the value now (on failure it stayed ours and is deleted)
        return Value(out);
    }

private:
    daskr_value_t *mut() const noexcept { return const_cast<daskr_value_t *>(v_); }
};

inline Value ValueView::clone() const {
    daskr_value_t *c = daskr_value_clone(v_);
    return c ? Value(c) : Value::null();
}

/// One entry of `Value::map({...})`: a name and a value (moved out of the braces).
struct MapEntry {
    std::string name;
    mutable Value value; // mutable so it can be moved out of a std::initializer_list
};

inline Value Value::map(std::initializer_list<MapEntry> entries) {
    std::vector<std::pair<std::string, Value>> v;
    v.reserve(entries.size());
    for (const MapEntry &e : entries) v.emplace_back(e.name, std::move(e.value));
    return map(std::move(v));
}

/// A map value's entries, borrowed from the value (valid while it lives): ordered access by
/// index, lookup by name, and iteration over (name, value) pairs in the map's order.
class MapView {
public:
    explicit MapView(const daskr_value_t *v) : v_(v) {}

    size_t size() const noexcept { return daskr_value_map_len(v_); }
    bool empty() const noexcept { return size() == 0; }
    /// Name `i` (it may hold NULs). Throws if i is out of range.
    std::string_view name(size_t i) const {
        size_t n = 0;
        const char *s = daskr_value_map_name(v_, i, &n);
        if (!s) out_of_range(i);
        return std::string_view(s, n);
    }
    /// The value of entry `i`. Throws if i is out of range.
    ValueView value(size_t i) const {
        const daskr_value_t *v = daskr_value_map_value(v_, i);
        if (!v) out_of_range(i);
        return ValueView(v);
    }
    /// The value named `name`, or nullopt.
    std::optional<ValueView> find(std::string_view name) const {
        if (name.find('\0') == std::string_view::npos) {
            // The library finds it (by an index for large maps); it takes a C string.
            const daskr_value_t *v = daskr_value_map_get(v_, std::string(name).c_str());
            if (v) return ValueView(v);
            return std::nullopt;
        }
        for (size_t i = 0, n = size(); i < n; i++)
            if (this->name(i) == name) return value(i);
        return std::nullopt;
    }
    bool contains(std::string_view name) const { return find(name).has_value(); }
    /// The value named `name`; throws an invalid_argument Error naming it if there is none.
    ValueView operator[](std::string_view name) const {
        if (auto v = find(name)) return *v;
        throw Error(DASKR_ERROR_INVALID_ARGUMENT, "the map has no entry named '" + std::string(name) + "'");
    }

    /// Iterates (name, value) pairs.
    class iterator {
    public:
        using value_type = std::pair<std::string_view, ValueView>;
        using difference_type = std::ptrdiff_t;
        using iterator_category = std::input_iterator_tag;
        iterator(const MapView *m, size_t i) : m_(m), i_(i) {}
        value_type operator*() const { return {m_->name(i_), m_->value(i_)}; }
        iterator &operator++() {
            ++i_;
            return *this;
        }
        bool operator==(const iterator &o) const { return i_ == o.i_; }
        bool operator!=(const iterator &o) const { return i_ != o.i_; }

    private:
        const MapView *m_;
        size_t i_;
    };
    iterator begin() const { return iterator(this, 0); }
    iterator end() const { return iterator(this, size()); }

private:
    [[noreturn]] void out_of_range(size_t i) const {
        throw Error(DASKR_ERROR_INVALID_ARGUMENT,
                    "map index " + std::to_string(i) + " out of range (size " + std::to_string(size()) + ")");
    }
    const daskr_value_t *v_;
};

inline MapView ValueView::map() const {
    if (kind() != DASKR_KIND_MAP) detail::type_error(std::string("expected a map, got ") + detail::kind_str(kind()));
    return MapView(v_);
}

inline ValueView ValueView::operator[](std::string_view name) const { return map()[name]; }

// ----- C++ -> value ---------------------------------------------------------------------

/// Converts a C++ value to a daskr Value: Value (moved), ValueView (a new reference),
/// nullptr / std::nullopt-holding optional (null), bool, integers (int64; unsigned values
/// above INT64_MAX throw), float/double, std::string / std::string_view / const char*
/// (UTF-8 string), Bytes, std::vector<U> (a list; nests), std::optional<U>,
/// std::map<std::string, U> (a map, in name order), std::unordered_map<std::string, U> (a
/// map, its names sorted so the value does not depend on the hash order),
/// std::unique_ptr<T> (a pointer value owning the object, tagged type_tag<T>).
template <class T> Value to_value(T &&x) {
    using D = std::decay_t<T>;
    if constexpr (std::is_same_v<D, Value>) {
        return std::move(x);
    } else if constexpr (std::is_same_v<D, ValueView>) {
        return x.clone();
    } else if constexpr (std::is_same_v<D, std::nullptr_t> || std::is_same_v<D, std::nullopt_t>) {
        return Value::null();
    } else if constexpr (std::is_same_v<D, bool>) {
        return Value::boolean(x);
    } else if constexpr (std::is_integral_v<D>) {
        if constexpr (std::is_unsigned_v<D> && sizeof(D) >= sizeof(int64_t)) {
            if (x > static_cast<D>(std::numeric_limits<int64_t>::max()))
                throw Error(DASKR_ERROR_INVALID_ARGUMENT, "integer " + std::to_string(x) + " does not fit in int64");
        }
        return Value::integer(static_cast<int64_t>(x));
    } else if constexpr (std::is_floating_point_v<D>) {
        return Value::number(static_cast<double>(x));
    } else if constexpr (std::is_same_v<D, std::string> || std::is_same_v<D, std::string_view>) {
        return Value::string(x);
    } else if constexpr (std::is_same_v<D, const char *> || std::is_same_v<D, char *>) {
        const char *s = x; // (an array decays here; only a real pointer can be NULL)
        if (!s) throw Error(DASKR_ERROR_INVALID_ARGUMENT, "string is NULL");
        return Value::string(std::string_view(s));
    } else if constexpr (std::is_same_v<D, Bytes>) {
        return Value::bytes(x.data.data(), x.data.size());
    } else if constexpr (std::is_same_v<D, BytesView>) {
        return Value::bytes(x.data, x.size);
    } else if constexpr (detail::is_vector<D>::value) {
        std::vector<Value> items;
        items.reserve(x.size());
        if constexpr (std::is_same_v<typename D::value_type, bool>) {
            for (bool item : x) items.push_back(Value::boolean(item)); // std::vector<bool>'s proxies
        } else if constexpr (std::is_rvalue_reference_v<T &&>) {
            for (auto &item : x) items.push_back(to_value(std::move(item)));
        } else {
            for (const auto &item : x) items.push_back(to_value(item));
        }
        return Value::list(std::move(items));
    } else if constexpr (detail::is_string_map<D>::value) {
        std::vector<std::pair<std::string, Value>> entries;
        entries.reserve(x.size());
        for (auto &[name, item] : x) {
            if constexpr (std::is_rvalue_reference_v<T &&>)
                entries.emplace_back(name, to_value(std::move(item)));
            else
                entries.emplace_back(name, to_value(item));
        }
        if constexpr (!detail::is_map_ordered<D>::value)
            std::sort(entries.begin(), entries.end(), [](const auto &a, const auto &b) { return a.first < b.first; });
        return Value::map(std::move(entries));
    } else if constexpr (detail::is_optional<D>::value) {
        if (!x) return Value::null();
        if constexpr (std::is_rvalue_reference_v<T &&>)
            return to_value(std::move(*x));
        else
            return to_value(*x);
    } else if constexpr (detail::is_unique_ptr<D>::value) {
        static_assert(std::is_rvalue_reference_v<T &&>, "move the std::unique_ptr into the value");
        return Value::object(std::move(x));
    } else {
        static_assert(detail::dependent_false<D>,
                      "daskr::to_value: no conversion for this type (return a std::unique_ptr<T> "
                      "to carry a C++ object)");
    }
}

// ----- value -> C++ ---------------------------------------------------------------------

namespace detail {
[[noreturn]] inline void mismatch(const char *want, const ValueView &v) {
    type_error(std::string("expected ") + want + ", got " + kind_str(v.kind()));
}
} // namespace detail

template <class T> struct from_value {
    static T get(const ValueView &v) {
        if constexpr (std::is_same_v<T, bool>) {
            bool b;
            if (!daskr_value_get_bool(v.raw(), &b)) detail::mismatch("bool", v);
            return b;
        } else if constexpr (std::is_integral_v<T>) {
            int64_t i;
            if (!daskr_value_get_int(v.raw(), &i)) detail::mismatch("int", v);
            if constexpr (!std::is_same_v<T, int64_t>) {
                bool fits = std::is_signed_v<T>
                                ? (i >= static_cast<int64_t>(std::numeric_limits<T>::min()) &&
                                   i <= static_cast<int64_t>(std::numeric_limits<T>::max()))
                                : (i >= 0 && static_cast<uint64_t>(i) <= std::numeric_limits<T>::max());
                if (!fits) detail::type_error("int " + std::to_string(i) + " out of range for the requested type");
            }
            return static_cast<T>(i);
        } else if constexpr (std::is_floating_point_v<T>) {
            double x;
            int64_t i;
            if (daskr_value_get_float(v.raw(), &x)) return static_cast<T>(x);
            if (daskr_value_get_int(v.raw(), &i)) return static_cast<T>(i);
            detail::mismatch("float", v);
        } else if constexpr (std::is_same_v<T, std::string_view> || std::is_same_v<T, std::string>) {
            const char *s;
            size_t n;
            if (!daskr_value_get_string(v.raw(), &s, &n)) detail::mismatch("string", v);
            return T(s, n);
        } else if constexpr (std::is_same_v<T, BytesView> || std::is_same_v<T, Bytes>) {
            const uint8_t *d;
            size_t n;
            if (!daskr_value_get_bytes(v.raw(), &d, &n)) detail::mismatch("bytes", v);
            if constexpr (std::is_same_v<T, BytesView>)
                return BytesView{d, n};
            else
                return Bytes(d, n);
        } else if constexpr (detail::is_vector<T>::value) {
            if (v.kind() != DASKR_KIND_LIST) detail::mismatch("list", v);
            T out;
            out.reserve(v.size());
            for (size_t i = 0, n = v.size(); i < n; i++) {
                try {
                    out.push_back(v[i].template as<typename T::value_type>());
                } catch (const Error &e) {
                    throw Error(e.kind(), "item " + std::to_string(i) + ": " + e.message());
                }
            }
            return out;
        } else if constexpr (detail::is_string_map<T>::value) {
            T out;
            for (auto [name, item] : v.map()) {
                try {
                    out.emplace(std::string(name), item.template as<typename T::mapped_type>());
                } catch (const Error &e) {
                    throw Error(e.kind(), "entry '" + std::string(name) + "': " + e.message());
                }
            }
            return out;
        } else if constexpr (detail::is_optional<T>::value) {
            if (v.raw() == nullptr || v.is_null()) return std::nullopt;
            return v.template as<typename T::value_type>();
        } else if constexpr (std::is_same_v<T, ValueView>) {
            return v;
        } else if constexpr (std::is_same_v<T, Value>) {
            return v.clone();
        } else {
            static_assert(detail::dependent_false<T>,
                          "daskr: no conversion to this type (use object<T>() for C++ objects)");
        }
    }
};

// ---------------------------------------------------------------------------------------
// Tuple keys
// ---------------------------------------------------------------------------------------

namespace detail {
/// Python's repr of a str: single quotes unless the text has ' and no ", backslash
/// escapes for \\, the quote, \t \n \r and other control characters (\xNN).
inline void py_repr(std::string &out, std::string_view s) {
    bool has_single = s.find('\'') != std::string_view::npos;
    bool has_double = s.find('"') != std::string_view::npos;
    char q = (has_single && !has_double) ? '"' : '\'';
    out += q;
    for (unsigned char c : s) {
        switch (c) {
        case '\\': out += "\\\\"; break;
        case '\t': out += "\\t"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        default:
            if (c == static_cast<unsigned char>(q)) {
                out += '\\';
                out += static_cast<char>(c);
            } else if (c < 0x20 || c == 0x7f) {
                static const char hex[] = "0123456789abcdef";
                out += "\\x";
                out += hex[c >> 4];
                out += hex[c & 15];
            } else {
                out += static_cast<char>(c);
            }
        }
    }
    out += q;
}

template <class T> void key_part(std::string &out, const T &part) {
    using D = std::decay_t<T>;
    if constexpr (std::is_same_v<D, bool>) {
        out += part ? "True" : "False";
    } else if constexpr (std::is_integral_v<D>) {
        out += std::to_string(part);
    } else if constexpr (std::is_convertible_v<const D &, std::string_view>) {
        py_repr(out, std::string_view(part));
    } else {
        static_assert(dependent_false<D>, "daskr::key: parts must be strings or integers");
    }
}
} // namespace detail

/// The canonical string for Dask's tuple key (parts...): Python's repr of the tuple, as
/// Dask prints it. Strings are single-quoted (Python's escaping rules), integers decimal,
/// bools True/False: key("x", 0, 1) == "('x', 0, 1)", key("x") == "('x',)".
template <class... Parts> std::string key(const Parts &...parts) {
    static_assert(sizeof...(Parts) > 0, "daskr::key needs at least one part");
    std::string out = "(";
    size_t i = 0;
    ((out += (i++ ? ", " : ""), detail::key_part(out, parts)), ...);
    if (sizeof...(Parts) == 1) out += ',';
    out += ')';
    return out;
}

// ---------------------------------------------------------------------------------------
// Tasks: the call a task sees, functions, the trampoline
// ---------------------------------------------------------------------------------------

/// What a running task sees: its key, its arguments (borrowed until it returns) and ways to
/// set its result. Only valid inside the task.
class Call {
public:
    explicit Call(daskr_call_t *c) : c_(c) {}

    daskr_call_t *raw() const noexcept { return c_; }
    /// The entry's key; empty for an anonymous entry.
    std::string_view key() const {
        const char *k = daskr_call_key(c_);
        return k ? std::string_view(k) : std::string_view();
    }

    size_t nargs() const noexcept { return daskr_call_nargs(c_); }
    /// The i-th positional argument; throws if there are fewer.
    ValueView arg(size_t i) const {
        const daskr_value_t *v = daskr_call_arg(c_, i);
        if (!v) missing_arg(i);
        return ValueView(v);
    }
    /// The i-th positional argument as T (see ValueView::as); std::optional<U> gives
    /// nullopt for a missing or null argument.
    template <class T> T arg(size_t i) const {
        const daskr_value_t *v = daskr_call_arg(c_, i);
        if constexpr (detail::is_optional<T>::value) {
            if (!v) return std::nullopt;
        }
        try {
            return arg(i).as<T>();
        } catch (const Error &e) {
            throw Error(e.kind(), "argument " + std::to_string(i) + ": " + e.message());
        }
    }
    /// The C++ object in the i-th argument (tag-checked, see ValueView::object).
    template <class T> T &object(size_t i, const char *tag = nullptr) const {
        try {
            return arg(i).object<T>(tag);
        } catch (const Error &e) {
            throw Error(e.kind(), "argument " + std::to_string(i) + ": " + e.message());
        }
    }

    size_t nkwargs() const noexcept { return daskr_call_nkwargs(c_); }
    bool has_kwarg(const std::string &name) const { return daskr_call_kwarg(c_, name.c_str()) != nullptr; }
    /// The keyword argument `name`, if given.
    std::optional<ValueView> kwarg(const std::string &name) const {
        const daskr_value_t *v = daskr_call_kwarg(c_, name.c_str());
        if (!v) return std::nullopt;
        return ValueView(v);
    }
    /// The keyword argument `name` as T; throws if missing, unless T is std::optional<U>
    /// (nullopt when missing or null).
    template <class T> T kwarg(const std::string &name) const {
        const daskr_value_t *v = daskr_call_kwarg(c_, name.c_str());
        if (!v) {
            if constexpr (detail::is_optional<T>::value)
                return std::nullopt;
            else
                throw Error(DASKR_ERROR_INVALID_ARGUMENT, "missing keyword argument '" + name + "'");
        }
        try {
            return ValueView(v).as<T>();
        } catch (const Error &e) {
            throw Error(e.kind(), "keyword argument '" + name + "': " + e.message());
        }
    }
    /// The keyword argument `name` as T, or `fallback` if it was not given.
    template <class T> T kwarg(const std::string &name, T fallback) const {
        if (!has_kwarg(name)) return fallback;
        return kwarg<T>(name);
    }
    /// All keyword arguments, in the order they were given (names and values borrowed).
    std::vector<std::pair<std::string_view, ValueView>> kwargs() const {
        std::vector<std::pair<std::string_view, ValueView>> out;
        for (size_t i = 0, n = nkwargs(); i < n; i++)
            out.emplace_back(daskr_call_kwarg_name(c_, i), ValueView(daskr_call_kwarg_at(c_, i)));
        return out;
    }

    /// Sets the result (anything to_value converts). A task whose callable returns a value
    /// need not call this.
    template <class T> void ret(T &&x) { daskr_call_return(c_, to_value(std::forward<T>(x)).release()); }
    void ret_int(int64_t i) noexcept { daskr_call_return_int(c_, i); }
    void ret_float(double x) noexcept { daskr_call_return_float(c_, x); }
    void ret_bool(bool b) noexcept { daskr_call_return_bool(c_, b); }
    void ret_string(std::string_view s) noexcept { daskr_call_return_string(c_, s.data(), s.size()); }
    /// Fails the task (as throwing would).
    void fail(const std::string &message) noexcept { daskr_call_fail(c_, message.c_str()); }
    /// Whether the get this task runs for was cancelled (its Cancel triggered): a long task
    /// can poll it and return early. See daskr_call_cancelled.
    bool cancelled() const noexcept { return daskr_call_cancelled(c_); }
    /// Cancels the get this task runs for, if it was given a Cancel (returns false if not):
    /// no further task starts and the get throws a cancelled Error. See daskr_call_cancel.
    bool cancel_get() const noexcept {
        const daskr_cancel_t *c = daskr_call_cancel(c_);
        if (c) daskr_cancel_trigger(c);
        return c != nullptr;
    }

private:
    // Out of line: keeps arg() small enough to inline into a task's hot loop.
    [[noreturn]] DASKR_DETAIL_COLD void missing_arg(size_t i) const {
        throw Error(DASKR_ERROR_INVALID_ARGUMENT,
                    "missing argument " + std::to_string(i) + " (the task has " + std::to_string(nargs()) + ")");
    }
    daskr_call_t *c_;
};

namespace detail {
struct FnBase {
    virtual ~FnBase() = default;
    virtual void run(Call &call) = 0;
};

template <class F> struct Fn final : FnBase {
    F f;
    explicit Fn(F fn) : f(std::move(fn)) {}
    void run(Call &call) override {
        using R = std::invoke_result_t<F &, Call &>;
        if constexpr (std::is_void_v<R>) {
            std::invoke(f, call);
        } else {
            call.ret(std::invoke(f, call));
        }
    }
};
} // namespace detail
} // namespace daskr

extern "C" {
/// The one trampoline every C++ task goes through: runs the callable behind `user_data` and
/// turns any exception into the task's failure. Never lets an exception reach daskr.
inline void daskr_hpp_trampoline(daskr_call_t *call, void *user_data) noexcept {
    try {
        daskr::Call c(call);
        static_cast<daskr::detail::FnBase *>(user_data)->run(c);
    } catch (const std::exception &e) {
        daskr_call_fail(call, e.what());
    } catch (...) {
        daskr_call_fail(call, "a C++ exception that is not a std::exception");
    }
}
/// Frees the callable (daskr calls it once the last graph using the function is gone).
inline void daskr_hpp_free_fn(void *user_data) noexcept { delete static_cast<daskr::detail::FnBase *>(user_data); }
}

namespace daskr {

/// A named task function wrapping any callable `R f(daskr::Call &)`. Move-only; graphs keep
/// their own reference, so a Func may be destroyed right after adding tasks with it.
class Func {
public:
    template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, Func> &&
                                                std::is_invocable_v<std::decay_t<F> &, Call &>>>
    Func(const std::string &name, F &&f) {
        auto *fn = new detail::Fn<std::decay_t<F>>(std::forward<F>(f));
        daskr_func_t *out = nullptr;
        // On failure daskr frees `fn` through daskr_hpp_free_fn right away.
        detail::check(daskr_func_new(name.c_str(), &daskr_hpp_trampoline, fn, &daskr_hpp_free_fn, &out));
        f_.reset(out);
    }
    /// A pure function whose results a Cache may keep, under its name, `version` and its
    /// arguments: change `version` whenever the code changes what it returns.
    template <class F, class = std::enable_if_t<std::is_invocable_v<std::decay_t<F> &, Call &>>>
    static Func versioned(const std::string &name, const std::string &version, F &&f) {
        auto *fn = new detail::Fn<std::decay_t<F>>(std::forward<F>(f));
        daskr_func_t *out = nullptr;
        // On failure daskr frees `fn` through daskr_hpp_free_fn right away.
        detail::check(daskr_func_new_versioned(name.c_str(), &daskr_hpp_trampoline, fn, &daskr_hpp_free_fn,
                                               version.c_str(), DASKR_FUNC_PURE, &out));
        return Func(out);
    }
    /// Adopts a C function (user_data and its free function as daskr_func_new takes them).
    static Func from_c(const std::string &name, daskr_task_fn fn, void *user_data = nullptr,
                       daskr_free_fn free_user_data = nullptr) {
        daskr_func_t *out = nullptr;
        detail::check(daskr_func_new(name.c_str(), fn, user_data, free_user_data, &out));
        return Func(out);
    }
    const daskr_func_t *raw() const noexcept { return f_.get(); }

private:
    friend class Plugin;
    explicit Func(daskr_func_t *f) : f_(f) {}
    struct Deleter {
        void operator()(daskr_func_t *f) const noexcept { daskr_func_free(f); }
    };
    std::unique_ptr<daskr_func_t, Deleter> f_;
};

// ---------------------------------------------------------------------------------------
// Plugins: shared libraries of C task functions, loaded at run time
// ---------------------------------------------------------------------------------------

/// A plugin library (README "Writing a plugin"), opened by path: its declared tasks become
/// Funcs. Move-only. Funcs taken from it stay valid after it is destroyed (the library is
/// never unloaded). Plugin tasks are the ones every scheduler can run, the processes and
/// distributed ones included (their workers load the library by path themselves).
class Plugin {
public:
    /// One declared task: its symbol and description.
    struct TaskInfo {
        std::string symbol, doc;
    };

    /// Opens the library at `path` (relative to the current directory), checking its ABI
    /// version and declaration. Throws Error (DASKR_ERROR_PLUGIN, naming the path) otherwise.
    explicit Plugin(const std::string &path) {
        daskr_plugin_t *out = nullptr;
        detail::check(daskr_plugin_open(path.c_str(), &out));
        p_.reset(out);
    }
    /// The library's absolute path.
    std::string path() const { return daskr_plugin_path(p_.get()); }
    /// The name the plugin declares (its functions are "<name>:<symbol>").
    std::string name() const { return daskr_plugin_get_info(p_.get())->name; }
    /// The plugin's own version, as it declares it.
    std::string version() const { return daskr_plugin_get_info(p_.get())->version; }
    /// The tasks it declares, in its order.
    std::vector<TaskInfo> tasks() const {
        const daskr_plugin_info_t *info = daskr_plugin_get_info(p_.get());
        std::vector<TaskInfo> out;
        for (size_t i = 0; i < info->ntasks; i++) out.push_back({info->tasks[i].symbol, info->tasks[i].doc});
        return out;
    }
    /// The declared task `symbol` as a task function, named "<plugin>:<symbol>". Throws Error
    /// (DASKR_ERROR_PLUGIN, naming the path and the symbol) if it declares no such task.
    Func func(const std::string &symbol) const {
        daskr_func_t *out = nullptr;
        detail::check(daskr_plugin_func(p_.get(), symbol.c_str(), &out));
        return Func(out);
    }
    const daskr_plugin_t *raw() const noexcept { return p_.get(); }

private:
    struct Deleter {
        void operator()(daskr_plugin_t *p) const noexcept { daskr_plugin_free(p); }
    };
    std::unique_ptr<daskr_plugin_t, Deleter> p_;
};

// ---------------------------------------------------------------------------------------
// Computations
// ---------------------------------------------------------------------------------------

/// The handle of a graph entry (returned by every Graph::add*); converts to a reference to
/// that entry (cheaper than a reference by key). It belongs to the graph that made it: used
/// with another graph, the add throws Error (DASKR_ERROR_INVALID_ARGUMENT).
/// A key as the graph's functions take it: a C string or a std::string, borrowed for the
/// call — a key made in a char buffer reaches the library without a std::string (and its
/// allocation) in between.
class KeyArg {
public:
    KeyArg(const char *key) noexcept : p_(key) {}
    KeyArg(const std::string &key) noexcept : p_(key.c_str()) {}
    const char *c_str() const noexcept { return p_; }

private:
    const char *p_;
};

struct Task {
    daskr_task_t id;
    friend bool operator==(Task a, Task b) { return a.id == b.id; }
    friend bool operator!=(Task a, Task b) { return a.id != b.id; }
};

class Comp;

namespace detail {
/// Whether to_value converts a D (decayed).
template <class D> struct can_to_value
    : std::bool_constant<std::is_same_v<D, Value> || std::is_same_v<D, ValueView> ||
                         std::is_same_v<D, std::nullptr_t> || std::is_same_v<D, std::nullopt_t> ||
                         std::is_arithmetic_v<D> || std::is_same_v<D, std::string> ||
                         std::is_same_v<D, std::string_view> || std::is_same_v<D, const char *> ||
                         std::is_same_v<D, char *> || std::is_same_v<D, Bytes> || std::is_same_v<D, BytesView>> {};
template <class U, class A> struct can_to_value<std::vector<U, A>> : can_to_value<U> {};
template <class U> struct can_to_value<std::optional<U>> : can_to_value<U> {};
template <class U> struct can_to_value<std::unique_ptr<U>> : std::true_type {};
template <class T> inline constexpr bool is_literal_v = can_to_value<std::decay_t<T>>::value;
} // namespace detail

/// A computation being built: a literal, a reference, a list or an inline task. Owned until
/// passed to a graph (or into another computation), which consumes it. Anything to_value
/// converts is a literal (note: a string is a literal string; use ref("k") for a key), and
/// a Task handle is a reference. Comps inside braces ({...}) are consumed from the list.
class Comp {
public:
    Comp(Task t) : c_(daskr_comp_ref_task(t.id)) {}
    Comp(Value v) : c_(daskr_comp_value(v.release())) {}
    template <class T, class = std::enable_if_t<detail::is_literal_v<T> && !std::is_same_v<std::decay_t<T>, Value>>>
    Comp(T &&x) : Comp(to_value(std::forward<T>(x))) {}

    Comp(Comp &&o) noexcept : c_(o.c_) { o.c_ = nullptr; }
    Comp &operator=(Comp &&o) noexcept {
        if (this != &o) {
            daskr_comp_free(c_);
            c_ = o.c_;
            o.c_ = nullptr;
        }
        return *this;
    }
    Comp(const Comp &) = delete;
    Comp &operator=(const Comp &) = delete;
    // Most Comps die released (passed into an Args or a call): no call into the library then
    // (two such calls a task were ~5% of building a wavefront through the wrapper).
    ~Comp() {
        if (c_) daskr_comp_free(c_);
    }

    /// Takes ownership of a C computation.
    static Comp adopt(daskr_comp_t *c) { return Comp(c, 0); }
    /// Gives up ownership (the caller passes it on or frees it).
    daskr_comp_t *release() const noexcept {
        daskr_comp_t *p = c_;
        c_ = nullptr;
        return p;
    }

private:
    Comp(daskr_comp_t *c, int) : c_(c) {}
    // mutable so a Comp can be consumed out of a std::initializer_list (whose items are const)
    mutable daskr_comp_t *c_ = nullptr;
};

/// Positional arguments: {a, b, ...} or a std::vector<Comp>.
class Args {
public:
    Args() = default;
    Args(std::initializer_list<Comp> items) {
        reserve(items.size());
        for (const Comp &c : items) push(c.release());
    }
    Args(std::vector<Comp> &&items) {
        reserve(items.size());
        for (Comp &c : items) push(c.release());
        items.clear();
    }
    Args(Args &&o) noexcept { take(o); }
    Args &operator=(Args &&o) noexcept {
        if (this != &o) {
            free_all();
            take(o);
        }
        return *this;
    }
    Args(const Args &) = delete;
    Args &operator=(const Args &) = delete;
    ~Args() { free_all(); }

    /// Appends an item (the first few are held inline, without allocating).
    void push_back(Comp c) {
        if (heap_.empty() ? n_ == kInline : heap_.size() == heap_.capacity()) reserve(2 * n_);
        push(c.release());
    }

    /// The items, released: the caller passes them to a function that takes them. The array
    /// stays valid while this Args lives.
    struct Released {
        daskr_comp_t *const *p;
        size_t n;
        daskr_comp_t *const *data() const noexcept { return p; }
        size_t size() const noexcept { return n; }
    };
    Released release() noexcept {
        Released r{items(), n_};
        n_ = 0;
        return r;
    }
    size_t size() const noexcept { return n_; }

private:
    // The usual few items sit inline: adding a task through the wrapper allocates nothing
    // more than the C call does.
    static constexpr size_t kInline = 4;
    daskr_comp_t *inline_[kInline] = {};
    std::vector<daskr_comp_t *> heap_; // all the items, once there are more than kInline
    size_t n_ = 0;

    daskr_comp_t **items() noexcept { return heap_.empty() ? inline_ : heap_.data(); }
    // Before an item is released to this Args: so `push` cannot throw and lose it.
    void reserve(size_t n) {
        if (n > kInline) heap_.reserve(n);
    }
    void push(daskr_comp_t *c) noexcept {
        if (heap_.empty() && n_ < kInline) {
            inline_[n_++] = c;
            return;
        }
        if (heap_.empty()) heap_.assign(inline_, inline_ + n_);
        heap_.push_back(c);
        n_++;
    }
    void take(Args &o) noexcept {
        std::copy(o.inline_, o.inline_ + kInline, inline_);
        heap_ = std::move(o.heap_);
        n_ = o.n_;
        o.heap_.clear();
        o.n_ = 0;
    }
    void free_all() noexcept {
        daskr_comp_t **items = this->items();
        for (size_t i = 0; i < n_; i++) daskr_comp_free(items[i]);
        n_ = 0;
    }
};

/// One keyword argument or map entry: {"name", computation}.
struct Kwarg {
    std::string name;
    Comp value;
};

/// Keyword arguments: {{"sep", ","}, {"n", ref("n")}} or a std::vector<Kwarg>.
class Kwargs {
public:
    Kwargs() = default;
    Kwargs(std::initializer_list<Kwarg> items) {
        items_.reserve(items.size());
        for (const Kwarg &k : items) items_.push_back(Kwarg{k.name, Comp::adopt(k.value.release())});
    }
    Kwargs(std::vector<Kwarg> &&items) : items_(std::move(items)) {}

    struct Raw {
        std::vector<const char *> names;
        std::vector<size_t> lens;
        std::vector<daskr_comp_t *> values;
    };
    /// Borrowed names (valid while this lives), their lengths, and released values.
    Raw release() {
        Raw r;
        for (auto &k : items_) {
            r.names.push_back(k.name.c_str());
            r.lens.push_back(k.name.size());
            r.values.push_back(k.value.release());
        }
        return r;
    }
    size_t size() const noexcept { return items_.size(); }

private:
    std::vector<Kwarg> items_;
};

/// A reference to the entry `key`.
inline Comp ref(KeyArg key) { return Comp::adopt(daskr_comp_ref(key.c_str())); }
/// A reference to the entry behind a handle.
inline Comp ref(Task t) { return Comp::adopt(daskr_comp_ref_task(t.id)); }
/// A literal (for when a type would otherwise be ambiguous).
template <class T> Comp lit(T &&x) { return Comp(to_value(std::forward<T>(x))); }
/// A list computation: evaluates to the list of its items' values.
inline Comp list(Args items) {
    auto raw = items.release();
    return Comp::adopt(daskr_comp_list(raw.data(), raw.size()));
}
/// A map computation: evaluates to the map of each name to its computation's value, in this
/// order (Dask's dict): `map({{"file", "a.csv"}, {"data", ref("load-a")}})`. A name given
/// twice is an error naming it when the computation is added.
inline Comp map(Kwargs entries) {
    auto raw = entries.release();
    return Comp::adopt(daskr_comp_map(raw.names.data(), raw.lens.data(), raw.values.data(), raw.values.size()));
}
/// An inline task: evaluated within the entry that contains it.
inline Comp task(const Func &f, Args args = {}, Kwargs kwargs = {}) {
    auto a = args.release();
    auto k = kwargs.release();
    return Comp::adopt(daskr_comp_task(f.raw(), a.data(), a.size(), k.names.data(), k.values.data(), k.values.size()));
}

// ---------------------------------------------------------------------------------------
// Running: keys, options, cancel, callbacks
// ---------------------------------------------------------------------------------------

/// What to get: one key, or a (nested) list of keys — the result has the same shape.
///   g.get("a");  g.get({"a", "b"});  g.get({"a", {"b", "c"}});  g.get(Keys::list({}));
class Keys {
public:
    Keys(const char *key) : key_(key), is_key_(true) {}
    Keys(std::string key) : key_(std::move(key)), is_key_(true) {}
    Keys(std::string_view key) : key_(key), is_key_(true) {}
    Keys(std::initializer_list<Keys> items) : items_(items) {}
    explicit Keys(std::vector<Keys> items) : items_(std::move(items)) {}
    template <class S, class = std::enable_if_t<std::is_convertible_v<const S &, std::string_view>>>
    Keys(const std::vector<S> &keys) {
        for (const auto &k : keys) items_.emplace_back(std::string(std::string_view(k)));
    }
    /// A list of keys (also the empty list).
    static Keys list(std::vector<Keys> items = {}) { return Keys(std::move(items)); }
    /// The request a value spells: a string is a key, a list a list of requests (a graph
    /// file's default keys, say). Throws a type_mismatch Error for any other value.
    static Keys from_value(const ValueView &v) {
        if (v.kind() == DASKR_KIND_STRING) return Keys(v.as<std::string>());
        if (v.kind() != DASKR_KIND_LIST)
            throw Error(DASKR_ERROR_TYPE_MISMATCH, "a request is a key (a string) or a list of requests");
        std::vector<Keys> items;
        for (size_t i = 0, n = daskr_value_list_len(v.raw()); i < n; i++)
            items.push_back(from_value(ValueView(daskr_value_list_at(v.raw(), i))));
        return Keys(std::move(items));
    }

    Value to_value() const {
        if (is_key_) return Value::string(key_);
        std::vector<Value> items;
        items.reserve(items_.size());
        for (const auto &k : items_) items.push_back(k.to_value());
        return Value::list(std::move(items));
    }

private:
    std::string key_;
    std::vector<Keys> items_;
    bool is_key_ = false;
};

/// A cancel switch: trigger() from any thread stops the gets given it (they throw
/// Error(DASKR_ERROR_CANCELLED) once their running tasks finish). Thread-safe; move-only.
class Cancel {
public:
    Cancel() : c_(daskr_cancel_new()) {
        if (!c_) throw Error(DASKR_ERROR_INTERNAL, "daskr_cancel_new failed");
    }
    void trigger() const noexcept { daskr_cancel_trigger(c_.get()); }
    bool is_triggered() const noexcept { return daskr_cancel_is_triggered(c_.get()); }
    void reset() const noexcept { daskr_cancel_reset(c_.get()); }
    const daskr_cancel_t *raw() const noexcept { return c_.get(); }

private:
    struct Deleter {
        void operator()(daskr_cancel_t *c) const noexcept { daskr_cancel_free(c); }
    };
    std::unique_ptr<daskr_cancel_t, Deleter> c_;
};

/// One entry's run, as a Profile recorded it.
struct ProfileTask {
    std::string key;
    std::string func; ///< the task's function name; "alias", "list", "map" or "literal" otherwise
    uint32_t worker;  ///< 0 is the calling thread
    uint64_t start_ns, end_ns; ///< since the get started
    bool ok;
};

/// A profile recorder: attach it to gets (Options::profile) and it keeps the last one's
/// profile — each entry timed on the thread that ran it, and the scheduler's phases.
/// Costs two clock reads per entry while attached. Thread-safe, move-only.
class Profile {
public:
    Profile() : p_(daskr_profile_new()) {
        if (!p_) throw Error(DASKR_ERROR_INTERNAL, "daskr_profile_new failed");
    }
    /// The entries the last get ran, in the order they started.
    std::vector<ProfileTask> tasks() const {
        std::vector<ProfileTask> out;
        size_t n = daskr_profile_len(p_.get());
        out.reserve(n);
        for (size_t i = 0; i < n; i++) {
            daskr_profile_task_t t;
            if (!daskr_profile_task(p_.get(), i, &t, sizeof t)) break;
            out.push_back({t.key, t.func, t.worker, t.start_ns, t.end_ns, t.ok});
        }
        return out;
    }
    /// Writes the last get as a Chrome trace / Perfetto JSON file. Throws Error on failure.
    void write_trace(const std::string &path) const {
        if (daskr_error_t *e = daskr_profile_write_trace(p_.get(), path.c_str())) throw Error::take(e);
    }
    const daskr_profile_t *raw() const noexcept { return p_.get(); }

private:
    struct Deleter {
        void operator()(daskr_profile_t *p) const noexcept { daskr_profile_free(p); }
    };
    std::unique_ptr<daskr_profile_t, Deleter> p_;
};

/// Live progress of the gets it is attached to (Options::progress), readable from any thread
/// while they run: for progress bars. Workers publish their counts in batches and when they
/// stop, so reading costs the run nothing; `done` reaches `total` when a get completes.
/// Thread-safe, move-only.
class Progress {
public:
    Progress() : p_(daskr_progress_new()) {
        if (!p_) throw Error(DASKR_ERROR_INTERNAL, "daskr_progress_new failed");
    }
    /// Entries the running (or last) get needs; 0 before the first get.
    uint64_t total() const noexcept { return daskr_progress_total(p_.get()); }
    /// Entries run so far.
    uint64_t done() const noexcept { return daskr_progress_done(p_.get()); }
    /// Whether a get is running with it.
    bool running() const noexcept { return daskr_progress_running(p_.get()); }
    const daskr_progress_t *raw() const noexcept { return p_.get(); }

private:
    struct Deleter {
        void operator()(daskr_progress_t *p) const noexcept { daskr_progress_free(p); }
    };
    std::unique_ptr<daskr_progress_t, Deleter> p_;
};

/// Observers of a run (Dask's start/pretask/posttask/finish); empty ones are not called.
/// Never called concurrently with each other. If one throws, the get still runs to its end
/// (no further callbacks are called) and then rethrows that exception.
struct Callbacks {
    std::function<void(size_t entries)> start;
    std::function<void(std::string_view key, uint32_t worker)> pretask;
    std::function<void(std::string_view key, bool ok, uint32_t worker)> posttask;
    std::function<void(bool failed)> finish;
    bool empty() const { return !start && !pretask && !posttask && !finish; }
};

/// Which scheduler runs a get (see daskr_scheduler_t).
enum class Scheduler {
    /// A native thread pool, reused across gets (the default).
    Threads = DASKR_SCHEDULER_THREADS,
    /// The calling thread alone, in priority order.
    Sync = DASKR_SCHEDULER_SYNC,
    /// Worker processes: a task that crashes kills its worker, not the program. Lambdas run in
    /// workers forked from this program; values cross processes encoded, so a task result
    /// that is a C++ object (a pointer value) must stay inside its worker.
    Processes = DASKR_SCHEDULER_PROCESSES,
    /// A Dask cluster at Options::address: plugin tasks only.
    Distributed = DASKR_SCHEDULER_DISTRIBUTED,
};

/// The scheduler enumerators above are conveniences: the library's own list of schedulers
/// (its registry) is what the functions below read, so a scheduler the library adds can be
/// used by name before this header has an enumerator for it.

/// How many schedulers the library has: their values run from 0 to this, exclusive.
inline uint32_t scheduler_count() noexcept { return daskr_scheduler_count(); }

/// The scheduler's name as daskr spells it everywhere ("threads", "sync", "processes",
/// "distributed"); empty for a value that is no scheduler.
inline std::string_view scheduler_name(Scheduler s) noexcept {
    const char *name = daskr_scheduler_name(static_cast<uint32_t>(s));
    return name ? std::string_view(name) : std::string_view();
}

/// The scheduler of that name; throws an invalid_argument Error listing the names otherwise.
inline Scheduler scheduler_named(const std::string &name) {
    daskr_scheduler_t out = DASKR_SCHEDULER_THREADS;
    detail::check(daskr_scheduler_from_name(name.c_str(), &out));
    return static_cast<Scheduler>(out);
}

/// Whether the scheduler reads the Options member named `option` among those only some
/// schedulers read ("workers", "retries", "task_timeout", "address"); the others ignore it.
inline bool scheduler_reads(Scheduler s, std::string_view option) {
    std::string c_name = option == "workers"        ? "num_workers"
                         : option == "task_timeout" ? "task_timeout_s"
                                                    : std::string(option);
    return daskr_scheduler_reads(static_cast<uint32_t>(s), c_name.c_str());
}

/// Figures about one get (entries, entries_run, peak_held, workers, plan_ns, run_ns).
using Stats = daskr_stats_t;

/// A result cache directory (move-only; see daskr_cache_t and docs/cache.md): give it to a
/// get (Options::cache) and tasks found in it are not run, while what runs is stored. Share
/// it between gets and threads; other processes may use the same directory at once.
class Cache {
public:
    /// Opens (creating if need be) the cache in `dir`.
    explicit Cache(const std::string &dir) {
        daskr_cache_t *out = nullptr;
        detail::check(daskr_cache_open(dir.c_str(), &out));
        c_.reset(out);
    }
    /// Bounds the directory's size: least recently used entries go after a get that stored.
    /// 0: no bound.
    void set_max_bytes(uint64_t bytes) noexcept { daskr_cache_set_max_bytes(c_.get(), bytes); }
    /// Results whose encoding is larger are not stored. 0: no limit.
    void set_max_entry_bytes(uint64_t bytes) noexcept { daskr_cache_set_max_entry_bytes(c_.get(), bytes); }
    struct Usage {
        uint64_t entries = 0;
        uint64_t bytes = 0;
    };
    /// How many entries the directory holds, and their bytes.
    Usage usage() const noexcept {
        Usage u;
        daskr_cache_usage(c_.get(), &u.entries, &u.bytes);
        return u;
    }
    /// Removes every entry.
    void clear() { detail::check(daskr_cache_clear(c_.get())); }
    const daskr_cache_t *raw() const noexcept { return c_.get(); }

private:
    struct Deleter {
        void operator()(daskr_cache_t *c) const noexcept { daskr_cache_free(c); }
    };
    std::unique_ptr<daskr_cache_t, Deleter> c_;
};

struct Options {
    Scheduler scheduler = Scheduler::Threads;
    /// Threads for the threads scheduler (the caller's included), worker processes for the
    /// processes scheduler; 0 = available cores.
    uint32_t workers = 0;
    Callbacks callbacks;
    /// Borrowed for the get; nullptr for none.
    const Cancel *cancel = nullptr;
    /// Filled in when the get returns (success or not); nullptr for none. peak_held is only
    /// measured for gets given stats.
    Stats *stats = nullptr;
    /// Records the get's profile; borrowed for the get, nullptr for none.
    const Profile *profile = nullptr;
    /// Counts entries as they run, readable from other threads; borrowed for the get.
    const Progress *progress = nullptr;
    /// Results kept on disk (tasks found there are not run); borrowed for the get, nullptr
    /// for none. Every scheduler; under distributed, a directory every worker reaches.
    const Cache *cache = nullptr;
    // workers and the members below are read by some schedulers only (scheduler_reads says
    // which).
    /// Processes: how many times a task whose worker process died runs again on a fresh
    /// worker before the get throws a worker_died Error.
    uint32_t retries = 0;
    /// Processes: a task running longer than this has its worker killed, and the get throws
    /// a worker_died Error. Zero (the default) for no limit. Any std::chrono duration converts.
    std::chrono::duration<double> task_timeout{0};
    /// Distributed: the Dask scheduler's address, "tcp://host:port"; empty for $DASKR_ADDRESS.
    std::string address;
};

/// Ends the idle worker processes the processes scheduler keeps between gets (the next get
/// starts new ones); see daskr_workers_shutdown.
inline void shutdown_workers() noexcept { daskr_workers_shutdown(); }

/// Gives the memory daskr keeps for reuse (up to 512 MiB freed by big graphs) back to the
/// system; returns the bytes. See daskr_memory_release.
inline std::size_t release_memory() noexcept { return daskr_memory_release(); }

namespace detail {
struct CallbackState {
    const Callbacks *cb;
    std::exception_ptr error;
    template <class F> void guarded(F &&f) noexcept {
        if (error) return;
        try {
            f();
        } catch (...) {
            error = std::current_exception();
        }
    }
};
} // namespace detail
} // namespace daskr

extern "C" {
inline void daskr_hpp_cb_start(void *ud, size_t entries) noexcept {
    auto *s = static_cast<daskr::detail::CallbackState *>(ud);
    if (s->cb->start) s->guarded([&] { s->cb->start(entries); });
}
inline void daskr_hpp_cb_pretask(void *ud, const char *key, uint32_t worker) noexcept {
    auto *s = static_cast<daskr::detail::CallbackState *>(ud);
    if (s->cb->pretask) s->guarded([&] { s->cb->pretask(key ? key : "", worker); });
}
inline void daskr_hpp_cb_posttask(void *ud, const char *key, bool ok, uint32_t worker) noexcept {
    auto *s = static_cast<daskr::detail::CallbackState *>(ud);
    if (s->cb->posttask) s->guarded([&] { s->cb->posttask(key ? key : "", ok, worker); });
}
inline void daskr_hpp_cb_finish(void *ud, bool failed) noexcept {
    auto *s = static_cast<daskr::detail::CallbackState *>(ud);
    if (s->cb->finish) s->guarded([&] { s->cb->finish(failed); });
}
}

namespace daskr {

// ---------------------------------------------------------------------------------------
// Graphs
// ---------------------------------------------------------------------------------------

/// A task graph (move-only). Build it with add*, run it with get. Every failed call throws
/// Error and leaves the graph unchanged.
class Graph {
public:
    Graph() : g_(daskr_graph_new()) {
        if (!g_) throw Error(DASKR_ERROR_INTERNAL, "daskr_graph_new failed");
    }

    /// Adds the entry `key` computing `comp` (a literal, ref, list or inline task).
    Task add(KeyArg key, Comp comp) {
        daskr_task_t t = 0;
        detail::check(daskr_graph_add(g_.get(), key.c_str(), comp.release(), &t));
        return Task{t};
    }
    /// Adds the literal entry `key`.
    template <class T> Task add_value(KeyArg key, T &&value) {
        Value v = to_value(std::forward<T>(value));
        daskr_task_t t = 0;
        detail::check(daskr_graph_add_value(g_.get(), key.c_str(), v.release(), &t));
        return Task{t};
    }
    /// Adds the task entry `key`: f(args..., kwargs...).
    Task add_task(KeyArg key, const Func &f, Args &&args = {}, Kwargs &&kwargs = {}) {
        return add_task_named(key.c_str(), f, args, kwargs);
    }
    /// Adds a task running a callable directly (a function named after the key).
    template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, Func> &&
                                                std::is_invocable_v<std::decay_t<F> &, Call &>>>
    Task add_task(KeyArg key, F &&f, Args args = {}, Kwargs kwargs = {}) {
        Func fn(key.c_str(), std::forward<F>(f));
        return add_task(key, fn, std::move(args), std::move(kwargs));
    }
    /// Adds an anonymous entry computing `comp`: it has no key and is reached only by its
    /// handle (in computations, and by get_task / get_tasks). Errors and callbacks name it
    /// `#<index>` (see daskr_graph_add). The cheapest way to add the entries of a big graph.
    Task add_anonymous(Comp comp) {
        daskr_task_t t = 0;
        detail::check(daskr_graph_add(g_.get(), nullptr, comp.release(), &t));
        return Task{t};
    }
    /// Adds an anonymous literal entry.
    template <class T> Task add_anonymous_value(T &&value) {
        Value v = to_value(std::forward<T>(value));
        daskr_task_t t = 0;
        detail::check(daskr_graph_add_value(g_.get(), nullptr, v.release(), &t));
        return Task{t};
    }
    /// Adds an anonymous task entry: f(args..., kwargs...).
    Task add_anonymous_task(const Func &f, Args &&args = {}, Kwargs &&kwargs = {}) {
        return add_task_named(nullptr, f, args, kwargs);
    }
    /// Adds the alias `key` for `target`.
    Task add_alias(KeyArg key, KeyArg target) {
        daskr_task_t t = 0;
        detail::check(daskr_graph_add_alias(g_.get(), key.c_str(), target.c_str(), &t));
        return Task{t};
    }
    /// The handle of `key`, defined yet or not.
    Task handle(KeyArg key) {
        daskr_task_t t = 0;
        detail::check(daskr_graph_handle(g_.get(), key.c_str(), &t));
        return Task{t};
    }
    /// The key behind a handle; throws for a handle this graph did not hand out, or one of an
    /// anonymous entry (which has no key).
    std::string key(Task t) const {
        const char *k = daskr_graph_key(g_.get(), t.id);
        if (!k)
            throw Error(DASKR_ERROR_INVALID_ARGUMENT,
                        "task handle " + std::to_string(t.id) + " has no key here (another graph's, or anonymous)");
        return k;
    }
    size_t size() const noexcept { return daskr_graph_len(g_.get()); }
    bool contains(KeyArg key) const { return daskr_graph_contains(g_.get(), key.c_str()); }

    /// Computes `keys` (one key or a nested list) and returns the results in the same shape.
    /// Throws Error on failure (every held result has been released by then).
    Value get(const Keys &keys, const Options &options = {}) const {
        Value request = keys.to_value();
        return run_get(options, [&](const daskr_get_options_t *o, daskr_value_t **out) {
            return daskr_graph_get(g_.get(), request.raw(), o, out);
        });
    }
    /// Computes the entry behind `task` (keyed or anonymous) and returns its result.
    Value get_task(Task task, const Options &options = {}) const {
        return run_get(options, [&](const daskr_get_options_t *o, daskr_value_t **out) {
            return daskr_graph_get_task(g_.get(), task.id, o, out);
        });
    }
    /// Computes the entries behind `tasks` and returns the list of their results, in order.
    Value get_tasks(const std::vector<Task> &tasks, const Options &options = {}) const {
        std::vector<daskr_task_t> ids;
        ids.reserve(tasks.size());
        for (Task t : tasks) ids.push_back(t.id);
        return run_get(options, [&](const daskr_get_options_t *o, daskr_value_t **out) {
            return daskr_graph_get_tasks(g_.get(), ids.data(), ids.size(), o, out);
        });
    }

    const daskr_graph_t *raw() const noexcept { return g_.get(); }
    daskr_graph_t *raw() noexcept { return g_.get(); }

private:
    // add_task and add_anonymous_task (key nullptr). Without keyword arguments no vectors
    // are made: the common task costs the wrapper nothing but the C call.
    // The keyword path lives out of line, so this one stays small enough to inline.
    Task add_task_named(const char *key, const Func &f, Args &args, Kwargs &kwargs) {
        auto a = args.release();
        if (kwargs.size() != 0) return add_task_with_kwargs(key, f, a, kwargs);
        daskr_task_t t = 0;
        detail::check(daskr_graph_add_task(g_.get(), key, f.raw(), a.data(), a.size(), nullptr, nullptr, 0, &t));
        return Task{t};
    }
    DASKR_DETAIL_COLD Task add_task_with_kwargs(const char *key, const Func &f, Args::Released a, Kwargs &kwargs) {
        auto k = kwargs.release();
        daskr_task_t t = 0;
        detail::check(daskr_graph_add_task(g_.get(), key, f.raw(), a.data(), a.size(), k.names.data(),
                                           k.values.data(), k.values.size(), &t));
        return Task{t};
    }
    /// A get with `options`: `request(o, out)` is the C call asking for what is wanted.
    template <class Request> Value run_get(const Options &options, Request request) const {
        daskr_get_options_t o;
        daskr_get_options_init(&o, sizeof o);
        o.scheduler = static_cast<daskr_scheduler_t>(options.scheduler);
        o.num_workers = options.workers;
        o.cancel = options.cancel ? options.cancel->raw() : nullptr;
        o.stats = options.stats;
        o.profile = options.profile ? options.profile->raw() : nullptr;
        o.progress = options.progress ? options.progress->raw() : nullptr;
        o.cache = options.cache ? options.cache->raw() : nullptr;
        o.retries = options.retries;
        o.task_timeout_s = options.task_timeout.count();
        o.address = options.address.empty() ? nullptr : options.address.c_str();
        detail::CallbackState state{&options.callbacks, nullptr};
        daskr_callbacks_t cb{};
        if (!options.callbacks.empty()) {
            cb.user_data = &state;
            cb.start = &daskr_hpp_cb_start;
            cb.pretask = &daskr_hpp_cb_pretask;
            cb.posttask = &daskr_hpp_cb_posttask;
            cb.finish = &daskr_hpp_cb_finish;
            o.callbacks = &cb;
        }
        daskr_value_t *out = nullptr;
        daskr_error_t *e = request(&o, &out);
        if (e) {
            if (state.error) daskr_error_free(e); // the callback's exception says more
            else throw Error::take(e);
        }
        Value result = out ? Value(out) : Value::null();
        if (state.error) std::rethrow_exception(state.error);
        return result;
    }

public:
    // ----- graph files (docs/graph-format.md) and pictures -----

    struct File;
    /// Reads the graph file at `path` (relative plugin paths are relative to its folder).
    /// Throws Error: invalid_graph naming the key and the place in it, plugin for a plugin
    /// that cannot be loaded.
    static File read_file(const std::string &path);
    /// Builds a graph from graph-file JSON; relative plugin paths are relative to `base_dir`
    /// (empty: the current directory).
    static File from_json(std::string_view json, const std::string &base_dir = {});

    /// The graph as graph-file JSON, with `keys` (if any) as its default request. Plugin paths
    /// inside `base_dir` are written relative to it (empty: all absolute). Throws Error
    /// (invalid_graph, naming the key) for an entry whose function is not a plugin's (a
    /// lambda has no name another program could load) or that holds a C++ object.
    std::string to_json(const std::optional<Keys> &keys = std::nullopt, const std::string &base_dir = {}) const {
        std::optional<Value> request;
        if (keys) request = keys->to_value();
        daskr_value_t *out = nullptr;
        detail::check(daskr_graph_to_json(g_.get(), request ? request->raw() : nullptr,
                                          base_dir.empty() ? nullptr : base_dir.c_str(), &out));
        return Value(out).as<std::string>();
    }
    /// Writes to_json(keys, base_dir) to the file at `path`; throws Error (invalid_argument,
    /// naming the path) if it cannot be written.
    void write_file(const std::string &path, const std::optional<Keys> &keys = std::nullopt,
                    const std::string &base_dir = {}) const {
        std::string text = to_json(keys, base_dir);
        std::unique_ptr<std::FILE, int (*)(std::FILE *)> f(std::fopen(path.c_str(), "wb"), &std::fclose);
        if (!f || std::fwrite(text.data(), 1, text.size(), f.get()) != text.size() || std::fflush(f.get()) != 0)
            throw Error(DASKR_ERROR_INVALID_ARGUMENT, "cannot write the graph file '" + path + "'");
    }

    /// Draws the part of the graph `keys` need to `path`: Graphviz DOT, or SVG when the path
    /// ends in ".svg" (rendered by Graphviz's dot). With a profile, entries are coloured by
    /// how long they ran in its last get; `failed_key` (if given) is drawn in red.
    void write_dot(const std::string &path, const Keys &keys, const Profile *profile = nullptr,
                   const std::optional<std::string> &failed_key = std::nullopt) const {
        Value request = keys.to_value();
        detail::check(daskr_graph_write_dot(g_.get(), request.raw(), profile ? profile->raw() : nullptr,
                                            failed_key ? failed_key->c_str() : nullptr, path.c_str()));
    }

private:
    explicit Graph(daskr_graph_t *adopt) : g_(adopt) {}
    struct Deleter {
        void operator()(daskr_graph_t *g) const noexcept { daskr_graph_free(g); }
    };
    std::unique_ptr<daskr_graph_t, Deleter> g_;
};

/// A graph read from a graph file, and the file's default request ("keys"), if it has one:
///   auto file = daskr::Graph::read_file("pipeline.json");
///   daskr::Value results = file.graph.get(*file.keys);
struct Graph::File {
    Graph graph;
    std::optional<Keys> keys;
};

inline Graph::File Graph::read_file(const std::string &path) {
    daskr_graph_t *g = nullptr;
    daskr_value_t *keys = nullptr;
    detail::check(daskr_graph_from_file(path.c_str(), &g, &keys));
    File f{Graph(g), std::nullopt};
    if (keys) f.keys = Keys::from_value(Value(keys));
    return f;
}

inline Graph::File Graph::from_json(std::string_view json, const std::string &base_dir) {
    daskr_graph_t *g = nullptr;
    daskr_value_t *keys = nullptr;
    detail::check(daskr_graph_from_json(json.data(), json.size(), base_dir.empty() ? nullptr : base_dir.c_str(), &g,
                                        &keys));
    File f{Graph(g), std::nullopt};
    if (keys) f.keys = Keys::from_value(Value(keys));
    return f;
}

} // namespace daskr

#endif // DASKR_HPP
