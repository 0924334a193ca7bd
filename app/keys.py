"""API keys: JWTs signed with the project's secret, as Supabase issues its anon and service keys."""

from __future__ import annotations

import time

import jwt

API_ROLES = ("anon", "authenticated", "service_role")
# Fixed, so one secret always yields the same keys and stack.env stays stable across runs.
ISSUED_AT = 1_767_225_600  # 2026-01-01T00:00:00Z
TEN_YEARS = 10 * 365 * 24 * 3600


def api_key(secret: str, role: str) -> str:
    if role not in API_ROLES:
        raise ValueError(f"role must be one of {', '.join(API_ROLES)}")
    claims = {"iss": "supabase", "ref": "local", "role": role, "iat": ISSUED_AT}
    claims["exp"] = ISSUED_AT + TEN_YEARS
    return jwt.encode(claims, secret, algorithm="HS256")


def user_token(secret: str, user_id: str, *, lifetime_seconds: int = 3600, **claims: object) -> str:
    """A signed-in user's access token, as Supabase Auth would issue it (for tests and scripts)."""
    now = int(time.time())
    payload = {"sub": user_id, "role": "authenticated", "aud": "authenticated", "iat": now}
    payload |= {"exp": now + lifetime_seconds, **claims}
    return jwt.encode(payload, secret, algorithm="HS256")
