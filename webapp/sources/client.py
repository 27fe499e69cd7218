"""A small client for ODK Central's API: login, OData pages, versions, instance XML.

Central's documented API (docs/central.md says which calls and why): a
session token from `POST /v1/sessions`, submissions listed through OData
(`.svc/Submissions` with `$filter`, `$orderby`, `$top`, `$skip`, `$select`),
the XML of a submission at `.../submissions/{id}.xml` and of each version at
`.../submissions/{root}/versions/{id}.xml`.

Every request has a timeout, goes through the SSRF guard (guard.py), follows
no redirect and ignores proxy variables. Failures are `CentralError` values:
a code and a message a person can act on.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from webapp.sources.guard import BlockedAddress, GuardedAdapter, IPNetwork

CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0
# Central sessions last 24 h; a cached token is used for less than that.
SESSION_LIFETIME = timedelta(hours=23)


class CentralError(Exception):
    """Central could not be read. `code` names the cause (see ERROR_CODES)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# What each code means to the person who set the source up.
ERROR_CODES = (
    "login",  # email or password refused
    "forbidden",  # the user has no rights on the project or form
    "not_found",  # no such project or form
    "unreachable",  # connection refused, DNS, reset
    "timeout",
    "tls",  # certificate or handshake
    "blocked",  # the URL resolves to an internal address
    "redirect",  # the URL answers with a redirect: use the target
    "server_error",  # Central answered 5xx
    "bad_response",  # not what Central answers
    "submission",  # one submission could not be stored (skipped)
)


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    server_time: datetime | None  # Central's clock (its Date header)


