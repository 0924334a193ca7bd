"""An OpenFeature provider that asks the database: `public.feature_flag_details` through the
PostgREST-compatible RPC endpoint of the local stack or of a hosted Supabase project.

    from openfeature import api
    from app.flags.provider import EasymoFlagProvider

    api.set_provider(EasymoFlagProvider(SUPABASE_URL, SUPABASE_SERVICE_ROLE_KEY))
    client = api.get_client()
    client.get_boolean_value("new_ui", False, EvaluationContext("user-42", {"appName": "rider"}))

Flags are booleans, as the seed defines them: other types are TYPE_MISMATCH. An unknown flag is
FLAG_NOT_FOUND; anything the call could not do (a network error, a refusal) is GENERAL, with the
default value, as OpenFeature asks of a provider: evaluation never raises into the service.
Each evaluation is one request: the answer is the database's, with its counting and recording."""

from __future__ import annotations

from typing import Any

import httpx
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagResolutionDetails, Reason
from openfeature.provider import AbstractProvider, Metadata

from app.flags.context import unleash_context

RPC_PATH = "/rest/v1/rpc/feature_flag_details"
ENVIRONMENTS = ("development", "staging", "production")


class EasymoFlagProvider(AbstractProvider):
    def __init__(
        self,
        url: str,
        key: str,
        *,
        environment: str = "production",
        timeout_seconds: float = 2.0,
        client: httpx.Client | None = None,
    ) -> None:
        """`key` is the API key the service calls with: the service role key for a server
        deciding for any user, or a user's access token (then only for that user)."""
        if environment not in ENVIRONMENTS:
            raise ValueError(f"environment must be one of {', '.join(ENVIRONMENTS)}")
        self.environment = environment
        self.client = client or httpx.Client(timeout=timeout_seconds)
        self.endpoint = url.rstrip("/") + RPC_PATH
        self.headers = {"apikey": key, "Authorization": f"Bearer {key}"}

    def get_metadata(self) -> Metadata:
        return Metadata(name="easymo")

    def shutdown(self) -> None:
        self.client.close()

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        user_id, context = unleash_context(evaluation_context)
        arguments: dict[str, Any] = {
            "p_flag_key": flag_key,
            "p_user_id": user_id,
            "p_environment": context.pop("environment", self.environment),
            "p_context": context,
        }
        try:
            response = self.client.post(self.endpoint, json=arguments, headers=self.headers)
        except httpx.HTTPError as error:
            return _failed(default_value, ErrorCode.GENERAL, f"{type(error).__name__}: {error}")
        if response.status_code != 200:
            return _failed(default_value, ErrorCode.GENERAL, _refusal(response))
        details = response.json()
        if not details.get("found"):
            return _failed(default_value, ErrorCode.FLAG_NOT_FOUND, f"no flag {flag_key}")
        return FlagResolutionDetails(
            value=bool(details["enabled"]),
            reason=Reason(details["reason"]),
            flag_metadata={"environment": details.get("environment", "")},
        )

    def resolve_string_details(
        self, flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:
        return _not_boolean(default_value)

    def resolve_integer_details(
        self, flag_key: str, default_value: int, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[int]:
        return _not_boolean(default_value)

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        return _not_boolean(default_value)

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Any,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Any]:
        return _not_boolean(default_value)


def _not_boolean(default_value: Any) -> FlagResolutionDetails[Any]:
    return _failed(default_value, ErrorCode.TYPE_MISMATCH, "easymo flags are booleans")


def _failed(default_value: Any, code: ErrorCode, message: str) -> FlagResolutionDetails[Any]:
    return FlagResolutionDetails(
        value=default_value, reason=Reason.ERROR, error_code=code, error_message=message
    )


def _refusal(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    return f"HTTP {response.status_code} {body.get('code', '')}: {body.get('message', '')}"
