//! The audit trail as a chain: what each row's link covers, and how a store's rows are checked
//! ([`verify`]). Each row names the row it follows (`previous`, none for the first) and carries
//! [`kestrel_crypto::ChainKey::link`] of its canonical bytes ([`row_bytes`]) after that row's
//! link. A row altered no longer matches its link; a row removed leaves the next one naming a
//! row that is not there; a purge of old rows leaves an anchor (the last purged row's id and
//! link) sealed by its own link, so that retention is told from removal. Removing the newest
//! rows leaves no trace in the chain itself: forwarding the trail as it is written (to a file or
//! syslog) is what covers that.

use crate::AuditEntry;
use kestrel_crypto::{ChainKey, LINK_LEN, Link};
use std::fmt;

/// The link before the first row of a chain.
pub const GENESIS: Link = [0; LINK_LEN];

/// One stored row as the chain reads it.
#[derive(Clone, Debug)]
pub struct ChainedRow {
    /// The entry, as stored.
    pub entry: AuditEntry,
    /// The id of the row it follows; none for the first row of the chain.
    pub previous: Option<i64>,
    /// Its link; none for a row written before kestrel chained its audit trail.
    pub link: Option<Link>,
}

/// Where the rows left after purges start: the last purged row, and the anchor's own link.
#[derive(Clone, Debug)]
pub struct Anchor {
    /// The id of the last purged row.
    pub id: i64,
    /// That row's link.
    pub link: Link,
    /// [`anchor_link`] of the two, which only the chain key can compute.
    pub seal: Link,
}

/// What sealed an anchor: its id and link under the chain key.
pub fn anchor_link(key: &ChainKey, id: i64, link: &Link) -> Link {
    let mut bytes = b"anchor".to_vec();
    bytes.extend_from_slice(&id.to_be_bytes());
    key.link(link, &bytes)
}

/// The bytes a row's link covers: every field, each length-prefixed, and the row it follows.
pub fn row_bytes(entry: &AuditEntry, previous: Option<i64>) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(128);
    let mut field = |value: Option<&[u8]>| match value {
        Some(value) => {
            bytes.push(1);
            bytes.extend_from_slice(&(value.len() as u64).to_be_bytes());
            bytes.extend_from_slice(value);
        }
        None => bytes.push(0),
    };
    field(Some(&entry.id.to_be_bytes()));
    field(previous.map(i64::to_be_bytes).as_ref().map(|b| &b[..]));
    field(Some(&entry.at.timestamp_millis().to_be_bytes()));
    field(Some(entry.actor.kind().as_bytes()));
    field(Some(entry.actor.id().as_bytes()));
    field(Some(entry.action.as_str().as_bytes()));
    field(entry.tenant.as_deref().map(str::as_bytes));
    field(entry.namespace.as_deref().map(str::as_bytes));
    field(entry.key.as_deref().map(str::as_bytes));
    field(entry.version.map(u64::to_be_bytes).as_ref().map(|b| &b[..]));
    bytes
}

/// A place where the chain does not hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChainBreak {
    /// The row's content or link was changed after it was written.
    Altered {
        /// The row.
        id: i64,
    },
    /// A row was removed (not purged): the one after it names it.
    Removed {
        /// The row that is gone.
        missing: i64,
        /// The row that follows it.
        before: i64,
    },
    /// The anchor a purge left was changed.
    AnchorAltered,
}

impl fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Altered { id } => write!(
                f,
                "audit row {id} was altered: its content does not match its link"
            ),
            Self::Removed { missing, before } => write!(
                f,
                "audit row {missing} was removed: row {before} follows it, and it is gone"
            ),
            Self::AnchorAltered => f.write_str(
                "the anchor a purge of old audit rows left was altered: rows may have been \
                 removed from the start of the trail",
            ),
        }
    }
}

/// What [`verify`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChainReport {
    /// Rows checked against their links.
    pub chained: u64,
    /// Rows written before kestrel chained its audit trail (first in the table, no link).
    pub unchained: u64,
    /// Every break, in the trail's order.
    pub breaks: Vec<ChainBreak>,
}

