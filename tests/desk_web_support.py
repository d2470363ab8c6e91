"""Helpers for web desk tests: the real app in a TestClient, officers signed in by link."""

import re

from starlette.testclient import TestClient

from bot.app.service import WelfareService
from handlers.desk_web.app import desk_routes
from handlers.web import create_app
from storage import desk_logins, staff
from tests.staff_support import make_staff

BASE = "https://desk.example"
ORIGIN = {"origin": BASE}
# the roles a page is tried with: staff roles, facilitators in and out of the proposal's group
ROLES = {
    "admin": ("admin", ()),
    "staff": ("staff", ()),
    "facilitator_in": ("facilitator", ("elderly",)),
    "facilitator_out": ("facilitator", ("children_youth",)),
    "viewer": ("viewer", ()),
}


def client(service: WelfareService) -> TestClient:
    """Return a browser on the web desk (https, so its Secure cookies are kept)."""
    app = create_app(desk_routes(service, BASE), service.db)
    return TestClient(app, base_url=BASE, follow_redirects=False)


def link_for(service: WelfareService, user_id: str, platform: str = "terminal") -> str:
    """Return a fresh one-time sign-in token for a platform user."""
    with service.db.begin() as connection:
        return desk_logins.create_link(connection, platform, user_id, service.clock())


def sign_in(service: WelfareService, browser: TestClient, user_id: str) -> None:
    """Sign a browser in by a one-time link, as an officer would from chat."""
    token = link_for(service, user_id)
    assert browser.get(f"/desk/login/{token}").status_code == 200
    response = browser.post("/desk/login", data={"token": token}, headers=ORIGIN)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/desk/proposals"


def officer(service: WelfareService, role: str) -> TestClient:
    """Return a browser signed in as a new staff member in one of ROLES (or a volunteer)."""
    browser = client(service)
    if role in ROLES:
        kind, groups = ROLES[role]
        make_staff(service, role, kind, groups)
        sign_in(service, browser, role)
    return browser


def csrf_of(page: str) -> str:
    """Return the CSRF token a page's forms carry."""
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None, "the page has no form with a CSRF token"
    return found.group(1)


def audit_actions(service: WelfareService) -> list[str]:
    """Return the actions in the audit log, oldest first."""
    with service.db.begin() as connection:
        return [entry["action"] for entry in staff.audit_entries(connection)]
