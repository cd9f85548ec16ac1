//! The transports' end of a connection: attaching a client to its user's
//! session, the WebSocket task, the Server-Sent Events body and the long
//! poll. The session actor (the parent module) owns the connections; these
//! only move frames between a client and its attachment.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use actix::prelude::*;
use actix_ws::{
    CloseCode, CloseReason, Closed, Message as WsMessage, MessageStream, ProtocolError,
    Session as WsSession,
};
use bytestring::ByteString;
use futures_channel::mpsc;
use futures_util::StreamExt as _;
use tokio::sync::oneshot;

use super::client::ClientText;
use super::{
    ConnHandle, ConnKind, Credential, Disconnected, Out, Pong, SessionActor, SessionConfig,
};
use crate::delivery::registry::{Connect, SessionRegistry};

/// The largest frame a client may send.
pub const MAX_FRAME: usize = 64 * 1024;

/// A client attached to its user's session actor: the receiving end of its
/// bounded send queue and of its kill switch. Dropping it detaches the
/// client, so a transport that goes away (a closed socket, a dropped SSE
/// body, a finished poll) never leaves a connection behind.
pub struct Attachment {
    queue: mpsc::Receiver<Out>,
    cut: oneshot::Receiver<CloseReason>,
    guard: Detach,
}

impl Attachment {
    /// Why the session cut this client, once it has.
    pub fn cut_reason(&mut self) -> Option<CloseReason> {
        self.cut.try_recv().ok()
    }
}

struct Detach {
    session: Addr<SessionActor>,
    conn_id: u64,
}

impl Drop for Detach {
    fn drop(&mut self) {
        self.session.do_send(Disconnected {
            conn_id: self.conn_id,
        });
    }
}

/// Registers a client with its user's session actor. When this returns, every
/// event after `after` will reach the attachment, in order.
pub async fn attach(
    registry: &Addr<SessionRegistry>,
    config: &SessionConfig,
    user_id: i64,
    after: i64,
    kind: ConnKind,
    credential: Credential,
) -> Result<Attachment, MailboxError> {
    // A futures-channel queue holds `buffer` plus one per sender: this is
    // exactly `send_queue`. (tokio's bounded channel allocates its first
    // block of 32 slots up front, about 2 KiB a connection.)
    let (queue, rx) = mpsc::channel(config.send_queue.max(1) - 1);
    let (cut, cut_rx) = oneshot::channel();
    let (session, conn_id) = registry
        .send(Connect {
            user_id,
            handle: ConnHandle {
                kind,
                credential,
                queue,
                cut,
            },
            after,
        })
        .await?;
    Ok(Attachment {
        queue: rx,
        cut: cut_rx,
        guard: Detach { session, conn_id },
    })
}

/// Runs one WebSocket connection on the current (HTTP worker) thread, as one
/// task: it writes what the session actor queues and reads the client's
/// frames, forwarding them to the session actor.
///
/// This task lives as long as the connection, so its size counts per idle
/// connection. One task instead of a reader and a writer saved about 1 KiB.
/// The sends and the close, awaited only briefly, are boxed while they run
/// instead of reserving their space in the task for its whole life, and
/// nothing the future owns is stored twice: 1,072 bytes of future down to
/// 360.
pub fn serve_websocket(
    attachment: Attachment,
    ws: WsSession,
    stream: MessageStream,
) -> impl Future<Output = ()> {
    let stream = stream.max_frame_size(MAX_FRAME);
    // What the block captures is used in place, never rebound: a rebound
    // value would be stored in the task twice.
    let (mut queue, mut cut, guard, mut ws, mut stream) = (
        attachment.queue,
        attachment.cut,
        attachment.guard,
        ws,
        stream,
    );
    async move {
        let close_with = loop {
            // Polled by hand, in priority order (`select!` keeps more state in
            // the task than this needs).
            let wake = std::future::poll_fn(|cx| {
                if let Poll::Ready(reason) = Pin::new(&mut cut).poll(cx) {
                    return Poll::Ready(Wake::Cut(reason.ok()));
                }
                if let Poll::Ready(out) = queue.poll_next_unpin(cx) {
                    return Poll::Ready(Wake::Queued(out));
                }
                stream.poll_next_unpin(cx).map(Wake::Received)
            })
            .await;
            let item = match wake {
                Wake::Cut(reason) => break reason,
                Wake::Queued(None) => break None,
                Wake::Queued(Some(out)) => {
                    let mut send: Pin<Box<dyn Future<Output = Result<(), Closed>> + '_>> = match out
                    {
                        Out::Text(_, json) => Box::pin(ws.text(json)),
                        Out::Ping => Box::pin(ws.ping(b"")),
                    };
                    // A client that stopped reading blocks the send: the cut still gets through.
                    let sent = std::future::poll_fn(|cx| {
                        if let Poll::Ready(reason) = Pin::new(&mut cut).poll(cx) {
                            return Poll::Ready(Err(reason.ok()));
                        }
                        send.as_mut().poll(cx).map(Ok)
                    })
                    .await;
                    match sent {
                        Ok(Ok(())) => continue,
                        Err(reason) => break reason,
                        // The connection is gone: nothing to close.
                        Ok(Err(Closed)) => return,
                    }
                }
                Wake::Received(item) => item,
            };
            match item {
                Some(Ok(WsMessage::Text(text))) => guard.session.do_send(ClientText {
                    conn_id: guard.conn_id,
                    text: text.to_string(),
                }),
                Some(Ok(WsMessage::Ping(bytes))) => {
                    if Box::pin(ws.pong(&bytes)).await.is_err() {
                        return;
                    }
                }
                Some(Ok(WsMessage::Pong(_))) => guard.session.do_send(Pong {
                    conn_id: guard.conn_id,
                }),
                Some(Ok(WsMessage::Binary(_))) | Some(Ok(WsMessage::Continuation(_))) => {
                    break Some(CloseReason {
                        code: CloseCode::Unsupported,
                        description: Some("only text frames".into()),
                    });
                }
                Some(Ok(WsMessage::Nop)) => {}
                Some(Err(ProtocolError::Overflow)) => {
                    break Some(CloseReason {
                        code: CloseCode::Size,
                        description: Some(format!("frames are limited to {MAX_FRAME} bytes")),
                    });
                }
                // The closing handshake: answer with the client's code.
                Some(Ok(WsMessage::Close(reason))) => {
                    break reason.or(Some(CloseReason {
                        code: CloseCode::Normal,
                        description: None,
                    }));
                }
                // A fixed reason: a close frame's reason must fit in 123 bytes.
                Some(Err(_)) => {
                    break Some(CloseReason {
                        code: CloseCode::Protocol,
                        description: Some("malformed WebSocket frame".into()),
                    });
                }
                // The connection is gone.
                None => return,
            }
        };
        // Detach first: nothing more is queued for a connection that is closing.
        drop(guard);
        Box::pin(close(ws, close_with)).await;
    }
}

