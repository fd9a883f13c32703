"""The plugin host. One :class:`pluggy.PluginManager` per runtime, never a module global.

Built-in universes register through the ``univers.plugins`` entry-point group exactly as an
external package would. ``UNIVERS_DISABLE_PLUGINS`` blocks plugins by name; tests may build a
manager without autoload and register their own plugins. ``UNIVERS_TRACE_HOOKS`` logs every hook
call and its result (logger ``univers.plugins``, level INFO).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import entry_points
from importlib.metadata import version as dist_version
from pathlib import Path

import pluggy

from core import PROJECT, hookspecs
from core.catalog import Catalog, FileProblem, Problem, build_catalog
from core.context import (
    ContractText,
    Contributions,
    DunningPolicy,
    MetricSpec,
    PluginContext,
    TranslationDomain,
)

ENTRY_POINT_GROUP = "univers.plugins"
log = logging.getLogger("univers.plugins")


class PluginError(RuntimeError):
    """A plugin could not be loaded or contributed something invalid. Start-up stops."""


def build_plugin_manager(settings, extra: list[tuple[str, object]] | None = None) -> pluggy.PluginManager:
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    for name in settings.disabled_plugins:
        pm.set_blocked(name)
    if settings.autoload_plugins:
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if pm.is_blocked(ep.name):
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # the message must name the plugin, whatever broke
                raise PluginError(f"plugin {ep.name!r} ({ep.value}) cannot be loaded: {exc!r}") from exc
            pm.register(plugin, name=ep.name)
    for name, plugin in extra or []:
        if not pm.is_blocked(name):
            pm.register(plugin, name=name)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin {pm.get_name(exc.plugin)!r}: {exc}") from exc
    if settings.trace_hooks:
        trace_hook_calls(pm)
    return pm


def trace_hook_calls(pm: pluggy.PluginManager) -> Callable[[], None]:
    """Log every hook call on ``univers.plugins`` at INFO: the plugins it goes to, in the order
    pluggy calls them, its arguments, then its result or exception. Returns the undo function."""

    def before(hook_name: str, impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, object]) -> None:
        if log.isEnabledFor(logging.INFO):
            plugins = ", ".join(impl.plugin_name for impl in reversed(impls)) or "no plugin"
            arguments = ", ".join(f"{name}={_brief(value)}" for name, value in kwargs.items())
            log.info("hook %s(%s) to %s", hook_name, arguments, plugins)

    def after(outcome: pluggy.Result, hook_name: str, impls: Sequence[pluggy.HookImpl],
              kwargs: Mapping[str, object]) -> None:
        if not log.isEnabledFor(logging.INFO):
            return
        if outcome.exception is not None:
            log.info("hook %s raised %r", hook_name, outcome.exception)
        else:
            log.info("hook %s returned %s", hook_name, _brief(outcome.get_result()))

    return pm.add_hookcall_monitoring(before, after)


_QUIET = frozenset({"settings", "clock"})  # in most contexts, the same on every call: left out of the trace


def _brief(value: object, width: int = 300) -> str:
    """One short line for a hook argument or result in the trace: contexts without their
    settings and clock, lists cut after three items (with their length), the whole cut at
    ``width`` characters."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        inner = ", ".join(f"{f.name}={_brief(getattr(value, f.name), 80)}" for f in dataclasses.fields(value)
                          if f.name not in _QUIET)
        text = f"{type(value).__name__}({inner})"
    elif isinstance(value, (list, tuple)):  # the count of a long list survives the cut
        count = f" ({len(value)} items)" if len(value) > 3 else ""
        text = f"[{', '.join(_brief(v, max(40, width // 3)) for v in value[:3])}{', …' if count else ''}]"
        room = width - len(count)
        return (text if len(text) <= room else text[:room - 2] + "…]") + count
    else:
        text = repr(value)
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1] + "…"


def _call_each(pm: pluggy.PluginManager, hook_name: str, problems: list[Problem] | None = None,
               **kwargs) -> list[tuple[str, list]]:
    """Call a contribution hook plugin by plugin, so every item is traced to its plugin.
    A data file that cannot be read becomes a problem when ``problems`` collects them.

    Each call goes through pluggy (a hook caller limited to that plugin), so that hook call
    monitoring, ``UNIVERS_TRACE_HOOKS`` included, sees contributions like any other call."""
    out = []
    plugins = pm.get_plugins()
    for impl in reversed(getattr(pm.hook, hook_name).get_hookimpls()):
        only = pm.subset_hook_caller(hook_name, [p for p in plugins if p is not impl.plugin])
        try:
            results = only(**kwargs)
            result = results[0] if results else None
        except FileProblem as exc:
            if problems is None:
                raise PluginError(f"plugin {impl.plugin_name!r}: {exc}") from exc
            problems.append(Problem(impl.plugin_name, "unreadable_catalog", str(exc), None,
                                    getattr(exc, "source", None), exc.line))
            continue
        except Exception as exc:
            raise PluginError(f"plugin {impl.plugin_name!r}: {hook_name} failed: {exc!r}") from exc
        if result is None:
            result = []
        if not isinstance(result, list):
            raise PluginError(f"plugin {impl.plugin_name!r}: {hook_name} must return a list, not {type(result).__name__}")
        out.append((impl.plugin_name, result))
    return out


