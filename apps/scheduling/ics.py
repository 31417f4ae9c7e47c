"""iCalendar (.ics) files for appointments, made with the icalendar library."""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _
from icalendar import Calendar, Event

from apps.scheduling.models import Appointment


def appointment_uid(appointment: Appointment) -> str:
    # A rescheduled appointment keeps the UID of the one it replaces, so that
    # calendars move the event instead of adding a second one.
    first = appointment
    while first.rescheduled_from_id is not None and first.rescheduled_from is not None:
        first = first.rescheduled_from
    return f"appointment-{first.pk}@telemed"


def appointment_ics(appointment: Appointment, *, cancelled: bool = False) -> str:
    calendar = Calendar()
    calendar.add("prodid", "-//Telemed//Appointments//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "CANCEL" if cancelled else "PUBLISH")
    event = Event()
    event.add("uid", appointment_uid(appointment))
    event.add("dtstamp", timezone.now())
    event.add("dtstart", appointment.starts_at)
    event.add("dtend", appointment.ends_at)
    event.add("summary", _("Consult with %(doctor)s") % {"doctor": appointment.doctor.full_name})
    event.add("location", appointment.clinic.name)
    event.add("description", settings.SITE_URL.rstrip("/") + "/")
    event.add("sequence", _sequence(appointment) + (1 if cancelled else 0))
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    calendar.add_component(event)
    return calendar.to_ical().decode()


def _sequence(appointment: Appointment) -> int:
    count = 0
    current = appointment
    while current.rescheduled_from_id is not None and current.rescheduled_from is not None:
        count += 1
        current = current.rescheduled_from
    return count
