"""The transformers/peft backend: loading checkpoints and adapters, batching, greedy decoding."""
