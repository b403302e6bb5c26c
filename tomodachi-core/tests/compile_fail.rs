//! What a user sees for a handler argument that is not an extractor
//! (`#[diagnostic::on_unimplemented]` on the extractor traits and `Handler`): the expected
//! compiler output is in `tests/ui/*.stderr`, that of `--all-features` as
//! `scripts/test.sh` builds it (the compiler lists the extractors the features enable,
//! `test-util`'s `MemoryContext` among them).
#![cfg(feature = "test-util")]

#[test]
fn wrong_handler_arguments_name_the_problem() {
    trybuild::TestCases::new().compile_fail("tests/ui/*.rs");
}
