"""Browser checks of the Switchyard dashboard, one case per screen, in headless Chromium.

Run by tests/tests/ui.rs against a real router on 127.0.0.1: `python dashboard.py CASE`
with UI_BASE, UI_ADMIN, UI_VIEWER, UI_SHOTS and the case's ids in the environment. Exits 0
when every check of the case holds; prints what it measured.
"""

import json
import os
import re
import sys
import time
import urllib.request

from playwright.sync_api import expect, sync_playwright

BASE = os.environ["UI_BASE"]
SHOTS = os.environ["UI_SHOTS"]
CHROMIUM = os.environ.get("UI_CHROMIUM", "/usr/bin/chromium")
# Without these, Chromium reaches for the network at start (refused here, and not wanted).
FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def send_webhook(source, body, headers=None):
    """POSTs to the router's ingress as a sender would; answers the event id."""
    request = urllib.request.Request(
        f"{BASE}/webhooks/{source}", data=body.encode(), method="POST",
        headers={"content-type": "application/json", **(headers or {})})
    with urllib.request.urlopen(request) as response:
        return json.load(response)["id"]


def login(page, token):
    page.goto(f"{BASE}/ui/login")
    page.fill("#token", token)
    page.click("form.login button[type=submit]")
    expect(page.locator("h1")).to_have_text("Overview")


def shoot(page, name):
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        page.screenshot(path=os.path.join(SHOTS, f"{name}-{scheme}.png"), full_page=True)
    page.emulate_media(color_scheme="light")


def reload_until(page, locator, text, seconds=15):
    deadline = time.monotonic() + seconds
    while True:
        if text in page.locator(locator).inner_text():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{locator} never showed {text!r}: {page.locator(locator).inner_text()!r}")
        time.sleep(0.2)
        page.reload()


def case_login_logout(page):
    page.goto(f"{BASE}/ui/")
    assert page.url.endswith("/ui/login"), page.url
    shoot(page, "login")
    page.fill("#token", "wrong")
    page.click("form.login button[type=submit]")
    expect(page.locator(".error")).to_contain_text("not valid")
    login(page, os.environ["UI_ADMIN"])
    expect(page.locator(".role")).to_have_text("admin")
    shoot(page, "overview")
    for path, name in (("/ui/events", "events"), ("/ui/endpoints", "endpoints"),
                       ("/ui/dead-letters", "dead-letters")):
        page.goto(BASE + path)
        shoot(page, name)
    page.click("text=Sign out")
    assert page.url.endswith("/ui/login"), page.url
    page.goto(f"{BASE}/ui/events")
    assert page.url.endswith("/ui/login"), "signed out, pages ask to sign in again"


def case_live(page):
    login(page, os.environ["UI_ADMIN"])
    page.goto(f"{BASE}/ui/live")
    expect(page.locator("#live-state.on")).to_be_visible()
    started = time.monotonic()
    event = send_webhook("app", json.dumps({"type": "live.check", "n": 1}))
    expect(page.locator(f'tr[data-id="{event}"]')).to_be_visible(timeout=1000)
    print(f"live tail: event shown {1000 * (time.monotonic() - started):.0f} ms after it was sent")
    shoot(page, "live")


def case_retry(page):
    login(page, os.environ["UI_ADMIN"])
    delivery = os.environ["UI_DELIVERY"]
    page.goto(f"{BASE}/ui/deliveries/{delivery}")
    expect(page.locator("#delivery-status")).to_have_text("dead")
    shoot(page, "delivery-dead")
    page.click("text=Retry now")
    reload_until(page, "#delivery-status", "delivered")
    expect(page.locator("ol.timeline li")).to_have_count(2)
    shoot(page, "delivery")


def case_disable_enable(page):
    page.on("dialog", lambda dialog: dialog.accept())
    login(page, os.environ["UI_ADMIN"])
    endpoint = os.environ["UI_ENDPOINT"]
    page.goto(f"{BASE}/ui/endpoints/{endpoint}")
    page.click("button:has-text('Disable')")
    expect(page.locator("#endpoint-state")).to_contain_text("disabled")
    event = send_webhook("app", json.dumps({"type": "parked.check"}))
    page.goto(f"{BASE}/ui/events/{event}")
    reload_until(page, "table.list", "parked")
    page.goto(f"{BASE}/ui/endpoints/{endpoint}")
    page.click("button:has-text('Enable')")
    expect(page.locator("#endpoint-state")).to_have_text("active")
    page.goto(f"{BASE}/ui/events/{event}")
    reload_until(page, "table.list", "delivered")
    shoot(page, "event")


