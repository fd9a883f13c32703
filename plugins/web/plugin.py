"""The web universe: domain names, shared web hosting and email.

Its catalog is data: ``catalog/products.toml`` (English names, the msgids of the ``web`` gettext
domain) and one overlay per storefront in ``catalog/countries/``, where local domains such as
``.fr`` or ``.pl`` are defined. A domain product names the extension it registers in its
``attributes`` (``extension = "fr"``).
"""

from __future__ import annotations

import re

from core.context import DunningPolicy, LineProblem, OrderLineContext, ServiceContext
from core.i18n import N_, translate
from core.universe import Universe

DOMAIN = "web"

_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_MAX_LENGTH = 253

MSG_INVALID = N_("{domain} is not a valid domain name.")
MSG_EXTENSION = N_("{domain} does not end with {extension}: this product registers {extension} domain names.")
MSG_SUBDOMAIN = N_("{domain} is a subdomain: order the registrable name, for example {example}.")


def normalise_domain(raw: object) -> str | None:
    """Lower-case ASCII (punycode) form of a domain name, or None if it is not a valid host name.

    A trailing dot (fully qualified form) is accepted; internationalised names are encoded
    with IDNA, so ``café.fr`` becomes ``xn--caf-dma.fr``.
    """
    name = str(raw or "").strip().rstrip(".").lower()
    if not name:
        return None
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    if len(name) > _MAX_LENGTH:
        return None
    labels = name.split(".")
    if len(labels) < 2:
        return None
    for label in labels:
        if not _LABEL.match(label):
            return None
        if label[2:4] == "--" and not label.startswith("xn--"):
            return None  # reserved for IDNA ("xn--") and future encodings
    if labels[-1].isdigit():
        return None  # a top-level label is never numeric (rules out IPv4 addresses)
    return name


class WebUniverse(Universe):
    name = DOMAIN
    delay_factor = 0.5
    # domains get a reminder a month ahead
    technical_actions = {"hosting": ("restart", "reset_ftp_password"), "email": ("reset_password",)}
    dunning = DunningPolicy(reminders=(30, 7, 1))  # its infrastructure logs are kept the default 30 days
    log_events = {
        "certificate.renewed": ("info", "network", "TLS certificate of {resource} renewed until {until}"),
    }

    def resource_name(self, ctx: ServiceContext) -> str:
        sid = ctx.service_id
        domain = normalise_domain(ctx.options.get("domain"))
        if ctx.product_kind == "domain":
            return domain or f"domain-{sid}.{DOMAIN}"
        if ctx.product_kind == "hosting":
            login = re.sub(r"[^a-z0-9]", "", domain.split(".")[0])[:8] if domain else ""
            return f"{login or 'web'}{sid}.cluster{sid % 120 + 1:03d}.hosting.univers.net"
        if ctx.product_kind == "email":
            platform = "ex" if "exchange" in ctx.product_code else "pro"
            return f"{platform}-{sid:06d}.{platform}{sid % 4 + 1}.mail.univers.net"
        return super().resource_name(ctx)

    def check_line(self, ctx: OrderLineContext) -> list[LineProblem]:
        extension = ctx.attributes.get("extension")
        if ctx.product_kind != "domain" or not extension:
            return []
        return domain_problems(ctx.options["domain"], extension, ctx.locale)


def domain_problems(raw: object, extension: str, locale: str | None) -> list[LineProblem]:
    """Why ``raw`` cannot be registered as a ``.extension`` domain name (empty when it can)."""
    shown = str(raw).strip()
    dotted = "." + extension

    def problem(msgid: str, **values: str) -> list[LineProblem]:
        message = translate(msgid, locale, DOMAIN).format(domain=shown, extension=dotted, **values)
        return [LineProblem("invalid_domain", message, "options.domain")]

    name = normalise_domain(raw)
    if name is None or name == extension:
        return problem(MSG_INVALID)
    if not name.endswith(dotted):
        return problem(MSG_EXTENSION)
    registrable = name[: -len(dotted)]
    if "." in registrable:
        return problem(MSG_SUBDOMAIN, example=registrable.rsplit(".", 1)[1] + dotted)
    return []


universe = WebUniverse()
