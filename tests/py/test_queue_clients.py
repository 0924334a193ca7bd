"""The queue RPCs services call, through the supabase Python client against the edge: the ids
come back as numbers, the same key gives the same id, an unknown job is 404 (PT404, never
PostgREST's 500 for P0002), an infinite schedule 400, and anon is refused."""

from __future__ import annotations

from tests.support.client import RecordingClient
from tests.support.db import query
from tests.support.edge import Edge


def test_enqueue_message_and_schedule_job_through_the_edge(edge: Edge, database_url: str) -> None:
    message = {
        "p_queue_name": "receipts",
        "p_message_type": "email",
        "p_payload": {"trip_id": 42},
        "p_priority": 7,
        "p_idempotency_key": "receipt-42",
    }
    job = {
        "p_job_type": "daily_report",
        "p_job_name": "daily report 2026-11-21",
        "p_payload": {"day": "2026-11-21"},
        "p_idempotency_key": "report-2026-11-21",
    }
    with RecordingClient(edge.url, edge.service_role_key) as service:
        message_id = service.rpc("enqueue_message", message).execute().data
        again = service.rpc("enqueue_message", message).execute().data
        job_id = service.rpc("schedule_job", job).execute().data
        job_again = service.rpc("schedule_job", job).execute().data
        status, error = service.error(service.rpc("enqueue_message", message | {"p_priority": 11}))
        unknown_status, unknown = service.error(service.rpc("complete_job", {"p_job_id": -1}))
        forever_status, forever = service.error(
            service.rpc("schedule_job", job | {"p_scheduled_at": "infinity"})
        )
    with RecordingClient(edge.url, edge.anon_key) as anon:
        anon_status, anon_error = anon.error(anon.rpc("schedule_job", job))

    assert isinstance(message_id, int)
    assert again == message_id
    assert isinstance(job_id, int)
    assert job_again == job_id
    assert (status, error["code"]) == (400, "22023")
    assert error["message"] == "enqueue_message: p_priority must be 1 to 10 (got 11)"
    assert (unknown_status, unknown["code"]) == (404, "PT404")
    assert unknown["message"] == "complete_job: job -1 does not exist"
    assert (forever_status, forever["code"]) == (400, "22023")
    assert forever["message"] == (
        "schedule_job: p_scheduled_at must be a time within a year of now (got infinity)"
    )
    assert (anon_status, anon_error["code"]) == (401, "42501")
    assert query(
        database_url, "select queue_name::text, priority::int, payload from public.message_queue"
    ) == [("receipts", 7, {"trip_id": 42})]
    assert query(
        database_url, "select job_type::text, job_name, status from public.background_jobs"
    ) == [("daily_report", "daily report 2026-11-21", "pending")]


def test_cancel_whatsapp_message_through_the_edge(edge: Edge, database_url: str) -> None:
    template = {"name": "ride_update", "language": {"code": "en"}}
    with RecordingClient(edge.url, edge.service_role_key) as service:
        message_id = (
            service.rpc(
                "enqueue_whatsapp_message",
                {
                    "p_recipient_phone": "+250788500001",
                    "p_message_type": "template",
                    "p_payload": template,
                },
            )
            .execute()
            .data
        )
        cancel = {"p_id": message_id, "p_reason": "the trip was cancelled"}
        cancelled = service.rpc("cancel_whatsapp_message", cancel).execute().data
        again = service.rpc("cancel_whatsapp_message", cancel).execute().data
        missing_status, missing = service.error(
            service.rpc("cancel_whatsapp_message", {"p_id": 999999, "p_reason": "x"})
        )
    with RecordingClient(edge.url, edge.anon_key) as anon:
        anon_status, anon_error = anon.error(anon.rpc("cancel_whatsapp_message", cancel))

    assert cancelled["status"] == "cancelled"
    assert cancelled["cancelled_reason"] == "the trip was cancelled"
    assert cancelled["already_cancelled"] is False
    assert again == cancelled | {"already_cancelled": True}
    assert (missing_status, missing["code"]) == (404, "PT404")
    assert missing["message"] == "cancel_whatsapp_message: no message 999999"
    assert (anon_status, anon_error["code"]) == (401, "42501")
    assert query(
        database_url, "select status, cancelled_reason from public.whatsapp_message_queue"
    ) == [("cancelled", "the trip was cancelled")]
