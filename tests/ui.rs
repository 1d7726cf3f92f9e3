//! Compile-fail tests of the macros: every error message, on the user's token.
//!
//! The `.stderr` files are blessed with Rust 1.95 stable, the compiler this workspace is built
//! with; another compiler may word its errors differently. Re-bless with
//! `TRYBUILD=overwrite cargo test -p repod --test ui` and read the diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
