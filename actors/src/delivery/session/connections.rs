//! A user's connections on this node, as their session actor keeps them.

use std::collections::{HashSet, VecDeque};

use actix_ws::CloseReason;
use futures_channel::mpsc;
use smallvec::SmallVec;
use tokio::sync::oneshot;

use super::{ByteStringEvent, ConnKind, Credential, Out};

pub(super) struct Connection {
    pub(super) kind: ConnKind,
    pub(super) credential: Credential,
    pub(super) queue: mpsc::Sender<Out>,
    pub(super) cut: Option<oneshot::Sender<CloseReason>>,
    pub(super) missed_pongs: u32,
    pub(super) subscriptions: HashSet<i64>,
    /// While the backlog is being fetched, live events wait here.
    pub(super) replaying: Option<Vec<ByteStringEvent>>,
    /// The id of the last logged event this connection was given.
    pub(super) last_sent: i64,
    /// Events that did not fit in the queue, in order, waiting for room.
    pub(super) overflow: VecDeque<Out>,
    /// The last replay filled its page: more of the log is owed.
    pub(super) more_in_log: bool,
}

/// A user's connections on this node, by id. Nearly always one, so it is
/// kept inline in the actor: a map would allocate its table per user.
#[derive(Default)]
pub(super) struct Connections(SmallVec<[(u64, Connection); 1]>);

impl Connections {
    pub(super) fn get_mut(&mut self, id: &u64) -> Option<&mut Connection> {
        self.0.iter_mut().find(|(k, _)| k == id).map(|(_, c)| c)
    }

    pub(super) fn insert(&mut self, id: u64, conn: Connection) {
        match self.get_mut(&id) {
            Some(existing) => *existing = conn,
            None => self.0.push((id, conn)),
        }
    }

    pub(super) fn remove(&mut self, id: &u64) -> Option<Connection> {
        let at = self.0.iter().position(|(k, _)| k == id)?;
        Some(self.0.remove(at).1)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(super) fn keys(&self) -> impl Iterator<Item = &u64> {
        self.0.iter().map(|(k, _)| k)
    }

    pub(super) fn values(&self) -> impl Iterator<Item = &Connection> {
        self.0.iter().map(|(_, c)| c)
    }

    pub(super) fn values_mut(&mut self) -> impl Iterator<Item = &mut Connection> {
        self.0.iter_mut().map(|(_, c)| c)
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&u64, &Connection)> {
        self.0.iter().map(|(k, c)| (k, c))
    }

    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = (&u64, &mut Connection)> {
        self.0.iter_mut().map(|(k, c)| (&*k, c))
    }
}
