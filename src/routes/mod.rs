//! The HTTP edge: thin handlers that parse, authorize, call one domain
//! function and map its result.

pub mod auth;
pub mod comments;
pub mod home;
pub(crate) mod idempotent;
pub mod me;
pub mod media;
pub mod ops;
pub mod posts;
pub mod social;
pub mod stream;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/healthz").route(web::get().to(ops::healthz)))
        .service(web::resource("/readyz").route(web::get().to(ops::readyz)))
        .service(
            web::resource("/media/{key:.*}")
                .route(web::get().to(media::serve))
                .route(web::head().to(media::serve)),
        )
        .service(
            web::scope("/api/v1")
                .service(web::resource("/auth/register").route(web::post().to(auth::register)))
                .service(web::resource("/auth/login").route(web::post().to(auth::login)))
                .service(web::resource("/auth/refresh").route(web::post().to(auth::refresh)))
                .service(web::resource("/auth/logout").route(web::post().to(auth::logout)))
                .service(web::resource("/auth/verify").route(web::get().to(auth::verify)))
                .service(
                    web::resource("/me")
                        .route(web::get().to(me::get))
                        .route(web::patch().to(me::update))
                        .route(web::delete().to(me::delete)),
                )
                .service(web::resource("/me/password").route(web::put().to(me::change_password)))
                .service(
                    web::resource("/me/api-keys")
                        .route(web::get().to(me::list_api_keys))
                        .route(web::post().to(me::create_api_key)),
                )
                .service(
                    web::resource("/me/api-keys/{id}").route(web::delete().to(me::revoke_api_key)),
                )
                .service(web::resource("/media").route(web::post().to(media::upload)))
                .service(web::resource("/stream").route(web::get().to(stream::stream)))
                .service(web::resource("/events").route(web::get().to(stream::poll)))
                .service(web::resource("/events/stream").route(web::get().to(stream::event_stream)))
                .service(web::resource("/feed").route(web::get().to(home::feed)))
                .service(web::resource("/notifications").route(web::get().to(home::notifications)))
                .service(
                    web::resource("/notifications/unread-count")
                        .route(web::get().to(home::unread_count)),
                )
                .service(
                    web::resource("/notifications/read").route(web::post().to(home::mark_read)),
                )
                .service(web::resource("/me/blocks").route(web::get().to(social::blocks)))
                .service(web::resource("/users/{username}").route(web::get().to(social::profile)))
                .service(
                    web::resource("/users/{id}/follow")
                        .route(web::put().to(social::follow))
                        .route(web::delete().to(social::unfollow)),
                )
                .service(
                    web::resource("/users/{id}/block")
                        .route(web::put().to(social::block))
                        .route(web::delete().to(social::unblock)),
                )
                .service(
                    web::resource("/users/{id}/followers").route(web::get().to(social::followers)),
                )
                .service(
                    web::resource("/users/{id}/following").route(web::get().to(social::following)),
                )
                .service(web::resource("/users/{id}/posts").route(web::get().to(posts::by_user)))
                .service(web::resource("/posts").route(web::post().to(posts::create)))
                .service(
                    web::resource("/posts/{id}")
                        .route(web::get().to(posts::get))
                        .route(web::patch().to(posts::edit))
                        .route(web::delete().to(posts::delete)),
                )
                .service(web::resource("/posts/{id}/history").route(web::get().to(posts::history)))
                .service(
                    web::resource("/posts/{id}/comments")
                        .route(web::get().to(comments::for_post))
                        .route(web::post().to(comments::create)),
                )
                .service(
                    web::resource("/posts/{id}/reactions")
                        .route(web::get().to(posts::reactions))
                        .route(web::put().to(posts::react))
                        .route(web::delete().to(posts::unreact)),
                )
                .service(web::resource("/posts/{id}/views").route(web::post().to(posts::view)))
                .service(
                    web::resource("/comments/{id}")
                        .route(web::get().to(comments::get))
                        .route(web::patch().to(comments::edit))
                        .route(web::delete().to(comments::delete)),
                )
                .service(
                    web::resource("/comments/{id}/replies").route(web::get().to(comments::replies)),
                ),
        )
        // After `/api/v1`: the microblog-compatible API takes the rest of `/api`.
        .configure(crate::compat::routes::configure);
}

/// For JSON fields where absent (leave alone) differs from `null` (clear).
pub(crate) fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    serde::Deserialize::deserialize(d).map(Some)
}
