"""Drives the gateway's web page in headless Chromium (Playwright with Debian's chromium).

Run by tests/admin_page.rs, which starts the bridge, the simulated meters and mosquitto, and
passes: URL, TOKEN, FORM_PORT (a simulator for the form), SCAN_PORTS (two simulators and one
free port, "A-B"), SILENT_METER (a configured meter whose simulator the Rust side stops and
restarts when asked), SHOTS (a directory for screenshots), CHROMIUM (the browser binary).

Talks to the Rust side over stdio: prints "ASK <what>" and waits for a line back. Prints
"STEP <name>" as it goes and, at the end, "RESULT <json>". Any failed expectation raises, and
the process exits non-zero with the step it was at.
"""

import json
import os
import re
import sys
import time

from playwright.sync_api import expect, sync_playwright

URL = os.environ["URL"]
TOKEN = os.environ["TOKEN"]
FORM_PORT = os.environ["FORM_PORT"]
SCAN_PORTS = os.environ["SCAN_PORTS"]
SILENT = os.environ["SILENT_METER"]
SHOTS = os.environ["SHOTS"]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
result = {"screenshots": []}


def step(name):
    print("STEP " + name, flush=True)


def ask(what):
    print("ASK " + what, flush=True)
    answer = sys.stdin.readline().strip()
    if answer != "OK":
        raise RuntimeError(f"{what}: the test answered {answer!r}")


def card(page, name):
    return page.locator(f'section.meter[data-meter="{name}"]')


def in_view(page, locator, what):
    """Visible, not only present: displayed, of some size, inside the viewport's width, and
    the topmost element at its centre once scrolled there."""
    expect(locator).to_be_visible()
    locator.scroll_into_view_if_needed()
    box = locator.bounding_box()
    width = page.viewport_size["width"]
    assert box and box["width"] > 4 and box["height"] > 4, f"{what}: no size ({box})"
    assert box["x"] >= -1 and box["x"] + box["width"] <= width + 1, f"{what}: outside the {width}px viewport ({box})"
    on_top = locator.evaluate(
        """e => { const r = e.getBoundingClientRect();
                  const t = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
                  return t !== null && (t === e || e.contains(t)); }"""
    )
    assert on_top, f"{what}: covered by another element"


def no_sideways_scroll(page, what):
    overflow = page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"{what}: the page is {overflow}px wider than the viewport"


def shot(page, name):
    path = os.path.join(SHOTS, name + ".png")
    page.screenshot(path=path, full_page=False)
    result["screenshots"].append({"file": path, "width": page.viewport_size["width"]})


