"""The FHIR R4 endpoints (DRF): personal access tokens
(``Authorization: Bearer tm_…``) or the session (with CSRF for writes),
``application/fhir+json`` or ``application/json`` both ways. Every refusal
is an OperationOutcome; a record the caller may not see is 404.

Observation ids are ``reading-<id>`` (a reading) and ``ecg-<id>`` (an ECG
recording); Appointment and Encounter ids are the appointment's, Condition
ids the diagnosis', Patient ids the user's. docs/fhir.md says it all.
"""

from __future__ import annotations

import contextlib
import zoneinfo
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import Http404
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from pydantic import ValidationError
from rest_framework import exceptions
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView, set_rollback

from apps.accounts.models import User
from apps.fhir.mapping import ECG_LOINC, LOINC, ecg_observation, reading_observation, reading_observation_id
from apps.fhir.mapping_record import (
    appointment_resource,
    condition_resource,
    encounter_resource,
    patient_resource,
    searchset,
)
from apps.fhir.outcome import FhirError, Issue, operation_outcome, validation_issues
from apps.fhir.parsing import KIND_OF_CODE, ParsedObservation, observation_parse
from apps.fhir.record import record_bundle
from apps.fhir.selectors import (
    ObservationQuery,
    appointment_get_for_fhir,
    appointments_search,
    condition_get_for_fhir,
    conditions_search,
    encounter_get_for_fhir,
    encounters_search,
    observation_get_for_user,
    observations_search,
    patient_profile_for_fhir,
    patient_record_for_user,
)
from apps.fhir.services import MAX_ENTRIES, observations_record
from apps.vitals.kinds import GLUCOSE, KINDS, MMOL_L
from apps.vitals.models import EcgRecording, Reading
from apps.vitals.selectors import glucose_unit_for
from apps.vitals.services import Recorded

FHIR_JSON = "application/fhir+json"
DEFAULT_COUNT = 50
MAX_COUNT = 1000
STATUS_TEXT = {
    200: "200 OK",
    201: "201 Created",
    400: "400 Bad Request",
    403: "403 Forbidden",
    404: "404 Not Found",
    405: "405 Method Not Allowed",
    413: "413 Payload Too Large",
    422: "422 Unprocessable Entity",
}


class FhirJsonParser(JSONParser):
    media_type = FHIR_JSON


class FhirJsonRenderer(JSONRenderer):
    media_type = FHIR_JSON
    format = "fhir"


def _outcome(status: int, issues: list[Issue]) -> Response:
    return Response(operation_outcome(issues), status=status)


