//! The OpenAPI 3.1 document, generated from the annotations of the handlers
//! in the route table ([`crate::http::table`]).

use utoipa::openapi::path::{Operation, ParameterIn, PathItem};
use utoipa::openapi::schema::{Schema, SchemaType, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::http::error::{IDEMPOTENCY_KEY, PROBLEM_JSON};

#[derive(OpenApi)]
#[openapi(
    info(title = "Rookery", description = "A real-time social-media backend. Every error is an RFC 9457 problem document."),
    components(schemas(crate::http::error::Problem, crate::domain::media::MediaView, crate::http::microblog::error::ErrorBody)),
    modifiers(&Operations, &Security, &CommonResponses, &ParametersAreNeverNull),
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

/// Every operation of the route table, with the schemas it refers to: what
/// the app serves is what the document shows.
struct Operations;

impl Modify for Operations {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for section in crate::http::table() {
            for op in &section.ops {
                openapi.merge(op.document());
            }
        }
    }
}

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

/// The answers an operation gets from the shared extractors, whatever its
/// handler does, declared once under `components/responses` and referenced
/// from every operation they apply to:
///
/// - a JSON request body: 400 (not JSON), 413 (over `ROOKERY_JSON_LIMIT`),
///   415 (not sent as `application/json`) and 422 (JSON of the wrong shape);
/// - query parameters: 400 (a value that does not parse, or is out of range);
/// - path parameters: 404 (an id that is not a whole number in the i64 range
///   names no resource);
/// - a security requirement: 401 (a missing, wrong or revoked credential);
/// - an `Idempotency-Key` header: 400 (a malformed key), 409 (a request with
///   the key still running) and 422 (the key used for another request).
///
/// An operation that documents one of these statuses itself keeps its own
/// description. An error answer (4xx, 5xx) an operation declares without a
/// body, as in `(status = 403, description = "Not the author")`, gets the
/// error body. Operations under `/api` (not `/api/v1`) get the
/// microblog-compatible error body instead of a problem document.
struct CommonResponses;

/// `(status, component name, description)` of each shared answer.
const COMMON: [(&str, &str, &str); 7] = [
    (
        "400",
        "BadRequest",
        "The request cannot be read: the body is not valid JSON, or a query parameter does not parse (the wrong type, or a number outside the 64-bit range)",
    ),
    (
        "401",
        "Unauthorized",
        "A credential is required and none was sent, or it is wrong, expired or revoked",
    ),
    (
        "404",
        "NotFound",
        "No such resource; also an id in the path that is not a whole number in the 64-bit range",
    ),
    (
        "409",
        "Conflict",
        "A request with the same Idempotency-Key is still being processed (or, where the operation says so, another conflict)",
    ),
    (
        "413",
        "PayloadTooLarge",
        "The body is over ROOKERY_JSON_LIMIT (64 KiB by default)",
    ),
    (
        "415",
        "UnsupportedMediaType",
        "The body was not sent with Content-Type: application/json",
    ),
    (
        "422",
        "Unprocessable",
        "Well-formed JSON that is not acceptable: a missing field, a value of the wrong type, or a field the server refuses; or an Idempotency-Key already used for another request",
    ),
];

/// The prefix of the microblog-compatible components' names.
const MICROBLOG: &str = "Microblog";

fn is_microblog(path: &str) -> bool {
    path.starts_with("/api/") && !path.starts_with("/api/v1/")
}

/// The error body of an API: a problem document, or the compat error body.
fn error_body(microblog: bool) -> (&'static str, Content) {
    let (content_type, schema) = if microblog {
        ("application/json", "ErrorBody")
    } else {
        (PROBLEM_JSON, "Problem")
    };
    let content = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name(schema)))
        .build();
    (content_type, content)
}

fn common_response(description: &str, microblog: bool) -> Response {
    let (content_type, content) = error_body(microblog);
    ResponseBuilder::new()
        .description(description)
        .content(content_type, content)
        .build()
}

/// Whether `status` is an error answer (4xx or 5xx).
fn is_error(status: &str) -> bool {
    status.starts_with(['4', '5'])
}

/// The statuses the shared extractors can answer `operation` with.
fn common_statuses(operation: &Operation) -> Vec<&'static str> {
    let has_param = |place: ParameterIn| {
        operation
            .parameters
            .iter()
            .flatten()
            .any(|p| p.parameter_in == place)
    };
    let json_body = operation
        .request_body
        .as_ref()
        .is_some_and(|body| body.content.contains_key("application/json"));
    let mut statuses = Vec::new();
    if json_body || has_param(ParameterIn::Query) {
        statuses.push("400");
    }
    if operation.security.as_ref().is_some_and(|s| !s.is_empty()) {
        statuses.push("401");
    }
    if has_param(ParameterIn::Path) {
        statuses.push("404");
    }
    if json_body {
        statuses.extend(["413", "415", "422"]);
    }
    let idempotent = operation.parameters.iter().flatten().any(|p| {
        p.parameter_in == ParameterIn::Header && p.name.eq_ignore_ascii_case(IDEMPOTENCY_KEY)
    });
    if idempotent {
        statuses.extend(["400", "409", "422"]);
    }
    statuses.sort_unstable();
    statuses.dedup();
    statuses
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for (_, name, description) in COMMON {
            components
                .responses
                .insert(name.to_owned(), common_response(description, false).into());
            components.responses.insert(
                format!("{MICROBLOG}{name}"),
                common_response(description, true).into(),
            );
        }
        for (path, item) in openapi.paths.paths.iter_mut() {
            let microblog = is_microblog(path);
            let prefix = if microblog { MICROBLOG } else { "" };
            for operation in operations(item) {
                for (status, response) in operation.responses.responses.iter_mut() {
                    match response {
                        RefOr::T(response) if is_error(status) && response.content.is_empty() => {
                            let (content_type, content) = error_body(microblog);
                            response.content.insert(content_type.to_owned(), content);
                        }
                        _ => {}
                    }
                }
                for status in common_statuses(operation) {
                    let Some((_, name, _)) = COMMON.iter().find(|(s, _, _)| *s == status) else {
                        continue;
                    };
                    operation
                        .responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| {
                            Ref::from_response_name(format!("{prefix}{name}")).into()
                        });
                }
            }
        }
    }
}

/// utoipa documents an `Option` parameter as nullable, but a query, path or
/// header value is text: absent, or present as a string. `null` there is
/// not a value a client can send (`?limit=null` is the text "null", a 400),
/// so the document drops it from parameter schemas.
struct ParametersAreNeverNull;

fn is_null(schema: &RefOr<Schema>) -> bool {
    matches!(schema, RefOr::T(Schema::Object(o)) if o.schema_type == SchemaType::Type(Type::Null))
}

fn without_null(schema: &mut RefOr<Schema>) {
    match schema {
        RefOr::T(Schema::Object(object)) => {
            if let SchemaType::Array(types) = &mut object.schema_type {
                types.retain(|t| *t != Type::Null);
                if let [only] = types.as_slice() {
                    object.schema_type = SchemaType::Type(only.clone());
                }
            }
        }
        RefOr::T(Schema::OneOf(one_of)) => {
            one_of.items.retain(|item| !is_null(item));
            if one_of.items.len() == 1 {
                let only = one_of.items.remove(0);
                *schema = only;
            }
        }
        _ => {}
    }
}

impl Modify for ParametersAreNeverNull {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for operation in operations(item) {
                for parameter in operation.parameters.iter_mut().flatten() {
                    if let Some(schema) = parameter.schema.as_mut() {
                        without_null(schema);
                    }
                }
            }
        }
    }
}