/// What woke a connection's task.
enum Wake {
    /// The session cut the connection (with a reason, unless it went away).
    Cut(Option<CloseReason>),
    /// The session queued something, or dropped the queue.
    Queued(Option<Out>),
    /// The client sent a frame, or the connection ended.
    Received(Option<Result<WsMessage, ProtocolError>>),
}

/// The body of a Server-Sent Events response: `id:` carries the event's log
/// id (so the browser's `Last-Event-ID` resumes exactly), `data:` the same
/// JSON a WebSocket client gets. Ends when the session cuts the client.
pub fn event_stream(attachment: Attachment) -> impl futures_util::Stream<Item = String> {
    let first = futures_util::stream::once(async { ": connected\n\n".to_owned() });
    let events = futures_util::stream::unfold(Some(attachment), |state| async move {
        let mut att = state?;
        let out = tokio::select! {
            biased;
            // The last event names the close, as a WebSocket's close frame
            // would; then the body ends.
            reason = &mut att.cut => return reason.ok().map(|r| (closed_event(&r), None)),
            out = att.queue.next() => out?,
        };
        let chunk = match out {
            Out::Text(Some(id), json) => format!("id: {id}\ndata: {json}\n\n"),
            Out::Text(None, json) => format!("data: {json}\n\n"),
            Out::Ping => ": keepalive\n\n".to_owned(),
        };
        Some((chunk, Some(att)))
    });
    first.chain(events)
}

/// `event: closed`, with the code and reason a WebSocket client would get.
fn closed_event(reason: &CloseReason) -> String {
    let data = serde_json::json!({
        "code": u16::from(reason.code),
        "reason": reason.description,
    });
    format!("event: closed\ndata: {data}\n\n")
}

/// Waits until `deadline` for the first event, then takes whatever else is
/// already queued, up to `max`. Returns the events' JSON and their log ids.
pub async fn long_poll(
    mut attachment: Attachment,
    deadline: tokio::time::Instant,
    max: usize,
) -> Vec<(Option<i64>, ByteString)> {
    let mut events = Vec::new();
    loop {
        let out = tokio::select! {
            biased;
            _ = &mut attachment.cut => break,
            out = attachment.queue.next() => out,
            _ = tokio::time::sleep_until(deadline) => break,
        };
        match out {
            Some(Out::Text(id, json)) => {
                events.push((id, json));
                break;
            }
            Some(Out::Ping) => continue,
            None => break,
        }
    }
    while events.len() < max.max(1) {
        match attachment.queue.try_recv() {
            Ok(Out::Text(id, json)) => events.push((id, json)),
            Ok(Out::Ping) => continue,
            Err(_) => break,
        }
    }
    events
}

async fn close(ws: WsSession, reason: Option<CloseReason>) {
    // A client that reads nothing never frees room for the close frame; give up after a while.
    let _ = tokio::time::timeout(Duration::from_secs(10), ws.close(reason)).await;
}
