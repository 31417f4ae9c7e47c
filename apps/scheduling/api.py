"""The scheduling API (DRF): doctors, free slots, appointments.

Times are ISO 8601 with an offset. A booking that loses a race answers 409
with a machine-readable ``code``; invalid input answers 400 with field
errors; anything the caller may not see is 404.
"""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

from django.http import Http404
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import User
from apps.clinics.models import Clinic, DoctorProfile
from apps.clinics.selectors import user_is_patient
from apps.scheduling.models import Appointment, ConsultMode
from apps.scheduling.selectors import (
    appointment_get_for_user,
    appointments_visible_to,
    booking_inputs,
    doctor_free_slots,
    doctor_practises_at,
)
from apps.scheduling.services import (
    AppointmentChangeError,
    BookingError,
    Refusal,
    appointment_book,
    appointment_cancel,
    appointment_reschedule,
)

CONFLICTS = {"slot_taken", "patient_busy", "not_active"}
FORBIDDEN = {"no_consent", "not_a_patient", "past_cutoff"}


def _refusal(error: Refusal) -> Response:
    if error.code in CONFLICTS:
        code = status.HTTP_409_CONFLICT
    elif error.code in FORBIDDEN:
        code = status.HTTP_403_FORBIDDEN
    else:
        code = status.HTTP_400_BAD_REQUEST
    return Response({"code": error.code, "detail": error.message}, status=code)


class ClinicBriefSerializer(serializers.ModelSerializer[Clinic]):
    class Meta:
        model = Clinic
        fields = ["id", "name", "timezone"]


class DoctorSerializer(serializers.ModelSerializer[DoctorProfile]):
    id = serializers.IntegerField(source="user_id")
    full_name = serializers.CharField(source="user.full_name")
    specialties = serializers.SerializerMethodField()
    clinics = serializers.SerializerMethodField()

    class Meta:
        model = DoctorProfile
        fields = ["id", "full_name", "specialties", "languages", "clinics"]

    def get_specialties(self, profile: DoctorProfile) -> list[dict[str, str]]:
        return [{"code": s.code, "name": s.name} for s in profile.specialties.all()]

    @extend_schema(exclude=True)
    def get_clinics(self, profile: DoctorProfile) -> list[dict[str, Any]]:
        return [
            ClinicBriefSerializer(m.clinic).data
            for m in profile.user.memberships.all()
            if m.role == "doctor" and m.is_active and m.clinic.is_active
        ]


