"""The whole API driven from its own OpenAPI description (schemathesis), against a real edge on
a throwaway database, as service_role and as a signed-in user: no generated request may get a
5xx, and a refused one (4xx) may change no data, table by table.

The description is read as service_role, the widest, so the signed-in user is also sent every
call it may not make, tables and functions alike. `make test` runs a few examples per
operation, derandomised, so a failure reproduces; `make fuzz` (FUZZ_EXAMPLES) runs many more."""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import psycopg
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi import unregister_string_format

from tests.support.db import query
from tests.support.edge import Edge, edge_after
from tests.support.fingerprint import Fingerprints
from tests.support.server import TestServer

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "2"))  # per operation, role and mode
# The signed-in user of the run, and another user whose data the owner may not touch.
OWNER = "00000000-0000-4000-8000-0000000000f1"
STRANGER = "00000000-0000-4000-8000-0000000000f2"

# Values Postgres reads for the types whose `format` schemathesis does not know, with the
# edges a type has; ids are often the two users', so calls get past "unknown user".
TIMESTAMPS = st.one_of(
    st.datetimes(
        min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    ).map(datetime.isoformat),
    st.sampled_from(["infinity", "-infinity", "epoch", "now", "0001-01-01T00:00:00Z"]),
)
FORMATS: dict[str, st.SearchStrategy[str]] = {
    "uuid": st.one_of(st.sampled_from([OWNER, STRANGER]), st.uuids().map(str)),
    "timestamp with time zone": TIMESTAMPS,
    "timestamp without time zone": TIMESTAMPS,
    "date": st.dates(min_value=date(1900, 1, 1)).map(date.isoformat),
    "interval": st.builds(
        "{} {}".format,
        st.integers(-(10**7), 10**7),
        st.sampled_from(["seconds", "minutes", "hours", "days", "months", "years"]),
    ),
    "bytea": st.binary(max_size=64).map(lambda raw: "\\x" + raw.hex()),
}

# What a client may ask the answer to be; one object is refused (406) after the call when the
# call did not make exactly one row, and what the call wrote must then be rolled back.
ACCEPTS = st.sampled_from(
    [None, "application/json", "application/vnd.pgrst.object+json", "text/csv"]
)


@pytest.fixture
def formats() -> Iterator[None]:
    for name, strategy in FORMATS.items():
        schemathesis.openapi.format(name, strategy)
    yield
    for name in FORMATS:
        unregister_string_format(name)


@dataclass
class FuzzRun:
    """One role's run: where and how it calls, what it saw."""

    base_url: str
    headers: dict[str, str]
    session: requests.Session
    fingerprints: Fingerprints
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def driver(
        self, operation: schemathesis.APIOperation, mode: GenerationMode
    ) -> Callable[[], None]:
        """A Hypothesis test of one operation: each generated case (valid by the description,
        or not) is sent once, checked for a 5xx and, when refused, for a change to any table."""

        @given(case=operation.as_strategy(generation_mode=mode), accept=ACCEPTS)
        @settings(
            max_examples=EXAMPLES,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate, Phase.shrink],
            suppress_health_check=list(HealthCheck),
        )
        def drive(case: schemathesis.Case, accept: str | None) -> None:
            headers = self.headers if accept is None else {**self.headers, "Accept": accept}
            before = self.fingerprints.mark()
            response = case.call(
                base_url=self.base_url, session=self.session, headers=headers, timeout=30
            )
            self.statuses[response.status_code] += 1
            case.validate_response(response, checks=[not_a_server_error])
            if 400 <= response.status_code < 500:
                changed = self.fingerprints.changed_since(before)
                assert not changed, (
                    f"refused with {response.status_code} ({response.text[:300]}) but changed "
                    f"{', '.join(changed)}: {case.as_curl_command(headers=headers)}"
                )

        return drive


