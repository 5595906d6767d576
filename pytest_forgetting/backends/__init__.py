"""Backends: the contract a model must declare (``contract``), model specs, and the transformers/peft backend (``hf``)."""
