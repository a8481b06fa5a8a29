"""Firmware over the air: signed manifests, bounded downloads from a JetStream object store, the install hook.

- `manifest`: what an operator signs about a firmware file, and its checks;
- `objects`: reading one object of a bucket, one chunk per request;
- `download`: streaming it into ALIEN_DATA_DIR, resuming after interruptions, verifying, placing it;
- `updater`: the `firmware_update` command, from the request to the hook's result;
- `bucket`: the operator's side (upload with a signed manifest, listing).

See docs/firmware.md.
"""

from alien.firmware.manifest import FIRMWARE_COMMAND, FirmwareError
from alien.firmware.updater import FirmwareHook, FirmwareUpdate

__all__ = ["FIRMWARE_COMMAND", "FirmwareError", "FirmwareHook", "FirmwareUpdate"]
