"""REST side of the mothership: one client API over the two server dialects."""

from alien.mothership.client import MothershipClient
from alien.mothership.enums import nearest_status, resolve_entity_type

__all__ = ["MothershipClient", "nearest_status", "resolve_entity_type"]
