"""QoS for the bridge's subscriptions, including `auto`: match the publishers that exist.

DDS matching rules decide `auto`: a reliable subscription does not match a best-effort
publisher, and a transient-local subscription does not match a volatile publisher. So `auto`
is best-effort when any publisher is best-effort, and transient-local only when every publisher
is (then late-joining bridges still get latched data). With no publisher yet, best-effort +
volatile matches whatever appears; the node re-checks when publishers change.
"""

from __future__ import annotations

from collections.abc import Sequence

from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)

QOS_CHOICES = ("auto", "sensor_data", "reliable", "best_effort")
DEPTH = 10


def profile_for(setting: str, publishers: Sequence[QoSProfile]) -> QoSProfile:
    """The subscription profile for `setting`, given the QoS of the topic's current publishers."""
    if setting == "sensor_data":
        return qos_profile_sensor_data
    if setting == "reliable":
        return _profile(ReliabilityPolicy.RELIABLE, DurabilityPolicy.VOLATILE)
    if setting == "best_effort":
        return _profile(ReliabilityPolicy.BEST_EFFORT, DurabilityPolicy.VOLATILE)
    if setting != "auto":
        raise ValueError(f"qos {setting!r} is not one of {', '.join(QOS_CHOICES)}")
    if not publishers:
        return _profile(ReliabilityPolicy.BEST_EFFORT, DurabilityPolicy.VOLATILE)
    best_effort = any(p.reliability == ReliabilityPolicy.BEST_EFFORT for p in publishers)
    latched = all(p.durability == DurabilityPolicy.TRANSIENT_LOCAL for p in publishers)
    return _profile(
        ReliabilityPolicy.BEST_EFFORT if best_effort else ReliabilityPolicy.RELIABLE,
        DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE,
    )


def describe(profile: QoSProfile) -> str:
    return f"{profile.reliability.name.lower()}/{profile.durability.name.lower()}"


def _profile(reliability: ReliabilityPolicy, durability: DurabilityPolicy) -> QoSProfile:
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=DEPTH, reliability=reliability, durability=durability)
