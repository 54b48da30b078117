"""Admin for the adapter catalogue (SPEC 9.1): every write goes through ``adapters.services``.

Importing the package registers the model admins.
"""

from adapters.admin.adapter import AdapterAdmin
from adapters.admin.scanned_file import ScannedFileAdmin

__all__ = ["AdapterAdmin", "ScannedFileAdmin"]
