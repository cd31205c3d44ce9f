"""Site information: the root page, build info, the XSD schemas, search elements and users (spec §5–7, §14).

Clients read these at connect: xnatpy fetches ``GET /`` (redirect and guest detection), the 404 of
``/data/version`` (no route here, as in XNAT 1.7+), ``/xapi/siteConfig/buildInfo``, every schema under
``/xapi/schemas`` and ``/data/search/elements``. The schemas are the package data in ``schemas/``.
"""

from __future__ import annotations

import html
import time
from importlib import resources
from pathlib import Path

from werkzeug.routing import Rule
from werkzeug.wrappers import Response

from xnatfs.emulator.app import Context, data_rules, public
from xnatfs.emulator.responses import HTTPError, json_response, result_set

XNAT_VERSION = "1.8.10"
_START = time.time()

#: xsi types listed by /data/search/elements, with XNAT's singular and plural display names.
SEARCH_ELEMENTS = (
    ("xnat:projectData", "Project", "Projects"),
    ("xnat:subjectData", "Subject", "Subjects"),
    ("xnat:mrSessionData", "MR Session", "MR Sessions"),
    ("xnat:ctSessionData", "CT Session", "CT Sessions"),
    ("xnat:petSessionData", "PET Session", "PET Sessions"),
    ("xnat:mrScanData", "MR Scan", "MR Scans"),
    ("xnat:ctScanData", "CT Scan", "CT Scans"),
    ("xnat:petScanData", "PET Scan", "PET Scans"),
    ("xnat:qcAssessmentData", "QC Assessment", "QC Assessments"),
    ("xnat:reconstructedImageData", "Reconstruction", "Reconstructions"),
)


def schema_dir() -> Path:
    return Path(str(resources.files("xnatfs.emulator") / "schemas"))


def schema_names() -> list[str]:
    """``<dir>/<file>`` names, with ``<dir>`` alone when the file is ``<dir>/<dir>.xsd`` (spec §6)."""
    names = []
    for path in sorted(schema_dir().glob("*/*.xsd")):
        directory, stem = path.parent.name, path.stem
        names.append(directory if directory == stem else f"{directory}/{stem}")
    return names


@public
def root_page(ctx: Context) -> Response:
    """The HTML root; xnatpy regex-checks the "Logged in as" span (spec §2.5)."""
    if ctx.user and not ctx.is_guest:
        who = (f'<span id="user_info">Logged in as: &nbsp;<a id="username-link" '
               f'href="/app/template/XDATScreen_UpdateUser.vm">{html.escape(ctx.user)}</a></span>')
    else:
        who = '<span id="user_info">Logged in as: <span style="color:red;">Guest</span></span>'
    return Response(f"<!DOCTYPE html>\n<html><head><title>XNAT</title></head><body>{who}"
                    "<p>xnatfs XNAT emulator</p></body></html>", mimetype="text/html")


def _build_info() -> dict[str, str]:
    return {
        "version": XNAT_VERSION,
        "buildNumber": "emulator",
        "buildDate": time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime(_START)),
        "sha": "0000000",
        "isDirty": "false",
        "timestamp": str(int(_START * 1000)),
        "hostName": "localhost",
        "displayHostName": "localhost",
        "nodeId": "",
        "branch": "emulator",
        "commit": "0000000",
        "tag": XNAT_VERSION,
        "shaFull": "0" * 40,
    }


@public
def build_info(ctx: Context, prop: str | None = None) -> Response:
    info = _build_info()
    if prop is None:
        return json_response(info)
    if prop not in info:
        raise HTTPError(404, f"No build property {prop}")
    return Response(info[prop], mimetype="text/plain")


@public
def site_url(ctx: Context) -> Response:
    return Response(ctx.app.config.site_url or ctx.request.host_url.rstrip("/"), mimetype="text/plain")


