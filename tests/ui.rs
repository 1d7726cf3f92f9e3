//! Compile-fail tests of the macros: every error message, on the user's token.
//!
//! The `.stderr` files are blessed with Rust 1.95 stable, the compiler this workspace is built
//! with; another compiler may word its errors differently. Re-bless with
//! `TRYBUILD=overwrite cargo test -p repod --test ui` and read the diff.
//!
//! One message lists other types that implement `Message`, and the optional parts add some:
//! its test has one snapshot for the lean build (`tests/ui-lean/`) and one for every optional
//! part on (`tests/ui-all-features/`, blessed with `--all-features`).

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
    let all = cfg!(all(
        feature = "tls",
        feature = "websocket",
        feature = "cluster",
        feature = "metrics"
    ));
    let none = cfg!(not(any(
        feature = "tls",
        feature = "websocket",
        feature = "cluster",
        feature = "metrics"
    )));
    if all {
        t.compile_fail("tests/ui-all-features/*.rs");
    } else if none {
        t.compile_fail("tests/ui-lean/*.rs");
    }
}
