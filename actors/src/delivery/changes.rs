//! Committed changes, as the read caches of every node hear of them.
//!
//! A write announces its domain events here after its commit: this node's
//! [`ChangeListener`] forgets what they touch before the write answers (so
//! the writer reads its own write), and the bus carries them to the other
//! nodes. Pub/sub may lose messages, so every message a node publishes has
//! a sequence number (a message dropped before publishing still uses one up),
//! and a node that publishes nothing sends its current number every
//! [`HEARTBEAT`]. A receiver that sees a number skipped, hears a node for the
//! first time in the middle of its sequence, or loses its subscription, may
//! have missed an invalidation: it [resets](ChangeListener::reset) its
//! caches. While it cannot hear everyone (no subscription, or a node silent
//! for longer than [`SILENT`]) its caches are not trusted at all, so reads
//! go to Postgres: a cache is never consulted while it could be stale.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::DomainEvent;

/// How often a node that published nothing says where its sequence stands.
pub const HEARTBEAT: Duration = Duration::from_millis(200);
/// A node heard from before and silent this long may be publishing changes
/// nobody hears: until it is heard again, caches are not trusted.
pub const SILENT: Duration = Duration::from_millis(1_000);
/// A node silent this long has stopped (a crash; a clean stop says goodbye):
/// it is forgotten, and caches are trusted again.
pub const FORGET: Duration = Duration::from_secs(10);

/// What keeps a read cache in step with committed changes. Implemented by
/// the server's caches; the engine calls it from the bus.
pub trait ChangeListener: Send + Sync + 'static {
    /// Changes that committed, on this node or another: forget what they touch.
    fn changed(&self, events: &[DomainEvent]);
    /// Changes may have been missed: forget everything. While `trusted` is
    /// false nothing may be read from the caches or put into them.
    fn reset(&self, trusted: bool);
}

/// The listener a node's engine reports to.
#[derive(Clone)]
pub struct Listener(pub Arc<dyn ChangeListener>);

impl fmt::Debug for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Listener")
    }
}

/// What one message from another node tells about what was missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    /// Next in that node's sequence: nothing missed.
    InOrder,
    /// Something of that node's was missed, or may have been.
    Missed,
}

/// The kind of a bus message, after its sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beat {
    /// A committed batch: it uses up the next number.
    Data,
    /// Nothing published since: repeats the last number.
    Alive,
    /// The node is stopping cleanly.
    Bye,
}

struct Peer {
    seq: u64,
    heard: Instant,
}

/// The other nodes as this node hears them: the last sequence number and
/// when it came. Pure bookkeeping, so it is tested without Redis.
#[derive(Default)]
pub struct Peers {
    known: HashMap<String, Peer>,
}

impl Peers {
    /// Records a message of `node`'s numbered `seq`.
    pub fn heard(&mut self, node: &str, seq: u64, beat: Beat, now: Instant) -> Heard {
        if beat == Beat::Bye {
            self.known.remove(node);
            return Heard::InOrder;
        }
        let expected = match (self.known.get(node), beat) {
            (Some(peer), Beat::Data) => peer.seq + 1,
            (Some(peer), _) => peer.seq,
            // A node heard for the first time is in order only at its start.
            (None, Beat::Data) => 1,
            (None, _) => 0,
        };
        self.known.insert(node.to_owned(), Peer { seq, heard: now });
        if seq == expected {
            Heard::InOrder
        } else {
            Heard::Missed
        }
    }

    /// Forgets every node (after a lost subscription: their sequences are
    /// picked up anew, and caches were reset anyway).
    pub fn clear(&mut self) {
        self.known.clear();
    }

    /// Whether a node that was heard has been silent past [`SILENT`];
    /// nodes silent past [`FORGET`] are dropped first.
    pub fn any_silent(&mut self, now: Instant) -> bool {
        self.known
            .retain(|_, p| now.saturating_duration_since(p.heard) < FORGET);
        self.known
            .values()
            .any(|p| now.saturating_duration_since(p.heard) >= SILENT)
    }
}

