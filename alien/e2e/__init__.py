"""End-to-end encryption of sensitive data (docs/encryption.md).

- `keys`: X25519 key pairs in the NKey text form (`X...` public, `SX...` seed);
- `sealed`: the sealed-value format, `Sealer` (to readers' public keys) and `Opener` (with private keys);
- `fields`: which telemetry keys and events of a device are sealed.

Pure pieces: alien.settings builds them from the ALIEN_E2E_* settings, the telemetry composer
seals with them, and alien.commands.sealed_params opens command params sealed to the device's key.
"""

from alien.e2e.keys import E2EKeyError, E2EKeyPair, generate_keypair, public_key_of
from alien.e2e.sealed import ALGORITHM, E2EError, Opener, Sealer, context, is_sealed

__all__ = [
    "ALGORITHM",
    "E2EError",
    "E2EKeyError",
    "E2EKeyPair",
    "Opener",
    "Sealer",
    "context",
    "generate_keypair",
    "is_sealed",
    "public_key_of",
]