def case_rotate(page):
    login(page, os.environ["UI_ADMIN"])
    endpoint = os.environ["UI_ENDPOINT"]
    page.goto(f"{BASE}/ui/endpoints/{endpoint}")
    page.click("button:has-text('Rotate secret')")
    secret = page.locator("#new-secret").inner_text()
    assert re.fullmatch(r"whsec_[A-Za-z0-9+/=]+", secret), secret
    shoot(page, "endpoint-rotated")
    page.goto(f"{BASE}/ui/endpoints/{endpoint}")
    expect(page.locator("#new-secret")).to_have_count(0)
    assert secret not in page.content(), "the secret is shown once"
    print(f"rotate: new secret shown once ({len(secret)} characters)")


def case_redrive(page):
    login(page, os.environ["UI_ADMIN"])
    page.goto(f"{BASE}/ui/dead-letters")
    page.click("button:has-text('Redrive all matching')")
    would = int(page.locator("#dry-run-count").inner_text())
    shoot(page, "dead-letters-dry-run")
    page.click("form.confirm button[type=submit]")
    done = int(page.locator("#redriven b").inner_text())
    assert would == done == int(os.environ["UI_DEAD"]), (would, done)
    print(f"redrive: dry run counted {would}, redrive made {done} pending")


def case_redrive_selected(page):
    login(page, os.environ["UI_ADMIN"])
    page.goto(f"{BASE}/ui/dead-letters")
    boxes = page.locator("input[type=checkbox][name=id]")
    expect(boxes).to_have_count(3)
    ticked = [boxes.nth(n).get_attribute("value") for n in range(2)]
    for n in range(2):
        boxes.nth(n).check()
    page.click("#redrive-selected")
    expect(page.locator("#dry-run")).to_contain_text("of the 2 ticked")
    would = int(page.locator("#dry-run-count").inner_text())
    shoot(page, "dead-letters-selected-dry-run")
    page.click("form.confirm button[type=submit]")
    done = int(page.locator("#redriven b").inner_text())
    assert would == done == 2, (would, done)
    for delivery in ticked:
        expect(page.locator(f'a[href="/ui/deliveries/{delivery}"]')).to_have_count(0)
    print(f"redrive by selection: ticked 2, dry run counted {would}, redrive made {done} pending")


def case_viewer(page):
    login(page, os.environ["UI_VIEWER"])
    expect(page.locator(".role")).to_have_text("viewer")
    endpoint, event = os.environ["UI_ENDPOINT"], os.environ["UI_EVENT"]
    delivery = os.environ["UI_DELIVERY"]
    for path in ("/ui/", "/ui/events", f"/ui/events/{event}", f"/ui/deliveries/{delivery}",
                 "/ui/endpoints", f"/ui/endpoints/{endpoint}", "/ui/dead-letters", "/ui/live"):
        response = page.goto(BASE + path)
        assert response.status == 200, (path, response.status)
        for action in ("Retry now", "Copy as curl", "Disable", "Enable", "Rotate secret", "Redrive",
                       "Send test event"):
            assert page.locator(f"button:has-text('{action}')").count() == 0, (path, action)
    page.goto(f"{BASE}/ui/events/{event}")
    assert "viewer-must-not-see" not in page.content()
    expect(page.locator("table.headers")).to_contain_text("[redacted]")
    shoot(page, "viewer-event")
    for action in (f"/ui/endpoints/{endpoint}/disable", f"/ui/deliveries/{delivery}/retry",
                   f"/ui/deliveries/{delivery}/curl",
                   f"/ui/endpoints/{endpoint}/rotate", f"/ui/endpoints/{endpoint}/test",
                   "/ui/dead-letters/redrive"):
        status = page.evaluate("(url) => fetch(url, {method: 'POST'}).then(r => r.status)", action)
        assert status == 403, (action, status)


