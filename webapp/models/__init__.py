"""The data model, one module per aggregate."""

from webapp.models.attachments import Attachment, AttachmentChunk
from webapp.models.bulk import BulkSend
from webapp.models.counters import (
    FormSubmissionCount,
    HookStatusCount,
    LogHourCount,
    form_submission_counts,
    hook_status_counts,
    hourly_log_counts,
)
from webapp.models.deliveries import (
    FAILED,
    PENDING,
    STATUSES,
    SUCCESS,
    Attempt,
    DeliveryLog,
    status_counts,
)
from webapp.models.forms import Form
from webapp.models.hooks import AUTH_LEVELS, EXPORT_TYPES, Hook
from webapp.models.retention import RetentionRun
from webapp.models.sources import SOURCE_KINDS, Source
from webapp.models.submissions import Submission
from webapp.models.users import ROLES, ApiToken, LoginThrottle, User, UserSession

__all__ = [
    "AUTH_LEVELS",
    "EXPORT_TYPES",
    "FAILED",
    "PENDING",
    "ROLES",
    "SOURCE_KINDS",
    "STATUSES",
    "SUCCESS",
    "ApiToken",
    "Attachment",
    "AttachmentChunk",
    "Attempt",
    "BulkSend",
    "DeliveryLog",
    "Form",
    "FormSubmissionCount",
    "Hook",
    "HookStatusCount",
    "LogHourCount",
    "LoginThrottle",
    "RetentionRun",
    "Source",
    "Submission",
    "User",
    "UserSession",
    "form_submission_counts",
    "hook_status_counts",
    "hourly_log_counts",
    "status_counts",
]