def collect_catalog(pm: pluggy.PluginManager, ctx: PluginContext, storefronts: dict) -> tuple[Catalog, list[Problem]]:
    """The catalog every plugin contributes, and every problem found in it (none to start)."""
    problems: list[Problem] = []
    products = dict(_call_each(pm, "univers_register_products", problems, ctx=ctx))
    tiers = dict(_call_each(pm, "univers_register_support_tiers", problems, ctx=ctx))
    overlays = dict(_call_each(pm, "univers_register_overlays", problems, ctx=ctx))
    names = list(dict.fromkeys([*products, *tiers, *overlays]))
    catalog, found = build_catalog([(n, products.get(n, []), tiers.get(n, []), overlays.get(n, [])) for n in names], storefronts)
    return catalog, problems + found


def translation_domains(pm: pluggy.PluginManager, ctx: PluginContext) -> dict[str, TranslationDomain]:
    """Gettext domains by name: plugins' first, then the core's ``univers``."""
    from core.i18n import CORE_DOMAIN, locales_dir

    out = {CORE_DOMAIN: TranslationDomain(CORE_DOMAIN, locales_dir(), Path(__file__).resolve().parent)}
    for plugin, domains in _call_each(pm, "univers_register_translations", ctx=ctx):
        for domain in domains:
            if not isinstance(domain, TranslationDomain):
                raise PluginError(f"plugin {plugin!r}: {domain!r} is not a TranslationDomain")
            if domain.domain in out:
                raise PluginError(f"plugin {plugin!r}: gettext domain {domain.domain!r} is already taken")
            out[domain.domain] = domain
    return out


def dunning_policies(pm: pluggy.PluginManager, ctx: PluginContext) -> dict[str, DunningPolicy]:
    """Each universe's dunning ladder, by universe; ``"*"`` is the core's default for the rest."""
    out = {"*": DunningPolicy()}
    owner = {"*": "core"}
    for plugin, policies in _call_each(pm, "univers_register_dunning_policies", ctx=ctx):
        for policy in policies:
            if not isinstance(policy, DunningPolicy):
                raise PluginError(f"plugin {plugin!r}: {policy!r} is not a DunningPolicy")
            if policy.universe in out:
                raise PluginError(f"plugin {plugin!r}: a dunning policy for {policy.universe!r} is already set by "
                                  f"plugin {owner[policy.universe]!r}")
            if policy.problems():
                raise PluginError(f"plugin {plugin!r}: dunning policy for {policy.universe!r}: {'; '.join(policy.problems())}")
            out[policy.universe], owner[policy.universe] = policy, plugin
    return out


def contract_texts(pm: pluggy.PluginManager, ctx: PluginContext) -> list[ContractText]:
    """Every universe's contract texts; a plugin may only contribute its own document."""
    out: list[ContractText] = []
    for plugin, texts in _call_each(pm, "univers_register_contracts", ctx=ctx):
        for text in texts:
            if not isinstance(text, ContractText):
                raise PluginError(f"plugin {plugin!r}: {text!r} is not a ContractText")
            if text.document != plugin:
                raise PluginError(f"plugin {plugin!r}: contract document {text.document!r} is not its own")
            out.append(text)
    return out


def metrics(pm: pluggy.PluginManager, ctx: PluginContext) -> dict[str, MetricSpec]:
    """Every metric the plugins contribute, by code; a code contributed twice stops start-up."""
    out: dict[str, MetricSpec] = {}
    owner: dict[str, str] = {}
    for plugin, specs in _call_each(pm, "univers_register_metrics", ctx=ctx):
        for spec in specs:
            if not isinstance(spec, MetricSpec):
                raise PluginError(f"plugin {plugin!r}: {spec!r} is not a MetricSpec")
            if spec.problems():
                raise PluginError(f"plugin {plugin!r}: metric {spec.code!r}: {'; '.join(spec.problems())}")
            if spec.code in out:
                raise PluginError(f"plugin {plugin!r}: metric {spec.code!r} is already contributed by plugin {owner[spec.code]!r}")
            out[spec.code], owner[spec.code] = spec, plugin
    return out


def describe(pm: pluggy.PluginManager, catalog: Catalog) -> list[Contributions]:
    """What each plugin is and contributes (``univers plugins``, ``GET /v1/plugins``)."""
    out = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda p: str(p[0])):
        if plugin is None:
            continue
        dist = next((d for p, d in pm.list_plugin_distinfo() if p is plugin), None)
        version = dist.version if dist is not None else _version_of(plugin)
        info = Contributions(name=name, version=version)
        info.hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
        for product in catalog.products.values():
            if catalog.owner.get(product.code) != name:
                continue
            if product.support_level is not None:
                info.support_tiers.append(product.code)
            else:
                info.products.append(product.code)
                info.plans.extend(p.code for p in product.plans)
        out.append(info)
    return out


def _version_of(plugin: object) -> str:
    module = getattr(plugin, "__module__", "") or ""
    top = module.split(".", 1)[0]
    try:
        return dist_version("univers") if top in {"plugins", "core"} else dist_version(top)
    except Exception:
        return "unknown"
