//! tcpshut: the command-line front end (argument parsing, directory walking,
//! parallel batches, progress and exit codes). The engine does the work.

fn main() {
    println!("tcpshut: work in progress");
}
