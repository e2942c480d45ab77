//! Errors: one type for everything that can go wrong, carrying a kind, the key at fault and
//! the other keys involved, so every surface (C, C++, Go, the command) can name them.

use std::fmt;

/// What went wrong. The names are the `kind` strings of docs/graph-format.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A task reported failure (or panicked / threw inside a wrapper).
    TaskFailed,
    /// The requested part of the graph has a cycle; `keys` lists the keys on it. Also a get
    /// inside a task that needs that task's own key: it would wait on itself (`key` and
    /// `keys` name the task).
    Cycle,
    /// `key` refers to a key that is not in the graph; `keys` holds that missing key.
    MissingDependency,
    /// A requested key is not in the graph.
    MissingKey,
    /// The graph (or a computation being added to it) is malformed.
    InvalidGraph,
    /// A plugin library could not be loaded or used.
    Plugin,
    /// The run was cancelled.
    Cancelled,
    /// A worker process died while running a task.
    WorkerDied,
    /// A bad argument over an API: NULL, invalid UTF-8, a task handle of another graph, a
    /// wrong option (or one the scheduler cannot honour).
    InvalidArgument,
    /// The graph was changed while a `get` on it was running (or a `get` started while a
    /// change was in progress).
    GraphInUse,
    /// A value did not have the type the caller asked for.
    TypeMismatch,
    /// An internal failure (a bug): a caught panic inside daskr itself.
    Internal,
    /// A file could not be read or written: missing, permission denied, a directory where a
    /// file was expected (the message names the path and the system's reason). Its own kind so
    /// a caller can tell "fix the path" from "fix the graph" (`invalid_graph`).
    Io,
}

impl ErrorKind {
    /// The stable name used in JSON and by every wrapper.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::TaskFailed => "task_failed",
            ErrorKind::Cycle => "cycle",
            ErrorKind::MissingDependency => "missing_dependency",
            ErrorKind::MissingKey => "missing_key",
            ErrorKind::InvalidGraph => "invalid_graph",
            ErrorKind::Plugin => "plugin",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::WorkerDied => "worker_died",
            ErrorKind::InvalidArgument => "invalid_argument",
            ErrorKind::GraphInUse => "graph_in_use",
            ErrorKind::TypeMismatch => "type_mismatch",
            ErrorKind::Internal => "internal",
            ErrorKind::Io => "io",
        }
    }
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 13] = [
        ErrorKind::TaskFailed,
        ErrorKind::Cycle,
        ErrorKind::MissingDependency,
        ErrorKind::MissingKey,
        ErrorKind::InvalidGraph,
        ErrorKind::Plugin,
        ErrorKind::Cancelled,
        ErrorKind::WorkerDied,
        ErrorKind::InvalidArgument,
        ErrorKind::GraphInUse,
        ErrorKind::TypeMismatch,
        ErrorKind::Internal,
        ErrorKind::Io,
    ];

    /// The kind with this `name`.
    pub fn from_name(name: &str) -> Option<ErrorKind> {
        ErrorKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// An error with its kind, the key at fault (if any), related keys and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub key: Option<String>,
    pub keys: Vec<String>,
    pub message: String,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            key: None,
            keys: Vec::new(),
            message: message.into(),
        }
    }

    pub fn with_key(mut self, key: impl Into<String>) -> Error {
        self.key = Some(key.into());
        self
    }

    pub fn with_keys(mut self, keys: Vec<String>) -> Error {
        self.keys = keys;
        self
    }

    pub fn invalid_argument(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::InvalidArgument, message)
    }

    pub fn invalid_graph(key: &str, message: impl Into<String>) -> Error {
        Error::new(
            ErrorKind::InvalidGraph,
            format!("key '{key}': {}", message.into()),
        )
        .with_key(key)
    }

    /// A file at `path` could not be read or written: `what` says which ("cannot read graph
    /// file"), `e` why.
    pub fn io(what: &str, path: &std::path::Path, e: &std::io::Error) -> Error {
        Error::new(ErrorKind::Io, format!("{what} '{}': {e}", path.display()))
    }

    pub fn cancelled() -> Error {
        Error::new(ErrorKind::Cancelled, "the run was cancelled")
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.name(), self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;
