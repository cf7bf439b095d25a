"""PyTorch twins of the segmentation models: the oracle for the model tests."""
