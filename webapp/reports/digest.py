"""What a failure digest says: recipients, grouping, rows, links and hints.

Pure functions over `Failure` and `SourceFailure` records (no database, no
mail), so the content rules can be read and tested on their own.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from html.parser import HTMLParser
from urllib.parse import quote

#: Rows listed per hook; the rest are counted and found on the hook's logs page.
MAX_ROWS_PER_HOOK = 50
EXCERPT_CHARS = 200


@dataclass(frozen=True)
class Failure:
    """One failed delivery log due for reporting, with what the email needs."""

    log_id: int
    log_uid: str
    instance_id: str
    status_code: int | None
    message: str
    failed_at: datetime | None
    hook_uid: str
    hook_name: str
    notification_emails: tuple[str, ...]
    form_uid: str
    form_name: str
    owner_email: str
    owner_wants_reports: bool  # opted in and active


@dataclass(frozen=True)
class SourceFailure:
    """A form's source (ODK Central) in error, not reported yet: told to the form owner."""

    source_id: int
    form_uid: str
    form_name: str
    url: str  # the Central server
    project_id: int
    xml_form_id: str
    code: str  # webapp.sources.client.ERROR_CODES
    message: str
    since: datetime | None
    owner_email: str
    owner_wants_reports: bool  # opted in and active


@dataclass(frozen=True)
class SourceRow:
    """What the digest says of a source in error, under its form."""

    server: str
    project_id: int
    xml_form_id: str
    code: str  # a key of render.SOURCE_HINTS (or another code: no hint)
    excerpt: str
    since: datetime | None
    url: str  # the form's Source page, where the settings are fixed

    @property
    def since_text(self) -> str:
        return self.since.strftime("%Y-%m-%d %H:%M UTC") if self.since else "-"


@dataclass(frozen=True)
class Row:
    instance_id: str
    status_code: int | None
    excerpt: str
    failed_at: datetime | None
    url: str

    @property
    def failed_at_text(self) -> str:
        return self.failed_at.strftime("%Y-%m-%d %H:%M UTC") if self.failed_at else "-"


@dataclass(frozen=True)
class HookSection:
    uid: str
    name: str
    logs_url: str
    total: int
    rows: list[Row]
    hints: list[str]  # keys of HINTS, most specific first

    @property
    def more(self) -> int:
        """Failures counted but not listed (see MAX_ROWS_PER_HOOK)."""
        return self.total - len(self.rows)


@dataclass(frozen=True)
class FormSection:
    uid: str
    name: str
    hooks: list[HookSection]
    source: SourceRow | None = None  # the form's source, when it is in error


@dataclass(frozen=True)
class Digest:
    """One email: every due failure one recipient should hear about."""

    recipient: str
    forms: list[FormSection]
    log_ids: frozenset[int] = field(default_factory=frozenset)
    source_ids: frozenset[int] = field(default_factory=frozenset)

    @property
    def failures(self) -> int:
        return len(self.log_ids)

    @property
    def failing_forms(self) -> int:
        """Forms with failed deliveries (a form listed only for its source is not one)."""
        return sum(1 for form in self.forms if form.hooks)

    @property
    def source_errors(self) -> int:
        return len(self.source_ids)


def normalize_address(address: str) -> str:
    return address.strip().lower()


def recipients(failure: Failure | SourceFailure) -> list[str]:
    """The form owner if they want reports, then the hook's extra addresses; no duplicates.

    A source's error goes to the form owner only: a hook's addresses are
    about that hook's deliveries.
    """
    found: list[str] = []
    candidates = [failure.owner_email] if failure.owner_wants_reports else []
    candidates += list(getattr(failure, "notification_emails", ()))
    for address in map(normalize_address, candidates):
        if address and address not in found:
            found.append(address)
    return found


def build_digests(
    failures: Iterable[Failure], base_url: str, sources: Iterable[SourceFailure] = ()
) -> tuple[list[Digest], set[int]]:
    """Group failures (and sources in error) into one digest per recipient, by form then hook.

    Returns the digests (ordered by recipient) and the ids of failed logs that
    nobody is to be told about (owner opted out and no extra address).
    """
    per_recipient: dict[str, list[Failure]] = defaultdict(list)
    sources_of: dict[str, list[SourceFailure]] = defaultdict(list)
    unaddressed: set[int] = set()
    for failure in failures:
        addresses = recipients(failure)
        if not addresses:
            unaddressed.add(failure.log_id)
        for address in addresses:
            per_recipient[address].append(failure)
    for source in sources:
        for address in recipients(source):
            sources_of[address].append(source)
    digests = [
        Digest(
            recipient=address,
            forms=_form_sections(per_recipient.get(address, []), sources_of[address], base_url),
            log_ids=frozenset(f.log_id for f in per_recipient.get(address, [])),
            source_ids=frozenset(s.source_id for s in sources_of[address]),
        )
        for address in sorted(set(per_recipient) | set(sources_of))
    ]
    return digests, unaddressed


