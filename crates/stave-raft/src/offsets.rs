//! Consumer groups' committed offsets, as the partitions of the internal topic `__offsets`
//! hold them. A commit is an ordinary record in an ordinary batch (key: group, topic and
//! partition; value: the offset, when, and the consumer's metadata; no value: forget the
//! entry), so it is replicated, acknowledged and deduplicated like any produce. The
//! partition's state machine applies committed records to an [`OffsetsTable`], which is part
//! of its snapshot: snapshot + purge compacts the log, and a new coordinator (the new leader)
//! restores snapshot + log tail.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use stave_log::batch::{BatchView, Record};

/// The record key's first byte: the format of what follows (so later kinds of record, such
/// as group metadata, can share the partition).
const COMMIT_KEY_V1: u8 = 1;
/// A queue group's state for one partition (the broker's encoding; the table keeps the last
/// value per key).
const QUEUE_KEY_V1: u8 = 2;

/// Which offset: a group's position in one partition of one topic.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OffsetKey {
    pub group: String,
    pub topic: String,
    pub partition: u32,
}

/// A committed offset: the next record the group will read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Committed {
    pub offset: u64,
    /// When it was committed (epoch milliseconds, the committing member's clock).
    pub commit_ms: i64,
    /// Whatever the consumer attached (Kafka's offset metadata).
    pub metadata: String,
}

