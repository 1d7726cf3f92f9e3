//! Compile-fail tests of the macros: every error message, on the user's token.
//!
//! The `.stderr` files follow the stable compiler of this workspace (see `rust-version`);
//! re-bless with `TRYBUILD=overwrite cargo test -p repod --test ui` and read the diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
