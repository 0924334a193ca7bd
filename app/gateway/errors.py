"""Errors as PostgREST reports them: a JSON body {code, message, details, hint} and the HTTP
status PostgREST maps the SQLSTATE to, so clients written for Supabase handle them unchanged."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import psycopg

# Checked in order; the first prefix that matches decides. From PostgREST's Error.hs.
_STATUS_BY_SQLSTATE: tuple[tuple[str, int], ...] = (
    ("08", 503),
    ("09", 500),
    ("0L", 403),
    ("0P", 403),
    ("23503", 409),
    ("23505", 409),
    ("25006", 405),
    ("25", 500),
    ("28", 403),
    ("2D", 500),
    ("38", 500),
    ("39", 500),
    ("3B", 500),
    ("40", 500),
    ("53400", 500),
    ("53", 503),
    ("54", 500),
    ("55", 500),
    ("57P01", 503),
    ("57", 500),
    ("58", 500),
    ("F0", 500),
    ("HV", 500),
    ("P0001", 400),
    ("P0", 500),
    ("XX", 500),
    ("42883", 404),
    ("42P01", 404),
    ("42P17", 500),
)


@dataclass
class GatewayError(Exception):
    status: int
    code: str
    message: str
    details: str | list[dict[str, str]] | None = None  # a list: PGRST201's candidates
    hint: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def response_headers(self) -> dict[str, str]:
        # PostgREST 13+ names the code here too: a HEAD response has no body to carry it.
        return {"Proxy-Status": f"PostgREST; error={self.code}", **self.headers}

    def body(self) -> bytes:
        payload = {
            "code": self.code,
            "details": self.details,
            "hint": self.hint,
            "message": self.message,
        }
        return json.dumps(payload, separators=(",", ":")).encode()


# PostGIS reports a geometry it cannot read ('', 'POINT(1)', a short WKB) as XX000, internal
# error, for want of an SQLSTATE of its own; raised from its input functions or from the hook
# every liblwgeom complaint about a value goes through, it is the client's bad value, as
# Postgres' own input errors (22P02) are.
_CLIENT_VALUE_SOURCES = frozenset({"geography_inout.c", "lwgeom_inout.c", "lwgeom_pg.c"})


def status_for(sqlstate: str, *, anonymous: bool, message: str = "", source_file: str = "") -> int:
    if sqlstate == "42501":
        return 401 if anonymous else 403
    if sqlstate == "XX000" and source_file in _CLIENT_VALUE_SOURCES:
        return 400
    if sqlstate == "21000":  # pg-safeupdate's refusal is the client's fault; the rest is ours
        return 400 if message.endswith("requires a WHERE clause") else 500
    if sqlstate.startswith("PT") and sqlstate[2:].isdigit():
        return int(sqlstate[2:])
    for prefix, status in _STATUS_BY_SQLSTATE:
        if sqlstate.startswith(prefix):
            return status
    return 400


def from_postgres(error: psycopg.Error, *, anonymous: bool) -> GatewayError:
    diag = error.diag
    sqlstate = diag.sqlstate
    if sqlstate is None:  # the connection broke: no server verdict to report
        return connection_lost(str(error))
    if sqlstate == "PGRST":
        return _raised_pgrst(diag.message_primary or "", diag.message_detail)
    status = status_for(
        sqlstate,
        anonymous=anonymous,
        message=diag.message_primary or "",
        source_file=diag.source_file or "",
    )
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    return GatewayError(
        status,
        sqlstate,
        diag.message_primary or str(error),
        diag.message_detail,
        diag.message_hint,
        headers,
    )


def connection_lost(details: str | None = None) -> GatewayError:
    return GatewayError(
        503, "PGRST000", "Database connection error. Retrying the connection.", details
    )


def pool_exhausted() -> GatewayError:
    return GatewayError(504, "PGRST003", "Timed out acquiring connection from connection pool.")


def invalid_token(message: str, code: str = "PGRST301") -> GatewayError:
    description = json.dumps(message)  # a quoted string, as RFC 6750 wants
    return GatewayError(
        401,
        code,
        message,
        headers={
            "WWW-Authenticate": f'Bearer error="invalid_token", error_description={description}'
        },
    )


def _raised_pgrst(message: str, detail: str | None) -> GatewayError:
    """`raise sqlstate 'PGRST' using message = '{json}', detail = '{json}'`: full control of the
    response, as PostgREST allows. Anything unparseable is PGRST121, as there."""
    body = _json_object(message, required=("code", "message"))
    if body is None:
        return _unparseable(
            f"Invalid JSON value for MESSAGE: '{message}'",
            "MESSAGE must be a JSON object with obligatory keys: 'code', 'message' and optional "
            "keys: 'details', 'hint'.",
        )
    response = _json_object(detail or "", required=("status", "headers"))
    if response is None or not str(response["status"]).isdigit():
        return _unparseable(
            f"Invalid JSON value for DETAIL: '{detail}'"
            if detail
            else "DETAIL is missing in the RAISE statement",
            "DETAIL must be a JSON object with obligatory keys: 'status', 'headers' and optional "
            "key: 'status_text'.",
        )
    headers = response["headers"] if isinstance(response["headers"], dict) else {}
    return GatewayError(
        int(response["status"]),
        str(body["code"]),
        str(body["message"]),
        _text_or_none(body.get("details")),
        _text_or_none(body.get("hint")),
        {str(k): str(v) for k, v in headers.items()},
    )


def _json_object(text: str, required: tuple[str, ...]) -> dict[str, object] | None:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # a message may carry any text, nested any depth
        return None
    if not isinstance(value, dict) or any(key not in value for key in required):
        return None
    return value


def _unparseable(details: str, hint: str) -> GatewayError:
    return GatewayError(
        500,
        "PGRST121",
        "Could not parse JSON in the \"RAISE SQLSTATE 'PGRST'\" error",
        details,
        hint,
    )


def _text_or_none(value: object) -> str | None:
    return None if value is None else str(value)
