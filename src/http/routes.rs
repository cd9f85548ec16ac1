//! The machinery of the route table ([`super::table`]): an entry names its
//! handler once, and the handler's `#[utoipa::path]` says the rest, the
//! method and path it is served at and the operation the OpenAPI document
//! shows. So one list both registers the routes ([`super::configure`]) and
//! documents them ([`super::openapi`]): a handler is served exactly when it
//! is documented.

use actix_web::http::Method;
use actix_web::{web, Route};
use utoipa::openapi::path::PathItem;
use utoipa::openapi::OpenApi;

use super::microblog;

/// An operation of the table, made by [`op!`]: a handler and its document.
pub struct Op {
    /// The handler's operation as a document of its own, with the schemas it
    /// references: what `paths(handler)` adds to an `#[derive(OpenApi)]`.
    doc: fn() -> OpenApi,
    /// A route to the handler, for any method.
    route: fn() -> Route,
    /// The last path parameter takes the rest of the path, slashes included.
    tail: bool,
    /// HEAD is answered too, by the same handler (HTTP's GET without its
    /// body; the document shows the GET).
    head: bool,
}

/// An [`Op`] for a handler with a `#[utoipa::path]`, named by its path, as
/// in `op!(v1::posts::get)`. utoipa's own derive finds the handler's
/// generated `__path_<name>` type (so no identifier is pasted here) and
/// builds its document exactly as the `paths(...)` of an `ApiDoc` would:
/// the operation, its tags and the schemas it refers to.
macro_rules! op {
    ($($handler:ident)::+) => {{
        #[derive(utoipa::OpenApi)]
        #[openapi(paths($($handler)::+))]
        struct Operation;
        $crate::http::routes::Op::new(<Operation as utoipa::OpenApi>::openapi, || {
            actix_web::web::route().to($($handler)::+)
        })
    }};
}
pub(crate) use op;

impl Op {
    /// What [`op!`] makes; use that.
    pub(crate) fn new(doc: fn() -> OpenApi, route: fn() -> Route) -> Self {
        Self {
            doc,
            route,
            tail: false,
            head: false,
        }
    }

    /// The last path parameter matches the rest of the path, slashes
    /// included: actix's `{key:.*}` for the document's `{key}`.
    pub fn tail(mut self) -> Self {
        self.tail = true;
        self
    }

    /// Answers HEAD as well as the documented GET.
    pub fn and_head(mut self) -> Self {
        self.head = true;
        self
    }

    /// The operation's document.
    pub fn document(&self) -> OpenApi {
        (self.doc)()
    }

    /// The documented path and the methods served at it.
    fn served(&self) -> (String, Vec<Method>) {
        let doc = self.document();
        let mut paths = doc.paths.paths.into_iter();
        let (Some((path, item)), None) = (paths.next(), paths.next()) else {
            panic!("a route's document has exactly one path");
        };
        let mut methods = methods(&item);
        if self.head {
            assert!(
                methods.contains(&Method::GET),
                "{path}: HEAD goes with a GET"
            );
            methods.push(Method::HEAD);
        }
        (path, methods)
    }
}

/// The methods a path item has operations for.
fn methods(item: &PathItem) -> Vec<Method> {
    [
        (Method::GET, &item.get),
        (Method::PUT, &item.put),
        (Method::POST, &item.post),
        (Method::DELETE, &item.delete),
        (Method::OPTIONS, &item.options),
        (Method::HEAD, &item.head),
        (Method::PATCH, &item.patch),
        (Method::TRACE, &item.trace),
    ]
    .into_iter()
    .filter(|(_, operation)| operation.is_some())
    .map(|(method, _)| method)
    .collect()
}

/// Where a section of the table is served.
#[derive(Debug, Clone, Copy)]
pub enum Mount {
    /// At the top level of the app.
    Root,
    /// In an actix scope at this prefix.
    Scope(&'static str),
    /// In the microblog-compatible API's scope, with its error middleware
    /// and its own 404 for every other path under it.
    Microblog,
}

impl Mount {
    fn prefix(self) -> &'static str {
        match self {
            Mount::Root => "",
            Mount::Scope(prefix) => prefix,
            Mount::Microblog => microblog::PREFIX,
        }
    }
}

