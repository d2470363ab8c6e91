"""The web desk in Debian's Chromium: sign in by link, filter, review, export, the overview.

Every page is scanned with axe-core and photographed at phone and desktop widths into
test-artifacts/desk/ (gitignored) for a person to look at.
"""

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, sync_playwright

from bot.app.service import WelfareService
from bot.domain.messages import Press
from handlers.desk_web.app import desk_routes
from handlers.web import create_app
from tests.desk_web_support import link_for
from tests.fakes.loopback import serving
from tests.helpers import th
from tests.staff_support import add_proposals, make_staff

CHROMIUM = Path("/usr/lib/chromium/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "desk"
SIZES = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 900}}
SERIOUS = ("serious", "critical")

if not CHROMIUM.exists():
    REASON = "Chromium is not installed (apt-get install -y chromium fonts-thai-tlwg)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{REASON}; .ci/run installs it, so CI must not skip", pytrace=False)
    pytest.skip(REASON, allow_module_level=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Launch Debian's Chromium once for this module."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield launched
        launched.close()


@pytest.fixture
def desk(service: WelfareService) -> Iterator[str]:
    """Serve the web desk on loopback, with proposals in it; return its address."""
    children = {"target_group": "children_youth", "subgroup": "orphan"}
    add_proposals(service, [{}, {"district": "5007", "people_affected": 40}, children] * 4)
    with serving(create_app(desk_routes(service, "http://127.0.0.1"), service.db)) as server:
        yield server.url


def check(page: Page, name: str) -> None:
    """Scan the page with axe-core and photograph it at phone and desktop widths."""
    found: list[dict[str, Any]] = Axe().run(page).response["violations"]
    bad = [(v["id"], v["impact"], len(v["nodes"])) for v in found if v["impact"] in SERIOUS]
    assert bad == [], f"{name}: serious accessibility violations {bad}"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for size, viewport in SIZES.items():
        page.set_viewport_size(viewport)  # type: ignore[arg-type]
        page.screenshot(path=ARTIFACTS / f"{name}-{size}.png", full_page=True)
    page.set_viewport_size(SIZES["desktop"])  # type: ignore[arg-type]


def test_an_officer_signs_in_filters_reviews_and_exports(
    browser: Browser, desk: str, service: WelfareService
) -> None:
    make_staff(service, "u1", "admin")
    context = browser.new_context(viewport=SIZES["desktop"], locale="th-TH")  # type: ignore[arg-type]
    page = context.new_page()
    page.goto(f"{desk}/desk/login/{link_for(service, 'u1')}")
    check(page, "confirm")
    page.get_by_role("button", name=th("web.confirm.button")).click()
    page.wait_for_url("**/desk/proposals")
    check(page, "proposals")

    page.get_by_label(th("label.target_group")).select_option("elderly")
    page.get_by_label(th("label.district")).select_option("5007")
    page.get_by_role("button", name=th("web.filter.apply")).click()
    page.wait_for_url("**group=elderly**")
    assert th("web.list.count", count="4") in page.content()

    page.get_by_role("link", name="CM-2570-00011").click()
    page.wait_for_url("**/desk/proposals/CM-2570-00011")
    check(page, "proposal")
    page.get_by_label(th("web.review.to")).select_option("forwarded")
    page.get_by_label(th("web.review.note")).fill("อบต.ช้างเผือก")
    page.get_by_role("button", name=th("web.review.save")).click()
    page.wait_for_url("**changed=forwarded")
    assert page.get_by_text(th("web.show.agency", agency="อบต.ช้างเผือก")).is_visible()

    page.go_back()
    page.go_back()
    with page.expect_download() as download:
        page.get_by_role("link", name=th("web.export.csv")).click()
    exported = Path(download.value.path()).read_text(encoding="utf-8-sig")
    assert exported.count("\n") == 5  # the header and four proposals
    assert "อบต.ช้างเผือก" in exported

    page.get_by_role("link", name=th("web.nav.overview")).click()
    page.wait_for_url("**/desk/overview")
    check(page, "overview")

    page.get_by_role("link", name=th("web.nav.broadcasts")).click()
    page.get_by_label(th("web.bc.text_th")).fill("ขอเชิญส่งข้อเสนอก่อนสิ้นเดือนค่ะ")
    page.get_by_label("LINE").check()
    # htmx posts the form as it changes and shows the counts and both bubbles
    page.locator("#preview .bubble").first.wait_for()
    assert th("web.bc.reach", total="0") in page.locator("#preview").inner_text()
    assert page.locator("#preview .bubble").count() == 2
    check(page, "broadcasts")
    page.get_by_role("button", name=th("web.bc.send")).click()
    page.wait_for_url("**/desk/broadcasts/1")
    check(page, "broadcast")
    page.get_by_role("link", name=th("web.nav.staff")).click()
    check(page, "staff")
    page.get_by_role("link", name=th("web.nav.audit")).click()
    assert "broadcast" in page.content()
    check(page, "audit")
    context.close()


def test_a_desktop_browser_signs_in_with_a_code_confirmed_in_chat(
    browser: Browser, desk: str, service: WelfareService
) -> None:
    chat = make_staff(service, "u2", "viewer")
    context = browser.new_context(viewport=SIZES["desktop"])  # type: ignore[arg-type]
    page = context.new_page()
    page.goto(f"{desk}/desk/login")
    check(page, "login")
    code = page.locator("code").inner_text().split()[-1]
    chat.send(f"/desk {code}")
    chat.send(Press(chat.buttons[0]))
    # the page polls with htmx and offers to go on once the chat has confirmed
    page.get_by_text(th("web.login.confirmed")).wait_for()
    page.get_by_role("button", name=th("web.login.continue")).click()
    page.wait_for_url("**/desk/proposals")
    page.get_by_role("link", name="CM-2570-00001").click()
    assert "ส•••••" in page.content()  # a viewer sees names masked
    context.close()