def parse_time(value: str) -> datetime:
    """A Central timestamp (`2026-11-30T03:15:24.837Z`) as aware UTC."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def odata_time(value: datetime) -> str:
    """An aware datetime as an OData literal, to the millisecond (Central's precision)."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class CentralClient:
    """One poll's connection to a Central server (a requests Session)."""

    def __init__(
        self,
        url: str,
        email: str,
        password: str,
        *,
        allowed_networks: Sequence[IPNetwork] = (),
        token: str | None = None,
        max_bytes: int = 10 * 1024 * 1024,
    ) -> None:
        self.base = url.rstrip("/")
        self.host = urlsplit(self.base).hostname or self.base
        self.email = email
        self._password = password
        self.token = token
        self.token_renewed = False  # a new login happened: the caller may cache `token`
        self.max_bytes = max_bytes
        self.session = requests.Session()
        self.session.trust_env = False  # no proxy from the environment: the guard decides
        adapter = GuardedAdapter(allowed_networks)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = "Formhooks (ODK Central source)"

    def __enter__(self) -> CentralClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.session.close()

    # --- calls ------------------------------------------------------------------------------

    def login(self) -> str:
        """A new session token. CentralError("login") when the credentials are refused."""
        response = self._send("POST", "/v1/sessions", json_body=self._credentials())
        if response.status_code in (400, 401, 403):
            raise CentralError(
                "login",
                f"Central refused the login of {self.email}: check the email and password.",
            )
        self._check(response, "/v1/sessions")
        token = self._json(response, "/v1/sessions").get("token")
        if not isinstance(token, str):
            raise CentralError("bad_response", f"{self.base} did not answer like ODK Central.")
        self.token = token
        self.token_renewed = True
        return token

    def projects(self) -> list[dict[str, Any]]:
        return self.get_json("/v1/projects")

    def forms(self, project_id: int) -> list[dict[str, Any]]:
        return self.get_json(f"/v1/projects/{int(project_id)}/forms")

    def submissions_page(
        self, project_id: int, xml_form_id: str, *, filter_: str, orderby: str, top: int, skip: int
    ) -> Page:
        """One OData page of submission metadata (no form data: `$select`)."""
        path = f"{self._form_path(project_id, xml_form_id)}.svc/Submissions"
        params = {
            "$filter": filter_,
            "$orderby": orderby,
            "$top": str(top),
            "$select": "__id,__system/submissionDate,__system/updatedAt,__system/edits",
        }
        if skip:
            params["$skip"] = str(skip)
        response = self._authorized("GET", path, params=params)
        rows = self._json(response, path).get("value")
        if not isinstance(rows, list):
            raise CentralError("bad_response", f"{self.base} did not answer like ODK Central.")
        return Page(rows, _server_time(response))

    def versions(self, project_id: int, xml_form_id: str, root_id: str) -> list[dict[str, Any]]:
        """The versions of a submission, oldest first."""
        path = f"{self._form_path(project_id, xml_form_id)}/submissions/{quote(root_id, safe='')}"
        found = self.get_json(path + "/versions")
        return sorted(found, key=lambda v: (v.get("createdAt") or "", not v.get("current")))

    def instance_xml(
        self, project_id: int, xml_form_id: str, root_id: str, instance_id: str | None = None
    ) -> bytes:
        """The XML of a submission's current version, or of one version."""
        path = f"{self._form_path(project_id, xml_form_id)}/submissions/{quote(root_id, safe='')}"
        if instance_id is not None:
            path += f"/versions/{quote(instance_id, safe='')}"
        response = self._authorized("GET", path + ".xml", stream=True)
        return self._body(response, path)

    def get_json(self, path: str) -> Any:
        return self._json(self._authorized("GET", path), path)

    # --- plumbing ---------------------------------------------------------------------------

    def _form_path(self, project_id: int, xml_form_id: str) -> str:
        return f"/v1/projects/{int(project_id)}/forms/{quote(xml_form_id, safe='')}"

    def _credentials(self) -> dict[str, str]:
        return {"email": self.email, "password": self._password}

    def _authorized(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """A request with the session token; one new login if Central says it expired."""
        if self.token is None:
            self.login()
        response = self._send(method, path, token=self.token, **kwargs)
        if response.status_code == 401:
            response.close()
            self.login()
            response = self._send(method, path, token=self.token, **kwargs)
        self._check(response, path)
        return response

    def _send(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json_body: Any = None,
        params: dict[str, str] | None = None,
        stream: bool = False,
    ) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            return self.session.request(
                method,
                self.base + path,
                headers=headers,
                json=json_body,
                params=params,
                stream=stream,
                allow_redirects=False,
                timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
            )
        except BlockedAddress as exc:
            raise CentralError("blocked", f"Refused: {exc}") from None
        except requests.exceptions.SSLError as exc:
            raise CentralError(
                "tls", f"TLS error with {self.host}: {_reason(exc)}. Check the URL and certificate."
            ) from None
        except requests.exceptions.Timeout:
            raise CentralError("timeout", f"{self.host} did not answer in time.") from None
        except (requests.exceptions.ConnectionError, OSError) as exc:
            raise CentralError(
                "unreachable", f"Cannot connect to {self.host}: {_reason(exc)}."
            ) from None
        except requests.exceptions.RequestException as exc:
            raise CentralError("unreachable", f"Cannot reach {self.host}: {exc}.") from None

    def _check(self, response: requests.Response, path: str) -> None:
        status = response.status_code
        if status < 300:
            return
        response.close()
        if 300 <= status < 400:
            target = response.headers.get("Location", "")
            raise CentralError(
                "redirect",
                f"{self.base} answered with a redirect to {target}: use that address instead.",
            )
        if status == 401:
            raise CentralError(
                "login",
                f"Central refused the login of {self.email}: check the email and password.",
            )
        if status == 403:
            raise CentralError(
                "forbidden",
                f"The Central user {self.email} may not read {path}: give it a role on the "
                "project (Project Viewer is enough).",
            )
        if status == 404:
            raise CentralError(
                "not_found",
                f"Central has nothing at {path}: check the project id and the form id "
                "(the user must also be able to see them).",
            )
        if status >= 500:
            raise CentralError("server_error", f"Central answered {status} to {path}.")
        raise CentralError("bad_response", f"Central answered {status} to {path}.")

    def _json(self, response: requests.Response, path: str) -> Any:
        try:
            return response.json()
        except ValueError:
            raise CentralError(
                "bad_response", f"{self.base}{path} did not answer with JSON: is it ODK Central?"
            ) from None

    def _body(self, response: requests.Response, path: str) -> bytes:
        """The body, at most `max_bytes` (read while streaming)."""
        chunks, received = [], 0
        try:
            for chunk in response.iter_content(65536):
                received += len(chunk)
                if received > self.max_bytes:
                    raise CentralError(
                        "submission", f"{path} is larger than {self.max_bytes} bytes."
                    )
                chunks.append(chunk)
        except requests.exceptions.RequestException as exc:
            raise CentralError("unreachable", f"Reading {path} failed: {exc}.") from None
        finally:
            response.close()
        return b"".join(chunks)


def _server_time(response: requests.Response) -> datetime | None:
    try:
        return parsedate_to_datetime(response.headers["Date"]).astimezone(UTC)
    except (KeyError, TypeError, ValueError):
        return None


def _reason(exc: BaseException) -> str:
    """The innermost cause of a requests error, in a few words."""
    seen = exc
    while seen.__cause__ is not None or seen.__context__ is not None:
        seen = seen.__cause__ or seen.__context__
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen.verify_message or str(seen)
    for arg in getattr(seen, "args", ()):
        if isinstance(arg, str) and arg:
            return arg.split(": ", 1)[-1][:200]
    return str(seen)[:200] or type(seen).__name__
