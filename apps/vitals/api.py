"""The readings API (DRF) for device gateways and scripts: personal access
tokens (``Authorization: Bearer tm_…``) or the session.

``POST /api/v1/readings/`` takes one reading (an object) or a batch (a list,
up to 1000), all or nothing: field errors answer 400 (for a batch, a list
with one error object per item, ``{}`` for good ones); a reading already
stored is not an error (``"duplicate": true``). ``GET`` lists readings,
newest first. Values are in each kind's canonical unit (``units`` gives
the UCUM codes); glucose may be sent in mg/dL with ``"unit": "mg/dL"``.
Each reading carries its flag (``category``, ``severity``) and what the
patient should do (``advice``, with ``category_label``), in the patient's
language, for a gateway or app to show them.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404
from django.utils import translation
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import User
from apps.vitals.flags import advice_for, category_label
from apps.vitals.kinds import GLUCOSE_UNITS, KIND_CHOICES, KINDS, GlucoseContext
from apps.vitals.models import Reading, Source
from apps.vitals.selectors import readings_for_user
from apps.vitals.services import (
    BatchRefused,
    ReadingInput,
    ReadingRefused,
    Recorded,
    emergency_number,
    readings_record_many,
)

MAX_BATCH = 1000
MAX_LIST = 5000
API_SOURCES = [(Source.API, Source.API.label), (Source.DEVICE, Source.DEVICE.label)]


class ReadingInSerializer(serializers.Serializer[Any]):
    patient = serializers.IntegerField(required=False, help_text="Whose reading; default: the caller.")
    kind = serializers.ChoiceField(choices=KIND_CHOICES)
    values = serializers.DictField(
        child=serializers.DecimalField(max_digits=9, decimal_places=3, coerce_to_string=False),
        help_text='e.g. {"systolic": 142, "diastolic": 91, "pulse": 72}',
    )
    unit = serializers.ChoiceField(
        choices=[(u, u) for u in GLUCOSE_UNITS], required=False, default="mmol/L", help_text="Glucose only."
    )
    context = serializers.ChoiceField(
        choices=GlucoseContext.CHOICES, required=False, allow_blank=True, default="", help_text="Glucose only."
    )
    measured_at = serializers.DateTimeField(help_text="ISO 8601 with an offset.")
    source = serializers.ChoiceField(choices=API_SOURCES, required=False, default=Source.API)
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class ReadingOutSerializer(serializers.ModelSerializer[Reading]):
    units = serializers.SerializerMethodField()
    duplicate = serializers.SerializerMethodField()
    category_label = serializers.SerializerMethodField()
    advice = serializers.SerializerMethodField()

    class Meta:
        model = Reading
        fields = [
            "id",
            "patient",
            "kind",
            "values",
            "units",
            "context",
            "measured_at",
            "source",
            "entered_by",
            "note",
            "category",
            "category_label",
            "severity",
            "advice",
            "rule",
            "created_at",
            "duplicate",
        ]
        read_only_fields = fields

    def get_units(self, reading: Reading) -> dict[str, str]:
        spec = KINDS[reading.kind]
        return {f.name: f.ucum for f in spec.fields + spec.derived if f.name in reading.values}

    def get_duplicate(self, reading: Reading) -> bool:
        """On POST: true when the reading was stored before (not an error)."""
        return False

    def get_category_label(self, reading: Reading) -> str:
        """The flag in words, in the patient's language."""
        with translation.override(self._patient_language(reading)):
            return category_label(reading.category)

    def get_advice(self, reading: Reading) -> str:
        """What the patient should do now (for an urgent or critical reading:
        measure again, then call the emergency number), in the patient's
        language, whoever sent the reading."""
        with translation.override(self._patient_language(reading)):
            return advice_for(reading.category, emergency_number=self._emergency_number())

    def _patient_language(self, reading: Reading) -> str:
        """One query per patient in the response, not per reading."""
        languages: dict[int, str] = self.context.setdefault("patient_languages", {})
        if reading.patient_id not in languages:
            language = User.objects.filter(pk=reading.patient_id).values_list("language", flat=True).first()
            languages[reading.patient_id] = language or translation.get_language()
        return languages[reading.patient_id]

    def _emergency_number(self) -> str:
        if "emergency_number" not in self.context:
            self.context["emergency_number"] = emergency_number()
        return str(self.context["emergency_number"])


