//! End-to-end tests: the real HTTP server on loopback, the SQLite store, the
//! publisher writing the site to a folder. One test binary, one module per area.

mod browser;
mod corrections;
mod dynamodb;
mod flow;
mod prefecture;
mod properties;
mod publication;
mod rejections;
mod site_checks;
