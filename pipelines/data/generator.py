"""Deterministic, realistic sample data for the six raw tables.

Why a simulation and not random rows: the platform must be demonstrable end to end, and a model can
only learn what the data contains. Each customer has an archetype (loyal, deal seeker, seasonal,
one-time buyer, slowly fading) and a latent stopping time. Before stopping, a customer disengages:
visits and orders fade, carts are abandoned, orders get cancelled or returned, support is contacted
and reviews turn sour; some say in words what the stars do not show ("probably my last order" under
four stars). Churn labels therefore follow from behaviour, with noise (abrupt quitters, customers who
merely pause, one-off problems that support fixes).

Generation is vectorized with numpy and streams chunk by chunk (bounded memory); each chunk is
seeded from ``(seed, chunk index)`` so the same arguments give identical data.

Why one file over 400 lines: the simulator's per-customer state (archetypes, calendar, chunks) is one
model of a shop; its pieces share that state.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import math
import time
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.contract import EVENT_TYPES, ORDER_STATUSES, PRODUCTS, RAW_TABLES, Table, get_table
from pipelines.data import _text
from pipelines.warehouse.base import Warehouse

logger = logging.getLogger(__name__)

US_PER_SECOND = 1_000_000
US_PER_DAY = 86_400 * US_PER_SECOND
DRIFT_PRICE_FACTOR = 1.15
PROMO_DISCOUNT = 0.8

ARCHETYPES = ("loyal", "deal_seeker", "seasonal", "one_time", "fading")
LOYAL, DEAL, SEASONAL, ONE_TIME, FADING = range(len(ARCHETYPES))
_SHARE = np.array([0.32, 0.20, 0.14, 0.12, 0.22])
_ORDER_RATE = np.array([0.26, 0.13, 0.15, 0.015, 0.20])  # orders per week while fully engaged
_PROMO_MULT = np.array([1.4, 4.5, 1.6, 1.3, 1.4])  # order-rate multiplier in promo weeks
_BROWSE_RATE = np.array([0.40, 0.40, 0.25, 0.12, 0.32])  # browsing sessions (no purchase) per week
_MEAN_LIFE = np.array([3500.0, 1400.0, 1500.0, 40.0, 450.0])  # days from signup to the latent stop
_FADE = np.array([90.0, 60.0, 100.0, 10.0, 160.0])  # days of visible disengagement before the stop

_CHANNELS = ("organic", "paid_search", "social", "referral", "email", "affiliate")
_CHANNEL_P = np.array(
    [  # rows: archetype
        [0.32, 0.16, 0.10, 0.26, 0.12, 0.04],
        [0.12, 0.18, 0.20, 0.06, 0.22, 0.22],
        [0.22, 0.24, 0.18, 0.10, 0.16, 0.10],
        [0.16, 0.30, 0.26, 0.06, 0.06, 0.16],
        [0.24, 0.22, 0.18, 0.14, 0.12, 0.10],
    ]
)
_COUNTRIES = ("DE", "FR", "GB", "NL", "ES", "IT", "PL", "SE", "AT", "US")
_COUNTRY_P = np.array([0.28, 0.15, 0.14, 0.08, 0.09, 0.09, 0.06, 0.04, 0.04, 0.03])
_GENDERS = ("f", "m", "x")
_WEEKDAY_WEIGHT = np.array([1.0, 0.95, 0.95, 1.0, 1.05, 1.1, 1.3])  # Mon..Sun
_ZIPF = 1.0 / np.arange(1, _text.PRODUCTS_PER_CATEGORY + 1) ** 0.8
_ZIPF /= _ZIPF.sum()
_CATEGORY_POPULARITY = np.array([0.20, 0.10, 0.14, 0.14, 0.12, 0.10, 0.10, 0.10])
_SIZED = np.array([_text.CATEGORIES[c]["sized"] for c in _text.CATEGORY_NAMES])
_MULTI_UNIT = np.isin(np.array(_text.CATEGORY_NAMES), ["beauty", "books"])

# Star distributions (1..5) per review topic.
_RATING_P = {
    "damaged": [0.36, 0.36, 0.20, 0.07, 0.01],
    "late_delivery": [0.20, 0.37, 0.31, 0.10, 0.02],
    "wrong_size": [0.10, 0.30, 0.40, 0.15, 0.05],
    "negative": [0.30, 0.35, 0.25, 0.08, 0.02],
    "positive": [0.00, 0.02, 0.08, 0.35, 0.55],
}
_EV = {name: i for i, name in enumerate(EVENT_TYPES)}


@dataclass(frozen=True)
class _Calendar:
    """Day/week grid of the simulated period, with seasonality, promo weeks and the drift date."""

    start: dt.date
    n_days: int
    n_weeks: int
    start_us: int
    end_us: int  # exclusive: midnight after `end`
    drift_day: float  # days since start; inf without drift
    week_days: np.ndarray  # days of each week inside the period (7, last may be fewer)
    promo: np.ndarray  # bool per week
    season_general: np.ndarray  # order-rate multiplier per week, mean ~1
    season_peak: np.ndarray  # multiplier for seasonal shoppers (Nov/Dec + summer), mean ~1
    day_offset_p: np.ndarray  # probability of each day offset 0..6 within a week (weekday pattern)


def _promo_dates(year: int) -> list[dt.date]:
    nov1 = dt.date(year, 11, 1)
    black_friday = dt.date(year, 11, 1 + (3 - nov1.weekday()) % 7 + 22)
    return [dt.date(year, 3, 15), dt.date(year, 7, 1), dt.date(year, 11, 11), black_friday, dt.date(year, 12, 26)]


def _build_calendar(start: dt.date, end: dt.date, drift_after: dt.date | None) -> _Calendar:
    n_days = (end - start).days + 1
    n_weeks = math.ceil(n_days / 7)
    week_start = np.arange(n_weeks) * 7
    week_days = np.minimum(7, n_days - week_start)
    promo = np.zeros(n_weeks, dtype=bool)
    for year in range(start.year, end.year + 1):
        for day in _promo_dates(year):
            offset = (day - start).days
            if 0 <= offset < n_days:
                promo[offset // 7] = True
    mid = start + np.array([dt.timedelta(days=float(d)) for d in week_start + 3])
    doy = np.array([d.timetuple().tm_yday for d in mid], dtype=float)
    general = 1.0 + 0.2 * np.cos(2 * np.pi * (doy - 345) / 365.25)
    xmas = np.minimum(np.abs(doy - 338), 365.25 - np.abs(doy - 338))
    peak = 0.25 + 2.2 * np.exp(-((xmas / 22) ** 2)) + 0.8 * np.exp(-(((doy - 190) / 18) ** 2))
    peak = peak / 0.555  # the yearly mean of the curve above, so the archetype's rate stays comparable
    weekday = _WEEKDAY_WEIGHT[(start.weekday() + np.arange(7)) % 7]
    start_us = int(dt.datetime(start.year, start.month, start.day, tzinfo=dt.UTC).timestamp()) * US_PER_SECOND
    drift_day = float((drift_after - start).days + 1) if drift_after else math.inf
    return _Calendar(
        start,
        n_days,
        n_weeks,
        start_us,
        start_us + n_days * US_PER_DAY,
        drift_day,
        week_days,
        promo,
        general,
        peak,
        weekday / weekday.sum(),
    )


@dataclass
class _IdCounters:
    order: int = 1
    event: int = 1
    session: int = 1
    review: int = 1


def _ragged_positions(counts: np.ndarray) -> np.ndarray:
    """0..n-1 within each group of a flattened ragged array (group sizes ``counts``)."""
    total = int(counts.sum())
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return np.arange(total) - starts


def _time_of_day_us(rng: np.random.Generator, n: int) -> np.ndarray:
    """Evening-heavy diurnal pattern with a lunchtime bump."""
    hours = np.where(rng.random(n) < 0.6, rng.normal(20.5, 2.0, n), rng.normal(12.5, 2.5, n)) % 24
    return (hours * 3600 * US_PER_SECOND).astype(np.int64)


def _dict_strings(indices: np.ndarray, values: tuple[str, ...] | np.ndarray) -> pa.Array:
    return pa.DictionaryArray.from_arrays(pa.array(indices, pa.int32()), pa.array(list(values), pa.string())).cast(
        pa.string()
    )


def _timestamps(us: np.ndarray) -> pa.Array:
    return pa.array(us.astype(np.int64), type=pa.timestamp("us", tz="UTC"))


class _ChunkSimulator:
    """Simulates one chunk of customers and everything they do."""

    def __init__(
        self,
        cal: _Calendar,
        catalogue: dict[str, np.ndarray],
        rng: np.random.Generator,
        first_id: int,
        n: int,
        ids: _IdCounters,
    ) -> None:
        self.cal, self.cat, self.rng, self.first_id, self.n, self.ids = cal, catalogue, rng, first_id, n, ids

    # -- customers ------------------------------------------------------------------------------
    def customers(self) -> pa.Table:
        rng, cal, n = self.rng, self.cal, self.n
        self.arch = rng.choice(len(ARCHETYPES), n, p=_SHARE)
        self.rate = _ORDER_RATE[self.arch] * rng.gamma(4.0, 0.25, n)
        self.browse = _BROWSE_RATE[self.arch] * rng.gamma(2.0, 0.5, n)
        self.u0 = rng.beta(1.2, 9.0, n)  # baseline grumpiness: worse experiences, shorter life
        early = rng.random(n) < 0.18  # an existing base at the start of the period
        signup_day = np.where(
            early, rng.integers(0, min(60, cal.n_days), n), rng.integers(0, max(1, cal.n_days - 7), n)
        )
        self.signup_us = cal.start_us + signup_day * US_PER_DAY + _time_of_day_us(rng, n)
        self.signup_us = np.minimum(self.signup_us, cal.end_us - 3600 * US_PER_SECOND)
        self.signup_day = (self.signup_us - cal.start_us) / US_PER_DAY
        life = rng.exponential(_MEAN_LIFE[self.arch] * (1.0 - 0.9 * self.u0))
        self.stop_day = self.signup_day + life
        self.fade = _FADE[self.arch] * rng.lognormal(0.0, 0.4, n)
        abrupt = (rng.random(n) < 0.2) & (self.arch != ONE_TIME)
        self.fade = np.where(abrupt, 5.0, self.fade)
        # After the drift date service is worse: remaining lifetimes shrink.
        if math.isfinite(cal.drift_day):
            late_stop = self.stop_day > cal.drift_day
            self.stop_day = np.where(late_stop, cal.drift_day + (self.stop_day - cal.drift_day) * 0.7, self.stop_day)
        self.fav = rng.choice(len(_text.CATEGORY_NAMES), n, p=_CATEGORY_POPULARITY)

        channel = (rng.random(n)[:, None] > np.cumsum(_CHANNEL_P[self.arch], axis=1)).sum(axis=1)
        channel = np.minimum(channel, len(_CHANNELS) - 1)
        country = rng.choice(len(_COUNTRIES), n, p=_COUNTRY_P)
        birth = np.clip(np.round(rng.normal(1984, 13, n)), 1940, 2007).astype(np.int32)
        birth_null = rng.random(n) < 0.15
        gender = rng.choice(3, n, p=[0.52, 0.44, 0.04])
        gender_null = rng.random(n) < 0.22
        return pa.table(
            {
                "customer_id": pa.array(self.first_id + np.arange(n, dtype=np.int64)),
                "signup_at": _timestamps(self.signup_us),
                "country": _dict_strings(country, _COUNTRIES),
                "acquisition_channel": _dict_strings(channel, _CHANNELS),
                "birth_year": pa.array(birth, mask=birth_null),
                "gender": pa.array(np.array(_GENDERS, dtype=object)[gender], mask=gender_null, type=pa.string()),
            }
        )

    def closeness(self, c: np.ndarray, day: np.ndarray) -> np.ndarray:
        """0 (far) .. 1 (stopped): rises before the latent stop, starting earlier than the visible fade."""
        return 1.0 - np.clip((self.stop_day[c] - day) / (1.5 * self.fade[c]), 0.0, 1.0)

    def unhappiness(self, c: np.ndarray, day: np.ndarray) -> np.ndarray:
        """Baseline grumpiness plus closeness to stopping: drives cancellations, returns, support, carts."""
        return self.u0[c] + (1.0 - self.u0[c]) * self.closeness(c, day)

    def _week_exposure(self) -> np.ndarray:
        week_end = np.arange(self.cal.n_weeks) * 7 + 7
        exposure = np.clip((week_end[None, :] - self.signup_day[:, None]) / 7.0, 0.0, 1.0)
        return exposure * (self.cal.week_days / 7.0)[None, :]

    def _engagement(self, floor_after_stop: float) -> np.ndarray:
        t = (np.arange(self.cal.n_weeks) * 7 + 3.5)[None, :]
        x = np.clip((self.stop_day[:, None] - t) / self.fade[:, None], 0.0, 1.0)
        return np.where(t < self.stop_day[:, None], 0.15 + 0.85 * x, floor_after_stop)

    def _place_in_weeks(self, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(customer index, timestamp us) for ``counts[c, w]`` happenings per customer-week."""
        flat = np.flatnonzero(counts)
        reps = counts.ravel()[flat]
        cell = np.repeat(flat, reps)
        c, w = cell // self.cal.n_weeks, cell % self.cal.n_weeks
        offset = self.rng.choice(7, len(cell), p=self.cal.day_offset_p)
        day = np.minimum(w * 7 + offset, self.cal.n_days - 1)
        return c, self.cal.start_us + day * US_PER_DAY + _time_of_day_us(self.rng, len(cell))

    # -- orders and lines -----------------------------------------------------------------------
    def orders(self) -> tuple[pa.Table, pa.Table]:
        rng, cal = self.rng, self.cal
        season = np.where((self.arch == SEASONAL)[:, None], cal.season_peak[None, :], cal.season_general[None, :])
        promo = np.where(cal.promo[None, :], _PROMO_MULT[self.arch][:, None], 1.0)
        self.exposure = self._week_exposure()
        lam = self.rate[:, None] * season * promo * self._engagement(0.012) * self.exposure
        c, ts = self._place_in_weeks(rng.poisson(lam))
        first = rng.random(self.n) < 0.9  # most sign up to place an order
        first_c = np.flatnonzero(first)
        first_ts = self.signup_us[first_c] + (rng.exponential(40 * 60, len(first_c)) * US_PER_SECOND).astype(np.int64)
        c = np.concatenate([c, first_c])
        ts = np.concatenate([ts, first_ts])
        ts = np.maximum(ts, self.signup_us[c] + 60 * US_PER_SECOND)
        keep = ts < cal.end_us
        c, ts = c[keep], ts[keep]
        order = np.lexsort((ts, c))
        c, ts = c[order], ts[order]
        n_orders = len(c)
        day = (ts - cal.start_us) / US_PER_DAY
        u = self.unhappiness(c, day)
        in_promo = cal.promo[(day // 7).astype(np.int64)]
        drifted = day >= cal.drift_day

        # Lines: category from the customer's favourite or the shop's mix, product by popularity.
        n_lines = 1 + np.minimum(rng.poisson(0.35 + 0.35 * (self.arch[c] == DEAL)), 4)
        item_order = np.repeat(np.arange(n_orders), n_lines)
        n_items = len(item_order)
        line_number = _ragged_positions(n_lines) + 1
        category = np.where(
            rng.random(n_items) < 0.65,
            self.fav[c[item_order]],
            rng.choice(len(_text.CATEGORY_NAMES), n_items, p=_CATEGORY_POPULARITY),
        )
        product_idx = category * _text.PRODUCTS_PER_CATEGORY + rng.choice(_text.PRODUCTS_PER_CATEGORY, n_items, p=_ZIPF)
        quantity = 1 + np.minimum(rng.poisson(np.where(_MULTI_UNIT[category], 0.5, 0.15)), 5)
        discounted = in_promo[item_order] & (rng.random(n_items) < 0.7)
        unit_price = (
            self.cat["price"][product_idx]
            * np.where(drifted[item_order], DRIFT_PRICE_FACTOR, 1.0)
            * np.where(discounted, PROMO_DISCOUNT, 1.0)
            * (1.0 + rng.normal(0, 0.015, n_items))
        )
        unit_price = np.round(np.maximum(unit_price, 0.5), 2)
        total = np.round(np.bincount(item_order, quantity * unit_price, minlength=n_orders), 2)

        # What went wrong: more often for customers on their way out, and after the drift date.
        has_sized = np.bincount(item_order, _SIZED[category], minlength=n_orders) > 0
        cancelled = rng.random(n_orders) < 0.01 + 0.30 * u
        late = ~cancelled & (rng.random(n_orders) < 0.05 + 0.06 * u + 0.15 * drifted)
        damaged = ~cancelled & (rng.random(n_orders) < 0.025 + 0.02 * u)
        wrong_size = ~cancelled & has_sized & (rng.random(n_orders) < 0.09)
        returned = ~cancelled & (
            rng.random(n_orders) < 0.015 + 0.22 * u + 0.5 * damaged + 0.55 * wrong_size + 0.05 * late
        )
        status = np.where(cancelled, 1, np.where(returned, 2, 0))  # index into ORDER_STATUSES

        order_id = self.ids.order + np.arange(n_orders, dtype=np.int64)
        self.ids.order += n_orders
        self.o = {
            "c": c,
            "ts": ts,
            "day": day,
            "u": u,
            "drifted": drifted,
            "cancelled": cancelled,
            "late": late,
            "damaged": damaged,
            "wrong_size": wrong_size,
            "n_lines": n_lines,
            "status": status,
        }
        self.items = {"order": item_order, "product_idx": product_idx, "category": category}
        orders = pa.table(
            {
                "order_id": pa.array(order_id),
                "customer_id": pa.array(self.first_id + c.astype(np.int64)),
                "ordered_at": _timestamps(ts),
                "status": _dict_strings(status, ORDER_STATUSES),
                "total_amount": pa.array(total),
            }
        )
        items = pa.table(
            {
                "order_id": pa.array(order_id[item_order]),
                "line_number": pa.array(line_number.astype(np.int32)),
                "product_id": pa.array(product_idx.astype(np.int64) + 1),
                "category": _dict_strings(category, _text.CATEGORY_NAMES),
                "quantity": pa.array(quantity.astype(np.int32)),
                "unit_price": pa.array(unit_price),
            }
        )
        return orders, items

    # -- clickstream ----------------------------------------------------------------------------
    def _random_products(self, c: np.ndarray) -> np.ndarray:
        n = len(c)
        category = np.where(
            self.rng.random(n) < 0.6, self.fav[c], self.rng.choice(len(_text.CATEGORY_NAMES), n, p=_CATEGORY_POPULARITY)
        )
        return category * _text.PRODUCTS_PER_CATEGORY + self.rng.choice(_text.PRODUCTS_PER_CATEGORY, n, p=_ZIPF)

    def events(self) -> pa.Table:
        rng, cal, o = self.rng, self.cal, self.o
        n_orders = len(o["c"])
        line_start = np.cumsum(o["n_lines"]) - o["n_lines"]

        # 1. a purchase session ends in every order's checkout (cancelled ones too).
        p_ns = (rng.random(n_orders) < 0.55) * (1 + rng.poisson(0.3, n_orders))
        purchase = {
            "c": o["c"],
            "end": o["ts"],
            "ns": p_ns,
            "nv": 1 + rng.poisson(2.0, n_orders),
            "nc": o["n_lines"],
            "nk": np.ones(n_orders, np.int64),
            "nsup": np.zeros(n_orders, np.int64),
            "item_start": line_start,
        }

        # 2. browsing sessions: fade with engagement; carts get abandoned more as a customer sours.
        lam = (
            self.browse[:, None]
            * cal.season_general[None, :]
            * np.where(cal.promo, 1.4, 1.0)[None, :]
            * (0.3 + 0.7 * self._engagement(0.12))
            * self.exposure
        )
        bc, bts = self._place_in_weeks(rng.poisson(lam))
        ok = bts >= self.signup_us[bc]
        bc, bts = bc[ok], bts[ok]
        nb = len(bc)
        bday = (bts - cal.start_us) / US_PER_DAY
        bu = self.unhappiness(bc, bday)
        b_drift = bday >= cal.drift_day
        browse = {
            "c": bc,
            "end": bts,
            "ns": (rng.random(nb) < 0.5) * (1 + rng.poisson(0.3, nb)),
            "nv": 1 + rng.poisson(1.8, nb),
            "nc": (rng.random(nb) < 0.10 + 0.40 * bu) * (1 + rng.poisson(0.2, nb)),
            "nk": np.zeros(nb, np.int64),
            "nsup": (rng.random(nb) < 0.01 + 0.10 * bu + 0.03 * b_drift).astype(np.int64),
            "item_start": np.full(nb, -1),
        }

        # 3. support sessions after orders that went wrong.
        p_support = (
            0.02
            + 0.45 * o["late"]
            + 0.6 * o["damaged"]
            + 0.3 * o["wrong_size"]
            + 0.25 * o["cancelled"]
            + 0.15 * o["u"]
            + 0.05 * o["drifted"]
        )
        s_idx = np.flatnonzero(rng.random(n_orders) < p_support)
        ns_ = len(s_idx)
        s_ts = o["ts"][s_idx] + ((1 + rng.random(ns_) * 5 + 5 * o["late"][s_idx]) * US_PER_DAY).astype(np.int64)
        keep = s_ts < cal.end_us
        s_idx, s_ts = s_idx[keep], s_ts[keep]
        ns_ = len(s_idx)
        support = {
            "c": o["c"][s_idx],
            "end": s_ts,
            "ns": np.zeros(ns_, np.int64),
            "nv": (rng.random(ns_) < 0.5).astype(np.int64),
            "nc": np.zeros(ns_, np.int64),
            "nk": np.zeros(ns_, np.int64),
            "nsup": 1 + (rng.random(ns_) < 0.3),
            "item_start": np.full(ns_, -1),
        }

        s = {key: np.concatenate([purchase[key], browse[key], support[key]]).astype(np.int64) for key in purchase}
        n_sessions = len(s["c"])
        session_no = self.ids.session + np.arange(n_sessions, dtype=np.int64)
        self.ids.session += n_sessions
        size = s["ns"] + s["nv"] + s["nc"] + s["nk"] + s["nsup"]
        sess = np.repeat(np.arange(n_sessions), size)
        pos = _ragged_positions(size)
        b1 = s["ns"][sess]
        b2 = b1 + s["nv"][sess]
        b3 = b2 + s["nc"][sess]
        b4 = b3 + s["nk"][sess]
        etype = np.select(
            [pos < b1, pos < b2, pos < b3, pos < b4],
            [_EV["search"], _EV["view"], _EV["add_to_cart"], _EV["checkout"]],
            _EV["support_contact"],
        )
        c = s["c"][sess]
        n_events = len(sess)
        product = self._random_products(c)
        item_pos = s["item_start"][sess] + (pos - b2)
        from_order = (etype == _EV["add_to_cart"]) & (s["item_start"][sess] >= 0)
        product[from_order] = self.items["product_idx"][item_pos[from_order]]
        has_product = (etype == _EV["view"]) | (etype == _EV["add_to_cart"])
        steps_left = size[sess] - 1 - pos
        jitter = np.where(steps_left > 0, rng.integers(-30, 31, n_events), 0) * US_PER_SECOND
        ts = s["end"][sess] - steps_left * 75 * US_PER_SECOND + jitter
        ts = np.maximum(ts, self.signup_us[c])
        order = np.lexsort((ts, c))
        event_id = self.ids.event + np.arange(n_events, dtype=np.int64)
        self.ids.event += n_events
        session_ids = pc.binary_join_element_wise("s", pc.cast(pa.array(session_no[sess][order]), pa.string()), "")
        return pa.table(
            {
                "event_id": pa.array(event_id),
                "customer_id": pa.array(self.first_id + c[order]),
                "session_id": session_ids,
                "event_type": _dict_strings(etype[order], EVENT_TYPES),
                "product_id": pa.array(product[order].astype(np.int64) + 1, mask=~has_product[order]),
                "event_at": _timestamps(ts[order]),
            }
        )

    # -- reviews --------------------------------------------------------------------------------
    def reviews(self) -> pa.Table:
        rng, cal, o = self.rng, self.cal, self.o
        problem = o["late"] | o["damaged"] | o["wrong_size"]
        p_review = np.where(o["cancelled"], 0.0, 0.16 + 0.22 * problem + 0.12 * o["u"])
        r = np.flatnonzero(rng.random(len(o["c"])) < p_review)
        r_ts = o["ts"][r] + ((2 + rng.exponential(5.0, len(r)) + 6 * o["late"][r]) * US_PER_DAY).astype(np.int64)
        keep = r_ts < cal.end_us
        r, r_ts = r[keep], r_ts[keep]
        n = len(r)
        r_day = (r_ts - cal.start_us) / US_PER_DAY
        u = self.unhappiness(o["c"][r], r_day)
        near = self.closeness(o["c"][r], r_day)
        drifted = o["drifted"][r]

        # Which line is reviewed: the ill-fitting one for size problems, else the first.
        line_start = (np.cumsum(o["n_lines"]) - o["n_lines"])[r]
        sized_items = np.flatnonzero(_SIZED[self.items["category"]])
        first_sized = np.full(len(o["c"]), -1)
        orders_with_sized, first_pos = np.unique(self.items["order"][sized_items], return_index=True)
        first_sized[orders_with_sized] = sized_items[first_pos]
        item = np.where(o["wrong_size"][r] & (first_sized[r] >= 0), first_sized[r], line_start)
        product_idx = self.items["product_idx"][item]

        topic = np.full(n, "smooth", dtype=object)
        negative = rng.random(n) < 0.06 + 0.25 * u + 0.3 * near
        neg_pick = np.where(
            rng.random(n) < 0.35 + 0.3 * drifted + 0.2 * (self.arch[o["c"][r]] == DEAL), 0, rng.integers(1, 3, n)
        )
        topic[negative] = np.array(["price", "poor_quality", "poor_support"], dtype=object)[neg_pick[negative]]
        pos_pick = rng.choice(4, n, p=[0.3, 0.3, 0.2, 0.2])
        topic[~negative] = np.array(_text.POSITIVE_TOPICS, dtype=object)[pos_pick[~negative]]
        topic[o["late"][r]] = "late_delivery"
        topic[o["wrong_size"][r]] = "wrong_size"
        topic[o["damaged"][r]] = "damaged"

        rating = np.empty(n, dtype=np.int64)
        kind = np.where(
            np.isin(topic, ["damaged", "late_delivery", "wrong_size"]),
            topic,
            np.where(np.isin(topic, _text.NEGATIVE_TOPICS), "negative", "positive"),
        )
        for name, probs in _RATING_P.items():
            mask = kind == name
            rating[mask] = rng.choice(5, int(mask.sum()), p=probs) + 1
        rating = np.maximum(1, rating - (rng.random(n) < 0.3 * u + 0.3 * near))

        # Second sentence: intent to leave tracks the latent state, not the stars.
        bad = kind != "positive"
        leave = rng.random(n) < 0.01 + 0.6 * near**1.2
        recovery = ~leave & bad & (rng.random(n) < 0.55 * (1 - u))
        loyal = ~leave & ~bad & (rng.random(n) < 0.35 * (1 - u))
        filler = ~leave & ~recovery & ~loyal & (rng.random(n) < 0.3)
        intent = np.select([leave, recovery, loyal, filler], ["leave", "recovery", "loyal", "filler"], "none")
        texts = _text.compose_reviews(
            int(rng.integers(2**62)),
            topic,
            intent,
            self.cat["noun"][product_idx],
            self.cat["title"][product_idx],
            self.cat["category"][product_idx],
        )

        order = np.lexsort((r_ts, o["c"][r]))
        review_id = self.ids.review + np.arange(n, dtype=np.int64)
        self.ids.review += n
        return pa.table(
            {
                "review_id": pa.array(review_id),
                "customer_id": pa.array(self.first_id + o["c"][r][order]),
                "product_id": pa.array(product_idx[order].astype(np.int64) + 1),
                "rating": pa.array(rating[order].astype(np.int32)),
                "review_text": pa.array([texts[i] for i in order], pa.string()),
                "reviewed_at": _timestamps(r_ts[order]),
            }
        )


def _products_table(catalogue: dict[str, np.ndarray], price_factor: float) -> pa.Table:
    n = len(catalogue["title"])
    return pa.table(
        {
            "product_id": pa.array(np.arange(1, n + 1, dtype=np.int64)),
            "title": pa.array(list(catalogue["title"]), pa.string()),
            "category": pa.array(list(catalogue["category"]), pa.string()),
            "price": pa.array(np.round(catalogue["price"] * price_factor, 2)),
            "description": pa.array(list(catalogue["description"]), pa.string()),
        }
    )


def _simulate_chunk(sim: _ChunkSimulator) -> dict[str, pa.Table]:
    tables = {"customers": sim.customers()}
    tables["orders"], tables["order_items"] = sim.orders()
    tables["events"] = sim.events()
    tables["reviews"] = sim.reviews()
    return tables


def _staging(table: Table) -> Table:
    return dataclasses.replace(table, name=f"_staging_{table.name}", indexes=())


def _swap_in_staging(warehouse: Warehouse) -> None:
    """Replace every raw table by its staged copy in one short transaction (DDL only, no data copy)."""
    with warehouse.transaction():
        for table in RAW_TABLES:
            warehouse.drop_table(table.name)
            warehouse.rename_table(_staging(table).name, table.name)
    warehouse.init_schema(RAW_TABLES)  # indexes of the raw tables (Postgres)


def _drop_staging(warehouse: Warehouse) -> None:
    with warehouse.transaction():
        for table in RAW_TABLES:
            warehouse.drop_table(_staging(table).name)


def generate_sample_data(
    warehouse: Warehouse,
    *,
    customers: int,
    seed: int,
    start: dt.date,
    end: dt.date,
    drift_after: dt.date | None = None,
    chunk_customers: int = 20_000,
) -> dict[str, int]:
    """Replace the raw tables' contents with simulated data; returns rows written per table.

    Chunks are loaded (and committed) into staging tables, which then replace the raw tables in one
    transaction: readers never see a half-generated warehouse, a failure leaves the previous contents,
    and memory stays bounded (DuckDB keeps uncommitted rows in memory, so one huge transaction would
    not). The same arguments (seed and chunk size included) give identical data.
    """
    if customers <= 0:
        raise ValueError("customers must be positive")
    if chunk_customers <= 0:
        raise ValueError("chunk_customers must be positive")
    if start >= end:
        raise ValueError(f"start {start} must be before end {end}")
    if drift_after is not None and not start <= drift_after <= end:
        raise ValueError(f"drift_after {drift_after} must lie within [{start}, {end}]")
    cal = _build_calendar(start, end, drift_after)
    catalogue = _text.build_catalogue(np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,))))
    ids = _IdCounters()
    counts = {table.name: 0 for table in RAW_TABLES}
    began = time.perf_counter()
    rows_total = 0
    _drop_staging(warehouse)
    try:
        with warehouse.transaction():
            for table in RAW_TABLES:
                warehouse.create_table(_staging(table))
            price_factor = DRIFT_PRICE_FACTOR if drift_after is not None else 1.0  # list price as of `end`
            counts["products"] = warehouse.bulk_load(_staging(PRODUCTS), _products_table(catalogue, price_factor))
        for chunk_index, first in enumerate(range(0, customers, chunk_customers)):
            n = min(chunk_customers, customers - first)
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1, chunk_index)))
            tables = _simulate_chunk(_ChunkSimulator(cal, catalogue, rng, first + 1, n, ids))
            with warehouse.transaction():
                for name, data in tables.items():
                    counts[name] += warehouse.bulk_load(_staging(get_table(name)), data)
                    rows_total += data.num_rows
            elapsed = time.perf_counter() - began
            logger.info(
                "generated customers %d/%d (%.0f rows/s)", first + n, customers, rows_total / max(elapsed, 1e-9)
            )
        _swap_in_staging(warehouse)
    except BaseException:
        with contextlib.suppress(Exception):
            _drop_staging(warehouse)
        raise
    logger.info(
        "sample data ready in %.1f s: %s", time.perf_counter() - began, ", ".join(f"{k}={v}" for k, v in counts.items())
    )
    return counts
