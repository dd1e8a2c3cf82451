"""Admission control (kb/web/admission.py): expensive requests take a bounded share of the server."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest

from kb.web import create_app
from kb.web.admission import Admission, Lane, Refused, threads_needed


def test_a_lane_runs_its_slots_queues_the_next_and_refuses_past_the_queue():
    lane = Lane("searches", slots=1, queue=1, wait_s=5.0)
    lane.enter()  # the running one
    entered = threading.Event()

    def waiter() -> None:
        lane.enter()
        entered.set()
        lane.leave()

    thread = threading.Thread(target=waiter)
    thread.start()
    deadline = time.monotonic() + 5
    while lane.waiting == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(Refused) as refused:  # the queue is full: refused at once, not after waiting
        started = time.monotonic()
        lane.enter()
    assert time.monotonic() - started < 0.5
    assert refused.value.code == 503 and "busy with other searches" in refused.value.message
    lane.leave()  # the waiter gets the slot
    thread.join(timeout=5)
    assert entered.is_set()


def test_a_waiting_request_gives_up_after_its_wait():
    lane = Lane("searches", slots=1, queue=4, wait_s=0.2)
    lane.enter()
    started = time.monotonic()
    with pytest.raises(Refused):
        lane.enter()
    assert 0.15 < time.monotonic() - started < 2
    assert lane.waiting == 0
    lane.leave()
    lane.enter()  # the slot is free again
    lane.leave()


def test_checks_per_client_address_are_bounded_and_released():
    admission = Admission(Lane("searches", 1, 0, 0.1), Lane("article checks", 4, 0, 0.1),
                          checks_per_client=2)
    admission.enter("10.0.0.1", True)
    admission.enter("10.0.0.1", True)
    with pytest.raises(Refused) as refused:
        admission.enter("10.0.0.1", True)
    assert refused.value.code == 429 and "still running" in refused.value.message
    admission.enter("10.0.0.2", True)  # another address is not held back
    admission.leave("10.0.0.1", True)
    admission.enter("10.0.0.1", True)
    for client in ("10.0.0.1", "10.0.0.1", "10.0.0.2"):
        admission.leave(client, True)
    assert not admission.running


def test_the_thread_pool_holds_every_admitted_request_with_threads_to_spare(settings):
    tight = replace(settings, search_slots=1, heavy_queue=3, check_slots=2, check_queue=1)
    assert threads_needed(tight) == 1 + 3 + 2 + 1 + 4


def test_a_busy_server_answers_503_with_retry_after_and_cheap_routes_still_answer(settings):
    app = create_app(replace(settings, search_slots=1, heavy_queue=0, check_slots=1, check_queue=0,
                             search_rate_limit="", check_rate_limit=""))
    client = app.test_client()
    admission: Admission = app.extensions["kb_admission"]
    admission.searches.enter()  # a search in flight
    admission.checks.enter()  # and a check
    try:
        busy = client.get("/api/v1/search?q=ketamine")
        assert busy.status_code == 503 and busy.headers["Retry-After"] == "1"
        assert busy.get_json()["ok"] is False and "busy" in busy.get_json()["error"]
        # A query no other test sends: a page another test rendered is cached, and cached pages
        # never wait for a slot (test_a_cached_search_never_waits_for_a_slot).
        page = client.get("/search?q=ketamine+admitted")
        assert page.status_code == 503 and "busy" in page.get_data(as_text=True)
        check = client.post("/api/v1/check", json={"text": "Ketamine works."})
        assert check.status_code == 503
        assert client.get("/api/v1/health").status_code == 200
        assert client.get("/").status_code == 200  # the bare home page runs no search
        assert client.get("/sources/berman2000antidepressant").status_code == 200
    finally:
        admission.searches.leave()
        admission.checks.leave()
    assert client.get("/api/v1/search?q=ketamine").status_code == 200
    assert client.post("/api/v1/check", json={"text": "Ketamine works."}).status_code == 200
    assert admission.searches.semaphore.acquire(blocking=False)  # every slot was given back
    admission.searches.leave()


def test_a_cached_search_never_waits_for_a_slot(settings):
    app = create_app(replace(settings, search_slots=1, heavy_queue=0, search_rate_limit=""))
    client = app.test_client()
    admission: Admission = app.extensions["kb_admission"]
    assert client.get("/api/v1/search?q=esketamine").status_code == 200  # now in the page cache
    admission.searches.enter()  # a long search holds the only slot
    try:
        assert client.get("/api/v1/search?q=esketamine").status_code == 200
        assert client.get("/api/v1/search?q=midazolam").status_code == 503  # not cached: a slot
    finally:
        admission.searches.leave()
