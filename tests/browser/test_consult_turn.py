"""A consult relayed through TURN: coturn started here on loopback with a
shared secret (use-auth-secret), the app handing out time-limited
credentials for it, and the browsers told to use TURN only
(CONSULT_ICE_TRANSPORT_POLICY=relay). With the right secret the call
connects through relay candidates on both sides and video decodes; with a
secret coturn doesn't know it never connects."""

from __future__ import annotations

import secrets
import socket
import struct
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from apps.accounts.models import User
from apps.clinics.models import Clinic
from apps.scheduling.models import Appointment
from tests.browser.consult_helpers import (
    IN_MEMORY_LAYER,
    call_browser,
    daphne_server,
    everyone_left,
    grows,
    open_video_appointment,
    signed_in_page,
    state,
    wait_connected,
)
from tests.services import turnserver_path

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Every peer connection the page makes records its connection states and the
# errors of its ICE candidate gathering (a TURN server's refusal is one).
RECORD_PEER_CONNECTIONS = """(() => {
  const Native = window.RTCPeerConnection;
  window.connectionStates = [];
  window.iceCandidateErrors = [];
  window.RTCPeerConnection = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener("connectionstatechange", () => window.connectionStates.push(this.connectionState));
      this.addEventListener("icecandidateerror", (e) => window.iceCandidateErrors.push(e.errorCode));
    }
  };
})();"""
# The candidate types of the pair ICE selected, from getStats.
SELECTED_PAIR = """async () => {
  const report = await window.telemedConsult.pc.getStats();
  let pairId = null;
  report.forEach((s) => {
    if (s.type === "transport" && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId;
  });
  if (!pairId) return null;
  const pair = report.get(pairId);
  const local = report.get(pair.localCandidateId);
  const remote = report.get(pair.remoteCandidateId);
  return {local: local.candidateType, remote: remote.candidateType, relayProtocol: local.relayProtocol || null};
}"""
LOCAL_CANDIDATE_TYPES = """async () => {
  const report = await window.telemedConsult.pc.getStats();
  const types = [];
  report.forEach((s) => { if (s.type === "local-candidate") types.push(s.candidateType); });
  return types;
}"""
NOT_CONNECTED_FOR_MS = 15_000


@dataclass(frozen=True)
class Turn:
    url: str
    secret: str
    log: Path


def _free_port() -> int:
    """A port free for both UDP and TCP on loopback (coturn listens on both)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port


def _stun_answers(port: int) -> bool:
    """A STUN Binding request over UDP gets an answer (within 0.2 s)."""
    transaction_id = secrets.token_bytes(12)
    request = struct.pack("!HHI", 0x0001, 0, 0x2112A442) + transaction_id
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.settimeout(0.2)
        udp.sendto(request, ("127.0.0.1", port))
        try:
            answer = udp.recv(2048)
        except OSError:  # a timeout, or the port refused (not listening yet)
            return False
    return answer[8:20] == transaction_id


@pytest.fixture(scope="module")
def turn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Turn]:
    """coturn on loopback: relays only between loopback addresses, and only
    for credentials made from its secret."""
    executable = turnserver_path()
    directory = tmp_path_factory.mktemp("coturn")
    port, secret, log = _free_port(), secrets.token_urlsafe(24), directory / "turn.log"
    config = directory / "turnserver.conf"
    config.write_text(
        "\n".join(
            [
                "listening-ip=127.0.0.1",
                "relay-ip=127.0.0.1",
                f"listening-port={port}",
                "allow-loopback-peers",
                "use-auth-secret",
                f"static-auth-secret={secret}",
                "realm=telemed.test",
                "fingerprint",
                "no-cli",
                "no-tls",
                "no-dtls",
                "no-stdout-log",
                "simple-log",
                f"log-file={log}",
                f"pidfile={directory / 'turn.pid'}",
                f"userdb={directory / 'turndb'}",
                "",
            ]
        ),
        encoding="utf-8",
    )
    process = subprocess.Popen(  # our own config, no shell
        [executable, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        # Ready when it answers over UDP, which the browsers use: its TCP
        # listener comes up before the UDP threads do.
        for _ in range(100):
            if _stun_answers(port) or process.poll() is not None:
                break
        assert process.poll() is None, f"coturn exited with {process.returncode}"
        assert _stun_answers(port), "coturn does not answer STUN over UDP"
        yield Turn(url=f"turn:127.0.0.1:{port}?transport=udp", secret=secret, log=log)
    finally:
        process.terminate()
        process.wait(timeout=10)


def _relay_only(turn: Turn, secret: str) -> dict[str, Any]:
    return {
        "CHANNEL_LAYERS": IN_MEMORY_LAYER,
        "ICE_STUN_URLS": [],
        "ICE_TURN_URLS": [turn.url],
        "TURN_SECRET": secret,
        "CONSULT_ICE_TRANSPORT_POLICY": "relay",
    }


@pytest.fixture(scope="module")
def server(django_db_setup: None, django_db_blocker: Any, turn: Turn) -> Iterator[str]:
    """The app with coturn's secret."""
    with daphne_server(django_db_blocker, **_relay_only(turn, turn.secret)) as url:
        yield url


