"""Attack parameters from the command line: ``{"pgd.steps": 50}`` → ``{"pgd": {"steps": 50}}``, checked
against the suite and the attacks' constructors before anything is loaded.

A key is ``<registered attack name>.<constructor parameter>`` (``pgd.steps``, ``apgd-ce.n_restarts``,
``square.queries``). The attack must be in the suite that runs (an option for an attack that does not run
is a mistake, not a no-op); the threat-model parameters (``norm``, ``eps``, ``seed``) have their own flags
and are refused here. Values are validated by the attack's constructor itself, so a bad value fails with
the attack's own message.

Choice: a named suite's entry whose parameters were overridden is relabelled ``<name>[<param>=<value>,…]``
(the suite's own settings for it, then the overrides), e.g. quick's ``pgd-20`` with ``pgd.steps=50`` becomes
``pgd[steps=50]``: a label such as ``pgd-20`` would otherwise name what did not run. An attack listed by
its registered name (``--suite=pgd,square``) keeps that name as its label, which claims no setting.
"""

import importlib
import inspect

from tfrobust.attacks import registry
from tfrobust.errors import TfrobustError

#: Parameters set by the threat-model flags (--norm, --eps, --seed), never through options.
THREAT_PARAMETERS = ("norm", "eps", "seed")


def attack_parameters(name):
    """The constructor parameters of the attack registered as ``name`` (its own and its base classes'),
    sorted, without the threat-model ones."""
    module, cls, _ = registry.ATTACKS[name]
    attack_class = getattr(importlib.import_module(f"tfrobust.attacks.{module}"), cls)
    parameters = set()
    for klass in attack_class.__mro__:
        if "__init__" not in vars(klass):
            continue
        signature = inspect.signature(klass.__init__)
        parameters |= {p.name for p in signature.parameters.values()
                       if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
        if not any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values()):
            break
    return sorted(parameters - set(THREAT_PARAMETERS))


def attack_overrides(options, suite_attacks):
    """``{"<attack>.<parameter>": value}`` → ``{attack: {parameter: value}}`` (``build_suite``'s overrides).

    Args:
      options: the parsed ``--attack_option`` pairs (``tfrobust.cli.parse_options``).
      suite_attacks: the registered names of the attacks the suite runs, in order.

    Raises:
      TfrobustError: one line naming the valid attacks or parameters for an unknown one.
    """
    overrides = {}
    for key, value in options.items():
        name, dot, parameter = key.rpartition(".")
        if not dot or not name or not parameter:
            raise TfrobustError(f"--attack_option expects <attack>.<parameter>=<value>, got {key!r}; "
                                f"attacks in this suite: {', '.join(suite_attacks)}")
        if name not in suite_attacks:
            where = "not in this suite" if name in registry.ATTACKS else "unknown"
            raise TfrobustError(f"--attack_option: attack {name!r} is {where}; attacks in this suite: "
                                f"{', '.join(suite_attacks)}")
        valid = attack_parameters(name)
        if parameter not in valid:
            hint = " (it has its own flag)" if parameter in THREAT_PARAMETERS else ""
            raise TfrobustError(f"--attack_option: unknown parameter {parameter!r} for attack {name!r}{hint}; "
                                f"valid: {', '.join(valid)}")
        overrides.setdefault(name, {})[parameter] = value
    return overrides


def relabel(entries, overrides):
    """Suite entries ``[(label, name, kwargs)]`` with the overrides merged in and the changed ones relabelled
    (see the module docstring)."""
    result = []
    for label, name, kwargs in entries:
        extra = overrides.get(name, {})
        merged = {**kwargs, **extra}
        if extra and label != name:
            label = f"{name}[{','.join(f'{k}={v}' for k, v in merged.items())}]"
        result.append((label, name, merged))
    return result
