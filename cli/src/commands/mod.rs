//! One module a command of `decompte`.

pub mod credentials;
pub mod data;
pub mod publish;
pub mod report;
pub mod serve;
pub mod store;