def _form_sections(
    failures: list[Failure], sources: list[SourceFailure], base_url: str
) -> list[FormSection]:
    by_form: dict[str, list[Failure]] = defaultdict(list)
    names = {source.form_uid: source.form_name for source in sources}
    for failure in failures:
        by_form[failure.form_uid].append(failure)
        names[failure.form_uid] = failure.form_name
    source_rows = {source.form_uid: _source_row(source, base_url) for source in sources}
    sections = []
    for form_uid, name in names.items():
        by_hook: dict[str, list[Failure]] = defaultdict(list)
        for failure in by_form.get(form_uid, []):
            by_hook[failure.hook_uid].append(failure)
        hooks = [_hook_section(hook_items, base_url) for hook_items in by_hook.values()]
        hooks.sort(key=lambda h: (h.name.casefold(), h.uid))
        sections.append(
            FormSection(uid=form_uid, name=name, hooks=hooks, source=source_rows.get(form_uid))
        )
    sections.sort(key=lambda s: (s.name.casefold(), s.uid))
    return sections


def _source_row(source: SourceFailure, base_url: str) -> SourceRow:
    return SourceRow(
        server=source.url,
        project_id=source.project_id,
        xml_form_id=source.xml_form_id,
        code=source.code,
        excerpt=excerpt(source.message),
        since=source.since,
        url=source_url(base_url, source.form_uid),
    )


def source_url(base_url: str, form_uid: str) -> str:
    """The form's Source page, where a source's settings are fixed."""
    return f"{base_url}/forms/{quote(form_uid)}/source"


def _hook_section(failures: list[Failure], base_url: str) -> HookSection:
    first = failures[0]
    newest_first = sorted(
        failures, key=lambda f: (f.failed_at is not None, f.failed_at, f.log_id), reverse=True
    )
    rows = [
        Row(
            instance_id=f.instance_id,
            status_code=f.status_code,
            excerpt=excerpt(f.message),
            failed_at=f.failed_at,
            url=log_url(base_url, f.form_uid, f.hook_uid, f.log_uid),
        )
        for f in newest_first[:MAX_ROWS_PER_HOOK]
    ]
    return HookSection(
        uid=first.hook_uid,
        name=first.hook_name,
        logs_url=logs_url(base_url, first.form_uid, first.hook_uid),
        total=len(failures),
        rows=rows,
        hints=hint_keys((f.status_code, f.message) for f in failures),
    )


def logs_url(base_url: str, form_uid: str, hook_uid: str) -> str:
    """The hook's logs page, where "retry all failed" is."""
    return f"{base_url}/forms/{quote(form_uid)}/hooks/{quote(hook_uid)}/logs"


def log_url(base_url: str, form_uid: str, hook_uid: str, log_uid: str) -> str:
    return f"{logs_url(base_url, form_uid, hook_uid)}/{quote(log_uid)}"


class _TextOnly(HTMLParser):
    """Collects the text of an HTML fragment, without scripts and styles."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in ("script", "style"):
            self._skipping += 1
        elif tag in ("br", "p", "div", "li", "tr", "h1", "h2", "h3", "title"):
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skipping:
            self._skipping -= 1
        else:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def excerpt(message: str, limit: int = EXCERPT_CHARS) -> str:
    """`message` as readable text: HTML stripped, whitespace collapsed, at most `limit` chars."""
    text = message or ""
    if "<" in text:
        parser = _TextOnly()
        parser.feed(text)
        parser.close()
        text = "".join(parser.parts)
    text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:.-") + "…"


#: Hint keys in the order they are shown (most specific first).
HINT_ORDER = (
    "internal",
    "credentials",
    "not_found",
    "redirect",
    "rejected",
    "server_error",
    "unreachable",
    "dns",
    "tls",
)


def hint_key(status_code: int | None, message: str) -> str | None:
    """The likely cause of one failure, from its status code or error message."""
    lowered = (message or "").lower()
    if "internal address" in lowered:
        return "internal"
    if status_code is not None:
        if status_code in (401, 403):
            return "credentials"
        if status_code in (404, 410):
            return "not_found"
        if 300 <= status_code < 400:
            return "redirect"
        if 400 <= status_code < 500:
            return "rejected"
        if status_code >= 500:
            return "server_error"
        return None
    if any(s in lowered for s in ("connection refused", "timed out", "could not connect")):
        return "unreachable"
    if any(s in lowered for s in ("closed the connection", "connection reset")):
        return "unreachable"
    if "could not resolve host" in lowered:
        return "dns"
    if "tls error" in lowered:
        return "tls"
    return None


def hint_keys(outcomes: Iterable[tuple[int | None, str]]) -> list[str]:
    """The distinct likely causes of a hook's failures, in HINT_ORDER."""
    keys = {hint_key(code, message) for code, message in outcomes}
    return [key for key in HINT_ORDER if key in keys]