@pytest.fixture(scope="module")
def server_with_a_wrong_secret(django_db_setup: None, django_db_blocker: Any, turn: Turn) -> Iterator[str]:
    """The app with a secret coturn doesn't know: its credentials are refused."""
    with daphne_server(django_db_blocker, **_relay_only(turn, "not-" + turn.secret)) as url:
        yield url


@pytest.fixture(scope="module")
def browser(server: str, server_with_a_wrong_secret: str) -> Iterator[Any]:
    """Started after both servers have forked."""
    with call_browser() as browser:
        yield browser


@pytest.fixture
def appointment(alice: User, bob: User, clinic: Clinic) -> Iterator[Appointment]:
    appointment = open_video_appointment(alice, bob, clinic)
    yield appointment
    everyone_left(appointment)  # before the database is flushed


def _start_call(browser: Any, server: str, alice: User, bob: User, appointment: Appointment) -> tuple[Any, Any]:
    """Both in the room, the doctor starts: each page makes its peer connection."""
    room = f"{server}/consults/{appointment.pk}/"
    patient = signed_in_page(browser, server, alice)
    doctor = signed_in_page(browser, server, bob)
    for page in (patient, doctor):
        page.add_init_script(RECORD_PEER_CONNECTIONS)
    patient.goto(room)
    patient.wait_for_function("() => window.telemedConsult && window.telemedConsult.consultState === 'waiting'")
    doctor.goto(room)
    doctor.wait_for_function("() => window.telemedConsult.otherPresent === true")
    doctor.locator("[data-action=start]").click()
    for page in (patient, doctor):
        page.wait_for_function("() => window.telemedConsult.pc !== null")
        assert state(page, "pc.getConfiguration().iceTransportPolicy") == "relay"
    return patient, doctor


def test_it_connects_through_the_turn_relay_with_the_apps_credentials(
    server: str, browser: Any, turn: Turn, alice: User, bob: User, appointment: Appointment
) -> None:
    patient, doctor = _start_call(browser, server, alice, bob, appointment)
    (turn_server,) = state(patient, "iceServers")
    assert turn_server["urls"] == [turn.url]
    assert turn_server["username"].endswith(f":{alice.pk}")

    try:
        wait_connected(patient, doctor)
    except Exception as error:  # what CI shows: each side's states and coturn's log
        seen = [page.evaluate("[window.connectionStates, window.iceCandidateErrors]") for page in (patient, doctor)]
        raise AssertionError(f"not connected: {seen}\n{turn.log.read_text()[-4000:]}") from error
    for page in (patient, doctor):
        pair = page.evaluate(SELECTED_PAIR)
        assert pair == {"local": "relay", "remote": "relay", "relayProtocol": "udp"}, pair
        assert grows(page, "video", "frames"), "no video frames decoded through the relay"
        assert page.evaluate("window.iceCandidateErrors") == []
        assert page.errors == []
    patient.context.close()
    doctor.context.close()


def test_it_does_not_connect_when_coturn_refuses_the_credentials(
    server_with_a_wrong_secret: str, browser: Any, alice: User, bob: User, appointment: Appointment
) -> None:
    patient, doctor = _start_call(browser, server_with_a_wrong_secret, alice, bob, appointment)
    for page in (patient, doctor):
        # coturn answers the allocation with 401: no relay candidate, and
        # with the policy at relay no other kind either.
        page.wait_for_function("() => window.iceCandidateErrors.includes(401)")
        page.wait_for_function("() => window.telemedConsult.pc.iceGatheringState === 'complete'")
        assert page.evaluate(LOCAL_CANDIDATE_TYPES) == []
    doctor.wait_for_timeout(NOT_CONNECTED_FOR_MS)
    for page in (patient, doctor):
        assert "connected" not in page.evaluate("window.connectionStates")
        assert state(page, "pc.connectionState") != "connected"
        assert page.errors == []
    patient.context.close()
    doctor.context.close()