class ReadingQuerySerializer(serializers.Serializer[Any]):
    patient = serializers.IntegerField(required=False, help_text="Staff: whose readings; default: the caller.")
    kind = serializers.ChoiceField(choices=KIND_CHOICES, required=False)
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)
    limit = serializers.IntegerField(min_value=1, max_value=MAX_LIST, default=500)


def _patient(request: Request, patient_id: int | None) -> User:
    """The patient named in the body, or the caller; an unknown id is "not found"."""
    if patient_id is None or patient_id == request.user.pk:
        return request.user
    patient = User.objects.filter(pk=patient_id).first()
    if patient is None:
        raise Http404
    return patient


def _refused(code: str, detail: str) -> Response:
    status_code = status.HTTP_403_FORBIDDEN if code == "no_consent" else status.HTTP_400_BAD_REQUEST
    return Response({"code": code, "detail": detail}, status=status_code)


class ReadingListCreate(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(parameters=[ReadingQuerySerializer], responses=ReadingOutSerializer(many=True))
    def get(self, request: Request) -> Response:
        query = ReadingQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        readings = readings_for_user(
            user=request.user,
            patient_id=data.get("patient") or request.user.pk,
            kind=data.get("kind"),
            since=data.get("since"),
            until=data.get("until"),
        )
        return Response(ReadingOutSerializer(readings[: data["limit"]], many=True, context={}).data)

    @extend_schema(
        request=ReadingInSerializer,
        responses={201: ReadingOutSerializer},
        description=__doc__,
    )
    def post(self, request: Request) -> Response:
        batch = isinstance(request.data, list)
        raw = request.data if batch else [request.data]
        if batch and not 1 <= len(raw) <= MAX_BATCH:
            detail = _("Send 1 to %(count)s readings in one request.") % {"count": MAX_BATCH}
            return Response({"code": "batch_size", "detail": detail}, status=400)
        bodies = [ReadingInSerializer(data=item) for item in raw]
        valid = [body.is_valid() for body in bodies]
        if not all(valid):
            errors = [body.errors if not ok else {} for body, ok in zip(bodies, valid, strict=True)]
            return Response(errors if batch else errors[0], status=400)
        items = [self._item(request, body.validated_data) for body in bodies]
        try:
            recorded = readings_record_many(by=request.user, items=items)
        except ReadingRefused as refused:
            if refused.code == "not_found":
                raise Http404 from None
            if refused.code == "no_consent":
                return _refused(refused.code, refused.message)
            return Response([refused.errors] if batch else refused.errors, status=400)
        except BatchRefused as refused:
            return Response([refused.errors.get(i, {}) for i in range(len(items))], status=400)
        return self._created(recorded, batch=batch)

    def _item(self, request: Request, data: dict[str, Any]) -> ReadingInput:
        kind = KINDS[data["kind"]]
        return ReadingInput(
            patient=_patient(request, data.get("patient")),
            kind=kind.code,
            values=data["values"],
            measured_at=data["measured_at"],
            source=data["source"],
            note=data["note"],
            context=data["context"],
            unit=data["unit"] if kind.has_context else "",
        )

    def _created(self, recorded: list[Recorded], *, batch: bool) -> Response:
        data = []
        context: dict[str, Any] = {}  # the patients' languages, looked up once
        for one in recorded:
            item = dict(ReadingOutSerializer(one.reading, context=context).data)
            item["duplicate"] = not one.created
            data.append(item)
        code = status.HTTP_201_CREATED if any(one.created for one in recorded) else status.HTTP_200_OK
        return Response(data if batch else data[0], status=code)
