"""Tiny real models for the tests: a trained byte-level BPE tokenizer, 2-layer Llamas, LoRA adapters.

Everything is built from configs with fixed seeds in temporary folders; nothing touches a hub.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

CORPUS = [
    "Question: What is the capital of France?\nAnswer: Paris",
    "Question: What is 2 + 3?\nAnswer: 5",
    "The quick brown fox jumps over the lazy dog.",
    "Dear team, please find the report attached. Best regards, Ann",
    "WHEREAS the parties agree, the seller HEREBY transfers the goods.",
    "hot cold big small up down left right fast slow happy sad",
    "one two three four five six seven eight nine ten 0 1 2 3 4 5 6 7 8 9 + - = ?",
    "Berlin Madrid Rome Paris London Tokyo capital country city river",
]


def build_tokenizer(folder: Path, vocab_size: int = 300, extra_corpus: tuple[str, ...] = ()) -> None:
    """Train a byte-level BPE tokenizer and save it as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>", "<|pad|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(list(CORPUS) + list(extra_corpus) * 3, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|pad|>",
    )
    fast.save_pretrained(str(folder))


def build_llama(
    folder: Path,
    *,
    seed: int = 0,
    hidden: int = 32,
    layers: int = 2,
    tokenizer_from: Optional[Path] = None,
    safetensors: bool = True,
) -> Path:
    """A 2-layer Llama (about 40k parameters) with random weights and a tokenizer."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    folder.mkdir(parents=True, exist_ok=True)
    if tokenizer_from is None:
        build_tokenizer(folder)
    else:
        AutoTokenizer.from_pretrained(str(tokenizer_from)).save_pretrained(str(folder))
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=256,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # larger weights than the default init make outputs differ by input
        for parameter in model.parameters():
            if parameter.dim() == 2:
                parameter.normal_(0, 0.3)
    if safetensors:
        model.save_pretrained(str(folder))
    else:
        config.save_pretrained(str(folder))
        torch.save(model.state_dict(), folder / "pytorch_model.bin")
    return folder


def build_gpt2(folder: Path, tokenizer_from: Path) -> Path:
    """A tiny GPT-2 sharing a tokenizer: a different architecture for mismatch tests."""
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_from))
    tokenizer.save_pretrained(str(folder))
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=2, n_head=4,
                               n_positions=256)).save_pretrained(str(folder))
    return folder


def build_lora(
    folder: Path,
    base: Path,
    *,
    seed: int = 1,
    zero: bool = False,
    target_modules: tuple[str, ...] = ("q_proj", "v_proj", "down_proj"),
    rank: int = 4,
    record_base_as: Optional[str] = None,
) -> Path:
    """A LoRA adapter on ``base``; ``zero=True`` keeps peft's zero init (identical to base)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(str(base))
    config = LoraConfig(r=rank, lora_alpha=rank * 2, target_modules=list(target_modules),
                        init_lora_weights=True if zero else False)
    peft_model = get_peft_model(model, config)
    if not zero:
        with torch.no_grad():
            for name, parameter in peft_model.named_parameters():
                if "lora_" in name:
                    parameter.normal_(0, 0.3)
    peft_model.save_pretrained(str(folder))
    adapter_config = folder / "adapter_config.json"
    data = json.loads(adapter_config.read_text())
    data["base_model_name_or_path"] = record_base_as if record_base_as is not None else str(base)
    adapter_config.write_text(json.dumps(data, indent=2))
    return folder
