"""Unlogged counters and the cache across a real crash: Postgres stopped at once (`pg_ctl restart
-m immediate`, no checkpoint) and recovered. The counters start again from zero, the cache comes
back empty, and the monitoring views count what came since the restart, never a negative number.

The server is a cluster of this module's own: restarting the session's would cut the
connections of every other test's fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.db import query
from tests.support.server import TestServer, start_cluster_server

MISSES = "private.counter_value('cache_misses_' || private.cache_counter('general'))"


@pytest.fixture(scope="module")
def own_server() -> Iterator[TestServer]:
    server = start_cluster_server()
    yield server
    server.close()


def miss(url: str, times: int) -> None:
    query(url, "select public.get_cache('absent') from generate_series(1, %s)", (times,))


def test_a_crash_starts_the_counters_again_and_the_views_count_since(
    own_server: TestServer,
) -> None:
    url = own_server.url(own_server.clone("counters_crash"))
    query(url, "select public.set_cache('kept', '{\"a\": 1}', 3600)")
    miss(url, 5)
    # A sample two hours old holding the five misses: the hour's window starts after it.
    query(url, "select private.sample_counters()")
    query(url, "update private.counter_samples set sampled_at = now() - interval '2 hours'")
    assert query(url, f"select {MISSES}") == [(5,)]

    own_server.cluster.restart(mode="immediate")

    assert query(url, f"select {MISSES}") == [(0,)], "the crash started the counter again"
    assert query(url, "select count(*) from public.cache_entries") == [(0,)], (
        "the unlogged cache came back empty"
    )
    miss(url, 2)
    assert query(
        url,
        "select misses_last_hour from monitoring.cache_stats where cache_type = 'general'",
    ) == [(2,)]
    assert query(
        url,
        "select private.counted_since("
        "'cache_misses_' || private.cache_counter('general'), now() - interval '1 hour')",
    ) == [(2,)]
