"""``manage.py care_bench_data`` at a tiny scale (the benchmark's data set)."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count

from apps.accounts.models import Consent, User
from apps.care.models import CareTeamMembership, ConsultNote, Diagnosis, NoteStatus
from apps.clinics.models import Membership
from apps.scheduling.models import Appointment
from apps.vitals.models import Alert, Reading
from tests.factories import PatientFactory

pytestmark = pytest.mark.sqlite


def _build(**sizes: int) -> None:
    options = {"patients": 40, "readings": 2000, "appointments": 300, "doctors": 6, "clinics": 2, **sizes}
    call_command("care_bench_data", **options, verbosity=0)


@pytest.mark.django_db
def test_it_builds_the_data_set_at_the_asked_size(capsys: pytest.CaptureFixture[str]) -> None:
    _build()
    assert "bench data built" in capsys.readouterr().out
    patients = User.objects.filter(patient_profile__isnull=False)
    assert patients.count() == 40
    assert Consent.objects.filter(patient__in=patients, withdrawn_at__isnull=True).count() == 40
    assert Membership.objects.filter(role="doctor").count() == 6
    assert Reading.objects.count() == 2000
    assert Appointment.objects.count() == 300
    assert set(Appointment.objects.values_list("status", flat=True)) >= {"completed", "booked"}
    # Flags by the product's rules, and an alert for each urgent or critical reading.
    assert Alert.objects.count() == Reading.objects.filter(severity__in=["urgent", "critical"]).count()
    assert ConsultNote.objects.exclude(status=NoteStatus.SIGNED).count() == 0
    assert Diagnosis.objects.exists()
    assert CareTeamMembership.objects.exists()
    # The busy doctor has the most patients.
    busiest = (
        Appointment.objects.values("doctor__email").annotate(n=Count("patient", distinct=True)).order_by("-n").first()
    )
    assert busiest is not None
    assert busiest["doctor__email"] == "doctor0@bench.invalid"


@pytest.mark.django_db(transaction=True)  # --reset truncates, as it does outside a test's transaction
def test_it_refuses_a_database_with_data_and_rebuilds_its_own_with_reset() -> None:
    _build()
    with pytest.raises(CommandError, match="already has data"):
        _build()
    _build(patients=20, readings=500, appointments=100, reset=True)
    assert User.objects.filter(patient_profile__isnull=False).count() == 20


@pytest.mark.django_db
def test_reset_never_empties_a_database_with_real_accounts() -> None:
    _build()
    PatientFactory(full_name="Alice", email="alice@example.org")
    with pytest.raises(CommandError, match="other accounts"):
        _build(reset=True)
    assert User.objects.filter(email="alice@example.org").exists()
