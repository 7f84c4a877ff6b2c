"""Export a trained run for deployment: ONNX and ``torch.export``, each checked against PyTorch."""
