"""Load Hugging Face models and tokenizers offline and without running code from their files.

A model directory, or a tokenizer named in an index header, is a file a user was handed. A
``config.json`` or ``tokenizer_config.json`` with an ``auto_map`` asks transformers to import
Python shipped beside the weights; with ``trust_remote_code`` unset, transformers asks on the
terminal, and answering "y" runs it. Every redraft load goes through :func:`from_pretrained`:
offline, ``trust_remote_code=False``, and a directory that asks for custom code is refused
before transformers reads it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from redraft.errors import InputError

CONFIG_FILES = ("config.json", "tokenizer_config.json", "processor_config.json", "preprocessor_config.json")


MAX_CONFIG_BYTES = 16 << 20
"""The largest configuration file read (a ``config.json`` is kilobytes)."""


def _config_files(source: str | Path) -> list[Path]:
    path = Path(source)
    if path.is_file():  # a GGUF file: its directory may still carry configs
        path = path.parent
    if path.is_dir():
        return [path / name for name in CONFIG_FILES if (path / name).is_file()]
    try:  # a hub id: read the configs already in the local cache, never the network
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - transformers depends on huggingface_hub
        return []
    found = []
    for name in CONFIG_FILES:
        try:
            cached = try_to_load_from_cache(str(source), name)
        except ValueError:  # not a valid repo id: nothing cached under it
            return []
        if isinstance(cached, str):
            found.append(Path(cached))
    return found


def refuse_custom_code(source: str | Path) -> None:
    """Raise :class:`InputError` when ``source``'s configs ask for custom code (``auto_map``).

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "config.json").write_text('{"auto_map": {"AutoModel": "model.Evil"}}')
        >>> refuse_custom_code(d)
        Traceback (most recent call last):
        ...
        redraft.errors.InputError: ... asks to run custom code (auto_map in config.json); redraft never runs code ...
    """
    for file in _config_files(source):
        try:
            if file.stat().st_size > MAX_CONFIG_BYTES:
                raise InputError(
                    f"{file} is over {MAX_CONFIG_BYTES:,} bytes; a model's configuration is a page of JSON"
                )
            config = json.loads(file.read_bytes())
        except RecursionError:
            # transformers would parse it again, and die the same way, with a traceback.
            raise InputError(f"{file} is JSON nested too deeply to read; the model directory is damaged") from None
        except (ValueError, UnicodeDecodeError, OSError):
            continue  # transformers reports an unreadable config itself
        if isinstance(config, dict) and config.get("auto_map"):
            raise InputError(
                f"{source} asks to run custom code (auto_map in {file.name}); redraft never runs code from model "
                "or tokenizer files. Use a model whose architecture transformers ships, or convert it yourself "
                "after reading that code."
            )


def from_pretrained(factory: Any, source: str | Path, **kwargs: Any) -> Any:
    """``factory.from_pretrained(source, ...)`` offline with ``trust_remote_code=False``, after
    :func:`refuse_custom_code`. ``factory`` is an ``AutoModel*`` or ``AutoTokenizer`` class."""
    refuse_custom_code(source)
    try:
        return factory.from_pretrained(str(source), local_files_only=True, trust_remote_code=False, **kwargs)
    except ValueError as exc:
        if "trust_remote_code" not in str(exc):
            raise
        raise InputError(
            f"{source} needs custom code to load, and redraft never runs code from model or tokenizer files. "
            "Use a model whose architecture transformers ships."
        ) from exc