/// Operations served under one [`Mount`], in the order actix tries them.
pub struct Section {
    pub mount: Mount,
    pub ops: Vec<Op>,
}

/// A resource of a section: its actix pattern (without the section's
/// prefix) and its routes, one per method.
struct Resource<'a> {
    pattern: String,
    routes: Vec<(Method, &'a Op)>,
}

impl Section {
    /// The section's operations grouped by path into resources, in the
    /// order of each path's first operation, so that a path served for some
    /// methods answers any other with 405 and `Allow`.
    fn resources(&self) -> Vec<Resource<'_>> {
        let prefix = self.mount.prefix();
        let mut resources: Vec<Resource<'_>> = Vec::new();
        for op in &self.ops {
            let (path, methods) = op.served();
            let Some(pattern) = path.strip_prefix(prefix).filter(|p| p.starts_with('/')) else {
                panic!("{path} is not under {prefix}, where its route is mounted");
            };
            let pattern = if op.tail {
                tail_pattern(pattern)
            } else {
                pattern.to_owned()
            };
            let at = match resources.iter().position(|r| r.pattern == pattern) {
                Some(at) => at,
                None => {
                    resources.push(Resource {
                        pattern,
                        routes: Vec::new(),
                    });
                    resources.len() - 1
                }
            };
            resources[at]
                .routes
                .extend(methods.into_iter().map(|method| (method, op)));
        }
        resources
    }

    /// Registers the section's resources, unscoped: the caller mounts them.
    fn register(&self, cfg: &mut web::ServiceConfig) {
        for resource in self.resources() {
            let routes = resource
                .routes
                .into_iter()
                .fold(web::resource(resource.pattern), |r, (method, op)| {
                    r.route((op.route)().method(method))
                });
            cfg.service(routes);
        }
    }

    /// Registers the section where its [`Mount`] says.
    pub fn mount(&self, cfg: &mut web::ServiceConfig) {
        match self.mount {
            Mount::Root => self.register(cfg),
            Mount::Scope(prefix) => {
                cfg.service(web::scope(prefix).configure(|scope| self.register(scope)));
            }
            Mount::Microblog => microblog::mount(cfg, |scope| self.register(scope)),
        }
    }

    /// `(method, path)` of each route [`Section::mount`] registers: the
    /// prefix and the actix pattern, with a tail parameter written as
    /// OpenAPI writes it (`{key:.*}` as `{key}`).
    pub fn served(&self) -> Vec<(Method, String)> {
        let prefix = self.mount.prefix();
        self.resources()
            .into_iter()
            .flat_map(|resource| {
                let path = format!("{prefix}{}", openapi_pattern(&resource.pattern));
                resource
                    .routes
                    .into_iter()
                    .map(move |(method, _)| (method, path.clone()))
            })
            .collect()
    }
}

/// `pattern` with its last parameter matching the rest of the path.
fn tail_pattern(pattern: &str) -> String {
    match pattern.strip_suffix('}').and_then(|p| p.rsplit_once('{')) {
        Some((head, name)) if !name.contains(['/', ':']) => format!("{head}{{{name}:.*}}"),
        _ => panic!("{pattern} does not end with a path parameter to take the tail"),
    }
}

/// An actix pattern as OpenAPI writes it: `{name:regex}` as `{name}`.
fn openapi_pattern(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        let param = &rest[open + 1..open + close];
        let name = param.split_once(':').map_or(param, |(name, _)| name);
        out.push_str(&rest[..open]);
        out.push('{');
        out.push_str(name);
        out.push('}');
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tail_parameter_is_written_two_ways() {
        assert_eq!(tail_pattern("/media/{key}"), "/media/{key:.*}");
        assert_eq!(openapi_pattern("/media/{key:.*}"), "/media/{key}");
        assert_eq!(
            openapi_pattern("/users/{id}/posts/{n:\\d+}"),
            "/users/{id}/posts/{n}"
        );
        assert_eq!(openapi_pattern("/healthz"), "/healthz");
    }
}
