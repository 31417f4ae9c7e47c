"""Settings for Telemed.

With no environment variables set, Telemed runs in *embedded mode*: SQLite under
``var/``, an in-memory channel layer, a Celery broker on the filesystem and
console email/SMS. Setting the variables listed in ``.env.example`` switches
each part to its production service; setting ``SECRET_KEY`` declares a
production deployment and turns on the HTTPS-only protections.
"""

from __future__ import annotations

import secrets
import zoneinfo
from pathlib import Path

import dj_database_url
import django_stubs_ext
import phonenumbers
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from telemed.channel_layers import redis_channel_layer
from telemed.env import env_bool, env_choice, env_int, env_list, env_secret, env_str, env_url

django_stubs_ext.monkeypatch()  # lets admin.ModelAdmin[Model] and friends be subscripted at run time

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("TELEMED_VAR_DIR", str(BASE_DIR / "var")) or BASE_DIR / "var")
(VAR_DIR / "celery").mkdir(parents=True, exist_ok=True)

# --- Mode -----------------------------------------------------------------
_secret_key = env_secret("SECRET_KEY")
PRODUCTION = _secret_key is not None
DEBUG = env_bool("DEBUG", default=False)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DEBUG must be off when SECRET_KEY is set (production)")

if _secret_key is None:
    # Embedded mode: a key generated once and kept under var/ so sessions
    # survive a restart of `make run`.
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50), encoding="utf-8")
        key_file.chmod(0o600)
    _secret_key = key_file.read_text(encoding="utf-8").strip()
elif len(_secret_key) < 50:
    raise ImproperlyConfigured("SECRET_KEY must be at least 50 characters long")
SECRET_KEY = _secret_key

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if PRODUCTION else ["127.0.0.1", "localhost", "[::1]"])
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must list the site's host names in production")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
SITE_URL = env_str("SITE_URL", None if PRODUCTION else "http://127.0.0.1:8000") or ""
if PRODUCTION and not SITE_URL.startswith("https://"):
    raise ImproperlyConfigured("SITE_URL must be the site's https:// address in production (links in SMS and email)")

# --- Applications ---------------------------------------------------------
INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.humanize",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "csp",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.usersessions",
    "apps.core",
    "apps.audit",
    "apps.accounts",
    "apps.clinics",
    "apps.notifications",
    "apps.scheduling",
    "apps.consults",
    "apps.vitals",
    "apps.care",
    "apps.fhir",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "apps.core.middleware.RequestIdMiddleware",
    "django.middleware.gzip.GZipMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "apps.accounts.middleware.UserPreferencesMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "apps.accounts.middleware.SessionLifetimeMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "allauth.usersessions.middleware.UserSessionsMiddleware",
    "apps.accounts.middleware.StaffMfaRequiredMiddleware",
]

ROOT_URLCONF = "telemed.urls"
WSGI_APPLICATION = "telemed.wsgi.application"
ASGI_APPLICATION = "telemed.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.template.context_processors.tz",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "apps.core.context_processors.navigation",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------
DATABASE_URL = env_url("DATABASE_URL", ("postgres", "postgresql", "sqlite"))
if PRODUCTION and (DATABASE_URL is None or DATABASE_URL.startswith("sqlite")):
    raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL in production")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 0, minimum=0))}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(VAR_DIR / "telemed.sqlite3"),
            "OPTIONS": {
                # WAL lets Daphne, the Celery worker and beat share the file;
                # IMMEDIATE transactions take the write lock up front, so two
                # writers queue instead of failing half-way.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
            # Tests use a file too: an in-memory database shared between
            # threads locks whole tables instead of waiting for the writer.
            "TEST": {"NAME": str(VAR_DIR / "test-telemed.sqlite3")},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache, channel layer, Celery broker ---------------------------
REDIS_URL = env_url("REDIS_URL", ("redis", "rediss"))
if PRODUCTION and REDIS_URL is None:
    raise ImproperlyConfigured("REDIS_URL must point at Redis in production")

if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
    # redis-py's defaults would drop consult sockets and messages under load:
    # see telemed/channel_layers.py; bench/signaling.py measures these values.
    CHANNEL_LAYERS = {
        "default": redis_channel_layer(
            url=REDIS_URL,
            max_connections=env_int("CHANNEL_LAYER_MAX_CONNECTIONS", 1000, minimum=10),
            capacity=env_int("CHANNEL_LAYER_CAPACITY", 1000, minimum=100),
        )
    }
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {"visibility_timeout": 3600}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    _broker_dir = VAR_DIR / "celery" / "broker"
    (_broker_dir / "processed").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }

CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", default=False)
# Celery's Django integration closes the database connection after every
# task unless told to reuse it: a new connection per notification costs more
# than the delivery itself.
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 200, minimum=0)
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
# Without this Celery builds its (disabled) result backend again in every
# thread that sends a task, and Django's ASGI handler gives each request a
# thread of its own: about a millisecond per booking, scanning entry points.
CELERY_RESULT_BACKEND_THREAD_SAFE = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celery" / "beat-schedule")
# --- Notifications ------------------------------------------------------------
NOTIFICATIONS_SCAN_INTERVAL_S = env_int("NOTIFICATIONS_SCAN_INTERVAL_S", 10, minimum=1)
NOTIFICATIONS_MAX_ATTEMPTS = env_int("NOTIFICATIONS_MAX_ATTEMPTS", 8, minimum=1)
NOTIFICATIONS_RETRY_BASE_S = env_int("NOTIFICATIONS_RETRY_BASE_S", 30, minimum=1)
NOTIFICATIONS_RETRY_MAX_S = env_int("NOTIFICATIONS_RETRY_MAX_S", 3600, minimum=1)
# How long a worker may hold a notification it is sending before another may
# take it over (longer than any gateway timeout).
NOTIFICATIONS_LEASE_S = env_int("NOTIFICATIONS_LEASE_S", 120, minimum=2)
# A queued notification no worker has picked up after this long is queued
# again (its message was lost: a broker restart). Longer than any backlog.
NOTIFICATIONS_REQUEUE_AFTER_S = env_int("NOTIFICATIONS_REQUEUE_AFTER_S", 900, minimum=2)
# Embedded mode only (in-memory channel layer): how often an open page's
# socket looks for in-app notifications that a worker delivered.
NOTIFICATIONS_EMBEDDED_POLL_S = 3.0

CELERY_BEAT_SCHEDULE = {
    "sessions-clear": {"task": "apps.core.tasks.sessions_clear_task", "schedule": 3600.0},
    "notifications-enqueue-due": {
        "task": "apps.notifications.tasks.notifications_enqueue_due_task",
        "schedule": float(NOTIFICATIONS_SCAN_INTERVAL_S),
    },
    "appointment-notices-late": {
        "task": "apps.scheduling.tasks.appointment_notices_send_late_task",
        "schedule": float(NOTIFICATIONS_SCAN_INTERVAL_S),
    },
    # ECG analyses whose broker message or worker was lost.
    "ecg-recordings-resume": {"task": "apps.vitals.tasks.ecg_recordings_resume_task", "schedule": 300.0},
}

# --- Consults ---------------------------------------------------------------------
# The room opens this long before the appointment starts and closes this long
# after it ends (a consult already in progress may always be rejoined).
CONSULT_JOIN_BEFORE_MIN = env_int("CONSULT_JOIN_BEFORE_MIN", 15, minimum=0, maximum=24 * 60)
CONSULT_JOIN_AFTER_MIN = env_int("CONSULT_JOIN_AFTER_MIN", 60, minimum=0, maximum=24 * 60)
# ICE servers handed to browsers. Empty by default: nothing on the internet is
# contacted unless configured (host candidates work on one network).
ICE_STUN_URLS = env_list("ICE_STUN_URLS", [])
ICE_TURN_URLS = env_list("ICE_TURN_URLS", [])
# coturn's static-auth-secret (use-auth-secret): each participant gets a
# time-limited TURN username and password made from it (TURN REST scheme).
TURN_SECRET = env_secret("TURN_SECRET")
TURN_CREDENTIAL_MARGIN_S = env_int("TURN_CREDENTIAL_MARGIN_S", 3600, minimum=60)
for _url in ICE_STUN_URLS:
    if not _url.startswith(("stun:", "stuns:")):
        raise ImproperlyConfigured(f"ICE_STUN_URLS holds stun: or stuns: URLs, got {_url!r}")
for _url in ICE_TURN_URLS:
    if not _url.startswith(("turn:", "turns:")):
        raise ImproperlyConfigured(f"ICE_TURN_URLS holds turn: or turns: URLs, got {_url!r}")
if ICE_TURN_URLS and not TURN_SECRET:
    raise ImproperlyConfigured("ICE_TURN_URLS needs TURN_SECRET (or TURN_SECRET_FILE): coturn's static-auth-secret")
# "relay" makes browsers use TURN only (no direct path): for networks where
# peers must not learn each other's addresses, and for testing the relay.
CONSULT_ICE_TRANSPORT_POLICY = env_choice("CONSULT_ICE_TRANSPORT_POLICY", "all", ["all", "relay"])
if CONSULT_ICE_TRANSPORT_POLICY == "relay" and not ICE_TURN_URLS:
    raise ImproperlyConfigured("CONSULT_ICE_TRANSPORT_POLICY=relay needs ICE_TURN_URLS: relay means TURN only")