/// Why a record of an `__offsets` partition does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed offsets record: {0}")]
pub struct Malformed(pub &'static str);

impl OffsetKey {
    /// The record key: version byte, then group, topic (each length-prefixed) and partition.
    pub fn encode(&self) -> Vec<u8> {
        self.encode_as(COMMIT_KEY_V1)
    }

    /// The key of this partition's queue-group state record.
    pub fn encode_queue(&self) -> Vec<u8> {
        self.encode_as(QUEUE_KEY_V1)
    }

    fn encode_as(&self, version: u8) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + 8 + self.group.len() + self.topic.len() + 4);
        out.push(version);
        for part in [&self.group, &self.topic] {
            out.extend_from_slice(&(part.len() as u32).to_le_bytes());
            out.extend_from_slice(part.as_bytes());
        }
        out.extend_from_slice(&self.partition.to_le_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<OffsetKey, Malformed> {
        match Self::decode_any(bytes)? {
            (COMMIT_KEY_V1, key) => Ok(key),
            _ => Err(Malformed("unknown key version")),
        }
    }

    /// The key and its version byte.
    fn decode_any(bytes: &[u8]) -> Result<(u8, OffsetKey), Malformed> {
        let (&version, mut rest) = bytes.split_first().ok_or(Malformed("empty key"))?;
        if version != COMMIT_KEY_V1 && version != QUEUE_KEY_V1 {
            return Err(Malformed("unknown key version"));
        }
        let mut text = || -> Result<String, Malformed> {
            let (len, tail) = rest.split_at_checked(4).ok_or(Malformed("short key"))?;
            let len = u32::from_le_bytes(len.try_into().map_err(|_| Malformed("short key"))?);
            let (part, tail) = tail
                .split_at_checked(len as usize)
                .ok_or(Malformed("short key"))?;
            rest = tail;
            String::from_utf8(part.to_vec()).map_err(|_| Malformed("key is not UTF-8"))
        };
        let group = text()?;
        let topic = text()?;
        let partition: [u8; 4] = rest.try_into().map_err(|_| Malformed("key length"))?;
        let key = OffsetKey {
            group,
            topic,
            partition: u32::from_le_bytes(partition),
        };
        Ok((version, key))
    }
}

impl Committed {
    /// The record value: offset, commit time, then the metadata's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.metadata.len());
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.extend_from_slice(&self.commit_ms.to_le_bytes());
        out.extend_from_slice(self.metadata.as_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Committed, Malformed> {
        let (offset, rest) = bytes.split_at_checked(8).ok_or(Malformed("short value"))?;
        let (commit_ms, metadata) = rest.split_at_checked(8).ok_or(Malformed("short value"))?;
        Ok(Committed {
            offset: u64::from_le_bytes(offset.try_into().map_err(|_| Malformed("short value"))?),
            commit_ms: i64::from_le_bytes(
                commit_ms.try_into().map_err(|_| Malformed("short value"))?,
            ),
            metadata: String::from_utf8(metadata.to_vec())
                .map_err(|_| Malformed("metadata is not UTF-8"))?,
        })
    }
}

/// The record that commits `committed` for `key` (`None`: forget the key).
pub fn commit_record(key: &OffsetKey, committed: Option<&Committed>) -> (Vec<u8>, Option<Vec<u8>>) {
    (key.encode(), committed.map(Committed::encode))
}

/// The committed offsets an `__offsets` partition holds, as of its applied index.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsetsTable {
    /// Serialized as a list: JSON maps need string keys.
    #[serde(with = "as_list")]
    entries: BTreeMap<OffsetKey, Committed>,
    /// Queue groups' state per partition, as the broker encodes it (absent from snapshots
    /// written before queue groups, and left out while empty, so a table without it writes
    /// the same bytes as before).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty", with = "as_list")]
    queues: BTreeMap<OffsetKey, Vec<u8>>,
}

mod as_list {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::OffsetKey;

    pub fn serialize<S: Serializer, V: Serialize>(
        map: &BTreeMap<OffsetKey, V>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let list: Vec<(&OffsetKey, &V)> = map.iter().collect();
        list.serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>, V: Deserialize<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<OffsetKey, V>, D::Error> {
        let list: Vec<(OffsetKey, V)> = Vec::deserialize(deserializer)?;
        Ok(list.into_iter().collect())
    }
}

impl OffsetsTable {
    /// Applies every record of a committed data frame. A record that does not decode is
    /// skipped (logged): the table must apply the same way on every replica, and the broker
    /// only writes well-formed records.
    pub fn apply_frame(&mut self, frame: &bytes::Bytes) {
        // The leader applies the frame its producer sent (unstamped), followers the stored one.
        let parsed =
            BatchView::parse(frame.clone()).or_else(|_| BatchView::parse_unstamped(frame.clone()));
        let view = match parsed {
            Ok(view) => view,
            Err(err) => {
                tracing::warn!(%err, "skipping an undecodable batch in __offsets");
                return;
            }
        };
        for record in view.records() {
            let record = match record {
                Ok(record) => record,
                Err(err) => {
                    tracing::warn!(%err, "skipping an undecodable record in __offsets");
                    return;
                }
            };
            let Some(key) = record.key else { continue };
            let key = match OffsetKey::decode_any(key) {
                Ok((COMMIT_KEY_V1, key)) => key,
                Ok((_, key)) => {
                    match record.value {
                        Some(value) => self.queues.insert(key, value.to_vec()),
                        None => self.queues.remove(&key),
                    };
                    continue;
                }
                Err(err) => {
                    tracing::warn!(%err, "skipping a record in __offsets");
                    continue;
                }
            };
            match record.value.map(Committed::decode) {
                None => {
                    self.entries.remove(&key);
                }
                Some(Ok(committed)) => {
                    self.entries.insert(key, committed);
                }
                Some(Err(err)) => tracing::warn!(%err, "skipping a record in __offsets"),
            }
        }
    }

    pub fn get(&self, key: &OffsetKey) -> Option<&Committed> {
        self.entries.get(key)
    }

    /// Every committed offset of `group`.
    pub fn group(&self, group: &str) -> impl Iterator<Item = (&OffsetKey, &Committed)> {
        self.entries
            .iter()
            .filter(move |(key, _)| key.group == group)
    }

    /// Every committed offset, ordered by consumer group, topic and partition.
    pub fn entries(&self) -> impl Iterator<Item = (&OffsetKey, &Committed)> {
        self.entries.iter()
    }

    /// Every queue-group state record of `group` (partitions it holds state for).
    pub fn queue_group(&self, group: &str) -> impl Iterator<Item = (&OffsetKey, &[u8])> {
        self.queues
            .iter()
            .filter(move |(key, _)| key.group == group)
            .map(|(key, value)| (key, value.as_slice()))
    }

    /// The groups with a committed offset.
    pub fn groups(&self) -> Vec<String> {
        let mut groups: Vec<String> = self.entries.keys().map(|k| k.group.clone()).collect();
        groups.dedup();
        groups
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A record of `commit_record`'s parts, for a `BatchBuilder`.
pub fn as_record<'a>(key: &'a [u8], value: Option<&'a [u8]>, timestamp: i64) -> Record<'a> {
    Record {
        timestamp,
        key: Some(key),
        value,
        headers: &[],
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use stave_log::batch::BatchBuilder;

    use super::*;

    fn key(group: &str, topic: &str, partition: u32) -> OffsetKey {
        OffsetKey {
            group: group.into(),
            topic: topic.into(),
            partition,
        }
    }

    fn committed(offset: u64) -> Committed {
        Committed {
            offset,
            commit_ms: 1_800_000_000_000,
            metadata: format!("m{offset}"),
        }
    }

    /// A frame as a producer builds it.
    fn frame(records: &[(OffsetKey, Option<Committed>)]) -> bytes::Bytes {
        let encoded: Vec<(Vec<u8>, Option<Vec<u8>>)> = records
            .iter()
            .map(|(k, c)| commit_record(k, c.as_ref()))
            .collect();
        let mut builder = BatchBuilder::new();
        for (k, v) in &encoded {
            builder.push(&as_record(k, v.as_deref(), 0));
        }
        bytes::Bytes::from(builder.finish())
    }

    #[test]
    fn keys_and_values_round_trip_and_refuse_garbage() {
        let k = key("email", "v1.user.signedup", 7);
        assert_eq!(OffsetKey::decode(&k.encode()).unwrap(), k);
        let c = committed(42);
        assert_eq!(Committed::decode(&c.encode()).unwrap(), c);
        assert!(OffsetKey::decode(&[]).is_err());
        assert!(OffsetKey::decode(&[9, 0, 0]).is_err());
        assert!(OffsetKey::decode(&k.encode()[..10]).is_err());
        assert!(Committed::decode(&[1, 2, 3]).is_err());
    }

    #[test]
    fn the_latest_commit_wins_and_a_tombstone_forgets() {
        let mut table = OffsetsTable::default();
        let a = key("email", "v1.orders", 0);
        let b = key("billing", "v1.orders", 0);
        table.apply_frame(&frame(&[
            (a.clone(), Some(committed(5))),
            (b.clone(), Some(committed(1))),
        ]));
        table.apply_frame(&frame(&[(a.clone(), Some(committed(9)))]));
        assert_eq!(table.get(&a), Some(&committed(9)));
        assert_eq!(
            table.groups(),
            vec!["billing".to_string(), "email".to_string()]
        );
        table.apply_frame(&frame(&[(b.clone(), None)]));
        assert_eq!(table.get(&b), None);
        assert_eq!(table.len(), 1);

        let json = serde_json::to_string(&table).unwrap();
        let back: OffsetsTable = serde_json::from_str(&json).unwrap();
        assert_eq!(back, table);
    }

    #[test]
    fn queue_state_records_sit_beside_commits_and_survive_a_snapshot() {
        let mut table = OffsetsTable::default();
        let k = key("mailer", "v1.jobs", 2);
        let mut builder = BatchBuilder::new();
        let state_key = k.encode_queue();
        builder.push(&as_record(&state_key, Some(b"state-1"), 0));
        let commit = commit_record(&k, Some(&committed(7)));
        builder.push(&as_record(&commit.0, commit.1.as_deref(), 0));
        table.apply_frame(&bytes::Bytes::from(builder.finish()));
        // The state record is not a commit, and the commit is not a state record.
        assert_eq!(table.get(&k), Some(&committed(7)));
        let states: Vec<(&OffsetKey, &[u8])> = table.queue_group("mailer").collect();
        assert_eq!(states, vec![(&k, &b"state-1"[..])]);
        assert_eq!(table.queue_group("other").count(), 0);

        let json = serde_json::to_string(&table).unwrap();
        let back: OffsetsTable = serde_json::from_str(&json).unwrap();
        assert_eq!(back, table);

        let mut builder = BatchBuilder::new();
        builder.push(&as_record(&state_key, None, 0));
        table.apply_frame(&bytes::Bytes::from(builder.finish()));
        assert_eq!(table.queue_group("mailer").count(), 0);
        assert_eq!(table.get(&k), Some(&committed(7)));
        // Without queue state, a table writes what it wrote before queue groups.
        assert!(!serde_json::to_string(&table).unwrap().contains("queues"));
    }
}
