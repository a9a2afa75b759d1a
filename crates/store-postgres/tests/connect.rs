//! Connecting: migrations once, one keyring for every node, the master key checked.

use kestrel_crypto::MasterKey;
use kestrel_store::StoreError;
use kestrel_store_postgres::{PgOptions, PgStore, testing};

#[tokio::test]
async fn nodes_connecting_together_share_one_keyring_and_a_wrong_key_is_refused() {
    let Some(url) = testing::fresh_database().await else {
        return;
    };
    let key = MasterKey::generate().unwrap();
    let nodes = futures_util::future::join_all(
        (0..3).map(|_| PgStore::connect(&url, key.clone(), PgOptions::default())),
    )
    .await;
    for node in &nodes {
        assert!(node.is_ok(), "{node:?}");
    }
    let wrong = PgStore::connect(&url, MasterKey::generate().unwrap(), PgOptions::default()).await;
    assert!(
        matches!(wrong, Err(StoreError::WrongMasterKey(_))),
        "{wrong:?}"
    );
}

#[tokio::test]
async fn a_bad_url_is_refused_without_showing_its_password() {
    let refused = PgStore::connect(
        "postgres://kestrel:s3cret-pw@127.0.0.1:1/kestrel?connect_timeout=2",
        MasterKey::generate().unwrap(),
        PgOptions::default(),
    )
    .await
    .unwrap_err();
    let message = refused.to_string();
    assert!(!message.contains("s3cret-pw"), "{message}");
}