def case_script_body(page):
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    login(page, os.environ["UI_ADMIN"])
    event = os.environ["UI_EVENT"]
    for view in ("pretty", "raw"):
        page.goto(f"{BASE}/ui/events/{event}?view={view}")
        expect(page.locator("#body")).to_contain_text("<script>window.__pwned = 1</script>")
    assert page.evaluate("() => window.__pwned") is None, "the body's script ran"
    assert page.locator("body script:not([src])").count() == 0
    assert dialogs == [], dialogs
    shoot(page, "event-script-body")


def case_curl(page):
    login(page, os.environ["UI_ADMIN"])
    page.goto(f"{BASE}/ui/deliveries/{os.environ['UI_DELIVERY']}")
    page.click("button:has-text('Copy as curl')")
    command = page.locator("#curl").inner_text()
    assert "webhook-signature: v1," in command, command
    shoot(page, "delivery-curl")
    with open(os.environ["UI_CURL_OUT"], "w") as out:
        out.write(command)


def case_test_event(page):
    login(page, os.environ["UI_ADMIN"])
    page.goto(f"{BASE}/ui/events")
    page.select_option("#test-event select[name=source]", "stripe")
    page.click("button:has-text('Send test event')")
    expect(page.locator("#test-outcome")).to_have_text("accepted")
    shoot(page, "test-event")
    page.click("#test-event-link")
    expect(page.locator("table.list")).to_contain_text("shop")
    page.goto(f"{BASE}/ui/events")
    page.select_option("#test-event select[name=source]", "stripe")
    page.select_option("#test-event select[name=scheme]", "github")
    page.click("button:has-text('Send test event')")
    expect(page.locator("#test-outcome")).to_have_text("rejected")
    expect(page.locator("dd.error")).to_contain_text("missing_signature")


def case_portal(page):
    link, own, other = os.environ["UI_PORTAL"], os.environ["UI_DELIVERY"], os.environ["UI_OTHER"]
    response = page.goto(BASE + link)
    assert response.status == 200, response.status
    expect(page.locator("#portal-endpoint")).to_have_text(os.environ["UI_ENDPOINT"])
    expect(page.locator("nav")).to_have_count(0)
    expect(page.locator(f'a[href$="/deliveries/{own}"]')).to_have_count(1)
    assert page.locator(f'a[href$="/deliveries/{other}"]').count() == 0
    shoot(page, "portal")
    page.click(f'a[href$="/deliveries/{own}"]')
    expect(page.locator("#delivery-status")).to_have_text("delivered")
    for path in (f"{link}/deliveries/{other}", "/ui/", "/ui/events", "/v1/admin/events"):
        status = page.request.get(BASE + path, max_redirects=0).status
        assert status in (302, 303, 401, 404), (path, status)
        assert status != 200, path
    page.goto(BASE + link)
    page.click("button:has-text('Rotate secret')")
    assert page.locator("#new-secret").inner_text().startswith("whsec_")
    deadline = time.monotonic() + 30
    while page.goto(BASE + link).status == 200:
        assert time.monotonic() < deadline, "the link never expired"
        time.sleep(0.5)
    assert page.goto(BASE + link).status == 404
    print("portal: showed only its endpoint, then expired")


def case_endpoint_test(page):
    login(page, os.environ["UI_ADMIN"])
    endpoint = os.environ["UI_ENDPOINT"]
    page.goto(f"{BASE}/ui/endpoints/{endpoint}")
    page.click("#send-test")
    expect(page.locator(".notice")).to_contain_text("Test event sent")
    assert re.search(r"/ui/deliveries/\d+\?done=test-sent$", page.url), page.url
    reload_until(page, "#delivery-status", "delivered")
    shoot(page, "endpoint-test")
    with open(os.environ["UI_OUT"], "w") as out:
        out.write(page.url.split("/ui/deliveries/")[1].split("?")[0])
    page.goto(f"{BASE}/ui/endpoints/{endpoint}")
    expect(page.locator("table.list")).to_contain_text("delivered")
    print("endpoint test event: sent from the endpoint page, delivered")


def case_portal_test(page):
    link = os.environ["UI_PORTAL"]
    assert page.goto(BASE + link).status == 200
    page.click("#send-test")
    expect(page.locator(".notice")).to_contain_text("Test event sent")
    assert re.search(r"/deliveries/\d+\?done=test-sent$", page.url), page.url
    assert page.url.startswith(BASE + link), page.url
    reload_until(page, "#delivery-status", "delivered")
    shoot(page, "portal-test")
    with open(os.environ["UI_OUT"], "w") as out:
        out.write(page.url.split("/deliveries/")[1].split("?")[0])
    print("portal test event: sent from the portal, delivered")


