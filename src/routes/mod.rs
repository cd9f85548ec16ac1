//! The HTTP edge: thin handlers that parse, authorize, call one domain
//! function and map its result.

pub mod auth;
pub mod me;
pub mod ops;
pub mod users;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/healthz").route(web::get().to(ops::healthz)))
        .service(web::resource("/readyz").route(web::get().to(ops::readyz)))
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
                .service(web::resource("/users/{username}").route(web::get().to(users::profile))),
        );
}

/// For JSON fields where absent (leave alone) differs from `null` (clear).
pub(crate) fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    serde::Deserialize::deserialize(d).map(Some)
}
