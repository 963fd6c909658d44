"""Pretrained causal LMs: the registered bases that install offline, and loading a model directory (a full model
or a LoRA adapter on its base) for training or inference. Imports nothing else of the project."""
