"""On PostgreSQL, refuse changes to signed notes, their diagnoses and signed
addenda in the database itself (the models refuse them too, which is what
SQLite, the embedded mode, relies on). What may still change after signing:
a note's follow-up appointment, and a diagnosis's status (resolved)."""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION care_signed_note_immutable() RETURNS trigger AS $$
BEGIN
    IF OLD.status = 'signed' THEN
        IF TG_OP = 'DELETE' THEN
            RAISE EXCEPTION 'signed consult notes are immutable';
        END IF;
        IF (NEW.appointment_id, NEW.patient_id, NEW.author_id, NEW.subjective, NEW.objective, NEW.assessment,
            NEW.plan, NEW.medications, NEW.advice, NEW.patient_summary, NEW.follow_up_after_days, NEW.status,
            NEW.version, NEW.created_at, NEW.signed_at, NEW.signed_by_id, NEW.content_hash)
           IS DISTINCT FROM
           (OLD.appointment_id, OLD.patient_id, OLD.author_id, OLD.subjective, OLD.objective, OLD.assessment,
            OLD.plan, OLD.medications, OLD.advice, OLD.patient_summary, OLD.follow_up_after_days, OLD.status,
            OLD.version, OLD.created_at, OLD.signed_at, OLD.signed_by_id, OLD.content_hash) THEN
            RAISE EXCEPTION 'signed consult notes are immutable';
        END IF;
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER care_signed_note_immutable
    BEFORE UPDATE OR DELETE ON care_consultnote
    FOR EACH ROW EXECUTE FUNCTION care_signed_note_immutable();

CREATE OR REPLACE FUNCTION care_signed_diagnosis_immutable() RETURNS trigger AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND EXISTS (
        SELECT 1 FROM care_consultnote WHERE id = OLD.note_id AND status = 'signed'
    ) THEN
        IF TG_OP = 'DELETE' OR (NEW.note_id, NEW.patient_id, NEW.code, NEW.description, NEW.is_primary,
                                NEW.onset_date, NEW.recorded_at)
                               IS DISTINCT FROM
                               (OLD.note_id, OLD.patient_id, OLD.code, OLD.description, OLD.is_primary,
                                OLD.onset_date, OLD.recorded_at) THEN
            RAISE EXCEPTION 'diagnoses of signed consult notes are immutable';
        END IF;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND EXISTS (
        SELECT 1 FROM care_consultnote WHERE id = NEW.note_id AND status = 'signed'
    ) AND (TG_OP = 'INSERT' OR NEW.note_id IS DISTINCT FROM OLD.note_id) THEN
        RAISE EXCEPTION 'diagnoses of signed consult notes are immutable';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER care_signed_diagnosis_immutable
    BEFORE INSERT OR UPDATE OR DELETE ON care_diagnosis
    FOR EACH ROW EXECUTE FUNCTION care_signed_diagnosis_immutable();

CREATE OR REPLACE FUNCTION care_signed_addendum_immutable() RETURNS trigger AS $$
BEGIN
    IF OLD.signed_at IS NOT NULL THEN
        RAISE EXCEPTION 'signed addenda are immutable';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER care_signed_addendum_immutable
    BEFORE UPDATE OR DELETE ON care_noteaddendum
    FOR EACH ROW EXECUTE FUNCTION care_signed_addendum_immutable();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS care_signed_addendum_immutable ON care_noteaddendum;
DROP FUNCTION IF EXISTS care_signed_addendum_immutable();
DROP TRIGGER IF EXISTS care_signed_diagnosis_immutable ON care_diagnosis;
DROP FUNCTION IF EXISTS care_signed_diagnosis_immutable();
DROP TRIGGER IF EXISTS care_signed_note_immutable ON care_consultnote;
DROP FUNCTION IF EXISTS care_signed_note_immutable();
"""


def forward(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD)


def backward(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD)


class Migration(migrations.Migration):
    dependencies = [("care", "0001_initial")]

    operations = [migrations.RunPython(forward, backward)]
