//! The `kestrel` command line.

fn main() {}
