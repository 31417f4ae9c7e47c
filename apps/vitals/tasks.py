from celery import shared_task

from apps.vitals.services_ecg import ecg_recording_analyse, ecg_recordings_resume

# A 24 h recording is analysed in well under a minute (docs/ecg-recordings.md);
# past the hard limit the worker is killed and ANALYSIS_STALE_AFTER (longer)
# lets the next run take the recording over.
ECG_SOFT_TIME_LIMIT_S = 300
ECG_TIME_LIMIT_S = 600


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    soft_time_limit=ECG_SOFT_TIME_LIMIT_S,
    time_limit=ECG_TIME_LIMIT_S,
)
def ecg_analyse_task(recording_id: int) -> str:
    """Analyse one ECG recording; safe to run any number of times."""
    return ecg_recording_analyse(recording_id=recording_id)


@shared_task(ignore_result=True)
def ecg_recordings_resume_task() -> list[int]:
    """Beat's scan for analyses whose message or worker was lost."""
    return ecg_recordings_resume()
