//! What the type system refuses for typed events, with the compiler's own messages (the
//! `.stderr` files beside each case in `tests/ui`): a handler of the wrong event type, a send of
//! a type with no event name, an invoke with the wrong input, and malformed derives.

#[test]
fn typed_events_compile_fail() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
