"""Who is calling: the JWT from `Authorization: Bearer` (else the `apikey` header), verified
with the project's secret, decides the Postgres role the call runs as."""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jwt

from app.gateway.errors import invalid_token
from app.keys import API_ROLES

ANON_ROLE = "anon"
CLOCK_SKEW_SECONDS = 30  # PostgREST's allowance for clocks that disagree


@dataclass(frozen=True)
class Caller:
    role: str
    claims: dict[str, Any]

    @property
    def anonymous(self) -> bool:
        return self.role == ANON_ROLE


ANONYMOUS = Caller(ANON_ROLE, {"role": ANON_ROLE})


def identify(authorization: str | None, apikey: str | None, secret: str) -> Caller:
    token = _bearer_token(authorization) if authorization else apikey
    if token is None:
        return ANONYMOUS
    if not token:
        raise invalid_token("Empty JWT is sent in Authorization header")
    claims = _verified_claims(token, secret)
    role = claims.get("role", ANON_ROLE)
    if role not in API_ROLES:
        raise invalid_token(
            "The JWT 'role' claim must be one of anon, authenticated, service_role", "PGRST303"
        )
    return Caller(role, {**claims, "role": role})


def _bearer_token(authorization: str) -> str | None:
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None  # another scheme (Basic, ...) is not ours to judge: anonymous, as PostgREST
    return token.strip()


def _verified_claims(token: str, secret: str) -> dict[str, Any]:
    """Verifying a signature costs more than the rest of a request; services send the same few
    keys over and over. A verified token is remembered, its expiry checked again on every use."""
    claims = _verify(token, secret)
    expires = claims.get("exp")
    if isinstance(expires, int | float) and time.time() - CLOCK_SKEW_SECONDS > expires:
        raise invalid_token("JWT expired", "PGRST303")
    return claims


@lru_cache(maxsize=4096)
def _verify(token: str, secret: str) -> dict[str, Any]:
    if token.count(".") != 2:
        raise invalid_token(f"Expected 3 parts in JWT; got {token.count('.') + 1}")
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            leeway=CLOCK_SKEW_SECONDS,
            options={"verify_aud": False, "require": []},
        )
    except jwt.ExpiredSignatureError as error:
        raise invalid_token("JWT expired", "PGRST303") from error
    except jwt.ImmatureSignatureError as error:
        message = "JWT issued at future" if "iat" in str(error) else "JWT not yet valid"
        raise invalid_token(message, "PGRST303") from error
    except jwt.InvalidSignatureError as error:
        raise invalid_token("JWT cryptographic operation failed") from error
    except jwt.InvalidAlgorithmError as error:
        raise invalid_token("Wrong or unsupported encoding algorithm") from error
    except jwt.InvalidTokenError as error:
        claim = next((c for c in ("exp", "nbf", "iat") if f"({c})" in str(error)), None)
        if claim:
            raise invalid_token(f"The JWT '{claim}' claim must be a number", "PGRST303") from error
        raise invalid_token("JWT couldn't be decoded") from error
    if not isinstance(claims, dict):
        raise invalid_token("Parsing claims failed", "PGRST303")
    return claims
