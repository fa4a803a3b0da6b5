"""Where trials live: storage URLs, Optuna's RDB storage and artifacts.

This package depends on nothing else in ``nas`` except :mod:`nas.errors`, so the CLI, the
search driver, reports and exports can all open the same storage the same way.
"""

from nas.storage.artifacts import artifact_store_for, download, upload
from nas.storage.lease import StudyBusy, StudyLease
from nas.storage.outages import OUTAGE_WINDOW_S, StorageUnavailable
from nas.storage.rdb import DEFAULT_TIMEOUT_S, StudyInfo, list_studies, load_study, open_storage
from nas.storage.urls import DEFAULT_STORAGE_URL, mask_password, normalize_storage_url, sqlite_path

__all__ = [
    "DEFAULT_STORAGE_URL",
    "DEFAULT_TIMEOUT_S",
    "OUTAGE_WINDOW_S",
    "StorageUnavailable",
    "StudyBusy",
    "StudyInfo",
    "StudyLease",
    "artifact_store_for",
    "download",
    "list_studies",
    "load_study",
    "mask_password",
    "normalize_storage_url",
    "open_storage",
    "sqlite_path",
    "upload",
]
