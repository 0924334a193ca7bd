"""`python -m app keys --user <uuid>`: the access token an app signs in with, as README's
quickstart uses it against the edge."""

from __future__ import annotations

import time
import uuid

import jwt
import pytest

from app import paths
from app.cli import main
from tests.support.client import RecordingClient
from tests.support.db import query
from tests.support.edge import Edge
from tests.support.server import JWT_SECRET

RIDER = "00000000-0000-4000-8000-100000000001"
OTHER = "00000000-0000-4000-8000-100000000002"


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("SUPABASE_JWT_SECRET", JWT_SECRET)
    monkeypatch.setattr(paths, "STACK_ENV", tmp_path / "stack.env")  # no local stack's file


def printed_token(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(["keys", *argv]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1, "the token alone, so that TOKEN=$(...) works"
    return lines[0]


def test_keys_user_prints_a_signed_users_token(capsys: pytest.CaptureFixture[str]):
    before = int(time.time())
    token = printed_token(capsys, "--user", RIDER)
    claims = jwt.decode(token, JWT_SECRET, algorithms=["HS256"], audience="authenticated")
    assert claims["sub"] == RIDER
    assert claims["role"] == "authenticated"
    assert before <= claims["iat"] <= int(time.time())
    assert claims["exp"] - claims["iat"] == 3600
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, "another-secret-that-is-long-enough-0123456789", algorithms=["HS256"])


def test_keys_user_lifetime(capsys: pytest.CaptureFixture[str]):
    token = printed_token(capsys, "--user", RIDER, "--lifetime", "60")
    claims = jwt.decode(token, JWT_SECRET, algorithms=["HS256"], audience="authenticated")
    assert claims["exp"] - claims["iat"] == 60


@pytest.mark.parametrize("argv", [["--user", "rider"], ["--user", RIDER, "--lifetime", "x"]])
def test_keys_user_refuses_what_is_not_a_uuid_or_a_lifetime(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["keys", *argv])
    assert exited.value.code == 2
    assert "invalid" in capsys.readouterr().err


def test_keys_user_refuses_a_lifetime_below_one_second(capsys: pytest.CaptureFixture[str]):
    assert main(["keys", "--user", RIDER, "--lifetime", "0"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "--lifetime must be at least 1 second" in captured.err


def test_keys_without_a_secret_says_how_to_get_one(monkeypatch, capsys):
    monkeypatch.delenv("SUPABASE_JWT_SECRET")
    assert main(["keys", "--user", RIDER]) == 1
    assert "no JWT secret yet" in capsys.readouterr().err


def test_keys_still_prints_the_api_keys(capsys: pytest.CaptureFixture[str]):
    assert main(["keys"]) == 0
    lines = dict(line.split("=", 1) for line in capsys.readouterr().out.splitlines())
    assert set(lines) == {"SUPABASE_ANON_KEY", "SUPABASE_SERVICE_ROLE_KEY", "SUPABASE_JWT_SECRET"}
    for name, role in (
        ("SUPABASE_ANON_KEY", "anon"),
        ("SUPABASE_SERVICE_ROLE_KEY", "service_role"),
    ):
        assert jwt.decode(lines[name], JWT_SECRET, algorithms=["HS256"])["role"] == role


def test_readme_quickstart_app_and_anon(
    edge: Edge, database_url: str, capsys: pytest.CaptureFixture[str]
):
    """README's quickstart as written: the anon key as the apikey and the printed token as the
    user's Authorization; the user acts for themselves and nobody else; anon only evaluates
    flags."""
    for user in (RIDER, OTHER):
        phone = "+25078800" + user[-4:]
        query(
            database_url,
            "insert into public.users (id, phone_number) values (%s, %s)",
            (user, phone),
        )
    assert main(["keys", "--user", RIDER]) == 0
    # The edge in this process logs to stdout too.
    [token] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("eyJ")]
    headers = {"Authorization": f"Bearer {token}"}
    with RecordingClient(edge.url, edge.anon_key, headers) as app:
        balance = app.rpc("get_wallet_balance", {"p_user_id": RIDER, "p_currency": "RWF"})
        assert float(balance.execute().data) == 0
        assert app.last.request.headers["apikey"] == edge.anon_key
        status, error = app.error(
            app.rpc("get_wallet_balance", {"p_user_id": OTHER, "p_currency": "RWF"})
        )
        assert (status, error["code"]) == (403, "42501")
    with RecordingClient(edge.url, edge.anon_key) as anon:
        enabled = anon.rpc("is_feature_enabled", {"p_flag_key": f"no-such-flag-{uuid.uuid4()}"})
        assert enabled.execute().data is False
        status, error = anon.error(
            anon.rpc("get_wallet_balance", {"p_user_id": RIDER, "p_currency": "RWF"})
        )
        assert (status, error["code"]) == (401, "42501")


def readme_quickstart() -> str:
    readme = (paths.REPO / "README.md").read_text(encoding="utf-8")
    start = readme.index("```python\n", readme.index("Who may call what")) + len("```python\n")
    return readme[start : readme.index("```", start)]


def test_readme_quickstart_runs_as_written(
    edge: Edge, database_url: str, capsys: pytest.CaptureFixture[str]
):
    query(
        database_url,
        "insert into public.users (id, phone_number) values (%s, '+250788199999')",
        (RIDER,),
    )
    assert main(["keys", "--user", RIDER]) == 0
    [token] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("eyJ")]
    code = readme_quickstart()
    assert '"http://127.0.0.1:54321"' in code
    names = {
        "SUPABASE_ANON_KEY": edge.anon_key,
        "SUPABASE_SERVICE_ROLE_KEY": edge.service_role_key,
        "USER_JWT": token,
    }
    try:
        exec(code.replace('"http://127.0.0.1:54321"', repr(edge.url)), names)  # noqa: S102 - README's
    finally:
        for client in ("service", "rider", "anon"):
            if client in names:
                names[client].postgrest.session.close()
    assert query(
        database_url,
        "select count(*) from public.system_metrics where service_name = 'dispatch'",
    ) == [(1,)]
