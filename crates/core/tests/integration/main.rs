//! Integration tests of the tcpshut binary and its Wireshark plugin.

mod util;
mod wireshark;
