//! The conformance suite against the SQLite backend, in memory.

decompte_store::conformance_tests!(std::sync::Arc::new(
    decompte_store::SqliteStore::in_memory().expect("in-memory SQLite")
));
