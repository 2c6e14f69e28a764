//! tcpshut-record: records real Linux TCP teardowns into test captures.

fn main() {
    println!("tcpshut-record: work in progress");
}
