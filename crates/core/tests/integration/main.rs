//! One test binary for the CLI (ripgrep style): each module covers one
//! area, sharing the helpers in `util`.

mod cli;