def case_rerun(page):
    login(page, os.environ["UI_ADMIN"])
    page.click("nav a:has-text('Plugins')")
    expect(page.locator("#plugins")).to_contain_text("transform of shop")
    expect(page.locator("#plugins .plugin-calls")).to_contain_text("ok 2")
    expect(page.locator("#plugins .plugin-p50")).to_have_text(re.compile(r"^\d+\.\d\d ms$"))
    expect(page.locator("#plugins .plugin-p95")).to_have_text(re.compile(r"^\d+\.\d\d ms$"))
    page.select_option("#rerun-plugin", "redact")
    page.set_input_files("#rerun-file", os.environ["UI_CANDIDATE"])
    expect(page.locator("#rerun-wasm")).not_to_have_value("")
    page.fill("#rerun-config", "pointers=/card/number,/customer/name")
    page.click("#rerun-run")
    expect(page.locator("#rerun-summary")).to_contain_text("1 changed, 1 unchanged of 2 events")
    case = page.locator("section.rerun-case")
    expect(case).to_have_count(1)
    expect(case.locator("h3")).to_contain_text(f"{os.environ['UI_CHANGED']}: pass → modify")
    expect(case.locator("table.diff")).to_contain_text("[redacted]")
    shoot(page, "plugins-rerun")
    print("rerun: the candidate's changed transform shows as a diff")


def case_signatures(page):
    login(page, os.environ["UI_ADMIN"])
    page.click("nav a:has-text('Signatures')")
    page.select_option("#signature-from", "endpoint:shop")
    page.fill("#signature-headers", os.environ["UI_HEADERS"])
    page.fill("#signature-body", os.environ["UI_BODY"])
    page.click("#signature-check")
    expect(page.locator("#signature-verdict")).to_contain_text("valid")
    # The same request as a framework that re-serialised the JSON would hand it over.
    spaced = json.dumps(json.loads(os.environ["UI_BODY"]), indent=2)
    page.fill("#signature-body", spaced)
    page.click("#signature-check")
    expect(page.locator("#signature-verdict")).to_have_text("the signature does not match")
    expect(page.locator("#signature-findings")).to_contain_text("body")
    expect(page.locator("#signature-findings")).to_contain_text("without white space")
    shoot(page, "signatures")
    page.select_option("#signature-from", "secret")
    page.select_option("#signature-scheme", "standard-webhooks")
    page.fill("#signature-secret", "v1,abc")
    page.click("#signature-check")
    expect(page.locator("#signature-findings")).to_contain_text("starts with `v1,`")
    print("signatures: a valid delivery, then a re-serialised body and a mistaken secret named")


def case_signatures_endpoint_keys(page):
    login(page, os.environ["UI_ADMIN"])
    page.click("nav a:has-text('Signatures')")
    page.select_option("#signature-from", f"endpoint:{os.environ['UI_ENDPOINT']}")
    page.fill("#signature-headers", os.environ["UI_HEADERS"])
    page.fill("#signature-body", os.environ["UI_BODY"])
    page.click("#signature-check")
    expect(page.locator("#signature-verdict")).to_contain_text("valid")
    expect(page.locator("#signature-key")).to_contain_text("a previous key (created")
    assert "BwcHBwcH" not in page.content(), "the key is never shown"
    shoot(page, "signatures-endpoint-keys")
    print("signatures: a v1a delivery matched the endpoint's previous key")


def case_replay(page):
    login(page, os.environ["UI_ADMIN"])
    page.click("nav a:has-text('Replay')")
    page.fill("#replay-since", "1h")
    page.click("#replay-dry-run")
    would = int(page.locator("#dry-run-count").inner_text())
    shoot(page, "replay-dry-run")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#replay-run")
    done = int(page.locator("#replayed-count").inner_text())
    assert would == done == int(os.environ["UI_EVENTS"]), (would, done)
    print(f"replay: dry run counted {would}, the replay made {done}")