/// The header of a bus message: `node seq kind`, then a newline and, for
/// data, the batch.
pub fn header(node: &str, seq: u64, beat: Beat) -> String {
    let kind = match beat {
        Beat::Data => 'd',
        Beat::Alive => 'a',
        Beat::Bye => 'x',
    };
    format!("{node} {seq} {kind}\n")
}

/// Splits a message into its node, sequence number, kind and body.
pub fn parse_header(message: &[u8]) -> Option<(&[u8], u64, Beat, &[u8])> {
    let end = message.iter().position(|b| *b == b'\n')?;
    let (head, body) = message.split_at(end);
    let body = body.get(1..).unwrap_or_default();
    let mut parts = head.split(|b| *b == b' ');
    let node = parts.next()?;
    let seq = std::str::from_utf8(parts.next()?).ok()?.parse().ok()?;
    let beat = match parts.next()? {
        b"d" => Beat::Data,
        b"a" => Beat::Alive,
        b"x" => Beat::Bye,
        _ => return None,
    };
    parts.next().is_none().then_some((node, seq, beat, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_heard_in_order_misses_nothing() {
        let mut peers = Peers::default();
        let t = Instant::now();
        assert_eq!(peers.heard("a", 0, Beat::Alive, t), Heard::InOrder);
        assert_eq!(peers.heard("a", 1, Beat::Data, t), Heard::InOrder);
        assert_eq!(peers.heard("a", 2, Beat::Data, t), Heard::InOrder);
        assert_eq!(peers.heard("a", 2, Beat::Alive, t), Heard::InOrder);
        assert_eq!(peers.heard("a", 3, Beat::Data, t), Heard::InOrder);
    }

    #[test]
    fn a_skipped_number_or_a_first_message_mid_sequence_is_a_miss() {
        let mut peers = Peers::default();
        let t = Instant::now();
        assert_eq!(peers.heard("a", 1, Beat::Data, t), Heard::InOrder);
        assert_eq!(peers.heard("a", 3, Beat::Data, t), Heard::Missed);
        assert_eq!(peers.heard("a", 4, Beat::Data, t), Heard::InOrder);
        // The last data message was dropped: the heartbeat tells.
        assert_eq!(peers.heard("a", 5, Beat::Alive, t), Heard::Missed);
        assert_eq!(peers.heard("b", 7, Beat::Data, t), Heard::Missed);
        assert_eq!(peers.heard("c", 3, Beat::Alive, t), Heard::Missed);
        // After a goodbye the node is unknown again.
        assert_eq!(peers.heard("b", 7, Beat::Bye, t), Heard::InOrder);
        assert_eq!(peers.heard("b", 1, Beat::Data, t), Heard::InOrder);
    }

    #[test]
    fn a_silent_node_distrusts_until_heard_or_forgotten() {
        let mut peers = Peers::default();
        let t = Instant::now();
        peers.heard("a", 0, Beat::Alive, t);
        assert!(!peers.any_silent(t + SILENT / 2));
        assert!(peers.any_silent(t + SILENT));
        peers.heard("a", 0, Beat::Alive, t + SILENT);
        assert!(!peers.any_silent(t + SILENT + SILENT / 2));
        assert!(!peers.any_silent(t + SILENT + FORGET), "forgotten");
        assert_eq!(
            peers.heard("a", 0, Beat::Alive, t + SILENT + FORGET),
            Heard::InOrder
        );
    }

    #[test]
    fn headers_round_trip_and_garbage_is_refused() {
        let mut message = header("n-1", 42, Beat::Data).into_bytes();
        message.extend_from_slice(b"{\"x\":1}");
        let (node, seq, beat, body) = parse_header(&message).unwrap();
        assert_eq!(
            (node, seq, beat, body),
            (&b"n-1"[..], 42, Beat::Data, &b"{\"x\":1}"[..])
        );
        let bye = header("n-1", 7, Beat::Bye).into_bytes();
        assert_eq!(parse_header(&bye).unwrap().2, Beat::Bye);
        for garbage in [
            &b""[..],
            b"n-1\n{}",
            b"n-1 x d\n",
            b"n-1 1 q\n",
            b"n 1 d extra\n",
        ] {
            assert!(parse_header(garbage).is_none(), "{garbage:?}");
        }
    }
}
