"""One registry mechanism for everything looked up by name (models, model parts, datasets, training
methods, attacks): registration with a clear error on duplicates, lookup listing the valid names, and
keyword options read from a factory's signature."""

import inspect

from tfrobust.errors import TfrobustError, check_choice


class Registry(dict):
    """``{name: entry}`` with checked registration and lookup; a dict, so ``sorted(registry)``,
    ``name in registry`` and ``registry[name]`` work as usual.

    Args:
      kind: what the entries are ("model", "dataset", "method" …), used in every message.
      callable_entries: entries must be callable (factories); False for records such as dataset entries.
    """

    def __init__(self, kind, *, callable_entries=True):
        super().__init__()
        self.kind = kind
        self.callable_entries = callable_entries

    def register(self, name, entry, *, overwrite=False):
        """Adds ``entry`` under ``name`` and returns it; an existing name raises unless ``overwrite``."""
        check_registration(self.kind, self, name, entry, overwrite, callable_entry=self.callable_entries)
        self[name] = entry
        return entry

    def decorator(self, name, *, overwrite=False):
        """``@registry.decorator("name")`` registers the decorated function."""
        return lambda entry: self.register(name, entry, overwrite=overwrite)

    def lookup(self, name, *, option=None):
        """The entry of ``name``, or a one-line error naming ``option`` (default: the kind) and listing
        the valid names."""
        check_choice(option or self.kind, name, sorted(self) if option else list(self))
        return self[name]

    def names(self):
        """The registered names, in registration order."""
        return list(self)


def check_registration(kind, registry, name, entry, overwrite, *, callable_entry=True):
    """Raises TfrobustError unless ``name`` is a new non-empty string (or ``overwrite``) and ``entry`` is
    callable (when ``callable_entry``)."""
    if not isinstance(name, str) or not name:
        raise TfrobustError(f"{kind} name must be a non-empty string, got {name!r}")
    if callable_entry and not callable(entry):
        raise TfrobustError(f"{kind} {name!r} must be registered with a callable, got {entry!r}")
    if name in registry and not overwrite:
        raise TfrobustError(f"{kind} {name!r} is already registered; pass overwrite=True to replace it")


def keyword_options(fn, *, skip=(), keyword_only=False):
    """``{name: default}`` of the named keyword arguments of ``fn``: those with defaults, or every
    keyword-only one if ``keyword_only`` (a required one maps to ``inspect.Parameter.empty``)."""
    result = {}
    for parameter in inspect.signature(fn).parameters.values():
        if parameter.kind in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL):
            continue
        if parameter.name in skip:
            continue
        if keyword_only and parameter.kind is not inspect.Parameter.KEYWORD_ONLY:
            continue
        if parameter.default is inspect.Parameter.empty and not keyword_only:
            continue  # a required positional argument of the callable, not an option
        result[parameter.name] = parameter.default
    return result


def check_options(kind, name, fn, given, *, skip=(), keyword_only=False, noun="option"):
    """Raises TfrobustError if ``given`` holds a keyword ``fn`` does not accept (``skip`` excluded)."""
    if accepts_any_keyword(fn):  # it checks for itself
        return
    valid = keyword_options(fn, skip=skip, keyword_only=keyword_only)
    for key in given:
        if key not in valid:
            listed = ", ".join(valid) or "(none)"
            raise TfrobustError(f"unknown {noun} {key!r} for {kind} {name!r}; valid {noun}s: {listed}")


def accepts_any_keyword(fn):
    """Whether ``fn`` takes ``**kwargs``."""
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in inspect.signature(fn).parameters.values())
