//! What the integration tests share: a moto server, or the reason there is none.

use kestrel_store_aws::testing::DevAws;
use std::io::Write as _;

/// A moto server for one test; `None` (the test passes, saying why) when moto_server is
/// missing, unless `KESTREL_REQUIRE_MOTO` is set, where that is a failure.
pub(crate) fn moto() -> Option<DevAws> {
    match DevAws::start() {
        Ok(dev) => Some(dev),
        Err(reason) if std::env::var_os("KESTREL_REQUIRE_MOTO").is_none() => {
            // Straight to stderr: the harness would hide `eprintln!` of a passing test.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: {reason} (KESTREL_REQUIRE_MOTO=1 makes this a failure)"
            );
            None
        }
        Err(reason) => panic!("KESTREL_REQUIRE_MOTO is set but {reason}"),
    }
}
