//! `messaging.destination.name` per the RabbitMQ semantic conventions.

use tracewire_shared::semconv::messaging::AMQ_DEFAULT;

/// The producer-side destination: `{exchange}:{routing_key}`, an empty part left out, and
/// `amq.default` when both are empty (the default exchange with no routing key).
///
/// ```
/// use tracewire_lapin::destination::producer;
///
/// assert_eq!(producer("orders", "created"), "orders:created");
/// assert_eq!(producer("", "jobs"), "jobs");
/// assert_eq!(producer("fanout", ""), "fanout");
/// assert_eq!(producer("", ""), "amq.default");
/// ```
pub fn producer(exchange: &str, routing_key: &str) -> String {
    let mut name = String::with_capacity(exchange.len() + routing_key.len() + 1);
    write_producer(&mut name, exchange, routing_key);
    name
}

/// [`producer`], appended to `out`.
pub(crate) fn write_producer(out: &mut String, exchange: &str, routing_key: &str) {
    write_joined(out, [exchange, routing_key]);
}

/// The non-empty `parts` joined by `:`, or `amq.default` when all are empty.
fn write_joined<const N: usize>(out: &mut String, parts: [&str; N]) {
    let start = out.len();
    for part in parts {
        if part.is_empty() {
            continue;
        }
        if out.len() > start {
            out.push(':');
        }
        out.push_str(part);
    }
    if out.len() == start {
        out.push_str(AMQ_DEFAULT);
    }
}

/// The consumer-side destination: `{exchange}:{routing_key}:{queue}`, empty parts left out, the
/// queue left out when it equals the routing key, and `amq.default` when nothing is left.
///
/// ```
/// use tracewire_lapin::destination::consumer;
///
/// assert_eq!(consumer("orders", "created", "billing"), "orders:created:billing");
/// assert_eq!(consumer("", "jobs", "jobs"), "jobs");
/// assert_eq!(consumer("fanout", "", "audit"), "fanout:audit");
/// assert_eq!(consumer("", "", ""), "amq.default");
/// ```
pub fn consumer(exchange: &str, routing_key: &str, queue: &str) -> String {
    let mut name = String::with_capacity(exchange.len() + routing_key.len() + queue.len() + 2);
    write_consumer(&mut name, exchange, routing_key, queue);
    name
}

/// [`consumer`], appended to `out`.
pub(crate) fn write_consumer(out: &mut String, exchange: &str, routing_key: &str, queue: &str) {
    let queue = if queue == routing_key { "" } else { queue };
    write_joined(out, [exchange, routing_key, queue]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_rules() {
        assert_eq!(consumer("ex", "rk", "q"), "ex:rk:q");
        assert_eq!(consumer("ex", "rk", "rk"), "ex:rk");
        assert_eq!(consumer("", "rk", "q"), "rk:q");
        assert_eq!(consumer("", "", "q"), "q");
        assert_eq!(consumer("ex", "", ""), "ex");
    }
}