def uptime(ctx: Context) -> Response:
    seconds = int(time.time() - _START)
    return json_response({"days": seconds // 86400, "hours": seconds // 3600 % 24,
                          "minutes": seconds // 60 % 60, "seconds": seconds % 60})


def schemas(ctx: Context) -> Response:
    return json_response(schema_names())


def schema(ctx: Context, name: str) -> Response:
    """``/xapi/schemas/xnat`` → schemas/xnat/xnat.xsd; ``/xapi/schemas/xdat/display`` → xdat/display.xsd."""
    parts = name.split("/")
    if len(parts) == 1:
        parts = [parts[0], parts[0]]
    if len(parts) != 2 or any(not p or p.startswith(".") for p in parts):
        raise HTTPError(404, f"No schema named {name}")
    path = schema_dir() / parts[0] / f"{parts[1].removesuffix('.xsd')}.xsd"
    if not path.is_file():
        raise HTTPError(404, f"No schema named {name}")
    return Response(path.read_bytes(), mimetype="application/xml")


def legacy_schema(ctx: Context, directory: str, file: str) -> Response:
    """``/schemas/xnat/xnat.xsd`` (XNAT 1.6 URL and the host of item ``xsi:schemaLocation``)."""
    return schema(ctx, f"{directory}/{file}")


def search_elements(ctx: Context) -> Response:
    counts = _element_counts(ctx)
    rows = [{"ELEMENT_NAME": name, "SINGULAR": singular, "PLURAL": plural, "SECURED": "true",
             "COUNT": counts.get(name, 0)} for name, singular, plural in SEARCH_ELEMENTS]
    return result_set(ctx.request, rows, ["ELEMENT_NAME", "SINGULAR", "PLURAL", "SECURED", "COUNT"],
                      meta={"title": "Data-Types"}, total_records=True)


def search_element_fields(ctx: Context, element: str) -> Response:
    known = {name for name, _, _ in SEARCH_ELEMENTS}
    if element not in known:
        raise HTTPError(404, f"Unknown element {element}")
    fields = [("ID", "ID", "string"), ("LABEL", "Label", "string"), ("PROJECT", "Project", "string"),
              ("INSERT_DATE", "Inserted", "date")]
    rows = [{"FIELD_ID": fid, "HEADER": header, "SUMMARY": header, "TYPE": ftype, "REQUIRES_VALUE": "false",
             "DESC": header, "ELEMENT_NAME": element, "SRC": "0"} for fid, header, ftype in fields]
    return result_set(ctx.request, rows, ["FIELD_ID", "HEADER", "SUMMARY", "TYPE", "REQUIRES_VALUE", "DESC",
                                          "ELEMENT_NAME", "SRC"],
                      meta={"title": "Search Fields", "element_name": element}, total_records=False)


def _element_counts(ctx: Context) -> dict[str, int]:
    store = ctx.store
    counts: dict[str, int] = {"xnat:projectData": len(store.list_projects()),
                              "xnat:subjectData": len(store.list_subjects())}
    for row in store.query("SELECT xsi_type, COUNT(*) FROM experiments GROUP BY xsi_type"):
        counts[row[0]] = int(row[1])
    for table in ("scans", "reconstructions"):
        for row in store.query(f"SELECT xsi_type, COUNT(*) FROM {table} GROUP BY xsi_type"):
            counts[row[0]] = counts.get(row[0], 0) + int(row[1])
    return counts


def users(ctx: Context) -> Response:
    """Restlet's user list (spec §7; its meta title really is "Projects")."""
    rows = [{"xdat_user_id": i + 1, "login": name, "firstname": name, "lastname": name, "email": f"{name}@localhost"}
            for i, name in enumerate(sorted(ctx.app.config.users))]
    return result_set(ctx.request, rows, ["xdat_user_id", "login", "firstname", "lastname", "email"],
                      meta={"title": "Projects"})


def xapi_users(ctx: Context) -> Response:
    return json_response(sorted(ctx.app.config.users))


def routes() -> list[Rule]:
    return [
        Rule("/", endpoint=root_page, methods=["GET"]),
        Rule("/xapi/siteConfig/buildInfo", endpoint=build_info, methods=["GET"]),
        Rule("/xapi/siteConfig/buildInfo/<prop>", endpoint=build_info, methods=["GET"]),
        Rule("/xapi/siteConfig/siteUrl", endpoint=site_url, methods=["GET"]),
        Rule("/xapi/siteConfig/uptime", endpoint=uptime, methods=["GET"]),
        Rule("/xapi/schemas", endpoint=schemas, methods=["GET"]),
        Rule("/xapi/schemas/<path:name>", endpoint=schema, methods=["GET"]),
        Rule("/schemas/<directory>/<file>", endpoint=legacy_schema, methods=["GET"]),
        Rule("/xapi/users", endpoint=xapi_users, methods=["GET"]),
        *data_rules("/search/elements", search_elements, ["GET"], archive=False),
        *data_rules("/search/elements/<element>", search_element_fields, ["GET"], archive=False),
        *data_rules("/users", users, ["GET"], archive=False),
    ]
