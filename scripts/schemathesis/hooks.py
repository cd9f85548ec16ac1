"""Schemathesis hooks for scripts/schemathesis/run.sh.

Some request values only the server can issue, or only the user knows: a page cursor (the opaque
`next_cursor` of an earlier page), the ids of the caller's own media not yet
attached to a post, a comment of the same post to reply to, and the
password that deleting the account or changing the password asks for. A
made-up one is rightly refused (400 for a cursor, 422 for the others, as the
OpenAPI document says), which schemathesis would report as valid data
rejected. So schema-valid requests go without the server's values and with
the user's password (ST_PASSWORD); requests that are meant to be invalid keep
whatever schemathesis put in, and must still be refused. The cargo tests
cover these fields with real values.

An Idempotency-Key is the client's promise that the request is new: a
schema-valid request gets a key of its own (generated keys repeat across
different requests, which the server rightly refuses with a 422).

Where a made-up value almost never names something that exists (a login,
a refresh token, an API key's id, another user to follow or block), every other
schema-valid request gets a real one (the ST_* variables run.sh sets), so
the operation's success answers are checked too.
"""

import os
import uuid

import schemathesis

SERVER_ISSUED_QUERY = ("cursor",)
SERVER_ISSUED_BODY = ("media_ids", "tweet_media_ids", "parent_id")
# The body field that holds the caller's password, by operation.
PASSWORD_FIELD = {
    "DELETE /api/v1/me": "password",
    "PUT /api/v1/me/password": "current_password",
}


# Real values, by operation: (location, name, variable).
REAL_VALUES = {
    "POST /api/v1/auth/login": [("body", "login", "ST_LOGIN"), ("body", "password", "ST_PASSWORD")],
    "POST /api/v1/auth/refresh": [("body", "refresh_token", "ST_REFRESH_TOKEN")],
    "DELETE /api/v1/me/api-keys/{id}": [("path", "id", "ST_API_KEY_ID")],
    "PUT /api/v1/users/{id}/block": [("path", "id", "ST_BLOCK_USER_ID")],
    "PUT /api/v1/users/{id}/follow": [("path", "id", "ST_FOLLOW_USER_ID")],
    "POST /api/users/{id}/follow": [("path", "id", "ST_FOLLOW_USER_ID")],
}
_calls = {}


def _use_real_values(case):
    values = REAL_VALUES.get(case.operation.label)
    if not values:
        return
    count = _calls[case.operation.label] = _calls.get(case.operation.label, 0) + 1
    if count % 2:
        return
    for location, name, variable in values:
        value = os.environ.get(variable)
        if value is None:
            continue
        if location == "body" and isinstance(case.body, dict):
            case.body[name] = value
        elif location == "path" and isinstance(case.path_parameters, dict):
            case.path_parameters[name] = value


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    meta = case.meta
    if meta is not None and not meta.generation.mode.is_positive:
        return
    _use_real_values(case)
    # Headers may be a case-insensitive mapping rather than a dict.
    if case.headers is not None:
        for name in list(case.headers.keys()):
            if name.lower() == "idempotency-key":
                case.headers[name] = str(uuid.uuid4())
    if isinstance(case.query, dict):
        for name in SERVER_ISSUED_QUERY:
            case.query.pop(name, None)
    if isinstance(case.body, dict):
        for name in SERVER_ISSUED_BODY:
            case.body.pop(name, None)
        field = PASSWORD_FIELD.get(case.operation.label)
        if field and os.environ.get("ST_PASSWORD"):
            case.body[field] = os.environ["ST_PASSWORD"]


@schemathesis.hook
def after_call(ctx, case, response):
    """Notes each operation's answers (`2xx` or `other`), for run.sh's summary."""
    path = os.environ.get("ST_ANSWERS_FILE")
    if path:
        kind = "2xx" if 200 <= response.status_code < 300 else "other"
        with open(path, "a", encoding="utf-8") as out:
            out.write(f"{kind} {case.operation.label}\n")