class DoctorList(generics.ListAPIView[DoctorProfile]):
    """Doctors of the whole network; filter by specialty code, clinic id, language."""

    serializer_class = DoctorSerializer
    permission_classes = [IsAuthenticated]

    @extend_schema(
        parameters=[
            OpenApiParameter("specialty", str, description="specialty code, e.g. cardiology"),
            OpenApiParameter("clinic", int),
            OpenApiParameter("language", str, enum=["zh-hans", "en"]),
        ]
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> Any:
        profiles = DoctorProfile.objects.select_related("user").prefetch_related(
            "specialties", "user__memberships__clinic"
        )
        params = self.request.query_params
        if params.get("specialty"):
            profiles = profiles.filter(specialties__code=params["specialty"])
        if params.get("clinic"):
            try:
                clinic_id = int(params["clinic"])
            except ValueError:
                raise serializers.ValidationError({"clinic": ["Enter a whole number."]}) from None
            profiles = profiles.filter(user__memberships__clinic_id=clinic_id, user__memberships__role="doctor")
        language = params.get("language")
        rows = list(profiles.distinct().order_by("user__full_name"))
        return [p for p in rows if not language or language in p.languages]


class SlotQuerySerializer(serializers.Serializer[Any]):
    clinic = serializers.IntegerField()
    start = serializers.DateField(required=False)
    days = serializers.IntegerField(min_value=1, max_value=31, default=7)


class SlotSerializer(serializers.Serializer[Any]):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    modes = serializers.ListField(child=serializers.ChoiceField(choices=ConsultMode.choices))


class DoctorSlots(APIView):
    """Free slots of a doctor at one clinic, from ``start`` (clinic date) for ``days`` days."""

    permission_classes = [IsAuthenticated]

    @extend_schema(parameters=[SlotQuerySerializer], responses=SlotSerializer(many=True))
    def get(self, request: Request, doctor_id: int) -> Response:
        query = SlotQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        doctor = User.objects.filter(pk=doctor_id, doctor_profile__isnull=False).first()
        clinic = Clinic.objects.filter(pk=query.validated_data["clinic"], is_active=True).first()
        if doctor is None or clinic is None or not doctor_practises_at(doctor=doctor, clinic=clinic):
            raise Http404
        now = timezone.now()
        first: date = query.validated_data.get("start") or now.date()
        slots = doctor_free_slots(
            doctor=doctor, clinic=clinic, first_day=first, days=query.validated_data["days"], now=now
        )
        data = [{"start": s.start, "end": s.end, "modes": sorted(s.modes)} for s in slots]
        return Response(SlotSerializer(data, many=True).data)


class AppointmentSerializer(serializers.ModelSerializer[Appointment]):
    """Every booking answers with one: its fields are built from the model
    once per process and copied for each use, as DRF copies declared fields
    (building them from the model took longer than the rest of the answer)."""

    doctor_name = serializers.CharField(source="doctor.full_name", read_only=True)
    clinic_name = serializers.CharField(source="clinic.name", read_only=True)

    class Meta:
        model = Appointment
        fields = [
            "id",
            "patient",
            "doctor",
            "doctor_name",
            "clinic",
            "clinic_name",
            "starts_at",
            "ends_at",
            "mode",
            "status",
            "reason",
        ]
        read_only_fields = fields

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        built = type(self).__dict__.get("_built_fields")
        if built is None:
            built = super().get_fields()
            type(self)._built_fields = built  # per class: a subclass builds its own
        return copy.deepcopy(built)


class BookSerializer(serializers.Serializer[Any]):
    doctor = serializers.IntegerField()
    clinic = serializers.IntegerField()
    starts_at = serializers.DateTimeField()
    mode = serializers.ChoiceField(choices=ConsultMode.choices)
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class AppointmentListCreate(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses=AppointmentSerializer(many=True))
    def get(self, request: Request) -> Response:
        rows = appointments_visible_to(user=request.user).order_by("starts_at")
        return Response(AppointmentSerializer(rows, many=True).data)

    @extend_schema(request=BookSerializer, responses={201: AppointmentSerializer})
    def post(self, request: Request) -> Response:
        if not user_is_patient(user=request.user):
            return Response(
                {"code": "not_a_patient", "detail": str(BookingError.MESSAGES["not_a_patient"])}, status=403
            )
        body = BookSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        doctor_id, clinic_id = body.validated_data["doctor"], body.validated_data["clinic"]
        starts_at = body.validated_data["starts_at"]
        # The doctor and the clinic come with everything else the booking reads.
        inputs = booking_inputs(
            doctor_id=doctor_id, clinic_id=clinic_id, patient=request.user, booker=request.user, starts_at=starts_at
        )
        doctor: User | None
        clinic: Clinic | None
        if inputs is not None:
            doctor, clinic = inputs.doctor, inputs.clinic
        else:
            doctor = User.objects.filter(pk=doctor_id, doctor_profile__isnull=False).first()
            clinic = Clinic.objects.filter(pk=clinic_id, is_active=True).first()
        if doctor is None or clinic is None:
            return Response({"doctor": ["Unknown doctor or clinic."]}, status=400)
        try:
            appointment = appointment_book(
                patient=request.user,
                doctor=doctor,
                clinic=clinic,
                starts_at=starts_at,
                mode=body.validated_data["mode"],
                reason=body.validated_data["reason"],
                booked_by=request.user,
                inputs=inputs,
            )
        except BookingError as refused:
            return _refusal(refused)
        return Response(AppointmentSerializer(appointment).data, status=201)


def _own_appointment(request: Request, appointment_id: int) -> Appointment:
    appointment = appointment_get_for_user(user=request.user, appointment_id=appointment_id)
    if appointment.patient_id != request.user.pk:
        raise Http404
    return appointment


class AppointmentCancel(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=inline_serializer("CancelRequest", {"reason": serializers.CharField(required=False)}),
        responses=AppointmentSerializer,
    )
    def post(self, request: Request, appointment_id: int) -> Response:
        appointment = _own_appointment(request, appointment_id)
        try:
            cancelled = appointment_cancel(
                appointment=appointment,
                by=request.user,
                reason=str(request.data.get("reason", "")),
            )
        except AppointmentChangeError as refused:
            return _refusal(refused)
        return Response(AppointmentSerializer(cancelled).data)


class RescheduleSerializer(serializers.Serializer[Any]):
    starts_at = serializers.DateTimeField()
    mode = serializers.ChoiceField(choices=ConsultMode.choices, required=False)


class AppointmentReschedule(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=RescheduleSerializer, responses=AppointmentSerializer)
    def post(self, request: Request, appointment_id: int) -> Response:
        appointment = _own_appointment(request, appointment_id)
        body = RescheduleSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            moved = appointment_reschedule(
                appointment=appointment,
                starts_at=body.validated_data["starts_at"],
                mode=body.validated_data.get("mode"),
                by=request.user,
            )
        except (AppointmentChangeError, BookingError) as refused:
            return _refusal(refused)
        return Response(AppointmentSerializer(moved).data)