class FhirView(APIView):
    parser_classes = [FhirJsonParser, JSONParser]
    renderer_classes = [FhirJsonRenderer, JSONRenderer]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        user = request.user
        if user.is_authenticated:  # token callers get their language and zone too
            translation.activate(user.language)
            with contextlib.suppress(zoneinfo.ZoneInfoNotFoundError, ValueError):
                timezone.activate(zoneinfo.ZoneInfo(user.timezone))

    def handle_exception(self, exc: Exception) -> Response:
        set_rollback()
        if isinstance(exc, FhirError):
            return _outcome(exc.status, exc.issues)
        if isinstance(exc, Http404):
            return _outcome(404, [Issue("not-found", _("Not found."))])
        if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
            response = _outcome(401, [Issue("login", str(exc.detail))])
            response["WWW-Authenticate"] = 'Bearer realm="fhir"'
            return response
        if isinstance(exc, exceptions.ParseError):
            return _outcome(400, [Issue("structure", _("The body is not valid JSON."))])
        if isinstance(exc, exceptions.UnsupportedMediaType):
            return _outcome(415, [Issue("not-supported", _("Send application/fhir+json or application/json."))])
        if isinstance(exc, exceptions.NotAcceptable):
            return _outcome(406, [Issue("not-supported", _("This server answers application/fhir+json only."))])
        if isinstance(exc, exceptions.MethodNotAllowed):
            return _outcome(405, [Issue("not-supported", _("This operation is not supported here."))])
        if isinstance(exc, exceptions.Throttled):
            response = _outcome(429, [Issue("throttled", _("Too many requests; try again later."))])
            if exc.wait:
                response["Retry-After"] = str(int(exc.wait))
            return response
        if isinstance(exc, exceptions.PermissionDenied):
            return _outcome(403, [Issue("security", str(exc.detail))])
        if isinstance(exc, RequestDataTooBig):
            return _outcome(413, [Issue("too-costly", _("The request is too large."))])
        if isinstance(exc, exceptions.APIException):
            return _outcome(exc.status_code, [Issue("exception", str(exc.detail))])
        return super().handle_exception(exc)

    # --- helpers for the subclasses -------------------------------------------------

    def base_url(self) -> str:
        return self.request.build_absolute_uri(reverse("fhir:root"))

    def site_url(self) -> str:
        return self.request.build_absolute_uri("/").rstrip("/")

    def body(self) -> dict[str, Any]:
        try:
            data = self.request.data
        except RequestDataTooBig:
            raise FhirError(413, [Issue("too-costly", _("The request is too large."))]) from None
        if not isinstance(data, dict):
            raise FhirError(400, [Issue("structure", _("Send one FHIR resource (a JSON object)."))])
        return data

    def observation_json(self, item: Reading | EcgRecording) -> dict[str, Any]:
        if isinstance(item, EcgRecording):
            return ecg_observation(item, site_url=self.site_url())
        unit = MMOL_L
        if item.kind == GLUCOSE.code:  # in the patient's unit, looked up once per patient
            units = self.__dict__.setdefault("_glucose_units", {})
            if item.patient_id not in units:
                units[item.patient_id] = glucose_unit_for(user=item.patient)
            unit = units[item.patient_id]
        return reading_observation(item, glucose_unit=unit)


# --- Query parameters ---------------------------------------------------------------


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise FhirError(
            400,
            [
                Issue(
                    "invalid",
                    _("%(name)s must be a whole number from %(low)s to %(high)s.")
                    % {"name": name, "low": low, "high": high},
                )
            ],
        )
    return int(raw)


def _patient_param(request: Request) -> int:
    """``patient`` (or ``subject``): ``123``, ``Patient/123``; default: the caller, if a patient."""
    raw = request.query_params.get("patient") or request.query_params.get("subject") or ""
    if not raw:
        if hasattr(request.user, "patient_profile"):
            return int(request.user.pk)
        raise FhirError(400, [Issue("required", _("Give the patient to search: patient=<id>."))])
    parts = raw.rstrip("/").split("/")
    value = parts[0] if len(parts) == 1 else (parts[-1] if parts[-2] == "Patient" else "")
    if not value.isdigit():
        raise FhirError(400, [Issue("invalid", _("patient must be a patient's id or Patient/<id>."))])
    return int(value)


DATE_PREFIXES = ("eq", "ge", "gt", "le", "lt")