/// Checks `rows` (ascending ids) against their links under `key`, from `anchor` when old rows
/// were purged. Each break is reported once: the check goes on from each row's stored link.
pub fn verify(
    key: &ChainKey,
    anchor: Option<&Anchor>,
    rows: impl IntoIterator<Item = ChainedRow>,
) -> ChainReport {
    let mut report = ChainReport::default();
    let mut last: Option<(i64, Link)> = None;
    if let Some(anchor) = anchor {
        if anchor_link(key, anchor.id, &anchor.link) == anchor.seal {
            last = Some((anchor.id, anchor.link));
        } else {
            report.breaks.push(ChainBreak::AnchorAltered);
        }
    }
    let mut chain_started = anchor.is_some();
    for row in rows {
        let id = row.entry.id;
        let Some(link) = row.link else {
            // Unlinked rows may only come before the chain: written before kestrel chained.
            if chain_started {
                report.breaks.push(ChainBreak::Altered { id });
            } else {
                report.unchained += 1;
            }
            continue;
        };
        report.chained += 1;
        let before = match (row.previous, last) {
            (None, _) if chain_started => {
                // A second start: a row claiming to be the first, after others.
                report.breaks.push(ChainBreak::Altered { id });
                None
            }
            (None, _) => Some(GENESIS),
            (Some(previous), Some((last_id, last_link))) if previous == last_id => Some(last_link),
            (Some(missing), _) => {
                report.breaks.push(ChainBreak::Removed {
                    missing,
                    before: id,
                });
                None
            }
        };
        if before
            .is_some_and(|before| key.link(&before, &row_bytes(&row.entry, row.previous)) != link)
        {
            report.breaks.push(ChainBreak::Altered { id });
        }
        chain_started = true;
        last = Some((id, link));
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Actor, AuditAction};
    use chrono::{TimeZone as _, Utc};
    use kestrel_crypto::Keyring;

    fn entry(id: i64, key: &str) -> AuditEntry {
        AuditEntry {
            id,
            at: Utc.timestamp_millis_opt(1_700_000_000_000 + id).unwrap(),
            actor: Actor::User("ada".into()),
            action: AuditAction::Set,
            tenant: Some("main".into()),
            namespace: Some("team".into()),
            key: Some(key.into()),
            version: Some(1),
        }
    }

    /// A chain of `n` rows, ids from 1, each following the one before.
    fn chain(key: &ChainKey, n: i64) -> Vec<ChainedRow> {
        let mut rows: Vec<ChainedRow> = Vec::new();
        let mut before = GENESIS;
        for id in 1..=n {
            let previous = (id > 1).then(|| id - 1);
            let entry = entry(id, &format!("K{id}"));
            let link = key.link(&before, &row_bytes(&entry, previous));
            before = link;
            rows.push(ChainedRow {
                entry,
                previous,
                link: Some(link),
            });
        }
        rows
    }

    #[test]
    fn an_intact_chain_verifies() {
        let key = Keyring::generate().unwrap().chain_key();
        let report = verify(&key, None, chain(&key, 5));
        assert_eq!(report.chained, 5);
        assert!(report.breaks.is_empty(), "{report:?}");
    }

    #[test]
    fn an_altered_row_is_named_once() {
        let key = Keyring::generate().unwrap().chain_key();
        let mut rows = chain(&key, 5);
        rows[2].entry.key = Some("OTHER".into());
        let report = verify(&key, None, rows);
        assert_eq!(report.breaks, [ChainBreak::Altered { id: 3 }]);
        assert_eq!(
            report.breaks[0].to_string(),
            "audit row 3 was altered: its content does not match its link"
        );
    }

    #[test]
    fn a_removed_row_is_named() {
        let key = Keyring::generate().unwrap().chain_key();
        let mut rows = chain(&key, 5);
        rows.remove(1);
        let report = verify(&key, None, rows);
        assert_eq!(
            report.breaks,
            [ChainBreak::Removed {
                missing: 2,
                before: 3
            }]
        );
        let mut first_gone = chain(&key, 3);
        first_gone.remove(0);
        let report = verify(&key, None, first_gone);
        assert_eq!(
            report.breaks,
            [ChainBreak::Removed {
                missing: 1,
                before: 2
            }]
        );
    }

    #[test]
    fn a_purge_leaves_an_anchor_that_only_the_key_can_seal() {
        let key = Keyring::generate().unwrap().chain_key();
        let mut rows = chain(&key, 5);
        let purged: Vec<ChainedRow> = rows.drain(..2).collect();
        let last = purged.last().unwrap();
        let link = last.link.unwrap();
        let anchor = Anchor {
            id: last.entry.id,
            link,
            seal: anchor_link(&key, last.entry.id, &link),
        };
        assert!(verify(&key, Some(&anchor), rows.clone()).breaks.is_empty());
        let forged = Anchor {
            id: 3,
            link: rows[0].link.unwrap(),
            seal: anchor.seal,
        };
        let report = verify(&key, Some(&forged), rows[1..].to_vec());
        assert_eq!(
            report.breaks,
            [
                ChainBreak::AnchorAltered,
                ChainBreak::Removed {
                    missing: 3,
                    before: 4
                }
            ]
        );
    }

    #[test]
    fn rows_from_before_the_chain_count_apart_but_not_after_it() {
        let key = Keyring::generate().unwrap().chain_key();
        let mut rows = vec![ChainedRow {
            entry: entry(1, "OLD"),
            previous: None,
            link: None,
        }];
        rows.extend(chain(&key, 2).into_iter().map(|mut row| {
            row.entry.id += 1;
            row.previous = row.previous.map(|p| p + 1);
            row
        }));
        // Relink: the ids moved.
        let mut before = GENESIS;
        for row in rows.iter_mut().skip(1) {
            let link = key.link(&before, &row_bytes(&row.entry, row.previous));
            row.link = Some(link);
            before = link;
        }
        rows[1].previous = None;
        let link = key.link(&GENESIS, &row_bytes(&rows[1].entry, None));
        rows[1].link = Some(link);
        rows[2].link = Some(key.link(&link, &row_bytes(&rows[2].entry, rows[2].previous)));
        let report = verify(&key, None, rows.clone());
        assert_eq!((report.unchained, report.chained), (1, 2), "{report:?}");
        assert!(report.breaks.is_empty(), "{report:?}");
        rows[2].link = None;
        let report = verify(&key, None, rows);
        assert_eq!(report.breaks, [ChainBreak::Altered { id: 3 }]);
    }
}
