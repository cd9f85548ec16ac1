//! The edge: the route table, the state handlers get, the mapping of every
//! error to a problem document, the extractors that authenticate and parse,
//! and the two APIs served: the native one ([`v1`]) and the
//! microblog-compatible one ([`microblog`]). Handlers, extractors and error
//! mapping live only here; `app` wires actix-web together.

pub mod error;
pub mod extract;
pub mod microblog;
pub mod openapi;
pub mod routes;
pub mod state;
pub mod v1;
pub mod web_client;

use actix_web::http::Method;
use actix_web::web;

use self::routes::{op, Mount, Section};

/// The route table: every operation the server answers, by its handler, in
/// the order actix tries them. Each handler's `#[utoipa::path]` gives its
/// method and path, and its operation in the OpenAPI document; operations
/// on the same path share one resource, so another method gets 405 with
/// `Allow`. The app registers, after these, `/docs`, `/openapi.json` and the
/// web client's fallback.
pub fn table() -> Vec<Section> {
    vec![
        Section {
            mount: Mount::Root,
            ops: vec![
                op!(v1::ops::healthz),
                op!(v1::ops::readyz),
                // A key has slashes in it: actix's `{key:.*}`.
                op!(v1::media::serve).tail().and_head(),
                op!(web_client::root).and_head(),
            ],
        },
        Section {
            mount: Mount::Scope("/api/v1"),
            ops: vec![
                op!(v1::auth::register),
                op!(v1::auth::login),
                op!(v1::auth::refresh),
                op!(v1::auth::logout),
                op!(v1::auth::verify),
                op!(v1::me::get),
                op!(v1::me::update),
                op!(v1::me::delete),
                op!(v1::me::change_password),
                op!(v1::me::list_api_keys),
                op!(v1::me::create_api_key),
                op!(v1::me::revoke_api_key),
                op!(v1::media::upload),
                op!(v1::stream::stream),
                op!(v1::stream::poll),
                op!(v1::stream::event_stream),
                op!(v1::feed::feed),
                op!(v1::notifications::notifications),
                op!(v1::notifications::unread_count),
                op!(v1::notifications::mark_read),
                op!(v1::social::blocks),
                op!(v1::social::profile),
                op!(v1::social::follow),
                op!(v1::social::unfollow),
                op!(v1::social::block),
                op!(v1::social::unblock),
                op!(v1::social::followers),
                op!(v1::social::following),
                op!(v1::posts::by_user),
                op!(v1::posts::create),
                op!(v1::posts::get),
                op!(v1::posts::edit),
                op!(v1::posts::delete),
                op!(v1::posts::history),
                op!(v1::comments::for_post),
                op!(v1::comments::create),
                op!(v1::posts::reactions),
                op!(v1::posts::react),
                op!(v1::posts::unreact),
                op!(v1::posts::view),
                op!(v1::comments::get),
                op!(v1::comments::edit),
                op!(v1::comments::delete),
                op!(v1::comments::replies),
            ],
        },
        // After `/api/v1`: the microblog-compatible API takes the rest of `/api`.
        Section {
            mount: Mount::Microblog,
            ops: vec![
                op!(microblog::feed),
                op!(microblog::create_tweet),
                op!(microblog::delete_tweet),
                op!(microblog::like),
                op!(microblog::unlike),
                op!(microblog::upload),
                // Before `/users/{id}`, which would otherwise take "me" for an id.
                op!(microblog::me),
                op!(microblog::user),
                op!(microblog::follow),
                op!(microblog::unfollow),
            ],
        },
    ]
}

/// Registers [`table`].
pub fn configure(cfg: &mut web::ServiceConfig) {
    for section in table() {
        section.mount(cfg);
    }
}

/// `(method, path)` of every route [`configure`] registers, from the same
/// registrations, with paths as the OpenAPI document writes them (for the
/// test that each is documented).
pub fn served() -> Vec<(Method, String)> {
    table().iter().flat_map(Section::served).collect()
}
