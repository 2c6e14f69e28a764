//! Tests for link decoding.