@pytest.mark.usefixtures("formats")
@pytest.mark.parametrize("role", ["service_role", "authenticated"])
def test_no_generated_request_gets_a_server_error_or_changes_data_it_was_refused(
    edge: Edge, database_url: str, role: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for user_id, phone in ((OWNER, "+250788000001"), (STRANGER, "+250788000002")):
        query(
            database_url,
            "insert into public.users (id, phone_number) values (%s, %s)",
            (user_id, phone),
        )
    token = edge.service_role_key if role == "service_role" else edge.user_token(OWNER)
    base_url = f"{edge.url}/rest/v1"
    service = {"Authorization": f"Bearer {edge.service_role_key}"}
    schema = schemathesis.openapi.from_url(f"{base_url}/", headers=service)
    operations = [result.ok() for result in schema.get_all_operations()]
    tables = [op for op in operations if op.path != "/" and not op.path.startswith("/rpc/")]
    assert tables, "the description lists no table: the table API would go unfuzzed"
    started = time.monotonic()
    headers = {"apikey": token, "Authorization": f"Bearer {token}"}
    with requests.Session() as session, Fingerprints(database_url) as fingerprints:
        run = FuzzRun(base_url, headers, session, fingerprints)
        for operation in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                try:
                    run.driver(operation, mode)()
                except Unsatisfiable:
                    # An operation without parameters (GET /rpc/f()) has nothing to break.
                    if mode is GenerationMode.POSITIVE:
                        run.failures.append(f"{operation.label}: no case could be made")
                # Every operation's failure is reported, not only the first; schemathesis
                # reports a failed check as a group, which is no Exception.
                except (Exception, FailureGroup) as error:
                    run.failures.append(f"{operation.label} ({mode.value}): {error}")
    sent = sum(run.statuses.values())
    with capsys.disabled():  # the figures, shown by `make test` and `make fuzz` alike
        print(
            f"\nfuzz as {role}: {sent} requests to {len(operations)} operations in "
            f"{time.monotonic() - started:.1f}s, tables read {run.fingerprints.full_reads} "
            f"times; by status: {dict(sorted(run.statuses.items()))}"
        )
    assert sent >= len(operations) * min(EXAMPLES, 2)  # some have no case to break
    assert not run.failures, "\n\n".join(run.failures)


def test_the_data_check_sees_a_committed_change_and_nothing_else(database_url: str) -> None:
    with Fingerprints(database_url) as fingerprints:
        untouched = fingerprints.mark()
        assert fingerprints.changed_since(untouched) == []

        with psycopg.connect(database_url) as conn:  # a write rolled back changes nothing
            conn.execute("insert into public.users (phone_number) values ('+250788000003')")
            conn.rollback()
        assert fingerprints.changed_since(untouched) == []

        query(database_url, "insert into public.users (phone_number) values ('+250788000004')")
        assert fingerprints.changed_since(untouched) == ["public.users"]
        assert fingerprints.changed_since(fingerprints.mark()) == []


@pytest.mark.usefixtures("formats")
def test_the_fuzzer_reports_a_server_error(server: TestServer, database: str) -> None:
    broken = (
        "create function public.fuzz_broken(p_n integer) returns integer language plpgsql as "
        "$$ begin raise exception 'broken' using errcode = 'XX000'; end $$"
    )
    with edge_after(server, database, broken) as edge:
        headers = {"Authorization": f"Bearer {edge.service_role_key}"}
        schema = schemathesis.openapi.from_url(f"{edge.url}/rest/v1/", headers=headers)
        with requests.Session() as session, Fingerprints(server.url(database)) as fingerprints:
            run = FuzzRun(f"{edge.url}/rest/v1", headers, session, fingerprints)
            with pytest.raises(FailureGroup, match="Server error"):
                run.driver(schema["/rpc/fuzz_broken"]["POST"], GenerationMode.POSITIVE)()
    assert run.statuses[500] >= 1


@pytest.mark.parametrize("role", ["service_role", "authenticated"])
def test_no_fuzzed_call_can_outlast_the_clients_timeout(
    server: TestServer, database: str, role: str
) -> None:
    """Every call runs under a statement timeout shorter than the fuzzer's 30 s wait: the role's
    own (applied per request), else the one authenticator logged in with."""
    reporter = (
        "create function public.fuzz_statement_timeout() returns integer language sql stable as "
        "$$ select extract(epoch from current_setting('statement_timeout')::interval)::int $$;"
        "grant execute on function public.fuzz_statement_timeout() to service_role, authenticated"
    )
    with edge_after(server, database, reporter) as edge:
        token = edge.service_role_key if role == "service_role" else edge.user_token(OWNER)
        response = requests.post(
            f"{edge.url}/rest/v1/rpc/fuzz_statement_timeout",
            headers={"Authorization": f"Bearer {token}"},
            json={},
            timeout=30,
        )

    assert response.status_code == 200
    assert 0 < response.json() < 30
