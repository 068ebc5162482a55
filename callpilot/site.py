"""The site around the app's pages: the landing page (`/`), the one stylesheet and the favicon every page
links, and the API docs (`/docs`) with Swagger UI's files served from an installed package, so every page works
offline. There is no `/redoc`: ReDoc's bundle loads its logo from a CDN."""

from __future__ import annotations

import html
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, HTTPException
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

STYLESHEET = "/static/style.css"
FAVICON = "/favicon.svg"
DOCS_ASSETS = "/static/docs"
# Swagger UI as the `fastapi-offline` package ships it (no CDN).
DOCS_FILES = Path(fastapi_offline.__file__).parent / "static"
SITE_FILES = {"style.css": "text/css", "favicon.svg": "image/svg+xml", "i18n.js": "text/javascript"}
I18N = "/static/i18n.js"  # every page: Chinese or English, from the browser's language, switchable


@dataclass(frozen=True)
class PageLink:
    """One page on the landing page: where, what it is for, and what signing in to it takes."""

    path: str
    title: str
    what: str
    sign_in: str


# The landing page's list, in the order a newcomer meets them; add a page here and it is linked.
PAGES: tuple[PageLink, ...] = (
    PageLink("/phone", "Softphone", "Call the hotline from this browser and talk to the bot (or an agent).",
             "No sign-in. Needs a microphone; browsers allow it on localhost or over HTTPS."),
    PageLink("/agent", "Agent desk", "Take handed-over calls: screen pop, audio, hold, transfer, wrap-up.",
             "An agent token: <code>callpilot agent add NAME --skills orders,tech</code> prints it."),
    PageLink("/supervisor", "Supervisor", "The floor live: queues, waiting calls, agents, live calls, callbacks.",
             "A supervisor or admin API key: <code>callpilot apikey create --role supervisor</code>."),
    PageLink("/dashboard", "Dashboard", "Today's and the last 7 days' KPIs, charts, hot topics, alerts.",
             "A supervisor or admin API key, as for the supervisor page."),
    PageLink("/calls", "Call history", "Find any past call: timeline, transcript, recording, ticket; CSV export.",
             "A supervisor or admin API key (an agent key shows the agent's own calls)."),
    PageLink("/docs", "API docs",
             "The REST API (<code>/api/v1</code>): every route and field, to try out.",
             "Reading the docs needs nothing; calls need <code>Authorization: Bearer &lt;API key&gt;</code>."),
)


def site_file(name: str) -> str:
    return resources.files("callpilot").joinpath("web", name).read_text(encoding="utf-8")


def page_head(title: str) -> str:
    """The `<head>` lines every callpilot page shares (for pages built in Python)."""
    return (f'<meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{html.escape(title)}</title><link rel="icon" href="{FAVICON}" type="image/svg+xml">'
            f'<link rel="stylesheet" href="{STYLESHEET}"><script src="{I18N}" defer></script>')


def landing_page(pages: tuple[PageLink, ...] = PAGES) -> str:
    items = "\n".join(
        f'<li><a href="{p.path}">{html.escape(p.title)}</a><p>{p.what}</p><p class="muted">{p.sign_in}</p></li>'
        for p in pages)
    return f"""<!doctype html>
<html lang="en">
<head>{page_head("callpilot")}</head>
<body>
<nav class="top"><a class="home" href="/"><img src="{FAVICON}" alt="">callpilot</a></nav>
<h1>callpilot</h1>
<p>The hotline's bot, its human agents and their supervisors, on this server. Pick a page:</p>
<ul class="pages">
{items}
</ul>
<h2>For programs</h2>
<p class="muted"><a href="/health">/health</a> (is the bot ready), <a href="/metrics">/metrics</a> (Prometheus),
<code>/api/v1</code> (call records, with an API key), <code>/webhooks/rest/webhook</code> (Rasa's REST channel).</p>
</body>
</html>
"""


def mount_site(app: FastAPI) -> None:
    """`/`, `/static/style.css`, `/favicon.svg` (and `/favicon.ico`) and `/docs`. The app must be created with
    `docs_url=None, redoc_url=None` (FastAPI's own pages load their scripts from a CDN)."""
    app.mount(DOCS_ASSETS, StaticFiles(directory=DOCS_FILES), name="docs-assets")

    @app.get("/", include_in_schema=False)
    def landing() -> HTMLResponse:
        return HTMLResponse(landing_page())

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        if name not in SITE_FILES:
            raise HTTPException(404, f"no file {name!r}")
        return Response(site_file(name), media_type=SITE_FILES[name],
                        headers={"Cache-Control": "public, max-age=3600"})

    @app.get("/favicon.svg", include_in_schema=False)
    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response(site_file("favicon.svg"), media_type="image/svg+xml",
                        headers={"Cache-Control": "public, max-age=86400"})

    openapi_url = app.openapi_url or "/openapi.json"
    oauth2_redirect = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=openapi_url, title=f"{app.title}: API docs",
                                   oauth2_redirect_url=oauth2_redirect,
                                   swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css", swagger_favicon_url=FAVICON)

    @app.get(oauth2_redirect, include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()
