"""The registry: every frontend, model, decoder and dataset the loaded plugins provide.

Hooks are called one plugin at a time so that a plugin whose hook raises, or registers
something that is not a spec, is recorded as broken (and its registrations for that hook
rolled back) while every other plugin still works. The first plugin to register a name
keeps it; a later duplicate is reported, not silently swapped in.
"""

from __future__ import annotations

import os
from typing import Any, Iterable

from transcribe_cli.errors import PluginError, UnknownNameError
from transcribe_cli.plugins import LoadedPlugins, _one_line, load_plugins, trace
from transcribe_cli.specs import DatasetSpec, DecoderSpec, FrontendSpec, ModelSpec

KINDS: dict[str, tuple[str, type]] = {
    "frontend": ("register_frontends", FrontendSpec),
    "model": ("register_models", ModelSpec),
    "decoder": ("register_decoders", DecoderSpec),
    "dataset": ("register_datasets", DatasetSpec),
}


class Registry:
    def __init__(self, loaded: LoadedPlugins):
        self.loaded = loaded
        self._specs: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}
        self._owners: dict[tuple[str, str], str] = {}
        self.warnings: list[str] = []
        for kind in KINDS:
            self._collect(kind)

    # -- collection -------------------------------------------------------------------
    def _collect(self, kind: str) -> None:
        hook_name, spec_type = KINDS[kind]
        caller = getattr(self.loaded.pm.hook, hook_name)
        # get_hookimpls() lists implementations in registration (load) order
        for impl in caller.get_hookimpls():
            info = self.loaded.infos[impl.plugin_name]
            added: list[str] = []

            def register(spec: Any, _info=info, _added=added) -> None:
                if not isinstance(spec, spec_type):
                    raise PluginError(
                        f"{hook_name} got {type(spec).__name__}, expected {spec_type.__name__}"
                    )
                owner = self._owners.get((kind, spec.name))
                if owner is not None:
                    self.warnings.append(
                        f"plugin {_info.name!r}: {kind} {spec.name!r} is already registered "
                        f"by {owner!r}; ignored"
                    )
                    return
                self._specs[kind][spec.name] = spec
                self._owners[(kind, spec.name)] = _info.name
                _added.append(spec.name)

            try:
                impl.function(register=register)
            except Exception as exc:
                for name in added:
                    del self._specs[kind][name]
                    del self._owners[(kind, name)]
                added.clear()
                info.error = f"{hook_name} failed: {_one_line(exc)}"
            if added:
                info.registers.setdefault(f"{kind}s", []).extend(added)
            trace(f"{info.name}: {hook_name}() registered {added or 'nothing'}")

    # -- lookup -----------------------------------------------------------------------
    def names(self, kind: str) -> list[str]:
        return sorted(self._specs[kind])

    def specs(self, kind: str) -> list[Any]:
        return [self._specs[kind][name] for name in self.names(kind)]

    def owner(self, kind: str, name: str) -> str:
        return self._owners[(kind, name)]

    def get(self, kind: str, name: str) -> Any:
        try:
            return self._specs[kind][name]
        except KeyError:
            raise UnknownNameError(kind, name, self.names(kind)) from None

    def frontend(self, name: str) -> FrontendSpec:
        return self.get("frontend", name)

    def model(self, name: str) -> ModelSpec:
        return self.get("model", name)

    def decoder(self, name: str) -> DecoderSpec:
        return self.get("decoder", name)

    def dataset(self, name: str) -> DatasetSpec:
        return self.get("dataset", name)

    def problems(self) -> list[str]:
        """One line per broken plugin or ignored registration."""
        lines = [f"plugin {info.name!r} skipped: {info.error}" for info in self.loaded.failures]
        return lines + self.warnings


_REGISTRY: Registry | None = None
_REGISTRY_KEY: tuple | None = None


def get_registry(plugins_dirs: Iterable[str | os.PathLike] = ()) -> Registry:
    """The process-wide registry (rebuilt when the plugin sources change)."""
    global _REGISTRY, _REGISTRY_KEY
    dirs = tuple(str(d) for d in plugins_dirs)
    key = (
        dirs,
        os.environ.get("TRANSCRIBE_PLUGINS_DIR"),
        os.environ.get("TRANSCRIBE_LOAD_PLUGINS"),
    )
    if _REGISTRY is None or _REGISTRY_KEY != key:
        _REGISTRY = Registry(load_plugins(dirs))
        _REGISTRY_KEY = key
    return _REGISTRY


def reset_registry() -> None:
    """Forget the cached registry (tests; after installing a plugin at run time)."""
    global _REGISTRY, _REGISTRY_KEY
    _REGISTRY = None
    _REGISTRY_KEY = None
