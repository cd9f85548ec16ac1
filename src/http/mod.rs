//! The edge: the only code that knows actix-web. The route table, the
//! mapping of every error to a problem document, the extractors that
//! authenticate and parse, and the two APIs served: the native one
//! ([`v1`]) and the microblog-compatible one ([`microblog`]).

pub mod error;
pub mod extract;
pub mod microblog;
pub mod openapi;
pub mod v1;
pub mod web_client;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/healthz").route(web::get().to(v1::ops::healthz)))
        .service(web::resource("/readyz").route(web::get().to(v1::ops::readyz)))
        .service(
            web::resource("/media/{key:.*}")
                .route(web::get().to(v1::media::serve))
                .route(web::head().to(v1::media::serve)),
        )
        .service(
            web::scope("/api/v1")
                .service(web::resource("/auth/register").route(web::post().to(v1::auth::register)))
                .service(web::resource("/auth/login").route(web::post().to(v1::auth::login)))
                .service(web::resource("/auth/refresh").route(web::post().to(v1::auth::refresh)))
                .service(web::resource("/auth/logout").route(web::post().to(v1::auth::logout)))
                .service(web::resource("/auth/verify").route(web::get().to(v1::auth::verify)))
                .service(
                    web::resource("/me")
                        .route(web::get().to(v1::me::get))
                        .route(web::patch().to(v1::me::update))
                        .route(web::delete().to(v1::me::delete)),
                )
                .service(
                    web::resource("/me/password").route(web::put().to(v1::me::change_password)),
                )
                .service(
                    web::resource("/me/api-keys")
                        .route(web::get().to(v1::me::list_api_keys))
                        .route(web::post().to(v1::me::create_api_key)),
                )
                .service(
                    web::resource("/me/api-keys/{id}")
                        .route(web::delete().to(v1::me::revoke_api_key)),
                )
                .service(web::resource("/media").route(web::post().to(v1::media::upload)))
                .service(web::resource("/stream").route(web::get().to(v1::stream::stream)))
                .service(web::resource("/events").route(web::get().to(v1::stream::poll)))
                .service(
                    web::resource("/events/stream").route(web::get().to(v1::stream::event_stream)),
                )
                .service(web::resource("/feed").route(web::get().to(v1::feed::feed)))
                .service(
                    web::resource("/notifications")
                        .route(web::get().to(v1::notifications::notifications)),
                )
                .service(
                    web::resource("/notifications/unread-count")
                        .route(web::get().to(v1::notifications::unread_count)),
                )
                .service(
                    web::resource("/notifications/read")
                        .route(web::post().to(v1::notifications::mark_read)),
                )
                .service(web::resource("/me/blocks").route(web::get().to(v1::social::blocks)))
                .service(
                    web::resource("/users/{username}").route(web::get().to(v1::social::profile)),
                )
                .service(
                    web::resource("/users/{id}/follow")
                        .route(web::put().to(v1::social::follow))
                        .route(web::delete().to(v1::social::unfollow)),
                )
                .service(
                    web::resource("/users/{id}/block")
                        .route(web::put().to(v1::social::block))
                        .route(web::delete().to(v1::social::unblock)),
                )
                .service(
                    web::resource("/users/{id}/followers")
                        .route(web::get().to(v1::social::followers)),
                )
                .service(
                    web::resource("/users/{id}/following")
                        .route(web::get().to(v1::social::following)),
                )
                .service(
                    web::resource("/users/{id}/posts").route(web::get().to(v1::posts::by_user)),
                )
                .service(web::resource("/posts").route(web::post().to(v1::posts::create)))
                .service(
                    web::resource("/posts/{id}")
                        .route(web::get().to(v1::posts::get))
                        .route(web::patch().to(v1::posts::edit))
                        .route(web::delete().to(v1::posts::delete)),
                )
                .service(
                    web::resource("/posts/{id}/history").route(web::get().to(v1::posts::history)),
                )
                .service(
                    web::resource("/posts/{id}/comments")
                        .route(web::get().to(v1::comments::for_post))
                        .route(web::post().to(v1::comments::create)),
                )
                .service(
                    web::resource("/posts/{id}/reactions")
                        .route(web::get().to(v1::posts::reactions))
                        .route(web::put().to(v1::posts::react))
                        .route(web::delete().to(v1::posts::unreact)),
                )
                .service(web::resource("/posts/{id}/views").route(web::post().to(v1::posts::view)))
                .service(
                    web::resource("/comments/{id}")
                        .route(web::get().to(v1::comments::get))
                        .route(web::patch().to(v1::comments::edit))
                        .route(web::delete().to(v1::comments::delete)),
                )
                .service(
                    web::resource("/comments/{id}/replies")
                        .route(web::get().to(v1::comments::replies)),
                ),
        )
        // After `/api/v1`: the microblog-compatible API takes the rest of `/api`.
        .configure(microblog::configure);
}
