//! The client-to-server half of the WebSocket protocol, as pure parsing.

use serde::Deserialize;

/// The close code of a connection whose credentials were revoked (a password
/// change, an account deletion, a revoked API key): sign in again.
pub const CLOSE_CREDENTIALS_REVOKED: u16 = 4401;

/// Posts one connection may follow live at once.
pub const MAX_SUBSCRIPTIONS: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// Live counters and comments of a post on screen.
    Subscribe {
        post_id: i64,
    },
    Unsubscribe {
        post_id: i64,
    },
    Ping,
}

/// Parses one text frame; the error names the problem for the client.
pub fn parse(text: &str) -> Result<ClientMessage, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("the frame is not JSON: {e}"))?;
    let Some(kind) = value
        .get("type")
        .and_then(|t| t.as_str())
        .map(str::to_owned)
    else {
        return Err(
            "the frame needs a string field \"type\": subscribe, unsubscribe or ping".into(),
        );
    };
    if !matches!(kind.as_str(), "subscribe" | "unsubscribe" | "ping") {
        return Err(format!(
            "unknown type {kind:?}: expected subscribe, unsubscribe or ping"
        ));
    }
    serde_json::from_value(value).map_err(|e| format!("invalid {kind} frame: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_messages() {
        assert_eq!(parse(r#"{"type":"ping"}"#).unwrap(), ClientMessage::Ping);
        assert_eq!(
            parse(r#"{"type":"subscribe","post_id":7}"#).unwrap(),
            ClientMessage::Subscribe { post_id: 7 }
        );
        assert_eq!(
            parse(r#"{"type":"unsubscribe","post_id":7}"#).unwrap(),
            ClientMessage::Unsubscribe { post_id: 7 }
        );
    }

    #[test]
    fn errors_name_the_problem() {
        assert!(parse("nope").unwrap_err().contains("not JSON"));
        assert!(parse(r#"{"post_id":1}"#).unwrap_err().contains("\"type\""));
        assert!(parse(r#"{"type":"dance"}"#)
            .unwrap_err()
            .contains("unknown type"));
        assert!(parse(r#"{"type":"subscribe"}"#)
            .unwrap_err()
            .contains("post_id"));
        assert!(parse(r#"{"type":"subscribe","post_id":"x"}"#)
            .unwrap_err()
            .contains("subscribe"));
    }
}
