//! Tests for capture reading.