# The video bitrate cap the room's page applies to its sender.
CONSULT_VIDEO_MAX_KBPS = env_int("CONSULT_VIDEO_MAX_KBPS", 300, minimum=30, maximum=10_000)
# Per consult socket: the largest message accepted, and a token bucket of
# messages (a steady rate per second and a burst).
CONSULT_WS_MAX_MESSAGE_BYTES = env_int("CONSULT_WS_MAX_MESSAGE_BYTES", 65536, minimum=4096, maximum=1024 * 1024)
CONSULT_WS_RATE_PER_S = env_int("CONSULT_WS_RATE_PER_S", 20, minimum=1)
CONSULT_WS_RATE_BURST = env_int("CONSULT_WS_RATE_BURST", 60, minimum=1)
# How often an open consult socket tells the database it is still there; a
# presence not refreshed for three periods (its process died) no longer counts.
CONSULT_PRESENCE_REFRESH_S = 30.0
# The pre-call check's echo peer (aiortc, in each Daphne process): how long one
# lives at most, and how many may run at once per process (each decodes and
# re-encodes a patient's video for a few seconds).
CONSULT_CHECK_DURATION_S = env_int("CONSULT_CHECK_DURATION_S", 30, minimum=10, maximum=300)
CONSULT_CHECK_MAX_SESSIONS = env_int("CONSULT_CHECK_MAX_SESSIONS", 10, minimum=1, maximum=1000)

# --- API -------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.accounts.tokens.AccessTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.UserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"user": "600/minute"},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Telemed API",
    "DESCRIPTION": "Doctors, free slots and appointments. Times are ISO 8601 with an offset.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {"ConsultModeEnum": "apps.scheduling.models.ConsultMode"},
}

# --- Accounts and authentication -----------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "core:home"

ACCOUNT_ADAPTER = "apps.accounts.adapter.AccountAdapter"
ACCOUNT_FORMS = {"signup": "apps.accounts.forms.SignupForm"}
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_LOGIN_METHODS = {"email", "phone"}
ACCOUNT_SIGNUP_FIELDS = ["phone", "email", "password1", "password2"]
ACCOUNT_UNIQUE_EMAIL = True
# "optional" globally; apps.accounts.stages makes it mandatory for every
# account that signs in by email without a verified phone.
ACCOUNT_EMAIL_VERIFICATION = "optional"
ACCOUNT_PHONE_VERIFICATION_ENABLED = True
ACCOUNT_PHONE_VERIFICATION_SUPPORTS_RESEND = True
ACCOUNT_LOGIN_BY_CODE_ENABLED = True
# Six digits: typed easily on any phone keypad (and SMS autofill reads them).
ALLAUTH_USER_CODE_FORMAT = {"numeric": True, "length": 6, "dashed": False}
ACCOUNT_PASSWORD_RESET_BY_CODE_ENABLED = False
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_SESSION_REMEMBER = True
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_RATE_LIMITS = {
    "login_failed": "10/m/ip,5/5m/key",
    "signup": "20/m/ip",
    "confirm_email": "1/3m/key",
    "reset_password": "20/m/ip,5/m/key",
    "login": "30/m/ip",
}
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Telemed] "

MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_ADAPTER = "apps.accounts.mfa_adapter.MFAAdapter"
# Encrypts staff TOTP secrets at rest. Changing it invalidates every enrolled
# authenticator, so it is separate from SECRET_KEY (which may be rotated).
MFA_ENCRYPTION_KEY = env_secret("MFA_ENCRYPTION_KEY") or ("" if PRODUCTION else SECRET_KEY)
if len(MFA_ENCRYPTION_KEY) < 32:
    raise ImproperlyConfigured("MFA_ENCRYPTION_KEY must be at least 32 random characters in production")
MFA_TOTP_ISSUER = "Telemed"

# Sessions are listed with the IP and browser of their sign-in; tracking
# activity would cost a database write on every request.
USERSESSIONS_TRACK_ACTIVITY = False

SESSION_COOKIE_AGE = 14 * 24 * 3600  # patients stay signed in on their own phone
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
STAFF_SESSION_IDLE_S = env_int("STAFF_SESSION_IDLE_S", 30 * 60, minimum=60)
STAFF_SESSION_MAX_S = env_int("STAFF_SESSION_MAX_S", 12 * 3600, minimum=300)

