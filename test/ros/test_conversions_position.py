"""NavSatFix -> position, and the fix_lost / fix_regained events of FixTracker (alien_ros.conversions).

Pure conversions with the real generated message classes (docs/bridge.md#what-reaches-the-mothership):
a position that is not one is not sent, and what is sent encodes as JSON the server accepts
(docs/contract.md#telemetry-payloads).
"""

from __future__ import annotations

import pytest
from conversions_support import GOOD, INF, NAN, T0_TEXT, constants, json_safe, navsat
from sensor_msgs.msg import NavSatFix, NavSatStatus

from alien_ros.conversions import FixTracker, navsat_fix_to_position

# ---------------------------------------------------------------- NavSatFix


def test_navsat_fix_to_position_full_shape() -> None:
    position = navsat_fix_to_position(navsat(service=NavSatStatus.SERVICE_GPS | NavSatStatus.SERVICE_GALILEO))
    assert position == {
        "latitude": 32.94881,
        "longitude": -96.80132,
        "altitude": 152.4,
        "fix": "FIX",
        "services": ["GPS", "GALILEO"],
        "covariance_type": "DIAGONAL_KNOWN",
        "covariance_diagonal": [1.0, 2.0, 4.0],
        "stamp": T0_TEXT,
        "frame_id": "gps",
    }
    json_safe(position)


def test_no_fix_is_none() -> None:
    assert navsat_fix_to_position(navsat(status=NavSatStatus.STATUS_NO_FIX)) is None


@pytest.mark.parametrize("bad", [NAN, INF, -INF])
@pytest.mark.parametrize("field", ["latitude", "longitude"])
def test_non_finite_coordinates_are_none(field: str, bad: float) -> None:
    assert navsat_fix_to_position(navsat(**{field: bad})) is None


@pytest.mark.parametrize("name", sorted(set(constants(NavSatStatus, "STATUS_")) - {"NO_FIX"}))
def test_every_usable_fix_status_is_named(name: str) -> None:
    position = navsat_fix_to_position(navsat(status=constants(NavSatStatus, "STATUS_")[name]))
    assert position is not None
    assert position["fix"] == name


def test_fix_status_names_include_the_documented_ones() -> None:
    assert {"NO_FIX", "FIX", "SBAS_FIX", "GBAS_FIX"} <= set(constants(NavSatStatus, "STATUS_"))


def test_status_unknown_passes_as_unknown_and_out_of_enum_status_too() -> None:
    # STATUS_UNKNOWN (-2, "not yet set") is not a refusal to fix; 7 is not in any definition.
    for status in (NavSatStatus.STATUS_UNKNOWN, 7):
        position = navsat_fix_to_position(navsat(status=status))
        assert position is not None
        assert position["fix"] == "UNKNOWN"


@pytest.mark.parametrize(
    ("service", "expected"),
    [
        (NavSatStatus.SERVICE_UNKNOWN, []),
        (NavSatStatus.SERVICE_GPS, ["GPS"]),
        (NavSatStatus.SERVICE_GLONASS, ["GLONASS"]),
        (NavSatStatus.SERVICE_COMPASS, ["COMPASS"]),
        (NavSatStatus.SERVICE_GALILEO, ["GALILEO"]),
        (NavSatStatus.SERVICE_GLONASS | NavSatStatus.SERVICE_GALILEO, ["GLONASS", "GALILEO"]),
        (0b1111, ["GPS", "GLONASS", "COMPASS", "GALILEO"]),  # always in bit order
        (0b1111 | 0x100, ["GPS", "GLONASS", "COMPASS", "GALILEO"]),  # undefined bits are ignored
    ],
)
def test_service_bitmask_is_decoded_in_order(service: int, expected: list[str]) -> None:
    position = navsat_fix_to_position(navsat(service=service))
    assert position is not None
    assert position["services"] == expected


