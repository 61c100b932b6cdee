"""driver.state: CIDR claims between RequestPool and CreateNetwork, and per-key locks."""

from __future__ import annotations

import threading
import time

import pytest

from courier.driver.state import Claims, KeyedLocks
from courier.exceptions import Conflict

CIDR = "10.7.0.0/24"


def test_a_claimed_cidr_is_busy_until_taken_or_abandoned():
    claims = Claims(wait_seconds=0.1)
    claims.claim(CIDR)

    assert claims.pending_cidrs() == {CIDR} and not claims.try_claim(CIDR)
    with pytest.raises(Conflict, match=f"subnet {CIDR} is being created"):
        claims.claim(CIDR)
    assert claims.take(CIDR) is None  # claimed, no pool record held
    assert claims.try_claim(CIDR)
    claims.abandon(CIDR)
    assert claims.pending_cidrs() == set()


def test_a_waiting_claim_proceeds_once_the_other_is_abandoned():
    claims = Claims(wait_seconds=5.0)
    claims.claim(CIDR)
    threading.Timer(0.1, claims.abandon, (CIDR,)).start()
    started = time.monotonic()

    claims.claim(CIDR)

    assert time.monotonic() - started < 4.0 and claims.pending_cidrs() == {CIDR}


def test_a_claim_nobody_takes_goes_stale():
    claims = Claims(wait_seconds=1.0, stale_seconds=0.05)
    claims.claim(CIDR)
    time.sleep(0.1)

    assert claims.pending_cidrs() == set() and claims.try_claim(CIDR)


def test_keyed_locks_serialise_one_key_only():
    locks = KeyedLocks()
    inside: list[str] = []
    with locks.hold("a"):
        with locks.hold("b"):
            inside.append("b while a")  # a different key is not blocked
        blocked = threading.Thread(target=lambda: _enter(locks, "a", inside))
        blocked.start()
        blocked.join(0.2)
        assert blocked.is_alive() and inside == ["b while a"]
    blocked.join(5)
    assert inside == ["b while a", "a"]


def _enter(locks: KeyedLocks, key: str, log: list[str]) -> None:
    with locks.hold(key):
        log.append(key)