# --- Email and SMS --------------------------------------------------------
EMAIL_HOST = env_str("EMAIL_HOST")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1, maximum=65535)
    EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "") or ""
    EMAIL_HOST_PASSWORD = env_secret("EMAIL_HOST_PASSWORD") or ""
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", default=True)
    EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT_S", 10, minimum=1)
else:
    EMAIL_BACKEND = "apps.notifications.email_backends.ConsoleOutboxEmailBackend"
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Telemed <noreply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

SMS_BACKEND = {
    "console": "apps.notifications.sms.ConsoleSmsBackend",
    "http": "apps.notifications.sms.HttpSmsBackend",
}[env_choice("SMS_BACKEND", "console", ["console", "http"])]
SMS_HTTP_URL = env_url("SMS_HTTP_URL", ("http", "https"))
SMS_HTTP_API_KEY = env_secret("SMS_HTTP_API_KEY")
SMS_SENDER = env_str("SMS_SENDER", "Telemed")
SMS_DEFAULT_REGION = env_str("SMS_DEFAULT_REGION", "CN") or "CN"
if SMS_DEFAULT_REGION not in phonenumbers.SUPPORTED_REGIONS:
    raise ImproperlyConfigured(f"SMS_DEFAULT_REGION must be a region code such as CN or GB, got {SMS_DEFAULT_REGION!r}")
if SMS_BACKEND.endswith("HttpSmsBackend") and not (SMS_HTTP_URL and SMS_HTTP_API_KEY):
    raise ImproperlyConfigured("SMS_BACKEND=http needs SMS_HTTP_URL and SMS_HTTP_API_KEY")
if PRODUCTION and (not EMAIL_HOST or SMS_BACKEND.endswith("ConsoleSmsBackend")):
    # The console backends would write sign-in codes and links into the logs.
    raise ImproperlyConfigured("production needs EMAIL_HOST (SMTP) and SMS_BACKEND=http")

# --- Languages and time ----------------------------------------------------
LANGUAGE_CODE = env_choice("LANGUAGE_CODE", "zh-hans", ["zh-hans", "en"])
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_USER_TIME_ZONE = env_str("DEFAULT_USER_TIME_ZONE", "Asia/Shanghai") or "Asia/Shanghai"
if DEFAULT_USER_TIME_ZONE not in zoneinfo.available_timezones():
    raise ImproperlyConfigured(f"DEFAULT_USER_TIME_ZONE must be an IANA time zone, got {DEFAULT_USER_TIME_ZONE!r}")

# --- Static files -------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": VAR_DIR / "private"}},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
# Uploads larger than the memory limit wait here while they are read (ECG
# files are health data: not the system's shared temporary directory).
FILE_UPLOAD_TEMP_DIR = VAR_DIR / "uploads"
FILE_UPLOAD_TEMP_DIR.mkdir(exist_ok=True)
WHITENOISE_MAX_AGE = 3600

# --- Security headers -----------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
CSRF_COOKIE_HTTPONLY = False
if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    if env_bool("BEHIND_PROXY", default=True):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
        # The client address is the last one our proxy added to X-Forwarded-For
        # (allauth's rate limits and our audit log read it the same way).
        ALLAUTH_TRUSTED_PROXY_COUNT = 1

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "media-src": [SELF, "blob:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# --- Logging: never health data; request ids for correlation ----------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "apps.core.middleware.RequestIdLogFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["request_id"]}},
    "root": {"handlers": ["console"], "level": env_choice("LOG_LEVEL", "INFO", ["DEBUG", "INFO", "WARNING", "ERROR"])},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # The pre-call check's echo peer: aioice logs every candidate pair
        # (patients' addresses) at INFO.
        "aioice": {"level": "WARNING"},
        "aiortc": {"level": "WARNING"},
    },
}

MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

# Consent to the processing of health data: the version patients agree to now.
HEALTH_DATA_CONSENT_VERSION = "2026-11"

# --- Vitals (docs/vitals.md) ----------------------------------------------
# The blood-pressure guideline of the flags, the emergency number in the
# patients' advice, and the glucose unit of users without a preference.
VITALS_BP_GUIDELINE = env_choice("VITALS_BP_GUIDELINE", "china_2018", ["china_2018", "acc_aha_2017"])
VITALS_EMERGENCY_NUMBER = env_str("VITALS_EMERGENCY_NUMBER", "120") or "120"
VITALS_GLUCOSE_UNIT = env_choice("VITALS_GLUCOSE_UNIT", "mmol/L", ["mmol/L", "mg/dL"])

SILENCED_SYSTEM_CHECKS = [
    # Sign-up offers two paths (phone + SMS code, or email + password); the
    # signup form requires one of them, which allauth's static check can't see.
    "account.W001",
]
