"""doctor: kuryr.conf parses, every value is valid, and the Neutron credentials are complete."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

from oslo_config import cfg

from courier.config import options
from courier.ops import common
from courier.ops.checks.base import ERROR, OK, Context, Finding


def check_config(ctx: Context) -> Iterator[Finding]:
    files = [f for f in (ctx.args.config_file or []) if f] or [f for f in options.DEFAULT_CONFIG_FILES
                                                              if os.path.exists(f)]
    try:
        conf = common.load_config(ctx.args)
    except cfg.ConfigFilesNotFoundError as exc:
        yield Finding("config", ERROR, f"cannot read the configuration: {exc}",
                      "create it (kuryr-libnetwork's kuryr.conf works as is) or pass the right --config-file")
        return
    except cfg.Error as exc:
        yield Finding("config", ERROR, f"cannot read the configuration: {exc}",
                      "fix the file named above (oslo.config INI syntax: [section] then 'option = value')")
        return
    if not files:
        yield Finding("config", ERROR, f"no configuration file: none given and {options.DEFAULT_CONFIG_FILES[0]} "
                      "does not exist", f"create {options.DEFAULT_CONFIG_FILES[0]} (kuryr-libnetwork's kuryr.conf "
                      "works as is) or pass --config-file")
        return
    bad = list(_invalid_values(conf))
    for group, name, problem in bad:
        yield Finding("config", ERROR, f"[{group}] {name}: {problem}",
                      f"correct [{group}] {name}, or remove it to use the default")
    auth = ctx.auth_problem = _auth_problem(conf)
    if auth:
        yield Finding("config", ERROR, auth, "in [neutron]: auth_type = password with auth_url, username, password, "
                      "project_name (...), or auth_type = none with endpoint = http://NEUTRON:9696; or set "
                      "[courier] cloud = NAME of a clouds.yaml entry")
    if not bad and not auth:
        yield Finding("config", OK, f"{', '.join(files)}: every value is valid")
    ctx.conf = conf


def _invalid_values(conf: cfg.ConfigOpts) -> Iterator[tuple[str, str, str]]:
    """oslo.config checks a value only when it is read: read them all (from files and OS_* variables)."""
    names = sorted(conf)
    sections: list[tuple[str, Any, list[str]]] = [("DEFAULT", conf, [n for n in names if not _is_group(conf, n)])]
    sections += [(n, getattr(conf, n), sorted(getattr(conf, n))) for n in names if _is_group(conf, n)]
    for label, section, options_here in sections:
        for name in options_here:
            try:
                getattr(section, name)
            except (cfg.NoSuchOptError, cfg.NoSuchGroupError):
                continue
            except (cfg.Error, ValueError) as exc:
                yield label, name, _short(exc)


def _is_group(conf: cfg.ConfigOpts, name: str) -> bool:
    try:
        return isinstance(getattr(conf, name), cfg.ConfigOpts.GroupAttr)
    except (cfg.NoSuchOptError, cfg.NoSuchGroupError):
        return False
    except Exception:
        return False


def _short(exc: BaseException) -> str:
    """oslo.config's "Value for option X from LocationInfo(..., detail='F') is not valid: why" as "F: why"."""
    text = str(exc)
    why = re.search(r"is not valid: (.*)$", text, re.S)
    where = re.search(r"detail='([^']*)'", text)
    if why:
        return f"{why.group(1)} (set in {where.group(1)})" if where else why.group(1)
    return text


def _auth_problem(conf: cfg.ConfigOpts) -> str:
    if conf.courier.cloud:
        return ""
    from keystoneauth1 import exceptions as ks_exc
    from keystoneauth1 import loading as ks_loading

    try:
        auth = ks_loading.load_auth_from_conf_options(conf, "neutron")
    except ks_exc.ClientException as exc:
        return f"[neutron] authentication options are incomplete: {exc}"
    except cfg.Error as exc:
        return f"[neutron] authentication options: {_short(exc)}"
    if auth is None:
        return "[neutron] auth_type is not set: Courier cannot reach Neutron"
    if type(auth).__name__ == "NoAuth" and not getattr(conf.neutron, "endpoint", None):
        return "[neutron] auth_type = none needs endpoint = http://NEUTRON:9696"
    return ""
