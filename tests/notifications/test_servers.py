"""The test stand-ins themselves: the SMTP server, the SMS gateway and real workers."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from django.contrib.sessions.models import Session
from django.core.mail import EmailMultiAlternatives, get_connection
from django.utils import timezone

from tests.notifications.servers import SmsGateway, SmtpServer
from tests.notifications.workers import StartWorker, celery_worker_process, wait_until


def send_sms(
    gateway: SmsGateway,
    to: str = "+8613800138000",
    *,
    key: str | None = None,
    api_key: str | None = None,
    timeout_s: float = 10,
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {api_key or gateway.api_key}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    body = {"to": to, "from": "Telemed", "text": "Your code is 123456"}
    return httpx.post(gateway.url, json=body, headers=headers, timeout=timeout_s)


# --- SMTP server ---------------------------------------------------------------


def test_it_receives_a_message_with_an_html_alternative_and_an_attachment(smtp_server: SmtpServer) -> None:
    connection = get_connection(
        "django.core.mail.backends.smtp.EmailBackend",
        host=smtp_server.host,
        port=smtp_server.port,
        use_tls=False,
        timeout=10,
    )
    message = EmailMultiAlternatives(
        subject="Your appointment — 明天",
        body="See you tomorrow at 9:00.",
        from_email="Telemed <noreply@localhost>",
        to=["alice@example.org"],
        cc=["bob@example.org"],
        connection=connection,
    )
    message.attach_alternative("<p>See you <b>tomorrow</b> at 9:00.</p>", "text/html")
    message.attach("visit.ics", "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n", "text/calendar")
    assert message.send() == 1

    [received] = smtp_server.wait_for(1)
    assert received["Subject"] == "Your appointment — 明天"
    assert received["To"] == "alice@example.org"
    assert received["From"] == "Telemed <noreply@localhost>"
    plain = received.get_body(preferencelist=("plain",))
    html = received.get_body(preferencelist=("html",))
    assert plain is not None and plain.get_content().strip() == "See you tomorrow at 9:00."
    assert html is not None and "<b>tomorrow</b>" in html.get_content()
    [attachment] = list(received.iter_attachments())
    assert attachment.get_filename() == "visit.ics"
    assert attachment.get_content_type() == "text/calendar"
    assert "BEGIN:VCALENDAR" in attachment.get_content()
    [mail] = smtp_server.received
    assert mail.mail_from == "noreply@localhost"
    assert sorted(mail.rcpt_tos) == ["alice@example.org", "bob@example.org"]


def test_it_times_out_with_a_clear_message_and_clears(smtp_server: SmtpServer) -> None:
    with pytest.raises(AssertionError, match=r"expected 1 email\(s\), got 0"):
        smtp_server.wait_for(1, timeout_s=0.2)
    connection = get_connection(
        "django.core.mail.backends.smtp.EmailBackend", host=smtp_server.host, port=smtp_server.port, use_tls=False
    )
    EmailMultiAlternatives("Hi", "Body", "a@example.org", ["b@example.org"], connection=connection).send()
    assert len(smtp_server.wait_for(1)) == 1
    smtp_server.clear()
    assert smtp_server.messages == []


def test_it_answers_programmed_smtp_failures(smtp_server: SmtpServer) -> None:
    import smtplib

    smtp_server.fail_next(1, code=451)
    connection = get_connection(
        "django.core.mail.backends.smtp.EmailBackend", host=smtp_server.host, port=smtp_server.port, use_tls=False
    )
    message = EmailMultiAlternatives("Hi", "Body", "a@example.org", ["b@example.org"], connection=connection)
    with pytest.raises(smtplib.SMTPDataError) as failure:
        message.send()
    assert failure.value.smtp_code == 451
    assert smtp_server.messages == []
    assert message.send() == 1
    assert len(smtp_server.wait_for(1)) == 1
    assert smtp_server.attempts == 2


def test_it_holds_smtp_data_until_released(smtp_server: SmtpServer) -> None:
    smtp_server.hold()
    connection = get_connection(
        "django.core.mail.backends.smtp.EmailBackend", host=smtp_server.host, port=smtp_server.port, use_tls=False
    )
    message = EmailMultiAlternatives("Hi", "Body", "a@example.org", ["b@example.org"], connection=connection)
    sender = threading.Thread(target=message.send)
    sender.start()
    wait_until(lambda: smtp_server.attempts == 1, 5, "the message did not reach DATA")
    time.sleep(0.2)
    assert smtp_server.messages == []
    smtp_server.release()
    smtp_server.wait_for(1)
    sender.join(timeout=5)


# --- SMS gateway ---------------------------------------------------------------


def test_it_accepts_a_message(sms_gateway: SmsGateway) -> None:
    response = send_sms(sms_gateway, key="n-1")
    assert response.status_code == 200
    assert response.json() == {"id": "gw-1"}
    [sms] = sms_gateway.wait_for_accepted(1)
    assert (sms.id, sms.to, sms.sender, sms.text) == ("gw-1", "+8613800138000", "Telemed", "Your code is 123456")
    [request] = sms_gateway.requests
    assert request.headers["Idempotency-Key"] == "n-1"
    assert request.json["to"] == "+8613800138000"
    assert request.status == 200


def test_it_deduplicates_by_idempotency_key(sms_gateway: SmsGateway) -> None:
    first = send_sms(sms_gateway, key="notification-7")
    again = send_sms(sms_gateway, key="notification-7")
    other = send_sms(sms_gateway, key="notification-8")
    assert first.status_code == again.status_code == other.status_code == 200
    assert first.json()["id"] == again.json()["id"] == "gw-1"
    assert other.json()["id"] == "gw-2"
    assert [sms.idempotency_key for sms in sms_gateway.accepted] == ["notification-7", "notification-8"]
    assert sms_gateway.accepted_count_by_key == {"notification-7": 1, "notification-8": 1}
    assert sms_gateway.duplicates == 1
    assert len(sms_gateway.requests) == 3


def test_it_answers_programmed_temporary_failures_then_accepts(sms_gateway: SmsGateway) -> None:
    sms_gateway.fail_next(2)
    sms_gateway.fail_next(1, status=429)
    statuses = [send_sms(sms_gateway, key="k").status_code for _ in range(4)]
    assert statuses == [503, 503, 429, 200]
    assert [request.status for request in sms_gateway.requests] == [503, 503, 429, 200]
    assert sms_gateway.accepted_count_by_key == {"k": 1}
    assert sms_gateway.duplicates == 0


def test_it_rejects_a_number_permanently(sms_gateway: SmsGateway) -> None:
    sms_gateway.reject_number("+8613900000000")
    for _ in range(2):
        response = send_sms(sms_gateway, "+8613900000000", key="bad")
        assert response.status_code == 400
        assert response.json()["error"] == "invalid destination number"
    assert send_sms(sms_gateway, "+8613800138000").status_code == 200
    assert [sms.to for sms in sms_gateway.accepted] == ["+8613800138000"]


def test_it_refuses_a_wrong_or_missing_key(sms_gateway: SmsGateway) -> None:
    assert send_sms(sms_gateway, api_key="wrong").status_code == 401
    missing = httpx.post(sms_gateway.url, json={"to": "+8613800138000", "from": "Telemed", "text": "Hi"})
    assert missing.status_code == 401
    assert sms_gateway.accepted == []
    assert len(sms_gateway.requests) == 2


def test_it_delays_before_accepting(sms_gateway: SmsGateway) -> None:
    sms_gateway.delay_s = 0.5
    started = time.monotonic()
    assert send_sms(sms_gateway).status_code == 200
    assert time.monotonic() - started >= 0.5


def test_it_holds_requests_until_released_and_accepts_after_the_client_gave_up(sms_gateway: SmsGateway) -> None:
    sms_gateway.hold()
    with pytest.raises(httpx.ReadTimeout):
        send_sms(sms_gateway, key="n-1", timeout_s=0.3)
    assert sms_gateway.in_flight == 1
    assert sms_gateway.accepted == []
    sms_gateway.release()
    sms_gateway.wait_for_accepted(1)
    # The client retries with the same key: the gateway answers with the first id.
    retry = send_sms(sms_gateway, key="n-1")
    assert retry.json() == {"id": "gw-1"}
    assert sms_gateway.accepted_count_by_key == {"n-1": 1}
    assert sms_gateway.duplicates == 1


def test_it_serves_concurrent_requests(sms_gateway: SmsGateway) -> None:
    sms_gateway.delay_s = 0.3
    threads = [threading.Thread(target=send_sms, args=(sms_gateway,), kwargs={"key": f"k{i}"}) for i in range(5)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert time.monotonic() - started < 1.2
    assert sorted(sms.id for sms in sms_gateway.wait_for_accepted(5)) == [f"gw-{i}" for i in range(1, 6)]


def test_it_is_what_http_sms_backend_speaks(sms_gateway: SmsGateway, sms_via_gateway: SmsGateway) -> None:
    from apps.notifications.sms import SmsPermanentError, SmsTemporaryError, sms_send

    assert sms_send(to="+8613800138000", body="Hello", reference="notification-1") == "gw-1"
    assert sms_send(to="+8613800138000", body="Hello", reference="notification-1") == "gw-1"
    assert sms_gateway.accepted_count_by_key == {"notification-1": 1}
    assert sms_gateway.duplicates == 1
    sms_gateway.fail_next(1)
    with pytest.raises(SmsTemporaryError):
        sms_send(to="+8613800138000", body="Hello")
    sms_gateway.reject_number("+8613900000000")
    with pytest.raises(SmsPermanentError):
        sms_send(to="+8613900000000", body="Hello")
    assert [sms.text for sms in sms_gateway.accepted] == ["Hello"]


# --- Real Celery workers -----------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_it_runs_a_task_in_a_real_worker(celery_to_redis: str, sms_gateway: SmsGateway) -> None:
    from apps.core.tasks import sessions_clear_task

    Session.objects.create(session_key="x" * 32, session_data="", expire_date=timezone.now() - timedelta(days=1))
    Session.objects.create(session_key="y" * 32, session_data="", expire_date=timezone.now() + timedelta(days=1))
    with celery_worker_process(sms_gateway.worker_env()) as worker:
        assert worker.queue.startswith("test-")
        sessions_clear_task.apply_async(queue=worker.queue)
        wait_until(
            lambda: not Session.objects.filter(session_key="x" * 32).exists(),
            60,
            "the worker did not clear the expired session",
            worker=worker,
        )
        assert Session.objects.filter(session_key="y" * 32).exists()
    assert not worker.alive()
    assert worker.group_pids() == []


def test_it_kills_every_worker_process(start_celery_worker: StartWorker) -> None:
    worker = start_celery_worker(concurrency=2)
    wait_until(lambda: len(worker.group_pids()) >= 3, 30, "the prefork pool did not start", worker=worker)
    pids = worker.group_pids()
    worker.kill()
    assert not worker.alive()
    assert worker.process.returncode == -9
    assert worker.group_pids() == []
    assert all(not _alive(pid) for pid in pids)


def test_it_stops_a_worker_gracefully(start_celery_worker: StartWorker) -> None:
    worker = start_celery_worker()
    worker.stop()
    assert worker.process.returncode == 0, worker.output()
    assert worker.group_pids() == []


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"