def main():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport=DESKTOP)
        page.on("dialog", lambda d: d.accept())
        page.set_default_timeout(20_000)

        step("read-only page before signing in")
        page.goto(URL)
        expect(card(page, SILENT)).to_be_visible()
        expect(page.locator("#add-meter")).to_be_hidden()
        html = page.content()
        assert TOKEN not in html, "the token is in the page"

        step("a wrong token is refused with a clear message")
        page.fill("#token", "not-the-token-0123456789")
        page.click("#signin-button")
        expect(page.locator("#signin-msg")).to_contain_text("Wrong token")

        step("sign in")
        page.fill("#token", TOKEN)
        page.press("#token", "Enter")
        expect(page.locator("#whoami")).to_be_visible()
        stored = page.evaluate("sessionStorage.getItem('dlms-bridge-token')")
        assert stored == TOKEN, "the token is kept for this tab"
        in_view(page, page.locator("#add-meter"), "Add meter")

        step("add a meter with a bad OBIS: the error is next to the field")
        page.click("#add-meter")
        form = page.locator("#meter-form")
        form.locator('[name="name"]').fill("Form meter")
        form.locator('[name="host"]').fill("127.0.0.1")
        form.locator('[name="port"]').fill(FORM_PORT)
        form.locator('[name="server_physical"]').fill("17")
        form.locator('[name="interval_s"]').fill("1")
        form.locator('[name="measurements"]').fill("voltage_l1=1.0.32.7.0.999x")
        page.click("#save-meter")
        error = page.locator('.ferr[data-for="measurements"]')
        expect(error).to_be_visible()
        expect(error).to_contain_text("OBIS")
        result["field_error"] = error.inner_text()
        in_view(page, error, "the field error")

        step("fix it and save: the meter is polled")
        form.locator('[name="measurements"]').fill("voltage_l1=1.0.32.7.0.255\nactive_power=1.0.1.7.0.255")
        page.click("#save-meter")
        expect(page.locator("#editor")).to_be_hidden()
        added = card(page, "Form meter")
        expect(added.locator(".state")).to_have_text("polling", timeout=30_000)
        expect(added).to_contain_text("voltage_l1")
        result["form_meter_values"] = added.locator("table").inner_text()

        step("edit it")
        page.click('button[aria-label="Edit Form meter"]')
        expect(form.locator('[name="port"]')).to_have_value(FORM_PORT)
        expect(form.locator('[name="measurements"]')).to_have_value(re.compile(r"voltage_l1=1-0:32\.7\.0\*255"))
        form.locator('[name="interval_s"]').fill("2")
        page.click("#save-meter")
        # The message may still be the last step's "Saved Form meter.": the editor closing is
        # this save's answer; then the stored meter is polled (the PATCH may be in flight).
        try:
            expect(page.locator("#editor")).to_be_hidden(timeout=15_000)
        except AssertionError:
            raise AssertionError("the save failed: " + page.locator("#form-error").inner_text() + " / " + " ; ".join(page.locator(".ferr").all_inner_texts()) + " / " + page.locator("#meters-msg").inner_text())
        expect(page.locator("#meters-msg")).to_contain_text("Saved Form meter")
        deadline = time.time() + 10
        while True:
            r = page.request.get(URL + "api/meters/Form%20meter", headers={"Authorization": "Bearer " + TOKEN})
            if r.json()["interval_s"] == 2 or time.time() > deadline:
                break
            time.sleep(0.2)
        assert r.json()["interval_s"] == 2, r.text()
        assert r.json()["port"] == int(FORM_PORT), "fields not changed stay"

        step("disable, enable, remove it")
        page.click('button[aria-label="Disable Form meter"]')
        expect(added.locator(".state")).to_have_text("disabled", timeout=15_000)
        page.click('button[aria-label="Enable Form meter"]')
        expect(added.locator(".state")).to_have_text("polling", timeout=30_000)
        page.click('button[aria-label="Remove Form meter"]')
        expect(added).to_have_count(0, timeout=15_000)

        step("scan loopback simulator ports and add a found meter")
        page.click("#tab-scan")
        scan = page.locator("#scan-form")
        scan.locator('[name="hosts"]').fill("127.0.0.1")
        scan.locator('[name="ports"]').fill(SCAN_PORTS)
        scan.locator('[name="server_physical"]').fill("17")
        page.click("#run-scan")
        rows = page.locator("#found tbody tr")
        expect(rows).to_have_count(2, timeout=60_000)
        found = [r.inner_text() for r in rows.all()]
        result["found"] = found
        first_port = rows.first.get_attribute("data-port")
        rows.first.locator("button").click()
        expect(page.locator("#editor")).to_be_visible()
        expect(form.locator('[name="port"]')).to_have_value(first_port)
        expect(form.locator('[name="host"]')).to_have_value("127.0.0.1")
        name = form.locator('[name="name"]').input_value()
        assert name.startswith("Meter "), name
        form.locator('[name="interval_s"]').fill("1")
        page.click("#save-meter")
        scanned = card(page, name)
        expect(scanned.locator(".state")).to_have_text("polling", timeout=30_000)
        result["scanned_meter"] = name

        step("screenshots at desktop and phone width")
        for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
            page.set_viewport_size(size)
            page.click("#tab-meters")
            page.evaluate("window.scrollTo(0, 0)")
            no_sideways_scroll(page, label)
            for sel, what in (("#tab-meters", "meters tab"), ("#tab-alarms", "alarms tab"),
                              ("#signout", "sign out"), ("#add-meter", "add meter")):
                in_view(page, page.locator(sel), f"{what} at {label} width")
            in_view(page, card(page, SILENT).locator("h2"), f"meter card at {label} width")
            page.evaluate("window.scrollTo(0, 0)")
            shot(page, f"meters-{label}")
        page.set_viewport_size(DESKTOP)

        step("a silent meter raises an alarm, acknowledged, cleared when it is back")
        ask("silence " + SILENT)
        page.click("#tab-alarms")
        row = page.locator(f'#alarms tbody tr[data-type="meter_offline"][data-subject="{SILENT}"]')
        expect(row).to_be_visible(timeout=45_000)
        expect(row).to_contain_text("MAJOR")
        alarm_id = row.get_attribute("data-alarm")
        result["alarm_id"] = int(alarm_id)
        page.set_viewport_size(PHONE)
        no_sideways_scroll(page, "alarms at phone width")
        ack_button = page.locator(f'button[aria-label="Acknowledge alarm {alarm_id}"]')
        in_view(page, row.locator(".state-text"), "alarm state at phone width")
        in_view(page, ack_button, "the acknowledge button at phone width")
        page.evaluate("window.scrollTo(0, 0)")
        shot(page, "alarms-phone")
        # By keyboard, at phone width: focus and Enter.
        ack_button.focus()
        page.keyboard.press("Enter")
        expect(row.locator(".state-text")).to_contain_text("acknowledged by", timeout=10_000)
        page.set_viewport_size(DESKTOP)
        ask("resume " + SILENT)
        page.uncheck("#active-only")
        cleared = page.locator(f'#alarms tbody tr[data-alarm="{alarm_id}"]')
        expect(cleared.locator(".state-text")).to_contain_text("cleared", timeout=45_000)
        result["alarm_row"] = cleared.inner_text()
        shot(page, "alarms-desktop")

        step("the log is live")
        page.click("#tab-log")
        log = page.locator("#log")
        expect(log).to_contain_text(f"alarm {alarm_id} cleared", timeout=15_000)
        in_view(page, log, "the log")
        result["log_has_ack"] = f"alarm {alarm_id} acknowledged" in log.inner_text()

        step("the meter's detail: a chart with points, counters, errors")
        page.click("#tab-meters")
        page.click(f'button[aria-label="Details of {SILENT}"]')
        chart = page.locator('#charts .chart[data-key="voltage_l1"]')
        expect(chart).to_be_visible()
        deadline = time.time() + 40
        points = 0
        while time.time() < deadline:
            points = chart.locator("circle").count()
            if points >= 2:
                break
            time.sleep(1)
        assert points >= 2, f"the chart has {points} point(s)"
        result["chart_points"] = points
        in_view(page, chart.locator("svg"), "the chart")
        expect(page.locator("#detail-errors")).not_to_contain_text("none")
        expect(page.locator("#detail-dlms")).to_contain_text("bytes_sent")
        shot(page, "detail-desktop")
        page.set_viewport_size(PHONE)
        no_sideways_scroll(page, "detail at phone width")
        in_view(page, chart.locator("svg"), "the chart at phone width")
        shot(page, "detail-phone")

        step("sign out forgets the token")
        page.click("#signout")
        assert page.evaluate("sessionStorage.getItem('dlms-bridge-token')") is None
        expect(page.locator("#add-meter")).to_be_hidden()
        browser.close()
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
