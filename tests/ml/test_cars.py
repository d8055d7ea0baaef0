"""The connected-car generator: record shape, determinism, failure share, physical coupling and fault effects."""

from __future__ import annotations

import numpy as np
import pytest

from ksqlpy.ml.cars import (
    ACCELEROMETER_FIELDS,
    CURRENT_FIRMWARE_VERSIONS,
    FAILURE_KINDS,
    SENSOR_FIELDS,
    SENSOR_RANGES,
    TYRE_FIELDS,
    CarSimulator,
    is_failure,
    sensor_matrix,
)


def column(matrix: np.ndarray, name: str) -> np.ndarray:
    return matrix[:, SENSOR_FIELDS.index(name)]


@pytest.fixture(scope="module")
def labelled() -> tuple[np.ndarray, list[str | None]]:
    pairs = list(CarSimulator(cars=8, failure_rate=0.3, seed=11).labelled_readings(24_000))
    return sensor_matrix(r for r, _ in pairs), [kind for _, kind in pairs]


def rows_of(labelled: tuple[np.ndarray, list[str | None]], kind: str | None) -> np.ndarray:
    matrix, kinds = labelled
    return matrix[[k == kind for k in kinds]]


def test_the_eighteen_demo_sensors_in_order_with_fixed_ranges() -> None:
    assert len(SENSOR_FIELDS) == 18
    assert SENSOR_FIELDS[0] == "coolant_temp" and SENSOR_FIELDS[-1] == "control_unit_firmware"
    assert SENSOR_FIELDS[9:13] == ("tire_pressure_11", "tire_pressure_12", "tire_pressure_21", "tire_pressure_22")
    assert set(SENSOR_RANGES) == set(SENSOR_FIELDS)
    assert all(low < high for low, high in SENSOR_RANGES.values())
    assert FAILURE_KINDS == ("shock_absorber", "tyre_pressure", "drive_shaft_vibration", "overheating", "old_firmware")


def test_record_shape_matches_the_demo() -> None:
    readings = list(CarSimulator(cars=3, failure_rate=0.05, seed=1, start_ms=1_000, interval_ms=900).readings(7))
    assert [r["car_id"] for r in readings] == ["car-00000", "car-00001", "car-00002"] * 2 + ["car-00000"]
    assert [r["ts"] for r in readings] == [1_000, 1_300, 1_600, 1_900, 2_200, 2_500, 2_800]
    for reading in readings:
        assert list(reading) == ["car_id", "ts", *SENSOR_FIELDS, "failure_occurred"]
        assert reading["failure_occurred"] in ("true", "false")
        for name in SENSOR_FIELDS:
            expected = int if name in (*TYRE_FIELDS, "control_unit_firmware") else float
            assert type(reading[name]) is expected, name
            low, high = SENSOR_RANGES[name]
            assert low <= reading[name] <= high, name


def test_same_seed_same_readings_across_call_boundaries() -> None:
    whole = list(CarSimulator(cars=4, failure_rate=0.2, seed=5).labelled_readings(50))
    pieces = CarSimulator(cars=4, failure_rate=0.2, seed=5)
    assert list(pieces.labelled_readings(13)) + list(pieces.labelled_readings(37)) == whole
    other_seed = list(CarSimulator(cars=4, failure_rate=0.2, seed=6).labelled_readings(50))
    assert other_seed != whole


def test_failure_share_follows_the_rate_and_labels_agree_with_kinds() -> None:
    pairs = list(CarSimulator(cars=20, failure_rate=0.1, seed=3).labelled_readings(30_000))
    failing = np.array([kind is not None for _, kind in pairs])
    assert 0.07 < failing.mean() < 0.13
    assert all(is_failure(reading) == (kind is not None) for reading, kind in pairs)
    assert {kind for _, kind in pairs} == {None, *FAILURE_KINDS}
    assert not any(kind for _, kind in CarSimulator(failure_rate=0.0, seed=3).labelled_readings(5_000))


