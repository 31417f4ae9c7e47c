"""On PostgreSQL the database itself refuses overlapping active appointments
of one doctor, and of one patient (exclusion constraints on the time range,
with btree_gist for the equality part). On SQLite the booking services check
inside an immediate transaction, which holds the database's write lock."""

from django.db import migrations

FORWARD = """
CREATE EXTENSION IF NOT EXISTS btree_gist;
ALTER TABLE scheduling_appointment ADD CONSTRAINT appointment_doctor_no_overlap
    EXCLUDE USING gist (doctor_id WITH =, tstzrange(starts_at, ends_at, '[)') WITH &&)
    WHERE (status <> 'cancelled');
ALTER TABLE scheduling_appointment ADD CONSTRAINT appointment_patient_no_overlap
    EXCLUDE USING gist (patient_id WITH =, tstzrange(starts_at, ends_at, '[)') WITH &&)
    WHERE (status <> 'cancelled');
"""

BACKWARD = """
ALTER TABLE scheduling_appointment DROP CONSTRAINT IF EXISTS appointment_doctor_no_overlap;
ALTER TABLE scheduling_appointment DROP CONSTRAINT IF EXISTS appointment_patient_no_overlap;
"""


def forward(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD)


def backward(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD)


class Migration(migrations.Migration):
    dependencies = [("scheduling", "0001_initial")]

    operations = [migrations.RunPython(forward, backward)]
