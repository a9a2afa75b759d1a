//! Test helper (not installed with kestrel): writes secrets `k0`, `k1`, … with values
//! `value-0`, … into namespace `crash.test` of the store in DATA_DIR, printing each index on
//! stdout once its write is committed. The master key comes from `KESTREL_MASTER_KEY`.
//!
//! Usage: kestrel-store-writer DATA_DIR COUNT

use kestrel_crypto::{MasterKeySources, load_master_key};
use kestrel_secrets::SecretValue;
use kestrel_store::{Actor, SecretId, SecretStore};
use kestrel_store_sqlite::{SqliteStore, StoreOptions};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(count)) = (args.next(), args.next()) else {
        return Err("usage: kestrel-store-writer DATA_DIR COUNT".into());
    };
    let count: u64 = count.parse()?;
    let env_key = std::env::var("KESTREL_MASTER_KEY").ok();
    let key = load_master_key(&MasterKeySources {
        env_key: env_key.as_deref(),
        ..MasterKeySources::default()
    })?;
    let store = SqliteStore::open(&PathBuf::from(dir), key.key, StoreOptions::default())?;
    let actor = Actor::System("kestrel-store-writer".into());
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    let mut out = std::io::stdout().lock();
    for i in 0..count {
        let id = SecretId::main("crash.test", &format!("k{i}"))?;
        runtime.block_on(store.set(&actor, &id, &SecretValue::new(format!("value-{i}")), None))?;
        writeln!(out, "{i}")?;
        out.flush()?;
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kestrel-store-writer: {e}");
            ExitCode::FAILURE
        }
    }
}
