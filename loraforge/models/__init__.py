from loraforge.models.api_keys import ApiKey
from loraforge.models.jobs import BackgroundJob, JobStatus

__all__ = ["ApiKey", "BackgroundJob", "JobStatus"]
