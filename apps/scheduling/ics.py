"""iCalendar (.ics) files for appointments, made with the icalendar library."""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _
from icalendar import Calendar, Event

from apps.scheduling.models import Appointment


def _first_of_chain(appointment: Appointment) -> tuple[Appointment, int]:
    """The appointment this one was first booked as, and how many times it
    was moved since: a moved appointment keeps the first one's UID (calendars
    move the event instead of adding one) and a higher SEQUENCE."""
    first, moves = appointment, 0
    while first.rescheduled_from_id is not None and first.rescheduled_from is not None:
        first, moves = first.rescheduled_from, moves + 1
    return first, moves


def appointment_ics(appointment: Appointment, *, cancelled: bool = False) -> str:
    calendar = Calendar()
    calendar.add("prodid", "-//Telemed//Appointments//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "CANCEL" if cancelled else "PUBLISH")
    event = Event()
    first, moves = _first_of_chain(appointment)
    event.add("uid", f"appointment-{first.pk}@telemed")
    event.add("dtstamp", timezone.now())
    event.add("dtstart", appointment.starts_at)
    event.add("dtend", appointment.ends_at)
    event.add("summary", _("Consult with %(doctor)s") % {"doctor": appointment.doctor.full_name})
    event.add("location", appointment.clinic.name)
    event.add("description", settings.SITE_URL.rstrip("/") + "/")
    event.add("sequence", moves + (1 if cancelled else 0))
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    calendar.add_component(event)
    return calendar.to_ical().decode()