def case_live_pause(page):
    login(page, os.environ["UI_ADMIN"])
    page.goto(f"{BASE}/ui/live")
    expect(page.locator("#live-state.on")).to_be_visible()
    page.click("#live-pause")
    held = [send_webhook("app", json.dumps({"type": "paused.check", "n": n})) for n in range(2)]
    expect(page.locator("#live-pause")).to_have_text("Resume (2 new)")
    for event in held:
        expect(page.locator(f'tr[data-id="{event}"]')).to_have_count(0)
    shoot(page, "live-paused")
    page.click("#live-pause")
    for event in held:
        expect(page.locator(f'tr[data-id="{event}"]')).to_be_visible()
    expect(page.locator("#live-pause")).to_have_text("Pause")
    print("live tail: 2 events held while paused, shown on resume")


def case_endpoint_figures(page):
    login(page, os.environ["UI_ADMIN"])
    page.click("nav a:has-text('Endpoints')")
    row = page.locator('tr[data-endpoint="shop"]')
    expect(row.locator("td.success")).to_have_text(os.environ["UI_SUCCESS"])
    expect(row.locator("td.p95")).to_have_text(re.compile(r"^\d+ ms$"))
    expect(row.locator("svg.spark rect.bad")).to_have_count(1)
    expect(row.locator("svg.spark rect.ok")).to_have_count(1)
    expect(row.locator("td.dead")).to_have_text("1")
    expect(row.locator("td.pending")).to_have_text("0")
    quiet = page.locator(f'tr[data-endpoint="{os.environ["UI_QUIET"]}"]')
    expect(quiet.locator("td.success")).to_have_text("–")
    expect(quiet.locator("svg.spark rect")).to_have_count(0)
    shoot(page, "endpoints-figures")
    print(f"endpoints: shop {row.locator('td.success').inner_text()} success, "
          f"p95 {row.locator('td.p95').inner_text()}")


def case_edit_delete(page):
    page.on("dialog", lambda dialog: dialog.accept())
    login(page, os.environ["UI_ADMIN"])
    endpoint, new_url = os.environ["UI_ENDPOINT"], os.environ["UI_NEW_URL"]
    page.goto(f"{BASE}/ui/endpoints/shop")
    expect(page.locator("#read-only")).to_contain_text("read-only")
    expect(page.locator("#edit-link")).to_have_count(0)
    expect(page.locator("#delete-link")).to_have_count(0)
    page.goto(f"{BASE}/ui/endpoints/{endpoint}")
    page.click("#edit-link")
    page.fill("input[name=url]", new_url)
    page.click("#edit-review")
    expect(page.locator("#edit-consequence")).to_contain_text(
        "Queued deliveries: 0 (0 pending, 0 parked). They go to the new URL")
    shoot(page, "endpoint-edit-confirm")
    page.click("#edit-apply")
    expect(page.locator(".notice")).to_contain_text("Changed")
    expect(page.locator("dl.facts")).to_contain_text(new_url)
    event = send_webhook("app", json.dumps({"type": "edited.check"}))
    page.goto(f"{BASE}/ui/events/{event}")
    reload_until(page, "table.list", endpoint)
    with open(os.environ["UI_EVENT_OUT"], "w") as out:
        out.write(event)
    # Two deliveries wait behind the disabled endpoint; deleting drops them.
    page.goto(f"{BASE}/ui/endpoints/{endpoint}")
    page.click("button:has-text('Disable')")
    expect(page.locator("#endpoint-state")).to_contain_text("disabled")
    for n in range(2):
        send_webhook("app", json.dumps({"type": "queued.check", "n": n}))
    page.click("#delete-link")
    consequence = page.locator("#delete-consequence")
    expect(consequence).to_contain_text("Queued deliveries: 2 (0 pending, 2 parked)")
    expect(consequence).to_contain_text("will be dropped")
    shoot(page, "endpoint-delete-confirm")
    page.click("#delete-apply")
    expect(page.locator(".notice")).to_contain_text(
        f"Deleted endpoint {endpoint}: 2 queued deliveries became dead letters")
    expect(page.locator(f'tr[data-endpoint="{endpoint}"]')).to_have_count(0)
    assert page.goto(f"{BASE}/ui/endpoints/{endpoint}").status == 404
    print("edit and delete: the URL changed, then 2 parked deliveries counted and dropped")


def main():
    case = sys.argv[1]
    os.makedirs(SHOTS, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1200, "height": 800})
        try:
            globals()[f"case_{case}"](page)
        finally:
            browser.close()
    print(f"case {case}: ok")


if __name__ == "__main__":
    main()
