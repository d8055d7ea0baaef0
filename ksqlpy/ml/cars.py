"""Seeded connected-car sensor readings (the HiveMQ/Confluent car demo's 18 sensors) with injected failures.

Each car drives a simple physical model: a target speed that changes now and then (stops, city, highway),
a throttle that follows speed and acceleration, and readings derived from them, so speed, throttle, intake
air flow, current draw, coolant temperature and engine vibration move together per car over time. Per-car
constants (ambient temperature, tyre pressures set by the owner, battery charge, road roughness, firmware)
make cars differ. Failures are episodes of a few tens of readings that change the readings a real fault
would change; `failure_occurred` is "true"/"false" text as in the demo's records.

Units: temperatures °C, intake air flow g/s, battery %, pack voltage V, current A, speed km/h, engine
vibration µm, throttle 0..1, tyre pressures psi (integers), accelerometers g (vertical RMS per wheel),
firmware an integer version number.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import numpy as np

SENSOR_FIELDS: tuple[str, ...] = (
    "coolant_temp",
    "intake_air_temp",
    "intake_air_flow_speed",
    "battery_percentage",
    "battery_voltage",
    "current_draw",
    "speed",
    "engine_vibration_amplitude",
    "throttle_pos",
    "tire_pressure_11",
    "tire_pressure_12",
    "tire_pressure_21",
    "tire_pressure_22",
    "accelerometer_11_value",
    "accelerometer_12_value",
    "accelerometer_21_value",
    "accelerometer_22_value",
    "control_unit_firmware",
)
FAILURE_KINDS: tuple[str, ...] = (
    "shock_absorber",
    "tyre_pressure",
    "drive_shaft_vibration",
    "overheating",
    "old_firmware",
)
TYRE_FIELDS = SENSOR_FIELDS[9:13]
ACCELEROMETER_FIELDS = SENSOR_FIELDS[13:17]
INTEGER_FIELDS = frozenset((*TYRE_FIELDS, "control_unit_firmware"))
_INTEGER_COLUMNS = [SENSOR_FIELDS.index(name) for name in sorted(INTEGER_FIELDS)]

# Fixed physical ranges per field (min, max): the model scales every reading with these, so a model never
# depends on the statistics of the data it happened to be trained on.
SENSOR_RANGES: dict[str, tuple[float, float]] = {
    "coolant_temp": (0.0, 150.0),
    "intake_air_temp": (-20.0, 80.0),
    "intake_air_flow_speed": (0.0, 250.0),
    "battery_percentage": (0.0, 100.0),
    "battery_voltage": (250.0, 450.0),
    "current_draw": (0.0, 400.0),
    "speed": (0.0, 200.0),
    "engine_vibration_amplitude": (0.0, 400.0),
    "throttle_pos": (0.0, 1.0),
    **dict.fromkeys(TYRE_FIELDS, (0.0, 50.0)),
    **dict.fromkeys(ACCELEROMETER_FIELDS, (0.0, 5.0)),
    "control_unit_firmware": (1000.0, 3000.0),
}

CURRENT_FIRMWARE_VERSIONS = (2000, 2010, 2020)
OLD_FIRMWARE_VERSIONS = (1200, 1300, 1400, 1500)
DEFAULT_START_MS = 1_700_000_000_000  # a fixed start keeps timestamps reproducible for a seed
MEAN_FAILURE_READINGS = 30  # failure episodes last 15..45 readings of a car
NO_FAILURE = -1


def sensor_matrix(readings: Iterable[Mapping[str, Any]]) -> np.ndarray:
    """The 18 sensor values of each reading as one float64 row, in SENSOR_FIELDS order."""
    rows = [[reading[name] for name in SENSOR_FIELDS] for reading in readings]
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), len(SENSOR_FIELDS))


def sensorinput(reading: Mapping[str, Any]) -> str:
    """The 18 sensor values as '#'-separated text: the original car demo's DELIMITED `sensorinput` column."""
    return "#".join(str(reading[name]) for name in SENSOR_FIELDS)