def test_rejects_impossible_settings() -> None:
    with pytest.raises(ValueError):
        CarSimulator(cars=0)
    with pytest.raises(ValueError):
        CarSimulator(failure_rate=1.5)


def test_normal_driving_readings_move_together(labelled: tuple[np.ndarray, list[str | None]]) -> None:
    normal = rows_of(labelled, None)
    speed, throttle = column(normal, "speed"), column(normal, "throttle_pos")
    assert np.corrcoef(speed, column(normal, "current_draw"))[0, 1] > 0.6
    assert np.corrcoef(speed, column(normal, "engine_vibration_amplitude"))[0, 1] > 0.8
    assert np.corrcoef(throttle, column(normal, "intake_air_flow_speed"))[0, 1] > 0.6
    assert np.corrcoef(throttle, column(normal, "coolant_temp"))[0, 1] > 0.3
    # The pack voltage sags under load and follows the charge.
    assert np.corrcoef(column(normal, "battery_percentage"), column(normal, "battery_voltage"))[0, 1] > 0.5


def test_tyre_failure_deflates_one_tyre(labelled: tuple[np.ndarray, list[str | None]]) -> None:
    tyres = [SENSOR_FIELDS.index(name) for name in TYRE_FIELDS]
    normal, faulty = rows_of(labelled, None)[:, tyres], rows_of(labelled, "tyre_pressure")[:, tyres]
    assert normal.min() >= 28
    assert faulty.min(axis=1).max() <= 27  # every faulty row has a deflated tyre
    assert np.all(np.sort(faulty, axis=1)[:, 1] >= 28)  # and only one


def test_overheating_raises_coolant_and_intake_temperature(labelled: tuple[np.ndarray, list[str | None]]) -> None:
    normal, faulty = rows_of(labelled, None), rows_of(labelled, "overheating")
    assert column(normal, "coolant_temp").max() < 105
    assert column(faulty, "coolant_temp").min() > 105
    assert np.median(column(faulty, "intake_air_temp")) > np.median(column(normal, "intake_air_temp")) + 5


def test_drive_shaft_vibration_shakes_engine_and_wheels(labelled: tuple[np.ndarray, list[str | None]]) -> None:
    def excess_vibration(rows: np.ndarray) -> np.ndarray:
        expected = 15 + 0.9 * column(rows, "speed") + 35 * column(rows, "throttle_pos")
        return column(rows, "engine_vibration_amplitude") - expected

    normal, faulty = rows_of(labelled, None), rows_of(labelled, "drive_shaft_vibration")
    assert np.percentile(excess_vibration(normal), 99.9) < 15
    assert excess_vibration(faulty).min() > 40
    accelerometers = [SENSOR_FIELDS.index(name) for name in ACCELEROMETER_FIELDS]
    assert faulty[:, accelerometers].mean() > normal[:, accelerometers].mean() + 0.4


def test_shock_absorber_failure_makes_one_wheel_bounce(labelled: tuple[np.ndarray, list[str | None]]) -> None:
    accelerometers = [SENSOR_FIELDS.index(name) for name in ACCELEROMETER_FIELDS]
    normal, faulty = rows_of(labelled, None)[:, accelerometers], rows_of(labelled, "shock_absorber")[:, accelerometers]
    assert normal.max() < 1.6
    bouncing = faulty.max(axis=1)
    others = np.sort(faulty, axis=1)[:, -2]
    assert np.all(bouncing > 0.6)
    assert np.all(bouncing > others + 0.4)


def test_old_firmware_reports_an_old_version(labelled: tuple[np.ndarray, list[str | None]]) -> None:
    assert set(column(rows_of(labelled, None), "control_unit_firmware")) <= set(CURRENT_FIRMWARE_VERSIONS)
    assert column(rows_of(labelled, "old_firmware"), "control_unit_firmware").max() < min(CURRENT_FIRMWARE_VERSIONS)
