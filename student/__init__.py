"""Distillation: student relevance models trained from teacher labels, exported to ONNX and served on CPU."""
