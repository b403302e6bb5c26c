// `Option<T>` is an extractor only where `T` says what absent means.
use tomodachi_core::{FromMessageParts, State};

fn extractor<T: FromMessageParts<u8>>() {}

fn main() {
    extractor::<Option<State<u8>>>();
}