@pytest.mark.parametrize("name", sorted(constants(NavSatFix, "COVARIANCE_TYPE_")))
def test_every_covariance_type_is_named(name: str) -> None:
    position = navsat_fix_to_position(navsat(covariance_type=constants(NavSatFix, "COVARIANCE_TYPE_")[name]))
    assert position is not None
    assert position["covariance_type"] == name
    expected_diagonal = None if name == "UNKNOWN" else [1.0, 2.0, 4.0]
    assert position["covariance_diagonal"] == expected_diagonal


def test_out_of_enum_covariance_type_is_unknown_without_diagonal() -> None:
    position = navsat_fix_to_position(navsat(covariance_type=9))
    assert position is not None
    assert position["covariance_type"] == "UNKNOWN"
    assert position["covariance_diagonal"] is None


def test_non_finite_altitude_and_covariance_become_none() -> None:
    position = navsat_fix_to_position(navsat(altitude=NAN, covariance=[NAN, 0, 0, 0, INF, 0, 0, 0, 3.0]))
    assert position is not None
    assert position["altitude"] is None
    assert position["covariance_diagonal"] == [None, None, 3.0]
    json_safe(position)


def test_zero_header_stamp_gives_none_stamp() -> None:
    position = navsat_fix_to_position(navsat(sec=0))
    assert position is not None
    assert position["stamp"] is None


# ---------------------------------------------------------------- FixTracker


NO_FIX = navsat(status=NavSatStatus.STATUS_NO_FIX)
NON_FINITE = navsat(latitude=NAN)


def test_fix_tracker_good_bad_bad_good() -> None:
    tracker = FixTracker()
    results = [tracker.update(msg) for msg in (GOOD, NO_FIX, NON_FINITE, GOOD)]
    positions = [position for position, _ in results]
    events = [event for _, event in results]
    assert positions[0] == navsat_fix_to_position(GOOD)
    assert positions[1:3] == [None, None]
    assert positions[3] == navsat_fix_to_position(GOOD)
    assert events == [
        None,
        {"event": "fix_lost", "reason": "no_fix", "stamp": T0_TEXT},
        None,  # still lost: no repeat, whatever the new reason
        {"event": "fix_regained", "fix": "FIX", "stamp": T0_TEXT},
    ]
    assert tracker.dropped == 2
    assert tracker.has_fix is True


def test_fix_tracker_first_message_bad_is_a_loss() -> None:
    tracker = FixTracker()
    assert tracker.has_fix is None
    assert tracker.update(NON_FINITE) == (None, {"event": "fix_lost", "reason": "non_finite", "stamp": T0_TEXT})
    assert tracker.update(NO_FIX) == (None, None)
    assert tracker.dropped == 2
    assert tracker.has_fix is False


def test_fix_tracker_steady_fix_has_no_events() -> None:
    tracker = FixTracker()
    assert all(tracker.update(GOOD)[1] is None for _ in range(5))
    assert tracker.dropped == 0


def test_fix_tracker_reports_each_outage_once() -> None:
    tracker = FixTracker()
    kinds = [event["event"] for _, event in map(tracker.update, [GOOD, NO_FIX, GOOD, NO_FIX, NO_FIX, GOOD]) if event]
    assert kinds == ["fix_lost", "fix_regained", "fix_lost", "fix_regained"]
    assert tracker.dropped == 3


def test_fix_regained_names_the_new_fix_kind() -> None:
    tracker = FixTracker()
    tracker.update(NO_FIX)
    _, event = tracker.update(navsat(status=NavSatStatus.STATUS_GBAS_FIX))
    assert event == {"event": "fix_regained", "fix": "GBAS_FIX", "stamp": T0_TEXT}


@pytest.mark.parametrize(("latitude", "longitude"), [(91.0, 0.0), (-90.5, 0.0), (0.0, 180.5), (1e9, 1e9)])
def test_out_of_range_fix_is_not_a_position(latitude: float, longitude: float) -> None:
    msg = NavSatFix(latitude=latitude, longitude=longitude)
    msg.status.status = NavSatStatus.STATUS_FIX
    assert navsat_fix_to_position(msg) is None
    tracker = FixTracker()
    position, event = tracker.update(msg)
    assert position is None and event is not None and event["reason"] == "out_of_range"