def _date_interval(raw: str) -> tuple[datetime, datetime]:
    """The instants [start, end) a FHIR date search value covers, in the current time zone if it has none."""
    zone = timezone.get_current_timezone()
    try:
        if len(raw) == 4 and raw.isdigit():
            start = datetime(int(raw), 1, 1, tzinfo=zone)
            return start, datetime(int(raw) + 1, 1, 1, tzinfo=zone)
        if len(raw) == 7:
            year, month = int(raw[:4]), int(raw[5:7])
            start = datetime(year, month, 1, tzinfo=zone)
            following = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=zone)
            return start, following
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            start = datetime(day.year, day.month, day.day, tzinfo=zone)
            return start, start + timedelta(days=1)
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise FhirError(
            400, [Issue("invalid", _("%(value)s is not a FHIR date or dateTime.") % {"value": raw})]
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment, moment + timedelta(seconds=1)


def _date_params(request: Request) -> tuple[datetime | None, datetime | None]:
    since: datetime | None = None
    until: datetime | None = None
    for value in request.query_params.getlist("date"):
        prefix, raw = (value[:2], value[2:]) if value[:2] in DATE_PREFIXES else ("eq", value)
        start, end = _date_interval(raw.replace(" ", "+"))
        low, high = {
            "eq": (start, end),
            "ge": (start, None),
            "gt": (end, None),
            "le": (None, end),
            "lt": (None, start),
        }[prefix]
        if low is not None:
            since = low if since is None else max(since, low)
        if high is not None:
            until = high if until is None else min(until, high)
    return since, until


CATEGORY_KINDS = {
    "vital-signs": (frozenset(code for code in KINDS if code != GLUCOSE.code), False),
    "laboratory": (frozenset({GLUCOSE.code}), False),
    "procedure": (frozenset(), True),
}


def _observation_query(request: Request) -> ObservationQuery:
    kinds: frozenset[str] | None = None
    ecg = True
    codes = [c for value in request.query_params.getlist("code") for c in value.split(",") if c]
    if codes:
        wanted: set[str] = set()
        ecg = False
        for token in codes:
            system, _bar, code = token.rpartition("|")
            if system and system.rstrip("/") != LOINC:
                continue
            if code == ECG_LOINC:
                ecg = True
            elif code in KIND_OF_CODE:
                wanted.add(KIND_OF_CODE[code].code)
        kinds = frozenset(wanted)
    category = request.query_params.get("category")
    if category:
        category = category.rpartition("|")[2]
        category_kinds, category_ecg = CATEGORY_KINDS.get(category, (frozenset(), False))
        kinds = category_kinds if kinds is None else kinds & category_kinds
        ecg = ecg and category_ecg
    since, until = _date_params(request)
    return ObservationQuery(
        kinds=kinds,
        ecg=ecg,
        since=since,
        until=until,
        offset=_int_param(request, "_offset", 0, 0, 10_000_000),
        count=_int_param(request, "_count", DEFAULT_COUNT, 0, MAX_COUNT),
    )


def _links(request: Request, *, offset: int, count: int, total: int) -> list[dict[str, str]]:
    def url(new_offset: int) -> str:
        params = request.query_params.copy()
        params["_offset"] = str(new_offset)
        params["_count"] = str(count)
        return request.build_absolute_uri(request.path) + "?" + params.urlencode()

    links = [{"relation": "self", "url": request.build_absolute_uri()}, {"relation": "first", "url": url(0)}]
    if count and offset + count < total:
        links.append({"relation": "next", "url": url(offset + count)})
    if count and offset > 0:
        links.append({"relation": "previous", "url": url(max(0, offset - count))})
    if count and total:
        links.append({"relation": "last", "url": url(((total - 1) // count) * count)})
    return links


# --- Observations ------------------------------------------------------------------------


def _parse_observation(data: Any, *, root: str) -> ParsedObservation:
    from fhir.resources.R4B.observation import Observation

    if not isinstance(data, dict) or data.get("resourceType") != "Observation":
        raise FhirError(400, [Issue("invalid", f"{root}: " + _("Send an Observation resource."), (root,))])
    try:
        observation = Observation.model_validate(data)
    except ValidationError as error:
        raise FhirError(400, validation_issues(error, root=root)) from None
    return observation_parse(observation, root=root)


class ObservationType(FhirView):
    """``GET /fhir/Observation?patient=&code=&date=&category=&_count=&_offset=``
    (a searchset Bundle, newest first) and ``POST /fhir/Observation`` (one reading)."""

    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        query = _observation_query(request)
        page = observations_search(user=request.user, patient_id=_patient_param(request), query=query)
        resources = [self.observation_json(item) for item in page.items]
        links = _links(request, offset=query.offset, count=query.count, total=page.total)
        return Response(searchset(resources, base_url=self.base_url(), total=page.total, links=links))

    @extend_schema(exclude=True)
    def post(self, request: Request) -> Response:
        parsed = _parse_observation(self.body(), root="Observation")
        recorded = observations_record(by=request.user, observations=[parsed])[0]
        location = self.base_url() + f"Observation/{reading_observation_id(recorded.reading.pk)}"
        status = 201 if recorded.created else 200
        return Response(self.observation_json(recorded.reading), status=status, headers={"Location": location})


class ObservationInstance(FhirView):
    @extend_schema(exclude=True)
    def get(self, request: Request, observation_id: str) -> Response:
        return Response(
            self.observation_json(observation_get_for_user(user=request.user, observation_id=observation_id))
        )


# --- Bundles (batch and transaction) ------------------------------------------------------


class Root(FhirView):
    """``POST /fhir/`` with a Bundle of type batch or transaction of Observations."""

    @extend_schema(exclude=True)
    def post(self, request: Request) -> Response:
        from fhir.resources.R4B.bundle import Bundle

        data = self.body()
        if data.get("resourceType") != "Bundle":
            raise FhirError(400, [Issue("invalid", _("Send a Bundle of type batch or transaction."), ("Bundle",))])
        entries = data.get("entry") or []
        if not isinstance(entries, list):
            raise FhirError(400, [Issue("structure", "Bundle.entry: " + _("Expected a list."), ("Bundle.entry",))])
        if len(entries) > MAX_ENTRIES:
            raise FhirError(
                413, [Issue("too-costly", _("Send at most %(n)s observations at once.") % {"n": MAX_ENTRIES})]
            )
        envelope = {
            **data,
            "entry": [{k: v for k, v in e.items() if k != "resource"} if isinstance(e, dict) else e for e in entries],
        }
        try:
            bundle = Bundle.model_validate(envelope)
        except ValidationError as error:
            raise FhirError(400, validation_issues(error, root="Bundle")) from None
        if bundle.type not in {"batch", "transaction"}:
            raise FhirError(
                400, [Issue("not-supported", _("Send a Bundle of type batch or transaction."), ("Bundle.type",))]
            )
        if bundle.type == "transaction":
            return self._transaction(request.user, entries)
        return self._batch(request.user, entries)

    def _entry_observation(self, entry: dict[str, Any], index: int) -> ParsedObservation:
        root = f"Bundle.entry[{index}]"
        method = ((entry.get("request") or {}).get("method") or "").upper()
        url = str((entry.get("request") or {}).get("url") or "").split("?")[0].rstrip("/")
        if method != "POST" or url.rsplit("/", 1)[-1] != "Observation":
            raise FhirError(
                400,
                [
                    Issue(
                        "not-supported",
                        f"{root}.request: " + _("Only POST Observation entries are supported."),
                        (f"{root}.request",),
                    )
                ],
            )
        return _parse_observation(entry.get("resource"), root=f"{root}.resource")

    def _response_entry(self, recorded: Recorded) -> dict[str, Any]:
        resource = self.observation_json(recorded.reading)
        return {
            "fullUrl": self.base_url() + f"Observation/{resource['id']}",
            "resource": resource,
            "response": {
                "status": STATUS_TEXT[201 if recorded.created else 200],
                "location": f"Observation/{resource['id']}",
            },
        }

    def _transaction(self, user: User, entries: list[Any]) -> Response:
        parsed: list[ParsedObservation] = []
        issues: list[Issue] = []
        status = 400
        for index, entry in enumerate(entries):
            try:
                parsed.append(self._entry_observation(entry, index))
            except FhirError as error:
                issues += error.issues
                status = max(status, error.status) if error.status != 404 else 404
        if issues:
            raise FhirError(status, issues)
        roots = [f"Bundle.entry[{index}].resource" for index in range(len(entries))]
        recorded = observations_record(by=user, observations=parsed, roots=roots)
        body = {
            "resourceType": "Bundle",
            "type": "transaction-response",
            "entry": [self._response_entry(one) for one in recorded],
        }
        return Response(body, status=200)

    def _batch(self, user: User, entries: list[Any]) -> Response:
        response_entries: list[dict[str, Any]] = []
        for index, entry in enumerate(entries):
            try:
                parsed = self._entry_observation(entry, index)
                roots = [f"Bundle.entry[{index}].resource"]
                recorded = observations_record(by=user, observations=[parsed], roots=roots)[0]
            except FhirError as error:
                response_entries.append(
                    {
                        "response": {
                            "status": STATUS_TEXT.get(error.status, str(error.status)),
                            "outcome": operation_outcome(error.issues),
                        }
                    }
                )
                continue
            response_entries.append(self._response_entry(recorded))
        return Response({"resourceType": "Bundle", "type": "batch-response", "entry": response_entries}, status=200)


# --- Patient and the rest of the record ----------------------------------------------------


class PatientInstance(FhirView):
    @extend_schema(exclude=True)
    def get(self, request: Request, patient_id: int) -> Response:
        return Response(patient_resource(patient_profile_for_fhir(user=request.user, patient_id=patient_id)))


class PatientEverything(FhirView):
    """``GET /fhir/Patient/<id>/$everything``: the whole record as one Bundle."""

    @extend_schema(exclude=True)
    def get(self, request: Request, patient_id: int) -> Response:
        record = patient_record_for_user(user=request.user, patient_id=patient_id)
        return Response(record_bundle(record, base_url=self.base_url(), site_url=self.site_url()))


def _search_view(search: Any, to_resource: Any) -> type[FhirView]:
    class Search(FhirView):
        @extend_schema(exclude=True)
        def get(self, request: Request) -> Response:
            offset = _int_param(request, "_offset", 0, 0, 10_000_000)
            count = _int_param(request, "_count", DEFAULT_COUNT, 0, MAX_COUNT)
            page = search(user=request.user, patient_id=_patient_param(request), offset=offset, count=count)
            resources = [to_resource(item) for item in page.items]
            links = _links(request, offset=offset, count=count, total=page.total)
            return Response(searchset(resources, base_url=self.base_url(), total=page.total, links=links))

    return Search


AppointmentType = _search_view(appointments_search, appointment_resource)
EncounterType = _search_view(encounters_search, encounter_resource)
ConditionType = _search_view(conditions_search, condition_resource)


class AppointmentInstance(FhirView):
    @extend_schema(exclude=True)
    def get(self, request: Request, resource_id: int) -> Response:
        return Response(appointment_resource(appointment_get_for_fhir(user=request.user, appointment_id=resource_id)))


class EncounterInstance(FhirView):
    @extend_schema(exclude=True)
    def get(self, request: Request, resource_id: int) -> Response:
        return Response(encounter_resource(encounter_get_for_fhir(user=request.user, appointment_id=resource_id)))


class ConditionInstance(FhirView):
    @extend_schema(exclude=True)
    def get(self, request: Request, resource_id: int) -> Response:
        return Response(condition_resource(condition_get_for_fhir(user=request.user, diagnosis_id=resource_id)))


class Metadata(FhirView):
    """``GET /fhir/metadata``: what this server does (a CapabilityStatement); open to anyone."""

    permission_classes: list[Any] = []
    authentication_classes: list[Any] = []

    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        def search(*names: str) -> list[dict[str, str]]:
            types = {
                "patient": "reference",
                "subject": "reference",
                "code": "token",
                "date": "date",
                "category": "token",
            }
            return [{"name": n, "type": types[n]} for n in names]

        read = [{"code": "read"}]
        return Response(
            {
                "resourceType": "CapabilityStatement",
                "status": "active",
                "date": datetime.now(UTC).date().isoformat(),
                "kind": "instance",
                "fhirVersion": "4.0.1",
                "format": [FHIR_JSON, "application/json"],
                "implementation": {"description": "Telemed FHIR R4 endpoint", "url": self.base_url()},
                "rest": [
                    {
                        "mode": "server",
                        "interaction": [{"code": "batch"}, {"code": "transaction"}],
                        "resource": [
                            {
                                "type": "Patient",
                                "interaction": read,
                                "operation": [
                                    {
                                        "name": "everything",
                                        "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
                                    }
                                ],
                            },
                            {
                                "type": "Observation",
                                "interaction": [*read, {"code": "search-type"}, {"code": "create"}],
                                "searchParam": search("patient", "subject", "code", "date", "category"),
                            },
                            {
                                "type": "Appointment",
                                "interaction": [*read, {"code": "search-type"}],
                                "searchParam": search("patient"),
                            },
                            {
                                "type": "Encounter",
                                "interaction": [*read, {"code": "search-type"}],
                                "searchParam": search("patient"),
                            },
                            {
                                "type": "Condition",
                                "interaction": [*read, {"code": "search-type"}],
                                "searchParam": search("patient"),
                            },
                        ],
                    }
                ],
            }
        )