def is_failure(reading: Mapping[str, Any]) -> bool:
    """The demo's label as a bool: failure_occurred is the text "true" or "false"."""
    return str(reading.get("failure_occurred", "false")).lower() == "true"


@dataclass
class _Fleet:
    """Per-car driving state, one array element per car."""

    speed: np.ndarray
    target_speed: np.ndarray
    heat: np.ndarray  # smoothed engine load: coolant and intake temperatures lag behind the throttle
    ambient: np.ndarray
    battery: np.ndarray
    roughness: np.ndarray
    roughness_target: np.ndarray
    tyre_nominal: np.ndarray  # (cars, 4)
    firmware: np.ndarray
    fault: np.ndarray  # index into FAILURE_KINDS or NO_FAILURE
    fault_left: np.ndarray
    fault_magnitude: np.ndarray
    fault_wheel: np.ndarray
    fault_firmware: np.ndarray


@dataclass
class CarSimulator:
    """A fleet of `cars` cars; the same seed gives the same readings. `failure_rate` is the share of
    readings taken during a failure (0.05: about one reading in twenty)."""

    cars: int = 10
    failure_rate: float = 0.05
    seed: int = 42
    start_ms: int = DEFAULT_START_MS
    interval_ms: int = 1000  # each car reports once per interval; cars are staggered within it
    _rng: np.random.Generator = field(init=False, repr=False)
    _fleet: _Fleet = field(init=False, repr=False)
    _step: int = field(init=False, default=0, repr=False)
    _pending: deque[tuple[dict[str, Any], str | None]] = field(init=False, default_factory=deque, repr=False)

    def __post_init__(self) -> None:
        if self.cars < 1:
            raise ValueError("cars must be at least 1")
        if not 0.0 <= self.failure_rate <= 1.0:
            raise ValueError("failure_rate must be between 0 and 1")
        rng = np.random.default_rng(self.seed)
        n = self.cars
        self._rng = rng
        self._fleet = _Fleet(
            speed=rng.uniform(0.0, 100.0, n),
            target_speed=rng.uniform(30.0, 120.0, n),
            heat=rng.uniform(0.1, 0.5, n),
            ambient=rng.uniform(-5.0, 30.0, n),
            battery=rng.uniform(40.0, 95.0, n),
            roughness=rng.uniform(0.2, 1.0, n),
            roughness_target=rng.uniform(0.2, 1.0, n),
            tyre_nominal=rng.uniform(31.0, 35.0, (n, 1)) + rng.normal(0.0, 0.4, (n, 4)),
            firmware=rng.choice(CURRENT_FIRMWARE_VERSIONS, n),
            fault=np.full(n, NO_FAILURE),
            fault_left=np.zeros(n, dtype=np.int64),
            fault_magnitude=np.zeros(n),
            fault_wheel=np.zeros(n, dtype=np.int64),
            fault_firmware=np.zeros(n, dtype=np.int64),
        )

    @staticmethod
    def car_id(index: int) -> str:
        return f"car-{index:05d}"

    def readings(self, count: int | None = None) -> Iterator[dict[str, Any]]:
        """The next `count` readings (None: endlessly), cars interleaved in time order."""
        for reading, _kind in self.labelled_readings(count):
            yield reading

    def labelled_readings(self, count: int | None = None) -> Iterator[tuple[dict[str, Any], str | None]]:
        """Like readings(), each paired with its failure kind (one of FAILURE_KINDS) or None when normal."""
        return islice(self._endless(), count)

    def _endless(self) -> Iterator[tuple[dict[str, Any], str | None]]:
        while True:
            if not self._pending:
                self._pending.extend(self._next_step())
            yield self._pending.popleft()

    def _next_step(self) -> list[tuple[dict[str, Any], str | None]]:
        values = self._drive()
        self._update_faults()
        self._apply_faults(values)
        fleet = self._fleet
        base_ts = self.start_ms + self._step * self.interval_ms
        self._step += 1
        stagger = self.interval_ms // self.cars
        # One rounding and one tolist() per step: building the dicts is the generator's hot path.
        matrix = np.round(np.column_stack([values[name] for name in SENSOR_FIELDS]), 4)
        matrix[:, _INTEGER_COLUMNS] = np.round(matrix[:, _INTEGER_COLUMNS])
        labelled = []
        for car, row in enumerate(matrix.tolist()):
            reading: dict[str, Any] = {"car_id": self.car_id(car), "ts": base_ts + car * stagger}
            reading.update(zip(SENSOR_FIELDS, row, strict=True))
            for name in INTEGER_FIELDS:
                reading[name] = int(reading[name])
            fault = int(fleet.fault[car])
            reading["failure_occurred"] = "false" if fault == NO_FAILURE else "true"
            labelled.append((reading, None if fault == NO_FAILURE else FAILURE_KINDS[fault]))
        return labelled

    def _drive(self) -> dict[str, np.ndarray]:
        """Advance every car by one reading of normal driving and derive its healthy sensor values."""
        rng, fleet, n = self._rng, self._fleet, self.cars
        # Drivers now and then pick a new target: a stop, city driving or the highway.
        retarget = rng.random(n) < 0.03
        regime = rng.random(n)
        new_target = np.where(regime < 0.15, 0.0, np.where(regime < 0.6, rng.uniform(30, 60, n), rng.uniform(90, 130, n)))
        fleet.target_speed = np.where(retarget, new_target, fleet.target_speed)
        acceleration = np.clip(fleet.target_speed - fleet.speed, -4.0, 2.5) + rng.normal(0.0, 0.6, n)
        fleet.speed = np.clip(fleet.speed + acceleration, 0.0, 180.0)
        throttle = np.clip(0.06 + 0.0035 * fleet.speed + 0.11 * acceleration + rng.normal(0.0, 0.02, n), 0.0, 1.0)
        fleet.heat += 0.1 * (throttle - fleet.heat)
        rpm = 800.0 + 28.0 * fleet.speed
        current = 4.0 + 300.0 * throttle * (0.25 + 0.75 * fleet.speed / 160.0) + rng.normal(0.0, 2.0, n)
        # Driving drains the pack, braking recuperates a little; a nearly empty pack gets recharged.
        fleet.battery = np.clip(fleet.battery - 0.0005 * current + 0.04 * np.maximum(-acceleration, 0.0), 0.0, 100.0)
        fleet.battery = np.where(fleet.battery < 12.0, rng.uniform(88.0, 98.0, n), fleet.battery)
        fleet.roughness_target = np.where(rng.random(n) < 0.02, rng.uniform(0.2, 1.0, n), fleet.roughness_target)
        fleet.roughness += 0.05 * (fleet.roughness_target - fleet.roughness)
        bounce = fleet.roughness * (0.2 + fleet.speed / 150.0)
        accelerometers = bounce[:, None] * (1.0 + rng.normal(0.0, 0.1, (n, 4))) + rng.normal(0.0, 0.02, (n, 4))
        tyres = fleet.tyre_nominal + rng.normal(0.0, 0.3, (n, 4))
        values = {
            "coolant_temp": 86.0 + 14.0 * fleet.heat + rng.normal(0.0, 0.6, n),
            "intake_air_temp": fleet.ambient + 8.0 + 6.0 * fleet.heat + rng.normal(0.0, 0.4, n),
            "intake_air_flow_speed": np.maximum(0.03 * rpm * (0.15 + 0.85 * throttle) + rng.normal(0.0, 0.8, n), 0.0),
            "battery_percentage": fleet.battery.copy(),
            "battery_voltage": 320.0 + 0.75 * fleet.battery - 0.12 * current + rng.normal(0.0, 0.4, n),
            "current_draw": np.maximum(current, 0.0),
            "speed": fleet.speed.copy(),
            "engine_vibration_amplitude": np.maximum(15.0 + 0.9 * fleet.speed + 35.0 * throttle + rng.normal(0.0, 3.0, n), 0.0),
            "throttle_pos": throttle,
            "control_unit_firmware": fleet.firmware.astype(np.float64),
        }
        for wheel, name in enumerate(TYRE_FIELDS):
            values[name] = tyres[:, wheel]
        for wheel, name in enumerate(ACCELEROMETER_FIELDS):
            values[name] = np.maximum(accelerometers[:, wheel], 0.0)
        return values

    def _update_faults(self) -> None:
        """End finished failure episodes and start new ones so that about failure_rate of readings fail."""
        rng, fleet, n = self._rng, self._fleet, self.cars
        fleet.fault_left -= 1
        fleet.fault = np.where(fleet.fault_left > 0, fleet.fault, NO_FAILURE)
        if self.failure_rate >= 1.0:
            start_probability = 1.0
        else:
            # In steady state the failing share is p*L / (1 + p*L) for start probability p and mean length L.
            start_probability = self.failure_rate / (MEAN_FAILURE_READINGS * (1.0 - self.failure_rate))
        starting = (fleet.fault == NO_FAILURE) & (rng.random(n) < start_probability)
        kinds = rng.integers(0, len(FAILURE_KINDS), n)
        lengths = rng.integers(MEAN_FAILURE_READINGS // 2, MEAN_FAILURE_READINGS * 3 // 2 + 1, n)
        magnitudes = rng.uniform(0.0, 1.0, n)
        wheels = rng.integers(0, 4, n)
        old_firmware = rng.choice(OLD_FIRMWARE_VERSIONS, n)
        fleet.fault = np.where(starting, kinds, fleet.fault)
        fleet.fault_left = np.where(starting, lengths, fleet.fault_left)
        fleet.fault_magnitude = np.where(starting, magnitudes, fleet.fault_magnitude)
        fleet.fault_wheel = np.where(starting, wheels, fleet.fault_wheel)
        fleet.fault_firmware = np.where(starting, old_firmware, fleet.fault_firmware)

    def _apply_faults(self, values: dict[str, np.ndarray]) -> None:
        """Change the readings of failing cars the way each fault shows in real sensors."""
        fleet = self._fleet
        strength = fleet.fault_magnitude  # 0..1 within each fault's plausible severity range
        speed_factor = 0.5 + fleet.speed / 120.0
        for car in np.flatnonzero(fleet.fault != NO_FAILURE):
            kind = FAILURE_KINDS[fleet.fault[car]]
            wheel = int(fleet.fault_wheel[car])
            if kind == "shock_absorber":
                # A worn damper lets its wheel bounce: several times the usual vertical acceleration.
                name = ACCELEROMETER_FIELDS[wheel]
                values[name][car] = values[name][car] * (3.0 + 2.0 * strength[car]) + 0.6
            elif kind == "tyre_pressure":
                # One tyre loses 9..16 psi (a puncture or a leaking valve).
                values[TYRE_FIELDS[wheel]][car] -= 9.0 + 7.0 * strength[car]
            elif kind == "drive_shaft_vibration":
                # An unbalanced shaft shakes the drivetrain and, through it, the whole body; more with speed.
                values["engine_vibration_amplitude"][car] += (100.0 + 80.0 * strength[car]) * speed_factor[car]
                for name in ACCELEROMETER_FIELDS:
                    values[name][car] += (0.4 + 0.4 * strength[car]) * speed_factor[car]
            elif kind == "overheating":
                # A failing pump or thermostat: coolant 22..35 °C above normal, the engine bay heats the intake air.
                rise = 22.0 + 13.0 * strength[car]
                values["coolant_temp"][car] += rise
                values["intake_air_temp"][car] += 0.5 * rise
            else:  # old_firmware: a control unit rolled back to (or never updated from) an old release
                values["control_unit_firmware"][car] = float(fleet.fault_firmware[car])
