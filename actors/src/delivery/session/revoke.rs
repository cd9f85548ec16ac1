//! Connections whose credentials were revoked close with
//! [`protocol::CLOSE_CREDENTIALS_REVOKED`]: on the bus's word ([`CloseRevoked`]),
//! or after a check of the credentials the database has now ([`CloseStale`]).

use actix::prelude::*;
use actix_ws::CloseCode;

use super::{Credential, SessionActor};
use crate::delivery::protocol;

/// The user's credentials were revoked: the connections that used them close
/// with [`protocol::CLOSE_CREDENTIALS_REVOKED`] (all of them, or those opened
/// with one API key).
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseRevoked {
    pub api_key_id: Option<i64>,
}

impl Handler<CloseRevoked> for SessionActor {
    type Result = ();

    fn handle(&mut self, msg: CloseRevoked, _: &mut Self::Context) {
        let ids: Vec<u64> = self
            .connections
            .iter()
            .filter(|(_, c)| match msg.api_key_id {
                None => true,
                Some(id) => c.credential == Credential::ApiKey { id },
            })
            .map(|(id, _)| *id)
            .collect();
        self.close_revoked(ids);
    }
}

/// The account's credentials as the database has them now, after this node
/// may have missed revocations (see [`crate::delivery::registry::Recheck`]).
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct CloseStale {
    pub active: bool,
    pub token_version: i32,
    pub api_keys: Vec<i64>,
}

impl Handler<CloseStale> for SessionActor {
    type Result = ();

    fn handle(&mut self, msg: CloseStale, _: &mut Self::Context) {
        let ids: Vec<u64> = self
            .connections
            .iter()
            .filter(|(_, c)| {
                !msg.active
                    || match c.credential {
                        Credential::AccessToken { version } => version != msg.token_version,
                        Credential::ApiKey { id } => !msg.api_keys.contains(&id),
                    }
            })
            .map(|(id, _)| *id)
            .collect();
        self.close_revoked(ids);
    }
}

impl SessionActor {
    fn close_revoked(&mut self, ids: Vec<u64>) {
        for id in ids {
            self.cut(
                id,
                CloseCode::Other(protocol::CLOSE_CREDENTIALS_REVOKED),
                "credentials revoked; sign in again",
            );
        }
        // Each transport detaches as it ends; the last one idles the session.
    }
}
