"""``univers plugin new NAME``: a working universe package in a new folder.

The package passes the conformance suite as generated (a test checks it): one product with a
monthly plan, two support tiers, sold in the FR storefront in EUR, its names translated into
French, its gettext template and catalogs made by the same tools as the core's
(:mod:`core.i18n_tools`), and a test file that runs the suite. A product unit then renames,
adds products and storefronts, and replaces the simulated infrastructure by its own calls.
"""

from __future__ import annotations

import re
from pathlib import Path

from core.context import TranslationDomain
from core.errors import Conflict, InvalidInput
from core.i18n import N_

NAME = re.compile(r"^[a-z][a-z0-9_]{1,30}$")

FRENCH = {  # the generated names, and their French translations
    "{title} Basic": "{title} Essentiel",
    "{title} Basic, monthly": "{title} Essentiel, mensuel",
    "The first product of the {title} universe: replace it with yours.": "Le premier produit de l’univers {title} : "
                                                                         "remplacez-le par les vôtres.",
    "Standard support ({title})": "Support standard ({title})",
    "Premium support ({title})": "Support premium ({title})",
}

FILES = {
    "pyproject.toml": '''[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "univers-{name}"
version = "0.1.0"
description = "The {title} universe for Univers"
requires-python = ">=3.11"
dependencies = ["univers"]

# How Univers finds the universe: its plugin manager loads this entry point at start-up.
[project.entry-points."univers.plugins"]
{name} = "univers_{name}.plugin:universe"

[tool.setuptools.packages.find]
include = ["univers_{name}*"]

[tool.setuptools.package-data]
"univers_{name}" = ["catalog/*.toml", "catalog/countries/*.toml", "locales/LINGUAS", "locales/*.pot",
                    "locales/*/LC_MESSAGES/*.po", "locales/*/LC_MESSAGES/*.mo"]
''',
    "README.md": '''# univers-{name}

The {title} universe for Univers, made by `univers plugin new {name}`.

    pip install -e .                 # next to Univers
    univers plugin check {name}      # the conformance suite, on SQLite and PostgreSQL
    pytest                           # the same, from tests/test_conformance.py

- `univers_{name}/plugin.py`: the universe (a `core.universe.Universe`); replace the simulated
  infrastructure by your own calls in `univers_provision`, `univers_suspend`… (idempotent on
  `ctx.idempotency_key`).
- `univers_{name}/catalog/products.toml`: products, plans and support tiers, in English.
- `univers_{name}/catalog/countries/FR.toml`: what the FR storefront sells, at what price. Add one
  file per storefront.
- `univers_{name}/locales/`: the translations (`univers i18n extract`, `update`, `compile`).
''',
    "univers_{name}/__init__.py": '"""The {title} universe for Univers."""\n',
    "univers_{name}/plugin.py": '''"""The {title} universe: its catalog is data (``catalog/``), its translations in ``locales/``.

The base class implements every hook from those files; the infrastructure is simulated until
the dispatch hooks call yours.
"""

from __future__ import annotations

from core.context import ServiceContext
from core.universe import Universe


class {cls}(Universe):
    name = "{name}"

    def resource_name(self, ctx: ServiceContext) -> str:
        """What the infrastructure calls the service."""
        return f"{name}-{{ctx.service_id}}"


universe = {cls}()
''',
    "univers_{name}/catalog/products.toml": '''# The {title} universe's base catalog, in English (the msgids of the gettext domain "{name}").
# What each storefront sells, and at what price, is in countries/<STOREFRONT>.toml.

[[products]]
code = "{prefix}-basic"
kind = "{name}"
name = "{title} Basic"
description = "The first product of the {title} universe: replace it with yours."
plans = [
  {{ code = "{prefix}-basic-p1m", duration = "P1M", name = "{title} Basic, monthly" }},
]

[[support_tiers]]
code = "support-{prefix}-l1"
level = 1
name = "Standard support ({title})"
first_response_minutes = 1440
free = true

[[support_tiers]]
code = "support-{prefix}-l2"
level = 2
name = "Premium support ({title})"
first_response_minutes = 240
duration = "P1M"
''',
    "univers_{name}/catalog/countries/FR.toml": '''# {title} in the FR storefront: what is sold there and at what price, in EUR, excluding tax.
# A price applies from its date; add a line to change it, never edit the past.
storefront = "FR"
currency = "EUR"

[products]
{prefix}-basic = true
support-{prefix}-l1 = true
support-{prefix}-l2 = true

[prices]
{prefix}-basic-p1m = [{{ from = 2024-01-01, price = "9.99" }}]
support-{prefix}-l2 = [{{ from = 2024-01-01, price = "19.99" }}]
''',
    "univers_{name}/locales/LINGUAS": "fr\n",
    "tests/test_conformance.py": '''"""The conformance suite of Univers on this universe (both engines): `pytest`."""

from core.conformance import *  # noqa: F403

UNIVERSE = "{name}"
''',
}


def create(name: str, directory: Path | None = None) -> Path:
    """Write the package of a new universe ``name`` into ``directory`` (default ``./univers-NAME``),
    with its translation template and French catalog made and compiled."""
    from core import i18n_tools

    if not NAME.match(name):
        raise InvalidInput(N_("A universe's name is 2 to 31 lower-case letters, digits or _, starting with a letter."),
                           code="invalid_plugin_name")
    root = directory or Path.cwd() / f"univers-{name}"
    if root.exists() and any(root.iterdir()):
        raise Conflict(N_("The folder {path} exists and is not empty."), code="folder_not_empty", path=str(root))
    title = name.replace("_", " ").title()
    values = {"name": name, "title": title, "prefix": name.replace("_", "-"), "cls": title.replace(" ", "") + "Universe"}
    for relative, text in FILES.items():
        path = root / relative.format(**values)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.format(**values), encoding="utf-8")
    package = root / f"univers_{name}"
    domain = TranslationDomain(name, package / "locales", package)
    i18n_tools.write_template(domain)
    i18n_tools.update(domain, ["fr"])
    _translate(package / "locales" / "fr" / "LC_MESSAGES" / f"{name}.po", {k.format(title=title): v.format(title=title)
                                                                          for k, v in FRENCH.items()})
    i18n_tools.compile_catalogs(domain, ["fr"])
    return root


def _translate(po: Path, texts: dict[str, str]) -> None:
    from babel.messages.pofile import read_po, write_po

    with po.open("rb") as fh:
        catalog = read_po(fh, locale="fr")
    for message in catalog:
        if message.id in texts:
            message.string = texts[message.id]
    with po.open("wb") as fh:
        write_po(fh, catalog, width=None, sort_by_file=True, ignore_obsolete=True, include_lineno=False)
