// A handler argument that is not an extractor: the error names the problem.
use tomodachi_core::{Data, FromMessageParts, HandlerWithoutStateExt};

async fn on_order(count: u32, Data(order): Data<String>) {
    let _ = (count, order);
}

fn extractor<T: FromMessageParts<()>>() {}

fn main() {
    extractor::<u32>();
    let _ = on_order.into_service();
}
