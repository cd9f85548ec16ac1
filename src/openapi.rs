//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::compat::{client, routes as compat};
use crate::routes::{auth, comments, home, me, media, ops, posts, social, stream};

#[derive(OpenApi)]
#[openapi(
    info(title = "Rookery", description = "A real-time social-media backend. Every error is an RFC 9457 problem document."),
    paths(
        ops::healthz, ops::readyz, client::root,
        auth::register, auth::login, auth::refresh, auth::logout, auth::verify,
        me::get, me::update, me::delete, me::change_password,
        me::list_api_keys, me::create_api_key, me::revoke_api_key,
        social::profile, social::follow, social::unfollow, social::followers, social::following,
        social::block, social::unblock, social::blocks,
        posts::create, posts::get, posts::edit, posts::delete, posts::history, posts::by_user,
        posts::react, posts::unreact, posts::reactions, posts::view,
        stream::stream,
        stream::poll,
        stream::event_stream,
        home::feed, home::notifications, home::unread_count, home::mark_read,
        comments::create, comments::for_post, comments::get, comments::replies, comments::edit, comments::delete,
        media::upload, media::serve,
        compat::feed, compat::create_tweet, compat::delete_tweet, compat::like, compat::unlike,
        compat::upload, compat::me, compat::user, compat::follow, compat::unfollow,
    ),
    components(schemas(crate::error::Problem, crate::media::MediaView, crate::compat::error::ErrorBody)),
    modifiers(&Security),
    tags(
        (name = "auth", description = "Registration, login and tokens"),
        (name = "me", description = "The caller's own account"),
        (name = "api-keys", description = "Long-lived keys for scripts and the microblog-compatible API"),
        (name = "users", description = "Public profiles"),
        (name = "social", description = "Follows and blocks"),
        (name = "posts", description = "Posts, edits and their history"),
        (name = "reactions", description = "Reactions and views"),
        (name = "comments", description = "Comments and replies"),
        (name = "stream", description = "Real-time events over WebSocket"),
        (name = "feed", description = "The caller's home feed"),
        (name = "notifications", description = "The caller's notifications"),
        (name = "media", description = "Image uploads, stripped of metadata, to attach to posts"),
        (name = "ops", description = "Health and readiness; Prometheus metrics at /metrics"),
        (name = "microblog", description = "The microblog-compatible API for existing single-page clients: under /api (not /api/v1), authenticated by the api-key header only; every answer has `result`, and errors are `{\"result\": false, \"error_type\", \"error_message\"}`"),
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("api-key"))),
        );
    }
}
